import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { concat, grad, jit, stack, tensor, type Tensor } from '../src/index.js';
import { checkGrad, checkLowering, numbers, rnd, rndInt, withBackend } from './helpers.js';

const i64 = (v: number | number[] | number[][] | number[][][], shape?: number[]): Tensor => tensor(v, shape, 'int64');

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

describe('split', () => {
  it('known answers: equal pieces, listed sizes, one piece', () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    assert.deepEqual(
      x.split(2).map((p) => p.toArray()),
      [
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        [[7, 8, 9]],
      ],
    );
    assert.deepEqual(
      x.split([1, 0, 2], -1).map((p) => p.shape),
      [
        [3, 1],
        [3, 0],
        [3, 2],
      ],
    );
    assert.deepEqual(x.split([1, 0, 2], 1)[2]!.toArray(), [
      [2, 3],
      [5, 6],
      [8, 9],
    ]);
    assert.equal(x.split(3)[0], x, 'one piece is the tensor itself');
    assert.throws(() => x.split([1, 1]), /split: sizes \[1,1\] add up to 2, but axis 0 of \[3, 3\] has 3/);
    assert.throws(() => x.split(0), /positive integer/);
  });
  it('lowering and VJPs (a piece without gradient gets zeros)', () => {
    const a = rnd([4, 5, 3], 1);
    checkLowering((x) => x.split([1, 3], 0), [a]);
    checkLowering((x) => x.split(2, 1), [a]);
    checkGrad((x) => x.split([2, 1, 2], 1)[1]!, [a]);
    checkGrad(
      (x) => {
        const [p, , q] = x.split(1, 2);
        return p!.mul(q!);
      },
      [a],
    );
  });
  it('gradients of pieces weighted differently', () => {
    const x = rnd([8, 6], 2);
    const f = (t: Tensor) =>
      t
        .split(2)
        .map((p, i) =>
          p
            .square()
            .sum()
            .mul(i + 1),
        )
        .reduce((u, v) => u.add(v));
    const g = grad(f)(x) as Tensor;
    const want = numbers(x).map((v, i) => 2 * v * (Math.floor(i / 12) + 1));
    numbers(g).forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `${i}: ${v} vs ${want[i]}`));
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

describe('slice and set: edge cases', () => {
  const x = rnd([4, 5, 6], 11);
  it('known answers for strided and reversed set', () => {
    const v = tensor([0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(v.set([{ step: -2 }], tensor([10, 20, 30, 40])).toArray(), [40, 1, 30, 3, 20, 5, 10]);
    assert.deepEqual(v.set([{ start: 1, step: 3 }], -1).toArray(), [0, -1, 2, 3, -1, 5, 6]);
    assert.deepEqual(v.slice([{ start: 5, end: 0, step: -2 }]).toArray(), [5, 3, 1]);
    assert.deepEqual(v.slice([{ start: -10, step: -1 }]).toArray(), []);
    assert.deepEqual(v.slice([{ start: 10, end: 20 }]).toArray(), []);
  });
  it('empty slices select nothing under jit too', () => {
    // A negative-step slice that starts before index 0 is empty; ONNX must not read -1 as "last".
    const v = tensor([0, 1, 2, 3, 4, 5, 6]);
    const f = (t: Tensor) => t.slice([{ start: -10, step: -1 }]).sum();
    assert.equal(jit(f)(v).item(), 0);
    checkLowering((t) => [t.slice([{ start: -10, step: -1 }]), t.slice([null, { start: -10, step: -2 }]).sum()], [x]);
    checkLowering((t) => t.slice([null, { step: -1 }]), [rnd([3, 0, 2], 1)]);
    checkLowering((t) => [t.set([{ start: 2, end: 2 }], 1), t.set([{ start: -10, step: -1 }], 1)], [x]);
  });
  it('lowering matches the JS kernel: strides, reversal, dtypes, size-1 dims', () => {
    checkLowering(
      (t) =>
        t.slice([
          { start: 3, end: -10, step: -2 },
          { start: 1, step: 3 },
          { start: 5, end: 0, step: -3 },
        ]),
      [x],
    );
    checkLowering((t) => t.slice([null, null, { start: -1, step: -5 }]), [x]);
    checkLowering((t) => t.slice([{ start: 0, end: 1 }, { step: -1 }]), [rnd([1, 3, 1], 2)]);
    checkLowering(
      (t) => [t.gt(0).slice([{ step: -1 }]), t.cast('int64').slice([{ step: 2 }]), t.cast('int32').slice([null, { start: -2 }])],
      [x],
    );
    checkLowering((t, v) => t.set([{ step: -2 }, { start: 4, end: 0, step: -3 }, { start: 1, step: 2 }], v), [x, rnd([2, 2, 3], 3)]);
    checkLowering((t, v) => t.set([{ step: 3 }, null, { step: -1 }], v), [x, rnd([2, 5, 6], 4)]);
    checkLowering((t, v) => t.set([null, 4, { start: 1, end: 5 }], v), [x, rnd([4, 1, 4], 5)]);
    checkLowering((t, v) => t.set([], v), [x, rnd([4, 5, 6], 6)]);
    checkLowering(
      (t) => [t.gt(0).set([1, { step: 2 }], 1), t.cast('int64').set([null, -1], 7), t.cast('int32').set([{ step: -3 }], -2)],
      [x],
    );
    checkLowering((t, v) => t.set([null, { start: 100, end: 300 }], v), [rnd([300, 400], 7), rnd([300, 200], 8)]);
  });
  it('VJPs match finite differences: strided, reversed, 3-D', () => {
    const y = rnd([3, 5, 4], 12);
    checkGrad((t) => t.slice([{ step: -2 }, { start: 4, end: 0, step: -3 }, { start: 1, step: 2 }]), [y]);
    checkGrad((t) => t.slice([null, { start: 1, step: 3 }]), [y]);
    checkGrad(
      (t) =>
        t.slice([
          { start: 2, end: 3 },
          { start: -1, step: -1 },
        ]),
      [y],
    );
    checkGrad((t, v) => t.set([{ step: -2 }, null, { start: 3, end: 0, step: -2 }], v), [y, rnd([2, 5, 2], 13)]);
    checkGrad((t, v) => t.set([1, { start: 1, end: 4 }], v), [y, rnd([1, 3, 4], 14)]);
    // Broadcast value: the gradient sums over the broadcast positions.
    checkGrad((t, v) => t.set([null, { step: 2 }], v), [y, rnd([4], 15)]);
  });
  it('errors name the op and shapes', () => {
    assert.throws(() => x.slice([9]), /slice: index 9 is out of range for axis 0 of size 4/);
    assert.throws(() => x.slice([{ step: 0 }]), /slice: step must be a non-zero integer/);
    assert.throws(() => x.set([{ end: 2 }], rnd([3, 5, 6], 1)), /expand/);
  });
});

describe('concat and pad: edge cases', () => {
  it('lowering: negative axes, size-1 and empty inputs, integer and bool dtypes', () => {
    const a = rnd([2, 1, 3], 1);
    checkLowering((x, y, z) => concat([x, y, z], -2), [a, rnd([2, 0, 3], 2), rnd([2, 4, 3], 3)]);
    checkLowering((x, y) => concat([x, y], 0), [rnd([0, 3], 1), rnd([0, 3], 2)]);
    checkLowering((x, y) => [concat([x.cast('int64'), y.cast('int64')], -1), concat([x.gt(0), y.gt(0)], 2)], [a, rnd([2, 1, 2], 4)]);
    checkLowering(
      (x) => [
        x.pad([
          [1, 1],
          [0, 2],
        ]),
        x.cast('int32').pad([[0, 1]], 7),
        x.gt(0).pad([[2, 0]], 1),
      ],
      [rnd([0, 3], 5)],
    );
    checkLowering(
      (x) =>
        x.pad(
          [
            [0, 0],
            [3, 0],
            [0, 0],
          ],
          2.5,
        ),
      [a],
    );
  });
  it('VJPs: several inputs, an empty one, negative axis', () => {
    checkGrad((x, y, z) => concat([x, y, z], -1), [rnd([2, 3], 1), rnd([2, 0], 2), rnd([2, 2], 3)]);
    checkGrad((x, y) => concat([y, x, y], 0), [rnd([1, 3], 4), rnd([2, 3], 5)]);
    checkGrad(
      (x) =>
        x.pad(
          [
            [0, 0],
            [1, 1],
            [2, 0],
          ],
          3,
        ),
      [rnd([2, 1, 3], 6)],
    );
    assert.throws(() => rnd([2]).pad([[-1, 0]]), /pad: pads must be non-negative integers/);
    assert.throws(() => concat([rnd([2]), rnd([2], 1, 'float64')]), /concat: dtype mismatch/);
  });
});

describe('gather and scatter family: edge cases', () => {
  const x = rnd([5, 4, 3], 21);
  it('lowering: negative axes and indices, scalar and empty indices, integer data', () => {
    checkLowering((t, i) => t.gather(i, -2), [x, rndInt([2, 2], 4, 1).sub(2)]);
    checkLowering((t, i) => t.gather(i, 1), [x, i64([3], [])]);
    checkLowering((t, i) => t.gather(i, 0), [x, i64([], [0, 2])]);
    checkLowering((t, i) => t.gather(i, 2), [rnd([5, 0, 3], 2), i64([2, -1])]);
    checkLowering((t, i) => t.cast('int64').mul(7).gather(i, 0), [x, tensor([4, -5, 0], undefined, 'int32')]);
    checkLowering((t, i) => t.gatherElements(i, -1), [x, rndInt([5, 4, 6], 3, 2).sub(1)]);
    // Indices smaller than the data on the other axes (torch.gather semantics).
    checkLowering((t, i) => t.gatherElements(i, 1), [x, rndInt([2, 7, 3], 4, 3)]);
    checkLowering((t, i, u) => t.scatter(i, u, -1), [x, i64([[[2, 0]], [[-1, -3]]]), rnd([2, 1, 2], 4)]);
    checkLowering((t, i, u) => t.scatterAdd(i, u, 1), [x, rndInt([2, 6, 1], 4, 5).sub(2), rnd([2, 6, 1], 6)]);
    checkLowering((t, i, u) => t.cast('int32').scatterAdd(i, u.cast('int32'), 0), [x, rndInt([7, 4, 3], 5, 7), rnd([7, 4, 3], 8).mul(5)]);
  });
  it('known answers: smaller index shapes, duplicates accumulate', () => {
    const z = tensor([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    assert.deepEqual(z.scatterAdd(i64([[2, 2]]), tensor([[1, 2]]), 1).toArray(), [
      [0, 0, 3],
      [0, 0, 0],
    ]);
    assert.deepEqual(
      tensor([
        [1, 2, 3],
        [4, 5, 6],
      ])
        .gatherElements(i64([[-1], [0]]), 1)
        .toArray(),
      [[3], [4]],
    );
  });
  it('VJPs: duplicate and negative indices, negative axes, partial index shapes', () => {
    checkGrad((t) => t.gather(i64([[0, -1, 0]]), -2), [x]);
    checkGrad((t) => t.gather(i64(2, []), 0), [x]);
    checkGrad((t) => t.gather(tensor([1, 1, -3], undefined, 'int32'), 2), [x]);
    checkGrad(
      (t) =>
        t.gatherElements(
          i64([
            [[0], [-1]],
            [[2], [2]],
          ]),
          -1,
        ),
      [x],
    );
    checkGrad((t) => t.gatherElements(rndInt([3, 2, 3], 5, 9), 0), [x]);
    checkGrad((t, u) => t.scatter(i64([[[3, 0, 1]], [[-1, 2, 0]]]), u, 1), [x, rnd([2, 1, 3], 10)]);
    checkGrad((t, u) => t.scatterAdd(i64([[[0], [0], [4]]]), u, 0), [x, rnd([1, 3, 1], 11)]);
  });
  it('errors name the op and shapes', () => {
    assert.throws(() => x.gather(rnd([2])), /gather: indices must be int32 or int64, got float32\[2\]/);
    assert.throws(() => withBackend('js', () => x.gather(i64([-6]), 0)), /gather: index -6 is out of range for an axis of size 5/);
    assert.throws(() => x.gatherElements(i64([[[0]]]), 3), /gather_elements: axis 3 is out of range for a tensor of rank 3/);
    assert.throws(
      () => x.gatherElements(rndInt([6, 1, 1], 2), 1),
      /gather_elements: indices of shape \[6, 1, 1\] do not fit data of shape \[5, 4, 3\]/,
    );
    assert.throws(
      () => x.scatter(i64([[[0]]]), rnd([1, 1, 2]), 0),
      /scatter: updates \[1, 1, 2\] must have the indices' shape \[1, 1, 1\]/,
    );
    assert.throws(() => x.scatterAdd(i64([[0]]), rnd([1, 1]), 0), /scatter_add: indices of shape \[1, 1\] do not fit \[5, 4, 3\]/);
  });
});

describe('triu, cumsum, topk: edge cases', () => {
  const x = rnd([2, 3, 4, 5], 31);
  it('triu lowering: batches, non-square, out-of-range k, every dtype, empty', () => {
    checkLowering((t) => [t.triu(2), t.tril(-2), t.triu(10), t.tril(-10), t.triu(-10)], [x]);
    checkLowering((t) => [t.mul(9).cast('int32').triu(1), t.mul(9).cast('int64').tril(), t.gt(0).triu(), t.cast('float64').tril(1)], [x]);
    checkLowering((t) => t.triu(), [rnd([0, 3], 1)]);
    checkLowering((t) => t.tril(), [rnd([4, 1], 1)]);
    assert.throws(() => rnd([3]).triu(), /triu: expects rank >= 2, got \[3\]/);
  });
  it('cumsum lowering: negative axes, integer dtypes, size-1 and empty axes', () => {
    checkLowering(
      (t) => [t.cumsum(-1, { exclusive: true, reverse: true }), t.cumsum(-3, { reverse: true }), t.cumsum(2, { exclusive: true })],
      [x],
    );
    checkLowering((t) => [t.mul(9).cast('int32').cumsum(1), t.mul(9).cast('int64').cumsum(0, { exclusive: true })], [x]);
    checkLowering((t) => [t.cumsum(1), t.cumsum(0, { reverse: true })], [rnd([1, 0], 1)]);
    assert.throws(() => tensor([true]).cumsum(0), /cumsum: cast bool to a number type first/);
  });
  it('topk lowering: k = 0 and k = n, negative axes, integer dtypes, many ties', () => {
    const both =
      (k: number, axis: number, largest = true) =>
      (t: Tensor) => {
        const r = t.topk(k, axis, largest);
        return [r.values, r.indices];
      };
    checkLowering(both(0, 1), [x]);
    checkLowering(both(5, -1, false), [x]);
    checkLowering(both(2, -3), [x]);
    checkLowering((t) => both(3, 2)(t.mul(3).cast('int32')), [x]);
    checkLowering((t) => both(3, -1, false)(t.mul(3).cast('int64')), [x]);
    // Heavy ties on a long axis (ONNX Runtime switches selection algorithm with k and n).
    const ties = rnd([20, 1000], 3).mul(2).cast('int32').cast('float32');
    for (const k of [1, 5, 300, 1000]) checkLowering(both(k, -1), [ties]);
    checkLowering(both(50, 0, false), [ties.transpose()]);
    assert.throws(() => x.topk(6), /topk: k=6 is out of range for an axis of size 5/);
  });
  it('topk known answers: ties break toward the lower index; NaN ranks highest on the JS kernel', () => {
    const t = tensor([2, 1, 2, 1, 0]);
    const small = t.topk(3, 0, false);
    assert.deepEqual(numbers(small.values), [0, 1, 1]);
    assert.deepEqual(numbers(small.indices), [4, 1, 3]);
    const nan = withBackend('js', () => tensor([1, NaN, 3]).topk(2));
    assert.deepEqual(numbers(nan.indices), [1, 2]);
  });
  it('VJPs: batched triu, cumsum on every axis and mode, topk smallest on a middle axis', () => {
    const y = rnd([2, 3, 4], 32);
    checkGrad((t) => t.triu(1), [y]);
    checkGrad((t) => t.tril(-2), [y]);
    for (const exclusive of [false, true]) for (const reverse of [false, true]) checkGrad((t) => t.cumsum(-2, { exclusive, reverse }), [y]);
    checkGrad((t) => t.topk(2, 1, false).values, [y]);
    checkGrad((t) => t.topk(4, -1).values, [y]);
  });
});
