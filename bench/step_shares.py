#!/usr/bin/python3
"""Where a LeNet-BN training step goes, for comparing builds of the library on a noisy machine.

Runs `train_step 1 STEPS 256` (random data) under `perf record` once per library directory, in
turns, REPS times, and prints each kernel group's profile samples divided by those of the
convolutions' forward (`forward_with`): a compute-bound kernel that runs the same in every build
being compared, so its samples cancel most of the machine's swings, which move a whole step's time
by 20-40% within minutes. A kernel made 10% faster shows as its ratio falling by about 10%.

    bench/step_shares.py build-bench/bench/train_step LIBDIR... [--reps 4] [--steps 60]

Each LIBDIR holds a libtapegrad.so.0 (a build's `tapegrad/` folder, or a copy of one) and is put
first on LD_LIBRARY_PATH. Needs `perf` (Debian's linux-perf); no PyTorch.
Layer: bench.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

# Kernel groups by symbol; the first that matches takes a symbol's samples.
GROUPS = [
    ("conv forward", r"forward_with"),
    ("conv2 backward", r"filter_lane_backward"),
    ("conv1 dweight", r"flat_dweight|row_span_dweight"),
    ("bn sums", r"channel_sums"),
    ("bn input grad", r"batch_norm_grad_input"),
    ("bn normalize", r"normalize_rows"),
    ("bn moments", r"samples_moments|batch_norm_moments|combine_runs"),
    ("gemm", r"sgemm"),
]
REFERENCE = "conv forward"
ROW = re.compile(r"^\s*([\d.]+)%\s+\[[.k]\]\s+(.*?)\s*$")


def profile(train_step, libdir, steps, data):
    """(examples/sec, {group: percent of samples}) of one perf-recorded run."""
    env = {**os.environ, "LD_LIBRARY_PATH": libdir + os.pathsep + os.environ.get("LD_LIBRARY_PATH", "")}
    run = subprocess.run(["perf", "record", "-q", "-F", "4000", "-o", data, train_step, "1", str(steps), "256"],
                         env=env, capture_output=True, text=True, check=True)
    speed = re.search(r"([\d.]+) ex/s", run.stdout)
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio"],
                            capture_output=True, text=True, check=True).stdout
    shares = {name: 0.0 for name, _ in GROUPS}
    shares["other"] = 0.0
    for line in report.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        percent, symbol = float(m.group(1)), m.group(2)
        group = next((name for name, pattern in GROUPS if re.search(pattern, symbol)), "other")
        shares[group] += percent
    return (float(speed.group(1)) if speed else float("nan")), shares


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train_step")
    ap.add_argument("libdirs", nargs="+")
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    names = [name for name, _ in GROUPS if name != REFERENCE] + ["other"]
    ratios = {lib: {name: [] for name in names} for lib in args.libdirs}
    print("run  library  ex/s  " + "  ".join(names) + f"  ({REFERENCE} % of samples)")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        for rep in range(1, args.reps + 1):
            for lib in args.libdirs:
                speed, shares = profile(args.train_step, lib, args.steps, data)
                ref = shares[REFERENCE]
                if ref == 0:
                    sys.exit(f"step_shares: no {REFERENCE} samples with {lib}")
                for name in names:
                    ratios[lib][name].append(shares[name] / ref)
                print(f"{rep} {lib} {speed:.0f}  " + "  ".join(f"{shares[n] / ref:.3f}" for n in names)
                      + f"  ({ref:.1f}%)", flush=True)
    print("medians over the runs, samples / " + REFERENCE + ":")
    for lib in args.libdirs:
        print(f"{lib}  " + "  ".join(f"{n} {statistics.median(ratios[lib][n]):.3f}" for n in names))


if __name__ == "__main__":
    main()
