import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, engineStats, grad, jit, ortStats, scalar, tensor, zeros } from '../src/index.js';
import { Trace, withTrace } from '../src/tensor/trace.js';
import { assertClose, rnd, withBackend } from './helpers.js';

describe('jit: results', () => {
  const f = (x: Tensor, w: Tensor, b: Tensor) =>
    x.matmul(w).add(b).tanh().softmax(-1).mul(x.sum(-1, true)).sub(x.max(-1, true).exp()).transpose().reshape([-1]);

  it('equals the eager result on the ORT and JS backends', () => {
    const x = rnd([4, 6], 1);
    const w = rnd([6, 5], 2);
    const b = rnd([5], 3);
    const eagerJs = withBackend('js', () => f(x, w, b));
    const eagerOrt = withBackend('ort', () => f(x, w, b), 0);
    assertClose(eagerOrt, eagerJs, { atol: 1e-5, what: 'eager ORT vs JS' });
    assertClose(jit(f)(x, w, b), eagerJs, { atol: 1e-5, what: 'jit ORT' });
    assertClose(
      withBackend('js', () => jit(f)(x, w, b)),
      eagerJs,
      { atol: 1e-6, what: 'jit JS' },
    );
  });

  it('runs the whole function as one compiled graph', () => {
    const g = jit(f);
    const x = rnd([3, 6], 4);
    const w = rnd([6, 5], 5);
    const b = rnd([5], 6);
    const runs = ortStats.runs;
    const eager = { js: engineStats.eagerJs, ort: engineStats.eagerOrt };
    g(x, w, b);
    assert.equal(ortStats.runs, runs + 1, 'one ORT run per call');
    assert.deepEqual({ js: engineStats.eagerJs, ort: engineStats.eagerOrt }, eager, 'no op ran eagerly');
  });

  it('works with float64 and integer dtypes', () => {
    const h = (x: Tensor, idx: Tensor) => [x.mul(2).sum(0), idx.add(idx).max(), idx.cast('float64').add(x.sum())];
    const x = rnd([3, 2], 1, 'float64');
    const idx = tensor([1n, 5n, 3n]);
    const got = jit(h)(x, idx);
    const want = withBackend('js', () => h(x, idx));
    got.forEach((t, i) => assertClose(t, want[i]!, { atol: 1e-12 }));
  });
});

