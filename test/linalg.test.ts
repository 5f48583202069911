import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, jit, scalar, tensor, zeros } from '../src/index.js';
import { assertClose, checkGrad, checkLowering, rnd, rndInt, withBackend } from './helpers.js';

/** Reference matmul of two 2-D tensors by explicit loops (float64). */
function naive2d(a: Tensor, b: Tensor): number[][] {
  const [m, k] = a.shape as [number, number];
  const n = b.shape[1]!;
  const ad = a.dataSync();
  const bd = b.dataSync();
  return Array.from({ length: m }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let p = 0; p < k; p++) s += Number(ad[i * k + p]) * Number(bd[p * n + j]);
      return s;
    }),
  );
}

describe('matmul', () => {
  it('2-D known answer on every backend', () => {
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const b = tensor([
      [7, 8],
      [9, 10],
      [11, 12],
    ]);
    const expected = [
      [58, 64],
      [139, 154],
    ];
    assert.deepEqual(withBackend('js', () => a.matmul(b)).toArray(), expected);
    assert.deepEqual(withBackend('ort', () => a.matmul(b), 0).toArray(), expected);
    assert.deepEqual(jit((x: Tensor, y: Tensor) => x.matmul(y))(a, b).toArray(), expected);
    assert.deepEqual(a.matmul(b).shape, [2, 2]);
  });

  const cases: [string, number[], number[], number[]][] = [
    ['2-D', [3, 4], [4, 5], [3, 5]],
    ['batched', [2, 3, 4], [2, 4, 5], [2, 3, 5]],
    ['broadcast batch dims', [2, 1, 3, 4], [5, 4, 2], [2, 5, 3, 2]],
    ['batch against a matrix', [2, 3, 4], [4, 5], [2, 3, 5]],
    ['matrix against a batch', [3, 4], [2, 4, 5], [2, 3, 5]],
    ['1-D on the left', [4], [4, 5], [5]],
    ['1-D on the right', [3, 4], [4], [3]],
    ['1-D on both sides', [4], [4], []],
    ['batched and 1-D on the right', [2, 3, 4], [4], [2, 3]],
    ['1-D on the left and batched', [4], [2, 4, 5], [2, 5]],
    ['broadcast 4-D and 1-D', [2, 1, 3, 4], [4], [2, 1, 3]],
    ['size-1 rows and columns', [1, 4], [4, 1], [1, 1]],
  ];

  for (const [name, as, bs, out] of cases)
    it(`${name}: ${JSON.stringify(as)} @ ${JSON.stringify(bs)} -> ${JSON.stringify(out)}`, () => {
      const a = rnd(as, as.length * 7 + 1);
      const b = rnd(bs, bs.length * 7 + 2);
      const [r] = checkLowering((x, y) => x.matmul(y), [a, b], { atol: 1e-4 });
      assert.deepEqual(r!.shape, out);
      checkGrad((x, y) => x.matmul(y), [a, b]);
    });

  it('broadcast batch values: [2,1,3,4] @ [5,4,2] block (i, j) is a[i, 0] @ b[j]', () => {
    const a = rnd([2, 1, 3, 4], 11);
    const b = rnd([5, 4, 2], 12);
    for (const backend of ['js', 'ort'] as const) {
      const c = withBackend(backend, () => a.matmul(b), 0);
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 5; j++) {
          const block = c.index([i, j]);
          assertClose(block, tensor(naive2d(a.index([i, 0]), b.index([j])), [3, 2]), { atol: 1e-5, what: `${backend} block ${i},${j}` });
        }
    }
  });

  it('1-D results are plain dot products', () => {
    const v = tensor([1, 2, 3]);
    const m = tensor([
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    assert.deepEqual(v.matmul(v).toArray(), 14);
    assert.deepEqual(v.matmul(m).toArray(), [4, 5]);
    assert.deepEqual(m.transpose().matmul(v).toArray(), [4, 5]);
  });

  it('other dtypes, empty inner and outer dims', () => {
    checkLowering((x, y) => x.matmul(y), [rnd([3, 4], 1, 'float64'), rnd([2, 4, 5], 2, 'float64')]);
    checkLowering((x, y) => x.matmul(y), [rndInt([3, 4], 5, 1, 'int32'), rndInt([4, 2], 5, 2, 'int32')]);
    checkLowering((x, y) => x.matmul(y), [rndInt([2, 3, 4], 5, 3, 'int64'), rndInt([4, 2], 5, 4, 'int64')]);
    // Inner dim 0: a sum of nothing.
    const [z] = checkLowering((x, y) => x.matmul(y), [zeros([3, 0]), zeros([0, 2])]);
    assert.deepEqual(z!.toArray(), [
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    const [e] = checkLowering((x, y) => x.matmul(y), [zeros([0, 3]), rnd([3, 2], 5)]);
    assert.deepEqual(e!.shape, [0, 2]);
    checkGrad((x, y) => x.matmul(y), [rnd([2, 0], 1), rnd([0, 3], 2)]);
  });

  it('IEEE semantics: 0 * Inf and 0 * NaN give NaN on every backend', () => {
    const a = tensor([[0, 1]]);
    const b = tensor([[Infinity], [1]]);
    const c = tensor([[NaN], [1]]);
    for (const [backend, th] of [
      ['js', 0],
      ['ort', 0],
    ] as const) {
      assert.ok(Number.isNaN(withBackend(backend, () => a.matmul(b), th).item()), `0 * Inf (${backend})`);
      assert.ok(Number.isNaN(withBackend(backend, () => a.matmul(c), th).item()), `0 * NaN (${backend})`);
    }
  });

  it('errors name the op and both shapes', () => {
    assert.throws(() => rnd([2, 3]).matmul(rnd([4, 5])), /matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\] \(3 vs 4\)/);
    assert.throws(() => rnd([3]).matmul(rnd([4])), /matmul: inner dimensions differ: \[3\] @ \[4\]/);
    assert.throws(
      () => rnd([2, 2, 3]).matmul(rnd([3, 3, 1])),
      /matmul: batch dimensions do not broadcast: \[2, 2, 3\] @ \[3, 3, 1\] \(\[2\] vs \[3\]\)/,
    );
    assert.throws(() => scalar(2).matmul(rnd([2])), /matmul: operands must have rank >= 1, got \[\] and \[2\]/);
    assert.throws(() => rnd([2, 3]).matmul(rnd([3, 2], 1, 'float64')), /matmul: dtype mismatch \(float32\[2, 3\] vs float64\[3, 2\]\)/);
    // The same checks apply while tracing.
    assert.throws(() => jit((x: Tensor) => x.matmul(rnd([4, 5])))(rnd([2, 3])), /matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\]/);
  });
});

describe('layout ops', () => {
  const x = rnd([2, 3, 4], 1);
  const seq = tensor(
    Float32Array.from({ length: 24 }, (_, i) => i),
    [2, 3, 4],
  );

  it('reshape: values in row-major order, -1 inferred, same shape is a no-op', () => {
    assert.deepEqual(seq.reshape([4, -1]).toArray(), [
      [0, 1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10, 11],
      [12, 13, 14, 15, 16, 17],
      [18, 19, 20, 21, 22, 23],
    ]);
    assert.deepEqual(x.reshape([-1]).shape, [24]);
    assert.deepEqual(x.reshape([2, -1, 2]).shape, [2, 6, 2]);
    assert.deepEqual(x.reshape([1, 24, 1]).shape, [1, 24, 1]);
    assert.equal(x.reshape([2, 3, 4]), x);
    assert.equal(x.reshape([2, -1, 4]), x);
    assert.deepEqual(scalar(5).reshape([1, 1]).toArray(), [[5]]);
    assert.deepEqual(
      tensor([[7]])
        .reshape([])
        .toArray(),
      7,
    );
  });

  it('reshape with zero-size dims (a 0 is a size, not "copy the input dim")', () => {
    const [a, b, c] = checkLowering((t) => [t.reshape([0, 6]), t.reshape([3, 0, 2]), t.reshape([-1, 3])], [zeros([2, 0, 3])]);
    assert.deepEqual(a!.shape, [0, 6]);
    assert.deepEqual(b!.shape, [3, 0, 2]);
    assert.deepEqual(c!.shape, [0, 3]);
    checkLowering((t) => t.reshape([3, 0]), [zeros([0, 3])]);
  });

  it('reshape errors', () => {
    assert.throws(() => x.reshape([5, -1]), /reshape: cannot reshape \[2, 3, 4\] \(24 elements\) to \[5, -1\]/);
    assert.throws(() => x.reshape([5, 5]), /reshape: cannot reshape \[2, 3, 4\] \(24 elements\) to \[5, 5\]/);
    assert.throws(() => x.reshape([-1, -1]), /reshape: invalid target shape \[-1, -1\]/);
    assert.throws(() => x.reshape([2, -2, -6]), /reshape: invalid target shape/);
    assert.throws(() => x.reshape([2.5, 8]), /reshape: invalid target shape/);
  });

  it('transpose and permute', () => {
    const m = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(m.transpose().toArray(), [
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    assert.deepEqual(m.permute().toArray(), m.transpose().toArray());
    assert.deepEqual(seq.permute([2, 0, 1]).shape, [4, 2, 3]);
    assert.deepEqual(seq.permute([-1, 0, -2]).shape, [4, 2, 3]);
    assert.deepEqual(seq.permute().shape, [4, 3, 2]);
    assert.deepEqual(seq.transpose(0, 2).shape, [4, 3, 2]);
    assert.deepEqual(seq.transpose().shape, [2, 4, 3]);
    // element [i, j, k] of the permuted tensor is seq[j, k, i]
    const p = seq.permute([2, 0, 1]);
    for (const [i, j, k] of [
      [0, 0, 0],
      [3, 1, 2],
      [1, 0, 2],
    ] as const)
      assert.equal(p.index([i, j, k]).item(), j * 12 + k * 4 + i);
    assert.equal(seq.permute([0, 1, 2]), seq, 'identity permutation is a no-op');
    assert.equal(seq.transpose(1, 1), seq);
    assert.throws(() => seq.permute([0, 0, 1]), /permute: \[0,0,1\] is not a permutation of 3 axes \(shape \[2, 3, 4\]\)/);
    assert.throws(() => seq.permute([0, 1]), /permute: \[0,1\] is not a permutation of 3 axes/);
    assert.throws(() => seq.permute([0, 1, 3]), /permute: axis 3 is out of range for a tensor of rank 3/);
    assert.throws(() => tensor([1, 2]).transpose(), /transpose: axis -2 is out of range for a tensor of rank 1/);
  });

  it('expand', () => {
    assert.deepEqual(
      tensor([[1], [2]])
        .expand([2, 3])
        .toArray(),
      [
        [1, 1, 1],
        [2, 2, 2],
      ],
    );
    assert.deepEqual(tensor([1, 2]).expand([2, 2]).toArray(), [
      [1, 2],
      [1, 2],
    ]);
    assert.deepEqual(tensor([[1], [2]]).expand([3, -1, 2]).shape, [3, 2, 2]);
    assert.deepEqual(scalar(3).expand([2]).toArray(), [3, 3]);
    assert.deepEqual(tensor([[1, 2]]).expand([0, 2]).shape, [0, 2]);
    const y = tensor([1, 2]);
    assert.equal(y.expand([2]), y);
    assert.equal(y.expand([-1]), y);
    assert.throws(() => tensor([1, 2]).expand([3]), /expand: shapes \[2\] and \[3\] do not broadcast/);
    assert.throws(() => tensor([[1, 2]]).expand([2]), /expand: cannot broadcast \[1, 2\] to \[2\]/);
    assert.throws(
      () => tensor([1, 2]).expand([-1, 2]),
      /expand: -1 keeps an existing dim, but \[-1, 2\] puts it on a new leading axis of \[2\]/,
    );
  });

  it('unsqueeze, squeeze, flatten', () => {
    assert.deepEqual(x.unsqueeze(0).shape, [1, 2, 3, 4]);
    assert.deepEqual(x.unsqueeze(3).shape, [2, 3, 4, 1]);
    assert.deepEqual(x.unsqueeze(-1).shape, [2, 3, 4, 1]);
    assert.deepEqual(x.unsqueeze(-2).shape, [2, 3, 1, 4]);
    assert.deepEqual(scalar(1).unsqueeze(0).shape, [1]);
    const u = zeros([1, 3, 1, 2]);
    assert.deepEqual(u.squeeze().shape, [3, 2]);
    assert.deepEqual(u.squeeze(0).shape, [3, 1, 2]);
    assert.deepEqual(u.squeeze(-2).shape, [1, 3, 2]);
    assert.deepEqual(zeros([1, 1]).squeeze().shape, []);
    assert.deepEqual(
      seq.flatten().toArray(),
      Array.from({ length: 24 }, (_, i) => i),
    );
    assert.deepEqual(scalar(2).flatten().shape, [1]);
    assert.deepEqual(seq.unsqueeze(1).squeeze(1).toArray(), seq.toArray());
    assert.throws(() => x.squeeze(0), /squeeze: axis 0 has size 2, not 1 \(shape \[2, 3, 4\]\)/);
    assert.throws(() => x.unsqueeze(4), /unsqueeze: axis 4 is out of range for a tensor of rank 4/);
    assert.throws(() => x.squeeze(3), /squeeze: axis 3 is out of range/);
  });

  it('lowerings match the JS kernels', () => {
    checkLowering(
      (t) => [
        t.reshape([4, -1]),
        t.reshape([24]),
        t.permute([2, 0, 1]),
        t.permute(),
        t.transpose(0, 2),
        t.transpose(),
        t.expand([5, 2, 3, 4]),
        t.unsqueeze(1),
        t.unsqueeze(1).squeeze(1),
        t.flatten(),
      ],
      [x],
    );
    checkLowering((t) => [t.expand([2, 3, 4]), t.expand([4, 3, 5]), t.squeeze(), t.unsqueeze(0).expand([2, -1, -1])], [rnd([3, 1], 2)]);
    checkLowering((t) => [t.permute([1, 0, 2]), t.reshape([2, -1])], [rndInt([2, 3, 2], 9, 3, 'int64')]);
    checkLowering(
      (t) => [t.transpose(), t.expand([3, 2, 2])],
      [
        tensor([
          [true, false],
          [false, false],
        ]),
      ],
    );
    checkLowering((t) => [t.permute([1, 0, 2]), t.expand([2, 2, 0, 3])], [zeros([2, 0, 3])]);
  });

  it('VJPs match finite differences', () => {
    checkGrad((t) => t.reshape([6, 4]), [x]);
    checkGrad((t) => t.reshape([-1]), [x]);
    checkGrad((t) => t.permute([1, 2, 0]), [x]);
    checkGrad((t) => t.permute(), [x]);
    checkGrad((t) => t.transpose(0, 1), [x]);
    checkGrad((t) => t.expand([2, 3, 5]), [rnd([3, 1], 3)]);
    checkGrad((t) => t.expand([4, 2, 3]), [rnd([3], 4).reshape([1, 3]).expand([2, 3])]);
    checkGrad((t) => t.expand([2, 3]), [rnd([], 5)]);
    checkGrad((t) => t.unsqueeze(0).squeeze(), [rnd([3, 1, 2], 6)]);
    checkGrad((t) => t.flatten(), [x]);
    // A chain of layout ops feeding a matmul.
    checkGrad((a, b) => a.permute([0, 2, 1]).reshape([-1, 3]).matmul(b.transpose()).expand([2, 8, 5]), [x, rnd([5, 3], 7)]);
  });
});
