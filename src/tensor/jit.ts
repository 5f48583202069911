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
 *
 * `jit(fn, { reuseTrace: true })` also skips the re-trace: a call whose arguments have the
 * structure of an earlier call (the same pytree, tensors of the same shapes, dtypes and stored
 * forms, the same primitive leaves) runs that call's trace again with the new arguments. As in
 * JAX, the function must then be pure in its arguments: what it closes over (weights, flags,
 * random draws) is read at the first trace of each structure and kept, so a closed-over weight
 * replaced later is not seen (call `clearTraces()` after replacing one, or pass it as an
 * argument). It saves the trace and the session-key building of every call (for one op, about
 * half the fixed cost; for the 12-block GPT-2 stack, the milliseconds of tracing).
 */
import { eagerConfig, Trace, withTrace, activeTrace, type Graph } from './trace.js';
import { flatten } from './pytree.js';
import { Tensor } from './tensor.js';
import { ortStats, type KnownLowering } from './backends/ort.js';
import { runGraphOnRuntime } from './backends/runtime.js';
import { runGraphJs } from './backends/js.js';

export interface JitStats {
  /** Calls that traced the function. */
  traces: number;
  /** Calls that compiled a new session (a cache miss). */
  compiles: number;
  /** Calls that reused a kept trace (`reuseTrace` only). */
  traceHits: number;
}

export interface JitOptions {
  /**
   * Keep each argument structure's trace and run it again for later calls of that structure,
   * instead of re-tracing (default false; see the module comment for the contract: the function
   * must be pure in its arguments).
   */
  reuseTrace?: boolean;
  /** At most this many traces are kept per function, least recently used dropped first (default 8). */
  maxTraces?: number;
}

export type Jitted<F> = F & {
  stats: JitStats;
  /** Drops the kept traces (`reuseTrace`): the next call of each structure traces again. */
  clearTraces: () => void;
};

/** A kept trace: the graph, the tracers of the function's result, and its session key once known. */
interface KeptTrace {
  trace: Trace;
  out: unknown;
  known: KnownLowering;
}

/**
 * The structure of an argument pytree as a string: arrays, plain objects (keys in order), tensors
 * by dtype, shape and stored form (a transposed or 16-bit weight lowers differently), primitives by
 * value. Any other leaf (a function, a class instance) cannot be compared, so it is refused.
 */
function argumentSignature(x: unknown, path: string): string {
  if (x instanceof Tensor) {
    if (x.isTracer) throw new Error(`jit: got a tracer from a finished trace as an argument (at ${path || 'the arguments'})`);
    const f = x._stored;
    const form = f ? `~${f.format}${f.transposed ? 'T' : ''}${f.scale ? 's' : ''}` : '';
    return `T${x.dtype}[${x.shape.join(',')}]${form}`;
  }
  if (Array.isArray(x)) return `[${x.map((v, i) => argumentSignature(v, `${path}[${i}]`)).join(',')}]`;
  if (x === null || x === undefined) return String(x);
  switch (typeof x) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof x}:${String(x)}`;
    case 'string':
      return JSON.stringify(x);
    case 'object': {
      const proto = Object.getPrototypeOf(x) as unknown;
      if (proto === Object.prototype || proto === null)
        return `{${Object.keys(x)
          .map((k) => `${JSON.stringify(k)}:${argumentSignature((x as Record<string, unknown>)[k], `${path}.${k}`)}`)
          .join(',')}}`;
    }
  }
  const what = typeof x === 'object' ? `a ${(x as object).constructor?.name ?? 'object'}` : `a ${typeof x}`;
  throw new TypeError(
    `jit(reuseTrace): the argument at ${path || 'the top'} is ${what}; a kept trace is looked up by tensors, arrays, plain objects and primitives only (close over it, or drop reuseTrace)`,
  );
}

/** Runs a finished trace's graph for the given outputs and returns concrete tensors. */
export function runTrace(trace: Trace, argFeeds: readonly Tensor[], outputs: readonly Tensor[], known?: KnownLowering): Tensor[] {
  const graph: Graph = {
    nodes: trace.nodes,
    inputs: trace.inputs.map((i) => i.tracer),
    feeds: trace.inputs.map((inp, i) => inp.captured ?? argFeeds[i]!),
    outputs: [...outputs],
    constants: trace.constants,
    storedFeeds: true,
  };
  if (outputs.length === 0) return [];
  const datas = eagerConfig.backend === 'ort' ? runGraphOnRuntime(graph, undefined, known) : runGraphJs(graph);
  return outputs.map((o, i) => Tensor._concrete(o.shape, o.dtype, datas[i]!));
}

/**
 * Traces `fn` once per call and runs it as one compiled graph. Arguments and results may be
 * pytrees (arrays / plain objects) of tensors; non-tensor leaves of the arguments are passed
 * through unchanged (they shape the trace). Inside another trace the function is inlined.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function jit<F extends (...args: any[]) => any>(fn: F, options: JitOptions = {}): Jitted<F> {
  const reuse = options.reuseTrace ?? false;
  const maxTraces = options.maxTraces ?? 8;
  if (!Number.isInteger(maxTraces) || maxTraces < 1) throw new RangeError(`jit: maxTraces must be a positive integer, got ${maxTraces}`);
  const stats: JitStats = { traces: 0, compiles: 0, traceHits: 0 };
  /** Kept traces by argument signature, least recently used first. */
  const kept = new Map<string, KeptTrace>();
  const wrapped = ((...args: unknown[]) => {
    if (activeTrace()) return fn(...args);
    const signature = reuse ? argumentSignature(args, '') : '';
    const hit = reuse ? kept.get(signature) : undefined;
    if (hit) {
      stats.traceHits++;
      kept.delete(signature);
      kept.set(signature, hit);
      // The signature fixed the leaves' order and kinds: the tensors are the new feeds, in order.
      const argFeeds = flatten(args).leaves.filter((l): l is Tensor => l instanceof Tensor);
      return run(hit.trace, argFeeds, hit.out, hit.known);
    }
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
    let known: KnownLowering | undefined;
    if (reuse) {
      known = {};
      kept.set(signature, { trace, out, known });
      while (kept.size > maxTraces) kept.delete(kept.keys().next().value as string);
    }
    return run(trace, argFeeds, out, known);
  }) as Jitted<F>;
  const run = (trace: Trace, argFeeds: readonly Tensor[], out: unknown, known?: KnownLowering): unknown => {
    const before = ortStats.compiles;
    const result = materialize(trace, argFeeds, out, known);
    stats.compiles += ortStats.compiles - before;
    return result;
  };
  wrapped.stats = stats;
  wrapped.clearTraces = () => kept.clear();
  return wrapped;
}

/** Replaces the trace's tracers in a result pytree by their computed values. */
export function materialize(trace: Trace, argFeeds: readonly Tensor[], out: unknown, known?: KnownLowering): unknown {
  const { leaves, rebuild } = flatten(out);
  const tracers: Tensor[] = [];
  for (const l of leaves) {
    if (l instanceof Tensor && l.isTracer) {
      if (l._trace !== trace) throw new Error('jit: the function returned a tracer from another trace');
      tracers.push(l);
    }
  }
  const values = runTrace(trace, argFeeds, tracers, known);
  let k = 0;
  return rebuild(leaves.map((l) => (l instanceof Tensor && l.isTracer ? values[k++] : l)));
}
