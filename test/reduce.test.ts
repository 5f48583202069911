import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, grad, jit, scalar, tensor, zeros } from '../src/index.js';
import { assertClose, checkGrad, checkLowering, numbers, rnd, rndInt, withBackend } from './helpers.js';

const BACKENDS = [
  ['js', 0],
  ['ort', 0], // every eager op through a one-node ORT session
] as const;

/** Runs `f` eagerly on the JS kernels, eagerly on ORT, and under jit on ORT; asserts all agree on `expected`. */
function everywhere(f: (x: Tensor) => Tensor, x: Tensor, expected: unknown, what: string): void {
  for (const [backend, th] of BACKENDS) assert.deepEqual(withBackend(backend, () => f(x), th).toArray(), expected, `${what} (${backend})`);
  assert.deepEqual(jit(f)(x).toArray(), expected, `${what} (jit)`);
}

describe('reductions: values', () => {
  const x = tensor([
    [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 11, 12],
    ],
    [
      [-1, -2, -3, -4],
      [0, 20, 0, 0],
      [4, 3, 2, 1],
    ],
  ]);

  it('sum over single, multiple, negative and all axes', () => {
    everywhere(
      (t) => t.sum(0),
      x,
      [
        [0, 0, 0, 0],
        [5, 26, 7, 8],
        [13, 13, 13, 13],
      ],
      'sum(0)',
    );
    everywhere(
      (t) => t.sum(-1),
      x,
      [
        [10, 26, 42],
        [-10, 20, 10],
      ],
      'sum(-1)',
    );
    everywhere((t) => t.sum([0, 2]), x, [0, 46, 52], 'sum([0, 2])');
    everywhere((t) => t.sum([-1, 0]), x, [0, 46, 52], 'sum([-1, 0]) (order and sign do not matter)');
    everywhere(
      (t) => t.sum([1, 1, -2]),
      x,
      [
        [15, 18, 21, 24],
        [3, 21, -1, -3],
      ],
      'duplicate axes count once',
    );
    everywhere((t) => t.sum(), x, 98, 'sum() over all axes');
    assert.deepEqual(x.sum().shape, []);
    assert.deepEqual(x.sum([0, 1, 2]).shape, []);
  });

  it('keepdims keeps reduced axes with size 1', () => {
    everywhere((t) => t.sum([0, 2], true), x, [[[0], [46], [52]]], 'sum keepdims');
    everywhere((t) => t.max(undefined, true), x, [[[20]]], 'max() keepdims');
    assert.deepEqual(x.mean(1, true).shape, [2, 1, 4]);
    assert.deepEqual(x.min([-1, -3], true).shape, [1, 3, 1]);
  });

  it('mean, max, min', () => {
    everywhere(
      (t) => t.mean(-1),
      x,
      [
        [2.5, 6.5, 10.5],
        [-2.5, 5, 2.5],
      ],
      'mean(-1)',
    );
    everywhere((t) => t.mean([0, 1]), x, [3, 6.5, Math.fround(20 / 6), 3.5], 'mean([0, 1])');
    everywhere(
      (t) => t.max(1),
      x,
      [
        [9, 10, 11, 12],
        [4, 20, 2, 1],
      ],
      'max(1)',
    );
    everywhere(
      (t) => t.min(-2),
      x,
      [
        [1, 2, 3, 4],
        [-1, -2, -3, -4],
      ],
      'min(-2)',
    );
    everywhere((t) => t.max([0, 1]), x, [9, 20, 11, 12], 'max([0, 1])');
    everywhere((t) => t.min(), x, -4, 'min()');
    assert.equal(x.mean().item(), Math.fround(98 / 24));
  });

  it('integer dtypes keep their dtype', () => {
    const i32 = x.cast('int32');
    assert.equal(i32.sum(0).dtype, 'int32');
    everywhere(
      (t) => t.sum(-1),
      i32,
      [
        [10, 26, 42],
        [-10, 20, 10],
      ],
      'int32 sum',
    );
    const i64 = x.cast('int64');
    everywhere(
      (t) => t.max(1),
      i64,
      [
        [9n, 10n, 11n, 12n],
        [4n, 20n, 2n, 1n],
      ],
      'int64 max',
    );
    everywhere((t) => t.min([0, 1, 2]), i64, -4n, 'int64 min');
    assert.throws(() => i32.mean(), /mean: expects a float tensor, got int32; cast first/);
    assert.throws(() => tensor([true, false]).sum(), /sum: cast bool to a number type first/);
  });

  it('size-1 dims and rank 0', () => {
    const y = tensor([[[1], [2], [3]]]); // [1, 3, 1]
    everywhere((t) => t.sum(0), y, [[1], [2], [3]], 'sum over a size-1 axis');
    everywhere((t) => t.max([0, 2]), y, [1, 2, 3], 'max over size-1 axes');
    everywhere((t) => t.mean(2, true), y, [[[1], [2], [3]]], 'mean over a size-1 axis, keepdims');
    const s = scalar(4);
    for (const op of ['sum', 'mean', 'max', 'min'] as const) everywhere((t) => t[op](), s, 4, `${op} of a rank-0 tensor`);
    assert.throws(() => s.sum(0), /axis 0 is out of range for a tensor of rank 0/);
  });

  it('empty dims: sum over an empty axis is 0, mean NaN, max/min refuse', () => {
    const e = zeros([2, 0, 3]);
    everywhere(
      (t) => t.sum(1),
      e,
      [
        [0, 0, 0],
        [0, 0, 0],
      ],
      'sum over an empty axis',
    );
    everywhere((t) => t.sum(), e, 0, 'sum of an empty tensor');
    everywhere((t) => t.sum([0, 1], true), e, [[[0, 0, 0]]], 'sum over an empty axis, keepdims');
    everywhere((t) => t.sum(1), zeros([2, 0], 'int64'), [0n, 0n], 'int64 sum over an empty axis');
    everywhere((t) => t.sum(2), e, [[], []], 'sum over a non-empty axis of an empty tensor');
    everywhere((t) => t.max(-1), e, [[], []], 'max over a non-empty axis of an empty tensor');
    // The mean of no elements is 0/0 (NaN, as numpy and PyTorch give) on every backend.
    for (const [backend, th] of BACKENDS) {
      const m = numbers(withBackend(backend, () => e.mean(1), th));
      assert.ok(m.length === 6 && m.every((v) => Number.isNaN(v)), `mean over an empty axis (${backend}): ${m}`);
    }
    assert.ok(
      numbers(jit((t: Tensor) => t.mean([0, 1]))(e)).every((v) => Number.isNaN(v)),
      'mean (jit)',
    );
    assert.throws(() => e.max(1), /max: cannot reduce over an empty axis/);
    assert.throws(() => e.min(), /min: cannot reduce over an empty axis/);
  });

  it('errors name the op and the axis', () => {
    assert.throws(() => rnd([2, 3]).sum(2), /reduce: axis 2 is out of range for a tensor of rank 2/);
    assert.throws(() => rnd([2, 3]).max(-3), /axis -3 is out of range for a tensor of rank 2/);
    assert.throws(() => rnd([2, 3]).mean([0, 5]), /axis 5 is out of range/);
  });
});

