// Pre-trains an MLP 784-256-128 with a 10-way classifier on Fashion-MNIST (or MNIST):
// 5 epochs of SGD (lr 0.05, momentum 0.9, batch 64), prints test accuracy, saves the weights.
//
//   pretrain_mlp [--dataset fashion-mnist|mnist] [--epochs N] [--seed S] [--out FILE]
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <graft/graft.hpp>

namespace g = graft;

using mlp =
    g::stack<g::input<1, 28, 28>, g::flatten, g::dense<256>, g::relu, g::dense<128>, g::relu>;
using net_t = g::model<mlp, g::classifier<10>>;
static_assert(mlp::parameter_count == 233'856);
static_assert(net_t::parameter_count == 235'146);

int main(int argc, char** argv) {
  std::string dataset = "fashion-mnist", out;
  std::size_t epochs = 5;
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pretrain_mlp: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dataset")
      dataset = value();
    else if (a == "--epochs")
      epochs = std::stoul(value());
    else if (a == "--seed")
      seed = std::stoull(value());
    else if (a == "--out")
      out = value();
    else {
      std::fprintf(stderr,
                   "usage: pretrain_mlp [--dataset fashion-mnist|mnist] [--epochs N] [--seed S] "
                   "[--out FILE]\n");
      return 2;
    }
  }
  if (dataset != "fashion-mnist" && dataset != "mnist") {
    std::fprintf(stderr, "pretrain_mlp: unknown dataset '%s' (fashion-mnist or mnist)\n",
                 dataset.c_str());
    return 2;
  }
  if (out.empty()) out = "mlp_" + dataset + ".graft";
  try {
    const auto data = dataset == "mnist" ? g::data::mnist() : g::data::fashion_mnist();
    std::cout << "graft pretrain_mlp: " << net_t::description() << "\n"
              << "  " << net_t::parameter_count << " parameters, " << data.train.size()
              << " training and " << data.test.size() << " test images of " << dataset << "\n";
    auto net = g::make_model<net_t>(g::seed{seed});
    const auto rep =
        g::pretrain(*net, data.train, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{epochs},
                    g::batch<64>, g::seed{seed}, g::on_epoch([&](const g::epoch_info& e) {
                      std::printf("  epoch %zu  train loss %.4f  (%.1f s)\n", e.epoch + 1,
                                  e.mean_loss, e.seconds);
                      std::fflush(stdout);
                    }));
    const auto ev = g::evaluate(*net, data.test);
    std::printf("%s test accuracy: %.2f%%  (loss %.4f; %zu epochs, %.1f s, %.0f samples/s)\n",
                dataset.c_str(), 100.0 * ev.accuracy, ev.loss, rep.epochs, rep.seconds,
                rep.samples_per_second());
    g::save(*net, out);
    std::printf("weights saved to %s\n", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
