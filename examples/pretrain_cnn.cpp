// Pre-trains the LeNet-5-like CNN (60,856 parameters in the backbone) with a 10-way classifier on
// Fashion-MNIST (or MNIST): 5 epochs of SGD (lr 0.05, momentum 0.9, batch 64); prints test
// accuracy.
//
//   pretrain_cnn [--dataset fashion-mnist|mnist] [--epochs N] [--seed S]
#include <cstdio>
#include <string>

#include <graft/graft.hpp>

namespace g = graft;

using lenet = g::stack<g::input<1, 28, 28>, g::conv2d<6, 5, g::pad<2>>, g::relu, g::max_pool<2>,
                       g::conv2d<16, 5>, g::relu, g::max_pool<2>, g::flatten, g::dense<120>,
                       g::relu, g::dense<84>, g::relu>;
using net_t = g::model<lenet, g::classifier<10>>;
static_assert(lenet::parameter_count == 60'856);

int main(int argc, char** argv) {
  std::string dataset = "fashion-mnist";
  std::size_t epochs = 5;
  std::uint64_t seed = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--dataset")
      dataset = v;
    else if (a == "--epochs")
      epochs = std::stoul(v);
    else if (a == "--seed")
      seed = std::stoull(v);
    else {
      std::fprintf(stderr,
                   "usage: pretrain_cnn [--dataset fashion-mnist|mnist] [--epochs N] [--seed S]\n");
      return 2;
    }
  }
  try {
    const auto data = dataset == "mnist" ? g::data::mnist() : g::data::fashion_mnist();
    std::printf("graft pretrain_cnn: %s\n", net_t::description().c_str());
    auto net = g::make_model<net_t>(g::seed{seed});
    const auto rep =
        g::pretrain(*net, data.train, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{epochs},
                    g::batch<64>, g::seed{seed}, g::on_epoch([](const g::epoch_info& e) {
                      std::printf("  epoch %zu  train loss %.4f  (%.1f s)\n", e.epoch + 1,
                                  e.mean_loss, e.seconds);
                      std::fflush(stdout);
                    }));
    const auto ev = g::evaluate(*net, data.test);
    std::printf("%s test accuracy: %.2f%%  (loss %.4f; %zu epochs, %.1f s, %.0f samples/s)\n",
                dataset.c_str(), 100.0 * ev.accuracy, ev.loss, rep.epochs, rep.seconds,
                rep.samples_per_second());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
