import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { einsum, grad, tensor } from '../src/index.js';
import { assertClose, checkGrad, checkLowering, rnd, withBackend } from './helpers.js';

describe('softmax and log_softmax', () => {
  it('known answer', () => {
    const y = tensor([0, Math.log(2)])
      .softmax()
      .dataSync() as Float32Array;
    assert.ok(Math.abs(y[0]! - 1 / 3) < 1e-7 && Math.abs(y[1]! - 2 / 3) < 1e-7);
    const big = tensor([1000, 1000]).softmax().dataSync() as Float32Array;
    assert.deepEqual(Array.from(big), [0.5, 0.5]);
  });
  it('lowering matches the JS kernel on every axis', () => {
    const x = rnd([2, 3, 5], 1, 'float32', 3);
    for (const axis of [0, 1, -1]) checkLowering((t) => [t.softmax(axis), t.logSoftmax(axis)], [x]);
    checkLowering((t) => t.softmax(-1), [rnd([4, 1], 2)]);
  });
  it('masked rows (large negative) behave', () => {
    const x = tensor([
      [0, -1e9, 1],
      [2, 2, -1e9],
    ]);
    checkLowering((t) => t.softmax(-1), [x]);
  });
  it('VJPs match finite differences', () => {
    const x = rnd([2, 4], 3);
    checkGrad((t) => t.softmax(-1), [x]);
    checkGrad((t) => t.softmax(0), [x]);
    checkGrad((t) => t.logSoftmax(-1), [x]);
  });
  it('second-order: grad of grad through softmax', () => {
    const x = rnd([5], 4, 'float64');
    const w = rnd([5], 5, 'float64');
    const f = (t: typeof x) => t.softmax().mul(w).sum().square();
    // Check the Hessian-vector product against finite differences of the first gradient.
    const v = rnd([5], 6, 'float64');
    const hvp = withBackend('js', () => grad((t: typeof x) => grad(f)(t).mul(v).sum())(x));
    const eps = 1e-6;
    const g1 = withBackend('js', () => grad(f)(x.add(v.mul(eps))));
    const g0 = withBackend('js', () => grad(f)(x.sub(v.mul(eps))));
    assertClose(hvp, g1.sub(g0).div(2 * eps), { atol: 1e-6, rtol: 1e-5 });
  });
});

describe('layer_norm and rms_norm', () => {
  it('known answers', () => {
    const y = tensor([1, 2, 3]).layerNorm(null, null, 0).dataSync() as Float32Array;
    const s = Math.sqrt(2 / 3);
    [-1 / s, 0, 1 / s].forEach((e, i) => assert.ok(Math.abs(y[i]! - e) < 1e-6));
    const r = tensor([3, 4]).rmsNorm(null, 0).dataSync() as Float32Array;
    const rms = Math.sqrt(12.5);
    assert.ok(Math.abs(r[0]! - 3 / rms) < 1e-6 && Math.abs(r[1]! - 4 / rms) < 1e-6);
  });
  it('lowering matches the JS kernel, with affine parameters', () => {
    const x = rnd([2, 3, 8], 1, 'float32', 2);
    const w = rnd([8], 2);
    const b = rnd([8], 3);
    checkLowering((t, ww, bb) => [t.layerNorm(ww, bb, 1e-5), t.rmsNorm(ww, 1e-6)], [x, w, b]);
    checkLowering((t) => t.layerNorm(), [rnd([3, 1], 4)]);
  });
  it('VJPs match finite differences', () => {
    const x = rnd([3, 6], 5);
    checkGrad((t, w, b) => t.layerNorm(w, b, 1e-5), [x, rnd([6], 6), rnd([6], 7)]);
    checkGrad((t, w) => t.rmsNorm(w, 1e-6), [x, rnd([6], 8)]);
  });
});

describe('einsum', () => {
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
    ['ij->ji', [[3, 4]]],
    ['ij->', [[3, 4]]],
    [
      'bi,bi->b',
      [
        [3, 4],
        [3, 4],
      ],
    ],
    [
      '...d,dv->...v',
      [
        [2, 3, 4],
        [4, 5],
      ],
    ],
    [
      'ij,jk',
      [
        [2, 3],
        [3, 4],
      ],
    ],
    ['ij,k->ijk', [[2, 3], [4]]],
  ];
  it('lowering matches the JS kernel', () => {
    for (const [eq, shapes] of cases)
      checkLowering(
        (...xs) => einsum(eq, ...xs),
        shapes.map((s, i) => rnd(s, i + 1)),
      );
  });
  it('agrees with matmul and transpose', () => {
    const a = rnd([2, 3, 4], 1);
    const b = rnd([4, 5], 2);
    assertClose(einsum('bpd,dv->bpv', a, b), a.matmul(b), { atol: 1e-5 });
    assertClose(einsum('ij->ji', b), b.transpose(), { atol: 0 });
    assertClose(einsum('...d,dv->...v', a, b), a.matmul(b), { atol: 1e-5 });
  });
  it('VJPs match finite differences', () => {
    for (const [eq, shapes] of cases)
      checkGrad(
        (...xs) => einsum(eq, ...xs),
        shapes.map((s, i) => rnd(s, i + 10)),
      );
  });
  it('errors name the equation and shapes', () => {
    assert.throws(
      () => einsum('ij,jk->ik', rnd([2, 3]), rnd([4, 5])),
      /einsum 'ij,jk->ik': subscript 'j' has sizes 3 and 4 \(operands \[2, 3\], \[4, 5\]\)/,
    );
    assert.throws(() => einsum('ii->i', rnd([3, 3])), /repeated subscript/);
  });
});
