#!/usr/bin/python3
# Writes tests/core/print_refs.inc and tests/autograd/print_autograd_refs.inc: for each case, a C++
# expression that builds a tensor with tapegrad's API and the text PyTorch 1.13 prints for the same
# tensor. The core rows build with tg::native alone (tests/core links without autograd); the rows
# that print requires_grad=True need autograd's requires_grad_. Layer: tests (fixtures).
# Run with Debian's python3-torch: /usr/bin/python3 scripts/gen_print_refs.py
# The one deliberate difference: the suffix reads `dtype=float64`, not `dtype=torch.float64`; the
# wrapping of suffixes (PyTorch's own _add_suffixes, patched below) is decided on that text.
import math
import pathlib

import numpy as np
import torch

TESTS = pathlib.Path(__file__).resolve().parent.parent / "tests"
OUT = TESTS / "core" / "print_refs.inc"
OUT_AUTOGRAD = TESTS / "autograd" / "print_autograd_refs.inc"

CPP_TYPE = {torch.float32: "float", torch.float64: "double", torch.int64: "std::int64_t", torch.uint8: "std::uint8_t"}


def literal(x, dtype):
    if dtype == torch.int64:
        assert x != -(2**63), "INT64_MIN has no C++ literal"
        return str(x)
    if dtype == torch.uint8:
        return str(x)
    kind = "float" if dtype == torch.float32 else "double"
    if math.isnan(x):
        sign = "-" if math.copysign(1.0, x) < 0 else ""
        return f"{sign}std::numeric_limits<{kind}>::quiet_NaN()"
    if math.isinf(x):
        return f"{'-' if x < 0 else ''}std::numeric_limits<{kind}>::infinity()"
    if dtype == torch.float64:
        return repr(x)
    text = str(np.float32(x))  # shortest decimal that reads back as this float32
    assert np.float32(text) == np.float32(x) and ("." in text or "e" in text), text
    return text + "f"


def _add_suffixes_tapegrad(tensor_str, suffixes, indent, force_newline):
    suffixes = [s.replace("dtype=torch.", "dtype=") for s in suffixes]
    return _add_suffixes_torch(tensor_str, suffixes, indent, force_newline)


_add_suffixes_torch = torch._tensor_str._add_suffixes
torch._tensor_str._add_suffixes = _add_suffixes_tapegrad


def build(t):
    """A tg::tensor(...) expression holding t's values (row-major) and shape."""
    values = ", ".join(literal(v, t.dtype) for v in t.reshape(-1).tolist())
    shape = ", ".join(str(s) for s in t.shape)
    return f"tg::tensor(std::vector<{CPP_TYPE[t.dtype]}>{{{values}}}, {{{shape}}})"


def to(expr, dtype):
    return f"tg::native::to({expr}, tg::{dtype})"


def reshape(expr, shape):
    return f"tg::native::reshape({expr}, {{{shape}}})"


def binary(op, expr, scalar):
    return f"tg::native::binary(tg::native::BinaryOp::{op}, {expr}, {scalar})"


def f32(values, shape=None):
    t = torch.tensor(values, dtype=torch.float32)
    return t.reshape(shape) if shape is not None else t


