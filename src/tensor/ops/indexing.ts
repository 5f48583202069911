/**
 * Indexing and layout ops: slice (strided), slice_set (functional indexed update), concat, split, pad,
 * gather / gather_elements, scatter / scatter_add, triu (and tril), cumsum, topk.
 */
import { attr, defineOp, type KernelArg, type LowerBuilder } from '../op.js';
import { fmtShape, sizeOf, stridesOf } from '../shape.js';
import { OnnxDataType } from '../onnx/proto.js';
import { zeros, type SliceAttrs, type SliceSpec, sliceShape, type Tensor } from '../tensor.js';
import { apply1 } from '../trace.js';
import { requireInt, sameDType } from './util.js';

/** For each element of a slice (row-major over the slice's shape), its flat index in the source. */
function sliceSourceIndex(shape: readonly number[], a: SliceAttrs): Int32Array {
  const out = sliceShape(shape, a);
  const n = sizeOf(out);
  const strides = stridesOf(shape);
  const start = shape.map(() => 0);
  const step = shape.map(() => 1);
  a.axes.forEach((axis, i) => {
    start[axis] = a.starts[i]!;
    step[axis] = a.steps[i]!;
  });
  const idx = new Int32Array(n);
  const rank = shape.length;
  const counter = new Array<number>(rank).fill(0);
  let base = 0;
  for (let d = 0; d < rank; d++) base += start[d]! * strides[d]!;
  let off = base;
  for (let k = 0; k < n; k++) {
    idx[k] = off;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]!++;
      off += step[d]! * strides[d]!;
      if (counter[d]! < out[d]!) break;
      off -= step[d]! * strides[d]! * out[d]!;
      counter[d] = 0;
    }
  }
  return idx;
}

/** ONNX Slice reads a negative end as counting from the back; "before index 0" needs INT64_MIN-ish. */
const BEFORE_START = -(2 ** 62);

function lowerSlice(b: LowerBuilder, x: string, a: SliceAttrs, shape: readonly number[]): string[] {
  const out = sliceShape(shape, a);
  // An axis the slice selects nothing from is lowered as [0, 0): a normalised negative-step slice
  // may start at -1 ("before index 0"), which ONNX would read as the last element.
  const empty = a.axes.map((axis) => out[axis] === 0);
  return b.emit('Slice', [
    x,
    b.constI64(a.starts.map((s, i) => (empty[i] ? 0 : s))),
    b.constI64(a.ends.map((e, i) => (empty[i] ? 0 : e < 0 && a.steps[i]! < 0 ? BEFORE_START : e))),
    b.constI64(a.axes),
    b.constI64(a.steps.map((s, i) => (empty[i] ? 1 : s))),
  ]);
}

/**
 * Where each sliced axis's elements land, as a contiguous box: a negative-step axis is reversed,
 * and a step s > 1 spreads the m elements over (m - 1) * s + 1 positions (s - 1 zeros between).
 */
interface Placement {
  axis: number;
  m: number;
  reverse: boolean;
  stride: number;
  lo: number;
  span: number;
}

function placements(shape: readonly number[], a: SliceAttrs): Placement[] {
  const out = sliceShape(shape, a);
  return a.axes.map((axis, i) => {
    const m = out[axis]!;
    const step = a.steps[i]!;
    const reverse = step < 0 && m > 1;
    const lo = step < 0 ? a.starts[i]! + (m - 1) * step : a.starts[i]!;
    const stride = Math.abs(step);
    return { axis, m, reverse, stride, lo, span: m === 0 ? 0 : (m - 1) * stride + 1 };
  });
}

/**
 * The inverse of a slice, with tensor ops: `v` (the slice's shape) placed into zeros of `shape`.
 * Only reshapes, reversing slices and pads: nothing of the full shape is materialised up front.
 */
function unslice(v: Tensor, shape: readonly number[], a: SliceAttrs): Tensor {
  if (v.size === 0) return zeros([], v.dtype).expand(shape);
  let cur = v;
  const pads = shape.map(() => [0, 0] as [number, number]);
  for (const p of placements(shape, a)) {
    const along = (spec: SliceSpec): SliceSpec[] => shape.map((_, d) => (d === p.axis ? spec : null));
    if (p.reverse) cur = cur.slice(along({ step: -1 }));
    if (p.stride > 1 && p.m > 1) {
      const wide = cur.unsqueeze(p.axis + 1);
      const spread = wide.pad(wide.shape.map((_, d) => (d === p.axis + 1 ? [0, p.stride - 1] : [0, 0])));
      const merged = [...cur.shape];
      merged[p.axis] = p.m * p.stride;
      cur = spread.reshape(merged).slice(along({ end: p.span }));
    }
    pads[p.axis] = [p.lo, shape[p.axis]! - p.lo - p.span];
  }
  return cur.pad(pads);
}

