#!/usr/bin/env bash
# Tokens per second: glassbox in Node (JS and the Rust binding) vs Python's Rust tokenizers, one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/python.sh
bench_python tokenizers
# shellcheck disable=SC2046 # the tokenizer paths (no spaces)
files=$(node --import tsx bench/tokenizers.ts texts)
echo "Python tokenizers..." >&2
# shellcheck disable=SC2086
"$PY" bench/tokenizers_py.py bench/out/tokenizer-texts.json $files > bench/out/tokenizers_py.json
echo "glassbox..." >&2
node --import tsx bench/tokenizers.ts report bench/out/tokenizers_py.json
