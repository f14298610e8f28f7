// LeNet-BN training as d2l runs it (train_ch6): the model, one epoch of SGD with metrics, test
// accuracy, metrics CSV and SVG plot, and checkpoints that make an interrupted run resume
// bit-identically. Shared by apps/lenet_bn and its tests. Layer: apps.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <tapegrad.h>

#include "tapegrad/data/dataset.h"

namespace lenet {

enum class BatchNormKind { Builtin, Scratch };

// d2l's LeNet with batch normalization, Xavier-uniform weights (biases keep PyTorch's default).
tg::nn::Sequential make_lenet_bn(BatchNormKind bn = BatchNormKind::Builtin);

struct EpochMetrics {
  std::int64_t epoch = 0;   // 1-based
  double train_loss = 0;    // mean over the epoch's batches, as d2l
  double train_acc = 0;
  double test_acc = 0;
  double seconds = 0;       // training only
  double examples_per_sec = 0;
};

struct TrainOptions {
  std::int64_t epochs = 10;
  double lr = 1.0;
  std::int64_t batch_size = 256;
  double momentum = 0.0;
  double weight_decay = 0.0;
  std::uint64_t seed = 0;
  BatchNormKind bn = BatchNormKind::Builtin;
  std::string save_path;    // checkpoint after every epoch when set
  std::string resume_path;  // continue from this checkpoint when set
};

// Called after each batch (done, total, running loss, examples/sec) and after each epoch.
struct TrainCallbacks {
  std::function<void(std::int64_t, std::int64_t, double, double)> on_batch;
  std::function<void(const EpochMetrics&)> on_epoch;
};

// Trains from scratch (or from resume_path) and returns every epoch's metrics, those restored
// from the checkpoint included. Throws tg::Error when the loss becomes NaN or Inf (the last
// checkpoint stays as it was) and for a checkpoint that does not fit.
std::vector<EpochMetrics> train(const tg::data::Dataset& train_set, const tg::data::Dataset& test_set,
                                const TrainOptions& options, const TrainCallbacks& callbacks = {},
                                tg::nn::Sequential* trained = nullptr);

// Fraction of correct argmax predictions, in eval mode without recording.
double evaluate_accuracy(tg::nn::Module& net, const tg::data::Dataset& data, std::int64_t batch_size);

// "epoch,train_loss,train_acc,test_acc,seconds,examples_per_sec" and one row per epoch.
std::string metrics_csv(const std::vector<EpochMetrics>& metrics);
// An SVG line chart of train loss, train acc and test acc against epochs, like d2l's Animator.
std::string metrics_svg(const std::vector<EpochMetrics>& metrics);
// Writes text to a file (through a temporary file and a rename); throws naming the path.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace lenet
