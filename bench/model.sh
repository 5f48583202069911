#!/usr/bin/env bash
# HookedTransformer (GPT-2 small shape) vs Hugging Face transformers on PyTorch, same machine, one run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import torch, transformers' 2>/dev/null; then
  echo "setting up .venv with torch and transformers (pip, local package index)..." >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet torch transformers
fi
mkdir -p bench/out
echo "Hugging Face transformers reference..." >&2
.venv/bin/python bench/model_torch.py > bench/out/model_torch.json
echo "glassbox..." >&2
node --import tsx bench/model.ts bench/out/model_torch.json
