#!/usr/bin/python3
# Writes tests/autograd/tensor_ops_refs.inc: PyTorch 1.13's cat, stack, where, masked_fill,
# index_select, gather, scatter_add, one_hot, topk, sort, softmax, log_softmax, logsumexp, clamp
# (scalar and tensor bounds) and norm on small fixed inputs, with the gradients of sum(w ⊙ out)
# for every floating input. Layer: tests (fixtures). Float inputs are float32 values written
# exactly; references are computed in float64. Each row's name is the key of the C++ call that
# repeats it (tests/autograd/test_tensor_ops.cpp). Run with Debian's python3-torch:
#   /usr/bin/python3 scripts/gen_tensor_ops_refs.py
import math
import pathlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "autograd" / "tensor_ops_refs.inc"
DTYPES = {torch.float64: "tg::kFloat64", torch.int64: "tg::kInt64"}


def f32(*shape, scale=1.0, offset=0.0):
    """randn values rounded to float32 (so C++ can build them exactly), held as float64."""
    return (torch.randn(shape) * scale + offset).to(torch.float32).double()


def idx(values):
    return torch.tensor(values, dtype=torch.int64)


def mask(*shape):
    return torch.randint(0, 2, shape, dtype=torch.int64)


def number(v):
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "kNaN"
    if math.isinf(v):
        return "kInf" if v > 0 else "-kInf"
    return repr(v)


def tensor_lit(t):
    values = ", ".join(number(v) for v in t.detach().reshape(-1).tolist())
    return f"{{{DTYPES[t.dtype]}, {{{', '.join(str(s) for s in t.shape)}}}, {{{values}}}}}"


def values_lit(t):
    return "{}" if t is None else "{" + ", ".join(number(float(v)) for v in t.detach().reshape(-1).tolist()) + "}"


def row(name, fn, inputs):
    """One OpRef: fn(*inputs) -> a tensor or a (values, indices) pair."""
    leaves = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out = fn(*leaves)
    outputs = list(out) if isinstance(out, tuple) else [out]
    w = None
    if outputs[0].requires_grad:
        w = f32(*outputs[0].shape)
        outputs[0].backward(w)
    grads = [t.grad if t.is_floating_point() else None for t in leaves]
    if w is not None:
        grads = [g if g is not None or not t.is_floating_point() else torch.zeros_like(t) for g, t in zip(grads, leaves)]
    return (f'{{"{name}",\n  {{{", ".join(tensor_lit(t) for t in inputs)}}},\n'
            f'  {{{", ".join(tensor_lit(o) for o in outputs)}}},\n  {values_lit(w)},\n'
            f'  {{{", ".join(values_lit(g) for g in grads)}}}}},')


