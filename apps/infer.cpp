// infer: classifies the Fashion-MNIST test set with a trained LeNet-BN, from lenet_bn's
// --export-folded file (batch norm folded), a --save checkpoint or a saved unfolded model, and
// prints the accuracy and images/sec (evaluation mode, no tape). Each convolution with the sigmoid
// and average pool after it runs as one layer (nn::utils::fuse_conv_activation) unless --no-fuse.
// Any error becomes one line on stderr and exit code 1. Layer: apps.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "apps/lenet/checkpoint.h"
#include "tapegrad/data/dataloader.h"
#include "tapegrad/data/fashion_mnist.h"

int main(int argc, char** argv) try {
  CLI::App app{"Classify the Fashion-MNIST test set with a trained LeNet-BN"};
  std::string model_path, data_dir = tg::data::kFashionMNISTRoot;
  std::int64_t batch_size = 256;
  int threads = 0;
  bool fold = false, fuse = true;
  app.add_option("model", model_path, "lenet_bn --export-folded file, --save checkpoint, or saved model")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--data-dir", data_dir, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--batch-size", batch_size, "images per batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads for kernels and BLAS (default: all cores)")->check(CLI::PositiveNumber);
  app.add_flag("--fold", fold, "fold batch norm into the layers before classifying (an unfolded model)");
  app.add_flag("--fuse,!--no-fuse", fuse,
               "run each convolution with the activation and 2x2 average pool after it as one layer (default: on)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "infer: %s (see --help)\n", e.what());
    return 2;
  }
  if (threads > 0) tg::set_num_threads(threads);

  lenet::InferenceModel m = lenet::load_for_inference(model_path);
  if (fold && !m.folded) m = {tg::nn::utils::fold_batchnorm(m.net), true};
  if (fuse) m.net = tg::nn::utils::fuse_conv_activation(m.net);
  tg::data::FashionMNIST test_set(data_dir, false);
  tg::NoGradGuard no_grad;
  std::int64_t correct = 0, total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& [X, y] : tg::data::DataLoader(test_set, {.batch_size = batch_size})) {
    correct += m.net(X).argmax(1).eq(y).sum().item<std::int64_t>();
    total += y.numel();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("LeNet-BN (%s%s) from %s: test accuracy %.4f (%lld images), %.0f images/sec (batch %lld, %d threads)\n",
              m.folded ? "batch norm folded" : "batch norm unfolded", fuse ? ", conv epilogues fused" : "",
              model_path.c_str(),
              total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0, static_cast<long long>(total),
              static_cast<double>(total) / seconds, static_cast<long long>(batch_size), tg::get_num_threads());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "infer: %s\n", e.what());
  return 1;
}
