/**
 * Lowering: a traced graph to one ONNX model, plus a structural key (op, attributes, wiring,
 * shapes, dtypes, inlined constant values) that identifies the compiled session to reuse.
 */
import type { DType, TypedArray } from '../dtype.js';
import type { LowerBuilder, Meta } from '../op.js';
import type { Graph, Node } from '../trace.js';
import type { Tensor } from '../tensor.js';
import type { StoredForm } from '../stored.js';
import { modelProto, nodeProto, OnnxDataType, tensorProto, valueInfoProto, type AttrValue, type Message } from './proto.js';

export const OPSET = 20;

/**
 * What to feed one model input: graph input `input`'s values, its stored array (a tensor held in
 * a stored form, decoded by the graph), or the stored form's row multipliers.
 */
export interface FeedSlot {
  input: number;
  part: 'values' | 'stored' | 'scale';
}

export interface Prepared {
  /** Identifies the model: equal keys lower to the same ONNX model. */
  key: string;
  /** What each model input is fed, in `inputNames` order (dead inputs dropped). */
  slots: FeedSlot[];
  inputNames: string[];
  /** Whether any value is float64 (ORT's extended fusions have float-only kernels). */
  hasFloat64: boolean;
  /** Whether some input is fed in 16-bit form (its widened values are the pass's largest temporaries). */
  hasHalfFeeds: boolean;
  /**
   * The ONNX model, and the names of its outputs (one per graph output, in order). `resident`
   * names inputs (of `inputNames`) whose values are written into the model as initializers
   * instead (their raw little-endian bytes, of the input's own type and shape): a runtime bakes
   * weights that stay the same across runs into the session, where ONNX Runtime folds what
   * depends on them alone (transposes, decodes) once and packs matmul operands once.
   */
  build(resident?: ReadonlyMap<string, Uint8Array>): { bytes: Uint8Array; outputNames: string[] };
}

/**
 * Attributes as a cache-key string. Plain JSON writes NaN, Infinity and -Infinity all as null, so
 * pad(-Infinity) would reuse the session compiled for pad(Infinity); these are kept apart.
 */
export function attrKey(attrs: unknown): string {
  return JSON.stringify(attrs, (_k, v: unknown) => {
    if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return `#num:${Object.is(v, -0) ? '-0' : String(v)}`;
    if (typeof v === 'bigint') return `#big:${v}`;
    return v;
  });
}