/** The same placement as `unslice`, emitted as ONNX nodes. */
function lowerUnslice(b: LowerBuilder, v: string, vShape: readonly number[], shape: readonly number[], a: SliceAttrs): string {
  let cur = v;
  const cs = [...vShape];
  const rank = shape.length;
  const pads = new Array<number>(2 * rank).fill(0);
  for (const p of placements(shape, a)) {
    if (p.reverse) [cur] = b.emit('Slice', [cur, b.constI64([-1]), b.constI64([BEFORE_START]), b.constI64([p.axis]), b.constI64([-1])]);
    if (p.stride > 1 && p.m > 1) {
      const wide = [...cs];
      wide.splice(p.axis + 1, 0, 1);
      [cur] = b.emit('Reshape', [cur, b.constI64(wide)]);
      const spread = new Array<number>(2 * (rank + 1)).fill(0);
      spread[rank + 1 + p.axis + 1] = p.stride - 1;
      [cur] = b.emit('Pad', [cur!, b.constI64(spread)], { mode: attr.str('constant') });
      cs[p.axis] = p.m * p.stride;
      [cur] = b.emit('Reshape', [cur!, b.constI64(cs)]);
      [cur] = b.emit('Slice', [cur!, b.constI64([0]), b.constI64([p.span]), b.constI64([p.axis])]);
      cs[p.axis] = p.span;
    }
    pads[p.axis] = p.lo;
    pads[rank + p.axis] = shape[p.axis]! - p.lo - p.span;
  }
  return b.emit('Pad', [cur!, b.constI64(pads)], { mode: attr.str('constant') })[0]!;
}

defineOp<SliceAttrs>({
  name: 'slice',
  infer([x], a) {
    checkSliceAttrs('slice', x!.shape, a);
    return [{ shape: sliceShape(x!.shape, a), dtype: x!.dtype }];
  },
  lower: (b, [x], a, { inputs: [m] }) => lowerSlice(b, x!, a, m!.shape),
  // Put the cotangent back where the slice came from (a pad for step-1 slices).
  vjp: ([g], { inputs: [x], attrs }) => [unslice(g!, x!.shape, attrs)],
  kernel([x], a) {
    const idx = sliceSourceIndex(x!.shape, a);
    const out = new Float64Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = x!.data[idx[i]!]!;
    return [out];
  },
});

function checkSliceAttrs(op: string, shape: readonly number[], a: SliceAttrs): void {
  const n = a.axes.length;
  if (a.starts.length !== n || a.ends.length !== n || a.steps.length !== n)
    throw new Error(`${op}: axes, starts, ends and steps must have one entry per sliced axis`);
  a.axes.forEach((axis, i) => {
    if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length)
      throw new Error(`${op}: axis ${axis} is out of range for shape ${fmtShape(shape)}`);
    const d = shape[axis]!;
    const [s, e, st] = [a.starts[i]!, a.ends[i]!, a.steps[i]!];
    const ok = st > 0 ? s >= 0 && s <= e && e <= d : st < 0 ? s >= -1 && s < d && e >= -1 && e <= s : false;
    if (!ok || ![s, e, st].every(Number.isInteger))
      throw new Error(`${op}: slice ${s}:${e}:${st} of axis ${axis} is not normalised for shape ${fmtShape(shape)} (use Tensor.slice)`);
  });
}

