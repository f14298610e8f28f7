#!/usr/bin/python3
# PyTorch 1.13's DistributedDataParallel (gloo backend) on d2l's LeNet-BN with plain BatchNorm
# (its SyncBatchNorm needs CUDA), the same steps as bench/dist_step.cpp: a global batch of 256
# random Fashion-MNIST-shaped images split over W processes of one thread each, SGD.
# Prints ms per step (median of 5 repeats of --steps) and examples/sec. Run with Debian's torch:
#   /usr/bin/python3 bench/ddp_torch.py [--world 2] [--steps 40]
import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def lenet_bn():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10))


def run(rank, world, steps, batch, queue):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", "29533"
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(lenet_bn())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    n = batch * (rank + 1) // world - batch * rank // world
    X, y = torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    times = []
    for _ in range(5):
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        dist.barrier()
        times.append((time.perf_counter() - t0) / steps * 1000)
    if rank == 0:
        queue.put(sorted(times)[2])
    dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, args.world, args.steps, args.batch, queue)) for r in range(args.world)]
    for p in procs:
        p.start()
    ms = queue.get()
    for p in procs:
        p.join()
    print(f"torch DDP gloo W={args.world} threads=1 batch={args.batch}: {ms:.3f} ms/step, {args.batch / ms * 1000:.0f} ex/s")
