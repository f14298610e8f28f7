// LeNet-BN's reports: metrics CSV, the SVG chart, atomic text files. Layer: apps.
#include "apps/lenet/report.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <tapegrad.h>

namespace lenet {

std::string metrics_csv(const std::vector<EpochMetrics>& metrics) {
  std::string out = "epoch,train_loss,train_acc,test_acc,seconds,examples_per_sec\n";
  for (const EpochMetrics& m : metrics)
    out += fmt::format("{},{:.6f},{:.6f},{:.6f},{:.3f},{:.1f}\n", m.epoch, m.train_loss, m.train_acc, m.test_acc,
                       m.seconds, m.examples_per_sec);
  return out;
}

std::vector<EpochMetrics> parse_metrics_csv(const std::string& csv, const std::string& source) {
  std::vector<EpochMetrics> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    EpochMetrics m;
    long long epoch = 0;
    int got = std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lf,%lf", &epoch, &m.train_loss, &m.train_acc, &m.test_acc,
                          &m.seconds, &m.examples_per_sec);
    TG_CHECK(got == 6, "[lenet_bn] '{}' has malformed metrics: \"{}\"", source, line);
    m.epoch = epoch;
    out.push_back(m);
  }
  return out;
}

std::string metrics_svg(const std::vector<EpochMetrics>& metrics) {
  const double W = 480, H = 320, left = 50, right = 130, top = 20, bottom = 45;
  const double pw = W - left - right, ph = H - top - bottom;
  double x_max = std::max<double>(1.0, static_cast<double>(metrics.size()));
  double y_max = 1.0;
  for (const EpochMetrics& m : metrics) y_max = std::max(y_max, m.train_loss);
  y_max = std::ceil(y_max * 10.0) / 10.0;
  auto px = [&](double e) { return left + (e - 1.0) / std::max(1.0, x_max - 1.0) * pw; };
  auto py = [&](double v) { return top + (1.0 - v / y_max) * ph; };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H, W, H);
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, top,
                   pw, ph);
  for (int k = 0; k <= 5; ++k) {  // y grid
    double v = y_max * k / 5.0;
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", left, py(v),
                     left + pw, py(v));
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.1f}</text>\n", left - 6, py(v) + 4, v);
  }
  for (std::size_t e = 1; e <= metrics.size(); ++e)  // x ticks
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(static_cast<double>(e)),
                     top + ph + 16, e);
  s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">epoch</text>\n", left + pw / 2, H - 8);
  struct Curve {
    const char* label;
    const char* color;
    const char* dash;
    double EpochMetrics::*field;
  };
  const Curve curves[] = {{"train loss", "#1f77b4", "", &EpochMetrics::train_loss},
                          {"train acc", "#d62728", "6,3", &EpochMetrics::train_acc},
                          {"test acc", "#2ca02c", "2,3", &EpochMetrics::test_acc}};
  for (std::size_t c = 0; c < 3; ++c) {
    const Curve& cv = curves[c];
    std::string points;
    for (const EpochMetrics& m : metrics)
      points += fmt::format("{:.1f},{:.1f} ", px(static_cast<double>(m.epoch)), py(m.*cv.field));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\" "
                     "points=\"{}\"/>\n", cv.color, cv.dash, points);
    double ly = top + 14 + 18 * static_cast<double>(c);
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\" "
                     "stroke-dasharray=\"{}\"/>\n", left + pw + 10, ly, left + pw + 34, ly, cv.color, cv.dash);
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", left + pw + 40, ly + 4, cv.label);
  }
  return s + "</svg>\n";
}

void write_text_file(const std::string& path, const std::string& text) {
  tg::write_file_atomically(path, {text}, "lenet_bn");
}

void write_graph(const std::string& path, const std::string& dot) {
  if (!path.ends_with(".svg")) {
    TG_CHECK(path.ends_with(".dot"), "[lenet_bn] --graph expects a .dot or .svg path, got '{}'", path);
    write_text_file(path, dot);
    return;
  }
  TG_CHECK(std::system("dot -V > /dev/null 2>&1") == 0,
           "[lenet_bn] rendering '{}' needs Graphviz's dot (Debian package graphviz; scripts/install-deps), or "
           "write a .dot file",
           path);
  TG_CHECK(path.find('\'') == std::string::npos, "[lenet_bn] cannot render to a path with a quote: '{}'", path);
  std::string source = path + ".dot.tmp", tmp = path + ".tmp";
  write_text_file(source, dot);
  std::string quoted_source = "'" + source + "'", quoted_tmp = "'" + tmp + "'";
  int rc = std::system(("dot -Tsvg " + quoted_source + " -o " + quoted_tmp).c_str());
  std::filesystem::remove(source);
  TG_CHECK(rc == 0, "[lenet_bn] dot could not render '{}'", path);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  TG_CHECK(!ec, "[lenet_bn] cannot write '{}': {}", path, ec.message());
}

}  // namespace lenet
