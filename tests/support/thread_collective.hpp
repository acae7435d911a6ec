// graft::collective over threads of one process: the tests of data-parallel training run N ranks
// as N threads (no MPI needed), each with its own model. Waits are bounded (timeout_ms): a rank
// that never answers makes receive throw instead of hanging the test.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <graft/train/distributed.hpp>

namespace graft_test {

/// What the N ranks share: a mailbox per (from, to) pair and each rank's failure notice.
struct thread_world {
  explicit thread_world(std::size_t n, long timeout_ms = 20000)
      : size(n), timeout(timeout_ms), boxes(n * n), failures(n) {}
  std::size_t size;
  std::chrono::milliseconds timeout;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::deque<std::vector<unsigned char>>> boxes;  // [from * size + to]
  std::vector<std::string> failures;                          // [to]: a notice for this rank
};

class thread_collective final : public graft::collective {
 public:
  thread_collective(thread_world& w, std::size_t rank) : w_(&w), rank_(rank) {}
  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return w_->size; }
  void send(std::size_t to, const void* data, std::size_t bytes) override {
    const auto* p = static_cast<const unsigned char*>(data);
    {
      const std::lock_guard<std::mutex> lock(w_->mu);
      w_->boxes[rank_ * w_->size + to].emplace_back(p, p + bytes);
    }
    w_->cv.notify_all();
  }
  void receive(std::size_t from, void* data, std::size_t bytes) override {
    std::unique_lock<std::mutex> lock(w_->mu);
    auto& box = w_->boxes[from * w_->size + rank_];
    const bool ready = w_->cv.wait_for(
        lock, w_->timeout, [&] { return !box.empty() || !w_->failures[rank_].empty(); });
    // a message sent before the sender failed is still delivered (as MPI does): only a wait
    // with nothing to read ends in the failure
    if (box.empty() && !w_->failures[rank_].empty()) throw graft::rank_failure(w_->failures[rank_]);
    if (!ready)
      throw std::runtime_error("thread_collective: rank " + std::to_string(rank_) +
                               " waited too long for rank " + std::to_string(from) + " at step " +
                               std::to_string(step));
    if (box.front().size() != bytes)
      throw std::runtime_error("thread_collective: message of " +
                               std::to_string(box.front().size()) + " bytes, expected " +
                               std::to_string(bytes));
    std::memcpy(data, box.front().data(), bytes);
    box.pop_front();
  }
  void fail(const std::string& message) noexcept override {
    try {
      {
        const std::lock_guard<std::mutex> lock(w_->mu);
        for (std::size_t r = 0; r < w_->size; ++r)
          if (r != rank_ && w_->failures[r].empty()) w_->failures[r] = message;
      }
      w_->cv.notify_all();
    } catch (...) {
    }
  }

 private:
  thread_world* w_;
  std::size_t rank_;
};

}  // namespace graft_test
