import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRNG, einsum, grad, jit, tensor, type Tensor } from '../src/index.js';
import { assertClose, checkGrad, checkLowering, numbers, rnd, rndInt, withBackend } from './helpers.js';

/**
 * Second order: the Hessian-vector product grad(x -> <grad(f)(x), v>) agrees with central finite
 * differences of the first gradient along v (float64, JS backend), and the lowered double-backward
 * graph agrees on ORT in float32.
 */
function checkSecondOrder(f: (x: Tensor) => Tensor, x: Tensor, { atol = 1e-6, rtol = 1e-5, ortTol = 2e-3 } = {}): void {
  const x64 = x.cast('float64');
  const v = rnd([...x.shape], 6, 'float64');
  const hvpOf = (t: Tensor, vv: Tensor): Tensor => grad((u: Tensor) => (grad(f)(u) as Tensor).mul(vv).sum())(t) as Tensor;
  const hvp = withBackend('js', () => hvpOf(x64, v));
  const eps = 1e-5;
  const g1 = withBackend('js', () => grad(f)(x64.add(v.mul(eps))) as Tensor);
  const g0 = withBackend('js', () => grad(f)(x64.sub(v.mul(eps))) as Tensor);
  const fd = withBackend('js', () => g1.sub(g0).div(2 * eps));
  assertClose(hvp, fd, { atol, rtol, what: 'Hessian-vector product vs finite differences' });
  const onOrt = withBackend('ort', () => hvpOf(x64.cast('float32'), v.cast('float32')));
  assertClose(onOrt, hvp.cast('float32'), { atol: ortTol, rtol: ortTol, what: 'ORT Hessian-vector product' });
}

