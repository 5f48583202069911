#!/usr/bin/env bash
# Runs the PyTorch reference and then glassbox on the same machine, in one run, and prints ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
# Python's onnxruntime (and onnx, to build its model) give the matmul rows a second reference; optional.
bench_python torch onnxruntime onnx || bench_python torch
mkdir -p bench/out
echo "PyTorch reference ($($PY -c 'import torch; print(torch.__version__)'), 2 threads)..." >&2
$PY bench/engine_torch.py > bench/out/engine_torch.json
echo "glassbox..." >&2
node --import tsx bench/engine.ts bench/out/engine_torch.json
