// Data-parallel training with a result that does not depend on the process count.
//
// A batch of `rows` rows is computed as S shards, contiguous slices of its rows (the first
// rows % S shards one row longer). Each shard runs forward and backward on its own, its gradients
// scaled as a mean over the whole batch; the batch's gradient is the sum of the shards' in shard
// order, left to right: ((g0 + g1) + g2) + ... . On one process (the option shards{S}) the sum is
// accumulated as the shards are computed. With distributed{&comm} the shards are dealt to the
// ranks in blocks (rank r computes shards r*S/N .. (r+1)*S/N - 1) and the same sum travels along
// the ranks: rank 0 sends its partial sum to rank 1, which adds its shards in order and passes it
// on; the last rank sends the total to every rank. The additions are the same, in the same order,
// so the weights after any number of steps are bitwise those of one process with shards{S}, for
// any N that divides S. graft fixes this order itself: an MPI allreduce would choose its own.
//
// What else a step shares:
//  - the loss: the shards' summed losses (double) travel with the gradient, in the same order;
//  - batch statistics (batch norm): each shard normalises with its own rows' statistics (as N
//    separate GPUs do); the running estimates after the step are the mean over the shards of
//    what each shard's forward made of them, every shard starting from the same values;
//  - random state (dropout): shard s > 0 draws from a stream derived from the step's state and s,
//    and after the step every rank moves to a stream derived from it and S;
//  - a rank that fails in its part of a step (an exception, a non-finite loss) tells the others,
//    which throw rank_failure with the same message naming the rank and the step; waits are
//    bounded by the transport (graft/mpi.hpp stops the run when a rank stops answering).
// The optimizer then runs on every rank on the same gradient, so its state stays identical
// without being sent. Memory: a rank keeps one flat copy of the gradient per shard it computes
// beyond the first, plus one to receive into.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "graft/random/random.hpp"
#include "graft/train/checkpoint.hpp"
#include "graft/train/collective.hpp"
#include "graft/train/options.hpp"
#include "graft/train/trainer.hpp"

GRAFT_BEGIN_NAMESPACE

/// Thrown on the ranks of a data-parallel run when another rank failed; what() names that rank, the
/// step and its error.
class rank_failure : public training_error {
 public:
  using training_error::training_error;
};

