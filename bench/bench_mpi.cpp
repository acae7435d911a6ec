// Google Benchmark under MPI (graft/mpi.hpp): data-parallel pre-training of the MLP, LeNet and the
// small ResNet, batch 64 (SGD with momentum) on Fashion-MNIST images (random images when it is not
// installed; said in the context). Run it with mpirun -np 1 and -np 2: every rank runs the same
// benchmarks with fixed iteration counts (so that the ranks stay in step); rank 0 alone reports.
// An iteration is one pretrain call of 20 steps with shards{N} (N processes; with one process the
// plain step). Counters: comm_ms_per_step (rank 0's time in send and receive, waiting for the
// other ranks included), bytes_per_step (what rank 0 sends per step: the gradient and the batch
// statistics, plus a double for the loss) and the gradient's size. items/s = samples/s of the
// whole job. tools/mpi_table.py turns the JSON of the two runs into the README's scaling table
// (./run bench does both). GRAFT_THREADS sets the threads per process (1 by default here).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <graft/graft.hpp>
#include <graft/mpi.hpp>

#include "../examples/support/backbones.hpp"

namespace g = graft;

namespace {
using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
constexpr std::size_t steps_per_iteration = 20;

g::mpi::communicator* comm = nullptr;
const g::data::dataset* data = nullptr;

template <class Backbone> void BM_data_parallel(benchmark::State& state) {
  using net_t = g::model<Backbone, g::classifier<10>>;
  auto net = std::make_unique<net_t>();
  net->initialize(g::seed{1});
  const double comm0 = comm->seconds_communicating();
  const std::size_t bytes0 = comm->bytes_sent();
  for (auto _ : state)
    g::pretrain(*net, *data, g::sgd{.lr = 0.01F, .momentum = 0.9F}, g::batch<64>,
                g::steps{steps_per_iteration}, g::shards{comm->size()}, g::distributed{comm},
                g::progress{false});
  const auto steps = static_cast<double>(state.iterations() * steps_per_iteration);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * steps_per_iteration * 64));
  state.counters["processes"] = static_cast<double>(comm->size());
  state.counters["threads"] = g::parallel::threads();
  state.counters["gradient_bytes"] = static_cast<double>(net_t::parameter_count * sizeof(float));
  state.counters["comm_ms_per_step"] = 1e3 * (comm->seconds_communicating() - comm0) / steps;
  state.counters["bytes_per_step"] = static_cast<double>(comm->bytes_sent() - bytes0) / steps;
}
BENCHMARK(BM_data_parallel<mlp>)
    ->Name("mpi_mlp_pretrain_batch64")
    ->Iterations(40)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_data_parallel<backbones::lenet>)
    ->Name("mpi_lenet_pretrain_batch64")
    ->Iterations(6)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_data_parallel<backbones::resnet>)
    ->Name("mpi_resnet_pretrain_batch64")
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);

class null_reporter final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};
}  // namespace

static int main_of_rank(int argc, char** argv) {
  g::mpi::environment env(argc, argv);
  g::mpi::communicator world;
  comm = &world;
  if (std::getenv("GRAFT_THREADS") == nullptr) g::parallel::set_threads(1);
  // the same data on every rank: the first 4,096 Fashion-MNIST training images
  g::data::dataset train;
  std::string source = "fashion-mnist (first 4096 training images)";
  try {
    train = g::data::fashion_mnist().train.take(4096);
  } catch (const g::data_error&) {
    source = "random images (Fashion-MNIST not installed)";
    std::vector<float> x(std::size_t{4096} * 784);
    std::vector<std::int32_t> y(4096);
    g::splitmix64 rng(3);
    for (auto& v : x) v = static_cast<float>(rng.uniform01());
    for (auto& v : y) v = static_cast<std::int32_t>(rng.below(10));
    train = g::data::make_classification("random", {1, 28, 28}, std::move(x), std::move(y), 10);
  }
  data = &train;
  // only rank 0 writes --benchmark_out: the others drop it
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i)
    if (world.rank() == 0 || std::strncmp(argv[i], "--benchmark_out", 15) != 0)
      args.push_back(argv[i]);
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::AddCustomContext("data", source);
  benchmark::AddCustomContext("mpi_processes", std::to_string(world.size()));
  if (world.rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    null_reporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
  return 0;
}

int main(int argc, char** argv) {
  try {
    return main_of_rank(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_mpi: %s\n", e.what());
    return 1;
  }
}
