"""PyTorch reference for bench/sae.ts: the TopK SAE training step as SAELens 6 runs it.

TopKTrainingSAE with rescale_acts_by_decoder_norm: sae_in = x - b_dec; hidden_pre = sae_in @ W_enc
+ b_enc; the top k of hidden_pre * ||W_dec rows|| (ReLU'd) scattered into a dense tensor; decode
(acts / norms) @ W_dec + b_dec; MSE summed over d_in, averaged over the batch; the AuxK loss on dead
features when there are any (top d_in/2 dead pre-activations reconstruct the residual); Adam; the
dead-feature counters (n_forward_passes_since_fired, act_freq_scores) updated from the step's
activations. Same shapes, same fixed random batches cycled, 2 threads. In the 'topk_auxk' case
half the features start with b_enc = -10, so they never fire and are dead from the third step on
(window 1): the AuxK term runs every step.

Usage: python bench/sae_torch.py [case ...] (cases: topk, topk_auxk; default both). Prints JSON:
for each case the step times in ms after warm-up, their median and minimum, and tokens/s at the
median. bench/sae.ts calls it once per case and round, alternating with glassbox.
"""
import json
import sys
import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)

D_IN, WIDTH, K, BATCH = 256, 4096, 32, 4096
WARMUP, STEPS = 4, 8


def make_sae(dead_half):
    w_dec = torch.empty(WIDTH, D_IN)
    torch.nn.init.kaiming_uniform_(w_dec)
    w_dec = w_dec / w_dec.norm(dim=-1, keepdim=True) * 0.1
    params = {
        "W_enc": torch.nn.Parameter(w_dec.T.clone().contiguous()),
        "b_enc": torch.nn.Parameter(torch.where(torch.arange(WIDTH) < WIDTH // 2, -10.0, 0.0) if dead_half else torch.zeros(WIDTH)),
        "W_dec": torch.nn.Parameter(w_dec.clone()),
        "b_dec": torch.nn.Parameter(torch.zeros(D_IN)),
    }
    return params


def run(dead_feature_window, dead_half):
    p = make_sae(dead_half)
    opt = torch.optim.Adam(p.values(), lr=3e-4, betas=(0.9, 0.999))
    since_fired = torch.zeros(WIDTH)
    act_freq = torch.zeros(WIDTH)
    batches = [torch.randn(BATCH, D_IN) for _ in range(4)]

    def step(x):
        nonlocal since_fired, act_freq
        dead = since_fired > dead_feature_window
        sae_in = x - p["b_dec"]
        hidden_pre = sae_in @ p["W_enc"] + p["b_enc"]
        norms = p["W_dec"].norm(dim=-1)
        ranked = hidden_pre * norms
        values, idx = ranked.topk(K, dim=-1)
        acts = torch.zeros_like(ranked).scatter(-1, idx, values.relu())
        out = (acts / norms) @ p["W_dec"] + p["b_dec"]
        mse = (out - x).pow(2).sum(-1).mean()
        loss = mse
        num_dead = int(dead.sum())
        if num_dead > 0:
            k_aux = D_IN // 2
            scale = min(num_dead / k_aux, 1.0)
            k_aux = min(k_aux, num_dead)
            residual = (x - out).detach()
            aux_pre = torch.where(dead[None], ranked, -torch.inf)
            aux_values, aux_idx = aux_pre.topk(k_aux, dim=-1)
            aux_acts = torch.zeros_like(ranked).scatter(-1, aux_idx, aux_values)
            recons = (aux_acts / norms) @ p["W_dec"]
            aux = scale * (recons - residual).pow(2).sum(-1).mean()
            loss = loss + aux
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            fired = (acts > 0).float().sum(0)
            since_fired = torch.where(fired > 0, 0.0, since_fired + 1)
            act_freq = act_freq + fired
        return loss.item()

    times = []
    for i in range(WARMUP + STEPS):
        t = time.perf_counter()
        step(batches[i % len(batches)])
        times.append((time.perf_counter() - t) * 1000)
    timed = times[WARMUP:]
    ordered = sorted(timed)
    ms = ordered[len(ordered) // 2]
    return {"ms": ms, "min_ms": ordered[0], "tokens_per_s": BATCH * 1000 / ms, "steps_ms": timed}


CASES = {"topk": (1000, False), "topk_auxk": (1, True)}


def main():
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    for name in sys.argv[1:] or list(CASES):
        out[name] = run(*CASES[name])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
