#!/usr/bin/env bash
# Attribution graphs: glassbox vs a PyTorch reference of the same algorithm, 32 tokens on the
# default model, then glassbox at 16 / 64 / 256 tokens (bench/attribution.ts says what each does).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python torch transformers safetensors
mkdir -p bench/out
node --import tsx bench/attribution.ts prepare
echo "PyTorch reference..." >&2
"$PY" bench/attribution_torch.py bench/out/attribution_spec.json bench/out/attribution_tc.safetensors > bench/out/attribution_torch.json
echo "glassbox..." >&2
node --import tsx bench/attribution.ts run bench/out/attribution_torch.json
