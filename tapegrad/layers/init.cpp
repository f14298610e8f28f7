// Parameter initialization. Layer: layers.
#include "tapegrad/layers/init.h"

#include <cmath>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/core/random.h"

namespace tg::nn::init {

std::pair<std::int64_t, std::int64_t> fan_in_and_fan_out(const Tensor& t) {
  TG_CHECK(t.dim() >= 2, "[init] fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, "
           "got shape {}", t.sizes());
  std::int64_t receptive = 1;
  for (std::int64_t d = 2; d < t.dim(); ++d) receptive *= t.sizes()[d];
  return {t.sizes()[1] * receptive, t.sizes()[0] * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 3.0 / 4.0;
  TG_CHECK(false, "[init] unsupported nonlinearity \"{}\"", nonlinearity);
  return 0.0;
}

void uniform_(const Tensor& t, double a, double b) {
  NoGradGuard no_grad;
  tg::uniform_(t, a, b);
}

void normal_(const Tensor& t, double mean, double std) {
  NoGradGuard no_grad;
  tg::normal_(t, mean, std);
}

void constant_(const Tensor& t, double value) {
  NoGradGuard no_grad;
  native::fill_(t, value);
}

void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

void xavier_uniform_(const Tensor& t, double gain) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  init::uniform_(t, -a, a);
}

void xavier_normal_(const Tensor& t, double gain) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  init::normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

namespace {
double kaiming_std(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity) {
  TG_CHECK(mode == "fan_in" || mode == "fan_out", "[init] mode must be \"fan_in\" or \"fan_out\", got \"{}\"", mode);
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  double fan = static_cast<double>(mode == "fan_in" ? fan_in : fan_out);
  return calculate_gain(nonlinearity, a) / std::sqrt(fan);
}
}  // namespace

void kaiming_uniform_(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  init::uniform_(t, -bound, bound);
}

void kaiming_normal_(const Tensor& t, double a, const std::string& mode, const std::string& nonlinearity) {
  init::normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity));
}

void default_reset_(const Tensor& weight, const Tensor& bias) {
  kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double fan_in = static_cast<double>(fan_in_and_fan_out(weight).first);
    double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

}  // namespace tg::nn::init