describe('jit: closed-over tensors and the session cache', () => {
  it('new values of a closed-over tensor give new results without recompiling', () => {
    let W = rnd([6, 3], 3);
    let bias = rnd([3], 4);
    const g = jit((x: Tensor) => x.matmul(W).add(bias).relu().mul(x.mean()));
    const x = rnd([2, 6], 5);
    const ref = () => withBackend('js', () => x.matmul(W).add(bias).relu().mul(x.mean()));
    const before = ortStats.compiles;
    assertClose(g(x), ref(), { atol: 1e-5 });
    W = rnd([6, 3], 6);
    assertClose(g(x), ref(), { atol: 1e-5, what: 'after replacing W' });
    bias = rnd([3], 7);
    W = rnd([6, 3], 8);
    assertClose(g(x), ref(), { atol: 1e-5, what: 'after replacing W and bias' });
    assert.equal(g.stats.traces, 3);
    assert.equal(g.stats.compiles, 1, 'compiled once');
    assert.equal(ortStats.compiles, before + 1);
    // The same on the JS backend (nothing to compile, still the new values).
    W = rnd([6, 3], 9);
    assertClose(
      withBackend('js', () => g(x)),
      ref(),
      { atol: 1e-6, what: 'JS backend' },
    );
    // A closed-over tensor of a new shape is a new graph.
    W = rnd([6, 4], 10);
    bias = rnd([4], 11);
    assertClose(g(x), ref(), { atol: 1e-5, what: 'new weight shape' });
    assert.equal(g.stats.compiles, 2);
  });

  it('a new input shape recompiles once; the same shape again does not', () => {
    const h = jit((x: Tensor) => x.mul(3).add(1).square().sum(-1));
    const ref = (x: Tensor) => x.mul(3).add(1).square().sum(-1);
    assertClose(h(rnd([2, 7], 1)), ref(rnd([2, 7], 1)), { atol: 1e-4 });
    h(rnd([2, 7], 2));
    assert.equal(h.stats.compiles, 1);
    const before = ortStats.compiles;
    assertClose(h(rnd([5, 7], 3)), ref(rnd([5, 7], 3)), { atol: 1e-4 });
    assert.equal(h.stats.compiles, 2);
    h(rnd([5, 7], 4));
    h(rnd([2, 7], 5));
    assert.equal(h.stats.compiles, 2, 'both shapes are cached');
    assert.equal(ortStats.compiles, before + 1);
    h(rnd([5, 7], 6, 'float64'));
    assert.equal(h.stats.compiles, 3, 'a new dtype is a new graph');
  });

  it('graphs of the same structure that read different inputs each get their own inputs', () => {
    const x = tensor([1, 2]);
    const y = tensor([3, 4]);
    const W = tensor([5, 6]);
    // All three lower to the same model (one float32[2] input, Exp); only the input fed differs.
    const first = jit((a: Tensor, _b: Tensor) => a.exp());
    const second = jit((_a: Tensor, b: Tensor) => b.exp());
    const closure = jit((_a: Tensor) => W.exp());
    assertClose(first(x, y), x.exp(), { what: 'first argument' });
    assertClose(second(x, y), y.exp(), { what: 'second argument' });
    assertClose(closure(x), W.exp(), { what: 'closed-over tensor' });
    assertClose(first(x, y), x.exp(), { what: 'first argument again' });
    // Dead arguments in other positions.
    const mid = jit((_a: Tensor, b: Tensor, _c: Tensor) => b.mul(b));
    assertClose(mid(x, y, W), y.mul(y));
    assertClose(jit((_a: Tensor, _b: Tensor, c: Tensor) => c.mul(c))(x, y, W), W.mul(W));
  });

  it('attributes that plain JSON cannot tell apart (Infinity, -Infinity, NaN) get their own sessions', () => {
    const x = tensor([1, 2]);
    const expected = (v: number) => [v, 1, 2];
    for (const v of [Infinity, -Infinity, NaN, Infinity]) {
      assert.deepEqual(jit((a: Tensor) => a.pad([[1, 0]], v))(x).toArray(), expected(v), `jit pad(${v})`);
      assert.deepEqual(withBackend('ort', () => x.pad([[1, 0]], v), 0).toArray(), expected(v), `eager ORT pad(${v})`);
    }
  });

  it('small tensors created inside the function are constants; equal values reuse the session', () => {
    const k = jit((x: Tensor) => x.add(tensor([1, 2, 3])).mul(scalar(0.5)));
    k(rnd([3], 1));
    assertClose(
      k(rnd([3], 2)),
      rnd([3], 2)
        .add(tensor([1, 2, 3]))
        .mul(0.5),
    );
    assert.equal(k.stats.compiles, 1);
    // Large ones are fed as inputs.
    const big = jit((x: Tensor) => x.add(zeros([100]).add(1)));
    assertClose(big(rnd([100], 3)), rnd([100], 3).add(1));
    assertClose(big(rnd([100], 4)), rnd([100], 4).add(1));
    assert.equal(big.stats.compiles, 1);
  });
});

