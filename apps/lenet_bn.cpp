// lenet_bn: d2l's LeNet with batch normalization trained on the real Fashion-MNIST, with d2l's
// recipe by default (SGD lr 1.0, batch 256, 10 epochs). Progress, metrics CSV, SVG plot,
// checkpoints and resume. Under `mpiexec -n W` (tapegrad built with MPI) it trains data-parallel:
// each rank takes its share of every batch of --batch-size, only rank 0 prints and writes files;
// --sync-bn converts the batch norms to SyncBatchNorm. Any error becomes one line on stderr and
// exit code 1 (on one rank of a job, the whole job ends). Layer: apps.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "apps/lenet/checkpoint.h"
#include "apps/lenet/trainer.h"
#include "tapegrad/data/fashion_mnist.h"

namespace {

#if TG_WITH_MPI
// Whether an MPI launcher (Open MPI's mpiexec, or a PMI/PMIx one such as Slurm's srun) started
// this process: only then is MPI started, a plain run stays free of it.
bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(var)) return true;
  return false;
}
#endif

// After an error on one rank of a job the others wait for it in a collective: end them all.
[[noreturn]] void fail(int code) {
#if TG_WITH_MPI
  if (tg::dist::is_initialized() && tg::dist::world_size() > 1) tg::dist::abort(code);
#endif
  std::exit(code);
}

// Range checks whose messages read well: CLI11's PositiveNumber and NonNegativeNumber print their
// bounds in full ("Value 0 not in range 0.000000 to 1797...", 309 digits). CLI11 runs them on the
// text before converting it, so "nan" is caught here too.
CLI::Validator integer_at_least(std::int64_t min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        std::int64_t v = 0;
        const char* end = text.data() + text.size();
        auto [stop, ec] = std::from_chars(text.data(), end, v);
        if (ec != std::errc() || stop != end || v < min) return fmt::format("expected an integer >= {}, got {}", min, text);
        return "";
      },
      fmt::format("INT >= {}", min));
}

// A finite number above `min` (or equal to it, unless `strict`); `what` names the quantity.
CLI::Validator finite_number(double min, bool strict, std::string what) {
  return CLI::Validator(
      [min, strict, what](std::string& text) -> std::string {
        char* stop = nullptr;
        const double v = std::strtod(text.c_str(), &stop);
        const bool ok = !text.empty() && *stop == '\0' && std::isfinite(v) && (strict ? v > min : v >= min);
        return ok ? "" : fmt::format("{} must be a {} finite number, got {}", what, strict ? "positive" : "non-negative", text);
      },
      strict ? "NUMBER > 0" : "NUMBER >= 0");
}

// An output file's directory must exist: found out before training, not after its first epoch.
void check_output_directory(const char* flag, const std::string& path) {
  if (path.empty()) return;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  TG_CHECK(dir.empty() || std::filesystem::is_directory(dir, ec), "[lenet_bn] {} {}: the directory '{}' does not exist",
           flag, path, dir.string());
}

// A batch that could never fit in this machine's memory is refused before any data is read. One
// LeNet-BN training example takes about 80 KB (activations kept for backward, their gradients, the
// convolutions' im2col buffers: issue 14 measured 4.5 GB for a batch of 60000).
void check_batch_fits_in_memory(std::int64_t batch_size) {
  constexpr double kBytesPerExample = 80e3;
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  const double need = static_cast<double>(batch_size) * kBytesPerExample;
  TG_CHECK(need <= memory, "[lenet_bn] --batch-size {} would need about {:.0f} GB of memory for one batch; this "
           "machine has {:.0f} GB", batch_size, need / 1e9, memory / 1e9);
}

