#!/usr/bin/env bash
# Real-size checkpoints against Hugging Face transformers on PyTorch: Llama-3.2-1B- and
# Gemma-2-2B-shaped models with random bf16 weights (made once by transformers, cached in
# bench/out/real-size), loaded by each side in float32 and by glassbox also with its 2-byte
# weights. Every side runs in its own process, one after another (the float32 Gemma-2-2B shape
# takes about 11 GB). REAL_SIZE_MODELS picks models (default: llama-3.2-1b gemma-2-2b).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python torch transformers safetensors
OUT=bench/out/real-size
MODELS=${REAL_SIZE_MODELS:-"llama-3.2-1b gemma-2-2b"}
mkdir -p "$OUT"
echo "making checkpoints (once)..." >&2
# shellcheck disable=SC2086
"$PY" bench/real_size_make.py "$OUT" $MODELS

avail_mb() { awk '/MemAvailable/ {printf "%d", $2 / 1024}' /proc/meminfo; }
for m in $MODELS; do
  dir="$OUT/$m"
  # float32 weights are twice the bf16 files; a float32 side peaks at about 1.5 times that.
  bf16_mb=$(( $(find "$dir" -name '*.safetensors' -printf '%s\n' | awk '{s += $1} END {printf "%d", s}') / 1048576 ))
  need_mb=$(( bf16_mb * 3 ))
  rm -f "$OUT/$m".*.json "$OUT/$m".torch.safetensors
  if [ "$(avail_mb)" -ge "$need_mb" ]; then
    echo "$m: transformers (float32)..." >&2
    "$PY" bench/real_size_torch.py "$dir" "$OUT/$m.torch"
    echo "$m: glassbox (float32)..." >&2
    node --import tsx bench/real-size.ts side "$dir" float32 "$OUT/$m.float32" "$OUT/$m.torch"
  else
    echo "$m: skipping the float32 runs: $(avail_mb) MB available, about $need_mb MB needed" >&2
  fi
  echo "$m: glassbox (2-byte weights)..." >&2
  node --import tsx bench/real-size.ts side "$dir" stored "$OUT/$m.stored" "$OUT/$m.torch"
done
# shellcheck disable=SC2086
node --import tsx bench/real-size.ts report "$OUT" $MODELS | tee "$OUT/report.md"
