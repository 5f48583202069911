/**
 * Tracing and dispatch. `apply(op, inputs, attrs)` is the single entry point every op goes
 * through: with concrete inputs it executes now (eager); when an input is a tracer, or a
 * concrete tensor from before the active trace began, it records a node in the active trace.
 */
import { allocate, fromNumbers, toNumeric, type DType, type TypedArray } from './dtype.js';
import { getOp, type KernelArg, type Meta, type OpDef } from './op.js';
import { fmtShape, sizeOf } from './shape.js';
import { Tensor } from './tensor.js';
import { runGraphOnRuntime, runtimeAvailable } from './backends/runtime.js';
import { attrKey } from './onnx/lower.js';

/** One recorded op application. */
export interface Node {
  id: number;
  op: OpDef<unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  attrs: any;
  inputs: Tensor[];
  outputs: Tensor[];
}

/** A graph input: an argument tracer, or a concrete tensor captured from the enclosing scope. */
export interface GraphInput {
  tracer: Tensor;
  /** The concrete tensor fed at run time (captured tensors); arguments are fed by the caller. */
  captured?: Tensor;
}

let traceCounter = 0;

/** Concrete tensors created inside a trace with at most this many elements are inlined as constants. */
const MAX_INLINE_CONSTANT = 64;

/** The graph recorded while a traced function runs. */
export class Trace {
  readonly id = ++traceCounter;
  readonly nodes: Node[] = [];
  readonly inputs: GraphInput[] = [];
  /** Concrete tensors created before this id are captured as inputs; later ones may be constants. */
  readonly startTensorId: number;
  /** Concrete tensor id -> its tracer in this trace. */
  readonly captured = new Map<number, Tensor>();
  /** Small concrete tensors created inside the trace, inlined as ONNX initializers: tracer -> value. */
  readonly constants = new Map<Tensor, Tensor>();
  active = true;

  constructor() {
    this.startTensorId = Tensor.nextId();
  }

  /** A fresh input tracer (a function argument). */
  argument(meta: Meta): Tensor {
    const t = Tensor._tracer(meta.shape, meta.dtype, this, null, this.inputs.length);
    this.inputs.push({ tracer: t });
    return t;
  }

  /**
   * The tracer standing for a concrete tensor inside this trace. Tensors from before the trace
   * (closed-over weights, clean activations) become graph inputs, so new values reuse the compiled
   * session; small tensors created inside the trace (scalars, masks) are inlined as constants.
   */
  lift(t: Tensor): Tensor {
    if (t._trace) return t;
    const seen = this.captured.get(t.id);
    if (seen) return seen;
    let tr: Tensor;
    if (t.id >= this.startTensorId && t.size <= MAX_INLINE_CONSTANT) {
      tr = Tensor._tracer(t.shape, t.dtype, this, null, -1);
      this.constants.set(tr, t);
    } else {
      tr = Tensor._tracer(t.shape, t.dtype, this, null, this.inputs.length);
      this.inputs.push({ tracer: tr, captured: t });
    }
    this.captured.set(t.id, tr);
    return tr;
  }
}

const traceStack: Trace[] = [];

export function activeTrace(): Trace | null {
  return traceStack.length ? traceStack[traceStack.length - 1]! : null;
}

/** Runs `fn` with `trace` as the active trace. */
export function withTrace<T>(trace: Trace, fn: () => T): T {
  traceStack.push(trace);
  try {
    return fn();
  } finally {
    traceStack.pop();
  }
}

let nodeCounter = 0;

/** Eager execution settings. */
export const eagerConfig = {
  /** 'ort' runs large eager ops through ONNX Runtime; 'js' runs everything on the JS kernels. */
  backend: 'ort' as 'ort' | 'js',
  /**
   * Work (roughly, output elements; FLOPs/2 for matmul) below which an eager op runs on the JS
   * kernel even with the ORT backend: the fixed cost of an ORT call (now 7-12 us on a 2-core
   * machine) beats the JS loop only from about this size (npm run bench:engine measures the
   * crossover). Measured Dec 2026 with warm sessions, 512 cost 0.71 of 4096's total time over 25
   * ops of work 256-4096; but each new shape on the ORT path compiles a session first (about a
   * millisecond), and eager ops on prompt-length shapes (a logit lens over prompts of 1..40
   * tokens) compiled one per length at 512 (test/analysis-buckets.test.ts). So the threshold
   * stays at 4096, where such small, shape-varying ops run in JS.
   */
  jsThreshold: 4096,
  /**
   * Elements from which an eager 2-D `transpose()` returns a view sharing the matrix's storage
   * instead of a copy (tensors held in 16-bit form always do). Inside jit the view is fed as the
   * stored matrix plus a Transpose, which ONNX Runtime folds into the MatMul that reads it: the
   * transposed weights of a checkpoint ([out, in] -> [in, out]) and tied unembeddings cost no
   * copy. Values are decoded (once) when something outside a graph reads them; a view keeps
   * the matrix it shares alive.
   */
  transposeViewMin: 1 << 16,
};

/** Counters the tests and benchmarks read. */
export const stats = {
  eagerJs: 0,
  eagerOrt: 0,
  traced: 0,
};

function opError(op: string, inputs: readonly Tensor[], msg: string): Error {
  return new Error(`${op}: ${msg} (inputs: ${inputs.map((t) => `${t.dtype}${fmtShape(t.shape)}`).join(', ')})`);
}

/**
 * Applies a registered op. The one dispatch point for eager execution and tracing.
 */