defineOp<SliceAttrs>({
  name: 'slice_set',
  infer([x, v], a) {
    sameDType('slice_set', [x!, v!]);
    checkSliceAttrs('slice_set', x!.shape, a);
    const want = sliceShape(x!.shape, a);
    if (want.length !== v!.shape.length || want.some((d, i) => d !== v!.shape[i]))
      throw new Error(`slice_set: value has shape ${fmtShape(v!.shape)}, the slice of ${fmtShape(x!.shape)} has ${fmtShape(want)}`);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower(b, [x, v], a, { inputs: [m, vm] }) {
    const shape = m!.shape;
    if (sizeOf(vm!.shape) === 0) return b.emit('Identity', [x!]);
    if (a.axes.length === 0) return b.emit('Identity', [v!]);
    // Where(mask, value placed by pads, x). The mask is the outer product of one small bool
    // vector per sliced axis, so no constant grows with the tensor (unlike ScatterND indices).
    const placed = lowerUnslice(b, v!, vm!.shape, shape, a);
    let mask = '';
    const out = sliceShape(shape, a);
    a.axes.forEach((axis, i) => {
      const hit = new Array<number>(shape[axis]!).fill(0);
      for (let j = 0; j < out[axis]!; j++) hit[a.starts[i]! + j * a.steps[i]!] = 1;
      const dims = shape.map((d, k) => (k === axis ? d : 1));
      const [axisMask] = b.emit('Cast', [b.constI64(hit, dims)], { to: attr.int(OnnxDataType.bool) });
      mask = mask ? b.emit('And', [mask, axisMask!])[0]! : axisMask!;
    });
    if (m!.dtype !== 'bool') return b.emit('Where', [mask, placed, x!]);
    // ONNX Runtime's CPU Where has no bool kernel.
    const [keep] = b.emit('And', [b.emit('Not', [mask])[0]!, x!]);
    return b.emit('Or', [b.emit('And', [mask, placed])[0]!, keep!]);
  },
  vjp([g], { attrs }) {
    const zero = zeros([], g!.dtype).expand(sliceShape(g!.shape, attrs));
    return [apply1('slice_set', [g!, zero], attrs), apply1('slice', [g!], attrs)];
  },
  kernel([x, v], a) {
    const idx = sliceSourceIndex(x!.shape, a);
    const out = Float64Array.from(x!.data);
    for (let i = 0; i < idx.length; i++) out[idx[i]!] = v!.data[i]!;
    return [out];
  },
});

defineOp<{ axis: number }>({
  name: 'concat',
  infer(ins, a) {
    const dt = sameDType('concat', ins);
    const first = ins[0]!.shape;
    checkAxis('concat', a.axis, first);
    let total = 0;
    for (const m of ins) {
      if (m.shape.length !== first.length || m.shape.some((d, i) => i !== a.axis && d !== first[i]))
        throw new Error(`concat: shapes ${ins.map((x) => fmtShape(x.shape)).join(', ')} differ outside axis ${a.axis}`);
      total += m.shape[a.axis]!;
    }
    const out = [...first];
    out[a.axis] = total;
    return [{ shape: out, dtype: dt }];
  },
  lower: (b, ins, a) => b.emit('Concat', ins, { axis: attr.int(a.axis) }),
  vjp([g], { inputs, attrs }) {
    let off = 0;
    return inputs.map((x) => {
      const n = x.shape[attrs.axis]!;
      const specs = x.shape.map((_, i) => (i === attrs.axis ? { start: off, end: off + n } : null));
      off += n;
      return g!.slice(specs);
    });
  },
  kernel(ins, a, [o]) {
    const out = new Float64Array(sizeOf(o!.shape));
    const outer = sizeOf(o!.shape.slice(0, a.axis));
    const inner = sizeOf(o!.shape.slice(a.axis + 1));
    const rowOut = o!.shape[a.axis]! * inner;
    let colOff = 0;
    for (const x of ins) {
      const row = x.shape[a.axis]! * inner;
      for (let r = 0; r < outer; r++) for (let k = 0; k < row; k++) out[r * rowOut + colOff + k] = x.data[r * row + k]!;
      colOff += row;
    }
    return [out];
  },
});

/**
 * Splits along an axis into pieces of the given sizes: the inverse of concat, as one node. Its VJP
 * is one concat of the pieces' cotangents, so taking k pieces of a tensor under grad costs one
 * tensor of the input's size in the backward pass, where k slices would cost k of them (each
 * slice's cotangent is padded back to the full shape).
 */
defineOp<{ axis: number; sizes: number[] }>({
  name: 'split',
  infer([x], a) {
    checkAxis('split', a.axis, x!.shape);
    const n = x!.shape[a.axis]!;
    if (a.sizes.length === 0 || a.sizes.some((v) => !Number.isInteger(v) || v < 0))
      throw new Error(`split: sizes must be non-negative integers, got [${a.sizes}]`);
    const total = a.sizes.reduce((t, v) => t + v, 0);
    if (total !== n) throw new Error(`split: sizes [${a.sizes}] add up to ${total}, but axis ${a.axis} of ${fmtShape(x!.shape)} has ${n}`);
    return a.sizes.map((v) => ({ shape: x!.shape.map((d, i) => (i === a.axis ? v : d)), dtype: x!.dtype }));
  },
  lower: (b, [x], a) => b.emit('Split', [x!, b.constI64(a.sizes)], { axis: attr.int(a.axis) }, a.sizes.length),
  vjp(gs, { outputs, attrs }) {
    const parts = gs.map((g, i) => g ?? zeros(outputs[i]!.shape, outputs[i]!.dtype));
    return [parts.length === 1 ? parts[0]! : apply1('concat', parts, { axis: attrs.axis })];
  },
  kernel([x], a, outs) {
    const outer = sizeOf(x!.shape.slice(0, a.axis));
    const inner = sizeOf(x!.shape.slice(a.axis + 1));
    const rowIn = x!.shape[a.axis]! * inner;
    let colOff = 0;
    return outs.map((o) => {
      const row = o.shape[a.axis]! * inner;
      const out = new Float64Array(sizeOf(o.shape));
      for (let r = 0; r < outer; r++) for (let k = 0; k < row; k++) out[r * row + k] = x!.data[r * rowIn + colOff + k]!;
      colOff += row;
      return out;
    });
  },
});

interface PadAttrs {
  before: number[];
  after: number[];
  value: number;
}

defineOp<PadAttrs>({
  name: 'pad',
  infer([x], a) {
    if (a.before.length !== x!.shape.length || a.after.length !== x!.shape.length)
      throw new Error(`pad: expected ${x!.shape.length} pad pairs`);
    if ([...a.before, ...a.after].some((p) => !Number.isInteger(p) || p < 0)) throw new Error(`pad: pads must be non-negative integers`);
    return [{ shape: x!.shape.map((d, i) => d + a.before[i]! + a.after[i]!), dtype: x!.dtype }];
  },
  lower: (b, [x], a, { inputs: [m] }) =>
    b.emit('Pad', [x!, b.constI64([...a.before, ...a.after]), b.constScalar(a.value, m!.dtype)], { mode: attr.str('constant') }),
  vjp([g], { inputs: [x], attrs }) {
    return [g!.slice(x!.shape.map((d, i) => ({ start: attrs.before[i]!, end: attrs.before[i]! + d })))];
  },
  kernel([x], a, [o]) {
    const out = new Float64Array(sizeOf(o!.shape)).fill(a.value);
    const idx = sliceSourceIndex(o!.shape, {
      axes: x!.shape.map((_, i) => i),
      starts: a.before,
      ends: x!.shape.map((d, i) => a.before[i]! + d),
      steps: x!.shape.map(() => 1),
    });
    for (let i = 0; i < idx.length; i++) out[idx[i]!] = x!.data[i]!;
    return [out];
  },
});

function checkIndex(op: string, v: number, n: number): number {
  const i = v < 0 ? v + n : v;
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`${op}: index ${v} is out of range for an axis of size ${n}`);
  return i;
}

