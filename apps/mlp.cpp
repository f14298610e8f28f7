// mlp: d2l's multilayer perceptron (Flatten, Linear 784→256, ReLU, Linear 256→10, weights drawn
// from N(0, 0.01²)) on Fashion-MNIST, trained with Adam, a cosine learning-rate schedule over all
// the batches (stepped per batch), and the gradients clipped to a total norm. One line per epoch;
// any error becomes one line on stderr and exit code 1. Layer: apps.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "tapegrad.h"

namespace nn = tg::nn;

int main(int argc, char** argv) try {
  CLI::App app{"Train d2l's MLP on Fashion-MNIST with Adam, a cosine schedule and clipped gradients"};
  std::int64_t epochs = 10, batch_size = 256, seed = 0;
  double lr = 1e-3, max_norm = 1.0;
  int threads = 0;
  std::string data_dir = tg::data::kFashionMNISTRoot;
  app.add_option("--epochs", epochs, "number of epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "examples per batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "Adam's learning rate, annealed to 0 by the last batch")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-norm", max_norm, "clip the gradients' total 2-norm to this")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_option("--threads", threads, "threads for kernels and BLAS (default: all cores)")->check(CLI::PositiveNumber);
  app.add_option("--data-dir", data_dir, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mlp: %s (see --help)\n", e.what());
    return 2;
  }
  if (threads > 0) tg::set_num_threads(threads);

  tg::data::FashionMNIST train_set(data_dir, true), test_set(data_dir, false);
  tg::manual_seed(static_cast<std::uint64_t>(seed));
  nn::Sequential net(nn::Flatten(), nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 10));
  for (const auto& [name, p] : net.named_parameters())
    if (name.ends_with(".weight")) nn::init::normal_(p, 0.0, 0.01);  // d2l's init_weights

  tg::data::DataLoader loader(train_set, {.batch_size = batch_size, .shuffle = true});
  tg::data::DataLoader test_loader(test_set, {.batch_size = 1024});
  tg::optim::Adam opt(net.parameters(), {.lr = lr});
  tg::optim::CosineAnnealingLR schedule(opt, epochs * loader.num_batches());
  nn::CrossEntropyLoss loss_fn;
  std::printf("MLP on Fashion-MNIST: %lld train / %lld test images, batch %lld, Adam lr %g (cosine), max grad norm %g\n",
              static_cast<long long>(train_set.size()), static_cast<long long>(test_set.size()),
              static_cast<long long>(batch_size), lr, max_norm);
  for (std::int64_t epoch = 1; epoch <= epochs; ++epoch) {
    net.train();
    double loss_sum = 0, norm_sum = 0;
    std::int64_t correct = 0, seen = 0, batches = 0;
    for (const auto& [X, y] : loader) {
      tg::Tensor y_hat = net(X);
      tg::Tensor loss = loss_fn(y_hat, y);
      opt.zero_grad();
      loss.backward();
      norm_sum += nn::utils::clip_grad_norm_(net.parameters(), max_norm);
      opt.step();
      schedule.step();
      tg::NoGradGuard no_grad;
      loss_sum += loss.item<double>() * static_cast<double>(y.numel());
      correct += y_hat.argmax(1).eq(y).sum().item<std::int64_t>();
      seen += y.numel();
      ++batches;
    }
    net.eval();
    std::int64_t test_correct = 0;
    {
      tg::NoGradGuard no_grad;
      for (const auto& [X, y] : test_loader) test_correct += net(X).argmax(1).eq(y).sum().item<std::int64_t>();
    }
    std::printf("epoch %lld/%lld  loss %.4f  train acc %.3f  test acc %.3f  grad norm %.3f  lr %.3g\n",
                static_cast<long long>(epoch), static_cast<long long>(epochs), loss_sum / static_cast<double>(seen),
                static_cast<double>(correct) / static_cast<double>(seen),
                static_cast<double>(test_correct) / static_cast<double>(test_set.size()),
                norm_sum / static_cast<double>(batches), opt.lr());
    std::fflush(stdout);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mlp: %s\n", e.what());
  return 1;
}
