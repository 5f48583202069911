#!/usr/bin/env bash
# Runs the PyTorch reference and then glassbox on the same machine, in one run, and prints ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
# Python's onnxruntime (and onnx, to build its model) give the matmul rows a second reference; optional.
bench_python torch onnxruntime onnx || bench_python torch
mkdir -p bench/out
echo "PyTorch reference ($($PY -c 'import torch; print(torch.__version__)'), 2 threads)..." >&2
$PY bench/engine_torch.py > bench/out/engine_torch_pip.json
# Debian's python3-torch (1.13, OpenBLAS) where installed: the comparison is against the faster of
# the two builds, case by case (apt-get install -y python3-torch libopenblas0-pthread).
refs=(bench/out/engine_torch_pip.json)
if [ "$PY" != /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "PyTorch reference ($(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), Debian, 2 threads)..." >&2
  /usr/bin/python3 bench/engine_torch.py > bench/out/engine_torch_debian.json
  refs+=(bench/out/engine_torch_debian.json)
else
  echo "Debian's python3-torch is not installed: comparing against pip's PyTorch only" >&2
fi
$PY bench/torch_best.py "${refs[@]}" > bench/out/engine_torch.json
echo "glassbox..." >&2
node --import tsx bench/engine.ts bench/out/engine_torch.json
