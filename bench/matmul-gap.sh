#!/usr/bin/env bash
# One MatMul node, [M,K] @ [K,N] float32, timed from Python's onnxruntime and from onnxruntime-node
# in one run, on the same .onnx files (weight fed per run, and weight as an initializer), 2 threads
# each, medians. Node runs twice: as Node starts (default) and with glassbox's allocator setting
# (tuned, src/tensor/backends/native.ts). bench/README.md explains the gap and what closes it.
#
#   bash bench/matmul-gap.sh [MxKxN ...]     default: the three matmul shapes of bench:engine
#   ROUNDS=3 REPS=100 bash bench/matmul-gap.sh 128x768x3072
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python onnxruntime onnx
ROUNDS=${ROUNDS:-2}
OUT=bench/out/matmul-gap
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: > "$RES"
SHAPES=("$@")
[ ${#SHAPES[@]} -gt 0 ] || SHAPES=(128x768x3072 128x3072x768 768x3072x768)
if [ ! -f native/build/glassbox_native.node ]; then node native/build.mjs; fi
echo "load before: $(uptime)" >&2
for shape in "${SHAPES[@]}"; do
  IFS=x read -r M K N <<< "$shape"
  dir="$OUT/$shape"
  "$PY" bench/matmul-gap.py build "$dir" "$M" "$K" "$N"
  for round in $(seq 1 "$ROUNDS"); do
    echo "$shape round $round: Python, Node default, Node tuned..." >&2
    tag="\"shape\":\"$shape\",\"round\":$round,"
    for kind in feed init; do
      "$PY" bench/matmul-gap.py time "$dir" "$M" "$K" "$N" $kind | sed "s/^{/{$tag/" >> "$RES"
      node --import tsx bench/matmul-gap.ts "$dir" "$M" "$K" "$N" default $kind | sed "s/^{/{$tag/" >> "$RES"
      node --import tsx bench/matmul-gap.ts "$dir" "$M" "$K" "$N" tuned $kind | sed "s/^{/{$tag/" >> "$RES"
    done
  done
done
echo "load after: $(uptime)" >&2
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) on $(nproc) CPUs"
"$PY" bench/matmul-gap.py report "$RES"