defineOp<{ axis: number }>({
  name: 'gather',
  infer([x, idx], a) {
    requireInt('gather', idx!);
    checkAxis('gather', a.axis, x!.shape);
    return [{ shape: [...x!.shape.slice(0, a.axis), ...idx!.shape, ...x!.shape.slice(a.axis + 1)], dtype: x!.dtype }];
  },
  lower: (b, [x, i], a) => b.emit('Gather', [x!, i!], { axis: attr.int(a.axis) }),
  vjp([g], { inputs: [x, idx], attrs }) {
    // Scatter-add the cotangent rows back: flatten the index dims, then scatter along axis.
    const pre = x!.shape.slice(0, attrs.axis);
    const post = x!.shape.slice(attrs.axis + 1);
    const m = idx!.size;
    const g2 = g!.reshape([...pre, m, ...post]);
    const i2 = idx!.reshape([...pre.map(() => 1), m, ...post.map(() => 1)]).expand(g2.shape);
    const n = x!.shape[attrs.axis]!;
    const wrapped = i2.add(n).where(i2.lt(0), i2).cast('int64');
    return [apply1('scatter_add', [wrapped, g2], { axis: attrs.axis, size: n }), null];
  },
  kernel([x, idx], a, [o]) {
    const n = x!.shape[a.axis]!;
    const inner = sizeOf(x!.shape.slice(a.axis + 1));
    const outer = sizeOf(x!.shape.slice(0, a.axis));
    const m = idx!.data.length;
    const out = new Float64Array(sizeOf(o!.shape));
    for (let r = 0; r < outer; r++)
      for (let j = 0; j < m; j++) {
        const s = checkIndex('gather', idx!.data[j]!, n);
        for (let k = 0; k < inner; k++) out[(r * m + j) * inner + k] = x!.data[(r * n + s) * inner + k]!;
      }
    return [out];
  },
});

