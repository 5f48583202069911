/**
 * Test helpers: the JS reference backend is the oracle for the ONNX lowerings, and central finite
 * differences (in float64 on the JS backend) are the oracle for the VJP rules.
 */
import assert from 'node:assert/strict';
import { eagerConfig } from '../src/tensor/trace.js';
import { Tensor, grad, jit, setBackend, tensor, type DType } from '../src/index.js';
import { PRNG } from '../src/tensor/prng.js';

export type Fn = (...xs: Tensor[]) => Tensor | Tensor[];

function asList(r: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(r) ? r : [r];
}

/** Runs `body` with the given backend and JS-kernel threshold, restoring both afterwards. */
export function withBackend<T>(backend: 'js' | 'ort', body: () => T, jsThreshold = eagerConfig.jsThreshold): T {
  const prev = { backend: eagerConfig.backend, th: eagerConfig.jsThreshold };
  setBackend(backend);
  eagerConfig.jsThreshold = jsThreshold;
  try {
    return body();
  } finally {
    setBackend(prev.backend);
    eagerConfig.jsThreshold = prev.th;
  }
}

/** Asserts two tensors have the same shape and dtype and values within atol + rtol*|expected|. */
export function assertClose(actual: Tensor, expected: Tensor, { atol = 1e-5, rtol = 1e-4, what = '' } = {}): void {
  assert.deepEqual(actual.shape, expected.shape, `${what} shape`);
  assert.equal(actual.dtype, expected.dtype, `${what} dtype`);
  const a = actual.dataSync();
  const e = expected.dataSync();
  for (let i = 0; i < e.length; i++) {
    const x = Number(a[i]);
    const y = Number(e[i]);
    if (x === y || (Number.isNaN(y) && Number.isNaN(x))) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y)))
      assert.fail(`${what} element ${i}: got ${x}, expected ${y} (shape [${expected.shape}])`);
  }
}

/**
 * The op's ONNX lowering (eager one-node sessions, and the same function under jit) agrees with
 * its JS kernel. Returns the JS result.
 */
export function checkLowering(fn: Fn, inputs: Tensor[], tol: { atol?: number; rtol?: number } = {}): Tensor[] {
  const ref = withBackend('js', () => asList(fn(...inputs)));
  const eager = withBackend('ort', () => asList(fn(...inputs)), 0);
  const jitted = withBackend('ort', () => asList(jit(fn)(...inputs)));
  ref.forEach((r, i) => {
    assertClose(eager[i]!, r, { ...tol, what: `eager ORT output ${i}` });
    assertClose(jitted[i]!, r, { ...tol, what: `jit ORT output ${i}` });
  });
  return ref;
}

/** Random normal tensor with a fixed seed. */
export function rnd(shape: number[], seed = 1, dtype: DType = 'float32', scale = 1): Tensor {
  const rng = new PRNG(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal() * scale;
  return tensor(v, shape, dtype);
}

/** Random positive tensor in [lo, hi). */
export function rndPos(shape: number[], seed = 1, dtype: DType = 'float32', lo = 0.5, hi = 2): Tensor {
  const rng = new PRNG(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng.uniform();
  return tensor(v, shape, dtype);
}

/** Random integers in [0, hi). */
export function rndInt(shape: number[], hi: number, seed = 1, dtype: DType = 'int64'): Tensor {
  const rng = new PRNG(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.int(hi);
  return tensor(v, shape, dtype);
}

/**
 * Checks the VJP rules used by `fn` against central finite differences. `fn` maps float inputs
 * to any tensor; the checked scalar is sum(fn(x) * w) for a fixed random w, so every output
 * element is exercised. Inputs are taken as float64 on the JS backend; the same gradient is then
 * computed on ORT in float32 to check the lowered backward graph.
 */
export function checkGrad(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  { eps = 1e-6, atol = 1e-6, rtol = 1e-5, ortTol = 2e-3 } = {},
): void {
  const x64 = inputs.map((t) => (t.dtype === 'float32' ? t.cast('float64') : t));
  const out0 = withBackend('js', () => fn(...x64));
  const w = rnd([...out0.shape], 99, 'float64');
  const scalarFn = (...xs: Tensor[]) =>
    fn(...xs)
      .mul(w.cast(fn(...xs).dtype))
      .sum();
  const floatIdx = x64.map((t, i) => (t.dtype === 'float64' ? i : -1)).filter((i) => i >= 0);
  const analytic = withBackend('js', () => grad(scalarFn, { argnums: floatIdx })(...x64) as Tensor[]);
  floatIdx.forEach((argi, k) => {
    const base = x64[argi]!;
    const vals = Float64Array.from(base.dataSync() as Float64Array);
    const numeric = new Float64Array(vals.length);
    for (let j = 0; j < vals.length; j++) {
      const at = (delta: number): number => {
        const v = vals.slice();
        v[j]! += delta;
        const xs = x64.slice();
        xs[argi] = tensor(v, [...base.shape], 'float64');
        return withBackend('js', () => scalarFn(...xs).item());
      };
      numeric[j] = (at(eps) - at(-eps)) / (2 * eps);
    }
    assertClose(analytic[k]!, tensor(numeric, [...base.shape], 'float64'), { atol, rtol, what: `d/d input ${argi}` });
  });
  // The lowered backward graph on ORT, in float32.
  const x32 = x64.map((t) => (t.dtype === 'float64' ? t.cast('float32') : t));
  const w32 = w.cast('float32');
  const scalar32 = (...xs: Tensor[]) =>
    fn(...xs)
      .mul(w32)
      .sum();
  const onOrt = withBackend('ort', () => grad(scalar32, { argnums: floatIdx })(...x32) as Tensor[]);
  onOrt.forEach((g, k) =>
    assertClose(g, analytic[k]!.cast('float32'), { atol: ortTol, rtol: ortTol, what: `ORT d/d input ${floatIdx[k]}` }),
  );
}

/** A tensor's values as plain numbers (int64 converted with Number, bool as 0/1). */
export function numbers(t: Tensor): number[] {
  return Array.from(t.dataSync() as ArrayLike<number | bigint>, (v) => Number(v));
}
