// LeNet-BN training: d2l's LeNet with batch normalization and its train_ch6 loop. Layer: apps.
#include "apps/lenet/trainer.h"

#include <chrono>
#include <cmath>

#include "apps/lenet/checkpoint.h"
#include "apps/lenet/scratch_batchnorm.h"
#include "tapegrad/data/dataloader.h"

namespace lenet {

namespace nn = tg::nn;
using tg::Tensor;

namespace {

std::shared_ptr<nn::Module> make_norm(BatchNormKind bn, std::int64_t features, int dims) {
  if (bn == BatchNormKind::Scratch) return std::make_shared<ScratchBatchNorm>(features, dims);
  if (dims == 4) return std::make_shared<nn::BatchNorm2d>(features);
  return std::make_shared<nn::BatchNorm1d>(features);
}

// This process's place in the data-parallel run: a world of one unless data_parallel.
struct Place {
  int rank = 0, world = 1;
};

Place place(bool data_parallel) {
#if TG_WITH_MPI
  if (data_parallel) {
    TG_CHECK(tg::dist::is_initialized(), "[lenet_bn] data-parallel training needs tg::dist::init() first");
    return {tg::dist::rank(), tg::dist::world_size()};
  }
#else
  TG_CHECK(!data_parallel, "[lenet_bn] data-parallel training needs tapegrad built with MPI (TG_MPI)");
#endif
  return {};
}

// Sums across the ranks of a data-parallel run (nothing to do in a world of one).
void sum_over_ranks(const Tensor& t, const Place& where) {
#if TG_WITH_MPI
  if (where.world > 1) tg::dist::all_reduce(t);
#else
  (void)t, (void)where;
#endif
}

// What a checkpoint must have been trained with to be resumed by these options.
std::string checkpoint_signature(const TrainOptions& o) {
  return fmt::format("bn={} batch_size={}", batch_norm_name(o.bn), o.batch_size);
}

// The batch once more, in anomaly mode, to say where the nan or inf comes from: the first layer
// whose output holds one (forward hooks), and the first op whose backward makes one, with the
// module it was recorded in.
std::string find_anomaly(nn::Sequential& net, const nn::CrossEntropyLoss& loss_fn, const Tensor& X, const Tensor& y) {
  std::string first_layer;
  std::vector<tg::RemovableHandle> hooks;
  for (const auto& [name, child] : net.named_children())
    hooks.push_back(child->register_forward_hook(
        [&first_layer, layer = name + " (" + child->name() + ")"](nn::Module&, const Tensor&, const Tensor& out) {
          tg::NoGradGuard no_grad;
          // x - x is 0 for every finite x and nan for nan and ±inf.
          if (first_layer.empty() && std::isnan((out - out).sum().item<double>())) first_layer = layer;
        }));
  std::string backward = "anomaly mode found no op whose backward makes nan or inf";
  try {
    tg::autograd::DetectAnomalyGuard anomaly;
    Tensor y_hat = net(X);
    tg::autograd::RecordingLocationGuard where("loss (CrossEntropyLoss)");
    loss_fn(y_hat, y).backward();
  } catch (const tg::Error& e) {
    backward = e.what();
  }
  for (tg::RemovableHandle& h : hooks) h.remove();
  return fmt::format("the first layer output with nan or inf: {}; {}",
                     first_layer.empty() ? "none (the loss itself)" : first_layer, backward);
}

}  // namespace

const char* batch_norm_name(BatchNormKind bn) {
  return bn == BatchNormKind::Builtin ? "builtin" : bn == BatchNormKind::Scratch ? "scratch" : "none";
}

tg::nn::Sequential make_lenet_bn(BatchNormKind bn) {
  nn::Sequential net;
  auto norm = [bn, &net](std::int64_t features, int dims) {
    if (bn == BatchNormKind::None) return;
    net.push_back(make_norm(bn, features, dims));
  };
  net.push_back(nn::Conv2d(1, 6, 5));
  norm(6, 4);
  net.push_back(nn::Sigmoid());
  net.push_back(nn::AvgPool2d(2, 2));
  net.push_back(nn::Conv2d(6, 16, 5));
  norm(16, 4);
  net.push_back(nn::Sigmoid());
  net.push_back(nn::AvgPool2d(2, 2));
  net.push_back(nn::Flatten());
  net.push_back(nn::Linear(16 * 4 * 4, 120));
  norm(120, 2);
  net.push_back(nn::Sigmoid());
  net.push_back(nn::Linear(120, 84));
  norm(84, 2);
  net.push_back(nn::Sigmoid());
  net.push_back(nn::Linear(84, 10));
  for (const auto& [name, p] : net.named_parameters())  // d2l's init_weights: Linear and Conv2d weights
    if (name.ends_with(".weight") && p.dim() >= 2) nn::init::xavier_uniform_(p);
  return net;
}

double evaluate_accuracy(nn::Module& net, const tg::data::Dataset& data, std::int64_t batch_size, bool sharded) {
  const Place where = place(sharded);
  bool was_training = net.is_training();
  net.eval();
  tg::NoGradGuard no_grad;
  std::int64_t correct = 0, total = 0, batch = 0;
  for (const auto& [X, y] : tg::data::DataLoader(data, {.batch_size = batch_size}))
    if (batch++ % where.world == where.rank) {
      correct += net(X).argmax(1).eq(y).sum().item<std::int64_t>();
      total += y.numel();
    }
  net.train(was_training);
  Tensor counts = tg::tensor(std::vector<std::int64_t>{correct, total});
  sum_over_ranks(counts, where);
  correct = counts.to_vector<std::int64_t>()[0], total = counts.to_vector<std::int64_t>()[1];
  return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

std::vector<EpochMetrics> train(const tg::data::Dataset& train_set, const tg::data::Dataset& test_set,
                                const TrainOptions& options, const TrainCallbacks& callbacks,
                                tg::nn::Sequential* trained) {
  TG_CHECK(options.epochs >= 0, "[lenet_bn] expected a non-negative number of epochs, got {}", options.epochs);
  TG_CHECK(options.batch_size >= 1, "[lenet_bn] expected a positive batch size, got {}", options.batch_size);
  TG_CHECK(std::isfinite(options.lr) && options.lr > 0, "[lenet_bn] the learning rate must be a positive finite number, "
           "got {}", options.lr);
  // LeNet takes 1×28×28 images: images of another size are refused now, not when the first epoch's
  // test accuracy is computed.
  for (const auto& [set, name] : {std::pair{&train_set, "training"}, std::pair{&test_set, "test"}})
    if (set->size() > 0) {
      const tg::Shape sizes = set->get_batch({0}).first.sizes();
      TG_CHECK(sizes == tg::Shape({1, 1, 28, 28}), "[lenet_bn] the {} images are {}; LeNet-BN takes [1, 28, 28]", name,
               tg::Shape(sizes.begin() + 1, sizes.end()));
    }
  const Place where = place(options.data_parallel);
  tg::manual_seed(options.seed);
  nn::Sequential net = make_lenet_bn(options.bn);
  // The model each step runs: the network, or DistributedDataParallel around it (sharing its
  // children and tensors: net's train/eval, evaluation and checkpoints see the same model).
  std::shared_ptr<nn::Module> model = std::make_shared<nn::Sequential>(net);
#if TG_WITH_MPI
  if (options.sync_bn) {
    TG_CHECK(options.bn == BatchNormKind::Builtin, "[lenet_bn] --sync-bn converts the built-in batch norm, not the "
             "from-scratch one");
    nn::convert_sync_batchnorm(net);
    model = std::make_shared<nn::Sequential>(net);
  }
#else
  TG_CHECK(!options.sync_bn, "[lenet_bn] --sync-bn needs tapegrad built with MPI (TG_MPI)");
#endif
  if (options.fuse) {
    TG_CHECK(!options.sync_bn && !options.flow, "[lenet_bn] --fuse runs fused batch norms: not with {}",
             options.sync_bn ? "--sync-bn" : "--stats (its hooks watch the plain layers)");
    model = std::make_shared<nn::Sequential>(nn::utils::fuse_conv_batchnorm_activation(net));
  }
#if TG_WITH_MPI
  if (options.data_parallel) model = std::make_shared<nn::DistributedDataParallel>(model);
#endif
  tg::optim::SGD opt(net.parameters(), {.lr = options.lr, .momentum = options.momentum,
                                        .weight_decay = options.weight_decay});
  std::vector<EpochMetrics> metrics;
  if (!options.resume_path.empty()) metrics = load_checkpoint(options.resume_path, net, opt, checkpoint_signature(options));

  nn::CrossEntropyLoss loss_fn;
  tg::data::DataLoader loader(train_set, {.batch_size = options.batch_size, .shuffle = true});
  std::int64_t batches = loader.num_batches();
  std::int64_t step = (static_cast<std::int64_t>(metrics.size())) * batches;
  if (options.flow) options.flow->attach(net);
  for (std::int64_t epoch = static_cast<std::int64_t>(metrics.size()) + 1; epoch <= options.epochs; ++epoch) {
    net.train();
    double loss_sum = 0;
    std::int64_t correct = 0, seen = 0, batch = 0;
    auto start = std::chrono::steady_clock::now();
    double seconds = 0;
    for (const auto& [X_all, y_all] : loader) {
      ++step;
      if (options.flow) options.flow->begin_step(step, epoch);
      // Every rank draws the same global batch and takes its rows [lo, hi). Its loss is scaled so
      // that the ranks' average gradient is the whole batch's mean gradient even for unequal shares.
      const std::int64_t n = y_all.numel(), lo = n * where.rank / where.world, hi = n * (where.rank + 1) / where.world;
      Tensor X = where.world > 1 ? X_all.slice(0, lo, hi) : X_all, y = where.world > 1 ? y_all.slice(0, lo, hi) : y_all;
      Tensor y_hat = (*model)(X);
      Tensor loss = loss_fn(y_hat, y);
      double l = loss.item<double>();  // the mean over this rank's share
      if ((hi - lo) * where.world != n) loss = loss * (static_cast<double>((hi - lo) * where.world) / static_cast<double>(n));
      if (!std::isfinite(l)) {
        std::string anomaly = find_anomaly(net, loss_fn, X, y);
        TG_CHECK(false, "[lenet_bn] the loss became {} at epoch {}, batch {}: stopping (lower --lr?); {}; {}", l, epoch,
                 batch + 1, anomaly,
                 options.save_path.empty() ? std::string("no checkpoint was written")
                                           : fmt::format("the checkpoint '{}' keeps the last finished epoch",
                                                         options.save_path));
      }
      if (step == 1 && !options.graph_path.empty())
        write_graph(options.graph_path, tg::autograd::to_dot(loss, net.named_parameters()));
      opt.zero_grad();
      loss.backward();
      if (options.flow) options.flow->after_backward(net);
      opt.step();
      if (options.flow) options.flow->after_update(net);
      {
        tg::NoGradGuard no_grad;
        loss_sum += l * static_cast<double>(y.numel());
        correct += y_hat.argmax(1).eq(y).sum().item<std::int64_t>();
      }
      seen += y.numel();
      ++batch;
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (callbacks.on_batch)  // this rank's running loss; the examples of all ranks
        callbacks.on_batch(batch, batches, loss_sum / static_cast<double>(seen),
                           seconds > 0 ? static_cast<double>(seen * where.world) / seconds : 0.0);
    }
    Tensor sums = tg::tensor(std::vector<double>{loss_sum, static_cast<double>(correct), static_cast<double>(seen)});
    sum_over_ranks(sums, where);
    loss_sum = sums.to_vector<double>()[0];
    correct = static_cast<std::int64_t>(sums.to_vector<double>()[1]);
    seen = static_cast<std::int64_t>(sums.to_vector<double>()[2]);
    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0.0;
    m.train_acc = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
    m.seconds = seconds;
    m.examples_per_sec = seconds > 0 ? static_cast<double>(seen) / seconds : 0.0;
    m.test_acc = evaluate_accuracy(net, test_set, options.batch_size, options.data_parallel);
    metrics.push_back(m);
    if (!options.save_path.empty() && where.rank == 0) save_checkpoint(options.save_path, net, opt, metrics, checkpoint_signature(options));
    if (callbacks.on_epoch) callbacks.on_epoch(m);
  }
  if (options.flow) options.flow->detach();
  if (trained) *trained = net;
  return metrics;
}

}  // namespace lenet
