// docs/CUSTOM_OPS.md's program: every ```cpp block of the page is here verbatim, and what this
// prints is the page's ```text blocks (CTest docs.custom_ops, scripts/check-doc-code). Change
// both together. Layer: tests (docs).
#include <tapegrad.h>

#include <iostream>
#include <vector>

using tg::Tensor;

// hypot(a, b) = √(a² + b²) elementwise, as torch.hypot (inputs of one shape here).
// y² = a² + b²  ⇒  2y·dy = 2a·da + 2b·db  ⇒  ∂y/∂a = a / y,  ∂y/∂b = b / y.
Tensor hypot(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.sizes() == b.sizes(), "[hypot] expected inputs of one shape, got {} and {}", a.sizes(), b.sizes());
  Tensor y;
  {
    tg::NoGradGuard no_grad;  // the forward's own ops stay off the tape: one entry stands for them
    y = (a * a + b * b).sqrt();
  }
  return tg::autograd::record(
      "HypotBackward0", y, {a, b},
      [a, b, y_saved = tg::native::alias(y)](const Tensor& grad) {
        return std::vector<Tensor>{grad * a / y_saved, grad * b / y_saved};
      },
      /*saved=*/{a, b, y});
}

// y = x where mask is 0, −x where it is 1 (mask: int64 of 0 and 1). dx = dy·(1 − 2·mask); the
// mask gets no gradient. The backward reads the mask only, so only the mask is saved.
Tensor flip_where(const Tensor& x, const Tensor& mask) {
  TG_CHECK(mask.dtype() == tg::kInt64, "[flip_where] expected an int64 mask, got {}", tg::dtype_name(mask.dtype()));
  Tensor y;
  {
    tg::NoGradGuard no_grad;
    y = x * (1 - mask * 2);
  }
  return tg::autograd::record(
      "FlipWhereBackward", y, {x, mask},
      [mask](const Tensor& grad) { return std::vector<Tensor>{grad * (1 - mask * 2), Tensor()}; },
      /*saved=*/{mask});
}

// Wrong on purpose: the gradient misses the division by y.
Tensor bad_hypot(const Tensor& a, const Tensor& b) {
  Tensor y;
  {
    tg::NoGradGuard no_grad;
    y = (a * a + b * b).sqrt();
  }
  return tg::autograd::record("BadHypotBackward", y, {a, b}, [a, b](const Tensor& grad) {
    return std::vector<Tensor>{grad * a, grad * b};
  });
}

int main() {
  Tensor a = tg::tensor({3.0, 5.0, 8.0}, tg::kFloat64).requires_grad_();
  Tensor b = tg::tensor({4.0, 12.0, 15.0}, tg::kFloat64).requires_grad_();
  Tensor y = hypot(a, b);
  std::cout << y << "\n";
  y.sum().backward();
  std::cout << a.grad() << "\n" << b.grad() << "\n";

  Tensor off_tape = hypot(a.detach(), b.detach());  // no input requires grad: nothing recorded
  std::cout << std::boolalpha << off_tape.requires_grad() << "\n";
  {
    tg::NoGradGuard no_grad;  // grad mode off: nothing recorded either
    std::cout << hypot(a, b).requires_grad() << "\n";
  }

  Tensor d = tg::tensor({1.0, 1.0, 1.0}, tg::kFloat64);  // a constant input
  Tensor h = hypot(a, d);
  d.mul_(2.0);  // hypot's backward would now read the wrong d
  try {
    h.sum().backward();
  } catch (const tg::Error& e) {
    std::cout << e.what() << "\n";
  }

  Tensor x = tg::tensor({1.0, 2.0, 3.0}).requires_grad_();
  Tensor mask = tg::tensor({0, 1, 0});
  Tensor flipped = flip_where(x, mask);
  {
    tg::NoGradGuard no_grad;
    x.mul_(10.0);  // as an optimizer's step would: fine, flip_where's backward does not read x
  }
  flipped.backward(tg::tensor({1.0, 1.0, 1.0}));
  std::cout << flipped << "\n" << x.grad() << "\n";

  try {
    hypot(a, tg::ones({2}, tg::kFloat64));
  } catch (const tg::Error& e) {
    std::cout << e.what() << "\n";
  }

  tg::manual_seed(0);
  std::vector<Tensor> inputs = {tg::randn({3, 4}, tg::kFloat64).requires_grad_(),
                                tg::randn({3, 4}, tg::kFloat64).requires_grad_()};
  auto good = tg::autograd::gradcheck([](const std::vector<Tensor>& in) { return hypot(in[0], in[1]); }, inputs);
  std::cout << static_cast<bool>(good) << "\n";

  auto bad = tg::autograd::gradcheck([](const std::vector<Tensor>& in) { return bad_hypot(in[0], in[1]); }, inputs);
  std::cout << static_cast<bool>(bad) << ": " << bad.message << "\n";
}
