// Anomaly mode: backward checks every gradient an entry returns for nan and inf, and names the
// entry and the module path it was recorded under. Layer: autograd; must not know modules (they
// open a RecordingLocationGuard themselves).
#pragma once

#include <string>

#include "tapegrad/core/tensor.h"

namespace tg::autograd {

// Anomaly mode (as torch.autograd.detect_anomaly; per thread, like grad mode): in backward, the
// first entry that returns a nan or infinite gradient throws, naming the entry, the input, and
// where the entry was recorded (the module path, see RecordingLocationGuard). Off by default; when
// off it costs one branch per entry.
bool is_anomaly_enabled();
void set_detect_anomaly(bool enabled);

class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard();
  ~DetectAnomalyGuard();
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};

// While it lives, entries recorded in anomaly mode remember `where` (the innermost guard wins):
// nn::Module's call operator opens one naming the module's path, such as "3 (Sigmoid)". C++ has
// no traceback; this is what the anomaly message names instead.
class RecordingLocationGuard {
 public:
  explicit RecordingLocationGuard(std::string where);
  ~RecordingLocationGuard();
  RecordingLocationGuard(const RecordingLocationGuard&) = delete;
  RecordingLocationGuard& operator=(const RecordingLocationGuard&) = delete;
};
// The innermost location, "" outside every guard.
const std::string& recording_location();

namespace detail {
// "nan" or "inf" when g holds such a value (nan wins), else nullptr. For the engine.
const char* non_finite(const Tensor& g);
}  // namespace detail

}  // namespace tg::autograd
