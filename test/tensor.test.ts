import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRNG, Tensor, arange, fromStorage, full, jit, ones, rand, randn, scalar, seed, tensor, zeros } from '../src/index.js';
import { numbers, withBackend } from './helpers.js';

describe('tensor(): creation from JS values', () => {
  it('nested arrays give the shape; numbers default to float32', () => {
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(a.shape, [2, 3]);
    assert.equal(a.dtype, 'float32');
    assert.equal(a.rank, 2);
    assert.equal(a.size, 6);
    assert.ok(a.dataSync() instanceof Float32Array);
    assert.deepEqual(a.toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(tensor([[[1], [2]]]).shape, [1, 2, 1]);
    assert.deepEqual(tensor(3).shape, []);
    assert.equal(tensor(3).toArray(), 3);
    assert.deepEqual(tensor([]).shape, [0]);
    assert.deepEqual(tensor([[], []]).shape, [2, 0]);
    assert.deepEqual(tensor([[], []]).toArray(), [[], []]);
  });

  it('a flat array plus a shape', () => {
    assert.deepEqual(tensor([1, 2, 3, 4, 5, 6], [2, 3]).toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(tensor([1, 2, 3, 4], [2, 1, 2]).shape, [2, 1, 2]);
    assert.deepEqual(tensor([7], []).toArray(), 7);
    assert.deepEqual(tensor([], [3, 0]).shape, [3, 0]);
    assert.throws(() => tensor([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2, 2\]/);
  });

  it('typed arrays choose the dtype', () => {
    const cases: [ArrayLike<number> | BigInt64Array, string][] = [
      [new Float32Array([1, 2]), 'float32'],
      [new Float64Array([1, 2]), 'float64'],
      [new Int32Array([1, 2]), 'int32'],
      [new BigInt64Array([1n, 2n]), 'int64'],
    ];
    for (const [arr, dt] of cases) {
      const t = tensor(arr as Float32Array);
      assert.equal(t.dtype, dt);
      assert.deepEqual(t.shape, [2]);
    }
    assert.deepEqual(tensor(new Float64Array([1, 2, 3, 4]), [2, 2]).toArray(), [
      [1, 2],
      [3, 4],
    ]);
    assert.equal(tensor(new Float64Array([1.5]), [1], 'float32').dataSync().constructor, Float32Array);
    assert.deepEqual(tensor(new Float32Array([1.7, -1.7]), undefined, 'int32').toArray(), [1, -1]);
  });

  it('dtype inference from element types, and explicit dtypes', () => {
    assert.equal(tensor([true, false]).dtype, 'bool');
    assert.equal(tensor([[5n], [6n]]).dtype, 'int64');
    assert.equal(tensor([1, 2], undefined, 'int32').dtype, 'int32');
    assert.deepEqual(tensor([1.9, -1.9], undefined, 'int64').toArray(), [1n, -1n]);
    assert.deepEqual(tensor([0, 2, -1], undefined, 'bool').toArray(), [false, true, true]);
    assert.deepEqual(tensor([1n, 2n], undefined, 'float64').toArray(), [1, 2]);
    assert.throws(() => tensor([1], undefined, 'float16' as never), /tensor: unknown dtype 'float16'/);
  });

  it('refuses integer values the dtype cannot hold instead of wrapping them', () => {
    assert.throws(() => tensor([1e300, 2], undefined, 'int64'), /int64: value 1e\+300 at index 0 is outside the int64 range/);
    assert.throws(() => tensor([2n ** 64n], undefined, 'int64'), /outside the int64 range/);
    assert.throws(() => tensor([1, NaN], undefined, 'int64'), /int64: value NaN at index 1 cannot be represented/);
    assert.throws(() => tensor([Infinity], undefined, 'int32'), /int32: value Infinity at index 0 cannot be represented/);
    assert.throws(() => tensor([2 ** 31], undefined, 'int32'), /int32/);
    assert.deepEqual(tensor([2n ** 63n - 1n, -(2n ** 63n)], undefined, 'int64').toArray(), [2n ** 63n - 1n, -(2n ** 63n)]);
    assert.deepEqual(tensor([-(2 ** 31), 2 ** 31 - 1], undefined, 'int32').toArray(), [-(2 ** 31), 2 ** 31 - 1]);
  });

  it('rejects ragged nesting', () => {
    assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
    assert.throws(() => tensor([[1, 2], 3] as never), /ragged/);
    assert.throws(() => tensor([1, [2, 3]] as never), /ragged/);
  });

  it('copies its input (tensors are immutable)', () => {
    const src = new Float32Array([1, 2]);
    const t = tensor(src);
    src[0] = 9;
    assert.equal(t.dataSync()[0], 1);
    const nested = [1, 2];
    const u = tensor(nested);
    nested[0] = 9;
    assert.equal(u.dataSync()[0], 1);
  });
});

describe('creation functions', () => {
  it('zeros, ones, full for every dtype', () => {
    assert.deepEqual(zeros([2]).toArray(), [0, 0]);
    assert.deepEqual(zeros([2, 0]).shape, [2, 0]);
    assert.deepEqual(zeros([]).toArray(), 0);
    assert.deepEqual(ones([1, 2], 'int32').toArray(), [[1, 1]]);
    assert.deepEqual(ones([2], 'bool').toArray(), [true, true]);
    assert.deepEqual(zeros([2], 'int64').toArray(), [0n, 0n]);
    assert.deepEqual(full([2], 7, 'int64').toArray(), [7n, 7n]);
    assert.deepEqual(full([2], 2.5, 'int32').toArray(), [2, 2]);
    assert.deepEqual(full([1], -0.5).toArray(), [-0.5]);
    assert.deepEqual(full([2], 3, 'float64').dataSync().constructor, Float64Array);
    assert.deepEqual(full([2], 1, 'bool').toArray(), [true, true]);
    assert.throws(() => zeros([2, -1]), /full: shape must be an array of non-negative integers, got \[2,-1\]/);
    assert.throws(() => ones([1.5]), /shape must be an array of non-negative integers/);
  });

  it('arange', () => {
    const a = arange(4);
    assert.equal(a.dtype, 'int64');
    assert.deepEqual(a.toArray(), [0n, 1n, 2n, 3n]);
    assert.deepEqual(arange(2, 5).toArray(), [2n, 3n, 4n]);
    assert.deepEqual(arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
    assert.equal(arange(1, 2, 0.25).dtype, 'float32');
    assert.deepEqual(arange(5, 0, -2, 'int32').toArray(), [5, 3, 1]);
    assert.deepEqual(arange(3, undefined, 1, 'float32').toArray(), [0, 1, 2]);
    assert.deepEqual(arange(3, 3).shape, [0]);
    assert.deepEqual(arange(3, 1).shape, [0]);
    assert.deepEqual(arange(0, 0.3, 0.1).shape, [3]);
    assert.throws(() => arange(0, 3, 0), /arange: step must be non-zero/);
  });

  it('scalar', () => {
    assert.equal(scalar(3.5).item(), 3.5);
    assert.deepEqual(scalar(3.5).shape, []);
    assert.equal(scalar(3, 'int64').toArray(), 3n);
    assert.equal(scalar(true, 'bool').toArray(), true);
  });
});

/** A PRNG whose next uint32 is 0xffffffff: the largest uniform() it can produce comes next. */
function prngAtTop(): PRNG {
  const inverse = (a: number): number => {
    let x = a; // Newton's iteration for the inverse of an odd number mod 2^32
    for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(a, x));
    return x >>> 0;
  };
  // xoshiro128**: result = rotl(s1 * 5, 7) * 9
  let r = Math.imul(0xffffffff, inverse(9)) >>> 0;
  r = ((r >>> 7) | (r << 25)) >>> 0;
  const s1 = Math.imul(r, inverse(5)) >>> 0;
  const rng = new PRNG();
  rng.setState({ s: [1, s1, 2, 3], spare: null });
  return rng;
}

describe('random tensors and the seedable PRNG', () => {
  it('the same seed gives the same values; a different seed different ones', () => {
    assert.deepEqual(randn([5], { seed: 3 }).toArray(), randn([5], { seed: 3 }).toArray());
    assert.notDeepEqual(randn([5], { seed: 3 }).toArray(), randn([5], { seed: 4 }).toArray());
    assert.deepEqual(rand([2, 3], { seed: 3 }).toArray(), rand([2, 3], { seed: 3 }).toArray());
    seed(11);
    const a = randn([3]).toArray();
    const b = rand([3]).toArray();
    seed(11);
    assert.deepEqual(randn([3]).toArray(), a);
    assert.deepEqual(rand([3]).toArray(), b);
    assert.notDeepEqual(randn([3]).toArray(), a, 'the global stream advances');
  });

  it('a generator passed as rng continues its stream across calls', () => {
    const rng = new PRNG(7);
    const parts = [...(randn([3], { rng }).toArray() as number[]), ...(randn([1], { rng }).toArray() as number[])];
    assert.deepEqual(parts, randn([4], { seed: 7 }).toArray());
    const r64 = randn([3], { seed: 7, dtype: 'float64' });
    assert.equal(r64.dtype, 'float64');
    assert.deepEqual((randn([3], { seed: 7 }).toArray() as number[]).map(Math.fround), numbers(r64).map(Math.fround));
  });

  it('getState / setState resume the stream exactly (also mid Box-Muller pair)', () => {
    const rng = new PRNG(5);
    rng.normal(); // leaves the second value of the pair cached
    const state = rng.getState();
    assert.notEqual(state.spare, null);
    const next = [rng.normal(), rng.uniform(), rng.normal(), rng.nextU32(), rng.int(10)];
    const resumed = new PRNG(0);
    resumed.setState(JSON.parse(JSON.stringify(state)));
    assert.deepEqual([resumed.normal(), resumed.uniform(), resumed.normal(), resumed.nextU32(), resumed.int(10)], next);
    // Through tensors.
    const g = new PRNG(9);
    randn([3], { rng: g });
    const s = g.getState();
    const t1 = randn([4, 2], { rng: g }).toArray();
    const h = new PRNG(123);
    h.setState(s);
    assert.deepEqual(randn([4, 2], { rng: h }).toArray(), t1);
    // The state is a copy, not a live view.
    const s2 = g.getState();
    g.nextU32();
    assert.notDeepEqual(g.getState().s, s2.s);
    assert.throws(() => h.setState({ s: [1, 2], spare: null }), /PRNG.setState: expected \{ s: \[4 uint32\], spare \}/);
  });

  it('randn has mean ~0 and std ~1; rand is uniform in [0, 1)', () => {
    const big = randn([20000], { seed: 1 }).dataSync() as Float32Array;
    const mean = big.reduce((s, v) => s + v, 0) / big.length;
    const std = Math.sqrt(big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length);
    assert.ok(Math.abs(mean) < 0.03 && Math.abs(std - 1) < 0.03, `mean ${mean} std ${std}`);
    const within1 = big.filter((v) => Math.abs(v) < 1).length / big.length;
    assert.ok(Math.abs(within1 - 0.6827) < 0.02, `P(|z| < 1) = ${within1}`);
    const u = rand([20000], { seed: 2 }).dataSync() as Float32Array;
    assert.ok(
      u.every((v) => v >= 0 && v < 1),
      'in [0, 1)',
    );
    const um = u.reduce((s, v) => s + v, 0) / u.length;
    assert.ok(Math.abs(um - 0.5) < 0.01, `uniform mean ${um}`);
    const u64 = rand([3], { seed: 2, dtype: 'float64' });
    assert.equal(u64.dtype, 'float64');
  });

  it('rand stays below 1 in float32 even for the largest uniform', () => {
    const top = prngAtTop().uniform();
    assert.ok(top > 1 - 2 ** -26 && top < 1, `crafted uniform ${top}`);
    assert.equal(Math.fround(top), 1, 'this uniform rounds to 1 in float32');
    const v = rand([1], { rng: prngAtTop() }).item();
    assert.ok(v < 1, `rand gave ${v}`);
    assert.ok(rand([1], { rng: prngAtTop(), dtype: 'float64' }).item() < 1);
  });
});

describe('reading values', () => {
  it('toArray, item, dataSync, await data()', async () => {
    const t = tensor([[2.5]]);
    assert.equal(t.item(), 2.5);
    assert.deepEqual(numbers(t), [2.5]);
    const d = await t.data();
    assert.ok(d instanceof Float32Array);
    assert.deepEqual(Array.from(d as Float32Array), [2.5]);
    assert.deepEqual(tensor([1, 2, 3, 4], [2, 2]).toArray(), [
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(zeros([0, 2]).toArray(), []);
    assert.equal(tensor([3], [1, 1, 1]).item(), 3);
    assert.throws(() => tensor([1, 2]).item(), /item: tensor has 2 elements \(shape \[2\]\), expected 1/);
    assert.throws(() => zeros([0]).item(), /item: tensor has 0 elements/);
  });

  it('toString', () => {
    assert.equal(tensor([[2.5]]).toString(), 'Tensor(float32[1, 1], [[2.5]])');
    assert.equal(tensor([3n]).toString(), 'Tensor(int64[1], ["3"])');
    assert.equal(tensor([true]).toString(), 'Tensor(bool[1], [true])');
  });

  it('int64 round trips exactly, beyond 2^53', () => {
    const big = 2n ** 60n + 1n;
    const t = tensor([big, -5n, 0n]);
    assert.equal(t.dtype, 'int64');
    assert.deepEqual(t.toArray(), [big, -5n, 0n]);
    assert.ok(t.dataSync() instanceof BigInt64Array);
    assert.equal((t.dataSync() as BigInt64Array)[0], big);
    assert.deepEqual(tensor(new BigInt64Array([big])).toArray(), [big]);
    // Through ONNX Runtime (int64 end to end): eager and jit.
    assert.deepEqual(withBackend('ort', () => t.add(1), 0).toArray(), [big + 1n, -4n, 1n]);
    assert.deepEqual(jit((x: Tensor) => x.reshape([3, 1]).mul(2))(t).toArray(), [[2n * big], [-10n], [0n]]);
    // Through raw bytes.
    const bytes = new Uint8Array(new BigInt64Array([big, -7n]).buffer);
    assert.deepEqual(fromStorage(bytes, 'int64', [2]).toArray(), [big, -7n]);
    // int64 <-> other dtypes.
    assert.deepEqual(t.cast('float64').cast('int64').toArray(), [2n ** 60n, -5n, 0n]);
    assert.deepEqual(tensor([3.9, -3.9]).cast('int64').toArray(), [3n, -3n]);
  });

  it('bool round trips as 0/1 storage and true/false values', () => {
    const b = tensor([
      [true, false],
      [false, true],
    ]);
    assert.equal(b.dtype, 'bool');
    assert.ok(b.dataSync() instanceof Uint8Array);
    assert.deepEqual(numbers(b), [1, 0, 0, 1]);
    assert.deepEqual(b.not().toArray(), [
      [false, true],
      [true, false],
    ]);
    assert.deepEqual(b.cast('float32').cast('bool').toArray(), b.toArray());
    assert.deepEqual(jit((x: Tensor) => x.and(x.transpose()).or(x.not()))(b).toArray(), [
      [true, true],
      [true, true],
    ]);
    // Non-zero bytes are true: storage is normalised to 0/1, whichever way the bytes arrive.
    const fromBytes = tensor(new Uint8Array([0, 2, 255, 1]), [4], 'bool');
    assert.deepEqual(fromBytes.toArray(), [false, true, true, true]);
    assert.deepEqual(numbers(fromBytes), [0, 1, 1, 1]);
    assert.deepEqual(fromBytes.eq(tensor([false, true, true, true])).toArray(), [true, true, true, true]);
    const stored = fromStorage(new Uint8Array([0, 3, 1]), 'bool', [3]);
    assert.deepEqual(stored.toArray(), [false, true, true]);
    assert.deepEqual(numbers(stored), [0, 1, 1]);
  });
});

describe('fromStorage', () => {
  const f16 = (bits: number[]): Tensor => fromStorage(new Uint8Array(new Uint16Array(bits).buffer), 'float16', [bits.length]);
  const bf16 = (bits: number[]): Tensor => fromStorage(new Uint8Array(new Uint16Array(bits).buffer), 'bfloat16', [bits.length]);

  it('widens float16 bit patterns to float32', () => {
    const t = f16([0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x3555, 0x0000, 0x8000]);
    assert.equal(t.dtype, 'float32');
    const v = Array.from(t.dataSync() as Float32Array);
    assert.equal(v[0], 1);
    assert.equal(v[1], -2);
    assert.equal(v[2], Infinity);
    assert.equal(v[3], -Infinity);
    assert.equal(v[4], 2 ** -24, 'smallest subnormal');
    assert.equal(v[5], 1023 * 2 ** -24, 'largest subnormal');
    assert.equal(v[6], 2 ** -14, 'smallest normal');
    assert.equal(v[7], 65504, 'largest finite');
    assert.equal(v[8], Math.fround(0.333251953125));
    assert.ok(Object.is(v[9], 0) && Object.is(v[10], -0), 'signed zeros');
    assert.ok(Number.isNaN(f16([0x7e00]).item()), 'NaN');
  });

  it('widens bfloat16 bit patterns to float32', () => {
    const v = Array.from(bf16([0x3f80, 0xc040, 0x7f80, 0xff80, 0x0001, 0x4049, 0x8000]).dataSync() as Float32Array);
    assert.deepEqual(v.slice(0, 4), [1, -3, Infinity, -Infinity]);
    assert.equal(v[4], 2 ** -133, 'subnormal');
    assert.equal(v[5], 3.140625);
    assert.ok(Object.is(v[6], -0));
    assert.ok(Number.isNaN(bf16([0x7fc0]).item()));
    assert.deepEqual(fromStorage(new Uint8Array(new Uint16Array([0x3f80, 0x4000, 0x4040, 0x4080]).buffer), 'bfloat16', [2, 2]).toArray(), [
      [1, 2],
      [3, 4],
    ]);
  });

  it('reads every compute dtype and copies the bytes (any byte offset)', () => {
    const f = new Float32Array([1.5, -2]);
    assert.deepEqual(fromStorage(new Uint8Array(f.buffer), 'float32', [2]).toArray(), [1.5, -2]);
    const d = new Float64Array([0.1]);
    assert.deepEqual(fromStorage(new Uint8Array(d.buffer), 'float64', [1]).toArray(), [0.1]);
    const i = new Int32Array([-3, 4]);
    assert.deepEqual(fromStorage(new Uint8Array(i.buffer), 'int32', [1, 2]).toArray(), [[-3, 4]]);
    // A view at an odd offset (as inside a safetensors file).
    const buf = new Uint8Array(9);
    buf.set(new Uint8Array(new Float32Array([7, 8]).buffer), 1);
    const view = buf.subarray(1);
    const t = fromStorage(view, 'float32', [2]);
    assert.deepEqual(t.toArray(), [7, 8]);
    buf.fill(0);
    assert.deepEqual(t.toArray(), [7, 8], 'the bytes were copied');
    const h = new Uint8Array(5);
    h.set(new Uint8Array(new Uint16Array([0x3c00, 0x4000]).buffer), 1);
    assert.deepEqual(fromStorage(h.subarray(1), 'float16', [2]).toArray(), [1, 2]);
  });

  it('byte-length and dtype errors', () => {
    assert.throws(() => fromStorage(new Uint8Array(3), 'float16', [2]), /fromStorage: 3 bytes do not hold float16\[2\] \(4 bytes\)/);
    assert.throws(() => fromStorage(new Uint8Array(8), 'bfloat16', [2, 3]), /8 bytes do not hold bfloat16\[2, 3\] \(12 bytes\)/);
    assert.throws(() => fromStorage(new Uint8Array(4), 'int64', [1]), /4 bytes do not hold int64\[1\] \(8 bytes\)/);
    assert.throws(() => fromStorage(new Uint8Array(4), 'float8' as never, [4]), /fromStorage: unknown storage dtype 'float8'/);
  });
});