function storageBytes(d: TypedArray): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Dead-code elimination + naming + key. */
export function prepare(graph: Graph): Prepared {
  const inputIndex = new Map<Tensor, number>();
  graph.inputs.forEach((t, i) => inputIndex.set(t, i));

  // Nodes needed for the outputs, in recorded (topological) order.
  const needed = new Set<Node>();
  const stack: Tensor[] = [...graph.outputs];
  const usedInputSet = new Set<number>();
  const usedConsts = new Set<Tensor>();
  while (stack.length) {
    const t = stack.pop()!;
    if (inputIndex.has(t)) {
      usedInputSet.add(inputIndex.get(t)!);
      continue;
    }
    if (graph.constants.has(t)) {
      usedConsts.add(t);
      continue;
    }
    const n = t._node;
    if (!n) throw new Error('internal: traced value with no producer is not a graph input');
    if (needed.has(n)) continue;
    needed.add(n);
    for (const i of n.inputs) stack.push(i);
  }
  const nodes = [...needed].sort((a, b) => a.id - b.id);
  const usedInputs = [...usedInputSet].sort((a, b) => a - b);

  const names = new Map<Tensor, string>();
  const keyParts: string[] = [];
  // Feeds held in a stored form (16-bit floats, transposed views) are fed as stored and decoded
  // in the graph; eager one-node graphs (storedFeeds unset) are fed decoded values.
  const forms = usedInputs.map((i) => (graph.storedFeeds ? (graph.feeds[i]?._stored ?? null) : null));
  const slots: FeedSlot[] = [];
  const inputNames: string[] = [];
  usedInputs.forEach((i, k) => {
    const t = graph.inputs[i]!;
    const f = forms[k]!;
    names.set(t, `in${k}`);
    inputNames.push(`in${k}`);
    slots.push({ input: i, part: f ? 'stored' : 'values' });
    if (f?.scale) {
      inputNames.push(`in${k}s`);
      slots.push({ input: i, part: 'scale' });
    }
    keyParts.push(`I${t.dtype}[${t.shape.join(',')}]${f ? storedKey(f) : ''}`);
  });
  const constList = [...usedConsts];
  constList.forEach((c, k) => {
    names.set(c, `const${k}`);
    const v = graph.constants.get(c)!;
    keyParts.push(`C${v.dtype}[${v.shape.join(',')}]=${Array.from(v._storage() as ArrayLike<number | bigint>).join(',')}`);
  });
  nodes.forEach((n, k) => {
    n.outputs.forEach((o, j) => names.set(o, `v${k}_${j}`));
    const ins = n.inputs.map((t) => names.get(t) ?? '?').join(',');
    const outs = n.outputs.map((o) => `${o.dtype}[${o.shape.join(',')}]`).join(',');
    keyParts.push(`${n.op.name}(${ins})${attrKey(n.attrs)}->${outs}`);
  });
  const outRefs = graph.outputs.map((o) => names.get(o)!);
  keyParts.push(`O(${outRefs.join(',')})`);
  const key = keyParts.join(';');

  const build = (resident?: ReadonlyMap<string, Uint8Array>): { bytes: Uint8Array; outputNames: string[] } => {
    const onnxNodes: Message[] = [];
    const initializers: Message[] = [];
    let tmp = 0;
    const b: LowerBuilder = {
      none: '',
      emit(opType, inputs, attrs, nOutputs = 1) {
        const outs = Array.from({ length: nOutputs }, () => `t${tmp++}`);
        onnxNodes.push(nodeProto({ opType, inputs, outputs: outs, attrs: attrs as Record<string, AttrValue> | undefined }));
        return outs;
      },
      constI64(values, dims) {
        const name = `k${tmp++}`;
        const data = BigInt64Array.from(values.map((v) => BigInt(v)));
        initializers.push(tensorProto({ name, dataType: OnnxDataType.int64, dims: dims ?? [values.length], raw: storageBytes(data) }));
        return name;
      },
      constScalar(value, dtype) {
        const name = `k${tmp++}`;
        initializers.push(tensorProto({ name, dataType: OnnxDataType[dtype], dims: [], raw: storageBytes(scalarStorage(value, dtype)) }));
        return name;
      },
    };
    constList.forEach((c, k) => {
      const v = graph.constants.get(c)!;
      initializers.push(
        tensorProto({ name: `const${k}`, dataType: OnnxDataType[v.dtype], dims: v.shape, raw: storageBytes(v._storage()) }),
      );
    });
    const valueName = new Map<Tensor, string>();
    for (const t of names.keys()) if (!t._node || !needed.has(t._node)) valueName.set(t, names.get(t)!);
    const inputInfos: Message[] = [];
    const declare = (name: string, dataType: number, dims: readonly number[]): void => {
      const raw = resident?.get(name);
      if (raw === undefined) inputInfos.push(valueInfoProto(name, dataType, dims));
      else initializers.push(tensorProto({ name, dataType, dims, raw }));
    };
    const stored = storedInputs(usedInputs, forms, graph, nodes);
    // Stored-form inputs are decoded at the start of the node list (ONNX Runtime's depth-first
    // order then runs each decode just before the node that reads it, after that node's other
    // inputs; decodes placed later would all run first). Two uses skip the full decode, which
    // for an embedding-sized weight is the largest value of the pass: a gather along axis 0
    // gathers the 16-bit rows and widens only those, and a matmul by a weight applies the row
    // multipliers to its small input or output instead (exact: they are powers of two).
    usedInputs.forEach((i, k) => {
      const t = graph.inputs[i]!;
      const f = forms[k]!;
      if (!f) {
        declare(`in${k}`, OnnxDataType[t.dtype], t.shape);
        return;
      }
      declare(`in${k}`, f.format === 'float16' ? OnnxDataType.float16 : OnnxDataType[t.dtype], f.shape);
      if (f.scale) declare(`in${k}s`, OnnxDataType.float32, scaleShape(f));
      const use = stored.get(t)!;
      const widened = (): string =>
        f.format === 'float16' ? b.emit('Cast', [`in${k}`], { to: { kind: 'int', value: OnnxDataType.float32 } })[0]! : `in${k}`;
      const transposed = (v: string): string =>
        f.transposed ? b.emit('Transpose', [v], { perm: { kind: 'ints', value: [1, 0] } })[0]! : v;
      if (use.other) {
        let v = widened();
        if (f.scale) v = b.emit('Mul', [v, `in${k}s`])[0]!;
        valueName.set(t, transposed(v));
      }
      if (use.matmul) use.parts = matmulParts(b, use);
    });
    for (const n of nodes) {
      const ins = n.inputs.map((t) => valueName.get(t)!);
      const meta = { inputs: n.inputs.map(metaOf), outputs: n.outputs.map(metaOf) };
      const special = lowerStoredUse(b, n, ins, stored);
      const outs = special ?? n.op.lower(b, ins, n.attrs, meta);
      if (outs.length !== n.outputs.length)
        throw new Error(`internal: lowering of '${n.op.name}' returned ${outs.length} outputs, expected ${n.outputs.length}`);
      n.outputs.forEach((o, j) => valueName.set(o, outs[j]!));
    }
    // A graph output is the node value itself (no copy), except where that is impossible: an
    // output that is a graph input or constant, or that repeats an earlier output, goes through
    // an Identity node with a name of its own.
    const taken = new Set<string>();
    const outputNames = graph.outputs.map((o, k) => {
      const v = valueName.get(o)!;
      if (v.startsWith('t') && !taken.has(v)) {
        taken.add(v);
        return v;
      }
      onnxNodes.push(nodeProto({ opType: 'Identity', inputs: [v], outputs: [`out${k}`] }));
      return `out${k}`;
    });
    const bytes = modelProto({
      opset: OPSET,
      nodes: onnxNodes,
      initializers,
      inputs: inputInfos,
      outputs: graph.outputs.map((o, k) => valueInfoProto(outputNames[k]!, OnnxDataType[o.dtype], o.shape)),
    });
    return { bytes, outputNames };
  };

  const hasFloat64 =
    usedInputs.some((i) => graph.inputs[i]!.dtype === 'float64') || nodes.some((n) => n.outputs.some((o) => o.dtype === 'float64'));
  const hasHalfFeeds = forms.some((f) => f?.format === 'float16');
  return { key, slots, inputNames, hasFloat64, hasHalfFeeds, build };
}

