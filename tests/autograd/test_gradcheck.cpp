// Tests of gradcheck's own rules: it throws when no input requires grad, and its message warns
// that float64 is required when an input that requires grad is float32 (passing or failing).
// Tags [autograd] [gradcheck] [errors].
#include <catch2/catch.hpp>

#include <vector>

#include "tapegrad.h"

using Catch::Contains;
using Catch::StartsWith;
using tg::Tensor;
using Inputs = std::vector<Tensor>;

TEST_CASE("gradcheck throws when no input requires grad", "[autograd][gradcheck][errors]") {
  auto square = [](const Inputs& in) { return in[0] * in[0]; };
  Tensor x = tg::randn({3}, tg::kFloat64);
  CHECK_THROWS_WITH(tg::autograd::gradcheck(square, {x}),
                    "[gradcheck] expected at least one input that requires grad, got 1 inputs and none does");
  CHECK_THROWS_WITH(tg::autograd::gradcheck(square, {}), Contains("got 0 inputs"));
  CHECK(tg::autograd::gradcheck(square, {x.requires_grad_()}).message == "");
}

TEST_CASE("gradcheck's message warns that float64 is required for a float32 input", "[autograd][gradcheck]") {
  const std::string warning =
      "gradcheck: input 1 requires grad and is float32, not float64: gradcheck needs float64 inputs (central "
      "differences in float32 are too coarse; PyTorch fails this check)";
  auto product = [](const Inputs& in) { return in[0] * in[1].to(tg::kFloat64); };
  Tensor a = tg::randn({2, 2}, tg::kFloat64).requires_grad_();
  Tensor b = tg::randn({2, 2}).requires_grad_();
  // float32 central differences with the float64 eps are noise: the check fails, the warning first
  tg::autograd::GradcheckResult r = tg::autograd::gradcheck(product, {a, b});
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.message, StartsWith(warning + "; gradcheck: analytic vs numerical gradient for input 1"));
  // a float32 check that passes (a coarse eps and tolerance) still carries the warning
  tg::autograd::GradcheckResult loose =
      tg::autograd::gradcheck(product, {a, b}, {.eps = 1e-2, .atol = 1e-2, .rtol = 1e-2});
  CHECK(loose.ok);
  CHECK(loose.message == warning);
  // a float32 input that does not require grad is not checked and not warned about
  CHECK(tg::autograd::gradcheck(product, {a, tg::randn({2, 2})}).message == "");
}
