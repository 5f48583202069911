/**
 * Elementwise ops: unary math, broadcasting binary arithmetic, comparisons, logic, where, cast.
 */
import { isFloat, type DType } from '../dtype.js';
import { attr, defineOp, type KernelArg, type Meta } from '../op.js';
import { broadcastIndex, broadcastShapes, fmtShape, shapeEq, sizeOf } from '../shape.js';
import { scalar, where, type Tensor } from '../tensor.js';
import { apply1 } from '../trace.js';
import { requireFloat, sameDType, unbroadcast } from './util.js';

// ---------------------------------------------------------------- unary

interface UnarySpec {
  name: string;
  onnx: string;
  f: (x: number) => number;
  /** dy/dx expressed with tensor ops, given x, y = f(x). */
  grad?: (x: Tensor, y: Tensor) => Tensor;
  floatOnly?: boolean;
  /** Output dtype when different from the input's. */
  dtype?: DType;
}

function outArray(dtype: DType, n: number): Float32Array | Float64Array | Int32Array | Uint8Array {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'bool':
      return new Uint8Array(n);
    default:
      return new Float64Array(n);
  }
}

function defineUnary(spec: UnarySpec): void {
  defineOp<Record<string, never>>({
    name: spec.name,
    infer([x]) {
      if (spec.floatOnly) requireFloat(spec.name, x!);
      return [{ shape: [...x!.shape], dtype: spec.dtype ?? x!.dtype }];
    },
    lower(b, [x]) {
      return b.emit(spec.onnx, [x!]);
    },
    vjp: spec.grad ? ([g], { inputs: [x], outputs: [y] }) => [g!.mul(spec.grad!(x!, y!))] : undefined,
    kernel([x], _a, [o]) {
      const out = outArray(o!.dtype, x!.data.length);
      const d = x!.data;
      for (let i = 0; i < d.length; i++) out[i] = spec.f(d[i]!);
      return [out];
    },
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

defineUnary({ name: 'neg', onnx: 'Neg', f: (x) => -x, grad: (x) => scalar(-1, x.dtype) });
defineUnary({ name: 'exp', onnx: 'Exp', f: Math.exp, grad: (_x, y) => y, floatOnly: true });
defineUnary({ name: 'log', onnx: 'Log', f: Math.log, grad: (x) => x.pow(-1), floatOnly: true });
defineUnary({ name: 'sqrt', onnx: 'Sqrt', f: Math.sqrt, grad: (_x, y) => y.mul(2).pow(-1), floatOnly: true });
defineUnary({ name: 'tanh', onnx: 'Tanh', f: Math.tanh, grad: (_x, y) => scalar(1, y.dtype).sub(y.mul(y)), floatOnly: true });
defineUnary({
  name: 'sigmoid',
  onnx: 'Sigmoid',
  f: (x) => 1 / (1 + Math.exp(-x)),
  grad: (_x, y) => y.mul(scalar(1, y.dtype).sub(y)),
  floatOnly: true,
});
defineUnary({ name: 'relu', onnx: 'Relu', f: (x) => (x > 0 ? x : 0), grad: (x) => x.gt(0).cast(x.dtype) });
defineUnary({ name: 'abs', onnx: 'Abs', f: Math.abs, grad: (x) => x.sign() });
defineUnary({ name: 'sign', onnx: 'Sign', f: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0), grad: (x) => scalar(0, x.dtype) });
defineUnary({ name: 'sin', onnx: 'Sin', f: Math.sin, grad: (x) => x.cos(), floatOnly: true });
defineUnary({ name: 'cos', onnx: 'Cos', f: Math.cos, grad: (x) => x.sin().neg(), floatOnly: true });

defineOp<Record<string, never>>({
  name: 'not',
  infer([x]) {
    if (x!.dtype !== 'bool') throw new Error(`not: expects bool, got ${x!.dtype}`);
    return [{ shape: [...x!.shape], dtype: 'bool' }];
  },
  lower: (b, [x]) => b.emit('Not', [x!]),
  kernel([x]) {
    return [x!.data.map((v) => (v ? 0 : 1))];
  },
});

defineOp<Record<string, never>>({
  name: 'rsqrt',
  infer([x]) {
    requireFloat('rsqrt', x!);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower(b, [x]) {
    const [s] = b.emit('Sqrt', [x!]);
    return b.emit('Reciprocal', [s!]);
  },
  vjp: ([g], { outputs: [y] }) => [g!.mul(y!.pow(3)).mul(-0.5)],
  kernel([x]) {
    return [x!.data.map((v) => 1 / Math.sqrt(v))];
  },
});

defineOp<Record<string, never>>({
  name: 'silu',
  infer([x]) {
    requireFloat('silu', x!);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower(b, [x]) {
    const [s] = b.emit('Sigmoid', [x!]);
    return b.emit('Mul', [x!, s!]);
  },
  vjp: ([g], { inputs: [x] }) => {
    const s = x!.sigmoid();
    // d/dx x*s(x) = s + x*s*(1-s)
    return [g!.mul(s.add(x!.mul(s).mul(scalar(1, x!.dtype).sub(s))))];
  },
  kernel([x]) {
    return [x!.data.map((v) => v / (1 + Math.exp(-v)))];
  },
});

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc), enough for a float32 reference. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

interface GeluAttrs {
  approximate: 'none' | 'tanh';
}

defineOp<GeluAttrs>({
  name: 'gelu',
  infer([x], a) {
    requireFloat('gelu', x!);
    if (a.approximate !== 'none' && a.approximate !== 'tanh')
      throw new Error(`gelu: approximate must be 'none' or 'tanh', got '${a.approximate}'`);
    return [{ shape: [...x!.shape], dtype: x!.dtype }];
  },
  lower: (b, [x], a) => b.emit('Gelu', [x!], { approximate: attr.str(a.approximate) }),
  vjp([g], { inputs: [x], attrs }) {
    const one = scalar(1, x!.dtype);
    if (attrs.approximate === 'tanh') {
      // y = 0.5 x (1 + tanh(u)), u = c (x + 0.044715 x^3)
      const x2 = x!.mul(x!);
      const u = x!.add(x2.mul(x!).mul(0.044715)).mul(SQRT_2_OVER_PI);
      const t = u.tanh();
      const du = x2
        .mul(3 * 0.044715)
        .add(1)
        .mul(SQRT_2_OVER_PI);
      const d = one
        .add(t)
        .mul(0.5)
        .add(
          x!
            .mul(0.5)
            .mul(one.sub(t.mul(t)))
            .mul(du),
        );
      return [g!.mul(d)];
    }
    // y = x Phi(x); dy = Phi(x) + x phi(x)
    const cdf = apply1('gelu', [x!], { approximate: 'none' }).div(x!); // Phi(x), except at 0
    const phi = x!
      .mul(x!)
      .mul(-0.5)
      .exp()
      .mul(1 / Math.sqrt(2 * Math.PI));
    const safeCdf = where(x!.eq(0), scalar(0.5, x!.dtype), cdf);
    return [g!.mul(safeCdf.add(x!.mul(phi)))];
  },
  kernel([x], a) {
    const d = x!.data;
    const out = new Float64Array(d.length);
    if (a.approximate === 'tanh') {
      for (let i = 0; i < d.length; i++) {
        const v = d[i]!;
        out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
      }
    } else for (let i = 0; i < d.length; i++) out[i] = 0.5 * d[i]! * (1 + erf(d[i]! / Math.SQRT2));
    return [out];
  },
});

// ---------------------------------------------------------------- binary (broadcasting)

function binaryKernel(a: KernelArg, b: KernelArg, o: Meta, f: (x: number, y: number) => number): ArrayLike<number> {
  const n = sizeOf(o.shape);
  const out = outArray(o.dtype, n);
  const ad = a.data;
  const bd = b.data;
  if (shapeEq(a.shape, o.shape) && shapeEq(b.shape, o.shape)) {
    for (let i = 0; i < n; i++) out[i] = f(ad[i]!, bd[i]!);
  } else if (shapeEq(a.shape, o.shape) && bd.length === 1) {
    const y = bd[0]!;
    for (let i = 0; i < n; i++) out[i] = f(ad[i]!, y);
  } else {
    const ia = broadcastIndex(a.shape, o.shape);
    const ib = broadcastIndex(b.shape, o.shape);
    for (let i = 0; i < n; i++) out[i] = f(ad[ia[i]!]!, bd[ib[i]!]!);
  }
  return out;
}

interface BinarySpec {
  name: string;
  onnx: string;
  f: (x: number, y: number) => number;
  vjp?: (g: Tensor, a: Tensor, b: Tensor, y: Tensor) => [Tensor | null, Tensor | null];
  /** 'bool' for comparisons and logic. */
  out?: 'bool';
  boolOnly?: boolean;
}

function defineBinary(spec: BinarySpec): void {
  defineOp<Record<string, never>>({
    name: spec.name,
    infer(ins) {
      const dt = sameDType(spec.name, ins);
      if (spec.boolOnly && dt !== 'bool') throw new Error(`${spec.name}: expects bool tensors, got ${dt}`);
      return [{ shape: broadcastShapes(spec.name, ins[0]!.shape, ins[1]!.shape), dtype: spec.out ?? dt }];
    },
    lower: (b, [x, y]) => b.emit(spec.onnx, [x!, y!]),
    vjp: spec.vjp
      ? ([g], { inputs: [a, b], outputs: [y] }) => {
          const [ga, gb] = spec.vjp!(g!, a!, b!, y!);
          return [ga && unbroadcast(ga, a!.shape), gb && unbroadcast(gb, b!.shape)];
        }
      : undefined,
    kernel: ([a, b], _attrs, [o]) => [binaryKernel(a!, b!, o!, spec.f)],
  });
}

const idiv = (x: number, y: number): number => Math.trunc(x / y);

defineBinary({ name: 'add', onnx: 'Add', f: (x, y) => x + y, vjp: (g) => [g, g] });
defineBinary({ name: 'sub', onnx: 'Sub', f: (x, y) => x - y, vjp: (g) => [g, g.neg()] });
defineBinary({ name: 'mul', onnx: 'Mul', f: (x, y) => x * y, vjp: (g, a, b) => [g.mul(b), g.mul(a)] });
defineOp<Record<string, never>>({
  name: 'div',
  infer(ins) {
    const dt = sameDType('div', ins);
    return [{ shape: broadcastShapes('div', ins[0]!.shape, ins[1]!.shape), dtype: dt }];
  },
  lower: (b, [x, y]) => b.emit('Div', [x!, y!]),
  vjp: ([g], { inputs: [a, b], outputs: [y] }) => [unbroadcast(g!.div(b!), a!.shape), unbroadcast(g!.mul(y!).div(b!).neg(), b!.shape)],
  kernel: ([a, b], _x, [o]) => [binaryKernel(a!, b!, o!, isFloat(o!.dtype) ? (x, y) => x / y : idiv)],
});
defineBinary({
  name: 'pow',
  onnx: 'Pow',
  f: Math.pow,
  vjp: (g, a, b, y) => {
    // d/da = b a^(b-1); d/db = y log(a) (taken as 0 where a <= 0, as PyTorch does for a = 0)
    const ga = g.mul(b).mul(a.pow(b.sub(scalar(1, b.dtype))));
    const safeLog = where(a.gt(0), a.where(a.gt(0), 1).log(), 0);
    return [ga, g.mul(y).mul(safeLog)];
  },
});
/** VJP of max/min: the gradient goes to the side that wins (`wins(a, b)`); ties split evenly, as in JAX. */
function extremumVjp(wins: (a: Tensor, b: Tensor) => Tensor) {
  return (g: Tensor, a: Tensor, b: Tensor): [Tensor, Tensor] => {
    const wa = wins(a, b).cast(g.dtype).add(a.eq(b).cast(g.dtype).mul(0.5));
    return [g.mul(wa), g.mul(scalar(1, g.dtype).sub(wa))];
  };
}

defineBinary({ name: 'maximum', onnx: 'Max', f: Math.max, vjp: extremumVjp((a, b) => a.gt(b)) });
defineBinary({ name: 'minimum', onnx: 'Min', f: Math.min, vjp: extremumVjp((a, b) => a.lt(b)) });

defineBinary({ name: 'eq', onnx: 'Equal', f: (x, y) => (x === y ? 1 : 0), out: 'bool' });
defineBinary({ name: 'lt', onnx: 'Less', f: (x, y) => (x < y ? 1 : 0), out: 'bool' });
defineBinary({ name: 'le', onnx: 'LessOrEqual', f: (x, y) => (x <= y ? 1 : 0), out: 'bool' });
defineBinary({ name: 'gt', onnx: 'Greater', f: (x, y) => (x > y ? 1 : 0), out: 'bool' });
defineBinary({ name: 'ge', onnx: 'GreaterOrEqual', f: (x, y) => (x >= y ? 1 : 0), out: 'bool' });
defineBinary({ name: 'and', onnx: 'And', f: (x, y) => (x && y ? 1 : 0), out: 'bool', boolOnly: true });
defineBinary({ name: 'or', onnx: 'Or', f: (x, y) => (x || y ? 1 : 0), out: 'bool', boolOnly: true });
defineOp<Record<string, never>>({
  name: 'ne',
  infer(ins) {
    sameDType('ne', ins);
    return [{ shape: broadcastShapes('ne', ins[0]!.shape, ins[1]!.shape), dtype: 'bool' }];
  },
  lower(b, [x, y]) {
    const [e] = b.emit('Equal', [x!, y!]);
    return b.emit('Not', [e!]);
  },
  kernel: ([a, b], _x, [o]) => [binaryKernel(a!, b!, o!, (x, y) => (x !== y ? 1 : 0))],
});

// ---------------------------------------------------------------- where, cast, identity

defineOp<Record<string, never>>({
  name: 'where',
  infer([c, a, b]) {
    if (c!.dtype !== 'bool') throw new Error(`where: condition must be bool, got ${c!.dtype}${fmtShape(c!.shape)}`);
    const dt = sameDType('where', [a!, b!]);
    return [{ shape: broadcastShapes('where', c!.shape, a!.shape, b!.shape), dtype: dt }];
  },
  lower: (b, [c, x, y]) => b.emit('Where', [c!, x!, y!]),
  vjp([g], { inputs: [c, a, b] }) {
    const zero = scalar(0, g!.dtype);
    return [null, unbroadcast(where(c!, g!, zero), a!.shape), unbroadcast(where(c!, zero, g!), b!.shape)];
  },
  kernel([c, a, b], _x, [o]) {
    const n = sizeOf(o!.shape);
    const out = outArray(o!.dtype, n);
    const ic = broadcastIndex(c!.shape, o!.shape);
    const ia = broadcastIndex(a!.shape, o!.shape);
    const ib = broadcastIndex(b!.shape, o!.shape);
    for (let i = 0; i < n; i++) out[i] = c!.data[ic[i]!] ? a!.data[ia[i]!]! : b!.data[ib[i]!]!;
    return [out];
  },
});

const ONNX_TO: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };

defineOp<{ dtype: DType }>({
  name: 'cast',
  infer([x], a) {
    return [{ shape: [...x!.shape], dtype: a.dtype }];
  },
  lower: (b, [x], a) => b.emit('Cast', [x!], { to: attr.int(ONNX_TO[a.dtype]) }),
  vjp([g], { inputs: [x] }) {
    return [isFloat(x!.dtype) ? g!.cast(x!.dtype) : null];
  },
  kernel([x], a) {
    const d = x!.data;
    if (a.dtype === 'bool') return [d.map((v) => (v !== 0 ? 1 : 0))];
    if (a.dtype === 'int32' || a.dtype === 'int64') return [Float64Array.from(d, (v) => Math.trunc(v))];
    return [a.dtype === 'float32' ? Float32Array.from(d) : Float64Array.from(d)];
  },
});

defineOp<Record<string, never>>({
  name: 'identity',
  infer: ([x]) => [{ shape: [...x!.shape], dtype: x!.dtype }],
  lower: (b, [x]) => b.emit('Identity', [x!]),
  vjp: ([g]) => [g],
  kernel: ([x]) => [x!.data.slice()],
});

/** The value of x with no gradient flowing back (jax.lax.stop_gradient, torch's detach). */
defineOp<Record<string, never>>({
  name: 'stop_gradient',
  infer: ([x]) => [{ shape: [...x!.shape], dtype: x!.dtype }],
  lower: (b, [x]) => b.emit('Identity', [x!]),
  vjp: () => [null],
  kernel: ([x]) => [x!.data.slice()],
});
