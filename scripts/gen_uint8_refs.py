#!/usr/bin/python3
# Writes tests/core/uint8_refs.inc: what PyTorch 1.13 gives for torch.uint8 tensors (wrap-around
# arithmetic, promotion, conversions from float and int64, checked fills, reductions, sorting,
# clamp, arange, seeded randint and randperm, in-place ops, indexing) on small fixed inputs, and
# which calls it refuses, with its message. Layer: tests (fixtures). Each row's name is the key of
# the C++ call that repeats it (tests/core/test_uint8.cpp through uint8_refs.h; the rows that need
# Tensor methods in tests/autograd/test_uint8_ops.cpp), which checks that every row has its
# call and every call its row. Comparisons give bool in PyTorch and int64 0/1 in tapegrad (the
# library's convention): the script writes them as int64. Run with Debian's python3-torch:
#   /usr/bin/python3 scripts/gen_uint8_refs.py
import math
import pathlib

import torch

from gen_tensor_ops_refs import number  # a value as a C++ literal (kNaN, kInf for the non-finite)

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "core" / "uint8_refs.inc"
DTYPES = {torch.uint8: "tg::kUInt8", torch.int64: "tg::kInt64", torch.float32: "tg::kFloat32",
          torch.float64: "tg::kFloat64"}

# The inputs, by name (the C++ side builds the same tensors from kInputs).
U8 = torch.uint8
INPUTS = {
    "u": torch.tensor([1, 200, 255], dtype=U8),
    "v": torch.tensor([2, 201, 0], dtype=U8),
    "w": torch.tensor([1, 7, 8, 9], dtype=U8),
    "m": torch.tensor([[7, 0, 255], [128, 3, 64]], dtype=U8),
    "sq": torch.tensor([[1, 2], [3, 200]], dtype=U8),
    "dup": torch.tensor([3, 200, 3, 0, 200], dtype=U8),
    "i": torch.tensor([1, 2, 3]),
    "big": torch.tensor([300, -1, 256, -256, 2**40 + 7, -(2**52) - 3]),
    # float32 values (written exactly); the conversion reads them through int64 as x86 does
    "f": torch.tensor([300.0, -1.0, 255.9, -0.5, 1e10, math.nan, math.inf, -math.inf, 2.5e19, -300.7, 2.5]),
}
INPUTS["d"] = INPUTS["f"].double()


def tensor_lit(t):
    if t.dtype == torch.bool:  # tapegrad's comparisons give int64 0/1
        t = t.long()
    values = ", ".join(number(v) for v in t.reshape(-1).tolist())
    return f"{{{DTYPES[t.dtype]}, {{{', '.join(str(s) for s in t.shape)}}}, {{{values}}}}}"


def seeded(seed, fn):
    def run(x):
        torch.manual_seed(seed)
        return fn(x)
    return run


def inplace(name, op):
    def run(x):
        t = x[name].clone()
        op(t)
        return t
    return run


def fill(value):
    return inplace("u", lambda t: t.fill_(value))


