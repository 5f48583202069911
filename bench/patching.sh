#!/usr/bin/env bash
# Residual-stream activation patching sweep: glassbox (batched) vs PyTorch written as TransformerLens does it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python torch transformers
mkdir -p bench/out
# A 20-token prompt pair differing at one position, with two answer tokens.
node -e '
const r = (s) => () => (s = (s * 1103515245 + 12345) % 2147483648) % 50257;
const next = r(7);
const clean = Array.from({ length: 20 }, next);
const corrupted = clean.slice(); corrupted[7] = next();
require("fs").writeFileSync("bench/out/patching_spec.json", JSON.stringify({ clean, corrupted, answer: next(), wrong: next() }));
'
echo "PyTorch reference (one forward per patch)..." >&2
"$PY" bench/patching_torch.py bench/out/patching_spec.json > bench/out/patching_torch.json
echo "glassbox..." >&2
node --import tsx bench/patching.ts bench/out/patching_spec.json bench/out/patching_torch.json
