// LeNet-BN training as d2l runs it (train_ch6): the model, epochs of SGD with metrics, test
// accuracy, and a checkpoint after every epoch from which an interrupted run resumes
// bit-identically (apps/lenet/checkpoint.h). Shared by apps/lenet_bn, its tests and bench/.
// Layer: apps.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <tapegrad.h>

#include "apps/lenet/flow.h"
#include "apps/lenet/report.h"
#include "tapegrad/data/dataset.h"

namespace lenet {

// None: the same LeNet without its batch-norm layers (d2l's LeNet, whose first convolution d2l
// pads by 2 and so feeds 16·5·5 features to the first Linear; here 16·4·4, as with batch norm).
enum class BatchNormKind { Builtin, Scratch, None };
const char* batch_norm_name(BatchNormKind bn);  // "builtin", "scratch", "none"

// d2l's LeNet with batch normalization, Xavier-uniform weights (biases keep PyTorch's default).
tg::nn::Sequential make_lenet_bn(BatchNormKind bn = BatchNormKind::Builtin);

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
  std::string graph_path;   // the first step's autograd graph, as DOT (.dot) or rendered (.svg)
  GradientFlow* flow = nullptr;  // records gradient flow when set
  // Data parallel over the ranks of an MPI job (tapegrad built with MPI, tg::dist::init() called):
  // every rank draws the same global batches and trains on its share of each, the gradients are
  // averaged by DistributedDataParallel, test accuracy is sharded, and only rank 0 writes the
  // checkpoint (which any number of ranks can resume). sync_bn converts the batch norms to
  // SyncBatchNorm: the run then follows the single-process one to float32 rounding.
  bool data_parallel = false;
  bool sync_bn = false;
  // Run each step through nn::utils::fuse_conv_batchnorm_activation(net): every Conv2d + BatchNorm2d +
  // Sigmoid + AvgPool2d and every other BatchNorm + Sigmoid pair as one layer, over the same tensors
  // (checkpoints and evaluation see the plain model). Not with sync_bn or flow, whose layers and hooks
  // are the plain ones.
  bool fuse = false;
};

// Called after each batch (done, total, running loss, examples/sec) and after each epoch.
struct TrainCallbacks {
  std::function<void(std::int64_t, std::int64_t, double, double)> on_batch;
  std::function<void(const EpochMetrics&)> on_epoch;
};

// Trains from scratch (or from resume_path) and returns every epoch's metrics, those restored
// from the checkpoint included. Throws tg::Error when the loss becomes NaN or Inf (the last
// checkpoint stays as it was), naming the op whose backward first makes a nan or inf (the batch is
// run again in anomaly mode), and for a checkpoint that does not fit.
std::vector<EpochMetrics> train(const tg::data::Dataset& train_set, const tg::data::Dataset& test_set,
                                const TrainOptions& options, const TrainCallbacks& callbacks = {},
                                tg::nn::Sequential* trained = nullptr);

// Fraction of correct argmax predictions, in eval mode without recording. Sharded, each rank of
// the MPI job takes every W-th batch and the counts are summed (every rank must call it).
double evaluate_accuracy(tg::nn::Module& net, const tg::data::Dataset& data, std::int64_t batch_size,
                         bool sharded = false);

}  // namespace lenet
