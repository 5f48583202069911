/**
 * The Tensor: an immutable n-d array with a dtype and a shape. A tensor is either concrete (it
 * holds its values) or a tracer (it stands for a value inside a `jit`/`grad` trace and holds
 * none). Methods mirror the ops; every one goes through `apply` in trace.ts.
 */
import { allocate, fromNumbers, isDType, type DType, type TypedArray } from './dtype.js';
import { PRNG, defaultRng } from './prng.js';
import { fmtShape, normAxis, sizeOf, type Shape } from './shape.js';
import { activeTrace, apply, apply1, eagerConfig, type Node, type Trace } from './trace.js';
import { decodeStored, type StoredForm } from './stored.js';

let tensorCounter = 0;

/** Anything accepted where a tensor operand is expected: numbers become scalars of the other side's dtype. */
export type TensorLike = Tensor | number;

/** Per-axis index for `slice`/`set`: an integer (axis kept with size 1 in `set`, dropped in `index`), a range, or null (all). */
export type SliceSpec = number | null | { start?: number; end?: number; step?: number };

export type NestedArray = number | boolean | bigint | NestedArray[];

export class Tensor {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** @internal concrete storage, or null for tracers */
  _data: TypedArray | null;
  /** @internal the trace this tracer belongs to */
  readonly _trace: Trace | null;
  /** @internal the node that produced this tracer (null for graph inputs) */
  readonly _node: Node | null;
  /** @internal output index in the node (or input index for graph inputs) */
  readonly _index: number;
  /**
   * @internal how a concrete tensor's values are held when not as `_data` (16-bit floats, a
   * transposed view); see stored.ts. Graphs are fed this form and decode it.
   */
  readonly _stored: StoredForm | null;

  private constructor(
    shape: readonly number[],
    dtype: DType,
    data: TypedArray | null,
    trace: Trace | null,
    node: Node | null,
    index: number,
    stored: StoredForm | null = null,
  ) {
    this.id = ++tensorCounter;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this._data = data;
    this._trace = trace;
    this._node = node;
    this._index = index;
    this._stored = stored;
  }

  /** @internal the id the next tensor will get (traces use it to tell captured from created tensors) */
  static nextId(): number {
    return tensorCounter + 1;
  }

  /** @internal */
  static _concrete(shape: readonly number[], dtype: DType, data: TypedArray): Tensor {
    if (data.length !== sizeOf(shape)) throw new Error(`tensor: ${data.length} values do not fill shape ${fmtShape(shape)}`);
    return new Tensor(shape, dtype, data, null, null, 0);
  }

  /** @internal a concrete tensor held in a stored form (values decoded where they are needed) */
  static _fromStored(shape: readonly number[], dtype: DType, form: StoredForm): Tensor {
    if (form.data.length !== sizeOf(shape)) throw new Error(`tensor: ${form.data.length} values do not fill shape ${fmtShape(shape)}`);
    if (form.format === 'float16' && dtype !== 'float32') throw new Error(`tensor: 16-bit storage holds float32 tensors, not ${dtype}`);
    return new Tensor(shape, dtype, null, null, null, 0, form);
  }

  /** @internal */
  static _tracer(shape: readonly number[], dtype: DType, trace: Trace, node: Node | null, index: number): Tensor {
    return new Tensor(shape, dtype, null, trace, node, index);
  }

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
  /** True inside jit/grad: the tensor stands for a value and has no data. */
  get isTracer(): boolean {
    return this._trace !== null;
  }

  /**
   * How the values are held: the dtype of the stored elements ('float16' for weights kept at 2
   * bytes), the bytes they take, and whether the tensor is a transposed view of them (shared with
   * the tensor it was transposed from). Tracers hold nothing.
   */
  get storage(): { dtype: DType | 'float16'; bytes: number; transposedView: boolean } {
    const s = this._stored;
    if (s)
      return {
        dtype: s.format === 'float16' ? 'float16' : this.dtype,
        bytes: s.data.byteLength + (s.scale?.byteLength ?? 0),
        transposedView: s.transposed,
      };
    return { dtype: this.dtype, bytes: this._data?.byteLength ?? 0, transposedView: false };
  }

