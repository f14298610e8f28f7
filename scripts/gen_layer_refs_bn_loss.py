#!/usr/bin/python3
# Writes tests/layers/bn_loss_refs.inc: PyTorch 1.13's batch_norm (training with the updated
# running statistics, eval, no affine), cross_entropy, log_softmax, softmax, mse_loss and linear
# on small fixed inputs, with the gradients of sum(w ⊙ out). Layer: tests (fixtures). Inputs are
# float32 values written exactly; references are computed in float64. Run with Debian's
# python3-torch: /usr/bin/python3 scripts/gen_layer_refs_bn_loss.py
import pathlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "layers" / "bn_loss_refs.inc"
REDUCTIONS = {"mean": "tg::Reduction::Mean", "sum": "tg::Reduction::Sum", "none": "tg::Reduction::None"}


def f32(*shape, scale=1.0, offset=0.0):
    """randn values rounded to float32 (so C++ can build them exactly), held as float64."""
    return (torch.randn(*shape) * scale + offset).to(torch.float32).double()


def lit(t):
    """A C++ braced list of a tensor's values, row-major, each the shortest exact repr."""
    if t is None:
        return "{}"
    return "{" + ", ".join(repr(float(v)) for v in t.detach().reshape(-1).tolist()) + "}"


def shape(t):
    return "{" + ", ".join(str(s) for s in t.shape) + "}"


def leaf(t):
    return None if t is None else t.clone().requires_grad_(True)


def grad(t):
    return None if t is None or t.grad is None else t.grad


def batch_norm_row(name, xshape, training, affine, running, momentum=0.1, eps=1e-5):
    c = xshape[1]
    channel_offset = f32(1, c, *([1] * (len(xshape) - 2)), scale=2.0)
    x = (f32(*xshape, scale=1.5, offset=0.5) + channel_offset).to(torch.float32).double()
    weight = f32(c, scale=0.5, offset=1.0) if affine else None
    bias = f32(c) if affine else None
    rm = f32(c, scale=0.3) if running else None
    rv = (f32(c, scale=0.3).abs() + 0.5).to(torch.float32).double() if running else None
    w = f32(*xshape)
    x_in, w_in, b_in = leaf(x), leaf(weight), leaf(bias)
    rm_after, rv_after = (rm.clone(), rv.clone()) if running else (None, None)
    y = F.batch_norm(x_in, rm_after, rv_after, w_in, b_in, training=training, momentum=momentum, eps=eps)
    y.backward(w)
    return (f'{{"{name}", {str(training).lower()}, {momentum!r}, {eps!r}, {shape(x)},\n'
            f' {lit(x)},\n {lit(weight)}, {lit(bias)}, {lit(rm)}, {lit(rv)},\n {lit(w)},\n'
            f' {lit(y)},\n {lit(rm_after)}, {lit(rv_after)},\n {lit(grad(x_in))},\n'
            f' {lit(grad(w_in))}, {lit(grad(b_in))}}},')


def cross_entropy_row(name, n, c, reduction, scale=3.0, offset=0.0):
    logits = f32(n, c, scale=scale, offset=offset)
    target = torch.randint(0, c, (n,))
    w = f32(n) if reduction == "none" else f32(1).reshape(())
    x = leaf(logits)
    loss = F.cross_entropy(x, target, reduction=reduction)
    loss.backward(w)
    return (f'{{"{name}", {REDUCTIONS[reduction]}, {n}, {c},\n {lit(logits)},\n'
            f' {{{", ".join(str(int(v)) for v in target)}}}, {lit(w)},\n {lit(loss)},\n {lit(x.grad)}}},')


def softmax_row(name, xshape, dim, log):
    xv = f32(*xshape, scale=2.0)
    w = f32(*xshape)
    x = leaf(xv)
    y = F.log_softmax(x, dim) if log else F.softmax(x, dim)
    y.backward(w)
    return (f'{{"{name}", {str(log).lower()}, {dim}, {shape(xv)},\n {lit(xv)},\n {lit(w)},\n'
            f' {lit(y)},\n {lit(x.grad)}}},')


def mse_row(name, xshape, reduction):
    a, b = f32(*xshape), f32(*xshape)
    w = f32(*xshape) if reduction == "none" else f32(1).reshape(())
    ai, bi = leaf(a), leaf(b)
    loss = F.mse_loss(ai, bi, reduction=reduction)
    loss.backward(w)
    return (f'{{"{name}", {REDUCTIONS[reduction]}, {shape(a)},\n {lit(a)},\n {lit(b)},\n {lit(w)},\n'
            f' {lit(loss)},\n {lit(ai.grad)},\n {lit(bi.grad)}}},')


def linear_row(name, xshape, out_features, with_bias):
    x = f32(*xshape)
    weight = f32(out_features, xshape[-1], scale=0.5)
    bias = f32(out_features) if with_bias else None
    xi, wi, bi = leaf(x), leaf(weight), leaf(bias)
    y = F.linear(xi, wi, bi)
    w = f32(*y.shape)
    y.backward(w)
    return (f'{{"{name}", {shape(x)}, {shape(weight)},\n {lit(x)},\n {lit(weight)}, {lit(bias)},\n'
            f' {lit(w)},\n {lit(y)},\n {lit(xi.grad)},\n {lit(wi.grad)}, {lit(grad(bi))}}},')