/** How the graph uses one stored-form input. */
interface StoredUse {
  /** the input's model name (`in${k}`) and its form */
  name: string;
  form: StoredForm;
  /** read by gathers along axis 0 (rows of an untransposed 2-D array, one multiplier each) */
  gather: boolean;
  /** read as the right operand of matmuls */
  matmul: boolean;
  /** read any other way (or returned): needs the fully decoded value */
  other: boolean;
  /** for matmuls: the widened (and transposed) weight without its row multipliers, in column blocks */
  parts?: { name: string; lo: number; hi: number }[];
}

/**
 * Largest block of a 16-bit matmul weight widened at once (elements): an unembedding is widened
 * and multiplied block by block of output columns (on a 1B model, 64 MB at a time instead of 1 GB).
 */
let widenBlock = 1 << 24;

/** @internal sets the block size of widened 16-bit matmul weights (tests use tiny blocks); returns the previous one */
export function _setWidenBlock(elements: number): number {
  const prev = widenBlock;
  widenBlock = elements;
  return prev;
}

/** A 16-bit matmul weight widened without its multipliers, in blocks of output columns. */
function matmulParts(b: LowerBuilder, u: StoredUse): { name: string; lo: number; hi: number }[] {
  const f = u.form;
  const [R, C] = f.shape as [number, number];
  // Output columns are the stored rows of a transposed view, the stored columns otherwise.
  const N = f.transposed ? R : C;
  const K = f.transposed ? C : R;
  const per = R * C <= widenBlock ? N : Math.max(1, Math.floor(widenBlock / Math.max(1, K)));
  const parts: { name: string; lo: number; hi: number }[] = [];
  for (let lo = 0; lo < N || (N === 0 && lo === 0); lo += per) {
    const hi = Math.min(N, lo + per);
    let v = u.name;
    if (per < N) v = b.emit('Slice', [v, b.constI64([lo]), b.constI64([hi]), b.constI64([f.transposed ? 0 : 1])])[0]!;
    v = b.emit('Cast', [v], { to: { kind: 'int', value: OnnxDataType.float32 } })[0]!;
    if (f.transposed) v = b.emit('Transpose', [v], { perm: { kind: 'ints', value: [1, 0] } })[0]!;
    parts.push({ name: v, lo, hi });
    if (N === 0) break;
  }
  return parts;
}