describe('argmax / argmin', () => {
  const x = tensor([
    [3, 7, 7, 1],
    [5, 5, 5, 5],
    [-2, -9, 0, -9],
  ]);

  it('index of the first extremum on ties, int64', () => {
    for (const [backend, th] of BACKENDS)
      withBackend(
        backend,
        () => {
          const am = x.argmax(1);
          assert.equal(am.dtype, 'int64');
          assert.deepEqual(am.toArray(), [1n, 0n, 2n], `argmax(1) ${backend}`);
          assert.deepEqual(x.argmin(-1).toArray(), [3n, 0n, 1n], `argmin(-1) ${backend}`);
          assert.deepEqual(x.argmax(0).toArray(), [1n, 0n, 0n, 1n], `argmax(0) ${backend}`);
          assert.deepEqual(x.argmin(0, true).toArray(), [[2n, 2n, 2n, 2n]], `argmin(0, keepdims) ${backend}`);
          assert.deepEqual(x.argmax(-1, true).shape, [3, 1]);
          assert.deepEqual(tensor([4, 4, 4]).argmax().toArray(), 0n, `all equal ${backend}`);
          assert.deepEqual(
            tensor([[1], [2]])
              .argmin(1)
              .toArray(),
            [0n, 0n],
            `size-1 axis ${backend}`,
          );
        },
        th,
      );
    assert.deepEqual(
      jit((t: Tensor) => [t.argmax(1), t.argmin(0)])(x).map((t) => t.toArray()),
      [
        [1n, 0n, 2n],
        [2n, 2n, 2n, 2n],
      ],
    );
  });

  it('integer inputs and lowering', () => {
    checkLowering((t) => [t.argmax(0), t.argmax(-1, true), t.argmin(1), t.argmin(0, true)], [rnd([3, 4, 5], 1)]);
    checkLowering((t) => [t.argmax(1), t.argmin(0)], [rndInt([4, 6], 3, 2, 'int64')]);
    checkLowering((t) => [t.argmax(1), t.argmin(0)], [rndInt([4, 6], 3, 3, 'int32')]);
    checkLowering((t) => t.argmax(0), [zeros([3, 0])]);
  });

  it('errors', () => {
    assert.throws(() => zeros([2, 0]).argmax(1), /argmax: cannot reduce over an empty axis/);
    assert.throws(() => rnd([2, 3]).argmin(2), /argmin: axis 2 is out of range for a tensor of rank 2/);
    assert.throws(() => scalar(1).argmax(), /argmax: axis -1 is out of range for a tensor of rank 0/);
  });

  it('no gradient flows through the index, and none is needed', () => {
    // Picking the max with gather uses argmax as an index only: the gradient lands on the chosen entry.
    const g = grad((t: Tensor) => t.gather(t.argmax(0, true), 0).sum())(tensor([1, 3, 2]));
    assert.deepEqual(g.toArray(), [0, 1, 0]);
  });
});