def main():
    torch.manual_seed(0)
    nan, inf = float("nan"), float("inf")
    cases = []  # (name, torch tensor, C++ expression)
    autograd_cases = []  # the same, for tensors that require grad

    def add(name, t, expr=None):
        (autograd_cases if t.requires_grad else cases).append((name, t, expr if expr is not None else build(t)))

    # --- float32 formatting modes ------------------------------------------------------------
    add("f32 fixed", f32([1.5, -2.25, 3.0]))
    add("f32 integer-valued", f32([1, 2, 3]))
    add("f32 random normal", torch.randn(6))
    add("f32 fixed wide", f32([99999.5, -100.25, 0.125]))
    add("f32 rounding", f32([0.00015, 0.12345, 1.00005, 2.99995]))
    add("f32 sci small", f32([1e-5, 1.0, 100.0]))
    add("f32 sci min just under 1e-4", f32([1e-4, 0.5]))
    add("f32 sci large", f32([1e9, 1.0, 2.5]))
    add("f32 sci ratio", f32([0.001, 5.0]))
    add("f32 sci mixed magnitudes", torch.randn(8) * torch.tensor([1e-3, 1e2, 1e5, 1.0] * 2))
    add("f32 1e8 and 1e-5", f32([1e8, 1e-5]))
    add("f32 int mode 1e8", f32([1e8, 5e7]))
    add("f32 int mode above 1e8", f32([1.5e8, 2e8]))
    add("f32 int mode sci ratio", f32([1.0, 2000.0, -3.0]))
    add("f32 all zeros", torch.zeros(2, 3), "tg::zeros({2, 3})")
    add("f32 negative zero", f32([-0.0, 1.0]))
    add("f32 negative zero fixed", f32([-0.0, 1.5]))
    add("f32 nan inf", f32([1.0, nan, inf]))
    add("f32 nan -inf fixed", f32([1.5, nan, -inf]))
    add("f32 only nonfinite", f32([nan, inf, -inf, 0.0]))
    add("f32 negative nan", f32([-nan, 2.5]))
    add("f32 sci with nan", f32([1e-5, nan, 1.0, -inf]))

    # --- int64 --------------------------------------------------------------------------------
    add("i64 arange", torch.arange(5), "tg::arange(5)")
    add("i64 negatives", torch.tensor([-5, 3, 120, -1000]))
    add("i64 extremes", torch.tensor([2**63 - 1, -(2**63 - 1), 0]))
    add("i64 2-D", torch.tensor([[1, -22, 333], [4444, 5, -6]]))

    # --- uint8 (PyTorch names its dtype: it is neither the default nor int64) -----------------
    add("u8", torch.tensor([1, 200, 255], dtype=torch.uint8))
    add("u8 2-D", torch.tensor([[0, 1], [10, 255]], dtype=torch.uint8))
    add("u8 rows wrap", (torch.arange(30) * 9).to(torch.uint8))
    add("summarize u8 2000", torch.arange(2000).to(torch.uint8), to("tg::arange(2000)", "kUInt8"))

    # --- float64 ------------------------------------------------------------------------------
    add("f64 suffix", torch.tensor([1.5, 2.0], dtype=torch.float64))
    add("f64 random", torch.randn(5, dtype=torch.float64))
    add("f64 sci", torch.tensor([1e-10, 1e10, -3.0], dtype=torch.float64))
    add("f64 long row", torch.randn(12, dtype=torch.float64))

    # --- 0-dim --------------------------------------------------------------------------------
    add("0-dim f32", torch.tensor(3.5))
    add("0-dim f32 integer", torch.tensor(3.0))
    add("0-dim f32 small", torch.tensor(1.25e-6))
    add("0-dim f32 nan", torch.tensor(nan))
    add("0-dim i64", torch.tensor(7))
    add("0-dim i64 huge", torch.tensor(123456789012345))
    add("0-dim f64", torch.tensor(2.25, dtype=torch.float64))
    add("0-dim u8", torch.tensor(7, dtype=torch.uint8))

    # --- empty --------------------------------------------------------------------------------
    add("empty 1-D", torch.zeros(0))
    add("empty [0, 3]", torch.zeros(0, 3))
    add("empty i64", torch.zeros(0, dtype=torch.int64))
    add("empty f64 [2, 0, 3]", torch.zeros(2, 0, 3, dtype=torch.float64))
    add("empty u8 [2, 0]", torch.zeros(2, 0, dtype=torch.uint8))

    # --- nesting ------------------------------------------------------------------------------
    add("2-D arange", torch.arange(6.0).reshape(2, 3), reshape(to("tg::arange(6)", "kFloat32"), "2, 3"))
    add("2-D random", torch.randn(3, 4))
    add("3-D random", torch.randn(2, 3, 4))
    add("4-D", (torch.arange(24.0).reshape(2, 2, 2, 3) - 11.5) / 4.0)
    add("5-D", torch.randn(2, 1, 2, 1, 2))

    # --- line wrapping ------------------------------------------------------------------------
    add("1-D 30 random", torch.randn(30))
    add("2-D rows wrap", torch.randn(2, 30))
    add("3-D rows wrap", torch.randn(2, 2, 15) * 100)
    add("i64 arange 100", torch.arange(100), "tg::arange(100)")
    add("f32 1000 not summarized", torch.arange(1000.0), to("tg::arange(1000)", "kFloat32"))

    # --- summarization ------------------------------------------------------------------------
    add("summarize 1-D 1001", torch.arange(1001.0), to("tg::arange(1001)", "kFloat32"))
    add("summarize 1-D 2000", torch.randn(2000))
    add("summarize 1-D 2000 arange", torch.arange(2000.0), to("tg::arange(2000)", "kFloat32"))
    add("summarize i64 2000", torch.arange(2000) - 1000, "tg::arange(-1000, 1000)")
    add("summarize 2-D 40x40", torch.randn(40, 40))
    add("summarize 2-D 3x1000", torch.randn(3, 1000) * 10)
    add("summarize 2-D 1x2000", torch.arange(2000.0).reshape(1, 2000) / 8,
        binary("Div", reshape(to("tg::arange(2000)", "kFloat32"), "1, 2000"), "8.0"))
    add("summarize 3-D 10x10x20", torch.arange(2000.0).reshape(10, 10, 20),
        reshape(to("tg::arange(2000)", "kFloat32"), "10, 10, 20"))
    add("summarize 3-D 8x8x20 f64", torch.arange(1280.0, dtype=torch.float64).reshape(8, 8, 20) * 1e-3,
        binary("Mul", reshape(to("tg::arange(1280)", "kFloat64"), "8, 8, 20"), "1e-3"))

    # --- strided views ------------------------------------------------------------------------
    base = torch.randn(3, 4)
    add("transposed", base.t(), f"tg::native::transpose({build(base)}, 0, 1)")
    base = torch.arange(12.0).reshape(3, 4)
    add("sliced with step", base[:, ::2], f"tg::native::slice({build(base)}, 1, 0, 4, 2)")
    add("selected row", base[1], f"tg::native::select({build(base)}, 0, 1)")
    base = torch.tensor([1.5, -2.0, 3.25])
    add("expanded", base.expand(2, 3), f"tg::native::expand({build(base)}, {{2, 3}})")

    # --- requires_grad ------------------------------------------------------------------------
    add("requires_grad", f32([1, 2]).requires_grad_(), build(f32([1, 2])) + ".requires_grad_()")
    for n in (7, 8, 9):
        t = torch.randn(n)
        add(f"requires_grad wrap {n}", t.clone().requires_grad_(), build(t) + ".requires_grad_()")
    t = torch.randn(10, dtype=torch.float64)
    add("f64 requires_grad wrap", t.clone().requires_grad_(), build(t) + ".requires_grad_()")
    t = torch.randn(3, 3)
    add("2-D requires_grad", t.clone().requires_grad_(), build(t) + ".requires_grad_()")

    write(OUT, cases)
    write(OUT_AUTOGRAD, autograd_cases)


def write(out, cases):
    lines = [
        "// Generated by scripts/gen_print_refs.py from PyTorch " + torch.__version__ + "; do not edit.",
        "// Rows of {name, builder, the text PyTorch prints}; `dtype=torch.float64` reads `dtype=float64`.",
    ]
    for name, t, expr in cases:
        expected = str(t)
        assert "torch." not in expected and ')tg"' not in expected
        lines.append(f'{{"{name}", [] {{ return {expr}; }},\n R"tg({expected})tg"}},')
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(cases)} cases to {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
