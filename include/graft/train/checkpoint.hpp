// Checkpoints: everything a training run needs to continue bitwise as if never interrupted.
//
//   pretrain(net, data, adamw{...}, steps{1000}, checkpoint{"run.ckpt", 100});   // writes every
//   100 pretrain(net, data, adamw{...}, steps{1000}, checkpoint{"run.ckpt", 100},
//   resume{"run.ckpt"});
//
// A checkpoint holds the model's parameters and buffers (batch norm's running statistics), the
// random state of layers that draw (dropout), the optimizer state (momentum, Adam's moments) and
// every layer's update count, the run's position (completed steps: the data order, the schedule and
// the gradual-unfreezing stage follow from it and the seed), the L2-SP anchor, and the report's
// running sums. The feature cache of a frozen prefix is recomputed from the restored weights.
//
// Layout (little-endian): "GRAFTCKP", u32 version, u32 scalar size, u64 run fingerprint, u32 length
// + run description, u64 total steps, u64 dataset size, u64 shuffle seed, u64 completed steps,
// f64 epoch loss, u64 epoch rows, u64 samples, u64 L + L layer step counts, u64 n + n random
// words, then three scalar sections (u64 count + payload each: model, optimizer state, L2-SP
// anchor), u64 FNV-1a checksum of every byte before it. Written like weight files (temporary file,
// fsync, rename): a process killed while writing leaves the previous checkpoint loadable. A resume
// validates the whole file against the run before it changes anything.
#pragma once
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "graft/io/weights.hpp"
#include "graft/train/trainer.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
inline constexpr char checkpoint_magic[8] = {'G', 'R', 'A', 'F', 'T', 'C', 'K', 'P'};
inline constexpr std::uint32_t checkpoint_version = 1;

/// What identifies a run: the model, the optimizer, the batch and which tensors train.
template <class Tr> std::string run_description() {
  std::string d = Tr::model_type::description() + " | optimizer " + Tr::optimizer_name() +
                  " | batch " + std::to_string(Tr::batch) + " | trains";
  for (std::size_t i = 0; i < Tr::L; ++i) {  // not " " + string&&: g++ 12's false -Wrestrict
    d += ' ';
    d += std::to_string(Tr::grad_masks[i]);
  }
  return d;
}

/// The run's position and counters besides tensors.
struct run_position {
  std::uint64_t total_steps = 0, dataset_size = 0, shuffle_seed = 0, step = 0;
  double epoch_loss = 0;
  std::uint64_t epoch_rows = 0, samples = 0;
};

template <class Tr> struct checkpoint_data {
  using T = typename Tr::T;
  run_position pos;
  std::array<std::size_t, Tr::L> layer_steps{};
  std::vector<std::uint64_t> rng;
  std::vector<T> model, state, anchor;
};

template <class M, class F> void for_each_rng_word(M& net, F&& f) {
  net.for_each_layer([&](auto, auto& l) { visit_rng_state(l, f); });
}

template <class T> void put_scalars(std::vector<unsigned char>& out, const std::vector<T>& v) {
  put_le<std::uint64_t>(out, v.size());
  for (const T x : v) put_le(out, std::bit_cast<scalar_bits<T>>(x));
}

/// Writes the checkpoint of trainer t's model and state at the run position pos.
/// What a run without L2-SP saves as anchors: nothing.
struct no_anchors {
  template <class F> void for_each_anchor(F&&) {}
};