/** Classifies every use of each stored-form input among the graph's nodes. */
function storedInputs(usedInputs: number[], forms: (StoredForm | null)[], graph: Graph, nodes: Node[]): Map<Tensor, StoredUse> {
  const out = new Map<Tensor, StoredUse>();
  usedInputs.forEach((i, k) => {
    const f = forms[k];
    if (f) out.set(graph.inputs[i]!, { name: `in${k}`, form: f, gather: false, matmul: false, other: false });
  });
  if (out.size === 0) return out;
  for (const n of nodes)
    n.inputs.forEach((t, j) => {
      const u = out.get(t);
      if (!u) return;
      if (n.op.name === 'gather' && j === 0 && (n.attrs as { axis: number }).axis === 0 && !u.form.transposed && u.form.shape.length === 2)
        u.gather = true;
      else if (n.op.name === 'matmul' && j === 1 && n.inputs[0] !== t && u.form.shape.length === 2 && u.form.format === 'float16')
        u.matmul = true;
      else u.other = true;
    });
  for (const o of graph.outputs) {
    const u = out.get(o);
    if (u) u.other = true;
  }
  return out;
}

/** The lowering of a gather or matmul that reads a stored-form input without its full decode; null for other nodes. */
function lowerStoredUse(b: LowerBuilder, n: Node, ins: string[], stored: Map<Tensor, StoredUse>): string[] | null {
  if (stored.size === 0) return null;
  if (n.op.name === 'gather') {
    const u = stored.get(n.inputs[0]!);
    if (!u?.gather || (n.attrs as { axis: number }).axis !== 0) return null;
    const rows = b.emit('Gather', [u.name, ins[1]!], { axis: { kind: 'int', value: 0 } })[0]!;
    let v = u.form.format === 'float16' ? b.emit('Cast', [rows], { to: { kind: 'int', value: OnnxDataType.float32 } })[0]! : rows;
    if (u.form.scale) v = b.emit('Mul', [v, b.emit('Gather', [`${u.name}s`, ins[1]!], { axis: { kind: 'int', value: 0 } })[0]!])[0]!;
    return [v];
  }
  if (n.op.name === 'matmul') {
    const u = stored.get(n.inputs[1]!);
    if (!u?.matmul || n.inputs[0] === n.inputs[1]) return null;
    const f = u.form;
    const rows = f.shape[0]!;
    // Stored [rows, cols] with a multiplier per row: a transposed view's rows are output
    // columns (multiply the output), a plain array's rows are input columns (multiply the input).
    let x = ins[0]!;
    if (f.scale && !f.transposed) x = b.emit('Mul', [x, b.emit('Reshape', [`${u.name}s`, b.constI64([rows])])[0]!])[0]!;
    const outs = u.parts!.map(({ name, lo, hi }) => {
      const y = b.emit('MatMul', [x, name])[0]!;
      if (!f.scale || !f.transposed) return y;
      const s = hi - lo === rows ? `${u.name}s` : b.emit('Slice', [`${u.name}s`, b.constI64([lo]), b.constI64([hi]), b.constI64([0])])[0]!;
      return b.emit('Mul', [y, b.emit('Reshape', [s, b.constI64([hi - lo])])[0]!])[0]!;
    });
    return [outs.length === 1 ? outs[0]! : b.emit('Concat', outs, { axis: { kind: 'int', value: -1 } })[0]!];
  }
  return null;
}

function storedKey(f: StoredForm): string {
  return `<${f.format}${f.scale ? '*' : ''}${f.transposed ? 'T' : ''}[${f.shape.join(',')}]>`;
}

/** The shape the row multipliers of a stored form are fed in: [rows, 1] for 2-D arrays, else [1]. */
export function scaleShape(f: StoredForm): number[] {
  return f.shape.length === 2 ? [f.shape[0]!, 1] : [1];
}

function metaOf(t: Tensor): Meta {
  return { shape: [...t.shape], dtype: t.dtype };
}

function scalarStorage(value: number, dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32':
      return Float32Array.of(value);
    case 'float64':
      return Float64Array.of(value);
    case 'int32':
      return Int32Array.of(value);
    case 'int64':
      return BigInt64Array.of(BigInt(Math.trunc(value)));
    case 'bool':
      return Uint8Array.of(value ? 1 : 0);
  }
}