std::string thousands(double v) {
  std::string digits = fmt::format("{:.0f}", v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"Train d2l's LeNet with batch normalization on Fashion-MNIST"};
  lenet::TrainOptions o;
  std::string bn = "builtin", data_dir = tg::data::kFashionMNISTRoot, metrics_path, plot_path, export_path;
  std::string stats_path, stats_plot_path;
  std::int64_t stats_every = 50;
  int threads = 0;
  bool quiet = false;
  app.add_option("--epochs", o.epochs, "number of epochs")->capture_default_str()->check(integer_at_least(0));
  app.add_option("--lr", o.lr, "learning rate (default 1.0; 0.9, d2l's, with --bn none)")
      ->check(finite_number(0, true, "the learning rate"));
  app.add_option("--batch-size", o.batch_size, "examples per batch")->capture_default_str()->check(integer_at_least(1));
  app.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str()
      ->check(finite_number(0, false, "the momentum"));
  app.add_option("--weight-decay", o.weight_decay, "SGD weight decay")->capture_default_str()
      ->check(finite_number(0, false, "the weight decay"));
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  app.add_option("--threads", threads, "threads for kernels and BLAS (default: all cores)")->check(integer_at_least(1));
  app.add_option("--bn", bn, "batch norm: the built-in layer, the notebook's from-scratch one, or none (d2l's LeNet)")
      ->capture_default_str()->check(CLI::IsMember({"builtin", "scratch", "none"}));
  app.add_option("--data-dir", data_dir, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--metrics", metrics_path, "write per-epoch metrics as CSV");
  app.add_option("--plot", plot_path, "write an SVG chart of loss and accuracies");
  app.add_option("--graph", o.graph_path, "write the first step's autograd graph (.dot, or .svg through Graphviz)");
  app.add_option("--stats", stats_path, "write gradient-flow statistics as CSV (gradient norms, update ratios, "
                 "activations)");
  app.add_option("--stats-every", stats_every, "record the statistics every K steps")->capture_default_str()
      ->check(integer_at_least(1));
  app.add_option("--stats-plot", stats_plot_path, "write an SVG chart of the gradient-flow statistics");
  app.add_option("--save", o.save_path, "checkpoint after every epoch");
  app.add_option("--resume", o.resume_path, "continue from a checkpoint")->check(CLI::ExistingFile);
  app.add_option("--export-folded", export_path,
                 "after training, write the model with batch norm folded into its convolutions and linears "
                 "(safetensors, for apps/infer)");
  app.add_flag("--quiet", quiet, "print only the final line");
  app.add_flag("--fuse", o.fuse, "run each convolution with the batch norm, sigmoid and pool after it, and each other batch "
               "norm with its sigmoid, as one layer (conv2d_batch_norm_act, batch_norm_act): the same model, state and "
               "checkpoints, fewer passes over memory");
  app.add_flag("--sync-bn", o.sync_bn, "under mpiexec: batch statistics over the whole global batch (SyncBatchNorm)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "lenet_bn: %s (see --help)\n", e.what());
    return 2;
  }
  o.bn = bn == "scratch" ? lenet::BatchNormKind::Scratch
         : bn == "none"  ? lenet::BatchNormKind::None
                         : lenet::BatchNormKind::Builtin;
  if (app.count("--lr") == 0 && o.bn == lenet::BatchNormKind::None) o.lr = 0.9;
  std::optional<lenet::GradientFlow> flow;
  if (!stats_path.empty() || !stats_plot_path.empty()) o.flow = &flow.emplace(stats_every);
  if (threads > 0) tg::set_num_threads(threads);
  check_batch_fits_in_memory(o.batch_size);
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--save", o.save_path},
                                   {"--metrics", metrics_path}, {"--plot", plot_path}, {"--graph", o.graph_path},
                                   {"--stats", stats_path}, {"--stats-plot", stats_plot_path},
                                   {"--export-folded", export_path}})
    check_output_directory(flag, path);
  TG_CHECK(export_path.empty() || o.bn == lenet::BatchNormKind::Builtin,
           "[lenet_bn] --export-folded needs the built-in batch norm (--bn builtin), got --bn {}", bn);
  int rank = 0, world = 1;
#if TG_WITH_MPI
  if (launched_by_mpi() || o.sync_bn) {
    tg::dist::init(&argc, &argv);
    rank = tg::dist::rank(), world = tg::dist::world_size();
    o.data_parallel = true;
  }
