// LeNet-BN's reports: the per-epoch metrics as CSV (and back, for checkpoints) and as an SVG
// chart like d2l's Animator, and atomic text files. Layer: apps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lenet {

struct EpochMetrics {
  std::int64_t epoch = 0;   // 1-based
  double train_loss = 0;    // mean over the epoch's batches, as d2l
  double train_acc = 0;
  double test_acc = 0;
  double seconds = 0;       // training only
  double examples_per_sec = 0;
};

// "epoch,train_loss,train_acc,test_acc,seconds,examples_per_sec" and one row per epoch.
std::string metrics_csv(const std::vector<EpochMetrics>& metrics);
// The rows of metrics_csv's text; throws naming `source` on a malformed row.
std::vector<EpochMetrics> parse_metrics_csv(const std::string& csv, const std::string& source);
// An SVG line chart of train loss, train acc and test acc against epochs, like d2l's Animator.
std::string metrics_svg(const std::vector<EpochMetrics>& metrics);
// Writes text to a file atomically (tg::write_file_atomically); throws naming the path.
void write_text_file(const std::string& path, const std::string& text);
// Writes a DOT graph: as is to a .dot path, rendered by Graphviz's `dot` to a .svg path (throws
// naming the package when `dot` is missing). Atomic like write_text_file.
void write_graph(const std::string& path, const std::string& dot);

}  // namespace lenet
