#!/usr/bin/env bash
# Feature collection throughput: glassbox's collectFeatures vs the same collection in PyTorch, same machine, one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python torch transformers
mkdir -p bench/out
node --import tsx bench/features.ts "$PY"
