/**
 * jit: trace a function over tensors into one graph and run it as one compiled ONNX Runtime
 * session (or on the JS interpreter with the `js` backend).
 *
 * Every call re-traces the function (cheap: no arithmetic happens while tracing) and looks the
 * compiled session up by the graph's structure: ops, attributes, wiring, shapes and dtypes.
 * Tensors the function closes over are lifted to graph inputs, so calling it again after
 * replacing a weight or a cached activation reuses the session. Sessions are specialised to
 * shapes, like XLA under JAX: a new batch or sequence length compiles a new session (counted in
 * `stats.compiles`).
 */
import { eagerConfig, Trace, withTrace, activeTrace, type Graph } from './trace.js';
import { flatten } from './pytree.js';
import { Tensor } from './tensor.js';
import { ortStats } from './backends/ort.js';
import { runGraphOnRuntime } from './backends/runtime.js';
import { runGraphJs } from './backends/js.js';

export interface JitStats {
  /** Calls that traced the function. */
  traces: number;
  /** Calls that compiled a new session (a cache miss). */
  compiles: number;
}

export type Jitted<F> = F & { stats: JitStats };

/** Runs a finished trace's graph for the given outputs and returns concrete tensors. */
export function runTrace(trace: Trace, argFeeds: readonly Tensor[], outputs: readonly Tensor[]): Tensor[] {
  const graph: Graph = {
    nodes: trace.nodes,
    inputs: trace.inputs.map((i) => i.tracer),
    feeds: trace.inputs.map((inp, i) => inp.captured ?? argFeeds[i]!),
    outputs: [...outputs],
    constants: trace.constants,
    storedFeeds: true,
  };
  if (outputs.length === 0) return [];
  const datas = eagerConfig.backend === 'ort' ? runGraphOnRuntime(graph) : runGraphJs(graph);
  return outputs.map((o, i) => Tensor._concrete(o.shape, o.dtype, datas[i]!));
}

/**
 * Traces `fn` once per call and runs it as one compiled graph. Arguments and results may be
 * pytrees (arrays / plain objects) of tensors; non-tensor leaves of the arguments are passed
 * through unchanged (they shape the trace). Inside another trace the function is inlined.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function jit<F extends (...args: any[]) => any>(fn: F): Jitted<F> {
  const stats: JitStats = { traces: 0, compiles: 0 };
  const wrapped = ((...args: unknown[]) => {
    if (activeTrace()) return fn(...args);
    const trace = new Trace();
    const { leaves, rebuild } = flatten(args);
    const argFeeds: Tensor[] = [];
    const tracedLeaves = leaves.map((l) => {
      if (!(l instanceof Tensor)) return l;
      if (l.isTracer) throw new Error('jit: got a tracer from a finished trace as an argument');
      argFeeds.push(l);
      return trace.argument({ shape: [...l.shape], dtype: l.dtype });
    });
    stats.traces++;
    let out: unknown;
    try {
      out = withTrace(trace, () => fn(...(rebuild(tracedLeaves) as unknown[])));
    } finally {
      trace.active = false;
    }
    const before = ortStats.compiles;
    const result = materialize(trace, argFeeds, out);
    stats.compiles += ortStats.compiles - before;
    return result;
  }) as Jitted<F>;
  wrapped.stats = stats;
  return wrapped;
}

/** Replaces the trace's tracers in a result pytree by their computed values. */
export function materialize(trace: Trace, argFeeds: readonly Tensor[], out: unknown): unknown {
  const { leaves, rebuild } = flatten(out);
  const tracers: Tensor[] = [];
  for (const l of leaves) {
    if (l instanceof Tensor && l.isTracer) {
      if (l._trace !== trace) throw new Error('jit: the function returned a tracer from another trace');
      tracers.push(l);
    }
  }
  const values = runTrace(trace, argFeeds, tracers);
  let k = 0;
  return rebuild(leaves.map((l) => (l instanceof Tensor && l.isTracer ? values[k++] : l)));
}
