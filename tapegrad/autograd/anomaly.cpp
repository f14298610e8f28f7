// Anomaly mode's switches, the module path ops are recorded under, and the nan/inf probe the
// engine runs on each gradient when the mode is on. Layer: autograd.
#include "tapegrad/autograd/anomaly.h"

#include <cmath>
#include <vector>

#include "tapegrad/core/native.h"

namespace tg::autograd {

namespace {
thread_local bool anomaly_enabled = false;
thread_local std::vector<std::string> recording_locations;
}  // namespace

bool is_anomaly_enabled() { return anomaly_enabled; }
void set_detect_anomaly(bool enabled) { anomaly_enabled = enabled; }

DetectAnomalyGuard::DetectAnomalyGuard() : previous_(anomaly_enabled) { anomaly_enabled = true; }
DetectAnomalyGuard::~DetectAnomalyGuard() { anomaly_enabled = previous_; }

RecordingLocationGuard::RecordingLocationGuard(std::string where) { recording_locations.push_back(std::move(where)); }
RecordingLocationGuard::~RecordingLocationGuard() { recording_locations.pop_back(); }

const std::string& recording_location() {
  static const std::string nowhere;
  return recording_locations.empty() ? nowhere : recording_locations.back();
}

namespace detail {

// x·0 is 0 for every finite x and nan otherwise: one vectorized pass decides, a second one tells
// which.
const char* non_finite(const Tensor& g) {
  Tensor c = native::contiguous(g);
  return dispatch_floating(c.dtype(), [&]<class T>() -> const char* {
    const T* p = static_cast<const T*>(c.raw_data());
    const std::int64_t n = c.numel();
    T probe = 0;
#pragma omp simd reduction(+ : probe)
    for (std::int64_t i = 0; i < n; ++i) probe += p[i] * T(0);
    if (!std::isnan(probe)) return nullptr;
    for (std::int64_t i = 0; i < n; ++i)
      if (std::isnan(p[i])) return "nan";
    return "inf";
  });
}

}  // namespace detail

}  // namespace tg::autograd
