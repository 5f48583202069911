import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { grad, tensor } from '../src/index.js';
import { checkGrad, checkLowering, rnd, withBackend } from './helpers.js';

describe('reductions', () => {
  it('known answers', () => {
    const x = tensor([
      [1, 5, 3],
      [4, 2, 6],
    ]);
    assert.deepEqual(x.sum(0).toArray(), [5, 7, 9]);
    assert.deepEqual(x.mean(-1, true).toArray(), [[3], [4]]);
    assert.equal(x.max().item(), 6);
    assert.deepEqual(x.min([0, 1], true).toArray(), [[1]]);
    assert.deepEqual(x.argmax(1).toArray(), [1n, 2n]);
    assert.deepEqual(tensor([2, 7, 7, 1]).argmax().toArray(), 1n, 'first index on ties');
    assert.deepEqual(tensor([3, 1, 1]).argmin(0).toArray(), 1n);
    assert.deepEqual(tensor([], [0, 3]).sum(0).toArray(), [0, 0, 0], 'sum over an empty axis is 0');
  });
  it('lowering matches the JS kernel', () => {
    const x = rnd([2, 3, 4], 1);
    for (const axes of [undefined, 0, -1, [0, 2], [1]] as const)
      for (const keep of [false, true])
        checkLowering(
          (t) => [
            t.sum(axes as number[] | undefined, keep),
            t.mean(axes as number[] | undefined, keep),
            t.max(axes as number[] | undefined, keep),
            t.min(axes as number[] | undefined, keep),
          ],
          [x],
        );
    checkLowering((t) => [t.argmax(0), t.argmax(-1, true), t.argmin(1)], [x]);
    checkLowering((t) => t.sum(1), [rnd([3, 0, 2], 2)]);
    checkLowering(
      (t) => t.argmax(-1),
      [
        tensor([
          [1, 3, 3],
          [2, 2, 0],
        ]),
      ],
    );
  });
  it('VJPs match finite differences (ties split evenly)', () => {
    const x = rnd([3, 4], 3);
    checkGrad((t) => t.sum(1), [x]);
    checkGrad((t) => t.mean([0, 1], true), [x]);
    checkGrad((t) => t.max(-1), [x]);
    checkGrad((t) => t.min(0, true), [x]);
    const ties = tensor([
      [1, 3, 3],
      [2, 0, 2],
    ]);
    const expected = [
      [0, 0.5, 0.5],
      [0.5, 0, 0.5],
    ];
    for (const backend of ['js', 'ort'] as const)
      assert.deepEqual(withBackend(backend, () => grad((t: typeof ties) => t.max(1).sum())(ties)).toArray(), expected, backend);
  });
  it('errors', () => {
    assert.throws(() => rnd([2]).sum(3), /axis 3 is out of range for a tensor of rank 1/);
    assert.throws(() => tensor([1, 2], undefined, 'int32').mean(), /mean: expects a float tensor/);
  });
});

describe('matmul and layout ops', () => {
  it('matmul shapes: 2-D, batched, broadcast, 1-D', () => {
    const cases: [number[], number[], number[]][] = [
      [
        [3, 4],
        [4, 5],
        [3, 5],
      ],
      [
        [2, 3, 4],
        [2, 4, 5],
        [2, 3, 5],
      ],
      [
        [2, 1, 3, 4],
        [5, 4, 2],
        [2, 5, 3, 2],
      ],
      [[4], [4, 5], [5]],
      [[3, 4], [4], [3]],
      [[4], [4], []],
      [[2, 3, 4], [4], [2, 3]],
      [[4], [2, 4, 5], [2, 5]],
    ];
    cases.forEach(([a, b, out], i) => {
      const [r] = checkLowering((x, y) => x.matmul(y), [rnd(a, i), rnd(b, i + 50)], { atol: 1e-4 });
      assert.deepEqual(r!.shape, out);
      checkGrad((x, y) => x.matmul(y), [rnd(a, i), rnd(b, i + 50)]);
    });
    assert.deepEqual(
      tensor([
        [1, 2],
        [3, 4],
      ])
        .matmul(tensor([[5], [6]]))
        .toArray(),
      [[17], [39]],
    );
    assert.throws(() => rnd([2, 3]).matmul(rnd([4, 5])), /matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\] \(3 vs 4\)/);
  });
  it('reshape, permute, transpose, expand, squeeze', () => {
    const x = rnd([2, 3, 4], 1);
    checkLowering(
      (t) => [t.reshape([4, -1]), t.permute([2, 0, 1]), t.transpose(0, 2), t.expand([5, 2, 3, 4]), t.unsqueeze(1).squeeze(1), t.flatten()],
      [x],
    );
    checkLowering((t) => t.expand([2, 3, 4]), [rnd([3, 1], 2)]);
    checkGrad((t) => t.reshape([6, 4]), [x]);
    checkGrad((t) => t.permute([1, 2, 0]), [x]);
    checkGrad((t) => t.expand([2, 3, 5]), [rnd([3, 1], 3)]);
    checkGrad((t) => t.expand([4, 2, 3]), [rnd([3], 4).reshape([1, 3]).expand([2, 3])]);
    assert.deepEqual(x.reshape([-1, 2]).shape, [12, 2]);
    assert.throws(() => x.reshape([5, -1]), /reshape: cannot reshape \[2, 3, 4\] \(24 elements\) to \[5, -1\]/);
    assert.throws(() => x.permute([0, 0, 1]), /permute/);
    assert.throws(() => x.squeeze(0), /squeeze: axis 0 has size 2/);
  });
});
