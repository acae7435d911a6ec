// Data-parallel pre-training over MPI processes (graft/mpi.hpp), run by ctest through mpirun.
//
//   mpirun -np N mpi_train --model mlp|lenet|resnet [--samples 1024] [--steps 30] [--shards S]
//          [--check] [--checkpoint PATH --every K [--resume]]
//          [--fault exception|nan|kill|hang --fault-rank R --fault-step K]
//
// Every rank pre-trains the model on the first `samples` Fashion-MNIST training images (SGD with
// momentum, batch 64, shards{S}, S = N by default), then evaluates it on 1,000 test images with the
// evaluation spread over the ranks. Rank 0 collects every rank's weight hash: they must be equal.
// --check: rank 0 then trains the same model in one process with shards{S} (no MPI) and requires
// bitwise the same weights, and the same evaluation. --fault makes rank R fail after step K (an
// exception, NaN in its data from step K + 1 on, SIGKILL, or a hang); the others must stop with an
// error naming the rank and the step (tests/mpi/fault.sh checks what mpirun prints and how long it
// took). Exit code: 0 on success, 1 on an error, 77 when Fashion-MNIST is not installed (skipped;
// a failure with GRAFT_REQUIRE_DATA).
#include <graft/graft.hpp>
#include <graft/mpi.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/backbones.hpp"

namespace g = graft;
using backbones::lenet;
using backbones::resnet;

namespace {

struct settings {
  std::string model = "mlp", fault, checkpoint;
  std::size_t samples = 1024, steps = 30, shards = 0, fault_rank = 1, fault_step = 5, every = 10;
  bool check = false, resume = false;
};

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;

std::uint64_t weight_hash(const auto& net) {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a over every saved scalar's bytes
  net.for_each_saved([&](std::size_t, const float* p, std::size_t k) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < k * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ULL;
  });
  return h;
}

