#!/usr/bin/env bash
# SAE training throughput: glassbox's trainSae step vs the same TopK step in PyTorch, same machine, one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python torch
mkdir -p bench/out
echo "glassbox vs PyTorch $($PY -c 'import torch; print(torch.__version__)'), 2 threads each, alternating..." >&2
node --import tsx bench/sae.ts "$PY"
