// LeNet-BN checkpoints: the model, the optimizer's state, the metrics so far and the generator
// state in one safetensors file, so that a resumed run draws exactly the numbers an
// uninterrupted one would have. Layer: apps.
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

}  // namespace lenet
