#!/usr/bin/python3
"""LeNet-BN training speed and peak memory: tapegrad against PyTorch, side by side (issue 6).

Runs d2l's LeNet-BN (Conv(1,6,5)-BN-Sigmoid-AvgPool-Conv(6,16,5)-BN-Sigmoid-AvgPool-Flatten-
Linear(256,120)-BN-Sigmoid-Linear(120,84)-BN-Sigmoid-Linear(84,10), Xavier-uniform weights, SGD
lr 1.0, cross-entropy, batch 256) in PyTorch and in tapegrad (the `train_step` binary of a
-DTG_BUILD_BENCH=ON build), each in its own process so that its peak resident memory can be read
from os.wait4, on 1 and 2 threads, interleaved (torch 1, tapegrad 1, torch 2, tapegrad 2, repeated)
so that the shared machine's noise falls on both alike. On more than one thread PyTorch also runs
with OMP_WAIT_POLICY=PASSIVE (libgomp's spinning is ruinous on a busy machine); the faster of its
two runs is the one compared. Prints a table: median examples/sec, tapegrad/PyTorch as the median
of the ratios within each repeat, 2-thread over 1-thread speedup, and peak RSS of each.

Both train on the same batches: consecutive 256-sample slices of the Fashion-MNIST training set
(uint8 images held in memory, converted to float in [0, 1] each step) when --data exists, else on
one batch of uniform random images. Warm-up steps are not timed. Run with Debian's python3-torch:

    /usr/bin/python3 bench/compare_torch.py [build-dir] [--steps 40] [--repeats 3] [--random]

tapegrad trains LeNet-BN with each batch norm and the sigmoid after it fused (train_step's default,
nn::utils::fuse_batchnorm_activation) and, for comparison, the plain model ("tapegrad unfused").

Two more modes, both on one batch of random images held in memory, each batch size its own pair of
interleaved runs, and as many steps as make --examples images (at least --steps):
    --sweep 2,16,64,256,1024      training at each batch size (train_step)
    --inference 1,16,256          inference: eval mode, no autograd (torch.no_grad(); tapegrad's
                                  infer_step: "tapegrad" is batch norm folded by
                                  nn::utils::fold_batchnorm and each convolution run with its
                                  sigmoid and average pool as one layer (nn::utils::
                                  fuse_conv_activation); "folded" folds only, "unfolded" neither).
                                  PyTorch runs its model unfolded and folded (torch.nn.utils.fusion)
                                  and is credited with the faster.
PyTorch is always credited with its best: on more than one thread, the faster of its default and
OMP_WAIT_POLICY=PASSIVE runs, and never less than its own figure on fewer threads. Each of those also
runs with tcmalloc preloaded (Debian's libtcmalloc-minimal4, when installed), as PyTorch's CPU
performance guide recommends: with glibc's malloc, some of its processes (a third to a half here) map
and unmap their large tensors every step, 270k page faults in 45 steps against 70k, and train a
quarter slower. tapegrad runs with either allocator too, and each repeat keeps its faster run.
"""
import argparse
import gzip
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

DATA_DIR = "/usr/share/datasets/fashion-mnist"
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
WARMUP = 5
LINE = re.compile(r"(\S+) (\d+) threads: ([\d.]+) ex/s \(([\d.]+) ms/step\) loss ([-\d.naif]+) data (\S+)")


# --- the PyTorch worker (runs in a child process) -------------------------------------------------