namespace detail {

/// Rows [begin, begin + rows) of a batch of n rows form shard s of S.
struct shard_range {
  std::size_t begin = 0, rows = 0;
};
constexpr shard_range shard_of(std::size_t n, std::size_t count, std::size_t s) noexcept {
  const std::size_t q = n / count, r = n % count;
  return {s * q + std::min(s, r), q + (s < r ? 1 : 0)};
}
/// A random-state word of shard s (s > 0) or of the next step (s = S), from the step's word w.
constexpr std::uint64_t shard_word(std::uint64_t w, std::uint64_t s) noexcept {
  splitmix64 m(w ^ (0xA0761D6478BD642FULL * (s + 1)));
  return m.next();
}
inline std::string rank_step_text(std::size_t rank, std::size_t step) {
  return "rank " + std::to_string(rank) + " failed at step " + std::to_string(step);
}

/// The sharded step of trainer Tr (the data comes through the caller's load, the feature cache's).
template <class Tr> class sharded_step {
 public:
  using T = typename Tr::T;
  using target_type = typename Tr::target_type;

  /// count: shards per batch; comm: null on one process.
  sharded_step(std::size_t count, collective* comm) : count_(count), comm_(comm) {
    const std::size_t n = ranks();
    if (count_ == 0) count_ = n;
    if (count_ % n != 0)
      throw std::invalid_argument("graft: shards{" + std::to_string(count_) + "} on " +
                                  std::to_string(n) +
                                  " ranks: the shard count must be a multiple of the rank count");
  }
  std::size_t count() const noexcept { return count_; }
  std::size_t rank() const noexcept { return comm_ != nullptr ? comm_->rank() : 0; }
  std::size_t ranks() const noexcept { return comm_ != nullptr ? comm_->size() : 1; }
  /// Whether this is the plain step (one shard on one rank).
  bool plain() const noexcept { return count_ == 1 && ranks() == 1; }

  /// Called by the loop with an error raised on this rank only (in its shards, a callback, a
  /// checkpoint): tells the other ranks, which throw rank_failure naming this rank and the step.
  void report_failure(std::size_t step, const char* what) noexcept {
    if (comm_ == nullptr || ranks() == 1) return;
    try {
      comm_->fail("graft: data-parallel training stopped: " + rank_step_text(rank(), step) + ": " +
                  what);
    } catch (...) {  // no memory for the message: the others stop at their bounded wait
    }
  }

  /// The end of a run: returns on every rank once every rank got there, so that a rank whose last
  /// step or checkpoint failed makes the others throw rather than return.
  void finish() {
    if (comm_ == nullptr || ranks() == 1) return;
    unsigned char token = 1;
    combine_in_rank_order(
        *comm_, [&](std::size_t from) { comm_->receive(from, &token, 1); }, [] {},
        [&](std::size_t to) { comm_->send(to, &token, 1); });
  }

  /// Every rank must run the same call: rank 0's description of it (data set size, batch, steps,
  /// seed, model) is checked by every other rank, which fails naming what differs.
  void check_same_run(const std::string& mine) {
    if (comm_ == nullptr || ranks() == 1) return;
    if (rank() == 0) {
      const std::uint64_t len = mine.size();
      for (std::size_t r = 1; r < ranks(); ++r) {
        comm_->send(r, &len, sizeof len);
        comm_->send(r, mine.data(), mine.size());
      }
      return;
    }
    std::uint64_t len = 0;
    comm_->receive(0, &len, sizeof len);
    std::string theirs(static_cast<std::size_t>(len), '\0');
    comm_->receive(0, theirs.data(), theirs.size());
    if (theirs != mine) {
      const std::string msg = "graft: distributed training: rank " + std::to_string(rank()) +
                              " was called with " + mine + ", rank 0 with " + theirs +
                              " (every rank must make the same call)";
      report_failure(0, msg.c_str());
      throw std::invalid_argument(msg);
    }
  }

  /// One step on rows idx[0..rows) of ds, loaded by `load(first_index, rows)` into the trainer
  /// (the feature cache's load): forward and backward of this rank's shards, the ordered sum, then
  /// after_gradients(mean loss), the finiteness check and the update, as trainer::step.
  template <class Load, class AfterGradients> double run(Tr& t, std::size_t rows, std::size_t start,
                                                         const target_type* targets, Load&& load,
                                                         AfterGradients&& after_gradients) {
    const std::size_t me = rank(), n = ranks(), per_rank = count_ / n;
    const std::size_t step = t.steps_done() + 1;
    if (comm_ != nullptr) comm_->step = step;
    // what every shard starts from: the random state and the running statistics
    rng0_.clear();
    for_each_rng_word(t.model(), [&](std::uint64_t& w) { rng0_.push_back(w); });
    buffers0_.clear();
    for_each_moving_buffer(
        t, [&](T* b, std::size_t k) { buffers0_.insert(buffers0_.end(), b, b + k); });

    std::size_t parts = 0;  // local shards computed (non-empty)
    double loss = 0;
    {
      for (std::size_t j = 0; j < per_rank; ++j) {
        const std::size_t s = me * per_rank + j;
        const shard_range sh = shard_of(rows, count_, s);
        if (sh.rows == 0) continue;  // an empty shard adds nothing, on every rank count
        std::size_t w = 0;
        for_each_rng_word(t.model(), [&](std::uint64_t& x) {
          x = s == 0 ? rng0_[w] : shard_word(rng0_[w], s);
          ++w;
        });
        std::size_t b = 0;
        for_each_moving_buffer(t, [&](T* p, std::size_t k) {
          std::copy_n(buffers0_.data() + b, k, p);
          b += k;
        });
        load(sh.begin, sh.rows);
        t.compute_gradients(targets, sh.rows, start, rows);
        const double l = t.last_loss_total();
        if (parts == 0 && me == 0) {  // the sum starts with shard 0 (rank 0's first)
          flatten(t, sum_);
          loss = l;
        } else if (me == 0) {
          flatten(t, part_);
          add(sum_, part_);
          loss = loss + l;
        } else {
          if (local_.size() <= parts) local_.resize(parts + 1);
          flatten(t, local_[parts]);
          local_loss_.resize(parts + 1);
          local_loss_[parts] = l;
        }
        ++parts;
      }
    }

    if (n > 1)  // the ordered sum along the ranks; rank 0's shards are in sum_ already
      combine_in_rank_order(
          *comm_, [&](std::size_t from) { receive_sum(from, loss, flat_size(t)); },
          [&] {
            for (std::size_t j = 0; me > 0 && j < parts; ++j) {
              add(sum_, local_[j]);
              loss = loss + local_loss_[j];
            }
          },
          [&](std::size_t to) { send_sum(to, loss); });
    unflatten(t, sum_, std::min(rows, count_));
    std::size_t w = 0;  // the next step's random state, the same on every rank
    for_each_rng_word(t.model(), [&](std::uint64_t& x) { x = shard_word(rng0_[w++], count_); });
    const double mean = loss / static_cast<double>(rows);
    after_gradients(mean);
    t.check_gradients();
    t.apply_update();
    return mean;
  }

 private:
  // Buffers that a training forward moves: batch statistics of layers that train now.
  template <class F> static void for_each_moving_buffer(Tr& t, F&& f) {
    const std::size_t lo = t.trainable_from();
    t.for_each_buffer_at([&](std::size_t i, T* p, std::size_t k) {
      if (i >= lo && Tr::batch_stats[i]) f(p, k);
    });
  }
  static void flatten(Tr& t, std::vector<T>& out) {
    out.clear();
    t.for_each_trainable([&](std::size_t, std::size_t, role, T*, T* g, std::size_t k) {
      out.insert(out.end(), g, g + k);
    });
    for_each_moving_buffer(t, [&](T* p, std::size_t k) { out.insert(out.end(), p, p + k); });
  }
  // Gradients into the trainer; buffers: the sum over `shards` shards, divided by it.
  static void unflatten(Tr& t, const std::vector<T>& in, std::size_t shards) {
    std::size_t at = 0;
    t.for_each_trainable([&](std::size_t, std::size_t, role, T*, T* g, std::size_t k) {
      std::copy_n(in.data() + at, k, g);
      at += k;
    });
    const T d = static_cast<T>(shards);
    for_each_moving_buffer(t, [&](T* p, std::size_t k) {
      for (std::size_t i = 0; i < k; ++i) p[i] = in[at + i] / d;
      at += k;
    });
  }
  static void add(std::vector<T>& acc, const std::vector<T>& x) noexcept {
    for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = acc[i] + x[i];
  }
  void send_sum(std::size_t to, double loss) {
    comm_->send(to, &loss, sizeof loss);
    comm_->send(to, sum_.data(), sum_.size() * sizeof(T));
  }
  void receive_sum(std::size_t from, double& loss, std::size_t size) {
    comm_->receive(from, &loss, sizeof loss);
    sum_.resize(size);
    comm_->receive(from, sum_.data(), sum_.size() * sizeof(T));
  }
  static std::size_t flat_size(Tr& t) {
    std::size_t n = 0;
    t.for_each_trainable([&](std::size_t, std::size_t, role, T*, T*, std::size_t k) { n += k; });
    for_each_moving_buffer(t, [&](T*, std::size_t k) { n += k; });
    return n;
  }

  std::size_t count_;
  collective* comm_;
  std::vector<std::uint64_t> rng0_;
  std::vector<T> buffers0_, sum_, part_;
  std::vector<std::vector<T>> local_;
  std::vector<double> local_loss_;
};

}  // namespace detail
GRAFT_END_NAMESPACE