/** Visits every element of `shape`: flat index and the flat index with `axis` replaced by `j(i)`. */
function elementsAlong(shape: readonly number[], axis: number, f: (flat: number, rowBase: number, strideAxis: number) => void): void {
  const strides = stridesOf(shape);
  const n = sizeOf(shape);
  for (let i = 0; i < n; i++) {
    const coord = Math.floor(i / strides[axis]!) % shape[axis]!;
    f(i, i - coord * strides[axis]!, strides[axis]!);
  }
}

function checkAxis(op: string, axis: number, shape: readonly number[]): void {
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length)
    throw new Error(`${op}: axis ${axis} is out of range for shape ${fmtShape(shape)}`);
}

function checkElementsShapes(op: string, x: readonly number[], idx: readonly number[], axis: number): void {
  checkAxis(op, axis, x);
  if (idx.length !== x.length || idx.some((d, i) => i !== axis && d > x[i]!))
    throw new Error(`${op}: indices of shape ${fmtShape(idx)} do not fit data of shape ${fmtShape(x)} along axis ${axis}`);
}

/** Maps a flat index in `from` (shape of indices) to the same coordinates in `to`. */
function remap(from: readonly number[], to: readonly number[]): (i: number) => number {
  if (from.every((d, i) => d === to[i])) return (i) => i;
  const fs = stridesOf(from);
  const ts = stridesOf(to);
  return (i) => {
    let o = 0;
    for (let d = 0; d < from.length; d++) o += (Math.floor(i / fs[d]!) % from[d]!) * ts[d]!;
    return o;
  };
}

defineOp<{ axis: number }>({
  name: 'gather_elements',
  infer([x, idx], a) {
    requireInt('gather_elements', idx!);
    checkElementsShapes('gather_elements', x!.shape, idx!.shape, a.axis);
    return [{ shape: [...idx!.shape], dtype: x!.dtype }];
  },
  lower: (b, [x, i], a) => b.emit('GatherElements', [x!, i!], { axis: attr.int(a.axis) }),
  vjp([g], { inputs: [x, idx], attrs }) {
    const n = x!.shape[attrs.axis]!;
    const wrapped = idx!.add(n).where(idx!.lt(0), idx!).cast('int64');
    let gx = apply1('scatter_add', [wrapped, g!], { axis: attrs.axis, size: n });
    // Indices may cover fewer rows than x in other axes: pad the result up to x's shape.
    if (gx.shape.some((d, i) => d !== x!.shape[i])) gx = gx.pad(x!.shape.map((d, i) => [0, d - gx.shape[i]!] as [number, number]));
    return [gx, null];
  },
  kernel([x, idx], a) {
    const to = remap(idx!.shape, x!.shape);
    const n = x!.shape[a.axis]!;
    const xs = stridesOf(x!.shape)[a.axis]!;
    const out = new Float64Array(idx!.data.length);
    elementsAlong(idx!.shape, a.axis, (i, _base, s) => {
      const coord = Math.floor(i / s) % idx!.shape[a.axis]!;
      const target = to(i) - coord * xs + checkIndex('gather_elements', idx!.data[i]!, n) * xs;
      out[i] = x!.data[target]!;
    });
    return [out];
  },
});

function scatterKernel(
  base: Float64Array,
  baseShape: readonly number[],
  idx: KernelArg,
  upd: KernelArg,
  axis: number,
  add: boolean,
  op: string,
): Float64Array {
  const to = remap(idx.shape, baseShape);
  const n = baseShape[axis]!;
  const bs = stridesOf(baseShape)[axis]!;
  elementsAlong(idx.shape, axis, (i, _base, s) => {
    const coord = Math.floor(i / s) % idx.shape[axis]!;
    const target = to(i) - coord * bs + checkIndex(op, idx.data[i]!, n) * bs;
    base[target] = add ? base[target]! + upd.data[i]! : upd.data[i]!;
  });
  return base;
}