describe('jit: arguments and results', () => {
  it('pytree arguments and results, non-tensor arguments', () => {
    const step = jit((p: { w: Tensor; b: Tensor; extra: { s: Tensor[] } }, xs: Tensor[], scale: number, opts: { neg: boolean }) => ({
      y: xs[0]!.matmul(p.w).add(p.b).mul(scale),
      parts: [p.b.sum(), opts.neg ? xs[1]!.neg() : xs[1]!, p.extra.s[0]!.add(p.extra.s[1]!)],
      tag: 'ok',
      n: scale,
    }));
    const p = { w: rnd([3, 2], 1), b: rnd([2], 2), extra: { s: [rnd([2], 8), rnd([2], 9)] } };
    const xs = [rnd([4, 3], 3), rnd([2], 4)];
    const out = step(p, xs, 3, { neg: true });
    assert.deepEqual(Object.keys(out), ['y', 'parts', 'tag', 'n']);
    assertClose(out.y, xs[0]!.matmul(p.w).add(p.b).mul(3), { atol: 1e-5 });
    assertClose(out.parts[0]!, p.b.sum(), { atol: 1e-6 });
    assertClose(out.parts[1]!, xs[1]!.neg());
    assertClose(out.parts[2]!, p.extra.s[0]!.add(p.extra.s[1]!));
    assert.equal(out.tag, 'ok');
    assert.equal(out.n, 3);
    assert.ok(out.y instanceof Tensor && !out.y.isTracer);
    // Non-tensor arguments shape the trace: new values give new, correct results.
    const again = step(p, xs, 0.5, { neg: false });
    assertClose(again.y, xs[0]!.matmul(p.w).add(p.b).mul(0.5), { atol: 1e-5 });
    assertClose(again.parts[1]!, xs[1]!);
    const compiles = step.stats.compiles;
    step(p, [rnd([4, 3], 5), rnd([2], 6)], 0.5, { neg: false });
    assert.equal(step.stats.compiles, compiles, 'same structure and constants: no recompile');
  });

  it('passes through concrete tensors and arguments returned unchanged', () => {
    const c = rnd([2], 9);
    const k = jit((x: Tensor) => [x, c, x.add(c), x]);
    const x = rnd([2], 10);
    const [a, b, s, a2] = k(x);
    assertClose(a!, x);
    assertClose(a2!, x);
    assert.equal(b, c);
    assertClose(s!, x.add(c));
    assert.deepEqual(jit(() => [])(), []);
    assert.equal(jit((t: Tensor) => t.shape.length)(x), 1);
  });

  it('a function with no tensor arguments reads its closure', () => {
    let W = tensor([1, 2]);
    const k = jit(() => W.mul(W));
    assert.deepEqual(k().toArray(), [1, 4]);
    W = tensor([3, 4]);
    assert.deepEqual(k().toArray(), [9, 16]);
  });

  it('jit inside jit inlines', () => {
    const inner = jit((x: Tensor) => x.exp().add(1));
    const outer = jit((x: Tensor) => inner(x).log().sum());
    const x = rnd([3], 1);
    const runs = ortStats.runs;
    assertClose(outer(x), x.exp().add(1).log().sum(), { atol: 1e-6 });
    assert.equal(inner.stats.traces, 0, 'the inner function did not trace on its own');
    assert.equal(ortStats.runs, runs + 1, 'one graph');
    // Called on its own it still works.
    assertClose(inner(x), x.exp().add(1), { atol: 1e-6 });
    assert.equal(inner.stats.traces, 1);
  });

  it('grad inside jit and jit inside grad', () => {
    const f = (x: Tensor) => x.sin().mul(x).sum();
    const df = (x: Tensor) => x.cos().mul(x).add(x.sin());
    const x = rnd([4], 2);
    assertClose(jit(grad(f))(x), df(x), { atol: 1e-5 });
    assertClose(grad(jit(f))(x), df(x), { atol: 1e-5 });
  });
});

describe('jit: tracer misuse is explained', () => {
  it('a tracer stored during the trace cannot be used after it finished', () => {
    let leaked: Tensor | null = null;
    jit((x: Tensor) => {
      leaked = x.add(1);
      return x;
    })(rnd([2]));
    assert.ok(leaked !== null);
    const t = leaked as Tensor;
    assert.ok(t.isTracer);
    assert.equal(t.toString(), 'Tensor(tracer, float32[2])');
    assert.throws(() => t.mul(2), /mul: this tensor is a tracer from a jit\/grad trace that has finished/);
    assert.throws(() => t.dataSync(), /cannot read the values of a tracer/);
    assert.throws(() => jit((u: Tensor) => u.add(t))(rnd([2])), /add: this tensor is a tracer from a jit\/grad trace that has finished/);
    assert.throws(() => jit((u: Tensor) => u)(t), /jit: got a tracer from a finished trace as an argument/);
    assert.throws(() => grad((u: Tensor) => u.sum())(t), /grad: got a tracer from a finished trace as an argument/);
  });

  it('reading values inside jit explains what to do', () => {
    const read = (f: (x: Tensor) => unknown) =>
      jit((x: Tensor) => {
        f(x);
        return x;
      });
    const msg =
      /cannot read the values of a tracer \(float32\[2\]\): inside jit\/grad a tensor stands for a value that is computed later\. Return it from the traced function/;
    assert.throws(() => read((x) => x.dataSync())(rnd([2])), msg);
    assert.throws(() => read((x) => x.toArray())(rnd([2])), msg);
    assert.throws(() => read((x) => x.sum().item())(rnd([2])), /cannot read the values of a tracer \(float32\[\]\)/);
  });

  it('the async data() of a tracer rejects with the same explanation', async () => {
    let pending: Promise<unknown> | null = null;
    jit((x: Tensor) => {
      pending = x.data();
      return x;
    })(rnd([2]));
    await assert.rejects(pending!, /cannot read the values of a tracer \(float32\[2\]\)/);
  });

  it('mixing tracers of two traces is an error', () => {
    const a = new Trace();
    const b = new Trace();
    const ta = a.argument({ shape: [2], dtype: 'float32' });
    const tb = b.argument({ shape: [2], dtype: 'float32' });
    assert.throws(() => withTrace(a, () => withTrace(b, () => ta.add(tb))), /add: mixes tracers from two different traces/);
    assert.throws(() => ta.add(1), /add: got a tracer outside of its trace/);
    a.active = false;
    b.active = false;
  });
});
