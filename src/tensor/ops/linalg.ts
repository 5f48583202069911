/**
 * matmul (numpy semantics: batched, broadcasting; 1-D operands are promoted and the added axis
 * removed) and the basic layout ops reshape, transpose, expand.
 */
import { defineOp, attr } from '../op.js';
import { broadcastIndex, broadcastShapes, fmtShape, sizeOf, stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { sameDType, unbroadcast } from './util.js';

defineOp<Record<string, never>>({
  name: 'matmul',
  infer([a, b]) {
    const dt = sameDType('matmul', [a!, b!]);
    if (a!.shape.length === 0 || b!.shape.length === 0)
      throw new Error(`matmul: operands must have rank >= 1, got ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)}`);
    const as = a!.shape.length === 1 ? [1, a!.shape[0]!] : a!.shape;
    const bs = b!.shape.length === 1 ? [b!.shape[0]!, 1] : b!.shape;
    const k1 = as[as.length - 1]!;
    const k2 = bs[bs.length - 2]!;
    if (k1 !== k2) throw new Error(`matmul: inner dimensions differ: ${fmtShape(a!.shape)} @ ${fmtShape(b!.shape)} (${k1} vs ${k2})`);
    let batch: number[];
    try {
      batch = broadcastShapes('matmul', as.slice(0, -2), bs.slice(0, -2));
    } catch {
      throw new Error(
        `matmul: batch dimensions do not broadcast: ${fmtShape(a!.shape)} @ ${fmtShape(b!.shape)} ` +
          `(${fmtShape(as.slice(0, -2))} vs ${fmtShape(bs.slice(0, -2))})`,
      );
    }
    const out = [...batch, as[as.length - 2]!, bs[bs.length - 1]!];
    if (a!.shape.length === 1) out.splice(out.length - 2, 1);
    if (b!.shape.length === 1) out.splice(out.length - 1, 1);
    return [{ shape: out, dtype: dt }];
  },
  lower: (b, [x, y]) => b.emit('MatMul', [x!, y!]),
  vjp([g], { inputs: [a, b] }) {
    // Promote 1-D operands to matrices so the rules below are the plain 2-D ones.
    const a2 = a!.rank === 1 ? a!.reshape([1, a!.shape[0]!]) : a!;
    const b2 = b!.rank === 1 ? b!.reshape([b!.shape[0]!, 1]) : b!;
    let g2 = g!;
    if (a!.rank === 1) g2 = g2.unsqueeze(g2.rank - (b!.rank === 1 ? 0 : 1));
    if (b!.rank === 1) g2 = g2.unsqueeze(g2.rank);
    const ga = unbroadcast(g2.matmul(b2.transpose(-1, -2)), a2.shape).reshape([...a!.shape]);
    let gb: Tensor;
    if (b2.rank === 2) {
      // Activations times a weight matrix (the common case): fold any batch into the rows and
      // take one [K, rows] @ [rows, N] product instead of a batched product plus a sum.
      const k = a2.shape[a2.rank - 1]!;
      const n = g2.shape[g2.rank - 1]!;
      const rowsShape = [...g2.shape.slice(0, -1), k];
      // Row count spelled out: -1 cannot be inferred when K or N is 0.
      const r = sizeOf(rowsShape.slice(0, -1));
      const rows = (sameShape(a2.shape, rowsShape) ? a2 : a2.expand(rowsShape)).reshape([r, k]);
      gb = transposeCopy(rows).matmul(g2.reshape([r, n]));
    } else gb = unbroadcast(a2.transpose(-1, -2).matmul(g2), b2.shape);
    return [ga, gb.reshape([...b!.shape])];
  },
  cost(ins, [o]) {
    const a = ins[0]!.shape;
    return sizeOf(o!.shape) * a[a.length - 1]!;
  },
  kernel([a, b], _x, [o]) {
    const as = a!.shape.length === 1 ? [1, a!.shape[0]!] : [...a!.shape];
    const bs = b!.shape.length === 1 ? [b!.shape[0]!, 1] : [...b!.shape];
    const m = as[as.length - 2]!;
    const k = as[as.length - 1]!;
    const n = bs[bs.length - 1]!;
    const batch = broadcastShapes('matmul', as.slice(0, -2), bs.slice(0, -2));
    const nb = sizeOf(batch);
    const ia = broadcastIndex(as.slice(0, -2), batch);
    const ib = broadcastIndex(bs.slice(0, -2), batch);
    const out = new Float64Array(nb * m * n);
    const ad = a!.data;
    const bd = b!.data;
    for (let t = 0; t < nb; t++) {
      const ao = ia[t]! * m * k;
      const bo = ib[t]! * k * n;
      const oo = t * m * n;
      for (let i = 0; i < m; i++)
        for (let p = 0; p < k; p++) {
          // No skipping of zero entries: 0 * Inf and 0 * NaN must give NaN, as in ORT.
          const av = ad[ao + i * k + p]!;
          for (let j = 0; j < n; j++) out[oo + i * n + j]! += av * bd[bo + p * n + j]!;
        }
    }
    if (o!.dtype === 'float32') return [Float32Array.from(out)];
    return [out];
  },
});

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * x [r, k] -> its transpose [k, r], written so that ONNX Runtime copies it rather than folding it
 * into the product that reads it. Folded (FusedMatMul with transA), the weight gradient
 * [rows, K]^T @ [rows, N] of a GPT-2 block's linears ran slower than a copy plus a plain MatMul:
 * 0.68-0.79 of the time on [128,768]^T @ [128,3072], [128,3072]^T @ [128,768] and
 * [128,768]^T @ [128,2304] (ORT from Python, 2 threads, interleaved rounds; bench/README.md).
 * The fusion matches a Transpose feeding a MatMul; a transpose between reshapes is not one.
 */
function transposeCopy(x: Tensor): Tensor {
  const [r, k] = x.shape as [number, number];
  return x.reshape([1, r, k]).permute([0, 2, 1]).reshape([k, r]);
}

defineOp<{ shape: number[] }>({
  name: 'reshape',
  infer([x], a) {
    if (sizeOf(a.shape) !== sizeOf(x!.shape)) throw new Error(`reshape: cannot reshape ${fmtShape(x!.shape)} to ${fmtShape(a.shape)}`);
    return [{ shape: [...a.shape], dtype: x!.dtype }];
  },
  // allowzero: a 0 in the target shape is a zero-size dim, not ONNX's default 'copy this input dim'.
  lower: (b, [x], a) => b.emit('Reshape', [x!, b.constI64(a.shape)], { allowzero: attr.int(1) }),
  vjp: ([g], { inputs: [x] }) => [g!.reshape([...x!.shape])],
  kernel: ([x]) => [x!.data.slice()],
});

defineOp<{ perm: number[] }>({
  name: 'transpose',
  infer([x], a) {
    if (a.perm.length !== x!.shape.length)
      throw new Error(`transpose: permutation ${JSON.stringify(a.perm)} does not match rank ${x!.shape.length}`);
    return [{ shape: a.perm.map((p) => x!.shape[p]!), dtype: x!.dtype }];
  },
  lower: (b, [x], a) => b.emit('Transpose', [x!], { perm: attr.ints(a.perm) }),
  vjp([g], { attrs }) {
    const inv = new Array<number>(attrs.perm.length);
    attrs.perm.forEach((p, i) => (inv[p] = i));
    return [g!.permute(inv)];
  },
  kernel([x], a, [o]) {
    const inStrides = stridesOf(x!.shape);
    const outShape = o!.shape;
    const n = sizeOf(outShape);
    const out = new Float64Array(n);
    const rank = outShape.length;
    const eff = a.perm.map((p) => inStrides[p]!);
    const counter = new Array<number>(rank).fill(0);
    let off = 0;
    const d = x!.data;
    for (let k = 0; k < n; k++) {
      out[k] = d[off]!;
      for (let r = rank - 1; r >= 0; r--) {
        counter[r]!++;
        off += eff[r]!;
        if (counter[r]! < outShape[r]!) break;
        off -= eff[r]! * outShape[r]!;
        counter[r] = 0;
      }
    }
    return [out];
  },
});

defineOp<{ shape: number[] }>({
  name: 'expand',
  infer([x], a) {
    const out = broadcastShapes('expand', x!.shape, a.shape);
    if (out.length !== a.shape.length || out.some((d, i) => d !== a.shape[i]))
      throw new Error(`expand: cannot broadcast ${fmtShape(x!.shape)} to ${fmtShape(a.shape)}`);
    return [{ shape: out, dtype: x!.dtype }];
  },
  lower: (b, [x], a) => b.emit('Expand', [x!, b.constI64(a.shape)]),
  vjp: ([g], { inputs: [x] }) => [unbroadcast(g!, x!.shape)],
  kernel([x], _a, [o]) {
    const idx = broadcastIndex(x!.shape, o!.shape);
    const out = new Float64Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = x!.data[idx[i]!]!;
    return [out];
  },
});
