// Seeded random numbers: one global generator (Mersenne Twister, seeded by manual_seed) whose
// streams reproduce PyTorch's CPU generator for the same seed, so `manual_seed(0); randn(...)`
// gives the numbers PyTorch gives. Streams do not depend on the thread count. Layer: core.
#pragma once

#include <cstdint>
#include <string>

#include "tapegrad/core/tensor.h"

namespace tg {

void manual_seed(std::uint64_t seed);
std::uint64_t initial_seed();

Tensor rand(const Shape& sizes, DType dtype = kFloat32);   // uniform on [0, 1)
Tensor randn(const Shape& sizes, DType dtype = kFloat32);  // standard normal
Tensor randint(std::int64_t low, std::int64_t high, const Shape& sizes, DType dtype = kInt64);  // [low, high)
Tensor randint(std::int64_t high, const Shape& sizes, DType dtype = kInt64);
Tensor randperm(std::int64_t n, DType dtype = kInt64);

// In-place fillers (as torch.Tensor.uniform_ / normal_); they write through views.
void uniform_(const Tensor& t, double from = 0.0, double to = 1.0);
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0);

// The whole generator state as bytes, for checkpoints; set_rng_state throws on a bad string and
// then changes nothing.
std::string get_rng_state();
void set_rng_state(const std::string& state);

}  // namespace tg
