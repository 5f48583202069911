"""Merge the reference JSONs of several PyTorch builds into one: for every timed case, the faster.

Usage: python3 bench/torch_best.py a.json b.json ... > best.json

The project's rule is to compare against the faster of pip's PyTorch and Debian's python3-torch in
the same run (they win on different shapes: MKL vs OpenBLAS). Each input is what a *_torch.py
script printed ({"torch": version, "threads": n, case: {"ms": ..., "gflops"?: ...}, ...}). Cases
only one build measured (onnxruntime rows) pass through. Every merged case gains "by": the
version that gave it, and "torch" lists all the versions measured.
"""

import json
import sys


def main() -> None:
    runs = [json.load(open(path)) for path in sys.argv[1:]]
    if not runs:
        sys.exit("usage: torch_best.py a.json [b.json ...]")
    out: dict = {"torch": " / ".join(str(r.get("torch")) for r in runs), "threads": runs[0].get("threads")}
    for run in runs:
        version = str(run.get("torch"))
        for name, value in run.items():
            if not isinstance(value, dict) or "ms" not in value:
                if name not in out:
                    out[name] = value
                continue
            # onnxruntime rows are not PyTorch: keep them as they are, from whichever run has them.
            if name.startswith("ort_"):
                out.setdefault(name, value)
                continue
            best = out.get(name)
            if best is None or value["ms"] < best["ms"]:
                out[name] = {**value, "by": version}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
