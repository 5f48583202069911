import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, grad, jit, markGradTarget, ortStats, randn, tensor, valueAndGrad, zeros, type GradTargets } from '../src/index.js';
import { assertClose, numbers, rnd, withBackend } from './helpers.js';

const f64 = (v: number[] | number): Tensor => tensor(v, undefined, 'float64');

/** Central finite differences of a scalar function of one tensor (float64, JS backend). */
function numericGrad(f: (x: Tensor) => number, x: Tensor, eps = 1e-6): Tensor {
  const base = Float64Array.from(x.cast('float64').dataSync() as Float64Array);
  const out = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const at = (d: number): number => {
      const v = base.slice();
      v[i]! += d;
      return withBackend('js', () => f(tensor(v, [...x.shape], 'float64')));
    };
    out[i] = (at(eps) - at(-eps)) / (2 * eps);
  }
  return tensor(out, [...x.shape], 'float64');
}

describe('grad: a 2-layer MLP against hand-derived backprop', () => {
  // loss = mean((tanh(x W1 + b1) W2 + b2 - y)^2)
  type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };
  const x = rnd([5, 3], 1);
  const y = rnd([5, 2], 2);
  const p: Params = { w1: rnd([3, 4], 3), b1: rnd([4], 4), w2: rnd([4, 2], 5), b2: rnd([2], 6) };
  const loss = (q: Params, xs: Tensor, ys: Tensor) => xs.matmul(q.w1).add(q.b1).tanh().matmul(q.w2).add(q.b2).sub(ys).square().mean();

  /** Backprop written out with eager ops. */
  function byHand(q: Params): Params {
    const a = x.matmul(q.w1).add(q.b1); // [5, 4]
    const h = a.tanh();
    const out = h.matmul(q.w2).add(q.b2); // [5, 2]
    const n = out.size;
    const dout = out.sub(y).mul(2 / n); // dL/dout
    const dw2 = h.transpose().matmul(dout); // [4, 2]
    const db2 = dout.sum(0); // [2]
    const dh = dout.matmul(q.w2.transpose()); // [5, 4]
    const da = dh.mul(tensor(1).sub(h.mul(h))); // tanh' = 1 - tanh^2
    const dw1 = x.transpose().matmul(da); // [3, 4]
    const db1 = da.sum(0); // [4]
    return { w1: dw1, b1: db1, w2: dw2, b2: db2 };
  }

  it('gradients have the structure of the params and match by-hand backprop (ORT and JS)', () => {
    const expected = byHand(p);
    for (const backend of ['ort', 'js'] as const) {
      const g = withBackend(backend, () => grad(loss)(p, x, y)) as Params;
      assert.deepEqual(Object.keys(g), ['w1', 'b1', 'w2', 'b2']);
      for (const k of Object.keys(expected) as (keyof Params)[]) {
        assert.ok(!g[k].isTracer);
        assertClose(g[k], expected[k], { atol: 1e-6, rtol: 1e-4, what: `${backend} d/d${k}` });
      }
    }
  });

  it('valueAndGrad returns the loss value too', () => {
    const [v, g] = valueAndGrad(loss)(p, x, y);
    assertClose(v as Tensor, loss(p, x, y), { atol: 1e-6 });
    assertClose((g as Params).w2, byHand(p).w2, { atol: 1e-6 });
  });

  it('a few steps of gradient descent lower the loss', () => {
    const step = jit((q: Params) => {
      const g = grad(loss)(q, x, y) as Params;
      return { w1: q.w1.sub(g.w1.mul(0.1)), b1: q.b1.sub(g.b1.mul(0.1)), w2: q.w2.sub(g.w2.mul(0.1)), b2: q.b2.sub(g.b2.mul(0.1)) };
    });
    let q = p;
    const l0 = loss(q, x, y).item();
    for (let i = 0; i < 20; i++) q = step(q);
    assert.ok(loss(q, x, y).item() < l0 * 0.9, `loss ${l0} -> ${loss(q, x, y).item()}`);
    assert.equal(step.stats.compiles, 1);
  });
});

