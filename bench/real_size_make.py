"""Makes the real-size benchmark checkpoints: random bf16 models in Hugging Face format, shaped like
Llama-3.2-1B and Gemma-2-2B, with transformers (from_config, nothing downloaded).

Usage: real_size_make.py OUT_DIR [llama|gemma2 ...]

Each model goes to OUT_DIR/<name>/ (config.json + safetensors) and is made only once: a directory
with a complete checkpoint is left as it is. The Llama shape is one 2.5 GB file; the Gemma shape is
saved in 2 GB shards with model.safetensors.index.json, so the sharded path is measured too.

Differences from the real models, on purpose: no rope_scaling (Llama 3's 'llama3' frequency
scaling), so both sides compute plain RoPE; max_position_embeddings is kept. With random weights
the timings do not depend on either.
"""
import json
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM, Gemma2Config, LlamaConfig

SHAPES = {
    # meta-llama/Llama-3.2-1B: 1.24B parameters, tied embeddings.
    "llama-3.2-1b": lambda: LlamaConfig(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        bos_token_id=128000,
        eos_token_id=128001,
        hidden_act="silu",
    ),
    # google/gemma-2-2b: 2.61B parameters, tied embeddings.
    "gemma-2-2b": lambda: Gemma2Config(
        vocab_size=256000,
        hidden_size=2304,
        intermediate_size=9216,
        num_hidden_layers=26,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=256,
        max_position_embeddings=8192,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        query_pre_attn_scalar=256,
        sliding_window=4096,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
        hidden_activation="gelu_pytorch_tanh",
        tie_word_embeddings=True,
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
    ),
}
ALIASES = {"llama": "llama-3.2-1b", "gemma2": "gemma-2-2b"}
SHARD = {"llama-3.2-1b": "50GB", "gemma-2-2b": "2GB"}


def complete(d):
    if not os.path.exists(os.path.join(d, "config.json")):
        return False
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return True
    index = os.path.join(d, "model.safetensors.index.json")
    if not os.path.exists(index):
        return False
    shards = set(json.load(open(index))["weight_map"].values())
    return all(os.path.exists(os.path.join(d, s)) for s in shards)


def make(out, name):
    d = os.path.join(out, name)
    if complete(d):
        print(f"{d}: exists", file=sys.stderr)
        return
    t = time.perf_counter()
    torch.manual_seed(0)
    cfg = SHAPES[name]()
    # Built in bf16 directly (a float32 Gemma-2-2B would take 10 GB just to be narrowed).
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(d, max_shard_size=SHARD[name])
    print(f"{d}: {n / 1e9:.2f}B parameters, saved in {time.perf_counter() - t:.0f} s", file=sys.stderr)


def main():
    out = sys.argv[1]
    names = [ALIASES.get(a, a) for a in sys.argv[2:]] or list(SHAPES)
    torch.set_num_threads(2)
    for name in names:
        make(out, name)


if __name__ == "__main__":
    main()
