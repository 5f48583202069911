"""Hugging Face transformers side of bench/real-size: loads a checkpoint made by real_size_make.py
with from_pretrained(dtype=float32), then runs a forward pass on 128 tokens and the same forward
with output_hidden_states=True (the residual stream before every layer and after the last: the
glassbox side caches the same n_layers + 1 tensors). One process per run; prints JSON.

Usage: real_size_torch.py MODEL_DIR OUT_PREFIX
Writes OUT_PREFIX.json (timings, peak RSS, the tokens) and OUT_PREFIX.safetensors (logits at a few
positions, for the glassbox side to compare against).
"""
import json
import os
import resource
import sys
import time

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

REPS = 3
POSITIONS = [0, 63, 127]


def timed(fn, reps=REPS):
    """First call, then the median of `reps` more."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return {"first_ms": first * 1000, "ms": ts[len(ts) // 2] * 1000}


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    cfg = AutoConfig.from_pretrained(model_dir)
    # Gemma 2's attention soft-capping needs the eager attention; LLaMA runs transformers' default (sdpa).
    kwargs = {"attn_implementation": "eager"} if cfg.model_type == "gemma2" else {}
    load_before = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kwargs).eval()
    load_ms = (time.perf_counter() - t) * 1000
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    load_cpu_ms = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000
    rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, cfg.vocab_size, (1, 128), generator=g)
    with torch.inference_mode():
        forward = timed(lambda: model(tokens).logits)
        cache = timed(lambda: model(tokens, output_hidden_states=True).hidden_states)
        logits = model(tokens).logits[0, POSITIONS].contiguous()
    save_file({"logits": logits, "positions": torch.tensor(POSITIONS)}, out + ".safetensors")
    result = {
        "side": "transformers",
        "mode": "float32",
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "attention": kwargs.get("attn_implementation", "sdpa (default)"),
        "load_ms": load_ms,
        "load_cpu_ms": load_cpu_ms,
        "forward": forward,
        "cache": {**cache, "tensors": cfg.num_hidden_layers + 1},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_after_load_mb": rss_after_load / 1024,
        "loadavg": [load_before, os.getloadavg()[0]],
        "tokens": tokens[0].tolist(),
    }
    with open(out + ".json", "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