# name -> fn(inputs) returning a tensor or a tuple of tensors
RESULTS = {
    # arithmetic wraps around modulo 256; a Python int takes the tensor's dtype
    "u + 300": lambda x: x["u"] + 300,
    "u + -1": lambda x: x["u"] + (-1),
    "-u": lambda x: -x["u"],
    "u - 2": lambda x: x["u"] - 2,
    "2 - u": lambda x: 2 - x["u"],
    "u * 2": lambda x: x["u"] * 2,
    "u * -1": lambda x: x["u"] * -1,
    "u * u": lambda x: x["u"] * x["u"],
    "u - v": lambda x: x["u"] - x["v"],
    "u + v": lambda x: x["u"] + x["v"],
    "u ** 2": lambda x: x["u"] ** 2,
    "u ** v": lambda x: x["u"] ** x["v"],
    "2 ** w": lambda x: 2 ** x["w"],
    "maximum(u, v)": lambda x: torch.maximum(x["u"], x["v"]),
    "minimum(u, v)": lambda x: torch.minimum(x["u"], x["v"]),
    # promotion: true division and floats give float32, an int64 tensor gives int64
    "u / 2": lambda x: x["u"] / 2,
    "u / v": lambda x: x["u"] / x["v"],
    "u * 1.5": lambda x: x["u"] * 1.5,
    "u - 1.0": lambda x: x["u"] - 1.0,
    "u ** 0.5": lambda x: x["u"] ** 0.5,
    "u + i": lambda x: x["u"] + x["i"],
    "i - u": lambda x: x["i"] - x["u"],
    "u + f32": lambda x: x["u"] + x["i"].float(),
    "u * f64": lambda x: x["u"] * x["i"].double(),
    # comparisons: the scalar takes the tensor's dtype (-1 is 255, 300 is 44) unless it is a float
    "u == 200": lambda x: x["u"] == 200,
    "u < -1": lambda x: x["u"] < -1,
    "u < 300": lambda x: x["u"] < 300,
    "u > 255.5": lambda x: x["u"] > 255.5,
    "u >= v": lambda x: x["u"] >= x["v"],
    "u > i * 100": lambda x: x["u"] > x["i"] * 100,
    "u != u": lambda x: x["u"] != x["u"],
    # unary: abs and relu keep uint8 (the identity), the rest give float32
    "abs(u)": lambda x: x["u"].abs(),
    "abs(-u)": lambda x: (-x["u"]).abs(),
    "relu(u)": lambda x: torch.relu(x["u"]),
    "exp(u)": lambda x: x["u"].exp(),
    "log(u)": lambda x: x["u"].log(),
    "sqrt(u)": lambda x: x["u"].sqrt(),
    "sigmoid(u)": lambda x: x["u"].sigmoid(),
    "tanh(u)": lambda x: x["u"].tanh(),
    # conversions: float -> uint8 through int64 (x86's INT64_MIN when out of range) then the low
    # byte; int64 -> uint8 the low byte
    "f to uint8": lambda x: x["f"].to(U8),
    "d to uint8": lambda x: x["d"].to(U8),
    "big to uint8": lambda x: x["big"].to(U8),
    "u to int64": lambda x: x["u"].to(torch.int64),
    "u to float32": lambda x: x["u"].to(torch.float32),
    "u to float64": lambda x: x["u"].to(torch.float64),
    "copy_ float into uint8": lambda x: torch.zeros(3, dtype=U8).copy_(x["f"][:3]),
    "copy_ uint8 into float": lambda x: torch.zeros(3).copy_(x["u"]),
    # factories: a value is checked as c10's overflows<uint8_t>: integers in [-255, 255] (negative
    # ones wrap), floats in [0, 255] (truncated)
    "full -1": lambda x: torch.full([2], -1, dtype=U8),
    "full -255": lambda x: torch.full([2], -255, dtype=U8),
    "full 255": lambda x: torch.full([2], 255, dtype=U8),
    "full 2.5": lambda x: torch.full([2], 2.5, dtype=U8),
    "full 254.99": lambda x: torch.full([2], 254.99, dtype=U8),
    "tensor([-1, 255], uint8)": lambda x: torch.tensor([-1, 255], dtype=U8),
    "tensor([2.5, 0.5], uint8)": lambda x: torch.tensor([2.5, 0.5], dtype=U8),
    "zeros": lambda x: torch.zeros([2], dtype=U8),
    "ones": lambda x: torch.ones([2], dtype=U8),
    "fill_ -1": fill(-1),
    "fill_ -255": fill(-255),
    "fill_ 0.9": fill(0.9),
    "fill_ 255.0": fill(255.0),
    "arange 250, 260": lambda x: torch.arange(250, 260, dtype=U8),
    "arange -3, 3": lambda x: torch.arange(-3, 3, dtype=U8),
    "arange 0, 300, 100": lambda x: torch.arange(0, 300, 100, dtype=U8),
    "arange 0.5, 3": lambda x: torch.arange(0.5, 3.0, dtype=U8),
    "arange 1.5, 5, 1.5": lambda x: torch.arange(1.5, 5.0, 1.5, dtype=U8),
    "randint 0, 256 seed 0": seeded(0, lambda x: torch.randint(0, 256, [6], dtype=U8)),
    "randint 10, 20 seed 3": seeded(3, lambda x: torch.randint(10, 20, [5], dtype=U8)),
    "randperm 256 seed 1": seeded(1, lambda x: torch.randperm(256, dtype=U8)),
    # reductions: sum gives int64; max/min keep uint8; arg* give int64
    "sum(u)": lambda x: x["u"].sum(),
    "sum(m, 0)": lambda x: x["m"].sum(0),
    "sum(m, 1, keepdim)": lambda x: x["m"].sum(1, keepdim=True),
    "amax(m, 1)": lambda x: x["m"].amax(1),
    "amin(m, 0)": lambda x: x["m"].amin(0),
    "max(u)": lambda x: x["u"].max(),
    "argmax(u)": lambda x: x["u"].argmax(),
    "argmin(m, 1)": lambda x: x["m"].argmin(1),
    # linear algebra wraps as the elementwise ops do
    "sq @ sq": lambda x: x["sq"] @ x["sq"],
    "m @ m^T": lambda x: x["m"] @ x["m"].t(),
    "sq @ v[:2]": lambda x: x["sq"] @ x["v"][:2],
    # sorting (stable), topk
    "sort(dup)": lambda x: x["dup"].sort(stable=True),
    "sort(dup, descending)": lambda x: x["dup"].sort(descending=True, stable=True),
    "sort(m, 0)": lambda x: x["m"].sort(dim=0, stable=True),
    "topk(dup, 2)": lambda x: x["dup"].topk(2),
    "topk(m, 2, dim 1, smallest)": lambda x: x["m"].topk(2, dim=1, largest=False),
    # clamp: integer bounds checked as fill's, a float bound gives float32
    "clamp(u, 2, 250)": lambda x: x["u"].clamp(2, 250),
    "clamp(u, -1, 250)": lambda x: x["u"].clamp(-1, 250),
    "clamp(u, max=-1)": lambda x: x["u"].clamp(max=-1),
    "clamp(u, 1.5)": lambda x: x["u"].clamp(1.5),
    "clamp(u, v, v)": lambda x: x["u"].clamp(x["v"], x["v"]),
    # in place: the result keeps uint8 (an int64 other wraps into it)
    "u += 300": inplace("u", lambda t: t.add_(300)),
    "u -= 2": inplace("u", lambda t: t.sub_(2)),
    "u *= -1": inplace("u", lambda t: t.mul_(-1)),
    "u **= 2": inplace("u", lambda t: t.pow_(2)),
    "u += i * 100": lambda x: x["u"].clone().add_(x["i"] * 100),
    "i += u": lambda x: x["i"].clone().add_(x["u"]),
    "u += v, alpha 3": lambda x: x["u"].clone().add_(x["v"], alpha=3),
    # where, masked_fill's scalar, cat and stack, indexing, views
    "where(u > 100, u, 0)": lambda x: torch.where(x["u"] > 100, x["u"], torch.tensor(0, dtype=U8)),
    "where(u > 100, u, i)": lambda x: torch.where(x["u"] > 100, x["u"], x["i"]),
    "masked_fill(u > 100, -1)": lambda x: x["u"].masked_fill(x["u"] > 100, -1),
    "masked_fill(u > 100, 1.5)": lambda x: x["u"].masked_fill(x["u"] > 100, 1.5),
    "cat(u, v)": lambda x: torch.cat([x["u"], x["v"]]),
    "cat(u, i)": lambda x: torch.cat([x["u"], x["i"]]),
    "stack(u, v)": lambda x: torch.stack([x["u"], x["v"]]),
    "index_select(m, 1, [2, 0])": lambda x: x["m"].index_select(1, torch.tensor([2, 0])),
    "gather(m, 1, [[2], [0]])": lambda x: x["m"].gather(1, torch.tensor([[2], [0]])),
    "m^T + 1": lambda x: x["m"].t() + 1,
    "m[:, 1:] * 2": lambda x: x["m"][:, 1:] * 2,
    "m[1] - 129": lambda x: x["m"][1] - 129,
}

