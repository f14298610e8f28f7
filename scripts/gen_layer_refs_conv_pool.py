#!/usr/bin/python3
# Writes tests/layers/conv_pool_refs.inc: PyTorch 1.13's conv2d, avg_pool2d and max_pool2d on small
# random inputs (emitted as literals; float64 ones rounded to 4 decimals), with the outputs and the
# gradients of sum(gy * y).
# Layer: tests (fixtures). Run with Debian's python3-torch:
# /usr/bin/python3 scripts/gen_layer_refs_conv_pool.py
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "layers" / "conv_pool_refs.inc"
DTYPES = {"f32": (torch.float32, "tg::kFloat32"), "f64": (torch.float64, "tg::kFloat64")}

# name, dtype, x shape, weight shape, bias, stride, padding, groups
CONV_CASES = [
    ("stride 1 padding 0", "f32", [2, 3, 7, 6], [4, 3, 3, 3], True, (1, 1), (0, 0), 1),
    ("stride 2 padding 1", "f32", [2, 3, 7, 6], [4, 3, 3, 3], True, (2, 2), (1, 1), 1),
    ("stride 1 padding 2", "f64", [1, 2, 5, 5], [3, 2, 3, 3], True, (1, 1), (2, 2), 1),
    ("non-square kernel, stride, padding", "f64", [2, 2, 7, 9], [3, 2, 2, 4], True, (2, 1), (1, 2), 1),
    ("groups 2", "f32", [2, 4, 6, 6], [6, 2, 3, 3], True, (1, 1), (1, 1), 2),
    ("groups 2 float64 strided", "f64", [1, 4, 7, 7], [4, 2, 3, 2], True, (2, 3), (0, 1), 2),
    ("no bias", "f64", [1, 3, 6, 5], [2, 3, 3, 2], False, (1, 2), (0, 1), 1),
    ("stride larger than kernel", "f32", [1, 2, 8, 8], [2, 2, 2, 2], True, (3, 3), (0, 0), 1),
    ("one channel 5x5 (LeNet conv1)", "f32", [2, 1, 10, 10], [3, 1, 5, 5], True, (1, 1), (0, 0), 1),
    ("depthwise", "f64", [1, 3, 5, 5], [3, 1, 3, 3], False, (1, 1), (1, 1), 3),
]

# name, op, dtype, x shape, kernel, stride, padding
POOL_CASES = [
    ("avg 2x2 stride 2", "avg", "f32", [2, 3, 6, 7], (2, 2), (2, 2), (0, 0)),
    ("avg 3x3 stride 2 padding 1", "avg", "f64", [2, 2, 7, 7], (3, 3), (2, 2), (1, 1)),
    ("avg 3x3 stride 1 (overlapping)", "avg", "f32", [1, 2, 5, 6], (3, 3), (1, 1), (0, 0)),
    ("avg non-square", "avg", "f64", [1, 2, 6, 7], (2, 3), (1, 2), (1, 1)),
    ("max 2x2 stride 2", "max", "f32", [2, 3, 6, 7], (2, 2), (2, 2), (0, 0)),
    ("max 3x3 stride 2 padding 1", "max", "f64", [2, 2, 7, 7], (3, 3), (2, 2), (1, 1)),
    ("max 3x3 stride 1 (overlapping)", "max", "f32", [1, 2, 5, 6], (3, 3), (1, 1), (0, 0)),
    ("max non-square", "max", "f64", [1, 2, 6, 7], (2, 3), (1, 2), (1, 1)),
]


def randn(shape, dt):
    """Random values; float64 ones rounded to 4 decimals so their literals stay short."""
    t = torch.randn(shape, dtype=DTYPES[dt][0])
    return torch.round(t * 1e4) / 1e4 if dt == "f64" else t


def literal(t, dt):
    values = t.detach().reshape(-1).tolist()
    if dt == "f32":
        return "{" + ", ".join(np.format_float_positional(np.float32(v), unique=True, trim="0") for v in values) + "}"
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


def shape(s):
    return "{" + ", ".join(str(d) for d in s) + "}"


def size2(p):
    return "{" + f"{p[0]}, {p[1]}" + "}"


def conv_rows():
    rows = []
    for seed, (name, dt, xs, ws, has_bias, stride, padding, groups) in enumerate(CONV_CASES):
        torch.manual_seed(100 + seed)
        x = randn(xs, dt).requires_grad_()
        w = randn(ws, dt).requires_grad_()
        b = randn([ws[0]], dt).requires_grad_() if has_bias else None
        y = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
        gy = randn(y.shape, dt)
        y.backward(gy)
        empty = torch.zeros(0)
        rows.append(
            f'{{.name = "{name}", .dtype = {DTYPES[dt][1]}, .x_shape = {shape(xs)}, .w_shape = {shape(ws)},\n'
            f" .bias = {'true' if has_bias else 'false'}, .stride = {size2(stride)}, .padding = {size2(padding)},"
            f" .groups = {groups}, .y_shape = {shape(y.shape)},\n"
            f" .x = {literal(x, dt)},\n .w = {literal(w, dt)},\n"
            f" .b = {literal(b if has_bias else empty, dt)},\n .gy = {literal(gy, dt)},\n"
            f" .y = {literal(y, dt)},\n .dx = {literal(x.grad, dt)},\n .dw = {literal(w.grad, dt)},\n"
            f" .db = {literal(b.grad if has_bias else empty, dt)}}},"
        )
    return rows


def pool_rows():
    rows = []
    for seed, (name, op, dt, xs, kernel, stride, padding) in enumerate(POOL_CASES):
        torch.manual_seed(200 + seed)
        x = randn(xs, dt).requires_grad_()
        fn = F.avg_pool2d if op == "avg" else F.max_pool2d
        y = fn(x, kernel, stride, padding)
        gy = randn(y.shape, dt)
        y.backward(gy)
        rows.append(
            f'{{.name = "{name}", .max = {"true" if op == "max" else "false"}, .dtype = {DTYPES[dt][1]},'
            f" .x_shape = {shape(xs)}, .kernel = {size2(kernel)}, .stride = {size2(stride)},"
            f" .padding = {size2(padding)}, .y_shape = {shape(y.shape)},\n"
            f" .x = {literal(x, dt)},\n .gy = {literal(gy, dt)},\n"
            f" .y = {literal(y, dt)},\n .dx = {literal(x.grad, dt)}}},"
        )
    return rows


def main():
    torch.set_num_threads(1)
    lines = [
        f"// Generated by scripts/gen_layer_refs_conv_pool.py from PyTorch {torch.__version__}; do not edit.",
        "// conv2d and pooling on random inputs: outputs y and the gradients of sum(gy * y).",
        "#ifdef TG_CONV_REFS_ROWS",
        *conv_rows(),
        "#endif",
        "#ifdef TG_POOL_REFS_ROWS",
        *pool_rows(),
        "#endif",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
