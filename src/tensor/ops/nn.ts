/**
 * Neural-network ops: softmax, log_softmax, layer_norm, rms_norm, and einsum.
 *
 * Non-finite inputs: a softmax fibre whose maximum is not finite (all -Infinity, or containing
 * +Infinity or NaN) gives NaN throughout, in the JS kernel as in ONNX Runtime and PyTorch. Masks
 * should use a large negative number (e.g. -1e9 or the dtype's lowest value), not -Infinity, when
 * a fully masked row must stay finite.
 */
import { isFloat } from '../dtype.js';
import { attr, defineOp, type KernelArg, type LowerBuilder, type Meta } from '../op.js';
import { fmtShape, shapeEq, sizeOf, stridesOf } from '../shape.js';
import { einsum, scalar } from '../tensor.js';
import { requireFloat, sameDType } from './util.js';

interface AxisAttrs {
  axis: number;
}

/** Calls `f(offset, stride, n)` for each 1-D fibre along `axis`. */
function forEachFibre(shape: readonly number[], axis: number, f: (off: number, stride: number, n: number) => void): void {
  const n = shape[axis]!;
  const inner = sizeOf(shape.slice(axis + 1));
  const outer = sizeOf(shape.slice(0, axis));
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) f(o * n * inner + i, inner, n);
}

function checkAxis(op: string, x: Meta, axis: number): void {
  if (!Number.isInteger(axis) || axis < 0 || axis >= x.shape.length)
    throw new Error(`${op}: axis ${axis} is out of range for shape ${fmtShape(x.shape)}`);
}

/** Softmax (or log-softmax) along `axis`, with the maximum subtracted first. */
function softmaxKernel(x: KernelArg, axis: number, log: boolean): Float64Array {
  const d = x.data;
  const out = new Float64Array(d.length);
  forEachFibre(x.shape, axis, (off, stride, n) => {
    let m = -Infinity;
    for (let k = 0; k < n; k++) {
      const v = d[off + k * stride]!;
      if (v > m || Number.isNaN(v)) m = v;
      if (Number.isNaN(m)) break;
    }
    // A fibre of all -Infinity has no finite maximum. Subtracting 0 instead leaves exp() = 0
    // everywhere and 0/0 = NaN (log: -Inf - -Inf = NaN), as ONNX Runtime and PyTorch give.
    if (m === -Infinity) m = 0;
    let s = 0;
    for (let k = 0; k < n; k++) s += Math.exp(d[off + k * stride]! - m);
    const ls = Math.log(s);
    for (let k = 0; k < n; k++) {
      const z = d[off + k * stride]! - m;
      out[off + k * stride] = log ? z - ls : Math.exp(z) / s;
    }
  });
  return out;
}