def main():
    torch.manual_seed(1313)
    torch.set_default_dtype(torch.float64)
    inf = float("inf")
    ties = torch.tensor([3.0, 1.0, 2.0, 1.0, 3.0, 2.0, 1.0, 2.0])
    near_bounds = f32(3, 4)
    lo, hi = f32(4, scale=0.5, offset=-0.3), f32(3, 1, scale=0.5, offset=0.6)
    near_bounds[0, 1] = lo[1]          # on the lower bound: the gradient goes to x
    near_bounds[1, 2] = hi[1, 0]       # on the upper bound: to x too
    hi[2, 0] = -1.0                    # a row with max < min: every element becomes max
    rows = [
        row("cat dim 0", lambda a, b: torch.cat([a, b], 0), [f32(2, 3), f32(1, 3)]),
        row("cat dim -1 three", lambda a, b, c: torch.cat([a, b, c], -1), [f32(2, 1), f32(2, 3), f32(2, 2)]),
        row("cat [2, 3, 2] dim 1", lambda a, b: torch.cat([a, b], 1), [f32(2, 3, 2), f32(2, 1, 2)]),
        row("cat skips [0]", lambda a, b: torch.cat([a, b], 1), [f32(2, 3), f32(0)]),
        row("stack dim 0", lambda a, b: torch.stack([a, b], 0), [f32(2, 3), f32(2, 3)]),
        row("stack dim -1", lambda a, b, c: torch.stack([a, b, c], -1), [f32(2, 3), f32(2, 3), f32(2, 3)]),
        row("stack 0-dim", lambda a, b: torch.stack([a, b]), [f32(), f32()]),
        row("where", lambda c, a, b: torch.where(c.bool(), a, b), [mask(3, 4), f32(3, 4), f32(3, 4)]),
        row("where broadcast", lambda c, a, b: torch.where(c.bool(), a, b), [mask(3, 1), f32(1, 4), f32(4)]),
        row("where scalar other", lambda c, a: torch.where(c.bool(), a, 0.5), [mask(3, 4), f32(3, 4)]),
        row("where scalar input", lambda c, b: torch.where(c.bool(), -1.5, b), [mask(4), f32(2, 4)]),
        row("masked_fill", lambda a, m: a.masked_fill(m.bool(), -2.5), [f32(3, 4), mask(3, 4)]),
        row("masked_fill mask broadcast", lambda a, m: a.masked_fill(m.bool(), 1.0), [f32(3, 4), mask(4)]),
        row("masked_fill mask grows", lambda a, m: a.masked_fill(m.bool(), 0.0), [f32(4), mask(2, 4)]),
        row("masked_fill tensor value", lambda a, m, v: a.masked_fill(m.bool(), v), [f32(3, 4), mask(3, 4), f32()]),
        row("index_select 0", lambda a, i: a.index_select(0, i), [f32(4, 3), idx([3, 0, 3])]),
        row("index_select 1", lambda a, i: a.index_select(1, i), [f32(2, 4, 3), idx([2, 1])]),
        row("index_select 0-dim index", lambda a, i: a.index_select(1, i), [f32(3, 4), idx(2)]),
        row("gather 1", lambda a, i: a.gather(1, i), [f32(3, 4), idx([[0, 3], [2, 2], [1, 0]])]),
        row("gather 0 longer index", lambda a, i: a.gather(0, i), [f32(3, 4), idx([[2, 0], [1, 1], [0, 2], [2, 2], [1, 0]])]),
        row("gather [2, 3, 4] dim 2", lambda a, i: a.gather(2, i), [f32(2, 3, 4), torch.randint(0, 4, (2, 3, 2))]),
        row("scatter_add 0", lambda a, i, s: a.scatter_add(0, i, s),
            [f32(3, 4), idx([[0, 1, 2, 0], [2, 2, 0, 0]]), f32(2, 4)]),
        row("scatter_add [2, 3, 4] dim -1", lambda a, i, s: a.scatter_add(-1, i, s),
            [f32(2, 3, 4), torch.randint(0, 4, (2, 3, 5)), f32(2, 3, 5)]),
    ]
    # A src larger than index: PyTorch 1.13's own backward rejects the gradient it makes ([3, 2]
    # for src [3, 5]), so the reference scatters the part of src that index reaches; slicing pads
    # src's gradient with zeros, which is the gradient of the C++ call on the whole src.
    rows.append(row("scatter_add src larger", lambda a, i, s: torch.scatter_add(a, 1, i, s[:, :2]),
                    [f32(3, 4), idx([[0, 3], [2, 2], [1, 0]]), f32(3, 5)]))
    rows += [
        row("one_hot", lambda l: F.one_hot(l), [idx([0, 2, 1, 2])]),
        row("one_hot [2, 3] 5 classes", lambda l: F.one_hot(l, 5), [idx([[4, 0, 1], [3, 3, 0]])]),
        row("topk 2", lambda a: a.topk(2), [f32(3, 5)]),
        row("topk 3 smallest dim 0", lambda a: a.topk(3, 0, largest=False), [f32(4, 3)]),
        row("topk [2, 4, 3] dim 1", lambda a: a.topk(2, 1), [f32(2, 4, 3)]),
        row("topk nan is largest", lambda a: a.topk(2), [torch.tensor([1.0, float("nan"), 3.0, 2.0])]),
        row("sort", lambda a: a.sort(), [f32(3, 5)]),
        row("sort descending dim 0", lambda a: a.sort(0, True), [f32(4, 3)]),
        row("sort ties are stable", lambda a: a.sort(stable=True), [ties]),
        row("sort descending ties are stable", lambda a: a.sort(descending=True, stable=True), [ties]),
        row("sort nan last", lambda a: a.sort(), [torch.tensor([1.0, float("nan"), -inf, 2.0])]),
        row("softmax dim 1", lambda a: torch.softmax(a, 1), [f32(3, 5)]),
        row("softmax [2, 3, 4] dim 0", lambda a: torch.softmax(a, 0), [f32(2, 3, 4)]),
        row("softmax large logits", lambda a: torch.softmax(a, -1), [f32(2, 6, scale=50.0, offset=800.0)]),
        row("log_softmax dim -1", lambda a: torch.log_softmax(a, -1), [f32(3, 5)]),
        row("log_softmax [2, 3, 4] dim 1", lambda a: torch.log_softmax(a, 1), [f32(2, 3, 4)]),
        row("log_softmax large logits", lambda a: torch.log_softmax(a, 1), [f32(2, 6, scale=50.0, offset=-800.0)]),
        row("logsumexp dim 1", lambda a: torch.logsumexp(a, 1), [f32(3, 5)]),
        row("logsumexp dims 0, 2 keepdim", lambda a: torch.logsumexp(a, (0, 2), keepdim=True), [f32(2, 3, 4)]),
        row("logsumexp all dims", lambda a: torch.logsumexp(a, (0, 1, 2)), [f32(2, 3, 4)]),
        row("logsumexp large", lambda a: torch.logsumexp(a, -1), [f32(3, 4, scale=30.0, offset=1000.0)]),
        row("logsumexp infinities", lambda a: torch.logsumexp(a, 1),
            [torch.tensor([[-inf, -inf], [inf, 1.0], [-inf, 0.5]])]),
        row("clamp scalars", lambda a: a.clamp(-0.5, 0.7), [f32(3, 4)]),
        row("clamp min only", lambda a: a.clamp(min=0.25), [f32(3, 4)]),
        row("clamp max only", lambda a: a.clamp(max=-0.1), [f32(3, 4)]),
        row("clamp min > max", lambda a: a.clamp(0.5, -0.5), [f32(3, 4)]),
        row("clamp tensor bounds", lambda a, l, h: torch.clamp(a, l, h), [near_bounds, lo, hi]),
        row("clamp tensor min", lambda a, l: torch.clamp(a, min=l), [f32(3, 4), f32(3, 1)]),
        row("clamp tensor max", lambda a, h: torch.clamp(a, max=h), [f32(3, 4), f32(4)]),
        row("norm", lambda a: a.norm(), [f32(3, 4)]),
        row("norm 1 dim 1", lambda a: a.norm(1, 1), [f32(3, 4)]),
        row("norm inf dim 0", lambda a: a.norm(inf, 0), [f32(3, 4)]),
        row("norm -inf dim 1", lambda a: a.norm(-inf, 1), [f32(3, 4)]),
        row("norm 0 dim 1", lambda a: a.norm(0, 1), [torch.tensor([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]])]),
        row("norm 3.5 dims 0, 2 keepdim", lambda a: a.norm(3.5, (0, 2), True), [f32(2, 3, 4)]),
        row("norm 1.5 dim -1", lambda a: a.norm(1.5, -1), [f32(3, 4)]),
        row("norm 0.5 dim 1", lambda a: a.norm(0.5, 1), [f32(3, 4)]),
        row("norm -1 dim 1", lambda a: a.norm(-1, 1), [f32(3, 4)]),
        row("norm 2 of zeros", lambda a: a.norm(2, 1), [torch.tensor([[0.0, 0.0], [3.0, -4.0]])]),
    ]
    text = [
        f"// Generated by scripts/gen_tensor_ops_refs.py from PyTorch {torch.__version__}; do not edit.",
        "// Each row: an op's inputs (float values are float32 written exactly), its outputs (a tensor, or",
        "// values and indices), the weights w of sum(w ⊙ outputs[0]) (empty when not differentiable) and",
        "// PyTorch's gradient of that sum for each input, in float64 (empty for int64 inputs).",
        "// Included by tests/autograd/test_tensor_ops.cpp, which repeats each call under the row's name.",
        "#pragma once",
        "",
        "#include <limits>",
        "#include <vector>",
        "",
        '#include "tapegrad/core/tensor.h"',
        "",
        "namespace tensor_ops_refs {",
        "",
        "using Values = std::vector<double>;",
        "inline constexpr double kInf = std::numeric_limits<double>::infinity();",
        "inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();",
        "",
        "struct TensorRef {",
        "  tg::DType dtype;",
        "  tg::Shape shape;",
        "  Values values;",
        "};",
        "",
        "struct OpRef {",
        "  const char* name;",
        "  std::vector<TensorRef> inputs;",
        "  std::vector<TensorRef> outputs;",
        "  Values w;",
        "  std::vector<Values> grads;",
        "};",
        "",
        "inline const std::vector<OpRef> kOps = {",
    ]
    text.extend(rows)
    text += ["};", "", "}  // namespace tensor_ops_refs"]
    OUT.write_text("\n".join(text) + "\n")
    print(f"wrote {OUT} ({len(rows)} rows, {OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
