/** Shape helpers shared by the op rules and the JS kernels. */

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmtShape(s: Shape): string {
  return `[${s.join(', ')}]`;
}

/** NumPy broadcasting; throws naming `op` and both shapes when they do not broadcast. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = rank - s.length + i;
      const d = s[i]!;
      if (d === out[j]) continue;
      if (out[j] === 1) out[j] = d;
      else if (d !== 1)
        throw new Error(`${op}: shapes ${shapes.map(fmtShape).join(' and ')} do not broadcast (axis ${j - rank}: ${out[j]} vs ${d})`);
    }
  }
  return out;
}

/** Normalises a possibly negative axis; throws naming the op when out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

/** Normalised, sorted, de-duplicated axes; `undefined` means all axes. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normAxis(op, a, rank)))].sort((x, y) => x - y);
  return out;
}

/**
 * For each flat output index, the flat index into an input of shape `inShape` broadcast to
 * `outShape`. Used by the JS kernels.
 */
export function broadcastIndex(inShape: Shape, outShape: Shape): Int32Array {
  const n = sizeOf(outShape);
  const idx = new Int32Array(n);
  const rank = outShape.length;
  const inStrides = stridesOf(inShape);
  const eff = new Array<number>(rank).fill(0);
  for (let i = 0; i < inShape.length; i++) {
    const j = rank - inShape.length + i;
    eff[j] = inShape[i] === 1 ? 0 : inStrides[i]!;
  }
  const counter = new Array<number>(rank).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    idx[k] = off;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]!++;
      off += eff[d]!;
      if (counter[d]! < outShape[d]!) break;
      off -= eff[d]! * outShape[d]!;
      counter[d] = 0;
    }
  }
  return idx;
}

/** The shape `x` must be summed back to after broadcasting to `outShape`: axes to reduce. */
export function reductionAxesForBroadcast(inShape: Shape, outShape: Shape): { axes: number[] } {
  const axes: number[] = [];
  const lead = outShape.length - inShape.length;
  for (let j = 0; j < outShape.length; j++) {
    if (j < lead) axes.push(j);
    else if (inShape[j - lead] === 1 && outShape[j] !== 1) axes.push(j);
  }
  return { axes };
}
