// graft::collective: the point-to-point messages of a data-parallel run (train/distributed.hpp,
// evaluate with distributed{&comm}). graft/mpi.hpp implements it over MPI; the tests over threads.
// Light header.
#pragma once
#include <cstddef>
#include <string>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE

/// The messages a data-parallel run sends: point to point, in order between two ranks.
/// graft/mpi.hpp implements it with MPI; the tests with threads. Every wait is bounded by the
/// implementation.
class collective {
 public:
  collective() = default;
  collective(const collective&) = delete;
  collective& operator=(const collective&) = delete;
  virtual ~collective() = default;
  virtual std::size_t rank() const = 0;
  virtual std::size_t size() const = 0;
  /// Sends `bytes` bytes to rank `to`.
  virtual void send(std::size_t to, const void* data, std::size_t bytes) = 0;
  /// Receives exactly `bytes` bytes from rank `from`; throws rank_failure when a rank reports a
  /// failure (fail) while this one waits.
  virtual void receive(std::size_t from, void* data, std::size_t bytes) = 0;
  /// Tells every other rank that this one failed with `message`; does not wait for them.
  virtual void fail(const std::string& message) noexcept = 0;
  /// The step being exchanged (1-based; 0 before training), for messages of the transport.
  std::size_t step = 0;
};

/// The one order in which graft combines values across the ranks (a training step's gradient, an
/// evaluation's sums, the end-of-run barrier): rank r > 0 takes the running value from rank r - 1,
/// every rank adds its own part and passes the value to rank r + 1, and the last rank sends the
/// total to every other rank, which takes it. take(from) receives into the running value
/// (replacing it), add() folds in this rank's part, give(to) sends the running value. The
/// additions happen in rank order whatever the transport, so a result never depends on the MPI
/// library's reduction algorithm.
template <class Take, class Add, class Give>
void combine_in_rank_order(collective& comm, Take&& take, Add&& add, Give&& give) {
  const std::size_t me = comm.rank(), n = comm.size();
  if (me > 0) take(me - 1);
  add();
  if (me + 1 < n) {
    give(me + 1);
    take(n - 1);
  } else {
    for (std::size_t r = 0; r + 1 < n; ++r) give(r);
  }
}

GRAFT_END_NAMESPACE