  /** @internal the concrete storage; explains what to do when called on a tracer */
  _storage(): TypedArray {
    if (this._data === null && this._stored) {
      const values = decodeStored(this._stored, (n) => allocate(this.dtype, n));
      // A transposed view keeps its values once decoded (that is what an eager transpose cost);
      // 16-bit forms decode on every use, or the 2-byte weights would grow back to 4.
      if (this._stored.format === 'plain') this._data = values;
      return values;
    }
    if (this._data === null)
      throw new Error(
        `cannot read the values of a tracer (${this.dtype}${fmtShape(this.shape)}): inside jit/grad a tensor stands for a ` +
          `value that is computed later. Return it from the traced function and read the result instead.`,
      );
    return this._data;
  }

  /** The values, synchronously (int64 as BigInt64Array, bool as Uint8Array). Do not mutate. */
  dataSync(): TypedArray {
    return this._storage();
  }

  /** The values (async form of `dataSync`, for symmetry with browser backends). */
  async data(): Promise<TypedArray> {
    return this._storage();
  }

  /** Nested JS arrays of numbers (bigints for int64, booleans for bool). */
  toArray(): NestedArray {
    const d = this._storage();
    const conv = (i: number): number | bigint | boolean => (this.dtype === 'bool' ? d[i] === 1 : (d[i] as number | bigint));
    if (this.rank === 0) return conv(0);
    const build = (axis: number, off: number): NestedArray[] => {
      const n = this.shape[axis]!;
      const stride = sizeOf(this.shape.slice(axis + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) out.push(axis === this.rank - 1 ? conv(off + i) : build(axis + 1, off + i * stride));
      return out;
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements (shape ${fmtShape(this.shape)}), expected 1`);
    return Number(this._storage()[0]);
  }

  toString(): string {
    if (this.isTracer) return `Tensor(tracer, ${this.dtype}${fmtShape(this.shape)})`;
    return `Tensor(${this.dtype}${fmtShape(this.shape)}, ${JSON.stringify(this.toArray(), (_, v) => (typeof v === 'bigint' ? v.toString() : v))})`;
  }

  private scalarLike(v: TensorLike): Tensor {
    return v instanceof Tensor ? v : scalar(v, this.dtype);
  }

  // ---- elementwise binary (broadcasting) ----
  add(o: TensorLike): Tensor {
    return apply1('add', [this, this.scalarLike(o)]);
  }
  sub(o: TensorLike): Tensor {
    return apply1('sub', [this, this.scalarLike(o)]);
  }
  mul(o: TensorLike): Tensor {
    return apply1('mul', [this, this.scalarLike(o)]);
  }
  div(o: TensorLike): Tensor {
    return apply1('div', [this, this.scalarLike(o)]);
  }
  pow(o: TensorLike): Tensor {
    return apply1('pow', [this, this.scalarLike(o)]);
  }
  maximum(o: TensorLike): Tensor {
    return apply1('maximum', [this, this.scalarLike(o)]);
  }
  minimum(o: TensorLike): Tensor {
    return apply1('minimum', [this, this.scalarLike(o)]);
  }
  eq(o: TensorLike): Tensor {
    return apply1('eq', [this, this.scalarLike(o)]);
  }
  ne(o: TensorLike): Tensor {
    return apply1('ne', [this, this.scalarLike(o)]);
  }
  lt(o: TensorLike): Tensor {
    return apply1('lt', [this, this.scalarLike(o)]);
  }
  le(o: TensorLike): Tensor {
    return apply1('le', [this, this.scalarLike(o)]);
  }
  gt(o: TensorLike): Tensor {
    return apply1('gt', [this, this.scalarLike(o)]);
  }
  ge(o: TensorLike): Tensor {
    return apply1('ge', [this, this.scalarLike(o)]);
  }
  and(o: Tensor): Tensor {
    return apply1('and', [this, o]);
  }
  or(o: Tensor): Tensor {
    return apply1('or', [this, o]);
  }

  /** The same values with no gradient flowing back through them (JAX's stop_gradient, torch's detach). */
  detach(): Tensor {
    return apply1('stop_gradient', [this]);
  }

  // ---- elementwise unary ----
  neg(): Tensor {
    return apply1('neg', [this]);
  }
  exp(): Tensor {
    return apply1('exp', [this]);
  }
  log(): Tensor {
    return apply1('log', [this]);
  }
  sqrt(): Tensor {
    return apply1('sqrt', [this]);
  }
  rsqrt(): Tensor {
    return apply1('rsqrt', [this]);
  }
  tanh(): Tensor {
    return apply1('tanh', [this]);
  }
  sigmoid(): Tensor {
    return apply1('sigmoid', [this]);
  }
  relu(): Tensor {
    return apply1('relu', [this]);
  }
  /** GELU; `approximate: 'tanh'` is GPT-2's gelu_new. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return apply1('gelu', [this], { approximate });
  }
  silu(): Tensor {
    return apply1('silu', [this]);
  }
  abs(): Tensor {
    return apply1('abs', [this]);
  }
  sign(): Tensor {
    return apply1('sign', [this]);
  }
  sin(): Tensor {
    return apply1('sin', [this]);
  }
  cos(): Tensor {
    return apply1('cos', [this]);
  }
  not(): Tensor {
    return apply1('not', [this]);
  }
  square(): Tensor {
    return this.mul(this);
  }
  /** Elementwise select: `cond ? this : other`. */
  where(cond: Tensor, other: TensorLike): Tensor {
    return where(cond, this, other);
  }
  cast(dtype: DType): Tensor {
    if (!isDType(dtype)) throw new Error(`cast: unknown dtype '${String(dtype)}'`);
    if (dtype === this.dtype) return this;
    return apply1('cast', [this], { dtype });
  }

  // ---- reductions ----
  sum(axes?: number | number[], keepdims = false): Tensor {
    return apply1('sum', [this], { axes: axesAttr(axes, this.rank), keepdims });
  }
  mean(axes?: number | number[], keepdims = false): Tensor {
    return apply1('mean', [this], { axes: axesAttr(axes, this.rank), keepdims });
  }
  max(axes?: number | number[], keepdims = false): Tensor {
    return apply1('max', [this], { axes: axesAttr(axes, this.rank), keepdims });
  }
  min(axes?: number | number[], keepdims = false): Tensor {
    return apply1('min', [this], { axes: axesAttr(axes, this.rank), keepdims });
  }
  /** Index of the largest value along `axis` (first one on ties), int64. */
  argmax(axis = -1, keepdims = false): Tensor {
    return apply1('argmax', [this], { axis: normAxis('argmax', axis, this.rank), keepdims });
  }
  argmin(axis = -1, keepdims = false): Tensor {
    return apply1('argmin', [this], { axis: normAxis('argmin', axis, this.rank), keepdims });
  }
  /** Cumulative sum along `axis`. */
  cumsum(axis: number, options: { exclusive?: boolean; reverse?: boolean } = {}): Tensor {
    return apply1('cumsum', [this], {
      axis: normAxis('cumsum', axis, this.rank),
      exclusive: !!options.exclusive,
      reverse: !!options.reverse,
    });
  }
  /** The k largest (or smallest) values along `axis` and their int64 indices, sorted. */
  topk(k: number, axis = -1, largest = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = apply('topk', [this], { k, axis: normAxis('topk', axis, this.rank), largest });
    return { values: values!, indices: indices! };
  }

  // ---- linear algebra ----
  /** Batched, broadcasting matrix product (numpy.matmul semantics). */
  matmul(o: Tensor): Tensor {
    return apply1('matmul', [this, o]);
  }

  // ---- normalisation / activations along an axis ----
  /**
   * Softmax along `axis`, computed stably. A slice that is all -Infinity gives NaN (as in PyTorch
   * and ONNX Runtime); mask with a large negative number instead where such rows must stay finite.
   */
  softmax(axis = -1): Tensor {
    return apply1('softmax', [this], { axis: normAxis('softmax', axis, this.rank) });
  }
  logSoftmax(axis = -1): Tensor {
    return apply1('log_softmax', [this], { axis: normAxis('log_softmax', axis, this.rank) });
  }
  /** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias. */
  layerNorm(weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
    let y = apply1('layer_norm', [this], { eps });
    if (weight) y = y.mul(weight);
    if (bias) y = y.add(bias);
    return y;
  }
  /** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight. */
  rmsNorm(weight?: Tensor | null, eps = 1e-6): Tensor {
    const y = apply1('rms_norm', [this], { eps });
    return weight ? y.mul(weight) : y;
  }

  // ---- shape ----
  /** New shape with the same elements; one dim may be -1. */
  reshape(shape: readonly number[]): Tensor {
    const target = resolveReshape(this.shape, shape);
    if (target.length === this.rank && target.every((d, i) => d === this.shape[i])) return this;
    // Concrete tensors are immutable, so a reshape outside a trace shares the storage (no copy).
    if (this._data !== null && activeTrace() === null) return Tensor._concrete(target, this.dtype, this._data);
    return apply1('reshape', [this], { shape: target });
  }
  flatten(): Tensor {
    return this.reshape([-1]);
  }
  unsqueeze(axis: number): Tensor {
    const a = normAxis('unsqueeze', axis, this.rank + 1);
    const s = [...this.shape];
    s.splice(a, 0, 1);
    return this.reshape(s);
  }
  squeeze(axis?: number): Tensor {
    if (axis === undefined) return this.reshape(this.shape.filter((d) => d !== 1));
    const a = normAxis('squeeze', axis, this.rank);
    if (this.shape[a] !== 1) throw new Error(`squeeze: axis ${axis} has size ${this.shape[a]}, not 1 (shape ${fmtShape(this.shape)})`);
    return this.reshape(this.shape.filter((_, i) => i !== a));
  }
  /** Permutes axes; with no argument reverses them. */
  permute(perm?: readonly number[]): Tensor {
    const p = perm ? perm.map((a) => normAxis('permute', a, this.rank)) : [...this.shape.keys()].reverse();
    if (p.length !== this.rank || new Set(p).size !== this.rank)
      throw new Error(`permute: ${JSON.stringify(perm)} is not a permutation of ${this.rank} axes (shape ${fmtShape(this.shape)})`);
    if (p.every((a, i) => a === i)) return this;
    if (this.rank === 2 && !this.isTracer && activeTrace() === null) {
      const view = this.transposedView();
      if (view) return view;
    }
    return apply1('transpose', [this], { perm: p });
  }

  /**
   * The 2-D transpose sharing this tensor's storage, for tensors held in 16-bit form and for
   * matrices of at least `eagerConfig.transposeViewMin` elements; null otherwise.
   */
  private transposedView(): Tensor | null {
    const s = this._stored;
    const shape = [this.shape[1]!, this.shape[0]!];
    if (s) {
      // Transposing a view back gives a tensor over the stored array as it lies.
      if (s.transposed && s.format === 'plain') return Tensor._concrete(shape, this.dtype, s.data as TypedArray);
      return Tensor._fromStored(shape, this.dtype, { ...s, transposed: !s.transposed });
    }
    if (this.size < eagerConfig.transposeViewMin || this._data === null) return null;
    return Tensor._fromStored(shape, this.dtype, { format: 'plain', data: this._data, shape: this.shape, transposed: true, scale: null });
  }
  /** Swaps two axes (default: the last two). */
  transpose(a = -2, b = -1): Tensor {
    const p = [...this.shape.keys()];
    const i = normAxis('transpose', a, this.rank);
    const j = normAxis('transpose', b, this.rank);
    [p[i], p[j]] = [p[j]!, p[i]!];
    return this.permute(p);
  }
  /** Broadcasts to `shape` (numpy rules; -1 keeps a dim). */
  expand(shape: readonly number[]): Tensor {
    const lead = shape.length - this.rank;
    if (shape.some((d, i) => d === -1 && i < lead))
      throw new Error(`expand: -1 keeps an existing dim, but ${fmtShape(shape)} puts it on a new leading axis of ${fmtShape(this.shape)}`);
    const target = shape.map((d, i) => (d === -1 ? this.shape[i - lead]! : d));
    if (target.length === this.rank && target.every((d, i) => d === this.shape[i])) return this;
    return apply1('expand', [this], { shape: target });
  }
  /**
   * Strided slice: one spec per leading axis (null = all). Integer specs keep the axis with size 1;
   * use `index` to drop it.
   */
  slice(specs: readonly SliceSpec[]): Tensor {
    const attrs = sliceAttrs(this.shape, specs);
    if (attrs.axes.length === 0) return this;
    return apply1('slice', [this], attrs);
  }
  /** Like `slice`, but integer specs drop their axis (x.index([0]) is row 0). */
  index(specs: readonly SliceSpec[]): Tensor {
    const y = this.slice(specs);
    const drop = new Set(specs.map((s, i) => (typeof s === 'number' ? i : -1)).filter((i) => i >= 0));
    return drop.size ? y.reshape(y.shape.filter((_, i) => !drop.has(i))) : y;
  }
  /** Functional indexed update: a copy of this tensor with the slice `specs` replaced by `value` (broadcast). */
  set(specs: readonly SliceSpec[], value: TensorLike): Tensor {
    const attrs = sliceAttrs(this.shape, specs);
    const target = sliceShape(this.shape, attrs);
    const v = (value instanceof Tensor ? value : scalar(value, this.dtype)).cast(this.dtype).expand(target);
    return apply1('slice_set', [this, v], attrs);
  }
  /**
   * Splits along `axis` (default 0) into pieces: of `sizes` each (the last one smaller when the
   * axis does not divide evenly), or of the listed sizes, which must add up to the axis. One
   * node, so under grad the pieces' gradients are joined by one concat (k slices would each pad
   * theirs back to the full shape).
   */
  split(sizes: number | readonly number[], axis = 0): Tensor[] {
    const a = normAxis('split', axis, this.rank);
    const n = this.shape[a]!;
    let list: number[];
    if (typeof sizes === 'number') {
      if (!Number.isInteger(sizes) || sizes < 1) throw new Error(`split: the piece size must be a positive integer, got ${sizes}`);
      list = [];
      for (let start = 0; start < n; start += sizes) list.push(Math.min(sizes, n - start));
      if (list.length === 0) list.push(0);
    } else list = [...sizes];
    if (list.length === 1 && list[0] === n) return [this];
    return apply('split', [this], { axis: a, sizes: list });
  }
  /** Pads with a constant; `pads` lists [before, after] for each axis from the first. */
  pad(pads: readonly (readonly [number, number])[], value = 0): Tensor {
    if (pads.length > this.rank) throw new Error(`pad: ${pads.length} pad pairs for a tensor of rank ${this.rank}`);
    const before = this.shape.map((_, i) => pads[i]?.[0] ?? 0);
    const after = this.shape.map((_, i) => pads[i]?.[1] ?? 0);
    return apply1('pad', [this], { before, after, value });
  }
  /** Gathers slices along `axis` at `indices` (int32/int64 of any shape): out shape = shape[:axis] + indices.shape + shape[axis+1:]. */
  gather(indices: Tensor, axis = 0): Tensor {
    return apply1('gather', [this, indices], { axis: normAxis('gather', axis, this.rank) });
  }
  /** `gather` with 1-D indices (torch.index_select). */
  indexSelect(axis: number, indices: Tensor): Tensor {
    if (indices.rank !== 1) throw new Error(`indexSelect: indices must be 1-D, got shape ${fmtShape(indices.shape)}`);
    return this.gather(indices, axis);
  }
  /** torch.gather / take_along_axis: indices has this tensor's rank. */
  gatherElements(indices: Tensor, axis: number): Tensor {
    return apply1('gather_elements', [this, indices], { axis: normAxis('gather_elements', axis, this.rank) });
  }
  /** torch.scatter (functional): a copy with `updates` written at `indices` along `axis`. */
  scatter(indices: Tensor, updates: Tensor, axis: number): Tensor {
    return apply1('scatter', [this, indices, updates], { axis: normAxis('scatter', axis, this.rank) });
  }
  /** torch.scatter_add (functional). */
  scatterAdd(indices: Tensor, updates: Tensor, axis: number): Tensor {
    const a = normAxis('scatter_add', axis, this.rank);
    if (indices.rank !== this.rank || indices.shape.some((d, i) => i !== a && d > this.shape[i]!))
      throw new Error(`scatter_add: indices of shape ${fmtShape(indices.shape)} do not fit ${fmtShape(this.shape)} along axis ${a}`);
    let added = apply1('scatter_add', [indices, updates], { axis: a, size: this.shape[a] });
    // Indices may cover fewer positions than this tensor on the other axes (as in torch).
    if (added.shape.some((d, i) => d !== this.shape[i])) added = added.pad(this.shape.map((d, i) => [0, d - added.shape[i]!]));
    return this.add(added);
  }
  /** Upper triangle (elements with col - row >= k), the rest zero; acts on the last two axes. */
  triu(k = 0): Tensor {
    return apply1('triu', [this], { k, upper: true });
  }
  tril(k = 0): Tensor {
    return apply1('triu', [this], { k, upper: false });
  }
}

// ---- attribute helpers ----

function axesAttr(axes: number | number[] | undefined, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : axes;
  return [...new Set(list.map((a) => normAxis('reduce', a, rank)))].sort((a, b) => a - b);
}

function resolveReshape(from: Shape, to: readonly number[]): number[] {
  const n = sizeOf(from);
  const unknown = to.filter((d) => d === -1).length;
  if (unknown > 1 || to.some((d) => !Number.isInteger(d) || d < -1))
    throw new Error(`reshape: invalid target shape ${fmtShape(to)} (at most one -1, others non-negative integers)`);
  const known = to.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (sizeOf(out) !== n || out.some((d) => !Number.isInteger(d)))
    throw new Error(`reshape: cannot reshape ${fmtShape(from)} (${n} elements) to ${fmtShape(to)}`);
  return out;
}

/** Normalised slice attributes: per sliced axis, start, end (exclusive) and step. */
export interface SliceAttrs {
  axes: number[];
  starts: number[];
  ends: number[];
  steps: number[];
}

export function sliceAttrs(shape: Shape, specs: readonly SliceSpec[]): SliceAttrs {
  if (specs.length > shape.length) throw new Error(`slice: ${specs.length} index specs for a tensor of rank ${shape.length}`);
  const out: SliceAttrs = { axes: [], starts: [], ends: [], steps: [] };
  specs.forEach((s, axis) => {
    const n = shape[axis]!;
    if (s === null || s === undefined) return;
    if (typeof s === 'number') {
      const i = s < 0 ? s + n : s;
      if (!Number.isInteger(s) || i < 0 || i >= n) throw new Error(`slice: index ${s} is out of range for axis ${axis} of size ${n}`);
      out.axes.push(axis);
      out.starts.push(i);
      out.ends.push(i + 1);
      out.steps.push(1);
      return;
    }
    const step = s.step ?? 1;
    if (!Number.isInteger(step) || step === 0) throw new Error(`slice: step must be a non-zero integer, got ${step}`);
    const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
    let start: number;
    let end: number;
    if (step > 0) {
      start = s.start === undefined ? 0 : clamp(s.start < 0 ? s.start + n : s.start, 0, n);
      end = s.end === undefined ? n : clamp(s.end < 0 ? s.end + n : s.end, 0, n);
      if (end < start) end = start;
    } else {
      start = s.start === undefined ? n - 1 : clamp(s.start < 0 ? s.start + n : s.start, -1, n - 1);
      end = s.end === undefined ? -1 : clamp(s.end < 0 ? s.end + n : s.end, -1, n - 1);
      if (end > start) end = start;
    }
    if (step === 1 && start === 0 && end === n) return;
    out.axes.push(axis);
    out.starts.push(start);
    out.ends.push(end);
    out.steps.push(step);
  });
  return out;
}

/** The shape a normalised slice selects. */
export function sliceShape(shape: Shape, a: SliceAttrs): number[] {
  const out = [...shape];
  a.axes.forEach((axis, i) => {
    const span = a.ends[i]! - a.starts[i]!;
    const step = a.steps[i]!;
    out[axis] = Math.max(0, Math.ceil(span / step));
  });
  return out;
}

// ---- creation ----

function inferShape(values: NestedArray): number[] {
  const shape: number[] = [];
  let v: NestedArray = values;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0] as NestedArray;
  }
  return shape;
}

function flattenNested(values: NestedArray, shape: number[], out: (number | bigint | boolean)[], depth = 0): void {
  if (depth === shape.length) {
    if (Array.isArray(values)) throw new Error('tensor: ragged nested array');
    out.push(values);
    return;
  }
  if (!Array.isArray(values) || values.length !== shape[depth]) throw new Error('tensor: ragged nested array');
  for (const v of values) flattenNested(v, shape, out, depth + 1);
}

/**
 * A concrete tensor from nested arrays, a flat array plus `shape`, or a typed array.
 * The dtype defaults from the data: booleans -> bool, bigints / BigInt64Array -> int64,
 * Int32Array -> int32, Float64Array -> float64, otherwise float32.
 */
export function tensor(values: NestedArray | ArrayLike<number> | TypedArray, shape?: readonly number[], dtype?: DType): Tensor {
  let flat: ArrayLike<number | bigint | boolean>;
  let inferred: number[];
  let dt: DType | undefined = dtype;
  if (ArrayBuffer.isView(values)) {
    flat = values as TypedArray;
    inferred = [flat.length];
    if (!dt) {
      if (values instanceof BigInt64Array) dt = 'int64';
      else if (values instanceof Int32Array) dt = 'int32';
      else if (values instanceof Float64Array) dt = 'float64';
      else dt = 'float32';
    }
  } else {
    inferred = inferShape(values as NestedArray);
    const out: (number | bigint | boolean)[] = [];
    flattenNested(values as NestedArray, inferred, out);
    flat = out;
    if (!dt) {
      const first = out[0];
      dt = typeof first === 'boolean' ? 'bool' : typeof first === 'bigint' ? 'int64' : 'float32';
    }
  }
  const s = shape ? [...shape] : inferred;
  if (sizeOf(s) !== flat.length) throw new Error(`tensor: ${flat.length} values do not fill shape ${fmtShape(s)}`);
  if (!isDType(dt)) throw new Error(`tensor: unknown dtype '${String(dt)}'`);
  const copyNeeded = !(ArrayBuffer.isView(values) && storageMatches(values as TypedArray, dt));
  return Tensor._concrete(s, dt, copyNeeded ? fromNumbers(dt, flat) : (values as TypedArray).slice());
}

function storageMatches(v: TypedArray, dt: DType): boolean {
  return (
    (dt === 'float32' && v instanceof Float32Array) ||
    (dt === 'float64' && v instanceof Float64Array) ||
    (dt === 'int32' && v instanceof Int32Array) ||
    (dt === 'int64' && v instanceof BigInt64Array)
    // bool is not listed: a Uint8Array may hold values other than 0/1, so it is normalised by a copy.
  );
}

/** A 0-d tensor. */
export function scalar(value: number | boolean | bigint, dtype: DType = 'float32'): Tensor {
  return Tensor._concrete([], dtype, fromNumbers(dtype, [value]));
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  checkShape('full', shape);
  const data = allocate(dtype, sizeOf(shape));
  if (dtype === 'int64') (data as BigInt64Array).fill(BigInt(Math.trunc(value)));
  else (data as Float32Array).fill(dtype === 'bool' ? (value ? 1 : 0) : value);
  return Tensor._concrete(shape, dtype, data);
}

export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return full(shape, 0, dtype);
}

export function ones(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

export function zerosLike(t: Tensor): Tensor {
  if (t.isTracer) return t.mul(0);
  return zeros(t.shape, t.dtype);
}

/** [start, end) with `step`; int64 when all arguments are integers unless `dtype` says otherwise. */
export function arange(start: number, end?: number, step = 1, dtype?: DType): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new Error('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dt = dtype ?? ([start, end, step].every(Number.isInteger) ? 'int64' : 'float32');
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) vals[i] = start + i * step;
  return Tensor._concrete([n], dt, fromNumbers(dt, vals));
}

/** Standard normal samples from a seedable generator (default: the global one, see `seed`). */
export function randn(shape: readonly number[], options: { rng?: PRNG; dtype?: DType; seed?: number } = {}): Tensor {
  checkShape('randn', shape);
  const rng = options.rng ?? (options.seed !== undefined ? new PRNG(options.seed) : defaultRng());
  const n = sizeOf(shape);
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) vals[i] = rng.normal();
  const dt = options.dtype ?? 'float32';
  return Tensor._concrete(shape, dt, fromNumbers(dt, vals));
}

/** Uniform samples in [0, 1). */
export function rand(shape: readonly number[], options: { rng?: PRNG; dtype?: DType; seed?: number } = {}): Tensor {
  checkShape('rand', shape);
  const rng = options.rng ?? (options.seed !== undefined ? new PRNG(options.seed) : defaultRng());
  const n = sizeOf(shape);
  const vals = new Float64Array(n);
  const dt = options.dtype ?? 'float32';
  // Uniforms within 2^-25 of 1 round up to 1 in float32; keep the interval half-open.
  const top = dt === 'float32' ? 1 - 2 ** -24 : 1;
  for (let i = 0; i < n; i++) vals[i] = Math.min(rng.uniform(), top);
  return Tensor._concrete(shape, dt, fromNumbers(dt, vals));
}

function checkShape(op: string, shape: readonly number[]): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new Error(`${op}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
}

// ---- free functions over several tensors ----

/** Elementwise `cond ? a : b` with broadcasting. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const dt = a instanceof Tensor ? a.dtype : b instanceof Tensor ? b.dtype : 'float32';
  const ta = a instanceof Tensor ? a : scalar(a, dt);
  const tb = b instanceof Tensor ? b : scalar(b, dt);
  return apply1('where', [cond, ta, tb]);
}

/** Joins tensors along an existing axis. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('concat: needs at least one tensor');
  if (tensors.length === 1) return tensors[0]!;
  return apply1('concat', tensors, { axis: normAxis('concat', axis, tensors[0]!.rank) });
}

/** Joins tensors along a new axis. */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: needs at least one tensor');
  const a = normAxis('stack', axis, tensors[0]!.rank + 1);
  return concat(
    tensors.map((t) => t.unsqueeze(a)),
    a,
  );
}

/**
 * Einstein summation over any number of operands (numpy/torch rules), e.g. 'bpd,dv->bpv',
 * 'bhqd,bhkd->bhqk', '...d,dv->...v'. Without '->' the output is the subscripts that occur once,
 * in alphabetical order, after the '...' dims. Size-1 dims broadcast. Repeated subscripts within
 * one operand (diagonals, 'ii->i') are not supported.
 */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return apply1('einsum', operands, { equation: equation.replace(/\s+/g, '') });
}