describe('softmax and log_softmax', () => {
  it('known answers', () => {
    const y = numbers(tensor([0, Math.log(2)]).softmax());
    assert.ok(Math.abs(y[0]! - 1 / 3) < 1e-7 && Math.abs(y[1]! - 2 / 3) < 1e-7, `got ${y}`);
    const ly = numbers(tensor([0, Math.log(2)]).logSoftmax());
    assert.ok(Math.abs(ly[0]! - Math.log(1 / 3)) < 1e-6 && Math.abs(ly[1]! - Math.log(2 / 3)) < 1e-6, `got ${ly}`);
    // Stable: the maximum is subtracted first.
    assert.deepEqual(numbers(tensor([1000, 1000]).softmax()), [0.5, 0.5]);
    assert.deepEqual(numbers(tensor([-1000, -1000]).softmax()), [0.5, 0.5]);
    const big = numbers(tensor([1000, 0]).logSoftmax());
    assert.equal(big[0], 0);
    assert.equal(big[1], -1000);
  });

  it('lowering matches the JS kernel on every axis, negative axes and size-1 dims', () => {
    const x = rnd([2, 3, 5], 1, 'float32', 3);
    for (const axis of [0, 1, 2, -1, -2, -3]) checkLowering((t) => [t.softmax(axis), t.logSoftmax(axis)], [x]);
    checkLowering((t) => [t.softmax(-1), t.logSoftmax(-1), t.softmax(0)], [rnd([4, 1], 2)]);
    checkLowering((t) => [t.softmax(1), t.logSoftmax(1)], [rnd([1, 7, 1], 3)]);
    checkLowering((t) => [t.softmax(), t.logSoftmax()], [rnd([6], 4, 'float64', 10)]);
    // Rank 0 has no axis.
    assert.throws(() => tensor(1).softmax(), /softmax: axis -1 is out of range/);
    assert.throws(() => rnd([2, 3]).softmax(2), /softmax: axis 2 is out of range/);
    assert.throws(() => tensor([1, 2], undefined, 'int32').softmax(), /softmax: expects a float tensor, got int32\[2\]/);
  });

  it('masked rows: large negative values stay finite; all -Infinity rows give NaN, as in ORT', () => {
    const x = tensor([
      [0, -1e9, 1],
      [2, 2, -1e9],
      [-1e9, -1e9, -1e9],
    ]);
    const [sm, lsm] = checkLowering((t) => [t.softmax(-1), t.logSoftmax(-1)], [x]);
    const s = numbers(sm!);
    assert.equal(s[1], 0);
    assert.ok(Math.abs(s[3]! - 0.5) < 1e-7 && s[5] === 0);
    s.slice(6).forEach((v) => assert.ok(Math.abs(v - 1 / 3) < 1e-7));
    assert.ok(numbers(lsm!).every(Number.isFinite));
    // Infinite outputs compare exactly (assertClose's |x - y| is NaN for -Infinity vs -Infinity).
    const inf = tensor([
      [-Infinity, -Infinity],
      [0, -Infinity],
    ]);
    for (const backend of ['js', 'ort'] as const)
      for (const run of [(f: (t: Tensor) => Tensor[]) => f(inf), (f: (t: Tensor) => Tensor[]) => jit(f)(inf)]) {
        const [a, la] = withBackend(backend, () => run((t) => [t.softmax(-1), t.logSoftmax(-1)]), 0);
        assert.deepEqual(numbers(a!), [NaN, NaN, 1, 0], `softmax on ${backend}`);
        assert.deepEqual(numbers(la!), [NaN, NaN, 0, -Infinity], `logSoftmax on ${backend}`);
      }
  });

  it('empty tensors', () => {
    checkLowering((t) => [t.softmax(-1), t.logSoftmax(0)], [rnd([0, 3], 1)]);
    checkLowering((t) => [t.softmax(-1), t.logSoftmax(-1)], [rnd([3, 0], 1)]);
  });

  it('VJPs match finite differences', () => {
    const x = rnd([2, 4], 3);
    checkGrad((t) => t.softmax(-1), [x]);
    checkGrad((t) => t.softmax(0), [x]);
    checkGrad((t) => t.logSoftmax(-1), [x]);
    checkGrad((t) => t.logSoftmax(-2), [x]);
    checkGrad((t) => t.softmax(1), [rnd([2, 3, 2], 4)]);
    checkGrad((t) => t.logSoftmax(-1), [rnd([3, 1], 5)]);
    // Masked entries get (almost) no gradient.
    checkGrad((t) => t.add(tensor([0, -1e4, 0, 0]).cast(t.dtype)).softmax(), [rnd([4], 6)]);
  });

  it('second order: grad of grad matches finite differences of the gradient', () => {
    const w = rnd([5], 5, 'float64');
    checkSecondOrder((t) => t.softmax().mul(w.cast(t.dtype)).sum().square(), rnd([5], 4));
    checkSecondOrder(
      (t) =>
        t
          .logSoftmax(0)
          .mul(w.cast(t.dtype).reshape([5, 1]))
          .sum()
          .square(),
      rnd([5, 2], 7),
    );
  });
});

