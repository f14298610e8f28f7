// LeNet-BN checkpoints: the model, the optimizer's state, the metrics so far and the generator
// state in one safetensors file, so that a resumed run draws exactly the numbers an
// uninterrupted one would have; and the model alone for inference, batch norm folded or not.
// Layer: apps.
#pragma once

#include <string>
#include <vector>

#include <tapegrad.h>

#include "apps/lenet/report.h"

namespace lenet {

// `signature` names the options a checkpoint only fits (batch norm kind, batch size).
void save_checkpoint(const std::string& path, const tg::nn::Module& net, const tg::optim::SGD& opt,
                     const std::vector<EpochMetrics>& metrics, const std::string& signature);
// Restores model, optimizer and generator and returns the metrics so far. Checks everything
// before changing anything: on any error, net, opt and the generator are as they were.
std::vector<EpochMetrics> load_checkpoint(const std::string& path, tg::nn::Module& net, tg::optim::SGD& opt,
                                          const std::string& signature);

// Writes the trained model with every Conv2d/Linear + BatchNorm pair folded into one layer
// (nn::utils::fold_batchnorm) as safetensors, metadata format "tapegrad lenet_bn folded 1". The
// model must have the built-in batch norm; it is left in evaluation mode.
void export_folded(const std::string& path, tg::nn::Sequential& net);

// A LeNet-BN for inference (evaluation mode) from a file in any of three forms: export_folded's
// (the folded model), a training checkpoint's (its model), or tg::save of the unfolded model.
// `folded` tells which architecture it has. Throws naming the file when it is none of these.
struct InferenceModel {
  tg::nn::Sequential net;
  bool folded = false;
};
InferenceModel load_for_inference(const std::string& path);

}  // namespace lenet
