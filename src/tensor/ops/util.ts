/** Helpers shared by op declarations. */
import { isFloat, type DType } from '../dtype.js';
import type { Meta } from '../op.js';
import { fmtShape, reductionAxesForBroadcast, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';

/** Sums a broadcast cotangent back to `shape` (the VJP of implicit broadcasting). */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  // Axes where the cotangent already has size 1 need no reduction, only a reshape (a ReduceSum
  // over a size-1 axis is a full copy in ONNX Runtime).
  const axes = reductionAxesForBroadcast(shape, g.shape).axes.filter((a) => g.shape[a] !== 1);
  const s = axes.length ? g.sum(axes, true) : g;
  return s.reshape([...shape]);
}

/** Throws unless all inputs share one dtype; names the op and the inputs. */
export function sameDType(op: string, inputs: readonly Meta[]): DType {
  const d = inputs[0]!.dtype;
  for (const m of inputs)
    if (m.dtype !== d)
      throw new Error(
        `${op}: dtype mismatch (${inputs.map((x) => `${x.dtype}${fmtShape(x.shape)}`).join(' vs ')}); cast one side with .cast()`,
      );
  return d;
}

export function requireFloat(op: string, m: Meta): void {
  if (!isFloat(m.dtype)) throw new Error(`${op}: expects a float tensor, got ${m.dtype}${fmtShape(m.shape)}`);
}

export function requireInt(op: string, m: Meta, what = 'indices'): void {
  if (m.dtype !== 'int32' && m.dtype !== 'int64')
    throw new Error(`${op}: ${what} must be int32 or int64, got ${m.dtype}${fmtShape(m.shape)}`);
}