# name -> fn(inputs) that PyTorch refuses
REFUSALS = {
    "full 300": lambda x: torch.full([2], 300, dtype=U8),
    "full -256": lambda x: torch.full([2], -256, dtype=U8),
    "full 255.5": lambda x: torch.full([2], 255.5, dtype=U8),
    "full -0.5": lambda x: torch.full([2], -0.5, dtype=U8),
    "full nan": lambda x: torch.full([2], math.nan, dtype=U8),
    "tensor([300], uint8)": lambda x: torch.tensor([300], dtype=U8),
    "tensor([255.5], uint8)": lambda x: torch.tensor([255.5], dtype=U8),
    "fill_ 300": fill(300),
    "fill_ 256": fill(256),
    "fill_ -1.0": fill(-1.0),
    "fill_ 1e10": fill(1e10),
    "fill_ inf": fill(math.inf),
    "clamp(u, -1, 300)": lambda x: x["u"].clamp(-1, 300),
    "clamp(u, -256)": lambda x: x["u"].clamp(-256),
    "masked_fill(u > 100, 300)": lambda x: x["u"].masked_fill(x["u"] > 100, 300),
    "u ** -1": lambda x: x["u"] ** -1,
    "u += 1.5": inplace("u", lambda t: t.add_(1.5)),
    "u /= 2": inplace("u", lambda t: t.div_(2)),
    "u /= v": lambda x: x["u"].clone().div_(x["v"]),
    "u += f32": lambda x: x["u"].clone().add_(x["i"].float()),
    "mean(u)": lambda x: x["u"].mean(),
    "var(u)": lambda x: x["u"].var(),
    "norm(u)": lambda x: x["u"].norm(),
    "softmax(u)": lambda x: x["u"].softmax(0),
    "u @ i": lambda x: x["sq"] @ x["i"][:2],
    "arange 0, 2.7, 0.9": lambda x: torch.arange(0, 2.7, 0.9, dtype=U8),
    "randint 0, 257": lambda x: torch.randint(0, 257, [3], dtype=U8),
    "randint -1, 3": lambda x: torch.randint(-1, 3, [3], dtype=U8),
    "randperm 257": lambda x: torch.randperm(257, dtype=U8),
    "index_select(u, 0, u8 index)": lambda x: x["u"].index_select(0, x["u"] % 3),
    "requires_grad_": lambda x: x["u"].clone().requires_grad_(),
}


