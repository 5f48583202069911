"""PyTorch reference for bench/patching.ts: a residual-stream activation patching sweep (every
layer x every position) on a GPT-2-small-shaped model (random weights) over a 20-token prompt
pair, written as TransformerLens's get_act_patch_resid_pre does it: one forward pass per patch,
with a hook that writes the clean activation into the corrupted run."""
import json
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.set_num_threads(2)
torch.manual_seed(0)

N_LAYER, SEQ = 12, 20


def main():
    spec = json.load(open(sys.argv[1]))
    clean = torch.tensor([spec["clean"]])
    corrupted = torch.tensor([spec["corrupted"]])
    answer, wrong = spec["answer"], spec["wrong"]
    cfg = GPT2Config(n_layer=N_LAYER, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)
    model = GPT2LMHeadModel(cfg).eval()

    def metric(logits):
        return (logits[0, -1, answer] - logits[0, -1, wrong]).item()

    def sweep():
        with torch.no_grad():
            # Clean cache of resid_pre for every layer (the input of each block).
            cache = {}
            hooks = [
                model.transformer.h[l].register_forward_pre_hook(
                    lambda mod, args, kwargs, l=l: cache.__setitem__(l, args[0].clone()) if args else cache.__setitem__(l, kwargs["hidden_states"].clone()),
                    with_kwargs=True,
                )
                for l in range(N_LAYER)
            ]
            clean_metric = metric(model(clean).logits)
            for h in hooks:
                h.remove()
            corrupted_metric = metric(model(corrupted).logits)
            out = torch.zeros(N_LAYER, SEQ)
            for l in range(N_LAYER):
                for p in range(SEQ):
                    def patch(mod, args, kwargs, l=l, p=p):
                        if args:
                            x = args[0].clone()
                            x[:, p] = cache[l][:, p]
                            return (x,) + args[1:], kwargs
                        x = kwargs["hidden_states"].clone()
                        x[:, p] = cache[l][:, p]
                        kwargs["hidden_states"] = x
                        return args, kwargs

                    h = model.transformer.h[l].register_forward_pre_hook(patch, with_kwargs=True)
                    out[l, p] = (metric(model(corrupted).logits) - corrupted_metric) / (clean_metric - corrupted_metric)
                    h.remove()
            return out

    sweep()  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        result = sweep()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    json.dump({"torch": torch.__version__, "sweep_ms": times[1], "forwards": N_LAYER * SEQ + 2, "result": result.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
