#!/usr/bin/env bash
# SAE training throughput: glassbox's trainSae step vs the same TopK step in PyTorch, same machine, one run.
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
echo "glassbox vs PyTorch $($PY -c 'import torch; print(torch.__version__)'), 2 threads each, alternating..." >&2
node --import tsx bench/sae.ts "$PY"
