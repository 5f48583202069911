/**
 * Neural-network ops with fused ONNX lowerings: softmax, log_softmax, layer_norm, rms_norm, and
 * einsum.
 */
import { attr, defineOp, type KernelArg } from '../op.js';
import { fmtShape, sizeOf, broadcastShapes, stridesOf } from '../shape.js';
import { scalar, einsum } from '../tensor.js';
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

function softmaxKernel(x: KernelArg, axis: number, log: boolean): Float64Array {
  const d = x.data;
  const out = new Float64Array(d.length);
  forEachFibre(x.shape, axis, (off, stride, n) => {
    let m = -Infinity;
    for (let k = 0; k < n; k++) m = Math.max(m, d[off + k * stride]!);
    // A fibre of all -Infinity has no finite maximum: subtracting 0 gives NaN, as ONNX Runtime does.
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
  infer([x]) {
    requireFloat('softmax', x!);
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
  infer([x]) {
    requireFloat('log_softmax', x!);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower: (b, [x], a) => b.emit('LogSoftmax', [x!], { axis: attr.int(a.axis) }),
  vjp([g], { outputs: [y], attrs }) {
    // dx = g - softmax * sum(g)
    return [g!.sub(y!.exp().mul(g!.sum(attrs.axis, true)))];
  },
  kernel: ([x], a) => [softmaxKernel(x!, a.axis, true)],
});

interface EpsAttrs {
  eps: number;
}

function lastAxis(op: string, shape: readonly number[]): number {
  if (shape.length === 0) throw new Error(`${op}: expects rank >= 1, got a scalar`);
  return shape.length - 1;
}

defineOp<EpsAttrs>({
  name: 'layer_norm',
  infer([x]) {
    requireFloat('layer_norm', x!);
    lastAxis('layer_norm', x!.shape);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower(b, [x], a, { inputs: [m] }) {
    const d = m!.shape[m!.shape.length - 1]!;
    // ORT's LayerNormalization rejects a normalised size of 1; there x - mean(x) is 0.
    if (d === 1) return b.emit('Sub', [x!, x!]);
    const [scale] = b.emit('Expand', [b.constScalar(1, m!.dtype), b.constI64([d])]);
    return b.emit('LayerNormalization', [x!, scale!], { axis: attr.int(-1), epsilon: attr.float(a.eps) }, 1);
  },
  vjp([g], { inputs: [x], outputs: [y], attrs }) {
    // y = (x - mu) * r, r = 1/sqrt(var + eps); dx = r * (g - mean(g) - y * mean(g * y))
    const ax = x!.rank - 1;
    const r = x!.sub(x!.mean(ax, true)).square().mean(ax, true).add(scalar(attrs.eps, x!.dtype)).rsqrt();
    return [r.mul(g!.sub(g!.mean(ax, true)).sub(y!.mul(g!.mul(y!).mean(ax, true))))];
  },
  kernel([x], a) {
    const d = x!.data;
    const out = new Float64Array(d.length);
    forEachFibre(x!.shape, x!.shape.length - 1, (off, _s, n) => {
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
  infer([x]) {
    requireFloat('rms_norm', x!);
    lastAxis('rms_norm', x!.shape);
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
    // y = x r, r = 1/sqrt(mean(x^2) + eps); dx = r * (g - y * mean(g * y))
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

interface ParsedEinsum {
  /** Subscripts per operand, with '...' expanded to upper-case letters for broadcast dims. */
  inputs: string[];
  output: string;
  /** Size of each subscript. */
  sizes: Map<string, number>;
}

const ELLIPSIS_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Parses and checks an einsum equation against operand shapes; '...' becomes upper-case letters. */
export function parseEinsum(equation: string, shapes: readonly (readonly number[])[]): ParsedEinsum {
  const fail = (msg: string): never => {
    throw new Error(`einsum '${equation}': ${msg} (operands ${shapes.map(fmtShape).join(', ')})`);
  };
  const [lhs, rhs] = equation.includes('->') ? equation.split('->') : [equation, undefined];
  const terms = lhs!.split(',');
  if (terms.length !== shapes.length) fail(`${terms.length} operand subscripts for ${shapes.length} operands`);
  let ellRank = 0;
  terms.forEach((t, i) => {
    if (!/^[A-Za-z]*(\.\.\.)?[A-Za-z]*$/.test(t)) fail(`operand ${i} subscripts '${t}' must be letters with at most one '...'`);
    if (t.includes('...')) ellRank = Math.max(ellRank, shapes[i]!.length - (t.length - 3));
  });
  // Letters standing for the '...' dims: upper-case ones the equation does not use.
  const ell = [...ELLIPSIS_LETTERS]
    .filter((c) => !equation.includes(c))
    .slice(0, ellRank)
    .join('');
  const isEll = (c: string): boolean => ell.includes(c);
  const sizes = new Map<string, number>();
  const inputs = terms.map((t, i) => {
    const shape = shapes[i]!;
    let expanded = t;
    if (t.includes('...')) {
      const r = shape.length - (t.length - 3);
      if (r < 0) fail(`operand ${i} has rank ${shape.length}, fewer than its subscripts`);
      expanded = t.replace('...', ell.slice(ellRank - r));
    }
    if (expanded.length !== shape.length) fail(`operand ${i} has rank ${shape.length} but subscripts '${t}'`);
    if (new Set(expanded).size !== expanded.length) fail(`repeated subscript within operand ${i} ('${t}') is not supported`);
    [...expanded].forEach((c, k) => {
      const d = shape[k]!;
      const prev = sizes.get(c);
      if (prev === undefined || prev === 1) sizes.set(c, d);
      else if (d !== prev && !(isEll(c) && d === 1)) fail(`subscript '${c}' has sizes ${prev} and ${d}`);
    });
    return expanded;
  });
  let output: string;
  if (rhs !== undefined) {
    if (!/^[A-Za-z]*(\.\.\.)?[A-Za-z]*$/.test(rhs)) fail(`output subscripts '${rhs}' must be letters with at most one '...'`);
    output = rhs.replace('...', ell);
    for (const c of output) if (!sizes.has(c)) fail(`output subscript '${c}' does not appear in any operand`);
    if (new Set(output).size !== output.length) fail('repeated output subscript');
  } else {
    const counts = new Map<string, number>();
    for (const t of inputs) for (const c of t) counts.set(c, (counts.get(c) ?? 0) + 1);
    output =
      ell +
      [...counts]
        .filter(([c, n]) => n === 1 && !isEll(c))
        .map(([c]) => c)
        .sort()
        .join('');
  }
  return { inputs, output, sizes };
}

/** Re-spells a parsed equation with ONNX-friendly subscripts (ONNX Einsum accepts letters; ours are already letters). */
function spell(p: ParsedEinsum): string {
  return `${p.inputs.join(',')}->${p.output}`;
}

defineOp<{ equation: string }>({
  name: 'einsum',
  infer(ins, a) {
    if (ins.length === 0) throw new Error('einsum: needs at least one operand');
    const dt = sameDType('einsum', ins);
    const p = parseEinsum(
      a.equation,
      ins.map((m) => m.shape),
    );
    return [{ shape: [...p.output].map((c) => p.sizes.get(c)!), dtype: dt }];
  },
  lower(b, ins, a, { inputs }) {
    const p = parseEinsum(
      a.equation,
      inputs.map((m) => m.shape),
    );
    return b.emit('Einsum', ins, { equation: attr.str(spell(p)) });
  },
  vjp([g], { inputs, attrs }) {
    const p = parseEinsum(
      attrs.equation,
      inputs.map((t) => t.shape),
    );
    return inputs.map((x, i) => {
      const target = p.inputs[i]!;
      const others = inputs.filter((_, j) => j !== i);
      const otherSubs = p.inputs.filter((_, j) => j !== i);
      const available = new Set([...p.output, ...otherSubs.join('')]);
      // Subscripts of x that appear nowhere else were summed out: compute without them, then expand.
      const kept = [...target].filter((c) => available.has(c)).join('');
      let gx = einsum(`${[p.output, ...otherSubs].join(',')}->${kept}`, g!, ...others);
      if (kept !== target) {
        const shapeKept = [...target].map((c) => (available.has(c) ? p.sizes.get(c)! : 1));
        gx = gx.reshape(shapeKept).expand([...target].map((c) => p.sizes.get(c)!));
      }
      // Broadcast ellipsis dims (size 1 in x) are summed back.
      const want = x.shape;
      if (gx.shape.some((d, k) => d !== want[k])) {
        const axes = want.map((d, k) => (d === 1 && gx.shape[k] !== 1 ? k : -1)).filter((k) => k >= 0);
        gx = gx.sum(axes, true);
      }
      return gx;
    });
  },
  cost(ins, _outs, a) {
    const p = parseEinsum(
      a.equation,
      ins.map((m) => m.shape),
    );
    let n = 1;
    for (const v of p.sizes.values()) n *= v;
    return n;
  },
  kernel(ins, a, [o]) {
    const p = parseEinsum(
      a.equation,
      ins.map((x) => x.shape),
    );
    const letters = [...p.sizes.keys()];
    const dims = letters.map((c) => p.sizes.get(c)!);
    const total = sizeOf(dims);
    const out = new Float64Array(sizeOf(o!.shape));
    // Strides of each operand (and the output) per letter; 0 where the letter is absent or broadcast.
    const strideFor = (subs: string, shape: readonly number[]): number[] => {
      const s = stridesOf(shape);
      return letters.map((c) => {
        const k = subs.indexOf(c);
        return k < 0 || shape[k] === 1 ? 0 : s[k]!;
      });
    };
    const inStrides = ins.map((x, i) => strideFor(p.inputs[i]!, x.shape));
    const outStrides = strideFor(p.output, o!.shape);
    broadcastShapes('einsum', o!.shape); // validates the output shape
    const counter = new Array<number>(letters.length).fill(0);
    const offs = new Array<number>(ins.length).fill(0);
    let oo = 0;
    for (let t = 0; t < total; t++) {
      let prod = 1;
      for (let i = 0; i < ins.length; i++) prod *= ins[i]!.data[offs[i]!]!;
      out[oo] += prod;
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