def read_idx(path):
    """The array in a gzipped IDX file (magic 0x0000 08 nd, big-endian sizes, uint8 data)."""
    import numpy as np
    with gzip.open(path, "rb") as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def fold_torch(net):
    """net (eval mode) with every Conv2d+BatchNorm2d and Linear+BatchNorm1d pair fused."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
    mods, out = list(net), []
    i = 0
    while i < len(mods):
        m, nxt = mods[i], mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(m, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            out.append(fuse_conv_bn_eval(m, nxt))
            i += 2
        elif isinstance(m, nn.Linear) and isinstance(nxt, nn.BatchNorm1d):
            out.append(fuse_linear_bn_eval(m, nxt))
            i += 2
        else:
            out.append(m)
            i += 1
    return nn.Sequential(*out).eval()


def torch_worker(threads, steps, batch, data_dir, mode="train", fold=False):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, 10))
    for m in net:  # d2l's init_weights
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss()

    if data_dir:
        images = torch.from_numpy(read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).copy())
        labels = torch.from_numpy(read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")).astype("int64"))
        nxt = 0

        def next_batch():  # as train_step.cpp: consecutive slices, wrapping around
            nonlocal nxt
            if nxt + batch > images.shape[0]:
                nxt = 0
            X = images[nxt:nxt + batch].unsqueeze(1).float().div_(255)
            y = labels[nxt:nxt + batch]
            nxt += batch
            return X, y
    else:
        X_random, y_random = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

        def next_batch():
            return X_random, y_random

    def timed(step, data):  # runs WARMUP untimed steps, then `steps` timed ones, and prints the result line
        for _ in range(WARMUP):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            out = step()
        dt = time.perf_counter() - t0
        print(f"torch {threads} threads: {steps * batch / dt:.0f} ex/s ({dt / steps * 1e3:.3f} ms/step) "
              f"loss {out:.4f} data {data}", flush=True)

    if mode == "infer":  # on the random batch, drawn as infer_step draws it
        net.eval()
        if fold:
            net = fold_torch(net)

        def infer():
            with torch.no_grad():
                return net(X_random).mean().item()

        timed(infer, "random")
        return

    net.train()

    def step():
        X, y = next_batch()
        loss = loss_fn(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    timed(step, "fashion-mnist" if data_dir else "random")


# --- the driver -------------------------------------------------------------------------------------

def run(cmd, env):
    """Runs cmd with env added to the environment; returns its parsed result line and peak RSS."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    m = LINE.search(out)
    if p.returncode != 0 or not m:
        sys.exit(f"compare_torch: `{shlex.join(cmd)}` failed (exit {p.returncode}):\n{out}")
    return {"ex_s": float(m.group(3)), "ms": float(m.group(4)), "loss": m.group(5), "data": m.group(6),
            "rss_mib": usage.ru_maxrss / 1024}  # ru_maxrss is in KiB on Linux


