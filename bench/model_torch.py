"""Hugging Face transformers reference for bench/model.ts: GPT-2 small shape, random weights."""
import json
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.set_num_threads(2)
torch.manual_seed(0)


def median_ms(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    cfg = GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)
    out = {"torch": torch.__version__}
    tokens = torch.randint(0, 50257, (1, 128))
    with torch.no_grad():
        model = GPT2LMHeadModel(cfg).eval()
        out["forward"] = {"ms": median_ms(lambda: model(tokens).logits, 10)}
        eager = GPT2LMHeadModel._from_config(cfg, attn_implementation="eager").eval()
        out["run_with_cache_all"] = {
            "ms": median_ms(lambda: eager(tokens, output_hidden_states=True, output_attentions=True), 10),
            "note": "HF eager attention, output_hidden_states + output_attentions",
        }
        prompt = tokens[:, :16]
        ms = median_ms(lambda: model.generate(prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0), 3, warmup=1)
        out["generate_32"] = {"ms": ms, "tokens_per_s": 32 / (ms / 1000)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
