#!/usr/bin/env bash
# GPU readiness check: one table (training throughput with AMP, AMP dtypes and exports, fp16 vs fp32 loss parity,
# fp16 checkpoint + resume, one-GPU launch, 2 GPUs vs 1, GPU/fp16/TensorRT predictors vs CPU, shard loader).
#
#   bash benchmarks/gpu_check.sh                      # all checks, under 8 minutes on one H100/H200-class GPU
#   bash benchmarks/gpu_check.sh --only amp_dtypes    # some of them (names: --dry-run)
#   bash benchmarks/gpu_check.sh --dry-run            # the plan; runs anywhere
#   PYTHON=/path/to/python bash benchmarks/gpu_check.sh --markdown --json gpu_check.json
#
# Needs paddlepaddle-gpu 3.3.1 and this package installed in $PYTHON's environment (docs/gpu.md).  Exit status:
# 0 all passed, 1 a check failed, 2 not a GPU machine.  The python script keeps its own 450 s budget; `timeout`
# here is the backstop that keeps the whole run under 8 minutes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"      # the CPU oneDNN peer of the predictor check
for arg in "$@"; do
    if [ "$arg" = "--dry-run" ] || [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
        exec "$python" "$here/gpu_check.py" "$@"
    fi
done
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
else
    echo "warning: nvidia-smi not found; paddle will say whether it sees a GPU" >&2
fi
exec timeout --signal=INT --kill-after=10 480 "$python" "$here/gpu_check.py" "$@"
