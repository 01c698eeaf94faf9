#!/usr/bin/env bash
# LM-scale validation of the variance bounds on long responses, on one CUDA GPU.
#
#   bash benchmarks/gpu_validate.sh [OUT]          # GPU preset: ~152M-parameter built-in GPT,
#                                                  # n = 256 responses of up to 2,048 tokens
#   bash benchmarks/gpu_validate.sh --tiny [OUT]   # the same code on CPU in seconds (the test)
#
# What it measures, and the expected time: docs/lm.md, "The GPU path"; the steps are in the
# docstring of benchmarks/gpu_validate.py, the entry this script runs (not `vespo validate-bound`:
# its built-in path trains the warm start on CPU and builds only the small model; docs/lm.md
# says why). Writes OUT/gpu_validate.json and OUT/gpu_validate.csv. Never run on a GPU yet.
# The GPU run is capped at 8 minutes (`timeout 480`: exit status 124 past it).
# Extra options after OUT go to gpu_validate.py (e.g. --n 512 --warm-steps 300).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--tiny" || "${1:-}" == "--cpu" ]]; then
    shift
    OUT="${1:-outputs/gpu_validate_tiny}"
    [[ $# -gt 0 ]] && shift
    exec timeout 300 python benchmarks/gpu_validate.py --tiny --out "$OUT" "$@"
fi

OUT="${1:-outputs/gpu_validate}"
[[ $# -gt 0 ]] && shift
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_validate.sh: error: no CUDA GPU visible to torch (use --tiny for the CPU variant)" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader || true
exec timeout 480 python benchmarks/gpu_validate.py --device cuda --out "$OUT" "$@"