def main():
    lines = [
        "// Generated by scripts/gen_uint8_refs.py from PyTorch " + torch.__version__ + "; do not edit.",
        "// PyTorch's results for torch.uint8 (comparisons as int64 0/1) and the calls it refuses.",
        "namespace uint8_refs {",
        "inline const std::vector<std::pair<const char*, TensorRef>> kInputs = {",
    ]
    for name, t in INPUTS.items():
        lines.append(f'  {{"{name}", {tensor_lit(t)}}},')
    lines.append("};")
    lines.append("inline const std::vector<ResultRef> kResults = {")
    for name, fn in RESULTS.items():
        out = fn({k: v.clone() for k, v in INPUTS.items()})
        outputs = list(out) if isinstance(out, tuple) else [out]
        lines.append(f'  {{"{name}", {{{", ".join(tensor_lit(o) for o in outputs)}}}}},')
    lines.append("};")
    lines.append("// PyTorch's message for each call it refuses (tapegrad's own text is checked in the test).")
    lines.append("inline const std::vector<std::pair<const char*, const char*>> kRefusals = {")
    for name, fn in REFUSALS.items():
        try:
            fn({k: v.clone() for k, v in INPUTS.items()})
        except RuntimeError as e:
            message = str(e).splitlines()[0].replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'  {{"{name}", "{message}"}},')
        else:
            raise AssertionError(f"PyTorch accepts {name}")
    lines.append("};")
    lines.append("}  // namespace uint8_refs")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(RESULTS)} results and {len(REFUSALS)} refusals to {OUT}")


if __name__ == "__main__":
    main()
