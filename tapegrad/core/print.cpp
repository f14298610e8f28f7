// Tensor printing: a line-by-line port of PyTorch 1.13's torch/_tensor_str.py (_Formatter,
// _vector_str, _tensor_str_with_formatter, get_summarized_data, _add_suffixes), with Python's
// float formatting reproduced through fmt. Layer: core; it asks the tensor about autograd only
// through requires_grad() and grad_fn_name(). Deliberate difference: the dtype suffix reads
// `dtype=float64`, not `dtype=torch.float64`.
#include "tapegrad/core/print.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace tg {
namespace {

constexpr int kPrecision = 4;
constexpr std::int64_t kThreshold = 1000;
constexpr std::int64_t kEdgeItems = 3;
constexpr std::int64_t kLineWidth = 80;

// Python's '{:.Nf}' and '{:.Ne}': fmt agrees except that it spells a NaN with its sign bit set
// as "-nan", where Python always writes "nan".
std::string py_fixed(double v, int precision) {
  if (std::isnan(v)) return "nan";
  return fmt::format("{:.{}f}", v, precision);
}

std::string py_sci(double v) {
  if (std::isnan(v)) return "nan";
  return fmt::format("{:.{}e}", v, kPrecision);
}

std::string pad_left(std::string s, std::size_t width) {
  if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return s;
}

// The elements in row-major order, exactly: float32 values widened to double (as tolist()
// does), integer values (int64, uint8) kept as integers.
struct Elements {
  Shape sizes;
  Shape strides;
  bool floating = true;
  std::vector<double> reals;
  std::vector<std::int64_t> ints;
};

bool summarized_dim(std::int64_t size, bool summarize) { return summarize && size > 2 * kEdgeItems; }

// Calls f(flat index) for every element the printout shows, in order (get_summarized_data).
template <class F>
void for_each_shown(const Elements& e, bool summarize, std::size_t d, std::int64_t offset, F& f) {
  if (d == e.sizes.size()) {
    f(offset);
    return;
  }
  const std::int64_t n = e.sizes[d];
  for (std::int64_t i = 0; i < n; ++i) {
    if (summarized_dim(n, summarize) && i == kEdgeItems) i = n - kEdgeItems;
    for_each_shown(e, summarize, d + 1, offset + i * e.strides[d], f);
  }
}

class Formatter {
 public:
  Formatter(const Elements& e, bool summarize) : floating_(e.floating) {
    if (!floating_) {
      auto measure = [&](std::int64_t k) {
        max_width_ = std::max(max_width_, fmt::format("{}", e.ints[static_cast<std::size_t>(k)]).size());
      };
      for_each_shown(e, summarize, 0, 0, measure);
      return;
    }
    std::vector<double> vals;  // nonzero finite
    auto collect = [&](std::int64_t k) {
      const double v = e.reals[static_cast<std::size_t>(k)];
      if (std::isfinite(v) && v != 0) vals.push_back(v);
    };
    for_each_shown(e, summarize, 0, 0, collect);
    if (vals.empty()) return;

    double lo = std::abs(vals[0]), hi = lo;
    for (double v : vals) {
      lo = std::min(lo, std::abs(v));
      hi = std::max(hi, std::abs(v));
      if (v != std::ceil(v)) int_mode_ = false;
    }
    const bool wide_range = hi / lo > 1000.0 || hi > 1.0e8;
    sci_mode_ = int_mode_ ? wide_range : wide_range || lo < 1.0e-4;
    for (double v : vals) {
      const std::size_t len = sci_mode_ ? py_sci(v).size()
                              : int_mode_ ? py_fixed(v, 0).size() + 1
                                          : py_fixed(v, kPrecision).size();
      max_width_ = std::max(max_width_, len);
    }
  }

  std::size_t width() const { return max_width_; }

  std::string format(const Elements& e, std::int64_t k) const {
    const auto idx = static_cast<std::size_t>(k);
    if (!floating_) return pad_left(fmt::format("{}", e.ints[idx]), max_width_);
    const double v = e.reals[idx];
    std::string s;
    if (sci_mode_) {
      s = py_sci(v);
    } else if (int_mode_) {
      s = py_fixed(v, 0);
      if (std::isfinite(v)) s += '.';
    } else {
      s = py_fixed(v, kPrecision);
    }
    return pad_left(std::move(s), max_width_);
  }

 private:
  bool floating_;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  std::size_t max_width_ = 1;
};

struct Printer {
  const Elements& e;
  const Formatter& formatter;
  bool summarize;

