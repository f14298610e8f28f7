// A small model shared by the module and serialization tests: a child Linear and BatchNorm1d, a
// parameter and an int64 buffer of its own, so names, buffers and dtypes of every kind appear.
// Tests only.
#pragma once

#include <memory>
#include <string>

#include "tapegrad.h"

class TwoLayer : public tg::nn::Module {
 public:
  TwoLayer() {
    fc1 = register_module("fc1", std::make_shared<tg::nn::Linear>(4, 3));
    bn = register_module("bn", std::make_shared<tg::nn::BatchNorm1d>(3));
    scale = register_parameter("scale", tg::ones({1}));
    steps = register_buffer("steps", tg::zeros({}, tg::kInt64));
  }
  tg::Tensor forward(const tg::Tensor& x) override { return bn->forward(fc1->forward(x)).sigmoid() * scale; }
  std::string name() const override { return "TwoLayer"; }
  std::shared_ptr<tg::nn::Linear> fc1;
  std::shared_ptr<tg::nn::BatchNorm1d> bn;
  tg::Tensor scale, steps;
};
