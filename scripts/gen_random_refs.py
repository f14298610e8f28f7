#!/usr/bin/python3
# Writes tests/core/random_refs.inc: what PyTorch 1.13's CPU generator gives for rand, randn,
# randint, randperm, uniform_ and normal_ after manual_seed, as exact bit patterns (every value of
# small results; the first and last 8 and an FNV-1a hash of all the others), plus one generator
# state from torch.get_rng_state(). Layer: tests (fixtures). Run with Debian's python3-torch:
# /usr/bin/python3 scripts/gen_random_refs.py
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "core" / "random_refs.inc"
DTYPES = {"f32": torch.float32, "f64": torch.float64, "i64": torch.int64}
TG_DTYPES = {"f32": "tg::kFloat32", "f64": "tg::kFloat64", "i64": "tg::kInt64"}
FNV_OFFSET, FNV_PRIME, MASK64 = 14695981039346656037, 1099511628211, (1 << 64) - 1
SHOWN = 8  # values kept from each end of a long result


def target(layout, shape, dtype):
    """The tensor written in place: contiguous (C), a transposed view (T) or every other row (S)."""
    if layout == "C":
        return torch.empty(shape, dtype=dtype)
    if layout == "T":
        s = list(shape)
        s[-1], s[-2] = s[-2], s[-1]
        return torch.empty(s, dtype=dtype).transpose(-1, -2)
    s = list(shape)
    s[0] *= 2
    return torch.empty(s, dtype=dtype)[::2]


def run(op, shape, dt, layout, a, b):
    dtype = DTYPES[dt]
    if op == "rand":
        return torch.rand(shape, dtype=dtype)
    if op == "randn":
        return torch.randn(shape, dtype=dtype)
    if op == "randint":
        return torch.randint(int(a), int(b), shape, dtype=dtype)
    if op == "randperm":
        return torch.randperm(shape[0], dtype=dtype)
    t = target(layout, shape, dtype)
    return t.uniform_(a, b) if op == "uniform_" else t.normal_(a, b)


def bits(t):
    """Each value's bit pattern as an unsigned 64-bit int, in logical row-major order."""
    a = t.contiguous().reshape(-1).numpy()
    view = {torch.float32: np.uint32, torch.float64: np.uint64, torch.int64: np.uint64}[t.dtype]
    return [int(v) for v in a.view(view)]


def fnv1a(words):
    h = FNV_OFFSET
    for w in words:
        h = ((h ^ w) * FNV_PRIME) & MASK64
    return h


# (name, seed or None to continue the previous row's stream, op, shape, dtype, layout, a, b)
CASES = []
for seed in [0, 1, 42, 12345, 2**40 + 5]:
    for dt in ["f32", "f64"]:
        for n in [1, 2, 15, 16, 17, 100, 1000, 4097]:
            CASES.append((f"randn {dt} [{n}] seed {seed}", seed, "randn", [n], dt, "C", 0.0, 0.0))
    CASES.append((f"randn f32 [3, 5] seed {seed}", seed, "randn", [3, 5], "f32", "C", 0.0, 0.0))
    CASES.append((f"randn f32 [65536] seed {seed}", seed, "randn", [65536], "f32", "C", 0.0, 0.0))
    for dt in ["f32", "f64"]:
        for n in [1, 17, 1000]:
            CASES.append((f"rand {dt} [{n}] seed {seed}", seed, "rand", [n], dt, "C", 0.0, 0.0))
for seed in [0, 7]:
    CASES += [
        (f"randint [0, 10) [20] seed {seed}", seed, "randint", [20], "i64", "C", 0, 10),
        (f"randint [-5, 3) [7] seed {seed}", seed, "randint", [7], "i64", "C", -5, 3),
        (f"randint [0, 2^32 + 1) [9] seed {seed}", seed, "randint", [9], "i64", "C", 0, 2**32 + 1),
        (f"randint [-2^40, 2^40) [5] seed {seed}", seed, "randint", [5], "i64", "C", -(2**40), 2**40),
        (f"randint f32 [0, 100) [6] seed {seed}", seed, "randint", [6], "f32", "C", 0, 100),
        (f"randint f64 [-1000, 1000) [4, 3] seed {seed}", seed, "randint", [4, 3], "f64", "C", -1000, 1000),
    ]
    for n in [1, 2, 10, 100, 1000, 70000]:
        CASES.append((f"randperm {n} seed {seed}", seed, "randperm", [n], "i64", "C", 0.0, 0.0))
    CASES.append((f"randperm f32 20 seed {seed}", seed, "randperm", [20], "f32", "C", 0.0, 0.0))
    CASES.append((f"randperm f64 17 seed {seed}", seed, "randperm", [17], "f64", "C", 0.0, 0.0))
