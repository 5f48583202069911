"""One MatMul node from Python's onnxruntime, for bench/matmul-gap.sh (which runs it next to Node).

  matmul-gap.py build DIR M K N     writes DIR/matmul_feed.onnx (A and B fed per run) and
                                    DIR/matmul_init.onnx (B an initializer: ORT prepacks it)
  matmul-gap.py time DIR M K N KIND times DIR/matmul_KIND.onnx (KIND: feed or init); prints one
                                    JSON object
  matmul-gap.py report FILE...      prints the table of bench/matmul-gap.sh from the JSON lines in
                                    FILEs (one timed model per line, with "shape" and "round")

Timing: 2 intra-op threads, 1 inter-op thread, ORT's defaults otherwise (spinning on, all graph
optimisations); inputs made once and fed to every run; median of REPS runs (60) after WARMUP
runs (100: Node's process needs about 60 runs before its heap stops growing, see bench/README.md).
Also reports CPU time and minor page faults per run (getrusage), the evidence bench/README.md uses.
"""
import json
import os
import resource
import sys
import time

import numpy as np

REPS = int(os.environ.get("REPS", "60"))
WARMUP = int(os.environ.get("WARMUP", "100"))
THREADS = 2


def build(out_dir, m, k, n):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((k, n)) * 0.02).astype(np.float32)
    a = helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])
    for kind in ("feed", "init"):
        inputs, inits = [a], []
        if kind == "feed":
            inputs.append(helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n]))
        else:
            inits.append(numpy_helper.from_array(weight, "B"))
        graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], "matmul", inputs, [y], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # loadable by onnxruntime-node 1.23 as well as newer
        onnx.checker.check_model(model)
        path = os.path.join(out_dir, f"matmul_{kind}.onnx")
        tmp = f"{path}.{os.getpid()}.tmp"
        onnx.save(model, tmp)
        os.replace(tmp, path)  # atomic: a reader never sees half a model


def time_model(path, m, k, n):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feeds = {"A": rng.standard_normal((m, k), dtype=np.float32)}
    if len(sess.get_inputs()) > 1:
        feeds["B"] = (rng.standard_normal((k, n), dtype=np.float32) * 0.02).astype(np.float32)
    for _ in range(WARMUP):
        sess.run(None, feeds)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    times = []
    for _ in range(REPS):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1000)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    times.sort()
    ms = times[len(times) // 2]
    return {
        "ms": ms,
        "min_ms": times[0],
        "gflops": 2 * m * k * n / ms / 1e6,
        "cpu_ms_per_run": (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000 / REPS,
        "faults_per_run": (r1.ru_minflt - r0.ru_minflt) / REPS,
    }


def report(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    print("| shape | round | runtime | weight | median ms | GFLOP/s | vs Python | CPU ms/run | faults/run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in dict.fromkeys(r["shape"] for r in rows):
        for rnd in dict.fromkeys(r["round"] for r in rows if r["shape"] == shape):
            for kind in ("feed", "init"):
                same = [r for r in rows if r["shape"] == shape and r["round"] == rnd and r["kind"] == kind]
                py = next((r for r in same if r["runtime"].endswith("(Python)")), None)
                for x in same:
                    label = x["runtime"] + (f", {x['mode']}" if "mode" in x else "")
                    vs = f"{100 * py['ms'] / x['ms']:.0f}%" if py else "-"
                    print(f"| {shape} | {rnd} | {label} | {kind} | {x['ms']:.2f} | {x['gflops']:.0f} | {vs} "
                          f"| {x['cpu_ms_per_run']:.2f} | {x['faults_per_run']:.0f} |")


def main():
    if sys.argv[1:2] == ["report"]:
        report(sys.argv[2:])
        return
    cmd, out_dir, m, k, n = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    if cmd == "build":
        build(out_dir, m, k, n)
        return
    if cmd != "time":
        sys.exit(f"matmul-gap.py: unknown command {cmd!r} (build or time)")
    import onnxruntime as ort

    kind = sys.argv[6] if len(sys.argv) > 6 else ""
    if kind not in ("feed", "init"):
        sys.exit(f"matmul-gap.py time: KIND must be feed or init, got {kind!r}")
    res = {"runtime": f"onnxruntime {ort.__version__} (Python)", "kind": kind}
    res.update(time_model(os.path.join(out_dir, f"matmul_{kind}.onnx"), m, k, n))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
