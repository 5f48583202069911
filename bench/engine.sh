#!/usr/bin/env bash
# Runs the PyTorch reference and then glassbox on the same machine, in one run, and prints ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  echo "setting up .venv with torch (pip, local package index)..." >&2
  if python3 -m venv .venv && .venv/bin/pip install --quiet torch; then :; else
    echo "pip install torch failed; trying Debian's python3-torch" >&2
    apt-get install -y python3-torch libopenblas0-pthread >&2
    PY=/usr/bin/python3
  fi
fi
[ -x .venv/bin/python ] && .venv/bin/python -c 'import torch' 2>/dev/null && PY=.venv/bin/python
mkdir -p bench/out
echo "PyTorch reference ($($PY -c 'import torch; print(torch.__version__)'), 2 threads)..." >&2
$PY bench/engine_torch.py > bench/out/engine_torch.json
echo "glassbox..." >&2
node --import tsx bench/engine.ts bench/out/engine_torch.json
