"""Python side of `npm run bench:tokenizers`: Hugging Face's Rust tokenizers from Python on the
texts and tokenizer.json files that bench/tokenizers.ts uses. Prints JSON: per tokenizer, the
median seconds of `encode` over the texts one by one and of `encode_batch` over all of them
(no special tokens; the ids read out of each encoding).
Usage: python bench/tokenizers_py.py texts.json tokenizer.json [tokenizer.json ...]
"""

import json
import statistics
import sys
import time

import tokenizers
from tokenizers import Tokenizer


def median_s(fn, reps=5):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


texts = json.load(open(sys.argv[1], encoding="utf-8"))
out = {"tokenizers": tokenizers.__version__, "results": {}}
for path in sys.argv[2:]:
    tok = Tokenizer.from_file(path)
    # Without special tokens, and reading the ids out, as the Node side does.
    n_tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    out["results"][path] = {
        "tokens": n_tokens,
        "encode_s": median_s(lambda: [tok.encode(t, add_special_tokens=False).ids for t in texts]),
        "encode_batch_s": median_s(lambda: [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]),
    }
print(json.dumps(out))
