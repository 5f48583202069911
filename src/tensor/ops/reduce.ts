/**
 * Reductions over a set of axes (sum, mean, max, min) and index reductions (argmax, argmin).
 * Attributes hold normalised, sorted axes; `keepdims` keeps reduced axes with size 1.
 */
import { isFloat } from '../dtype.js';
import { attr, defineOp, type KernelArg, type Meta } from '../op.js';
import { sizeOf, stridesOf } from '../shape.js';
import { scalar, type Tensor } from '../tensor.js';
import { unbroadcast } from './util.js';

interface ReduceAttrs {
  axes: number[];
  keepdims: boolean;
}

function reducedShape(shape: readonly number[], axes: readonly number[], keepdims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** For each input flat index, the flat index of the output element it reduces into. */
function reduceIndex(shape: readonly number[], axes: readonly number[]): { map: Int32Array; outSize: number } {
  const kept = reducedShape(shape, axes, true);
  const outStrides = stridesOf(kept);
  const n = sizeOf(shape);
  const map = new Int32Array(n);
  const rank = shape.length;
  const counter = new Array<number>(rank).fill(0);
  const eff = shape.map((_, i) => (axes.includes(i) ? 0 : outStrides[i]!));
  let off = 0;
  for (let k = 0; k < n; k++) {
    map[k] = off;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]!++;
      off += eff[d]!;
      if (counter[d]! < shape[d]!) break;
      off -= eff[d]! * shape[d]!;
      counter[d] = 0;
    }
  }
  return { map, outSize: sizeOf(kept) };
}

function reduceKernel(x: KernelArg, axes: readonly number[], init: number, f: (acc: number, v: number) => number): Float64Array {
  const { map, outSize } = reduceIndex(x.shape, axes);
  const out = new Float64Array(outSize).fill(init);
  const d = x.data;
  for (let i = 0; i < d.length; i++) out[map[i]!] = f(out[map[i]!]!, d[i]!);
  return out;
}

function checkAxes(op: string, m: Meta, a: ReduceAttrs): void {
  for (const ax of a.axes) if (ax < 0 || ax >= m.shape.length) throw new Error(`${op}: axis ${ax} out of range for rank ${m.shape.length}`);
}

/** Re-inserts reduced axes (as size 1) so a reduced value broadcasts against the input. */
function keepDims(t: Tensor, inShape: readonly number[], a: ReduceAttrs): Tensor {
  return a.keepdims ? t : t.reshape(reducedShape(inShape, a.axes, true));
}

function defineReduce(
  name: string,
  onnx: string,
  init: number,
  f: (acc: number, v: number) => number,
  finish?: (v: number, count: number) => number,
) {
  defineOp<ReduceAttrs>({
    name,
    infer([x], a) {
      checkAxes(name, x!, a);
      if ((name === 'max' || name === 'min') && a.axes.some((ax) => x!.shape[ax] === 0))
        throw new Error(`${name}: cannot reduce over an empty axis`);
      if (x!.dtype === 'bool') throw new Error(`${name}: cast bool to a number type first`);
      if (name === 'mean' && !isFloat(x!.dtype)) throw new Error(`mean: expects a float tensor, got ${x!.dtype}; cast first`);
      return [{ shape: reducedShape(x!.shape, a.axes, a.keepdims), dtype: x!.dtype }];
    },
    lower(b, [x], a, meta) {
      if (a.axes.length === 0) return b.emit('Identity', [x!]);
      const keepdims = { keepdims: attr.int(a.keepdims ? 1 : 0) };
      const ins = meta.inputs[0]!;
      if (name === 'mean' && a.axes.some((ax) => ins.shape[ax] === 0)) {
        // ReduceMean over no elements gives 0 in ONNX Runtime; the mean of nothing is 0/0 = NaN.
        const [s] = b.emit('ReduceSum', [x!, b.constI64(a.axes)], keepdims);
        return b.emit('Div', [s!, b.constScalar(0, ins.dtype)]);
      }
      return b.emit(onnx, [x!, b.constI64(a.axes)], keepdims);
    },
    vjp: vjpFor(name),
    // The work is reading every input element, not writing the (often tiny) output.
    cost: ([x]) => sizeOf(x!.shape),
    kernel([x], a) {
      const out = reduceKernel(x!, a.axes, init, f);
      if (finish) {
        const count = a.axes.reduce((n, ax) => n * x!.shape[ax]!, 1);
        for (let i = 0; i < out.length; i++) out[i] = finish(out[i]!, count);
      }
      return [out];
    },
  });
}

function vjpFor(name: string) {
  return (
    [g]: readonly (Tensor | null)[],
    { inputs: [x], outputs: [y], attrs }: { inputs: readonly Tensor[]; outputs: readonly Tensor[]; attrs: ReduceAttrs },
  ) => {
    const gk = keepDims(g!, x!.shape, attrs);
    if (name === 'sum') return [gk.expand(x!.shape)];
    if (name === 'mean') {
      const count = attrs.axes.reduce((n, ax) => n * x!.shape[ax]!, 1);
      return [gk.expand(x!.shape).div(scalar(count, g!.dtype))];
    }
    // max/min: gradient split evenly between tied extrema
    const yk = keepDims(y!, x!.shape, attrs);
    const hit = x!.eq(yk).cast(g!.dtype);
    const ties = hit.sum(attrs.axes, true);
    return [unbroadcast(gk.mul(hit).div(ties), x!.shape)];
  };
}

defineReduce('sum', 'ReduceSum', 0, (a, v) => a + v);
defineReduce(
  'mean',
  'ReduceMean',
  0,
  (a, v) => a + v,
  (v, n) => v / n,
);
defineReduce('max', 'ReduceMax', -Infinity, (a, v) => (v > a || Number.isNaN(v) ? v : a));
defineReduce('min', 'ReduceMin', Infinity, (a, v) => (v < a || Number.isNaN(v) ? v : a));

interface ArgAttrs {
  axis: number;
  keepdims: boolean;
}

function defineArg(name: string, onnx: string, better: (v: number, best: number) => boolean) {
  defineOp<ArgAttrs>({
    name,
    infer([x], a) {
      if (x!.shape[a.axis] === 0) throw new Error(`${name}: cannot reduce over an empty axis`);
      return [{ shape: reducedShape(x!.shape, [a.axis], a.keepdims), dtype: 'int64' }];
    },
    lower: (b, [x], a) =>
      b.emit(onnx, [x!], { axis: attr.int(a.axis), keepdims: attr.int(a.keepdims ? 1 : 0), select_last_index: attr.int(0) }),
    kernel([x], a) {
      const shape = x!.shape;
      const n = shape[a.axis]!;
      const inner = sizeOf(shape.slice(a.axis + 1));
      const outer = sizeOf(shape.slice(0, a.axis));
      const out = new Float64Array(outer * inner);
      const d = x!.data;
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          let best = d[o * n * inner + i]!;
          let bi = 0;
          for (let k = 1; k < n; k++) {
            const v = d[(o * n + k) * inner + i]!;
            if (better(v, best)) {
              best = v;
              bi = k;
            }
          }
          out[o * inner + i] = bi;
        }
      return [out];
    },
  });
}

defineArg('argmax', 'ArgMax', (v, b) => v > b);
defineArg('argmin', 'ArgMin', (v, b) => v < b);