def find_bench(build_dir, name):
    candidates = [build_dir] if build_dir else ["build-bench", "build"]
    for d in candidates:
        exe = os.path.join(d, "bench", name)
        if os.access(exe, os.X_OK):
            return exe
    sys.exit(f"compare_torch: no bench/{name} under {' or '.join(candidates)}; build it with\n"
             "  cmake -S . -B build-bench -DTG_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && "
             "cmake --build build-bench -j2")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build_dir", nargs="?", help="build dir holding bench/train_step (default ./build-bench or ./build)")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per run (after %d warm-up steps)" % WARMUP)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--data", default=DATA_DIR, help="Fashion-MNIST directory (gz IDX files)")
    ap.add_argument("--random", action="store_true", help="train on one random batch even if --data exists")
    ap.add_argument("--sweep", help="training at each of these comma-separated batch sizes, random data")
    ap.add_argument("--inference", help="inference at each of these comma-separated batch sizes, random data")
    ap.add_argument("--examples", type=int, default=4096,
                    help="images per timed run in --sweep and --inference (steps = max(--steps, examples / batch))")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="train", help=argparse.SUPPRESS)
    ap.add_argument("--fold", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    data_dir = "" if args.random or args.sweep or args.inference or not os.path.isdir(args.data) else args.data
    threads = [int(t) for t in args.threads.split(",")]

    if args.worker:  # one PyTorch run: compare_torch.py --worker --threads T ...
        torch_worker(threads[0], args.steps, args.batch, data_dir, args.mode, args.fold)
        return

    mode = "infer" if args.inference else "train"
    if args.sweep or args.inference:
        batches = [int(b) for b in (args.sweep or args.inference).split(",")]
        cases = [(b, max(args.steps, -(-args.examples // b))) for b in batches]
    else:
        cases = [(args.batch, args.steps)]
    exe = find_bench(args.build_dir, "infer_step" if mode == "infer" else "train_step")
    # PyTorch on t threads: torch.set_num_threads(t), and OpenBLAS (Debian's torch calls the
    # pthread OpenBLAS for Linear, which otherwise uses every core even at t = 1) on t threads too.
    # On more than one thread it also runs with OMP_WAIT_POLICY=PASSIVE: libgomp's default spinning
    # makes it up to 10x slower on this shared machine, and the ratio is taken to the faster of the two.
    configs = []  # (label, batch, thread count, command, extra environment)
    for batch, steps in cases:
        for t in threads:
            torch_cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(t), "--steps",
                         str(steps), "--batch", str(batch), "--data", data_dir or "/nonexistent", "--mode", mode]
            torch_env = {"OPENBLAS_NUM_THREADS": str(t), "OMP_NUM_THREADS": str(t)}
            variants = [("torch", torch_cmd)] + ([("torch-folded", torch_cmd + ["--fold"])] if mode == "infer" else [])
            allocators = [("", {})] + ([("-tcmalloc", {"LD_PRELOAD": TCMALLOC})] if os.path.exists(TCMALLOC) else [])
            for label, cmd in variants:
                for suffix, alloc_env in allocators:
                    configs.append((label + suffix, batch, t, cmd, {**torch_env, **alloc_env}))
                    if t > 1:
                        configs.append((label + "-passive" + suffix, batch, t, cmd,
                                        {**torch_env, **alloc_env, "OMP_WAIT_POLICY": "PASSIVE"}))
            tg_cmd = [exe, str(t), str(steps), str(batch)]
            if mode == "infer":  # infer_step's modes: 2 folded + fused conv epilogues, 1 folded, 0 neither
                tg_variants = [("tapegrad", ["2"]), ("tapegrad-folded", ["1"]), ("tapegrad-unfolded", ["0"])]
            else:
                tg_variants = [("tapegrad", [data_dir]), ("tapegrad-unfused", [data_dir, "unfused"])]
            for label, extra in tg_variants:  # the same allocators as PyTorch's, merged below
                for suffix, alloc_env in allocators:
                    configs.append((label + suffix, batch, t, tg_cmd + extra, alloc_env))

    results = {(label, b, t): [] for label, b, t, _, _ in configs}
    load_before = os.getloadavg()[0]
    for rep in range(args.repeats):
        for label, b, t, cmd, env in configs:
            r = run(cmd, env)
            results[(label, b, t)].append(r)
            print(f"  run {rep + 1}/{args.repeats}  batch {b:4d}  {label:22s} {t} thread(s): {r['ex_s']:8.0f} ex/s  "
                  f"{r['ms']:8.3f} ms/step  loss {r['loss']}  peak RSS {r['rss_mib']:5.1f} MiB", flush=True)

    # tapegrad with tcmalloc counts as the same configuration: each repeat keeps the faster of the two
    # runs (PyTorch's configurations are all kept, and torch_rep takes the fastest), and the leaner peak.
    for (label, b, t) in [k for k in results if k[0].startswith("tapegrad") and k[0].endswith("-tcmalloc")]:
        plain = results[(label[:-len("-tcmalloc")], b, t)]
        for i, r in enumerate(results.pop((label, b, t))):
            plain[i] = {**max(plain[i], r, key=lambda x: x["ex_s"]), "rss_mib": min(plain[i]["rss_mib"], r["rss_mib"])}
    med = {k: statistics.median(r["ex_s"] for r in v) for k, v in results.items()}
    best = {k: max(r["ex_s"] for r in v) for k, v in results.items()}
    rss = {k: max(r["rss_mib"] for r in v) for k, v in results.items()}

    def torch_keys(b, t):  # every PyTorch configuration on at most t threads: it is never credited with less
        return [k for k in results if k[0].startswith("torch") and k[1] == b and k[2] <= t]

    def torch_rep(b, t, i):  # PyTorch's best in repeat i
        return max(results[k][i]["ex_s"] for k in torch_keys(b, t))

    def paired(num, den):  # median over repeats of num(i) / den(i): runs next to each other share the noise
        return statistics.median(num(i) / den(i) for i in range(args.repeats))

    def spread(num, den):  # the smallest and largest ratio of one repeat: how noisy the run was
        ratios = [num(i) / den(i) for i in range(args.repeats)]
        return min(ratios), max(ratios)

    def tg_rep(b, t, i, label="tapegrad"):
        return results[(label, b, t)][i]["ex_s"]

    def torch_best(b, t):
        return max(best[k] for k in torch_keys(b, t))

    what = {"train": "LeNet-BN training", "infer": "LeNet-BN inference (eval mode, no autograd)"}[mode]
    data = "Fashion-MNIST training batches" if data_dir else "one random batch"
    print(f"\n{what}, {data}; examples/sec, median of {args.repeats} interleaved runs (after {WARMUP} warm-up "
          f"steps); {torch_version()}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    # the plainer models, for comparison
    others = ["tapegrad-unfolded", "tapegrad-folded"] if mode == "infer" else ["tapegrad-unfused"]
    timed = "tapegrad (folded + fused conv epilogues)" if mode == "infer" else "tapegrad"
    print(f"| batch | threads | steps | PyTorch (best config) | "
          + "".join(f"{o.replace('-', ' ')} | " for o in others)
          + f"{timed} | {timed.split(' (')[0]} / PyTorch (paired) | range over repeats | best / best | "
          "PyTorch peak RSS | tapegrad peak RSS |")
    print("| ---: " * (10 + len(others)) + "|")
    for batch, steps in cases:
        for t in threads:
            torch_med = statistics.median(torch_rep(batch, t, i) for i in range(args.repeats))
            torch_rss = min(rss[k] for k in torch_keys(batch, t) if k[2] == t)  # its leanest configuration
            num = lambda i: tg_rep(batch, t, i)  # noqa: E731
            den = lambda i: torch_rep(batch, t, i)  # noqa: E731
            lo, hi = spread(num, den)
            print(f"| {batch} | {t} | {steps} | {torch_med:.0f} | "
                  + "".join(f"{med[(o, batch, t)]:.0f} | " for o in others)
                  + f"{med[('tapegrad', batch, t)]:.0f} | "
                  f"{paired(num, den):.2f}x | {lo:.2f}-{hi:.2f}x | {best[('tapegrad', batch, t)] / torch_best(batch, t):.2f}x | "
                  f"{torch_rss:.0f} MiB | {rss[('tapegrad', batch, t)]:.0f} MiB |")
    if len(threads) > 1:
        lo_t, hi_t = threads[0], threads[-1]
        for batch, _ in cases:
            print(f"batch {batch}: {hi_t}-thread over {lo_t}-thread speedup (paired): PyTorch (best) "
                  f"{paired(lambda i: torch_rep(batch, hi_t, i), lambda i: torch_rep(batch, lo_t, i)):.2f}x, tapegrad "
                  f"{paired(lambda i: tg_rep(batch, hi_t, i), lambda i: tg_rep(batch, lo_t, i)):.2f}x")
    print("Ratios are medians over the repeats of the ratio within one repeat (against PyTorch's best configuration\n"
          "in that repeat); the range is the smallest and largest of those ratios; peak RSS is the largest of the\n"
          "repeats, PyTorch's that of its leanest configuration, and includes the interpreter and libtorch; on\n"
          "Fashion-MNIST both hold the uint8 training set (45 MiB).")


def torch_version():
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                         text=True).stdout.strip()
    return f"torch {out}"


if __name__ == "__main__":
    main()
