import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRNG, arange, fromStorage, full, ones, rand, randn, scalar, seed, tensor, zeros } from '../src/index.js';

describe('tensor creation and reading', () => {
  it('from nested, flat and typed arrays, with dtype inference', () => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual([a.shape, a.dtype], [[2, 2], 'float32']);
    assert.deepEqual(tensor([1, 2, 3, 4, 5, 6], [2, 3]).toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.equal(tensor(new Int32Array([1, 2])).dtype, 'int32');
    assert.equal(tensor(new Float64Array([1, 2])).dtype, 'float64');
    assert.equal(tensor(new BigInt64Array([1n, 2n])).dtype, 'int64');
    assert.equal(tensor([true, false]).dtype, 'bool');
    assert.equal(tensor([5n, 6n]).dtype, 'int64');
    assert.deepEqual(tensor([[true, false]]).toArray(), [[true, false]]);
    assert.deepEqual(tensor([1.9, -1.9], undefined, 'int64').toArray(), [1n, -1n]);
    assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
    assert.throws(() => tensor([1, 2, 3], [2, 2]), /3 values do not fill shape \[2, 2\]/);
  });

  it('copies its input (tensors are immutable)', () => {
    const src = new Float32Array([1, 2]);
    const t = tensor(src);
    src[0] = 9;
    assert.equal(t.dataSync()[0], 1);
  });

  it('zeros, ones, full, arange, scalar', () => {
    assert.deepEqual(zeros([2]).toArray(), [0, 0]);
    assert.deepEqual(ones([1, 2], 'int32').toArray(), [[1, 1]]);
    assert.deepEqual(full([2], 7, 'int64').toArray(), [7n, 7n]);
    assert.deepEqual(arange(4).toArray(), [0n, 1n, 2n, 3n]);
    assert.deepEqual(arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
    assert.deepEqual(arange(5, 0, -2, 'int32').toArray(), [5, 3, 1]);
    assert.equal(scalar(3.5).item(), 3.5);
    assert.deepEqual(scalar(3.5).shape, []);
    assert.throws(() => zeros([2, -1]), /shape must be an array of non-negative integers/);
  });

  it('item, data, dataSync, toString', async () => {
    const t = tensor([[2.5]]);
    assert.equal(t.item(), 2.5);
    assert.deepEqual(Array.from((await t.data()) as Float32Array), [2.5]);
    assert.match(t.toString(), /Tensor\(float32\[1, 1\], \[\[2.5\]\]\)/);
    assert.throws(() => tensor([1, 2]).item(), /item: tensor has 2 elements/);
  });

  it('seedable PRNG: reproducible, resumable, sane moments', () => {
    assert.deepEqual(randn([5], { seed: 3 }).toArray(), randn([5], { seed: 3 }).toArray());
    assert.notDeepEqual(randn([5], { seed: 3 }).toArray(), randn([5], { seed: 4 }).toArray());
    seed(11);
    const a = randn([3]).toArray();
    seed(11);
    assert.deepEqual(randn([3]).toArray(), a);
    const rng = new PRNG(5);
    rng.normal();
    const state = rng.getState();
    const next = [rng.normal(), rng.uniform(), rng.normal()];
    const resumed = new PRNG(0);
    resumed.setState(JSON.parse(JSON.stringify(state)));
    assert.deepEqual([resumed.normal(), resumed.uniform(), resumed.normal()], next);
    const big = randn([20000], { seed: 1 }).dataSync() as Float32Array;
    const mean = big.reduce((s, v) => s + v, 0) / big.length;
    const std = Math.sqrt(big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length);
    assert.ok(Math.abs(mean) < 0.03 && Math.abs(std - 1) < 0.03, `mean ${mean} std ${std}`);
    const u = rand([10000], { seed: 2 }).dataSync() as Float32Array;
    assert.ok(u.every((v) => v >= 0 && v < 1));
  });

  it('fromStorage widens float16 and bfloat16', () => {
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x0001, 0x3555]);
    const t = fromStorage(new Uint8Array(f16.buffer), 'float16', [5]);
    const v = t.dataSync() as Float32Array;
    assert.equal(t.dtype, 'float32');
    assert.deepEqual([v[0], v[1], v[2]], [1, -2, Infinity]);
    assert.equal(v[3], 2 ** -24);
    assert.ok(Math.abs(v[4]! - 0.33325195) < 1e-7);
    const bf = new Uint16Array([0x3f80, 0xc040]);
    assert.deepEqual(Array.from(fromStorage(new Uint8Array(bf.buffer), 'bfloat16', [2]).dataSync() as Float32Array), [1, -3]);
    const i64 = new BigInt64Array([5n, -7n]);
    assert.deepEqual(fromStorage(new Uint8Array(i64.buffer), 'int64', [2]).toArray(), [5n, -7n]);
    assert.throws(() => fromStorage(new Uint8Array(3), 'float16', [2]), /3 bytes do not hold float16\[2\] \(4 bytes\)/);
  });
});
