// gradcheck's central differences and comparisons. The weighting w comes from a generator of
// its own, so a gradcheck does not move the global random stream. Layer: autograd.
#include "tapegrad/autograd/gradcheck.h"

#include <cmath>
#include <random>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"

namespace tg::autograd {

namespace {

// Fresh leaves over copies of the inputs' data; `strided` lays each out non-contiguously.
std::vector<Tensor> fresh_leaves(const std::vector<Tensor>& inputs, bool strided) {
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    Tensor c;
    if (strided && t.dim() > 0 && t.numel() > 1) {
      Shape wide = t.sizes();
      wide.back() *= 2;
      c = native::slice(zeros(wide, t.dtype()), t.dim() - 1, 0, wide.back(), 2);
      native::copy_(c, t);
    } else {
      c = native::clone(t);
    }
    if (t.requires_grad()) c.requires_grad_();
    out.push_back(c);
  }
  return out;
}

std::vector<Tensor> analytic(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                             const std::vector<Tensor>& inputs, const Tensor& w, bool strided) {
  std::vector<Tensor> leaves = fresh_leaves(inputs, strided);
  Tensor y = fn(leaves);
  std::vector<Tensor> grads;
  if (y.requires_grad()) y.backward(native::to(w, y.dtype()));
  for (std::size_t i = 0; i < leaves.size(); ++i)
    grads.push_back(inputs[i].requires_grad() && leaves[i].grad().defined() ? leaves[i].grad()
                                                                            : zeros_like(inputs[i]));
  return grads;
}

double objective(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                 const std::vector<double>& w) {
  NoGradGuard no_grad;
  std::vector<double> y = fn(inputs).to_vector<double>();
  double s = 0;
  for (std::size_t k = 0; k < y.size(); ++k) s += w[k] * y[k];
  return s;
}

std::string compare(const Tensor& a, const Tensor& b, double atol, double rtol, const std::string& what,
                    std::size_t input) {
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (std::size_t j = 0; j < va.size(); ++j)
    if (!(std::fabs(va[j] - vb[j]) <= atol + rtol * std::fabs(vb[j])))
      return fmt::format("gradcheck: {} for input {} (shape {}), element {}: {} vs {}", what, input, a.sizes(), j,
                         va[j], vb[j]);
  return {};
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options) {
  std::string warning;
  bool any = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    any = true;
    if (warning.empty() && inputs[i].dtype() != kFloat64)
      warning = fmt::format("gradcheck: input {} requires grad and is {}, not float64: gradcheck needs float64 "
                            "inputs (central differences in {} are too coarse; PyTorch fails this check)",
                            i, dtype_name(inputs[i].dtype()), dtype_name(inputs[i].dtype()));
  }
  TG_CHECK(any, "[gradcheck] expected at least one input that requires grad, got {} inputs and none does",
           inputs.size());
  // The result, with the dtype warning (if any) before what failed.
  auto result = [&warning](bool ok, const std::string& why) {
    return GradcheckResult{ok, warning.empty() ? why : why.empty() ? warning : warning + "; " + why};
  };
  Shape out_sizes;
  {
    NoGradGuard no_grad;
    out_sizes = fn(inputs).sizes();
  }
  std::mt19937_64 gen(20240229);
  std::normal_distribution<double> normal;
  std::vector<double> wv(static_cast<std::size_t>(numel_of(out_sizes)));
  for (double& x : wv) x = normal(gen);
  Tensor w = tensor(wv, out_sizes);

  std::vector<Tensor> grads = analytic(fn, inputs, w, false);
  std::vector<Tensor> work;
  for (const Tensor& t : inputs) work.push_back(native::clone(t));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor flat = native::reshape(work[i], {-1});
    std::vector<double> numerical(static_cast<std::size_t>(flat.numel()));
    for (std::int64_t j = 0; j < flat.numel(); ++j) {
      Tensor xj = native::select(flat, 0, j);
      double x0 = xj.item<double>();
      native::fill_(xj, x0 + options.eps);
      double plus = objective(fn, work, wv);
      native::fill_(xj, x0 - options.eps);
      double minus = objective(fn, work, wv);
      native::fill_(xj, x0);
      numerical[static_cast<std::size_t>(j)] = (plus - minus) / (2 * options.eps);
    }
    std::string why = compare(grads[i], tensor(numerical, inputs[i].sizes()), options.atol, options.rtol,
                              "analytic vs numerical gradient", i);
    if (!why.empty()) return result(false, why);
  }
  std::vector<Tensor> again = analytic(fn, inputs, w, false);
  std::vector<Tensor> strided = analytic(fn, inputs, w, true);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    std::string why = compare(again[i], grads[i], 0, 0, "a second backward gave a different gradient", i);
    if (why.empty()) why = compare(strided[i], grads[i], options.atol, options.rtol,
                                   "non-contiguous inputs gave a different gradient", i);
    if (!why.empty()) return result(false, why);
  }
  return result(true, "");
}

}  // namespace tg::autograd
