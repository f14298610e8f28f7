// Parameter initialization, as torch.nn.init: in place, under no-grad, drawing from the global
// generator in PyTorch's order (so a seeded PyTorch model and ours start alike). Layer: layers.
#pragma once

#include <string>
#include <utility>

#include "tapegrad/core/tensor.h"

namespace tg::nn::init {

// (fan_in, fan_out) of a weight: [out, in] or [out, in, kh, kw]; throws for fewer than 2 dims.
std::pair<std::int64_t, std::int64_t> fan_in_and_fan_out(const Tensor& t);
// PyTorch's calculate_gain: "linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu" (param = slope).
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

void uniform_(const Tensor& t, double a = 0.0, double b = 1.0);
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0);
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);
void xavier_uniform_(const Tensor& t, double gain = 1.0);
void xavier_normal_(const Tensor& t, double gain = 1.0);
// mode "fan_in" or "fan_out"; nonlinearity as calculate_gain.
void kaiming_uniform_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                      const std::string& nonlinearity = "leaky_relu");
void kaiming_normal_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                     const std::string& nonlinearity = "leaky_relu");

// PyTorch's reset_parameters for Linear and Conv2d: kaiming_uniform_(a = √5) for the weight,
// then U(−1/√fan_in, 1/√fan_in) for the bias (when defined).
void default_reset_(const Tensor& weight, const Tensor& bias);

}  // namespace tg::nn::init
