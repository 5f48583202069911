"""PyTorch reference for bench/features.ts: the same feature collection as glassbox's collectFeatures.

Usage: features_torch.py SAE_DIR TOKENS.bin CONTEXT BATCH  -> prints JSON {seconds, tokensPerSecond, fires}

transformers' GPTNeoX (models/default, float32) to the output of layer 1 (blocks.1.hook_resid_post
= hidden_states[2]), the TopK SAE from SAE_DIR (SAELens layout: relu of the top k of
(x - b_dec) @ W_enc + b_enc), then per feature: fire count, sum, max, a 60-bin log histogram
(1e-3 to 1e3), and the top-20 contexts by max activation with a window of 10 tokens before and
5 after (token ids and activations). BOS/EOS positions (id 4095) are not counted, as glassbox
leaves out special tokens. Vectorised over the batch: per context each feature's max and its
position, merged into the running top-k with torch.topk.
"""
import json
import math
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import GPTNeoXForCausalLM

torch.set_num_threads(2)

TOP_K, BEFORE, AFTER, BINS, HMIN, HMAX = 20, 10, 5, 60, 1e-3, 1e3
SPECIAL = 4095


def main():
    sae_dir, tokens_path, S, B = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cfg = json.load(open(f"{sae_dir}/cfg.json"))
    w = load_file(f"{sae_dir}/sae_weights.safetensors")
    W_enc, b_enc, b_dec = w["W_enc"].float(), w["b_enc"].float(), w["b_dec"].float()
    k = int(cfg["k"])
    d = W_enc.shape[1]
    ids_all = torch.from_numpy(np.fromfile(tokens_path, dtype=np.int32).astype(np.int64)).view(-1, S)
    model = GPTNeoXForCausalLM.from_pretrained("models/default", torch_dtype=torch.float32).eval()
    W = BEFORE + 1 + AFTER
    fires = torch.zeros(d, dtype=torch.float64)
    sums = torch.zeros(d, dtype=torch.float64)
    maxes = torch.zeros(d)
    hist = torch.zeros(d * BINS, dtype=torch.float64)
    top_val = torch.full((TOP_K, d), -1.0)
    top_ctx = torch.full((TOP_K, d), -1, dtype=torch.int64)
    top_tok = torch.full((TOP_K, d, W), -1, dtype=torch.int32)
    top_act = torch.zeros((TOP_K, d, W))
    log_min, scale = math.log(HMIN), BINS / (math.log(HMAX) - math.log(HMIN))
    offsets = torch.arange(-BEFORE, AFTER + 1)
    t0 = time.perf_counter()
    with torch.no_grad():
        for first in range(0, ids_all.shape[0], B):
            ids = ids_all[first : first + B]
            rows = ids.shape[0]
            x = model.gpt_neox(ids, output_hidden_states=True).hidden_states[2]  # [rows, S, d_model]
            pre = (x - b_dec) @ W_enc + b_enc
            v, i = pre.topk(k, dim=-1)
            acts = torch.zeros_like(pre).scatter_(-1, i, v.relu())  # [rows, S, d]
            keep = ids != SPECIAL
            acts = acts * keep.unsqueeze(-1)
            flat = acts.view(-1, d)
            nz = flat > 0
            fires += nz.sum(0)
            sums += flat.sum(0, dtype=torch.float64)
            maxes = torch.maximum(maxes, flat.max(0).values)
            r, f = nz.nonzero(as_tuple=True)
            a = flat[r, f]
            b = ((a.log() - log_min) * scale).floor().long().clamp(0, BINS - 1)
            hist.index_add_(0, f * BINS + b, torch.ones_like(a, dtype=torch.float64))
            # Per context and feature: the max and its position; then merge into the running top-k.
            cmax, cpos = acts.max(1)  # [rows, d]
            q = (cpos.unsqueeze(-1) + offsets).clamp(0, S - 1)  # [rows, d, W]
            inside = ((cpos.unsqueeze(-1) + offsets) >= 0) & ((cpos.unsqueeze(-1) + offsets) < S)
            win_tok = torch.gather(ids.unsqueeze(1).expand(rows, d, S), 2, q).int().masked_fill(~inside, -1)
            win_act = torch.gather(acts.transpose(1, 2), 2, q).masked_fill(~inside, 0)
            cval = torch.where(cmax > 0, cmax, torch.full_like(cmax, -1.0))
            ctx = torch.arange(first, first + rows).unsqueeze(1).expand(rows, d)
            all_val = torch.cat([top_val, cval])
            sel_val, sel = all_val.topk(TOP_K, dim=0)
            top_val = sel_val
            top_ctx = torch.gather(torch.cat([top_ctx, ctx]), 0, sel)
            top_tok = torch.gather(torch.cat([top_tok, win_tok]), 0, sel.unsqueeze(-1).expand(TOP_K, d, W))
            top_act = torch.gather(torch.cat([top_act, win_act]), 0, sel.unsqueeze(-1).expand(TOP_K, d, W))
    seconds = time.perf_counter() - t0
    tokens = ids_all.numel()
    json.dump({"seconds": seconds, "tokensPerSecond": tokens / seconds, "fires": float(fires.sum())}, sys.stdout)


if __name__ == "__main__":
    main()
