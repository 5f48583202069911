import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { concat, stack, tensor } from '../src/index.js';
import { checkGrad, checkLowering, rnd, rndInt } from './helpers.js';

describe('slice, index, set', () => {
  it('known answers, including negative steps', () => {
    const x = tensor([0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(x.slice([{ start: 1, end: 6, step: 2 }]).toArray(), [1, 3, 5]);
    assert.deepEqual(x.slice([{ step: -2 }]).toArray(), [6, 4, 2, 0]);
    assert.deepEqual(x.slice([{ start: -2 }]).toArray(), [5, 6]);
    assert.deepEqual(x.slice([{ start: 5, end: 1, step: -1 }]).toArray(), [5, 4, 3, 2]);
    const m = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(m.index([1]).toArray(), [4, 5, 6]);
    assert.deepEqual(m.index([null, -1]).toArray(), [3, 6]);
    assert.deepEqual(m.set([null, 1], 0).toArray(), [
      [1, 0, 3],
      [4, 0, 6],
    ]);
    assert.deepEqual(m.set([1, { start: 0, end: 2 }], tensor([[7, 8]])).toArray(), [
      [1, 2, 3],
      [7, 8, 6],
    ]);
    assert.deepEqual(
      m.toArray(),
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      'set is functional',
    );
  });
  it('lowering matches the JS kernel', () => {
    const x = rnd([4, 5, 6], 1);
    checkLowering((t) => t.slice([{ start: 1, end: 3 }, null, { start: -4, step: 2 }]), [x]);
    checkLowering((t) => t.slice([{ step: -1 }, { start: 4, end: 0, step: -2 }]), [x]);
    checkLowering((t) => t.slice([{ start: 2, end: 2 }]), [x]);
    checkLowering((t, v) => t.set([1, null, { start: 0, end: 6, step: 3 }], v), [x, rnd([1, 5, 2], 2)]);
    checkLowering((t) => t.set([null, { start: -2 }], 0), [x]);
  });
  it('VJPs match finite differences', () => {
    const x = rnd([3, 4], 3);
    checkGrad((t) => t.slice([{ start: 1 }, { start: 0, end: 4, step: 2 }]), [x]);
    checkGrad((t) => t.slice([{ step: -1 }]), [x]);
    checkGrad((t, v) => t.set([{ start: 1, end: 3 }, 2], v), [x, rnd([2, 1], 4)]);
    checkGrad((t, v) => t.set([null, { step: 2 }], v), [x, rnd([3, 2], 5)]);
  });
});

describe('concat, stack, pad', () => {
  it('known answers', () => {
    assert.deepEqual(
      concat(
        [
          tensor([[1, 2]]),
          tensor([
            [3, 4],
            [5, 6],
          ]),
        ],
        0,
      ).toArray(),
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
    );
    assert.deepEqual(stack([tensor([1, 2]), tensor([3, 4])], 1).toArray(), [
      [1, 3],
      [2, 4],
    ]);
    assert.deepEqual(
      tensor([[1]])
        .pad(
          [
            [1, 0],
            [0, 2],
          ],
          9,
        )
        .toArray(),
      [
        [9, 9, 9],
        [1, 9, 9],
      ],
    );
  });
  it('lowering and VJPs', () => {
    const a = rnd([2, 3], 1);
    const b = rnd([2, 1], 2);
    const c = rnd([2, 0], 3);
    checkLowering((x, y, z) => concat([x, y, z], -1), [a, b, c]);
    checkLowering((x, y) => stack([x, y], 0), [a, rnd([2, 3], 4)]);
    checkLowering(
      (x) =>
        x.pad(
          [
            [1, 2],
            [0, 3],
          ],
          -1.5,
        ),
      [a],
    );
    checkGrad((x, y) => concat([x, y], 1), [a, b]);
    checkGrad((x, y) => stack([x, y], -1), [a, rnd([2, 3], 5)]);
    checkGrad(
      (x) =>
        x.pad([
          [1, 0],
          [2, 1],
        ]),
      [a],
    );
    assert.throws(() => concat([a, rnd([3, 3], 1)], 1), /concat: shapes \[2, 3\], \[3, 3\] differ outside axis 1/);
  });
});

describe('gather, gather_elements, scatter, scatter_add', () => {
  it('known answers', () => {
    const emb = tensor([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
    assert.deepEqual(emb.gather(tensor([[2, 0]], undefined, 'int64')).toArray(), [
      [
        [2, 2],
        [0, 0],
      ],
    ]);
    assert.deepEqual(emb.gather(tensor([-1], undefined, 'int32')).toArray(), [[2, 2]]);
    const x = tensor([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(
      x
        .gatherElements(
          tensor(
            [
              [1, 0],
              [0, 0],
            ],
            undefined,
            'int64',
          ),
          1,
        )
        .toArray(),
      [
        [2, 1],
        [3, 3],
      ],
    );
    assert.deepEqual(x.scatter(tensor([[1], [0]], undefined, 'int64'), tensor([[9], [8]]), 1).toArray(), [
      [1, 9],
      [8, 4],
    ]);
    assert.deepEqual(x.scatterAdd(tensor([[1, 1]], undefined, 'int64'), tensor([[5, 6]]), 0).toArray(), [
      [1, 2],
      [8, 10],
    ]);
    assert.throws(() => emb.gather(tensor([3], undefined, 'int64')), /gather: index 3 is out of range for an axis of size 3/);
  });
  it('lowering matches the JS kernel', () => {
    const x = rnd([5, 4, 3], 1);
    checkLowering((t, i) => t.gather(i, 0), [x, rndInt([2, 3], 5, 2)]);
    checkLowering((t, i) => t.gather(i, -1), [x, rndInt([4], 3, 3, 'int32')]);
    checkLowering((t, i) => t.gatherElements(i, 1), [x, rndInt([5, 2, 3], 4, 4)]);
    checkLowering((t, i, u) => t.scatter(i, u, 0), [x, tensor([[[4, 0, 1]], [[2, 3, 0]]], undefined, 'int64'), rnd([2, 1, 3], 5)]);
    checkLowering((t, i, u) => t.scatterAdd(i, u, 1), [x, rndInt([5, 6, 3], 4, 6), rnd([5, 6, 3], 7)]);
  });
  it('VJPs match finite differences', () => {
    const x = rnd([5, 3], 1);
    checkGrad(
      (t) =>
        t.gather(
          tensor(
            [
              [0, 4],
              [4, 4],
            ],
            undefined,
            'int64',
          ),
          0,
        ),
      [x],
    );
    checkGrad((t) => t.gather(tensor([2, -1], undefined, 'int64'), 1), [x]);
    checkGrad((t) => t.gatherElements(tensor([[1], [0], [2], [2], [0]], undefined, 'int64'), 1), [x]);
    checkGrad((t, u) => t.scatter(tensor([[1, 2, 0]], undefined, 'int64'), u, 0), [x, rnd([1, 3], 2)]);
    checkGrad(
      (t, u) =>
        t.scatterAdd(
          tensor(
            [
              [1, 1, 0],
              [1, 0, 0],
            ],
            undefined,
            'int64',
          ),
          u,
          0,
        ),
      [x, rnd([2, 3], 3)],
    );
  });
});

describe('triu/tril, cumsum, topk', () => {
  it('known answers', () => {
    const ones = tensor([
      [1, 1, 1],
      [1, 1, 1],
      [1, 1, 1],
    ]);
    assert.deepEqual(ones.triu(1).toArray(), [
      [0, 1, 1],
      [0, 0, 1],
      [0, 0, 0],
    ]);
    assert.deepEqual(ones.tril().toArray(), [
      [1, 0, 0],
      [1, 1, 0],
      [1, 1, 1],
    ]);
    assert.deepEqual(tensor([1, 2, 3]).cumsum(0).toArray(), [1, 3, 6]);
    assert.deepEqual(tensor([1, 2, 3]).cumsum(0, { exclusive: true, reverse: true }).toArray(), [5, 3, 0]);
    const { values, indices } = tensor([3, 1, 3, 2]).topk(3);
    assert.deepEqual(values.toArray(), [3, 3, 2]);
    assert.deepEqual(indices.toArray(), [0n, 2n, 3n]);
  });
  it('lowering matches the JS kernel', () => {
    const x = rnd([2, 4, 5], 1);
    checkLowering((t) => [t.triu(), t.triu(-1), t.tril(2)], [x]);
    checkLowering((t) => [t.cumsum(1), t.cumsum(-1, { exclusive: true }), t.cumsum(0, { reverse: true })], [x]);
    checkLowering(
      (t) => {
        const r = t.topk(3, -1);
        return [r.values, r.indices];
      },
      [x],
    );
    checkLowering(
      (t) => {
        const r = t.topk(2, 1, false);
        return [r.values, r.indices];
      },
      [x],
    );
    // Ties break toward the lower index on both backends.
    checkLowering(
      (t) => t.topk(2).indices,
      [
        tensor([
          [1, 5, 5, 1],
          [2, 2, 2, 2],
        ]),
      ],
    );
  });
  it('VJPs match finite differences', () => {
    const x = rnd([3, 4], 2);
    checkGrad((t) => t.triu(), [x]);
    checkGrad((t) => t.tril(-1), [x]);
    checkGrad((t) => t.cumsum(1), [x]);
    checkGrad((t) => t.cumsum(0, { exclusive: true, reverse: true }), [x]);
    checkGrad((t) => t.topk(2, -1).values, [x]);
  });
});