describe('grad: arguments and results', () => {
  const f = (a: Tensor, b: Tensor, c: Tensor) => a.mul(b).add(c.square()).sum();
  const a = rnd([3], 1);
  const b = rnd([3], 2);
  const c = rnd([3], 3);

  it('argnums: default 0, a number, an array', () => {
    assertClose(grad(f)(a, b, c), b);
    assertClose(grad(f, { argnums: 1 })(a, b, c), a);
    assertClose(grad(f, { argnums: 2 })(a, b, c), c.mul(2), { atol: 1e-6 });
    const gs = grad(f, { argnums: [2, 0] })(a, b, c) as Tensor[];
    assert.ok(Array.isArray(gs) && gs.length === 2);
    assertClose(gs[0]!, c.mul(2), { atol: 1e-6 });
    assertClose(gs[1]!, b);
    const single = grad(f, { argnums: [1] })(a, b, c) as Tensor[];
    assert.ok(Array.isArray(single) && single.length === 1, 'an array argnums gives an array, even of one');
    assertClose(single[0]!, a);
  });

  it('pytree arguments give gradients of the same structure', () => {
    const params = { layers: [{ w: rnd([2, 2], 4) }, { w: rnd([2, 2], 5) }], scale: rnd([], 6), name: 'mlp' };
    const h = (q: typeof params, v: Tensor) => v.matmul(q.layers[0]!.w).matmul(q.layers[1]!.w).mul(q.scale).sum();
    const v = rnd([3, 2], 7);
    const g = grad(h)(params, v) as typeof params;
    assert.deepEqual(Object.keys(g), ['layers', 'scale', 'name']);
    assert.equal(g.layers.length, 2);
    assert.equal(g.name, 'mlp', 'non-tensor leaves come back unchanged');
    assert.deepEqual(g.scale.shape, []);
    // d/d scale = sum(v W0 W1); d/d W1 = (v W0)^T 1 * scale
    assertClose(g.scale, v.matmul(params.layers[0]!.w).matmul(params.layers[1]!.w).sum(), { atol: 1e-5 });
    const ones = zeros([3, 2]).add(1);
    assertClose(g.layers[1]!.w, v.matmul(params.layers[0]!.w).transpose().matmul(ones).mul(params.scale), { atol: 1e-5 });
    assertClose(g.layers[0]!.w, v.transpose().matmul(ones.matmul(params.layers[1]!.w.transpose())).mul(params.scale), { atol: 1e-5 });
    // A tuple of arguments with argnums as an array.
    const [gp, gv] = grad(h, { argnums: [0, 1] })(params, v) as [typeof params, Tensor];
    assertClose(gp.scale, g.scale);
    assert.deepEqual(gv.shape, [3, 2]);
  });

  it('hasAux returns the auxiliary value alongside, undifferentiated', () => {
    const [g, aux] = grad((x: Tensor) => [x.square().sum(), { doubled: x.mul(2), n: 3 }], { hasAux: true })(a);
    assertClose(g, a.mul(2), { atol: 1e-6 });
    assertClose(aux.doubled, a.mul(2), { atol: 1e-6 });
    assert.equal(aux.n, 3);
    assert.ok(!aux.doubled.isTracer);
    const [[value, aux2], g2] = valueAndGrad((x: Tensor) => [x.sum(), x.exp()], { hasAux: true })(a);
    assertClose(value, a.sum(), { atol: 1e-6 });
    assertClose(aux2, a.exp(), { atol: 1e-6 });
    assertClose(g2, zeros([3]).add(1));
  });

  it('an unused argument gets zeros of its shape', () => {
    const z = grad((_x: Tensor, y: Tensor) => y.sum())(rnd([2, 2]), rnd([3]));
    assert.deepEqual(z.toArray(), [
      [0, 0],
      [0, 0],
    ]);
    const [gx, gy] = grad((x: Tensor, _y: { p: Tensor }) => x.sum(), { argnums: [0, 1] })(rnd([2]), { p: rnd([9, 9]) }) as [
      Tensor,
      { p: Tensor },
    ];
    assert.deepEqual(gx.toArray(), [1, 1]);
    assert.deepEqual(gy.p.shape, [9, 9]);
    assert.ok(numbers(gy.p).every((v) => v === 0));
    // A function that ignores its input entirely.
    assert.deepEqual(grad((_x: Tensor) => tensor(3).sum())(rnd([2])).toArray(), [0, 0]);
  });

  it('errors: non-scalar output, int argument, bad argnums, bad return', () => {
    assert.throws(
      () => grad((x: Tensor) => x.mul(2))(rnd([3])),
      /grad: the function must return a float scalar, got float32\[3\]; reduce it/,
    );
    assert.throws(() => grad((x: Tensor) => x.sum().cast('int32'))(rnd([3])), /must return a float scalar, got int32\[\]/);
    assert.throws(
      () => grad((x: Tensor) => x.cast('float32').sum())(tensor([1, 2], undefined, 'int32')),
      /grad: cannot differentiate with respect to a int32 tensor \(argument 0\)/,
    );
    assert.throws(
      () => grad((_x: Tensor, i: Tensor) => i.cast('float32').sum(), { argnums: [0, 1] })(rnd([2]), tensor([1n])),
      /cannot differentiate with respect to a int64 tensor \(argument 1\)/,
    );
    assert.throws(() => grad((x: Tensor) => x.sum(), { argnums: 1 })(rnd([2])), /grad: argnums 1 is out of range for 1 arguments/);
    assert.throws(() => grad(() => 3)(rnd([2])), /grad: the function must return a Tensor/);
    assert.throws(
      () => grad((x: Tensor) => x.sum(), { hasAux: true })(rnd([2])),
      /grad: hasAux expects the function to return \[output, aux\]/,
    );
    // A one-element output of any rank is accepted.
    assert.deepEqual(grad((x: Tensor) => x.sum(0, true))(rnd([2])).toArray(), [1, 1]);
  });

  it('an int argument that is not differentiated passes through', () => {
    const emb = rnd([5, 3], 1);
    const ids = tensor([4n, 0n, 4n]);
    const g = grad((e: Tensor, i: Tensor) => e.gather(i, 0).sum())(emb, ids);
    assert.deepEqual(g.toArray(), [
      [1, 1, 1],
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
      [2, 2, 2],
    ]);
  });
});

