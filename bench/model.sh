#!/usr/bin/env bash
# HookedTransformer (GPT-2 small shape) vs Hugging Face transformers on PyTorch, same machine, one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python torch transformers
mkdir -p bench/out
echo "Hugging Face transformers reference..." >&2
"$PY" bench/model_torch.py > bench/out/model_torch.json
echo "glassbox..." >&2
node --import tsx bench/model.ts bench/out/model_torch.json