template <class Tr, class Anchors>
void write_checkpoint(const std::string& path, Tr& t, const run_position& pos, Anchors& anchors) {
  using T = typename Tr::T;
  auto& net = t.model();
  std::vector<unsigned char> out;
  out.insert(out.end(), checkpoint_magic, checkpoint_magic + 8);
  put_le<std::uint32_t>(out, checkpoint_version);
  put_le<std::uint32_t>(out, sizeof(T));
  const std::string d = run_description<Tr>();
  put_le<std::uint64_t>(out, fnv1a(d));
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(d.size()));
  out.insert(out.end(), d.begin(), d.end());
  for (std::uint64_t v : {pos.total_steps, pos.dataset_size, pos.shuffle_seed, pos.step})
    put_le<std::uint64_t>(out, v);
  put_le<std::uint64_t>(out, std::bit_cast<std::uint64_t>(pos.epoch_loss));
  put_le<std::uint64_t>(out, pos.epoch_rows);
  put_le<std::uint64_t>(out, pos.samples);
  put_le<std::uint64_t>(out, Tr::L);
  for (const std::size_t s : t.layer_steps()) put_le<std::uint64_t>(out, s);
  std::vector<std::uint64_t> rng;
  for_each_rng_word(net, [&](std::uint64_t& w) { rng.push_back(w); });
  put_le<std::uint64_t>(out, rng.size());
  for (const auto w : rng) put_le<std::uint64_t>(out, w);
  std::vector<T> flat;
  net.for_each_saved(
      [&](std::size_t, const T* p, std::size_t n) { flat.insert(flat.end(), p, p + n); });
  put_scalars(out, flat);
  flat.clear();
  t.for_each_optimizer_state([&](const T* p, std::size_t n) { flat.insert(flat.end(), p, p + n); });
  put_scalars(out, flat);
  flat.clear();
  anchors.for_each_anchor(
      [&](const std::vector<T>& a) { flat.insert(flat.end(), a.begin(), a.end()); });
  put_scalars(out, flat);
  put_le<std::uint64_t>(out, fnv1a(out.data(), out.size()));
  write_atomically(path, out);
}