defineOp<{ axis: number }>({
  name: 'scatter',
  infer([x, idx, upd], a) {
    requireInt('scatter', idx!);
    sameDType('scatter', [x!, upd!]);
    checkElementsShapes('scatter', x!.shape, idx!.shape, a.axis);
    if (upd!.shape.length !== idx!.shape.length || upd!.shape.some((d, i) => d !== idx!.shape[i]))
      throw new Error(`scatter: updates ${fmtShape(upd!.shape)} must have the indices' shape ${fmtShape(idx!.shape)}`);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower: (b, [x, i, u], a) => b.emit('ScatterElements', [x!, i!, u!], { axis: attr.int(a.axis) }),
  vjp([g], { inputs: [, idx, upd], attrs }) {
    return [g!.scatter(idx!, zeros([], g!.dtype).expand(upd!.shape), attrs.axis), null, g!.gatherElements(idx!, attrs.axis)];
  },
  kernel([x, idx, upd], a) {
    return [scatterKernel(Float64Array.from(x!.data), x!.shape, idx!, upd!, a.axis, false, 'scatter')];
  },
});

defineOp<{ axis: number; size: number }>({
  name: 'scatter_add',
  infer([idx, upd], a) {
    requireInt('scatter_add', idx!);
    if (upd!.shape.length !== idx!.shape.length || upd!.shape.some((d, i) => d !== idx!.shape[i]))
      throw new Error(`scatter_add: updates ${fmtShape(upd!.shape)} must have the indices' shape ${fmtShape(idx!.shape)}`);
    if (!Number.isInteger(a.axis) || a.axis < 0 || a.axis >= upd!.shape.length)
      throw new Error(`scatter_add: axis ${a.axis} is out of range for updates of shape ${fmtShape(upd!.shape)}`);
    if (!Number.isInteger(a.size) || a.size < 0) throw new Error(`scatter_add: size must be a non-negative integer, got ${a.size}`);
    const out = [...upd!.shape];
    out[a.axis] = a.size;
    return [{ shape: out, dtype: upd!.dtype }];
  },
  lower(b, [i, u], _a, { inputs: [, m], outputs: [o] }) {
    const [z] = b.emit('Expand', [b.constScalar(0, m!.dtype), b.constI64(o!.shape)]);
    return b.emit('ScatterElements', [z!, i!, u!], { axis: attr.int(_a.axis), reduction: attr.str('add') });
  },
  vjp([g], { inputs: [idx], attrs }) {
    return [null, g!.gatherElements(idx!, attrs.axis)];
  },
  kernel([idx, upd], a, [o]) {
    return [scatterKernel(new Float64Array(sizeOf(o!.shape)), o!.shape, idx!, upd!, a.axis, true, 'scatter_add')];
  },
});

defineOp<{ k: number; upper: boolean }>({
  name: 'triu',
  infer([x], a) {
    if (x!.shape.length < 2) throw new Error(`${a.upper ? 'triu' : 'tril'}: expects rank >= 2, got ${fmtShape(x!.shape)}`);
    if (!Number.isInteger(a.k)) throw new Error(`triu: k must be an integer`);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower(b, [x], a, { inputs: [m] }) {
    const k = b.constI64([a.k], []);
    const upper = { upper: attr.int(a.upper ? 1 : 0) };
    // ONNX Runtime's CPU Trilu has no int32 kernel: go through int64.
    if (m!.dtype !== 'int32') return b.emit('Trilu', [x!, k], upper);
    const [wide] = b.emit('Cast', [x!], { to: attr.int(OnnxDataType.int64) });
    const [t] = b.emit('Trilu', [wide!, k], upper);
    return b.emit('Cast', [t!], { to: attr.int(OnnxDataType.int32) });
  },
  vjp: ([g], { attrs }) => [apply1('triu', [g!], attrs)],
  kernel([x], a) {
    const r = x!.shape[x!.shape.length - 2]!;
    const c = x!.shape[x!.shape.length - 1]!;
    const out = Float64Array.from(x!.data);
    for (let i = 0; i < out.length; i++) {
      const col = i % c;
      const row = Math.floor(i / c) % r;
      const keep = a.upper ? col - row >= a.k : col - row <= a.k;
      if (!keep) out[i] = 0;
    }
    return [out];
  },
});

interface CumsumAttrs {
  axis: number;
  exclusive: boolean;
  reverse: boolean;
}

defineOp<CumsumAttrs>({
  name: 'cumsum',
  infer([x], a) {
    if (x!.dtype === 'bool') throw new Error('cumsum: cast bool to a number type first');
    checkAxis('cumsum', a.axis, x!.shape);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower: (b, [x], a) =>
    b.emit('CumSum', [x!, b.constI64([a.axis], [])], { exclusive: attr.int(a.exclusive ? 1 : 0), reverse: attr.int(a.reverse ? 1 : 0) }),
  vjp: ([g], { attrs }) => [apply1('cumsum', [g!], { ...attrs, reverse: !attrs.reverse })],
  kernel([x], a) {
    const d = x!.data;
    const out = new Float64Array(d.length);
    const n = x!.shape[a.axis]!;
    const inner = sizeOf(x!.shape.slice(a.axis + 1));
    const outer = sizeOf(x!.shape.slice(0, a.axis));
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        let acc = 0;
        for (let t = 0; t < n; t++) {
          const k = a.reverse ? n - 1 - t : t;
          const at = (o * n + k) * inner + i;
          if (a.exclusive) {
            out[at] = acc;
            acc += d[at]!;
          } else {
            acc += d[at]!;
            out[at] = acc;
          }
        }
      }
    return [out];
  },
});

interface TopkAttrs {
  k: number;
  axis: number;
  largest: boolean;
}

defineOp<TopkAttrs>({
  name: 'topk',
  infer([x], a) {
    checkAxis('topk', a.axis, x!.shape);
    const n = x!.shape[a.axis]!;
    if (!Number.isInteger(a.k) || a.k < 0 || a.k > n)
      throw new Error(`topk: k=${a.k} is out of range for an axis of size ${n} (shape ${fmtShape(x!.shape)})`);
    const shape = [...x!.shape];
    shape[a.axis] = a.k;
    return [
      { shape, dtype: x!.dtype },
      { shape, dtype: 'int64' },
    ];
  },
  // The JS kernel sorts every row: its work is the input's size, however small k (the default,
  // the output's size, sent a top-1 over [256, 4096] to a 700 ms sort, where ORT takes 3 ms).
  cost: ([x]) => sizeOf(x!.shape),
  lower: (b, [x], a) =>
    b.emit('TopK', [x!, b.constI64([a.k])], { axis: attr.int(a.axis), largest: attr.int(a.largest ? 1 : 0), sorted: attr.int(1) }, 2),
  vjp([g], { inputs: [x], outputs: [, idx], attrs }) {
    if (!g) return [null];
    return [apply1('scatter_add', [idx!, g], { axis: attrs.axis, size: x!.shape[attrs.axis]! })];
  },
  kernel([x], a, [o]) {
    const n = x!.shape[a.axis]!;
    const inner = sizeOf(x!.shape.slice(a.axis + 1));
    const outer = sizeOf(x!.shape.slice(0, a.axis));
    const size = sizeOf(o!.shape);
    const vals = new Float64Array(size);
    const inds = new Float64Array(size);
    const order = Array.from({ length: n }, (_, i) => i);
    for (let r = 0; r < outer; r++)
      for (let i = 0; i < inner; i++) {
        const at = (k: number): number => x!.data[(r * n + k) * inner + i]!;
        // Ties keep the lower index first, as ONNX Runtime does. NaN ranks above every number
        // (torch's order; ONNX Runtime's own NaN order is not consistent, so it is not matched).
        const cmp = (u: number, v: number): number => (Number.isNaN(u) ? (Number.isNaN(v) ? 0 : 1) : Number.isNaN(v) ? -1 : u - v);
        const sorted = order.slice().sort((p, q) => (a.largest ? cmp(at(q), at(p)) : cmp(at(p), at(q))) || p - q);
        for (let j = 0; j < a.k; j++) {
          vals[(r * a.k + j) * inner + i] = at(sorted[j]!);
          inds[(r * a.k + j) * inner + i] = sorted[j]!;
        }
      }
    return [vals, inds];
  },
});
