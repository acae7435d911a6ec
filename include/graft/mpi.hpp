// graft::mpi: data-parallel pretrain/finetune/evaluate over MPI (train/distributed.hpp). Not part
// of graft.hpp: include it in a program built with MPI (CMake: find_package(MPI), link
// MPI::MPI_CXX), run it with mpirun -np N; every rank makes the same calls.
//
//   int main(int argc, char** argv) {
//     graft::mpi::environment env(argc, argv);
//     graft::mpi::communicator comm;            // MPI_COMM_WORLD
//     my_net net;  net.initialize(graft::seed{1});
//     graft::pretrain(net, data, graft::adam{}, graft::batch<64>, graft::epochs{5},
//                     graft::distributed{&comm}, graft::shards{comm.size()});
//     if (comm.rank() == 0) net.save("model.graft");
//   }
//
// The weights end bitwise equal on every rank and equal to one process's with the same shards{S}
// (any rank count that divides S gives the same weights). Messages are non-blocking sends and
// receives polled until done: every wait is bounded by timeout (GRAFT_MPI_TIMEOUT seconds, 120 by
// default), and while it waits a rank listens for the failure notices of the others. A rank whose
// step fails (an exception, a non-finite loss) sends its message to every rank, and each throws
// rank_failure naming the rank and the step. A process that dies is noticed by mpirun, which stops
// the job; one that hangs is noticed at the timeout. After a failure, environment's destructor
// finalizes MPI with a bounded wait (grace, 10 s) and otherwise ends the process, so a run never
// hangs on its way out either.
#pragma once
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <stdexcept>
#include <string>
#include <thread>

#include "graft/train/distributed.hpp"

GRAFT_BEGIN_NAMESPACE
namespace mpi {

namespace detail {
/// Set once a rank failed or saw a failure: environment then finalizes with a bounded wait.
inline std::atomic<bool>& failed() {
  static std::atomic<bool> f{false};
  return f;
}
inline void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string("graft::mpi: ") + what + ": " + text);
}
inline double seconds_from_env(const char* name, double def) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(s > 0))
    throw std::invalid_argument(std::string("graft::mpi: ") + name + "='" + v +
                                "' is not a positive number of seconds");
  return s;
}
}  // namespace detail

/// MPI_Init and MPI_Finalize. After a failure (detail::failed) the destructor finalizes with a
/// bounded wait: a watchdog ends the process with exit code 1 after `grace` seconds, which makes
/// mpirun stop the job.
class environment {
 public:
  environment(int& argc, char**& argv, double grace_seconds = 10) : grace_(grace_seconds) {
    int ready = 0;
    MPI_Initialized(&ready);
    if (ready == 0) detail::check(MPI_Init(&argc, &argv), "MPI_Init");
  }
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;
  ~environment() {
    int done = 0;
    MPI_Finalized(&done);
    if (done != 0) return;
    if (detail::failed().load()) {
      std::thread([g = grace_] {
        std::this_thread::sleep_for(std::chrono::duration<double>(g));
        std::fputs("graft::mpi: MPI_Finalize did not return after a failure; exiting\n", stderr);
        std::_Exit(1);
      }).detach();
    }
    MPI_Finalize();
  }

 private:
  double grace_;
};