CASES += [
    ("uniform_ f32 [4, 5] contiguous", 3, "uniform_", [4, 5], "f32", "C", -2.5, 7.25),
    ("uniform_ f64 [3, 7] transposed", 3, "uniform_", [3, 7], "f64", "T", 0.1, 0.3),
    ("uniform_ f32 [8, 9] strided rows", 3, "uniform_", [8, 9], "f32", "S", 0.0, 1.0),
    ("uniform_ f64 [1000] contiguous", 4, "uniform_", [1000], "f64", "C", -1000.0, 0.001),
    ("normal_ f32 [5, 40] contiguous", 5, "normal_", [5, 40], "f32", "C", 0.5, 2.3),
    ("normal_ f64 [4, 4] contiguous", 5, "normal_", [4, 4], "f64", "C", -3.1, 0.7),
    ("normal_ f64 [1001] contiguous", 5, "normal_", [1001], "f64", "C", -3.1, 0.7),
    ("normal_ f32 [3] contiguous", 5, "normal_", [3], "f32", "C", 0.25, 4.0),
    ("normal_ f32 [8, 9] transposed", 6, "normal_", [8, 9], "f32", "T", 1.0, 0.5),
    ("normal_ f64 [2, 3, 7] strided rows", 6, "normal_", [2, 3, 7], "f64", "S", 0.0, 1.0),
    ("normal_ f32 [16, 1] std 0", 6, "normal_", [16, 1], "f32", "C", 1.0, 0.0),
    # One stream: small randn caches the second Box-Muller value, the next small randn takes it,
    # the block algorithm (16 or more) and rand leave it alone.
    ("stream: randn f64 [3]", 9, "randn", [3], "f64", "C", 0.0, 0.0),
    ("stream: randn f32 [1] takes the cached value", None, "randn", [1], "f32", "C", 0.0, 0.0),
    ("stream: randn f64 [1] fresh pair", None, "randn", [1], "f64", "C", 0.0, 0.0),
    ("stream: randn f32 [20] keeps the cache", None, "randn", [20], "f32", "C", 0.0, 0.0),
    ("stream: rand f64 [5] keeps the cache", None, "rand", [5], "f64", "C", 0.0, 0.0),
    ("stream: normal_ f64 [2] uses the cache first", None, "normal_", [2], "f64", "C", 10.0, 3.0),
    ("stream: randint [0, 1000) [4]", None, "randint", [4], "i64", "C", 0, 1000),
    ("stream: randperm 12", None, "randperm", [12], "i64", "C", 0.0, 0.0),
    ("stream: randn f64 [2, 9]", None, "randn", [2, 9], "f64", "C", 0.0, 0.0),
]


def cpp_list(words, width):
    return "{" + ", ".join(f"0x{w:0{width}x}" for w in words) + "}"


def main():
    rows = []
    for name, seed, op, shape, dt, layout, a, b in CASES:
        if seed is not None:
            torch.manual_seed(seed)
        words = bits(run(op, shape, dt, layout, a, b))
        width = 8 if dt == "f32" else 16
        head, tail = (words, []) if len(words) <= 2 * SHOWN else (words[:SHOWN], words[-SHOWN:])
        rows.append(
            f'{{"{name}", {seed if seed is not None else 0}u, {"true" if seed is not None else "false"}, '
            f'"{op}", {{{", ".join(map(str, shape))}}}, {TG_DTYPES[dt]}, \'{layout}\', {a!r}, {b!r},\n'
            f" {len(words)}, {cpp_list(head, width)}, {cpp_list(tail, width)}, 0x{fnv1a(words):016x}u}},"
        )

    # A mid-stream state with a cached normal, and what follows it.
    torch.manual_seed(99)
    torch.randn(3, dtype=torch.float64)
    torch.rand(700)
    state = torch.get_rng_state().numpy().tobytes()
    after = bits(torch.randn(3, dtype=torch.float64))

    text = [
        "// Generated by scripts/gen_random_refs.py from PyTorch " + torch.__version__ + "; do not edit.",
        "// Rows of {name, seed, reseed, op, shape, dtype, layout (C contiguous, T transposed view,",
        "// S every other row), a, b (low/high, from/to or mean/std), numel, first values, last values,",
        "// FNV-1a hash of every value}; values are bit patterns in logical row-major order.",
        "#ifdef TG_RANDOM_REFS_ROWS",
        *rows,
        "#else",
        "// torch.get_rng_state() after manual_seed(99), randn(3, float64), rand(700); then randn(3, float64).",
        f'constexpr const char* kTorchState = "{state.hex()}";',
        f"constexpr std::uint64_t kTorchStateNext[] = {cpp_list(after, 16)};",
        "#endif",
    ]
    OUT.write_text("\n".join(text) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(rows)} rows)")


if __name__ == "__main__":
    main()
