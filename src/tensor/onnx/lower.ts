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
  /** The ONNX model, and the names of its outputs (one per graph output, in order). */
  build(): { bytes: Uint8Array; outputNames: string[] };
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

  const build = (): { bytes: Uint8Array; outputNames: string[] } => {
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
    usedInputs.forEach((i, k) => {
      const t = graph.inputs[i]!;
      const f = forms[k]!;
      if (!f) {
        inputInfos.push(valueInfoProto(`in${k}`, OnnxDataType[t.dtype], t.shape));
        return;
      }
      inputInfos.push(valueInfoProto(`in${k}`, f.format === 'float16' ? OnnxDataType.float16 : OnnxDataType[t.dtype], f.shape));
      let v = `in${k}`;
      if (f.format === 'float16') v = b.emit('Cast', [v], { to: { kind: 'int', value: OnnxDataType.float32 } })[0]!;
      if (f.scale) {
        inputInfos.push(valueInfoProto(`in${k}s`, OnnxDataType.float32, scaleShape(f)));
        v = b.emit('Mul', [v, `in${k}s`])[0]!;
      }
      if (f.transposed) v = b.emit('Transpose', [v], { perm: { kind: 'ints', value: [1, 0] } })[0]!;
      valueName.set(t, v);
    });
    for (const n of nodes) {
      const ins = n.inputs.map((t) => valueName.get(t)!);
      const meta = { inputs: n.inputs.map(metaOf), outputs: n.outputs.map(metaOf) };
      const outs = n.op.lower(b, ins, n.attrs, meta);
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
  return { key, slots, inputNames, hasFloat64, build };
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