/// A graft::collective over an MPI communicator (MPI_COMM_WORLD by default). Waits end after
/// `timeout` seconds (GRAFT_MPI_TIMEOUT, 120 by default) with rank_failure naming the rank waited
/// for and the step.
class communicator final : public collective {
 public:
  explicit communicator(MPI_Comm comm = MPI_COMM_WORLD,
                        double timeout_seconds = detail::seconds_from_env("GRAFT_MPI_TIMEOUT", 120))
      : timeout_(timeout_seconds) {
    detail::check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    int r = 0, n = 0;
    MPI_Comm_rank(comm_, &r);
    MPI_Comm_size(comm_, &n);
    rank_ = static_cast<std::size_t>(r);
    size_ = static_cast<std::size_t>(n);
  }
  communicator(const communicator&) = delete;
  communicator& operator=(const communicator&) = delete;
  ~communicator() override {
    int done = 0;
    MPI_Finalized(&done);
    if (done == 0 && !detail::failed().load()) MPI_Comm_free(&comm_);
  }
  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return size_; }
  MPI_Comm handle() const noexcept { return comm_; }

  /// Seconds spent in send and receive so far (waiting for the other ranks included).
  double seconds_communicating() const noexcept { return comm_seconds_; }
  /// Bytes sent so far.
  std::size_t bytes_sent() const noexcept { return bytes_sent_; }

  void send(std::size_t to, const void* data, std::size_t bytes) override {
    const auto t0 = clock::now();
    const auto* p = static_cast<const char*>(data);
    std::size_t done = 0;
    do {  // MPI's count is an int: large buffers go in pieces (in order: same source, tag, comm)
      const int n = chunk(bytes - done);
      MPI_Request req = MPI_REQUEST_NULL;
      detail::check(MPI_Isend(p + done, n, MPI_BYTE, static_cast<int>(to), data_tag, comm_, &req),
                    "MPI_Isend");
      wait(req, to, "send to");
      done += static_cast<std::size_t>(n);
    } while (done < bytes);
    bytes_sent_ += bytes;
    comm_seconds_ += seconds_since(t0);
  }

  void receive(std::size_t from, void* data, std::size_t bytes) override {
    const auto t0 = clock::now();
    auto* p = static_cast<char*>(data);
    std::size_t done = 0;
    do {
      const int n = chunk(bytes - done);
      MPI_Request req = MPI_REQUEST_NULL;
      detail::check(MPI_Irecv(p + done, n, MPI_BYTE, static_cast<int>(from), data_tag, comm_, &req),
                    "MPI_Irecv");
      MPI_Status st{};
      wait(req, from, "receive from", &st);
      int got = 0;
      MPI_Get_count(&st, MPI_BYTE, &got);
      if (got != n)
        fail_here("graft::mpi: rank " + std::to_string(rank_) + " received " + std::to_string(got) +
                  " bytes from rank " + std::to_string(from) + ", expected " + std::to_string(n) +
                  " (step " + std::to_string(step) + "): the ranks do not run the same program");
      done += static_cast<std::size_t>(n);
    } while (done < bytes);
    comm_seconds_ += seconds_since(t0);
  }

  void fail(const std::string& message) noexcept override {
    detail::failed().store(true);
    try {
      // the text must outlive the sends, which nobody waits for: kept until the process ends
      // (a list: its elements never move)
      static std::list<std::string> kept;
      const std::string& text = kept.emplace_back(message);
      // fire and forget: the notices are small (sent eagerly)
      for (std::size_t r = 0; r < size_; ++r) {
        if (r == rank_) continue;
        MPI_Request req = MPI_REQUEST_NULL;
        if (MPI_Isend(text.data(), static_cast<int>(text.size()), MPI_CHAR, static_cast<int>(r),
                      fail_tag, comm_, &req) == MPI_SUCCESS)
          MPI_Request_free(&req);
      }
    } catch (...) {  // no memory: the others stop at their timeout
    }
  }

 private:
  using clock = std::chrono::steady_clock;
  static constexpr int data_tag = 1;
  static constexpr int fail_tag = 2;
  static int chunk(std::size_t left) {
    constexpr std::size_t most = std::size_t{1} << 30;
    return static_cast<int>(left < most ? left : most);
  }
  static std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", s);
    return buf;
  }
  static double seconds_since(clock::time_point t0) {
    return std::chrono::duration<double>(clock::now() - t0).count();
  }

  // A failure noticed here (a timeout, a wrong message size): tell the others, then throw.
  [[noreturn]] void fail_here(const std::string& message) {
    fail(message);
    throw rank_failure(message);
  }

  // Polls req until it completes; meanwhile listens for another rank's failure notice and watches
  // the deadline. Spins for the first millisecond, then sleeps between polls (up to 200 us) so
  // that a waiting rank leaves the core to the ones computing.
  void wait(MPI_Request& req, std::size_t peer, const char* what, MPI_Status* status = nullptr) {
    const auto t0 = clock::now();
    const auto deadline = t0 + std::chrono::duration<double>(timeout_);
    auto pause = std::chrono::microseconds(10);
    for (;;) {
      int done = 0;
      MPI_Status st{};
      detail::check(MPI_Test(&req, &done, &st), "MPI_Test");
      if (done != 0) {
        if (status != nullptr) *status = st;
        return;
      }
      int flag = 0;
      MPI_Status fs{};
      MPI_Iprobe(MPI_ANY_SOURCE, fail_tag, comm_, &flag, &fs);
      if (flag != 0) {
        int len = 0;
        MPI_Get_count(&fs, MPI_CHAR, &len);
        std::string text(static_cast<std::size_t>(len), '\0');
        MPI_Recv(text.data(), len, MPI_CHAR, fs.MPI_SOURCE, fail_tag, comm_, MPI_STATUS_IGNORE);
        cancel(req);
        detail::failed().store(true);
        throw rank_failure(text);
      }
      const auto now = clock::now();
      if (now > deadline) {
        cancel(req);
        fail_here("graft: data-parallel training stopped: rank " + std::to_string(rank_) +
                  " waited " + seconds_text(timeout_) + " s to " + what + " rank " +
                  std::to_string(peer) + " at step " + std::to_string(step) +
                  " (GRAFT_MPI_TIMEOUT)");
      }
      if (now - t0 > std::chrono::milliseconds(1)) {
        std::this_thread::sleep_for(pause);
        if (pause < std::chrono::microseconds(200)) pause *= 2;
      }
    }
  }
  static void cancel(MPI_Request& req) noexcept {
    if (req == MPI_REQUEST_NULL) return;
    MPI_Cancel(&req);
    MPI_Request_free(&req);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::size_t rank_ = 0, size_ = 1;
  double timeout_;
  double comm_seconds_ = 0;
  std::size_t bytes_sent_ = 0;
};

}  // namespace mpi
GRAFT_END_NAMESPACE