describe('grad: marked intermediates', () => {
  const x = rnd([2, 3], 1, 'float64');
  const w = rnd([3, 3], 2, 'float64');
  /** The function with `d` added at the marked point h. */
  const withDelta = (d: Tensor) => (u: Tensor) => {
    const h = markGradTarget('h', u.matmul(w).add(d));
    return h.tanh().matmul(w).square().sum();
  };

  it('value and gradient of a named intermediate match finite differences at that point', () => {
    const [value, gx, targets] = withBackend('js', () => valueAndGrad(withDelta(zeros([2, 3], 'float64')))(x));
    assert.deepEqual(Object.keys(targets), ['h']);
    assertClose(targets.h!.value, x.matmul(w), { atol: 1e-12 });
    const numeric = numericGrad((d) => withDelta(d)(x).item(), zeros([2, 3], 'float64'));
    assertClose(targets.h!.grad, numeric, { atol: 1e-6, rtol: 1e-6 });
    // The chain rule from h back to x: dL/dx = dL/dh W^T.
    assertClose(gx as Tensor, targets.h!.grad.matmul(w.transpose()), { atol: 1e-10 });
    assertClose(value as Tensor, withDelta(zeros([2, 3], 'float64'))(x), { atol: 1e-10 });
    // On ORT: float64 graph, and float32.
    const [, , t64] = valueAndGrad(withDelta(zeros([2, 3], 'float64')))(x);
    assertClose(t64.h!.grad, targets.h!.grad, { atol: 1e-9 });
    const x32 = x.cast('float32');
    const w32 = w.cast('float32');
    const [, , t32] = valueAndGrad((u: Tensor) => markGradTarget('h', u.matmul(w32)).tanh().matmul(w32).square().sum())(x32);
    assertClose(t32.h!.grad, targets.h!.grad.cast('float32'), { atol: 1e-4, rtol: 1e-4 });
  });

  it('several marks, and marks under jit', () => {
    const f = (u: Tensor) => {
      const a = markGradTarget('a', u.mul(2));
      const b = markGradTarget('b', a.sin());
      return b.mul(a).sum();
    };
    const u = rnd([4], 3);
    const run = jit((v: Tensor) => valueAndGrad(f)(v)[2]);
    const t = run(u) as GradTargets;
    const a = u.mul(2);
    const b = a.sin();
    assertClose(t.a!.value, a);
    assertClose(t.b!.value, b, { atol: 1e-6 });
    assertClose(t.b!.grad, a, { atol: 1e-6 }); // d(b a)/db = a
    assertClose(t.a!.grad, b.add(a.mul(a.cos())), { atol: 1e-5 }); // total derivative through b
    run(rnd([4], 4));
    assert.equal(run.stats.compiles, 1);
  });

  it('the same marked function can run twice in one jit (each grad call has its own marks)', () => {
    const f = (u: Tensor) => markGradTarget('h', u.mul(2)).tanh().sum();
    const both = jit((clean: Tensor, corrupt: Tensor) => {
      const [, , tc] = valueAndGrad(f)(clean);
      const [, , tx] = valueAndGrad(f)(corrupt);
      return [tc.h!.grad, tx.h!.grad];
    });
    const c = rnd([3], 5);
    const k = rnd([3], 6);
    const [gc, gk] = both(c, k);
    const dtanh = (v: Tensor) => tensor(1).sub(v.mul(2).tanh().square());
    assertClose(gc!, dtanh(c), { atol: 1e-6 });
    assertClose(gk!, dtanh(k), { atol: 1e-6 });
    // Outside grad a mark is a no-op, also when the function runs twice in one jit.
    const twice = jit((v: Tensor) => f(v).add(f(v.neg())));
    assertClose(twice(c), f(c).add(f(c.neg())), { atol: 1e-6 });
    assert.equal(markGradTarget('h', c), c, 'eager: returns its argument');
  });

  it('marking one name twice in one grad call is an error', () => {
    assert.throws(
      () => valueAndGrad((u: Tensor) => markGradTarget('h', markGradTarget('h', u.exp())).sum())(rnd([2])),
      /markGradTarget: 'h' is marked twice in one grad call/,
    );
  });

  it('a marked value that does not depend on the input is reported with a zero gradient', () => {
    const bias = rnd([3], 7);
    const [, , t] = valueAndGrad((u: Tensor) => u.add(markGradTarget('bias', bias.mul(0).add(1)).sum()).sum())(rnd([2]));
    assert.deepEqual(t.bias!.value.toArray(), [1, 1, 1]);
    assert.deepEqual(t.bias!.grad.toArray(), [2, 2, 2]);
    const [, , t2] = valueAndGrad((u: Tensor) => {
      markGradTarget('unused', bias);
      return u.sum();
    })(rnd([2]));
    assertClose(t2.unused!.value, bias);
    assert.deepEqual(t2.unused!.grad.toArray(), [0, 0, 0]);
  });
});