defineOp<AxisAttrs>({
  name: 'softmax',
  infer([x], a) {
    requireFloat('softmax', x!);
    checkAxis('softmax', x!, a.axis);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower: (b, [x], a) => b.emit('Softmax', [x!], { axis: attr.int(a.axis) }),
  vjp([g], { outputs: [y], attrs }) {
    // dx = y * (g - sum(g * y))
    const gy = g!.mul(y!);
    return [gy.sub(y!.mul(gy.sum(attrs.axis, true)))];
  },
  kernel: ([x], a) => [softmaxKernel(x!, a.axis, false)],
});

defineOp<AxisAttrs>({
  name: 'log_softmax',
  infer([x], a) {
    requireFloat('log_softmax', x!);
    checkAxis('log_softmax', x!, a.axis);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower: (b, [x], a) => b.emit('LogSoftmax', [x!], { axis: attr.int(a.axis) }),
  vjp([g], { outputs: [y], attrs }) {
    // dx = g - softmax(x) * sum(g), with softmax(x) = exp(y)
    return [g!.sub(y!.exp().mul(g!.sum(attrs.axis, true)))];
  },
  kernel: ([x], a) => [softmaxKernel(x!, a.axis, true)],
});

// ---------------------------------------------------------------- normalisation (last axis)

interface EpsAttrs {
  eps: number;
}

function checkNorm(op: string, x: Meta, a: EpsAttrs): void {
  requireFloat(op, x);
  if (x.shape.length === 0) throw new Error(`${op}: expects rank >= 1 (it normalises the last axis), got a scalar`);
  if (!(a.eps >= 0)) throw new Error(`${op}: eps must be a non-negative number, got ${a.eps}`);
}

defineOp<EpsAttrs>({
  name: 'layer_norm',
  infer([x], a) {
    checkNorm('layer_norm', x!, a);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower(b, [x], a, { inputs: [m] }) {
    const d = m!.shape[m!.shape.length - 1]!;
    // ORT's LayerNormalization rejects a normalised size below 2; there x - mean(x) is 0 (or empty).
    if (d <= 1) return b.emit('Sub', [x!, x!]);
    // ORT's kernel computes the variance in one pass, as mean(x^2) - mean(x)^2. In float32 that
    // cancels badly when |mean| >> std (0.03 off at mean 100, std 1; NaN from mean ~1000), so the
    // input is centred first; the kernel's own mean is then ~0 and its variance accurate.
    const [mu] = b.emit('ReduceMean', [x!, b.constI64([-1])], { keepdims: attr.int(1) });
    const [c] = b.emit('Sub', [x!, mu!]);
    const [scale] = b.emit('Expand', [b.constScalar(1, m!.dtype), b.constI64([d])]);
    return b.emit('LayerNormalization', [c!, scale!], { axis: attr.int(-1), epsilon: attr.float(a.eps) }, 1);
  },
  vjp([g], { inputs: [x], outputs: [y], attrs }) {
    // y = (x - mu) r, r = 1/sqrt(var + eps) (population variance); dx = r (g - mean(g) - y mean(g y))
    const ax = x!.rank - 1;
    const r = x!.sub(x!.mean(ax, true)).square().mean(ax, true).add(scalar(attrs.eps, x!.dtype)).rsqrt();
    return [r.mul(g!.sub(g!.mean(ax, true)).sub(y!.mul(g!.mul(y!).mean(ax, true))))];
  },
  kernel([x], a) {
    const d = x!.data;
    const out = new Float64Array(d.length);
    forEachFibre(x!.shape, x!.shape.length - 1, (off, _s, n) => {
      // Two passes in float64: mean, then the mean squared deviation.
      let mu = 0;
      for (let k = 0; k < n; k++) mu += d[off + k]!;
      mu /= n;
      let v = 0;
      for (let k = 0; k < n; k++) v += (d[off + k]! - mu) ** 2;
      const r = 1 / Math.sqrt(v / n + a.eps);
      for (let k = 0; k < n; k++) out[off + k] = (d[off + k]! - mu) * r;
    });
    return [out];
  },
});

defineOp<EpsAttrs>({
  name: 'rms_norm',
  infer([x], a) {
    checkNorm('rms_norm', x!, a);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower(b, [x], a, { inputs: [m] }) {
    // Opset 20 has no RMSNormalization: x / sqrt(mean(x^2) + eps).
    const [sq] = b.emit('Mul', [x!, x!]);
    const [ms] = b.emit('ReduceMean', [sq!, b.constI64([-1])], { keepdims: attr.int(1) });
    const [v] = b.emit('Add', [ms!, b.constScalar(a.eps, m!.dtype)]);
    const [s] = b.emit('Sqrt', [v!]);
    return b.emit('Div', [x!, s!]);
  },
  vjp([g], { inputs: [x], outputs: [y], attrs }) {
    // y = x r, r = 1/sqrt(mean(x^2) + eps); dx = r (g - y mean(g y))
    const ax = x!.rank - 1;
    const r = x!.square().mean(ax, true).add(scalar(attrs.eps, x!.dtype)).rsqrt();
    return [r.mul(g!.sub(y!.mul(g!.mul(y!).mean(ax, true))))];
  },
  kernel([x], a) {
    const d = x!.data;
    const out = new Float64Array(d.length);
    forEachFibre(x!.shape, x!.shape.length - 1, (off, _s, n) => {
      let ms = 0;
      for (let k = 0; k < n; k++) ms += d[off + k]! ** 2;
      const r = 1 / Math.sqrt(ms / n + a.eps);
      for (let k = 0; k < n; k++) out[off + k] = d[off + k]! * r;
    });
    return [out];
  },
});

// ---------------------------------------------------------------- einsum

/** An einsum equation checked against operand shapes, in explicit form. */
export interface ParsedEinsum {
  /** Subscripts per operand, with '...' spelt out as upper-case letters the equation does not use. */
  inputs: string[];
  /** Output subscripts (implicit outputs made explicit). */
  output: string;
  /** Size of each subscript (after broadcasting size-1 dims). */
  sizes: Map<string, number>;
}

const ELLIPSIS_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TERM = /^[A-Za-z]*(\.\.\.)?[A-Za-z]*$/;

/**
 * Parses an einsum equation against operand shapes (numpy/torch rules):
 *  - explicit output after '->', or implicit: subscripts that occur once, in alphabetical order,
 *    after the '...' dims;
 *  - '...' stands for the same broadcast dims in every operand (right-aligned, size 1 broadcasts);
 *    with an explicit output that omits '...', those dims are summed (as in torch);
 *  - a subscript's dims must agree across operands, except that size 1 broadcasts;
 *  - repeated subscripts within one operand (diagonals, 'ii->i') are rejected.
 */
export function parseEinsum(equation: string, shapes: readonly (readonly number[])[]): ParsedEinsum {
  const fail = (msg: string): never => {
    throw new Error(`einsum: '${equation}': ${msg} (operands ${shapes.map(fmtShape).join(', ')})`);
  };
  const sides = equation.split('->');
  if (sides.length > 2) fail("more than one '->'");
  const [lhs, rhs] = sides as [string, string | undefined];
  const terms = lhs.split(',');
  if (terms.length !== shapes.length) fail(`${terms.length} operand subscripts for ${shapes.length} operands`);
  let ellRank = 0;
  terms.forEach((t, i) => {
    if (!TERM.test(t)) fail(`operand ${i} subscripts '${t}' must be letters with at most one '...'`);
    const named = t.replace('...', '').length;
    const rank = shapes[i]!.length;
    if (t.includes('...')) {
      if (rank < named) fail(`operand ${i} has rank ${rank}, fewer than its ${named} subscripts '${t}'`);
      ellRank = Math.max(ellRank, rank - named);
    } else if (rank !== named) fail(`operand ${i} has rank ${rank} but ${named} subscripts '${t}'`);
  });
  // Letters standing for the '...' dims: ones the equation does not use, upper-case first.
  const free = [...ELLIPSIS_LETTERS].filter((c) => !equation.includes(c));
  if (free.length < ellRank) fail(`too many dims under '...' (${ellRank}) for the unused letters left`);
  const ell = free.slice(0, ellRank).join('');
  const sizes = new Map<string, number>();
  const inputs = terms.map((t, i) => {
    const shape = shapes[i]!;
    const expanded = t.includes('...') ? t.replace('...', ell.slice(ellRank - (shape.length - (t.length - 3)))) : t;
    const dup = [...expanded].find((c, k) => expanded.indexOf(c) !== k);
    if (dup !== undefined) fail(`subscript '${dup}' repeats within operand ${i} ('${t}'); diagonals are not supported`);
    [...expanded].forEach((c, k) => {
      const d = shape[k]!;
      const prev = sizes.get(c);
      if (prev === undefined || prev === 1) sizes.set(c, d);
      else if (d !== prev && d !== 1) {
        const what = ell.includes(c) ? `the '...' dims do not broadcast` : `subscript '${c}' has sizes ${prev} and ${d}`;
        fail(what);
      }
    });
    return expanded;
  });
  let output: string;
  if (rhs !== undefined) {
    if (!TERM.test(rhs)) fail(`output subscripts '${rhs}' must be letters with at most one '...'`);
    output = rhs.replace('...', ell);
    for (const c of output) if (!sizes.has(c)) fail(`output subscript '${c}' does not appear in any operand`);
    const dup = [...output].find((c, k) => output.indexOf(c) !== k);
    if (dup !== undefined) fail(`output subscript '${dup}' repeats`);
  } else {
    const counts = new Map<string, number>();
    for (const t of inputs) for (const c of t) counts.set(c, (counts.get(c) ?? 0) + 1);
    const once = [...counts].filter(([c, n]) => n === 1 && !ell.includes(c)).map(([c]) => c);
    output = ell + once.sort().join('');
  }
  return { inputs, output, sizes };
}

function parseFor(equation: string, metas: readonly { shape: readonly number[] }[]): ParsedEinsum {
  return parseEinsum(
    equation,
    metas.map((m) => m.shape),
  );
}

// Lowering. ORT's Einsum kernel (1.23, CPU) crashes the process (SIGSEGV) on empty operands and is
// slower than the equivalent MatMul: best of 15 on 2 cores, 'bhqd,bhkd->bhqk' at [4,12,128,64]
// 2.5 ms vs 1.6 ms, 'bi,bi->b' at [512,768] 1.1 ms vs 0.16 ms, 'ij->ji' 7.3 ms vs 4.1 ms. So
// einsum is lowered to ReduceSum / Transpose / Reshape and one Gemm, MatMul or Mul per pair of
// operands, contracted left to right.

/** A value during einsum lowering: its name, subscripts and shape. */
interface Operand {
  name: string;
  subs: string;
  shape: number[];
}

/** Subscripts of dims larger than 1; the others do not affect the memory layout. */
function real(o: Operand): string {
  return [...o.subs].filter((_, i) => o.shape[i] !== 1).join('');
}

/** Sums the named (real) subscripts out of `o`. */
function sumOut(b: LowerBuilder, o: Operand, letters: string): Operand {
  if (!letters) return o;
  const axes = [...letters].map((c) => o.subs.indexOf(c));
  const [name] = b.emit('ReduceSum', [o.name, b.constI64(axes)], { keepdims: attr.int(0) });
  return {
    name: name!,
    subs: [...o.subs].filter((c) => !letters.includes(c)).join(''),
    shape: o.shape.filter((_, i) => !axes.includes(i)),
  };
}

/** `o` with its real subscripts in `order` (a Transpose unless they already are), reshaped to `dims`. */
function arrange(b: LowerBuilder, o: Operand, order: string, dims: readonly number[]): string {
  let name = o.name;
  let shape = o.shape;
  if (real(o) !== order) {
    const ones = shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
    const perm = [...[...order].map((c) => o.subs.indexOf(c)), ...ones];
    [name] = b.emit('Transpose', [name], { perm: attr.ints(perm) }) as [string];
    shape = perm.map((i) => shape[i]!);
  }
  if (!shapeEq(shape, dims)) [name] = b.emit('Reshape', [name, b.constI64(dims)]) as [string];
  return name;
}

const prod = (letters: string, sizes: Map<string, number>): number => [...letters].reduce((n, c) => n * sizes.get(c)!, 1);

/**
 * Contracts two operands, keeping the subscripts in `keep` (the output's and those later operands
 * use). The result holds only real subscripts.
 */
function contractPair(b: LowerBuilder, x: Operand, y: Operand, keep: string, sizes: Map<string, number>, float: boolean): Operand {
  // Subscripts in one operand only that nothing downstream needs are summed first.
  const only = (p: Operand, q: Operand): string => {
    const rq = real(q);
    return [...real(p)].filter((c) => !rq.includes(c) && !keep.includes(c)).join('');
  };
  [x, y] = [sumOut(b, x, only(x, y)), sumOut(b, y, only(y, x))];
  const byKeep = (s: string): string => [...s].sort((u, v) => keep.indexOf(u) - keep.indexOf(v)).join('');
  // The left operand's free dims come first in the result: pick the order the output wants.
  const freeOf = (p: Operand, q: Operand): string => [...real(p)].filter((c) => !real(q).includes(c)).join('');
  const fx = freeOf(x, y);
  const fy = freeOf(y, x);
  if (fx && fy && keep.indexOf(fy[0]!) < keep.indexOf(fx[0]!)) [x, y] = [y, x];
  const rx = real(x);
  const ry = real(y);
  const shared = [...rx].filter((c) => ry.includes(c));
  const batch = shared.filter((c) => keep.includes(c)).join('');
  const contracted = shared.filter((c) => !keep.includes(c)).join('');
  const freeX = [...rx].filter((c) => !ry.includes(c)).join('');
  const freeY = [...ry].filter((c) => !rx.includes(c)).join('');
  const dimsOf = (s: string): number[] => [...s].map((c) => sizes.get(c)!);

  if (!contracted || (!freeX && !freeY)) {
    // No contraction (outer or elementwise product), or dot products with nothing free: Mul,
    // then a ReduceSum over the contracted dims.
    const kept = byKeep(batch + freeX + freeY);
    const all = kept + contracted;
    const mulSide = (p: Operand, rp: string): string =>
      arrange(
        b,
        p,
        [...all].filter((c) => rp.includes(c)).join(''),
        [...all].map((c) => (rp.includes(c) ? sizes.get(c)! : 1)),
      );
    let [name] = b.emit('Mul', [mulSide(x, rx), mulSide(y, ry)]) as [string];
    if (contracted)
      [name] = b.emit('ReduceSum', [name, b.constI64([...contracted].map((_, i) => kept.length + i))], { keepdims: attr.int(0) }) as [
        string,
      ];
    return { name, subs: kept, shape: dimsOf(kept) };
  }

  // A matrix product: x as [batch, M, K] (or [batch, K, M]), y as [batch, K, N] (or [batch, N, K]).
  const bs = dimsOf(batch);
  const m = prod(freeX, sizes);
  const k = prod(contracted, sizes);
  const n = prod(freeY, sizes);
  const gemm = float && !batch;
  const swapLast = (name: string, rank: number): string => {
    const perm = [...Array(rank).keys()];
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
    return b.emit('Transpose', [name], { perm: attr.ints(perm) })[0]!;
  };
  const side = (p: Operand, rp: string, own: string, ownSize: number, ownFirst: boolean): [string, boolean] => {
    // Already laid out the other way round: reshape only, and transpose the last two dims (Gemm
    // takes a flag; ORT fuses a Transpose of the last two dims into MatMul).
    const flipped = ownFirst ? batch + contracted + own : batch + own + contracted;
    if (rp === flipped && own) {
      const name = arrange(b, p, flipped, ownFirst ? [...bs, k, ownSize] : [...bs, ownSize, k]);
      return gemm ? [name, true] : [swapLast(name, bs.length + 2), false];
    }
    const order = ownFirst ? batch + own + contracted : batch + contracted + own;
    return [arrange(b, p, order, ownFirst ? [...bs, ownSize, k] : [...bs, k, ownSize]), false];
  };
  const [xa, tx] = side(x, rx, freeX, m, true);
  const [ya, ty] = side(y, ry, freeY, n, false);
  let [name] = gemm
    ? (b.emit('Gemm', [xa, ya], { transA: attr.int(tx ? 1 : 0), transB: attr.int(ty ? 1 : 0) }) as [string])
    : (b.emit('MatMul', [xa, ya]) as [string]);
  const subs = batch + freeX + freeY;
  const shape = dimsOf(subs);
  if (!shapeEq(shape, [...bs, m, n])) [name] = b.emit('Reshape', [name, b.constI64(shape)]) as [string];
  return { name, subs, shape };
}

function lowerEinsum(b: LowerBuilder, names: readonly string[], p: ParsedEinsum, ins: readonly Meta[], out: Meta): string {
  // Any empty operand makes the result all zeros (or empty); ORT's Einsum crashes on these.
  if (ins.some((m) => sizeOf(m.shape) === 0) || sizeOf(out.shape) === 0)
    return b.emit('Expand', [b.constScalar(0, out.dtype), b.constI64(out.shape)])[0]!;
  const float = isFloat(out.dtype);
  let acc: Operand = { name: names[0]!, subs: p.inputs[0]!, shape: [...ins[0]!.shape] };
  if (names.length === 1) acc = sumOut(b, acc, [...real(acc)].filter((c) => !p.output.includes(c)).join(''));
  for (let i = 1; i < names.length; i++) {
    const keep = [...new Set(p.output + p.inputs.slice(i + 1).join(''))].join('');
    acc = contractPair(b, acc, { name: names[i]!, subs: p.inputs[i]!, shape: [...ins[i]!.shape] }, keep, p.sizes, float);
  }
  const order = [...p.output].filter((c) => p.sizes.get(c) !== 1).join('');
  const name = arrange(b, acc, order, out.shape);
  // An einsum that changes nothing ('ij->ij') still needs a node of its own.
  return names.includes(name) ? b.emit('Identity', [name])[0]! : name;
}

defineOp<{ equation: string }>({
  name: 'einsum',
  infer(ins, a) {
    if (ins.length === 0) throw new Error(`einsum: '${a.equation}': needs at least one operand`);
    const dt = sameDType('einsum', ins);
    if (dt === 'bool') throw new Error(`einsum: '${a.equation}': expects numeric operands, got bool; cast them first`);
    const p = parseFor(a.equation, ins);
    return [{ shape: [...p.output].map((c) => p.sizes.get(c)!), dtype: dt }];
  },
  lower: (b, names, a, { inputs, outputs }) => [lowerEinsum(b, names, parseFor(a.equation, inputs), inputs, outputs[0]!)],
  vjp([g], { inputs, attrs }) {
    // d/dx_i is the einsum of the cotangent with the other operands, producing x_i's subscripts.
    const p = parseFor(attrs.equation, inputs);
    return inputs.map((x, i) => {
      const target = p.inputs[i]!;
      const others = inputs.filter((_, j) => j !== i);
      const otherSubs = p.inputs.filter((_, j) => j !== i);
      const available = p.output + otherSubs.join('');
      // Left out of the gradient's einsum: subscripts of x found nowhere else (they were summed
      // out, so the gradient is constant along them) and dims where x has size 1 but the
      // subscript is larger (x was broadcast: the einsum sums them).
      const kept = [...target].filter((c, k) => available.includes(c) && !(x.shape[k] === 1 && p.sizes.get(c) !== 1)).join('');
      let gx = others.length === 0 && kept === p.output ? g! : einsum(`${[p.output, ...otherSubs].join(',')}->${kept}`, g!, ...others);
      // Back to x's shape: a size-1 dim for each left-out subscript, then broadcast (which also
      // covers a subscript whose size came from a size-1 dim of another operand).
      gx = gx.reshape([...target].map((c) => (kept.includes(c) ? gx.shape[kept.indexOf(c)]! : 1)));
      return gx.expand([...x.shape]);
    });
  },
  cost(ins, _outs, a) {
    // Multiply-adds of the direct evaluation: the product of every subscript's size.
    const p = parseFor(a.equation, ins);
    let n = 1;
    for (const v of p.sizes.values()) n *= v;
    return n;
  },
  kernel(ins, a, [o]) {
    const p = parseFor(a.equation, ins);
    const letters = [...p.sizes.keys()];
    const dims = letters.map((c) => p.sizes.get(c)!);
    const total = sizeOf(dims);
    const out = new Float64Array(sizeOf(o!.shape));
    // Strides of each operand (and the output) per subscript; 0 where absent or broadcast.
    const strideFor = (subs: string, shape: readonly number[]): number[] => {
      const s = stridesOf(shape);
      return letters.map((c) => {
        const k = subs.indexOf(c);
        return k < 0 || shape[k] === 1 ? 0 : s[k]!;
      });
    };
    const inStrides = ins.map((x, i) => strideFor(p.inputs[i]!, x.shape));
    const outStrides = strideFor(p.output, o!.shape);
    const counter = new Array<number>(letters.length).fill(0);
    const offs = new Array<number>(ins.length).fill(0);
    let oo = 0;
    for (let t = 0; t < total; t++) {
      let v = 1;
      for (let i = 0; i < ins.length; i++) v *= ins[i]!.data[offs[i]!]!;
      out[oo] += v;
      for (let d = letters.length - 1; d >= 0; d--) {
        counter[d]!++;
        for (let i = 0; i < ins.length; i++) offs[i]! += inStrides[i]![d]!;
        oo += outStrides[d]!;
        if (counter[d]! < dims[d]!) break;
        for (let i = 0; i < ins.length; i++) offs[i]! -= inStrides[i]![d]! * dims[d]!;
        oo -= outStrides[d]! * dims[d]!;
        counter[d] = 0;
      }
    }
    return [out];
  },
});