describe('layer_norm and rms_norm', () => {
  it('known answers', () => {
    const y = numbers(tensor([1, 2, 3]).layerNorm(null, null, 0));
    const s = Math.sqrt(2 / 3); // population standard deviation
    [-1 / s, 0, 1 / s].forEach((e, i) => assert.ok(Math.abs(y[i]! - e) < 1e-6, `layerNorm[${i}] = ${y[i]}, expected ${e}`));
    const withEps = numbers(tensor([1, 2, 3]).layerNorm(null, null, 1));
    const s1 = Math.sqrt(2 / 3 + 1);
    [-1 / s1, 0, 1 / s1].forEach((e, i) => assert.ok(Math.abs(withEps[i]! - e) < 1e-6));
    const affine = numbers(tensor([1, 2, 3]).layerNorm(tensor([2, 2, 2]), tensor([1, 1, 1]), 0));
    [1 - 2 / s, 1, 1 + 2 / s].forEach((e, i) => assert.ok(Math.abs(affine[i]! - e) < 1e-6));
    const r = numbers(tensor([3, 4]).rmsNorm(null, 0));
    const rms = Math.sqrt(12.5);
    assert.ok(Math.abs(r[0]! - 3 / rms) < 1e-6 && Math.abs(r[1]! - 4 / rms) < 1e-6);
    const rw = numbers(tensor([3, 4]).rmsNorm(tensor([1, -2]), 0));
    assert.ok(Math.abs(rw[0]! - 3 / rms) < 1e-6 && Math.abs(rw[1]! + 8 / rms) < 1e-6);
  });

  it('lowering matches the JS kernel, with affine parameters', () => {
    const x = rnd([2, 3, 8], 1, 'float32', 2);
    const w = rnd([8], 2);
    const b = rnd([8], 3);
    checkLowering((t, ww, bb) => [t.layerNorm(ww, bb, 1e-5), t.rmsNorm(ww, 1e-6), t.layerNorm(), t.rmsNorm()], [x, w, b]);
    checkLowering((t) => [t.layerNorm(), t.rmsNorm()], [rnd([5], 4, 'float64')]);
    checkLowering((t) => [t.layerNorm(null, null, 0.5), t.rmsNorm(null, 0.5)], [rnd([4, 1, 6], 5)]);
  });

  it('size-1 and empty normalised axes', () => {
    // One element: x - mean(x) = 0 (ORT's LayerNormalization rejects this size; it is lowered apart).
    const [ln, rn] = checkLowering((t) => [t.layerNorm(), t.rmsNorm(null, 0)], [rnd([3, 1], 4)]);
    assert.deepEqual(numbers(ln!), [0, 0, 0]);
    numbers(rn!).forEach((v) => assert.equal(Math.abs(v), 1));
    checkLowering((t) => [t.layerNorm(), t.rmsNorm()], [rnd([3, 0], 4)]);
    checkLowering((t) => [t.layerNorm(), t.rmsNorm()], [rnd([0, 3], 4)]);
    assert.throws(() => tensor(1).layerNorm(), /layer_norm: expects rank >= 1/);
    assert.throws(() => tensor([1, 2], undefined, 'int32').rmsNorm(), /rms_norm: expects a float tensor/);
  });

  it('layer_norm stays accurate when the mean dwarfs the spread (float32)', () => {
    // ORT's LayerNormalization kernel alone computes mean(x^2) - mean^2: 0.03 off at mean 100 and
    // NaN at mean 1000 with unit spread. The lowering centres the input first.
    for (const offset of [100, 1000, 1e4]) {
      const x = rnd([4, 768], 7).add(offset);
      checkLowering((t) => t.layerNorm(), [x], { atol: offset >= 1e4 ? 2e-2 : 2e-3, rtol: 0 });
    }
  });

  it('VJPs match finite differences', () => {
    const x = rnd([3, 6], 5);
    checkGrad((t) => t.layerNorm(null, null, 1e-5), [x]);
    checkGrad((t) => t.rmsNorm(null, 1e-6), [x]);
    checkGrad((t, w, b) => t.layerNorm(w, b, 1e-5), [x, rnd([6], 6), rnd([6], 7)]);
    checkGrad((t, w) => t.rmsNorm(w, 1e-6), [x, rnd([6], 8)]);
    checkGrad((t) => t.layerNorm(null, null, 0.1), [rnd([2, 2, 5], 9)]);
    checkGrad((t) => t.rmsNorm(null, 0.1), [rnd([2, 2, 5], 10)]);
  });

  it('second order', () => {
    const w = rnd([2, 6], 11, 'float64');
    checkSecondOrder((t) => t.layerNorm(null, null, 1e-3).mul(w.cast(t.dtype)).sum().square(), rnd([2, 6], 12));
    checkSecondOrder((t) => t.rmsNorm(null, 1e-3).mul(w.cast(t.dtype)).sum().square(), rnd([2, 6], 13));
  });
});

