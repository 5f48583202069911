import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, where } from '../src/index.js';
import { checkGrad, checkLowering, rnd, rndPos } from './helpers.js';

describe('elementwise ops', () => {
  it('binary ops broadcast and lower like the JS kernels', () => {
    const a = rnd([2, 3, 4], 1);
    const b = rnd([3, 1], 2);
    for (const op of ['add', 'sub', 'mul', 'maximum', 'minimum'] as const) checkLowering((x, y) => x[op](y), [a, b]);
    checkLowering((x, y) => x.div(y), [a, rndPos([4], 3)]);
    checkLowering((x, y) => x.pow(y), [rndPos([2, 3], 4), rnd([3], 5)]);
  });

  it('handles size-1 and empty dims', () => {
    checkLowering((x, y) => x.add(y), [rnd([1, 0, 3], 1), rnd([5, 1, 3], 2)]);
    checkLowering((x) => x.exp(), [rnd([0], 1)]);
  });

  it('unary ops match their references', () => {
    const x = rnd([3, 5], 7);
    const p = rndPos([3, 5], 8);
    checkLowering((t) => [t.neg(), t.exp(), t.tanh(), t.sigmoid(), t.relu(), t.silu(), t.abs(), t.sign(), t.sin(), t.cos()], [x]);
    checkLowering((t) => [t.log(), t.sqrt(), t.rsqrt()], [p]);
    checkLowering((t) => [t.gelu(), t.gelu('tanh')], [x]);
  });

  it('gelu reference values', () => {
    const y = tensor([-1, 0, 1, 2]).gelu().dataSync() as Float32Array;
    const expected = [-0.15865525, 0, 0.84134475, 1.95449974];
    expected.forEach((e, i) => assert.ok(Math.abs(y[i]! - e) < 1e-6));
  });

  it('comparisons, logic, where, cast', () => {
    const a = rnd([4, 3], 1);
    const b = rnd([3], 2);
    checkLowering((x, y) => [x.eq(y), x.ne(y), x.lt(y), x.le(y), x.gt(y), x.ge(y)], [a, b]);
    checkLowering((x, y) => x.gt(0).and(y.lt(0)).or(x.lt(-1)).not(), [a, b]);
    checkLowering((x, y) => where(x.gt(y), x, y), [a, b]);
    checkLowering((x) => [x.mul(10).cast('int32'), x.mul(10).cast('int64'), x.cast('bool'), x.cast('float64')], [a]);
    const c = tensor([1.7, -1.7]).cast('int32').dataSync() as Int32Array;
    assert.deepEqual(Array.from(c), [1, -1]);
  });

  it('dtype mismatch names the op and both shapes', () => {
    assert.throws(() => tensor([1, 2]).add(tensor([1, 2], undefined, 'int32')), /add: dtype mismatch \(float32\[2\] vs int32\[2\]\)/);
    assert.throws(() => rnd([2, 3]).add(rnd([4])), /add: shapes \[2, 3\] and \[4\] do not broadcast/);
  });

  it('VJPs match finite differences', () => {
    const a = rnd([2, 3], 1);
    const b = rnd([3], 2);
    checkGrad((x, y) => x.add(y), [a, b]);
    checkGrad((x, y) => x.sub(y), [a, b]);
    checkGrad((x, y) => x.mul(y), [a, b]);
    checkGrad((x, y) => x.div(y), [a, rndPos([3], 3)]);
    checkGrad((x, y) => x.pow(y), [rndPos([2, 3], 4), rnd([3], 5)]);
    checkGrad((x, y) => x.maximum(y), [a, b]);
    checkGrad((x, y) => x.minimum(y), [a, b]);
    checkGrad((x, y) => where(x.gt(0), x, y), [a, b]);
    for (const f of ['neg', 'exp', 'tanh', 'sigmoid', 'relu', 'silu', 'abs', 'sin', 'cos'] as const) checkGrad((x) => x[f](), [a]);
    for (const f of ['log', 'sqrt', 'rsqrt'] as const) checkGrad((x) => x[f](), [rndPos([2, 3], 6)]);
    checkGrad((x) => x.gelu(), [a]);
    checkGrad((x) => x.gelu('tanh'), [a]);
    // Through float32 the finite difference itself is only ~1e-3 accurate.
    checkGrad((x) => x.cast('float32').mul(2), [a], { eps: 1e-2, atol: 1e-3, rtol: 1e-3 });
  });
});