template <class Backbone> int run(const settings& s, g::mpi::communicator& comm,
                                  g::data::dataset& train, const g::data::dataset& test) {
  using net_t = g::model<Backbone, g::classifier<10>>;
  const std::size_t shards = s.shards == 0 ? comm.size() : s.shards;
  const bool lead = comm.rank() == 0;
  const bool faulty = !s.fault.empty() && comm.rank() == s.fault_rank;
  // the injected faults, on rank fault_rank after its step fault_step
  auto fault = g::on_step([&](const g::step_info& st) {
    if (!faulty || st.step != s.fault_step) return;
    if (s.fault == "exception") throw std::runtime_error("injected fault");
    if (s.fault == "nan") std::fill(train.features.begin(), train.features.end(), std::nanf(""));
    if (s.fault == "kill") std::raise(SIGKILL);
    if (s.fault == "hang")
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  });
  auto net = std::make_unique<net_t>();
  net->initialize(g::seed{7});
  const auto opt = g::sgd{.lr = 0.05F, .momentum = 0.9F};
  const auto t0 = std::chrono::steady_clock::now();
  // the data set is read at every step (feature_cache{false}: no copy of the inputs made before the
  // first step), so that --fault nan reaches the steps after it
  auto train_on = [&](net_t& n, auto... extra) {
    if (s.checkpoint.empty())
      return g::pretrain(n, train, opt, g::batch<64>, g::steps{s.steps}, g::seed{11},
                         g::shards{shards}, g::progress{false}, g::feature_cache{false}, extra...);
    if (s.resume)
      return g::pretrain(n, train, opt, g::batch<64>, g::steps{s.steps}, g::seed{11},
                         g::shards{shards}, g::progress{false}, g::feature_cache{false},
                         g::checkpoint{s.checkpoint, s.every}, g::resume{s.checkpoint}, extra...);
    return g::pretrain(n, train, opt, g::batch<64>, g::steps{s.steps}, g::seed{11},
                       g::shards{shards}, g::progress{false}, g::feature_cache{false},
                       g::checkpoint{s.checkpoint, s.every}, extra...);
  };
  const auto rep = train_on(*net, g::distributed{&comm}, fault);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto ev = g::evaluate(*net, test, g::batch<100>, g::distributed{&comm});

  // every rank's weights: equal
  const std::uint64_t mine = weight_hash(*net);
  int failures = 0;
  if (!lead) {
    comm.send(0, &mine, sizeof mine);
    return 0;
  }
  for (std::size_t r = 1; r < comm.size(); ++r) {
    std::uint64_t theirs = 0;
    comm.receive(r, &theirs, sizeof theirs);
    if (theirs != mine) {
      std::cerr << "FAIL: rank " << r << "'s weights differ from rank 0's\n";
      ++failures;
    }
  }
  std::cout << s.model << ": " << comm.size() << " processes, shards{" << shards << "}, "
            << rep.steps << " steps of batch 64 in " << seconds << " s; communication "
            << 1e3 * comm.seconds_communicating() / static_cast<double>(rep.steps)
            << " ms/step, rank 0 sent " << comm.bytes_sent() / rep.steps
            << " bytes/step; final loss " << rep.final_loss << "; test: " << ev << "\n";
  if (s.check) {
    auto ref = std::make_unique<net_t>();
    ref->initialize(g::seed{7});
    const auto ref_rep = g::pretrain(*ref, train, opt, g::batch<64>, g::steps{s.steps}, g::seed{11},
                                     g::shards{shards}, g::progress{false});
    const auto ref_ev = g::evaluate(*ref, test, g::batch<100>);
    const bool same = weight_hash(*ref) == mine;
    std::cout << "one process, shards{" << shards << "}: final loss " << ref_rep.final_loss
              << "; weights " << (same ? "bitwise equal" : "DIFFERENT") << " to the " << comm.size()
              << "-process run's\n";
    if (!same) ++failures;
    if (!(ref_ev.loss == ev.loss) || ref_ev.confusion != ev.confusion) {
      std::cerr << "FAIL: the distributed evaluation differs from one process's: " << ref_ev
                << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

static int main_of_rank(int argc, char** argv) {
  g::mpi::environment env(argc, argv);
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "mpi_train: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&] { return static_cast<std::size_t>(std::stoul(value())); };
    if (a == "--model")
      s.model = value();
    else if (a == "--samples")
      s.samples = number();
    else if (a == "--steps")
      s.steps = number();
    else if (a == "--shards")
      s.shards = number();
    else if (a == "--check")
      s.check = true;
    else if (a == "--checkpoint")
      s.checkpoint = value();
    else if (a == "--every")
      s.every = number();
    else if (a == "--resume")
      s.resume = true;
    else if (a == "--fault")
      s.fault = value();
    else if (a == "--fault-rank")
      s.fault_rank = number();
    else if (a == "--fault-step")
      s.fault_step = number();
    else {
      std::cerr << "mpi_train: unknown argument " << a << "\n";
      return 2;
    }
  }
  g::mpi::communicator comm;
  g::data::split data;
  try {
    data = g::data::fashion_mnist();
  } catch (const g::data_error& e) {
    if (comm.rank() == 0) std::cerr << "mpi_train: Fashion-MNIST not found: " << e.what() << "\n";
    return std::getenv("GRAFT_REQUIRE_DATA") != nullptr ? 1 : 77;
  }
  auto train = data.train.take(s.samples);
  const auto test = data.test.take(1000);
  try {
    if (s.model == "mlp") return run<mlp>(s, comm, train, test);
    if (s.model == "lenet") return run<lenet>(s, comm, train, test);
    if (s.model == "resnet") return run<resnet>(s, comm, train, test);
    std::cerr << "mpi_train: unknown model " << s.model << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "[rank " << comm.rank() << "] error: " << e.what() << "\n";
    return 1;
  }
}

int main(int argc, char** argv) {
  try {
    return main_of_rank(argc, argv);
  } catch (const std::exception& e) {  // MPI_Init, the communicator, the data set
    std::cerr << "mpi_train: " << e.what() << "\n";
    return 1;
  }
}
