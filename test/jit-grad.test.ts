import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, grad, jit, markGradTarget, ortStats, randn, tensor, valueAndGrad, zeros } from '../src/index.js';
import { assertClose, rnd, withBackend } from './helpers.js';

describe('jit', () => {
  const f = (x: Tensor, w: Tensor) => x.matmul(w).tanh().softmax(-1).mul(x.sum(-1, true)).sum(0);

  it('equals eager on both backends', () => {
    const x = rnd([4, 6], 1);
    const w = rnd([6, 5], 2);
    const eager = withBackend('js', () => f(x, w));
    assertClose(jit(f)(x, w), eager, { atol: 1e-5 });
    assertClose(
      withBackend('js', () => jit(f)(x, w)),
      eager,
      { atol: 1e-6 },
    );
  });

  it('closed-over tensors are inputs: new values reuse the session', () => {
    let W = rnd([6, 3], 3);
    const g = jit((x: Tensor) => x.matmul(W).relu());
    const x = rnd([2, 6], 4);
    assertClose(g(x), x.matmul(W).relu(), { atol: 1e-5 });
    W = rnd([6, 3], 5);
    assertClose(g(x), x.matmul(W).relu(), { atol: 1e-5 });
    W = rnd([6, 3], 6);
    assertClose(g(rnd([2, 6], 7)), rnd([2, 6], 7).matmul(W).relu(), { atol: 1e-5 });
    assert.deepEqual(g.stats, { traces: 3, compiles: 1 });
  });

  it('a new shape compiles once more; the same shape again does not', () => {
    const h = jit((x: Tensor) => x.mul(2).add(1).sum(-1));
    h(rnd([2, 3]));
    h(rnd([2, 3], 2));
    assert.equal(h.stats.compiles, 1);
    const before = ortStats.compiles;
    h(rnd([5, 3]));
    assert.equal(h.stats.compiles, 2);
    h(rnd([5, 3], 3));
    assert.equal(h.stats.compiles, 2);
    assert.equal(ortStats.compiles, before + 1);
  });

  it('pytree arguments and results, non-tensor arguments', () => {
    const step = jit((p: { w: Tensor; b: Tensor }, xs: Tensor[], scale: number) => ({
      y: xs[0]!.matmul(p.w).add(p.b).mul(scale),
      parts: [p.b.sum(), xs[1]!.neg()],
      tag: 'ok',
    }));
    const p = { w: rnd([3, 2], 1), b: rnd([2], 2) };
    const xs = [rnd([4, 3], 3), rnd([2], 4)];
    const out = step(p, xs, 3);
    assertClose(out.y, xs[0]!.matmul(p.w).add(p.b).mul(3), { atol: 1e-5 });
    assertClose(out.parts[0]!, p.b.sum(), { atol: 1e-6 });
    assertClose(out.parts[1]!, xs[1]!.neg());
    assert.equal(out.tag, 'ok');
    // A different scalar changes the trace's constants: a new session, still correct.
    assertClose(step(p, xs, 0.5).y, xs[0]!.matmul(p.w).add(p.b).mul(0.5), { atol: 1e-5 });
  });

  it('returns concrete tensors passed through and arguments unchanged', () => {
    const c = rnd([2], 9);
    const k = jit((x: Tensor) => [x, c, x.add(c)]);
    const x = rnd([2], 10);
    const [a, b, s] = k(x);
    assertClose(a!, x);
    assert.equal(b, c);
    assertClose(s!, x.add(c));
  });

  it('jit inside jit inlines', () => {
    const inner = jit((x: Tensor) => x.exp());
    const outer = jit((x: Tensor) => inner(x).sum());
    const x = rnd([3], 1);
    assertClose(outer(x), x.exp().sum(), { atol: 1e-6 });
    assert.equal(inner.stats.traces, 0);
  });

  it('explains tracer misuse', () => {
    let leaked: Tensor | null = null;
    jit((x: Tensor) => {
      leaked = x.add(1);
      return x;
    })(rnd([2]));
    assert.throws(() => leaked!.mul(2), /tracer from a jit\/grad trace that has finished/);
    assert.throws(() => leaked!.dataSync(), /cannot read the values of a tracer/);
    assert.throws(
      () =>
        jit((x: Tensor) => {
          x.dataSync();
          return x;
        })(rnd([2])),
      /cannot read the values of a tracer \(float32\[2\]\).*Return it from the traced function/,
    );
  });
});