describe('reductions: lowering', () => {
  it('ORT lowering matches the JS kernel for every axes / keepdims combination', () => {
    const x = rnd([2, 3, 4], 1);
    for (const axes of [undefined, 0, 1, -1, [0, 2], [-1, -2], [0, 1, 2]] as (number | number[] | undefined)[])
      for (const keep of [false, true])
        checkLowering((t) => [t.sum(axes, keep), t.mean(axes, keep), t.max(axes, keep), t.min(axes, keep)], [x]);
  });

  it('other dtypes, size-1 and empty dims', () => {
    checkLowering((t) => [t.sum(1), t.mean([0, 2], true), t.max(-1), t.min()], [rnd([3, 2, 5], 2, 'float64')]);
    checkLowering((t) => [t.sum(0), t.max(1, true), t.min()], [rndInt([4, 3], 10, 3, 'int32')]);
    checkLowering((t) => [t.sum(-1), t.max(0), t.min(1, true)], [rndInt([4, 3], 10, 4, 'int64')]);
    checkLowering((t) => [t.sum(0), t.mean([0, 2]), t.max(2, true)], [rnd([1, 3, 1], 5)]);
    checkLowering((t) => [t.sum(1), t.sum(), t.sum(0, true), t.max(2)], [rnd([3, 0, 2], 6)]);
  });
});

describe('reductions: gradients', () => {
  it('VJPs match finite differences', () => {
    const x = rnd([3, 4, 2], 3);
    for (const axes of [undefined, 0, -1, [0, 2], [1]] as (number | number[] | undefined)[])
      for (const keep of [false, true]) {
        checkGrad((t) => t.sum(axes, keep), [x]);
        checkGrad((t) => t.mean(axes, keep), [x]);
        checkGrad((t) => t.max(axes, keep), [x]);
        checkGrad((t) => t.min(axes, keep), [x]);
      }
    checkGrad((t) => t.sum(0), [rnd([1, 3], 4)]);
    checkGrad((t) => t.max(), [rnd([], 5)]);
  });

  it('max/min split the gradient evenly between tied extrema', () => {
    const ties = tensor([
      [1, 3, 3],
      [2, 0, 2],
      [5, 5, 5],
    ]);
    for (const backend of ['js', 'ort'] as const)
      withBackend(backend, () => {
        assert.deepEqual(
          grad((t: Tensor) => t.max(1).sum())(ties).toArray(),
          [[0, 0.5, 0.5], [0.5, 0, 0.5], [1 / 3, 1 / 3, 1 / 3].map((v) => Math.fround(v))],
          `max ${backend}`,
        );
        assert.deepEqual(
          grad((t: Tensor) => t.min(1, true).sum())(ties).toArray(),
          [[1, 0, 0], [0, 1, 0], [1 / 3, 1 / 3, 1 / 3].map((v) => Math.fround(v))],
          `min ${backend}`,
        );
        // Over all axes: three 5s tie for the max.
        assertClose(
          grad((t: Tensor) => t.max().mul(6))(ties),
          tensor([
            [0, 0, 0],
            [0, 0, 0],
            [2, 2, 2],
          ]),
          { what: `max() ${backend}` },
        );
        // The incoming cotangent is scaled, not replaced.
        const w = tensor([1, 10, 100]);
        assertClose(
          grad((t: Tensor) => t.min(0).mul(w).sum())(ties),
          tensor([
            [1, 0, 0],
            [0, 10, 100],
            [0, 0, 0],
          ]),
          { what: `weighted min ${backend}` },
        );
      });
  });

  it('mean divides by the number of reduced elements', () => {
    const g = grad((t: Tensor) => t.mean([0, 2]).sum())(rnd([2, 3, 5], 7));
    assertClose(g, zeros([2, 3, 5]).add(0.1));
  });
});
