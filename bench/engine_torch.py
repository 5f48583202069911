"""PyTorch reference for bench/engine.ts: the same work, timed the same way (median of repeats).

Prints one JSON object of median milliseconds (and matmul GFLOP/s) to stdout.
"""
import json
import math
import platform
import sys
import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)
D, H, DH, DMLP, S, VOCAB = 768, 12, 64, 3072, 128, 50257


def median_ms(fn, reps, warmup=3, inner=1):
    """Median time of one call in ms; each sample times `inner` back-to-back calls (as bench/engine.ts)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) * 1000 / inner)
    times.sort()
    return times[len(times) // 2]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def block_params(requires_grad=False):
    def p(*shape, scale=0.02):
        t = torch.randn(*shape) * scale
        t.requires_grad_(requires_grad)
        return t

    return {
        "ln1_w": p(D, scale=1.0), "ln1_b": p(D), "w_qkv": p(D, 3 * D), "b_qkv": p(3 * D),
        "w_o": p(D, D), "b_o": p(D), "ln2_w": p(D, scale=1.0), "ln2_b": p(D),
        "w_in": p(D, DMLP), "b_in": p(DMLP), "w_out": p(DMLP, D), "b_out": p(D),
    }


MASK = torch.tril(torch.ones(S, S, dtype=torch.bool))


def block(p, x):
    b, s, _ = x.shape
    h = torch.nn.functional.layer_norm(x, (D,), p["ln1_w"], p["ln1_b"], 1e-5)
    qkv = h @ p["w_qkv"] + p["b_qkv"]
    q, k, v = qkv.split(D, dim=-1)
    q = q.reshape(b, s, H, DH).permute(0, 2, 1, 3)
    k = k.reshape(b, s, H, DH).permute(0, 2, 1, 3)
    v = v.reshape(b, s, H, DH).permute(0, 2, 1, 3)
    scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(DH))
    scores = torch.where(MASK[:s, :s], scores, torch.tensor(-1e4))
    z = scores.softmax(-1) @ v
    attn = z.permute(0, 2, 1, 3).reshape(b, s, D) @ p["w_o"] + p["b_o"]
    x = x + attn
    h2 = torch.nn.functional.layer_norm(x, (D,), p["ln2_w"], p["ln2_b"], 1e-5)
    mlp = torch.nn.functional.gelu(h2 @ p["w_in"] + p["b_in"], approximate="tanh") @ p["w_out"] + p["b_out"]
    return x + mlp


def ort_matmul_ms(m, k, n):
    """Median ms of one ONNX MatMul node in Python's onnxruntime (2 intra-op threads, ORT's defaults
    otherwise), with the weight fed per run ("feed", as glassbox's eager matmul feeds it) and as an
    initializer ORT prepacks ("init"); None where onnxruntime or onnx is not installed."""
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    res = {"version": ort.__version__}
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((k, n), dtype=np.float32)
    for kind in ("feed", "init"):
        inputs = [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])]
        inits, feeds = [], {"A": a}
        if kind == "feed":
            inputs.append(helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n]))
            feeds["B"] = w
        else:
            inits.append(numpy_helper.from_array(w, "B"))
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["A", "B"], ["Y"])], "matmul", inputs,
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # onnx may write a newer IR version than this onnxruntime reads
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        res[kind] = median_ms(lambda: sess.run(None, feeds), 30)
    return res


def main():
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
    }
    # 1. matmuls (and, where Python's onnxruntime is installed, the same product as one ORT MatMul node)
    for m, k, n in [(128, 768, 3072), (128, 3072, 768), (768, 3072, 768)]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        ms = median_ms(lambda: a @ b, 30)
        out[f"matmul_{m}x{k}x{n}"] = {"ms": ms, "gflops": 2 * m * k * n / ms / 1e6}
        ort_ms = ort_matmul_ms(m, k, n)
        if ort_ms:
            out["onnxruntime"] = ort_ms.pop("version")
            for kind, v in ort_ms.items():
                out[f"ort_matmul_{kind}_{m}x{k}x{n}"] = {"ms": v, "gflops": 2 * m * k * n / v / 1e6}
    # 2. block forward, forward+backward
    x = torch.randn(1, S, D)
    with torch.no_grad():
        p = block_params()
        out["block_fwd"] = {"ms": median_ms(lambda: block(p, x), 30)}
    pg = block_params(requires_grad=True)

    def fwd_bwd():
        for t in pg.values():
            t.grad = None
        block(pg, x).sum().backward()

    out["block_fwd_bwd"] = {"ms": median_ms(fwd_bwd, 20)}
    # 3. 12 blocks + final LN + unembedding
    with torch.no_grad():
        blocks = [block_params() for _ in range(12)]
        lnf_w, lnf_b = torch.ones(D), torch.zeros(D)
        w_u = torch.randn(D, VOCAB) * 0.02

        def stack():
            h = x
            for bp in blocks:
                h = block(bp, h)
            return torch.nn.functional.layer_norm(h, (D,), lnf_w, lnf_b, 1e-5) @ w_u

        out["stack12_unembed_fwd"] = {"ms": median_ms(stack, 7, warmup=2)}
    # 4. per-op eager overhead
    s16a, s16b = torch.randn(16), torch.randn(16)
    m256a, m256b = torch.randn(256, 256), torch.randn(256, 256)
    out["eager_add_16"] = {"ms": median_ms(lambda: s16a + s16b, 200, warmup=200, inner=50)}
    out["eager_add_256x256"] = {"ms": median_ms(lambda: m256a + m256b, 100, warmup=50, inner=10)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