describe('grad: higher order and nesting', () => {
  it('d2/dx2 x^3 = 6x (ORT and JS), d3/dx3 = 6', () => {
    const x = f64([2, -1, 0.5]);
    const d2 = (u: Tensor) => grad((v: Tensor) => grad((t: Tensor) => t.pow(3).sum())(v).sum())(u);
    for (const backend of ['js', 'ort'] as const)
      assertClose(
        withBackend(backend, () => d2(x)),
        f64([12, -6, 3]),
        { atol: 1e-9, what: backend },
      );
    const d3 = grad((u: Tensor) => d2(u).sum())(x);
    assertClose(d3, f64([6, 6, 6]), { atol: 1e-9 });
    // Written as x*x*x instead of pow.
    assertClose(grad((v: Tensor) => grad((t: Tensor) => t.mul(t).mul(t).sum())(v).sum())(x), f64([12, -6, 3]), { atol: 1e-9 });
  });

  it('grad of grad through tanh', () => {
    // d/dx tanh = 1 - tanh^2; d2 = -2 tanh (1 - tanh^2)
    const x = f64([0.3, -1.2, 2]);
    const t = x.tanh();
    const expected = t.mul(-2).mul(f64(1).sub(t.square()));
    const d2 = (u: Tensor) => grad((v: Tensor) => grad((s: Tensor) => s.tanh().sum())(v).sum())(u);
    assertClose(
      withBackend('js', () => d2(x)),
      expected,
      { atol: 1e-12 },
    );
    assertClose(d2(x), expected, { atol: 1e-9 });
    assertClose(d2(x.cast('float32')), expected.cast('float32'), { atol: 1e-5 });
    assertClose(jit(d2)(x), expected, { atol: 1e-9 });
  });

  it('nested grad does not leak gradient through closed-over values', () => {
    // d/dx [ x * d/dy (x * y) ] = d/dx [x * x] = 2x
    const f = (x: Tensor) => x.mul(grad((y: Tensor) => x.mul(y).sum())(f64([1]))).sum();
    assertClose(
      withBackend('js', () => grad(f)(f64([3]))),
      f64([6]),
    );
    assertClose(grad(f)(f64([3])), f64([6]));
    // d/dy x = 0 inside; the outer derivative of x.sum() is 1.
    const g = (x: Tensor) =>
      grad((y: Tensor) => x.sum().add(y.sum().mul(0)))(x)
        .sum()
        .add(x.sum());
    assertClose(
      withBackend('js', () => grad(g)(f64([2]))),
      f64([1]),
    );
  });
});