export function apply(opName: string, inputs: readonly Tensor[], attrs: unknown = {}): Tensor[] {
  const op = getOp(opName);
  for (const t of inputs) {
    if (!(t instanceof Tensor)) throw new Error(`${opName}: expected Tensor inputs, got ${typeof t}`);
    if (t._trace && !t._trace.active)
      throw new Error(
        `${opName}: this tensor is a tracer from a jit/grad trace that has finished. Tracers only exist while the ` +
          `traced function runs; return the value from the function (or read it with runWithCache-style outputs) instead of storing it.`,
      );
  }
  const trace = activeTrace();
  const tracing = trace !== null && inputs.some((t) => t._trace !== null || t.id < trace.startTensorId);
  if (!tracing) {
    const foreign = inputs.find((t) => t._trace);
    if (foreign)
      throw new Error(
        `${opName}: got a tracer outside of its trace. A tracer stands for a value inside a jit/grad function; use it only inside that function.`,
      );
    return runEager(op, opName, inputs, attrs);
  }
  for (const t of inputs)
    if (t._trace && t._trace !== trace)
      throw new Error(`${opName}: mixes tracers from two different traces (a tracer from an outer jit/grad leaked into an inner one)`);
  const lifted = inputs.map((t) => trace.lift(t));
  let metas: Meta[];
  try {
    metas = op.infer(lifted, attrs);
  } catch (e) {
    throw rethrow(opName, inputs, e);
  }
  const node: Node = { id: ++nodeCounter, op, attrs, inputs: lifted, outputs: [] };
  node.outputs = metas.map((m, i) => Tensor._tracer(m.shape, m.dtype, trace, node, i));
  trace.nodes.push(node);
  stats.traced++;
  return node.outputs;
}

function rethrow(opName: string, inputs: readonly Tensor[], e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  if (msg.startsWith(`${opName}:`)) return e instanceof Error ? e : new Error(msg);
  return opError(opName, inputs, msg);
}

/** Applies an op that has a single output. */
export function apply1(opName: string, inputs: readonly Tensor[], attrs: unknown = {}): Tensor {
  return apply(opName, inputs, attrs)[0]!;
}

function runEager(op: OpDef<unknown>, opName: string, inputs: readonly Tensor[], attrs: unknown): Tensor[] {
  let metas: Meta[];
  try {
    metas = op.infer(inputs, attrs);
  } catch (e) {
    throw rethrow(opName, inputs, e);
  }
  const work = op.cost ? op.cost(inputs, metas, attrs) : metas.reduce((n, m) => n + sizeOf(m.shape), 0);
  if (eagerConfig.backend === 'ort' && work >= eagerConfig.jsThreshold && runtimeAvailable()) {
    stats.eagerOrt++;
    const key = `eager:${opName}${attrKey(attrs)}${inputs.map((t) => `|${t.dtype}${t.shape.join(',')}`).join('')}`;
    const datas = runGraphOnRuntime(singleNodeGraph(op, inputs, attrs, metas), key);
    return datas.map((d, i) => Tensor._concrete(metas[i]!.shape, metas[i]!.dtype, d));
  }
  stats.eagerJs++;
  return runKernel(op, inputs, attrs, metas);
}

/** Runs an op's JS kernel on concrete tensors. */
export function runKernel(op: OpDef<unknown>, inputs: readonly Tensor[], attrs: unknown, metas: readonly Meta[]): Tensor[] {
  const args: KernelArg[] = inputs.map((t) => ({ data: toNumeric(t._storage()), shape: t.shape, dtype: t.dtype }));
  const outs = op.kernel(args, attrs, metas);
  return outs.map((o, i) => Tensor._concrete(metas[i]!.shape, metas[i]!.dtype, toStorage(metas[i]!.dtype, o, sizeOf(metas[i]!.shape))));
}

/** Converts kernel output to the storage of `dtype` (no copy when it already is). */
export function toStorage(dtype: DType, o: ArrayLike<number>, size: number): TypedArray {
  if (o.length !== size) throw new Error(`internal: kernel produced ${o.length} elements, expected ${size}`);
  switch (dtype) {
    case 'float32':
      if (o instanceof Float32Array) return o;
      break;
    case 'float64':
      if (o instanceof Float64Array) return o;
      break;
    case 'int32':
      if (o instanceof Int32Array) return o;
      break;
    case 'bool':
      if (o instanceof Uint8Array) return o;
      break;
    case 'int64':
      break;
  }
  if (size === 0) return allocate(dtype, 0);
  return fromNumbers(dtype, o);
}

/** A self-contained graph: what the ORT backend compiles and runs. */
export interface Graph {
  nodes: Node[];
  inputs: Tensor[];
  outputs: Tensor[];
  /** Concrete values fed for `inputs`, in order. */
  feeds: Tensor[];
  /** Concrete tensors inlined as ONNX initializers (small constants created inside the trace). */
  constants: Map<Tensor, Tensor>;
  /**
   * Feed tensors held in a stored form (16-bit floats, transposed views) as stored, decoding them
   * in the graph (jit graphs); otherwise they are fed decoded.
   */
  storedFeeds?: boolean;
}

function singleNodeGraph(op: OpDef<unknown>, inputs: readonly Tensor[], attrs: unknown, metas: readonly Meta[]): Graph {
  const trace = new Trace();
  trace.active = false;
  const ins = inputs.map((t) => Tensor._tracer(t.shape, t.dtype, trace, null, 0));
  const node: Node = { id: ++nodeCounter, op, attrs, inputs: ins, outputs: [] };
  node.outputs = metas.map((m, i) => Tensor._tracer(m.shape, m.dtype, trace, node, i));
  return { nodes: [node], inputs: ins, outputs: node.outputs, feeds: [...inputs], constants: new Map() };
}