#endif
  if (rank != 0) {  // rank 0 alone prints and writes files
    quiet = true;
    for (std::string* path : {&metrics_path, &plot_path, &export_path, &stats_path, &stats_plot_path, &o.graph_path})
      path->clear();
    o.flow = nullptr;
  }

  auto open = [&](bool train) {
    try {
      return tg::data::FashionMNIST(data_dir, train);
    } catch (const tg::Error& e) {  // the library names no flags; the app says which one to pass
      throw std::runtime_error(std::string(e.what()) + " (or pass --data-dir DIR)");
    }
  };
  tg::data::FashionMNIST train_set = open(true), test_set = open(false);
  bool tty = isatty(STDOUT_FILENO) && !quiet;
  std::string model_name = bn == "none" ? "LeNet (no batch norm)" : "LeNet-BN (" + bn + " batch norm)";
  if (!quiet)
    std::printf("%s on Fashion-MNIST: %lld train / %lld test images, batch %lld, lr %g, "
                "%d threads%s\n", (o.sync_bn ? "LeNet-BN (synchronized batch norm)" : model_name.c_str()),
                static_cast<long long>(train_set.size()),
                static_cast<long long>(test_set.size()), static_cast<long long>(o.batch_size), o.lr,
                tg::get_num_threads(), world > 1 ? fmt::format(" on each of {} ranks", world).c_str() : "");
  std::int64_t shown_quarter = 0;
  lenet::TrainCallbacks cb;
  std::int64_t current_epoch = 0;
  cb.on_batch = [&](std::int64_t done, std::int64_t total, double loss, double rate) {
    if (quiet) return;
    if (tty) {
      int width = 30, filled = static_cast<int>(width * done / total);
      double eta = rate > 0 ? static_cast<double>((total - done) * o.batch_size) / rate : 0;
      std::printf("\repoch %lld/%lld [%s%s] %lld/%lld  %s ex/s  loss %.3f  ETA %.0fs ",
                  static_cast<long long>(current_epoch + 1), static_cast<long long>(o.epochs),
                  std::string(static_cast<std::size_t>(filled), '=').c_str(),
                  std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), static_cast<long long>(done),
                  static_cast<long long>(total), thousands(rate).c_str(), loss, eta);
      std::fflush(stdout);
    } else if (done * 4 / total > shown_quarter && done < total) {
      shown_quarter = done * 4 / total;
      std::printf("  epoch %lld: %lld/%lld batches  loss %.3f  %s ex/s\n", static_cast<long long>(current_epoch + 1),
                  static_cast<long long>(done), static_cast<long long>(total), loss, thousands(rate).c_str());
      std::fflush(stdout);
    }
  };
  cb.on_epoch = [&](const lenet::EpochMetrics& m) {
    current_epoch = m.epoch;
    shown_quarter = 0;
    if (quiet) return;
    std::printf("%sepoch %lld/%lld  loss %.3f  train acc %.3f  test acc %.3f  %s ex/s\n", tty ? "\r\033[K" : "",
                static_cast<long long>(m.epoch), static_cast<long long>(o.epochs), m.train_loss, m.train_acc,
                m.test_acc, thousands(m.examples_per_sec).c_str());
    std::fflush(stdout);
  };
  if (!o.resume_path.empty()) {
    tg::Metadata meta;
    tg::load_tensors(o.resume_path, &meta);
    current_epoch = std::atoll(meta["epoch"].c_str());
  }
  tg::nn::Sequential trained;
  std::vector<lenet::EpochMetrics> metrics = lenet::train(train_set, test_set, o, cb, &trained);
  if (!metrics_path.empty()) lenet::write_text_file(metrics_path, lenet::metrics_csv(metrics));
  if (!plot_path.empty()) lenet::write_text_file(plot_path, lenet::metrics_svg(metrics));
  if (!export_path.empty()) lenet::export_folded(export_path, trained);
  if (!stats_path.empty()) lenet::write_text_file(stats_path, lenet::flow_csv(flow->rows()));
  if (!stats_plot_path.empty())
    lenet::write_text_file(stats_plot_path,
                           lenet::flow_svg(flow->rows(), fmt::format("{}, lr {}", model_name, o.lr)));
  if (!metrics.empty() && rank == 0) {
    const lenet::EpochMetrics& m = metrics.back();
    double seconds = 0;
    for (const auto& e : metrics) seconds += e.seconds;
    std::printf("final: loss %.3f, train acc %.3f, test acc %.3f after %lld epochs (%.1f s of training)\n",
                m.train_loss, m.train_acc, m.test_acc, static_cast<long long>(m.epoch), seconds);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "\nlenet_bn: %s\n", e.what());
  fail(1);
}