describe('grad: compiled', () => {
  it('jit(grad(f)) equals grad(f) and compiles once across calls', () => {
    const loss = (w: Tensor, x: Tensor) => x.matmul(w).tanh().square().mean();
    const step = jit(grad(loss));
    const w = randn([4, 3], { seed: 1 });
    const before = ortStats.compiles;
    for (let i = 0; i < 4; i++) {
      const x = randn([5, 4], { seed: 10 + i });
      assertClose(step(w, x), grad(loss)(w, x), { atol: 1e-6, what: `call ${i} vs eager grad` });
      assertClose(
        step(w, x),
        withBackend('js', () => grad(loss)(w, x)),
        { atol: 1e-6, what: `call ${i} vs JS` },
      );
    }
    assert.equal(step.stats.compiles, 1);
    assert.equal(step.stats.traces, 8);
    // grad(f) itself compiles forward and backward into one cached session.
    assert.ok(ortStats.compiles - before <= 2, `${ortStats.compiles - before} compiles`);
  });

  it('grad on the JS backend equals ORT', () => {
    const f = (w: Tensor, b: Tensor) => w.matmul(w.transpose()).add(b).softmax(-1).log().neg().mean().add(w.abs().max());
    const w = rnd([4, 5], 3);
    const b = rnd([4], 4);
    const onOrt = grad(f, { argnums: [0, 1] })(w, b) as Tensor[];
    const onJs = withBackend('js', () => grad(f, { argnums: [0, 1] })(w, b)) as Tensor[];
    onOrt.forEach((g, i) => assertClose(g, onJs[i]!, { atol: 1e-6, what: `argument ${i}` }));
    // And both agree with finite differences.
    const num = numericGrad((v) => f(v, b.cast('float64')).item(), w);
    assertClose(onJs[0]!.cast('float64'), num, { atol: 1e-3, rtol: 1e-3 });
  });
});

describe('detach (stop-gradient)', () => {
  it('keeps the value and passes no gradient, eagerly, under jit and on the JS backend', () => {
    const x = tensor([1, -2, 3]);
    const f = (v: Tensor) => v.mul(v.detach()).sum(); // d/dv = detach(v), not 2v
    assert.deepEqual(numbers(grad(f)(x)), [1, -2, 3]);
    assert.deepEqual(numbers(jit((v: Tensor) => grad(f)(v))(x)), [1, -2, 3]);
    withBackend('js', () => assert.deepEqual(numbers(grad(f)(x)), [1, -2, 3]));
    assert.deepEqual(numbers(x.detach()), [1, -2, 3]);
    // A straight-through estimator: the value of g(v) = relu(10 v + 0.5), the gradient of v.
    const ste = (v: Tensor) => v.add(v.mul(10).add(0.5).relu().sub(v).detach()).sum();
    assert.deepEqual(numbers(grad(ste)(x)), [1, 1, 1]);
  });
});