def main():
    torch.manual_seed(1234)
    torch.set_default_dtype(torch.float64)
    bn = [
        batch_norm_row("train [6, 3]", (6, 3), True, True, True),
        batch_norm_row("train [3, 4, 5] momentum 0.25", (3, 4, 5), True, True, True, momentum=0.25),
        batch_norm_row("train [2, 3, 4, 5]", (2, 3, 4, 5), True, True, True),
        batch_norm_row("train [4, 2, 3, 3] no affine, no running stats, eps 1e-3", (4, 2, 3, 3), True, False, False,
                       eps=1e-3),
        batch_norm_row("train [2, 2, 3, 3] running stats, no affine", (2, 2, 3, 3), True, False, True),
        batch_norm_row("eval [2, 3, 4, 5]", (2, 3, 4, 5), False, True, True),
        batch_norm_row("eval [5, 4] no affine", (5, 4), False, False, True),
        batch_norm_row("eval [1, 4, 3] one sample", (1, 4, 3), False, True, True),
    ]
    ce = [
        cross_entropy_row("mean [6, 5]", 6, 5, "mean"),
        cross_entropy_row("sum [6, 5]", 6, 5, "sum"),
        cross_entropy_row("none [6, 5]", 6, 5, "none"),
        cross_entropy_row("mean [8, 10] large logits", 8, 10, "mean", scale=40.0, offset=500.0),
        cross_entropy_row("none [3, 1] one class", 3, 1, "none"),
    ]
    sm = [
        softmax_row("log_softmax [4, 6] dim 1", (4, 6), 1, True),
        softmax_row("log_softmax [3, 4, 5] dim 1", (3, 4, 5), 1, True),
        softmax_row("log_softmax [3, 4, 5] dim 0", (3, 4, 5), 0, True),
        softmax_row("log_softmax [3, 4, 5] dim -1", (3, 4, 5), -1, True),
        softmax_row("softmax [4, 6] dim -1", (4, 6), -1, False),
        softmax_row("softmax [3, 4, 5] dim 1", (3, 4, 5), 1, False),
        softmax_row("softmax [3, 4, 5] dim 0", (3, 4, 5), 0, False),
    ]
    mse = [
        mse_row("mean [3, 4]", (3, 4), "mean"),
        mse_row("sum [3, 4]", (3, 4), "sum"),
        mse_row("none [2, 3, 2]", (2, 3, 2), "none"),
    ]
    lin = [
        linear_row("[4, 3] -> 5 with bias", (4, 3), 5, True),
        linear_row("[4, 3] -> 5 no bias", (4, 3), 5, False),
        linear_row("[2, 3, 4] -> 2 with bias", (2, 3, 4), 2, True),
        linear_row("[3] -> 4 with bias", (3,), 4, True),
    ]
    text = [
        f"// Generated by scripts/gen_layer_refs_bn_loss.py from PyTorch {torch.__version__}; do not edit.",
        "// Inputs are float32 values written exactly; outputs and gradients of sum(w ⊙ out) are PyTorch's in",
        "// float64. An empty list stands for an undefined tensor. Included by the [layers] tests.",
        "#pragma once",
        "",
        "#include <cstdint>",
        "#include <vector>",
        "",
        '#include "layers/functional.h"',
        "",
        "namespace bn_loss_refs {",
        "",
        "using Values = std::vector<double>;",
        "",
        "struct BatchNormRef {",
        "  const char* name;",
        "  bool training;",
        "  double momentum, eps;",
        "  tg::Shape shape;",
        "  Values x, weight, bias, running_mean, running_var, w;",
        "  Values y, running_mean_after, running_var_after, dx, dweight, dbias;",
        "};",
        "",
        "struct CrossEntropyRef {",
        "  const char* name;",
        "  tg::Reduction reduction;",
        "  std::int64_t n, c;",
        "  Values logits;",
        "  std::vector<std::int64_t> target;",
        "  Values w, loss, dlogits;",
        "};",
        "",
        "struct SoftmaxRef {",
        "  const char* name;",
        "  bool log;",
        "  std::int64_t dim;",
        "  tg::Shape shape;",
        "  Values x, w, y, dx;",
        "};",
        "",
        "struct MseRef {",
        "  const char* name;",
        "  tg::Reduction reduction;",
        "  tg::Shape shape;",
        "  Values input, target, w, loss, dinput, dtarget;",
        "};",
        "",
        "struct LinearRef {",
        "  const char* name;",
        "  tg::Shape x_shape, weight_shape;",
        "  Values x, weight, bias, w, y, dx, dweight, dbias;",
        "};",
        "",
    ]
    for typ, name, rows in [("BatchNormRef", "kBatchNorm", bn), ("CrossEntropyRef", "kCrossEntropy", ce),
                            ("SoftmaxRef", "kSoftmax", sm), ("MseRef", "kMse", mse), ("LinearRef", "kLinear", lin)]:
        text.append(f"inline const std::vector<{typ}> {name} = {{")
        text.extend(rows)
        text.append("};")
        text.append("")
    text.append("}  // namespace bn_loss_refs")
    OUT.write_text("\n".join(text) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