/// Reads and validates a checkpoint for trainer type Tr at run position `expect` (its step is
/// ignored); throws io_error naming the file, the byte offset and what differs. Touches nothing.
template <class Tr>
checkpoint_data<Tr> read_checkpoint(const std::string& path, const run_position& expect,
                                    std::size_t model_rng_words, std::size_t anchor_scalars) {
  using T = typename Tr::T;
  using M = typename Tr::model_type;
  const std::vector<unsigned char> bytes = read_file(path);
  const std::size_t n = bytes.size();
  std::size_t at = 0;
  auto fail = [&](std::size_t offset, const std::string& expected, const std::string& found) {
    return io_error("graft: checkpoint " + path + ": byte " + std::to_string(offset) +
                    ": expected " + expected + ", found " + found);
  };
  auto need = [&](std::uint64_t k, const char* what) {
    if (n - at < k)
      throw fail(at, std::string(what),
                 "end of file after " + std::to_string(n) + " bytes (truncated)");
  };
  auto u64 = [&](const char* what) {
    need(8, what);
    const auto v = get_le<std::uint64_t>(bytes.data() + at);
    at += 8;
    return v;
  };
  // integrity first: nothing is interpreted from a corrupted file
  need(8, "the magic \"GRAFTCKP\"");
  if (std::memcmp(bytes.data(), checkpoint_magic, 8) != 0)
    throw fail(0, "the magic \"GRAFTCKP\"", "other bytes (not a graft checkpoint)");
  if (n < 16 + 8) throw fail(n, "a complete header", "end of file (truncated)");
  if (get_le<std::uint64_t>(bytes.data() + n - 8) != fnv1a(bytes.data(), n - 8))
    throw fail(n - 8, "a matching checksum", "another one (the file is truncated or corrupted)");
  at = 8;
  need(8, "version and scalar size");
  const auto version = get_le<std::uint32_t>(bytes.data() + at);
  const auto scalar = get_le<std::uint32_t>(bytes.data() + at + 4);
  if (version != checkpoint_version)
    throw fail(at, "checkpoint version " + std::to_string(checkpoint_version),
               std::to_string(version));
  if (scalar != sizeof(T))
    throw fail(at + 4, std::to_string(sizeof(T)) + "-byte scalars", std::to_string(scalar));
  at += 8;
  const auto fp = u64("the run fingerprint");
  need(4, "a description length");
  const auto len = get_le<std::uint32_t>(bytes.data() + at);
  at += 4;
  need(len, "the run description");
  const std::string desc(reinterpret_cast<const char*>(bytes.data() + at), len);
  at += len;
  const std::string mine = run_description<Tr>();
  if (desc != mine || fp != fnv1a(mine))
    throw io_error("graft: checkpoint " + path + " belongs to another run.\n  file: " + desc +
                   "\n  run:  " + mine);
  checkpoint_data<Tr> c;
  const std::size_t pos_at = at;
  c.pos.total_steps = u64("total steps");
  c.pos.dataset_size = u64("data set size");
  c.pos.shuffle_seed = u64("shuffle seed");
  c.pos.step = u64("completed steps");
  c.pos.epoch_loss = std::bit_cast<double>(u64("epoch loss"));
  c.pos.epoch_rows = u64("epoch rows");
  c.pos.samples = u64("samples");
  auto same = [&](std::uint64_t file, std::uint64_t run, const char* what) {
    if (file != run)
      throw fail(pos_at, std::string(what) + " " + std::to_string(run) + " (this run's)",
                 std::to_string(file));
  };
  same(c.pos.total_steps, expect.total_steps, "total steps");
  same(c.pos.dataset_size, expect.dataset_size, "data set size");
  same(c.pos.shuffle_seed, expect.shuffle_seed, "shuffle seed");
  if (c.pos.step > c.pos.total_steps)
    throw fail(pos_at + 24, "at most " + std::to_string(c.pos.total_steps) + " completed steps",
               std::to_string(c.pos.step));
  if (c.pos.epoch_rows > c.pos.dataset_size)
    throw fail(pos_at + 40, "at most " + std::to_string(c.pos.dataset_size) + " epoch rows",
               std::to_string(c.pos.epoch_rows));
  if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t))  // 32-bit targets
    if (c.pos.samples > std::numeric_limits<std::size_t>::max())
      throw fail(pos_at + 48, "a sample count below 2^" + std::to_string(8 * sizeof(std::size_t)),
                 std::to_string(c.pos.samples));
  const auto layers = u64("the layer count");
  if (layers != Tr::L)
    throw fail(at - 8, std::to_string(Tr::L) + " layers", std::to_string(layers));
  for (auto& s : c.layer_steps) {
    s = u64("a layer step count");
    if (s > c.pos.step)
      throw fail(at - 8, "at most " + std::to_string(c.pos.step), std::to_string(s));
  }
  const auto words = u64("the random-state word count");
  if (words != model_rng_words)
    throw fail(at - 8, std::to_string(model_rng_words) + " random-state words",
               std::to_string(words));
  for (std::uint64_t k = 0; k < words; ++k) c.rng.push_back(u64("a random-state word"));
  auto scalars = [&](std::vector<T>& v, std::uint64_t count, const char* what) {
    const auto got = u64(what);
    if (got != count) throw fail(at - 8, std::to_string(count) + " " + what, std::to_string(got));
    need(count * sizeof(T), what);
    v.resize(count);
    for (auto& x : v) {
      x = std::bit_cast<T>(get_le<scalar_bits<T>>(bytes.data() + at));
      at += sizeof(T);
    }
  };
  scalars(c.model, M::parameter_count + M::buffer_scalars, "model scalars");
  scalars(c.state, Tr::optimizer_state_bytes / sizeof(T), "optimizer-state scalars");
  scalars(c.anchor, anchor_scalars, "L2-SP anchor scalars");
  if (n - at != 8)
    throw fail(at, "the checksum and the end of file", std::to_string(n - at) + " more bytes");
  return c;
}

/// Applies a validated checkpoint to the trainer's model and state (cannot fail).
template <class Tr, class Anchors>
void apply_checkpoint(Tr& t, const checkpoint_data<Tr>& c, Anchors& anchors) {
  using T = typename Tr::T;
  std::size_t k = 0;
  t.model().for_each_saved([&](std::size_t, T* p, std::size_t n) {
    std::copy_n(c.model.data() + k, n, p);
    k += n;
  });
  k = 0;
  t.for_each_optimizer_state([&](T* p, std::size_t n) {
    std::copy_n(c.state.data() + k, n, p);
    k += n;
  });
  k = 0;
  for_each_rng_word(t.model(), [&](std::uint64_t& w) { w = c.rng[k++]; });
  k = 0;
  anchors.for_each_anchor([&](std::vector<T>& a) {
    std::copy_n(c.anchor.data() + k, a.size(), a.begin());
    k += a.size();
  });
  t.restore_counters(c.pos.step, c.layer_steps);
}
}  // namespace detail

GRAFT_END_NAMESPACE