describe('grad', () => {
  it('small MLP: matches the hand-derived gradient', () => {
    // loss = mean((tanh(x W1 + b1) W2 - y)^2)
    const x = rnd([5, 3], 1);
    const y = rnd([5, 2], 2);
    const p = { w1: rnd([3, 4], 3), b1: rnd([4], 4), w2: rnd([4, 2], 5) };
    const loss = (q: typeof p) => q.w1 && x.matmul(q.w1).add(q.b1).tanh().matmul(q.w2).sub(y).square().mean();
    const g = grad(loss)(p) as typeof p;
    // By hand: h = tanh(a), out = h W2, dL/dout = 2 (out - y) / N
    const a = x.matmul(p.w1).add(p.b1);
    const h = a.tanh();
    const dout = h
      .matmul(p.w2)
      .sub(y)
      .mul(2 / 10);
    const dw2 = h.transpose().matmul(dout);
    const dh = dout.matmul(p.w2.transpose());
    const da = dh.mul(tensor(1).sub(h.square()));
    assertClose(g.w2, dw2, { atol: 1e-6 });
    assertClose(g.w1, x.transpose().matmul(da), { atol: 1e-6 });
    assertClose(g.b1, da.sum(0), { atol: 1e-6 });
  });

  it('argnums, hasAux, valueAndGrad', () => {
    const f = (a: Tensor, b: Tensor) => a.mul(b).sum();
    const a = rnd([3], 1);
    const b = rnd([3], 2);
    assertClose(grad(f)(a, b), b);
    const [ga, gb] = grad(f, { argnums: [0, 1] })(a, b) as Tensor[];
    assertClose(ga!, b);
    assertClose(gb!, a);
    const [g, aux] = grad((x: Tensor) => [x.square().sum(), x.mul(10)], { hasAux: true })(a);
    assertClose(g, a.mul(2), { atol: 1e-6 });
    assertClose(aux, a.mul(10), { atol: 1e-6 });
    const [v, gv] = valueAndGrad(f)(a, b);
    assertClose(v, a.mul(b).sum(), { atol: 1e-6 });
    assertClose(gv, b);
  });

  it('unused arguments get zeros; errors for bad outputs and int arguments', () => {
    const z = grad((_x: Tensor, y: Tensor) => y.sum())(rnd([2, 2]), rnd([3]));
    assert.deepEqual(z.toArray(), [
      [0, 0],
      [0, 0],
    ]);
    assert.throws(() => grad((x: Tensor) => x.mul(2))(rnd([3])), /must return a float scalar, got float32\[3\]/);
    assert.throws(
      () => grad((x: Tensor) => x.cast('float32').sum())(tensor([1, 2], undefined, 'int32')),
      /cannot differentiate with respect to a int32 tensor/,
    );
  });

  it('gradient with respect to a marked intermediate equals finite differences at that point', () => {
    const x = rnd([2, 3], 1, 'float64');
    const w = rnd([3, 3], 2, 'float64');
    const delta = (d: Tensor) => (u: Tensor) => {
      const h = markGradTarget('h', u.matmul(w).add(d));
      return h.tanh().matmul(w).square().sum();
    };
    const [, , targets] = withBackend('js', () => valueAndGrad(delta(zeros([2, 3], 'float64')))(x));
    assert.deepEqual(targets.h!.value.shape, [2, 3]);
    assertClose(targets.h!.value, x.matmul(w), { atol: 1e-12 });
    const eps = 1e-6;
    const num = new Float64Array(6);
    for (let i = 0; i < 6; i++) {
      const e = new Float64Array(6);
      e[i] = eps;
      const plus = withBackend('js', () => delta(tensor(e, [2, 3]))(x).item());
      e[i] = -eps;
      const minus = withBackend('js', () => delta(tensor(e, [2, 3]))(x).item());
      num[i] = (plus - minus) / (2 * eps);
    }
    assertClose(targets.h!.grad, tensor(num, [2, 3]), { atol: 1e-6, rtol: 1e-6 });
    // On ORT (float64 graphs skip ORT's float-only fusions) the same.
    const [, , t32] = valueAndGrad(delta(zeros([2, 3], 'float64')))(x);
    assertClose(t32.h!.grad, targets.h!.grad, { atol: 1e-9 });
  });

  it('higher order: d2/dx2 x^3 = 6x, and through tanh', () => {
    const x = tensor([2, -1], undefined, 'float64');
    assertClose(grad((u: Tensor) => grad((t: Tensor) => t.pow(3).sum())(u).sum())(x), tensor([12, -6], undefined, 'float64'), {
      atol: 1e-9,
    });
    // d/dx tanh = 1 - tanh^2; d2 = -2 tanh (1 - tanh^2)
    const t = x.tanh();
    const expected = t.mul(-2).mul(tensor(1, undefined, 'float64').sub(t.square()));
    assertClose(
      withBackend('js', () => grad((v: Tensor) => grad((u: Tensor) => u.tanh().sum())(v).sum())(x)),
      expected,
      { atol: 1e-12 },
    );
  });

  it('nested grad does not leak gradient through closed-over values', () => {
    // d/dx [ x * d/dy (x * y) ] = d/dx [x * x] = 2x  (perturbation confusion gives 2x too only if correct)
    const f = (x: Tensor) => x.mul(grad((y: Tensor) => x.mul(y).sum())(tensor([1], undefined, 'float64'))).sum();
    assertClose(
      withBackend('js', () => grad(f)(tensor([3], undefined, 'float64'))),
      tensor([6], undefined, 'float64'),
    );
    // Inner grad of a function that does not depend on its argument through the closure: d/dy (x) = 0
    const g = (x: Tensor) =>
      grad((y: Tensor) => x.sum().add(y.sum().mul(0)))(x)
        .sum()
        .add(x.sum());
    assertClose(
      withBackend('js', () => grad(g)(tensor([2], undefined, 'float64'))),
      tensor([1], undefined, 'float64'),
    );
  });

  it('jit(grad(f)) equals grad(f) and compiles once across calls', () => {
    const loss = (w: Tensor, x: Tensor) => x.matmul(w).tanh().square().mean();
    const step = jit(grad(loss));
    const w = randn([4, 3], { seed: 1 });
    for (let i = 0; i < 3; i++) {
      const x = randn([5, 4], { seed: 10 + i });
      assertClose(
        step(w, x),
        withBackend('js', () => grad(loss)(w, x)),
        { atol: 1e-6 },
      );
    }
    assert.equal(step.stats.compiles, 1);
  });

  it('JS and ORT backends agree', () => {
    const f = (w: Tensor) => w.matmul(w.transpose()).softmax(-1).log().neg().mean();
    const w = rnd([4, 5], 3);
    assertClose(
      grad(f)(w),
      withBackend('js', () => grad(f)(w)),
      { atol: 1e-6 },
    );
  });
});