describe('einsum', () => {
  // [equation, operand shapes]
  const cases: [string, number[][]][] = [
    [
      'bpd,dv->bpv',
      [
        [2, 3, 4],
        [4, 5],
      ],
    ],
    [
      'bhqd,bhkd->bhqk',
      [
        [2, 2, 3, 4],
        [2, 2, 5, 4],
      ],
    ],
    [
      'bhqk,bhkd->bhqd',
      [
        [2, 2, 3, 5],
        [2, 2, 5, 4],
      ],
    ],
    [
      'bpnh,nhd->bpd',
      [
        [2, 3, 2, 4],
        [2, 4, 5],
      ],
    ],
    [
      'bpd,ndh->bpnh',
      [
        [2, 3, 4],
        [2, 4, 3],
      ],
    ],
    ['ij->ji', [[3, 4]]],
    ['ij->', [[3, 4]]],
    ['ij->j', [[3, 4]]],
    ['ij->ij', [[3, 4]]],
    [
      'bi,bi->b',
      [
        [3, 4],
        [3, 4],
      ],
    ],
    ['i,i->', [[5], [5]]],
    [
      '...d,dv->...v',
      [
        [2, 3, 4],
        [4, 5],
      ],
    ],
    ['...d,dv->...v', [[4], [4, 5]]],
    [
      '...ij,...jk->...ik',
      [
        [2, 1, 3, 4],
        [5, 4, 2],
      ],
    ],
    [
      'ij,jk',
      [
        [2, 3],
        [3, 4],
      ],
    ],
    [
      'ba,cb',
      [
        [3, 2],
        [4, 3],
      ],
    ],
    ['ij,k->ijk', [[2, 3], [4]]],
    [
      'ij,ij->ij',
      [
        [2, 3],
        [2, 3],
      ],
    ],
    ['ijk,j->i', [[2, 3, 4], [3]]],
    [
      'bqd,bkd->qbk',
      [
        [2, 3, 4],
        [2, 5, 4],
      ],
    ],
    [
      'dv,bpd->bpv',
      [
        [4, 5],
        [2, 3, 4],
      ],
    ],
    [
      'bpv,bpd->dv',
      [
        [2, 3, 5],
        [2, 3, 4],
      ],
    ],
    [
      'ij,jk,kl->il',
      [
        [2, 3],
        [3, 4],
        [4, 2],
      ],
    ],
    ['a,ab,bc->c', [[2], [2, 3], [3, 4]]],
    // size-1 dims broadcast against their subscript's size, as in numpy and torch
    [
      'ij,jk->ik',
      [
        [2, 1],
        [3, 4],
      ],
    ],
    [
      'bhqd,bhkd->bhqk',
      [
        [2, 1, 3, 4],
        [1, 2, 5, 4],
      ],
    ],
    [
      'ij,ij->ij',
      [
        [2, 1],
        [1, 3],
      ],
    ],
    ['i,j->', [[1], [3]]],
    ['->', [[]]],
    // '...' left out of an explicit output: those dims are summed (as in torch)
    ['...i->i', [[2, 3, 4]]],
    [',ij->ji', [[], [2, 3]]],
  ];

  it('lowering matches the JS kernel', () => {
    for (const [eq, shapes] of cases)
      checkLowering(
        (...xs) => einsum(eq, ...xs),
        shapes.map((s, i) => rnd(s, i + 1)),
      );
    checkLowering((a, b) => einsum('bhqd,bhkd->bhqk', a, b), [rnd([1, 2, 3, 4], 1, 'float64'), rnd([1, 2, 5, 4], 2, 'float64')]);
    checkLowering((a, b) => einsum('bpd,dv->bpv', a, b), [rnd([2, 3, 4], 1, 'float64'), rnd([4, 5], 2, 'float64')]);
  });

  it('implicit output: free subscripts in alphabetical order, after the ... dims', () => {
    assert.deepEqual(einsum('ba,cb', rnd([3, 2]), rnd([4, 3])).shape, [2, 4]);
    assert.deepEqual(einsum('ij', rnd([2, 3])).shape, [2, 3]);
    assert.deepEqual(einsum('ji', rnd([2, 3])).shape, [3, 2]);
    assert.deepEqual(einsum('...j,jk', rnd([5, 6, 2]), rnd([2, 3])).shape, [5, 6, 3]);
    assertClose(
      einsum('ba,cb', rnd([3, 2], 1), rnd([4, 3], 2)),
      rnd([3, 2], 1)
        .transpose()
        .matmul(rnd([4, 3], 2).transpose()),
      {
        atol: 1e-5,
      },
    );
  });

  it('integer operands, and whitespace in the equation', () => {
    const a = rndInt([2, 3], 5, 1, 'int32');
    const b = rndInt([3, 4], 5, 2, 'int32');
    checkLowering((x, y) => einsum('ij,jk->ik', x, y), [a, b]);
    checkLowering((x, y) => einsum('ij,jk->ik', x, y), [a.cast('int64'), b.cast('int64')]);
    checkLowering((x, y) => einsum('ij,ij->i', x, y), [a, a]);
    assertClose(einsum(' ij , jk -> ik ', a, b), einsum('ij,jk->ik', a, b), { atol: 0 });
    assert.throws(
      () => einsum('ij,jk->ik', tensor([[true]]), tensor([[false]])),
      /einsum: 'ij,jk->ik': expects numeric operands, got bool/,
    );
  });

  it('empty operands give zeros (ORT Einsum would crash on them)', () => {
    const [r] = checkLowering((a, b) => einsum('ij,jk->ik', a, b), [rnd([2, 0]), rnd([0, 3])]);
    assert.deepEqual(numbers(r!), [0, 0, 0, 0, 0, 0]);
    checkLowering((a, b) => einsum('bhqd,bhkd->bhqk', a, b), [rnd([2, 2, 0, 4]), rnd([2, 2, 3, 4])]);
    checkLowering((a) => [einsum('ij->', a), einsum('ij->ji', a)], [rnd([0, 3])]);
  });

  it('agrees with matmul, transposes and reductions', () => {
    const a = rnd([2, 3, 4], 1);
    const b = rnd([4, 5], 2);
    assertClose(einsum('bpd,dv->bpv', a, b), a.matmul(b), { atol: 1e-5 });
    assertClose(einsum('ij->ji', b), b.transpose(), { atol: 0 });
    assertClose(einsum('...d,dv->...v', a, b), a.matmul(b), { atol: 1e-5 });
    assertClose(einsum('ij->', b), b.sum(), { atol: 1e-5 });
    assertClose(einsum('bij->bj', a), a.sum(1), { atol: 1e-5 });
    const q = rnd([2, 2, 3, 4], 3);
    const k = rnd([2, 2, 5, 4], 4);
    assertClose(einsum('bhqd,bhkd->bhqk', q, k), q.matmul(k.transpose(-1, -2)), { atol: 1e-5 });
    const p = rnd([2, 2, 3, 5], 5);
    assertClose(einsum('bhqk,bhkd->bhqd', p, k), p.matmul(k), { atol: 1e-5 });
    const z = rnd([2, 3, 2, 4], 6);
    const wo = rnd([2, 4, 5], 7);
    assertClose(einsum('bpnh,nhd->bpd', z, wo), z.reshape([2, 3, 8]).matmul(wo.reshape([8, 5])), { atol: 1e-5 });
    const u = rnd([3, 4], 8);
    assertClose(einsum('bi,bi->b', u, u), u.mul(u).sum(-1), { atol: 1e-5 });
    // The same under jit and on the JS backend.
    const f = jit((x: Tensor, y: Tensor) => einsum('bhqd,bhkd->bhqk', x, y));
    assertClose(
      f(q, k),
      withBackend('js', () => q.matmul(k.transpose(-1, -2))),
      { atol: 1e-5 },
    );
  });

  it('VJPs match finite differences', () => {
    for (const [eq, shapes] of cases)
      checkGrad(
        (...xs) => einsum(eq, ...xs),
        shapes.map((s, i) => rnd(s, i + 10)),
      );
    // The same operand twice.
    checkGrad((x) => einsum('bi,bi->b', x, x), [rnd([3, 4], 20)]);
  });

  it('random equations (1-3 operands, broadcast size-1 dims) lower and differentiate correctly', () => {
    // The lowering plans ReduceSum / Transpose / Reshape / Gemm / MatMul / Mul per pair of
    // operands; random equations cover its layout cases.
    const rng = new PRNG(7);
    const shuffled = (s: string): string[] => [...s].sort(() => rng.uniform() - 0.5);
    for (let trial = 0; trial < 40; trial++) {
      const size = new Map([...'abcde'].map((c) => [c, 1 + rng.int(3)]));
      const terms: string[] = [];
      const shapes: number[][] = [];
      for (let i = 0, n = 1 + rng.int(3); i < n; i++) {
        const t = shuffled('abcde').slice(0, rng.int(4));
        terms.push(t.join(''));
        shapes.push(t.map((c) => (rng.uniform() < 0.2 ? 1 : size.get(c)!)));
      }
      const out = shuffled([...new Set(terms.join(''))].join(''))
        .filter(() => rng.uniform() < 0.5)
        .join('');
      const eq = `${terms.join(',')}->${out}`;
      const xs = shapes.map((s, i) => rnd(s, trial * 10 + i));
      checkLowering((...a) => einsum(eq, ...a), xs);
      if (trial % 4 === 0) checkGrad((...a) => einsum(eq, ...a), xs);
    }
  });

  it('second order', () => {
    const w = rnd([4, 4], 21, 'float64');
    checkSecondOrder((t) => einsum('ij,jk->ik', t, t).mul(w.cast(t.dtype)).sum().square(), rnd([4, 4], 22));
    checkSecondOrder((t) => einsum('i,i->', t, t).square(), rnd([4], 23));
  });

  it('errors name the op, the equation and the shapes', () => {
    assert.throws(
      () => einsum('ij,jk->ik', rnd([2, 3]), rnd([4, 5])),
      /^Error: einsum: 'ij,jk->ik': subscript 'j' has sizes 3 and 4 \(operands \[2, 3\], \[4, 5\]\)$/,
    );
    assert.throws(() => einsum('ii->i', rnd([3, 3])), /einsum: 'ii->i': subscript 'i' repeats within operand 0 \('ii'\); diagonals/);
    assert.throws(() => einsum('ij,jk->ik', rnd([2, 3])), /einsum: 'ij,jk->ik': 2 operand subscripts for 1 operands/);
    assert.throws(() => einsum('ijk->i', rnd([2, 3])), /einsum: 'ijk->i': operand 0 has rank 2 but 3 subscripts 'ijk'/);
    assert.throws(() => einsum('ij->ik', rnd([2, 3])), /output subscript 'k' does not appear in any operand/);
    assert.throws(() => einsum('ij->ii', rnd([2, 3])), /output subscript 'i' repeats/);
    assert.throws(() => einsum('ij->i->j', rnd([2, 3])), /more than one '->'/);
    assert.throws(() => einsum('i.j->i', rnd([2, 3])), /operand 0 subscripts 'i.j' must be letters/);
    assert.throws(() => einsum('...ij->...', rnd([2])), /operand 0 has rank 1, fewer than its 2 subscripts/);
    assert.throws(() => einsum('...i,...i->...', rnd([2, 3]), rnd([4, 3])), /the '...' dims do not broadcast/);
    assert.throws(() => einsum('ij,jk->ik', rnd([2, 3]), rnd([3, 4], 1, 'float64')), /einsum: dtype mismatch/);
    assert.throws(() => einsum('->'), /einsum: '->': needs at least one operand/);
  });
});