  std::string vector_str(std::int64_t offset, std::int64_t indent) const {
    const auto element_length = static_cast<std::int64_t>(formatter.width()) + 2;
    const auto floor_div = static_cast<std::int64_t>(
        std::floor(static_cast<double>(kLineWidth - indent) / static_cast<double>(element_length)));
    const std::int64_t per_line = std::max<std::int64_t>(1, floor_div);

    const std::int64_t n = e.sizes.back();
    std::vector<std::string> data;
    for (std::int64_t i = 0; i < n; ++i) {
      if (summarized_dim(n, summarize) && i == kEdgeItems) {
        data.emplace_back(" ...");
        i = n - kEdgeItems;
      }
      data.push_back(formatter.format(e, offset + i));
    }

    std::string line_sep = ",\n";
    line_sep.append(static_cast<std::size_t>(indent + 1), ' ');
    std::string out = "[";
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (i > 0) out += i % static_cast<std::size_t>(per_line) == 0 ? line_sep : ", ";
      out += data[i];
    }
    return out + "]";
  }

  std::string tensor_str(std::size_t d, std::int64_t offset, std::int64_t indent) const {
    const std::size_t rank = e.sizes.size();
    if (rank == 0) return formatter.format(e, offset);
    if (d + 1 == rank) return vector_str(offset, indent);

    const std::int64_t n = e.sizes[d];
    std::vector<std::string> slices;
    for (std::int64_t i = 0; i < n; ++i) {
      if (summarized_dim(n, summarize) && i == kEdgeItems) {
        slices.emplace_back("...");
        i = n - kEdgeItems;
      }
      slices.push_back(tensor_str(d + 1, offset + i * e.strides[d], indent + 1));
    }
    std::string sep = ",";
    sep.append(rank - d - 1, '\n');
    sep.append(static_cast<std::size_t>(indent + 1), ' ');
    std::string out = "[";
    for (std::size_t i = 0; i < slices.size(); ++i) {
      if (i > 0) out += sep;
      out += slices[i];
    }
    return out + "]";
  }
};

std::string shape_tuple(const Shape& sizes) {
  std::string out = "(";
  for (std::size_t i = 0; i < sizes.size(); ++i) out += (i > 0 ? ", " : "") + std::to_string(sizes[i]);
  return out + (sizes.size() == 1 ? ",)" : ")");
}

// _add_suffixes, including its count of the last line's length (two more than the characters
// actually on it), so that wrapping happens where PyTorch wraps.
std::string add_suffixes(std::string text, const std::vector<std::string>& suffixes, std::int64_t indent) {
  const auto newline = text.rfind('\n');
  const std::int64_t rfind = newline == std::string::npos ? -1 : static_cast<std::int64_t>(newline);
  std::int64_t last_line_len = static_cast<std::int64_t>(text.size()) - rfind + 1;
  for (const std::string& suffix : suffixes) {
    const auto suffix_len = static_cast<std::int64_t>(suffix.size());
    if (last_line_len + suffix_len + 2 > kLineWidth) {
      text += ",\n";
      text.append(static_cast<std::size_t>(indent), ' ');
      text += suffix;
      last_line_len = indent + suffix_len;
    } else {
      text += ", " + suffix;
      last_line_len += suffix_len + 2;
    }
  }
  return text + ")";
}

}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const auto indent = static_cast<std::int64_t>(prefix.size());
  std::vector<std::string> suffixes;
  std::string body;

  if (t.numel() == 0) {
    if (t.dim() != 1) suffixes.push_back("size=" + shape_tuple(t.sizes()));
    if (t.dtype() != kFloat32) suffixes.push_back(fmt::format("dtype={}", dtype_name(t.dtype())));
    body = "[]";
  } else {
    // PyTorch names every dtype but its default one (float32) and int64, which its values show.
    if (t.dtype() != kFloat32 && t.dtype() != kInt64) suffixes.push_back(fmt::format("dtype={}", dtype_name(t.dtype())));
    Elements e;
    e.sizes = t.sizes();
    e.strides = contiguous_strides(e.sizes);
    e.floating = is_floating(t.dtype());
    if (e.floating) e.reals = t.to_vector<double>();
    else e.ints = t.to_vector<std::int64_t>();
    const bool summarize = t.numel() > kThreshold;
    const Formatter formatter(e, summarize);
    body = Printer{e, formatter, summarize}.tensor_str(0, 0, indent);
  }

  const std::string grad_fn = t.grad_fn_name();
  if (!grad_fn.empty()) suffixes.push_back("grad_fn=<" + grad_fn + ">");
  else if (t.requires_grad()) suffixes.push_back("requires_grad=True");

  return add_suffixes(prefix + body, suffixes, indent);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

}  // namespace tg
