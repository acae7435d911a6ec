// Pre-trains an image backbone with a 10-way classifier on Fashion-MNIST (or MNIST) and prints
// the test accuracy: the LeNet-5-like CNN (60,856 parameters in the backbone) or the small ResNet
// of examples/support/backbones.hpp. 5 epochs of SGD (lr 0.05, momentum 0.9, batch 64).
//
//   pretrain_cnn [--backbone lenet|resnet] [--dataset fashion-mnist|mnist] [--epochs N] [--seed S]
//                [--save file.graft]
#include <cstdio>
#include <string>

#include <graft/graft.hpp>

#include "support/backbones.hpp"

namespace g = graft;

namespace {
struct settings {
  std::string dataset = "fashion-mnist";
  std::size_t epochs = 5;
  std::uint64_t seed = 0;
  std::string save;
};

template <class Backbone> int run(const settings& s) {
  using net_t = g::model<Backbone, g::classifier<10>>;
  const auto data = s.dataset == "mnist" ? g::data::mnist() : g::data::fashion_mnist();
  std::printf("graft pretrain_cnn: %s\n  %zu parameters, %zu running statistics\n",
              net_t::description().c_str(), net_t::parameter_count, net_t::buffer_scalars);
  auto net = g::make_model<net_t>(g::seed{s.seed});
  const auto rep =
      g::pretrain(*net, data.train, g::sgd{.lr = 0.05f, .momentum = 0.9f}, g::epochs{s.epochs},
                  g::batch<64>, g::seed{s.seed}, g::on_epoch([](const g::epoch_info& e) {
                    std::printf("  epoch %zu  train loss %.4f  (%.1f s)\n", e.epoch + 1,
                                e.mean_loss, e.seconds);
                    std::fflush(stdout);
                  }));
  const auto ev = g::evaluate(*net, data.test);
  std::printf("%s test accuracy: %.2f%%  (loss %.4f; %zu epochs, %.1f s, %.0f samples/s)\n",
              s.dataset.c_str(), 100.0 * ev.accuracy, ev.loss, rep.epochs, rep.seconds,
              rep.samples_per_second());
  if (!s.save.empty()) g::save(*net, s.save);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  settings s;
  std::string backbone = "lenet";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--backbone" && (v == "lenet" || v == "resnet"))
      backbone = v;
    else if (a == "--dataset")
      s.dataset = v;
    else if (a == "--epochs")
      s.epochs = std::stoul(v);
    else if (a == "--seed")
      s.seed = std::stoull(v);
    else if (a == "--save")
      s.save = v;
    else {
      std::fprintf(stderr,
                   "usage: pretrain_cnn [--backbone lenet|resnet] [--dataset fashion-mnist|mnist] "
                   "[--epochs N] [--seed S] [--save file.graft]\n");
      return 2;
    }
  }
  try {
    return backbone == "resnet" ? run<backbones::resnet>(s) : run<backbones::lenet>(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
