#!/usr/bin/env bash
# The GPU check (issue 16): every Triton kernel test on CUDA, then the GPU rows of the benchmarks, into one JSON.
#   benchmarks/gpu_check.sh [--dry-run] [--out FILE] [--only STEP ...]
# --dry-run resolves every step and runs none (works on a CPU-only machine). Budget: under 8 minutes on one GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
unset TRITON_INTERPRET  # kernels must run on the GPU, not in the interpreter
exec timeout 480 "$PYTHON" -m benchmarks.gpu_check "$@"
