#!/usr/bin/env bash
# The data-parallel section of docs/BENCHMARKS.md: LeNet-BN steps (global batch 256) in every
# configuration, interleaved and repeated ROUNDS times (the machine is shared: compare within a
# round, quote ratios). Usage: bench/dist_bench.sh DIST_STEP_BINARY [ROUNDS] [STEPS]
set -uo pipefail
bin=${1:?path to dist_step}
rounds=${2:-3}
steps=${3:-20}
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
for round in $(seq "$rounds"); do
  echo "--- round $round"
  "$bin" --steps "$steps" --threads 1
  "$bin" --steps "$steps" --threads 2
  mpiexec -n 2 "$bin" --steps "$steps"
  mpiexec -n 2 "$bin" --steps "$steps" --sync-bn
  mpiexec -n 2 "$bin" --steps "$steps" --no-comm
  mpiexec -n 2 "$bin" --steps "$steps" --bucket-mb 0.02
  mpiexec -n 2 --mca btl tcp,self "$bin" --steps "$steps"
  mpiexec -n 2 --mca btl tcp,self "$bin" --steps "$steps" --sync-bn
  /usr/bin/python3 "$here/ddp_torch.py" --steps "$steps"
done
