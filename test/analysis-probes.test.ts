/**
 * Linear probes: a linearly separable dataset is classified perfectly on held-out data; random
 * labels stay at chance on held-out data; ridge recovers a linear map's weights and bias exactly
 * (through the standardisation); the split is seeded; and a probe on a tiny model's embeddings /
 * residual stream reads off the current token.
 */
import { describe, it } from 'node:test';
import { TINY_VOCAB, tinyRandomModel } from './tiny-models.js';
import assert from 'node:assert/strict';
import { PRNG, tensor, type Tensor } from '../src/index.js';
import { probeActivations, probePredict, trainProbe } from '../src/analysis/probes.js';

const V = TINY_VOCAB;

const tinyModel = tinyRandomModel;

/** n points in d dims, labelled by the argmax of a random linear map, keeping only those with a margin. */
function separable(n: number, d: number, classes: number, seed: number): { x: number[][]; y: number[] } {
  const rng = new PRNG(seed);
  const W = Array.from({ length: d }, () => Array.from({ length: classes }, () => rng.normal()));
  const bias = Array.from({ length: classes }, () => rng.normal());
  const x: number[][] = [];
  const y: number[] = [];
  while (x.length < n) {
    const p = Array.from({ length: d }, () => rng.normal() * 3 + 1);
    const s = bias.map((b, c) => b + p.reduce((a, v, j) => a + v * W[j]![c]!, 0));
    const sorted = [...s].sort((a, b) => b - a);
    if (sorted[0]! - sorted[1]! < 1) continue; // margin
    x.push(p);
    y.push(s.indexOf(sorted[0]!));
  }
  return { x, y };
}

const values = (t: Tensor): number[] => Array.from(t.cast('float32').dataSync() as Float32Array);

describe('linear probes', () => {
  it('reach 100% held-out accuracy on a linearly separable dataset (logistic and least squares)', async () => {
    const { x, y } = separable(400, 6, 3, 1);
    const logistic = await trainProbe(tensor(x), y, { kind: 'logistic', seed: 2, steps: 300 });
    assert.equal(logistic.task, 'classification');
    assert.equal(logistic.testIndices.length, 80);
    assert.equal(logistic.trainIndices.length, 320);
    assert.deepEqual(logistic.weights.shape, [6, 3]);
    assert.equal(logistic.trainAccuracy, 1);
    assert.equal(logistic.testAccuracy, 1);
    // The returned weights act on raw features: they reproduce the labels.
    const { predictions } = probePredict(logistic, x);
    assert.deepEqual(predictions, y);

    // Least squares on one-hot targets is no max-margin classifier: well-separated clusters.
    const rng = new PRNG(3);
    const centres = [0, 1, 2].map(() => Array.from({ length: 6 }, () => rng.normal() * 6));
    const cy = Array.from({ length: 300 }, (_, i) => i % 3);
    const cx = cy.map((c) => centres[c]!.map((m) => m + rng.normal()));
    const ls = await trainProbe(cx, cy, { kind: 'linear', seed: 1 });
    assert.equal(ls.task, 'classification');
    assert.equal(ls.trainAccuracy, 1);
    assert.equal(ls.testAccuracy, 1);
  });

  it('stay near chance on held-out data with random labels', async () => {
    const rng = new PRNG(4);
    const x = Array.from({ length: 500 }, () => Array.from({ length: 8 }, () => rng.normal()));
    const y = x.map(() => rng.int(4));
    for (const kind of ['logistic', 'linear'] as const) {
      const p = await trainProbe(x, y, { kind, seed: 0, steps: 200 });
      assert.ok(Math.abs(p.testAccuracy! - 0.25) < 0.12, `${kind}: test accuracy ${p.testAccuracy} (chance 0.25)`);
      assert.ok(p.majorityBaseline! > 0.2 && p.majorityBaseline! < 0.35);
    }
  });

  it('ridge regression recovers a linear map exactly, with R^2 and MSE', async () => {
    const rng = new PRNG(6);
    const x = Array.from({ length: 200 }, () => Array.from({ length: 4 }, () => rng.normal() * 5 + 2));
    const w = [1.5, -2, 0.5, 3];
    const y = x.map((r) => r.reduce((a, v, j) => a + v * w[j]!, 0) - 7);
    const p = await trainProbe(x, y, { kind: 'linear', l2: 0 });
    assert.equal(p.task, 'regression');
    values(p.weights).forEach((v, j) => assert.ok(Math.abs(v - w[j]!) < 1e-4, `w[${j}] = ${v}`));
    assert.ok(Math.abs(values(p.bias)[0]! + 7) < 1e-3, `bias ${values(p.bias)[0]}`);
    assert.ok(p.testR2! > 0.999999 && p.testMse! < 1e-6, `R2 ${p.testR2} MSE ${p.testMse}`);
    assert.equal(p.testAccuracy, null);
    assert.deepEqual(probePredict(p, [[1, 1, 1, 1]]).scores.shape, [1]);
    // Noise lowers R^2; a ridge penalty shrinks the weights; 2-D targets give [d, k] weights.
    const noisy = await trainProbe(
      x,
      y.map((v) => v + rng.normal() * 20),
      { kind: 'linear' },
    );
    assert.ok(noisy.testR2! < 0.9 && noisy.testR2! > 0, `noisy R2 ${noisy.testR2}`);
    const shrunk = await trainProbe(x, y, { kind: 'linear', l2: 10 });
    assert.ok(Math.abs(values(shrunk.weights)[3]!) < 1);
    const multi = await trainProbe(
      x,
      y.map((v) => [v, -v]),
      { kind: 'linear', l2: 0 },
    );
    assert.deepEqual(multi.weights.shape, [4, 2]);
    assert.ok(Math.abs(values(multi.weights)[1]! + 1.5) < 1e-4);
    await assert.rejects(trainProbe(x, y, { kind: 'logistic', task: 'regression' }), /logistic' probe classifies/);
    await assert.rejects(trainProbe(x, y.slice(1)), /199 labels for 200 feature rows/);
  });

  it('splits by seed: disjoint, complete, reproducible', async () => {
    const { x, y } = separable(50, 3, 2, 9);
    const a = await trainProbe(x, y, { kind: 'linear', seed: 5, testFraction: 0.3 });
    const b = await trainProbe(x, y, { kind: 'linear', seed: 5, testFraction: 0.3 });
    const c = await trainProbe(x, y, { kind: 'linear', seed: 6, testFraction: 0.3 });
    assert.deepEqual(a.testIndices, b.testIndices);
    assert.notDeepEqual(a.testIndices, c.testIndices);
    assert.equal(a.testIndices.length, 15);
    assert.deepEqual(
      [...a.testIndices, ...a.trainIndices].sort((i, j) => i - j),
      Array.from({ length: 50 }, (_, i) => i),
    );
    const none = await trainProbe(x, y, { kind: 'linear', testFraction: 0 });
    assert.equal(none.testAccuracy, null);
  });

  it("a probe on a tiny model's embeddings and resid_pre 0 recovers the current token", async () => {
    const model = tinyModel(1);
    const rng = new PRNG(3);
    const tokens = Array.from({ length: 40 }, () => Array.from({ length: 8 }, () => rng.int(V)));
    for (const hook of ['hook_embed', 'blocks.0.hook_resid_pre']) {
      const acts = probeActivations(model, tokens, hook, { position: 'all' });
      assert.deepEqual(acts.features.shape, [320, 16]);
      assert.deepEqual(acts.token, tokens.flat());
      const probe = await trainProbe(acts.features, acts.token as number[], { kind: 'logistic', numClasses: V, steps: 300, lr: 0.1 });
      // Observed: 1 on hook_embed (rows are W_E[token]), 0.98 on resid_pre 0 (W_E[token] + W_pos[pos]).
      assert.ok(probe.testAccuracy! >= (hook === 'hook_embed' ? 1 : 0.95), `${hook}: test accuracy ${probe.testAccuracy}`);
      assert.ok(probe.majorityBaseline! < 0.1);
    }
  });

  it('probeActivations takes the last, mean, or a given position, and respects padding', () => {
    const model = tinyModel(1);
    const name = 'blocks.1.hook_resid_post';
    const rows = [
      [1, 2, 3, 4],
      [5, 6],
    ];
    const act = (row: number[]) =>
      model
        .runWithCache([row], { names: [name] })
        .cache.get(name)
        .index([0]); // [pos, d]
    const last = probeActivations(model, rows, name);
    assert.deepEqual(last.features.shape, [2, 16]);
    assert.deepEqual(last.pos, [3, 1]);
    assert.deepEqual(last.token, [4, 6]);
    const close = (a: number[], b: number[]) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-5, `${v} vs ${b[i]}`));
    close(values(last.features.index([1])), values(act([5, 6]).index([1])));
    const mean = probeActivations(model, rows, name, { position: 'mean' });
    close(values(mean.features.index([0])), values(act([1, 2, 3, 4]).mean(0)));
    assert.deepEqual(mean.token, [null, null]);
    const first = probeActivations(model, rows, name, { position: 0 });
    close(values(first.features.index([1])), values(act([5, 6]).index([0])));
    // Right-padded batch: padding positions are skipped.
    const padded = probeActivations(
      model,
      [
        [1, 2, 3, 4],
        [5, 6, 0, 0],
      ],
      name,
      {
        position: 'all',
        attentionMask: [
          [1, 1, 1, 1],
          [1, 1, 0, 0],
        ],
      },
    );
    assert.deepEqual(padded.features.shape, [6, 16]);
    assert.deepEqual(padded.prompt, [0, 0, 0, 0, 1, 1]);
    close(values(padded.features.index([5])), values(act([5, 6]).index([1])));
    // Hooks with more than one trailing dim are flattened: hook_z is [pos, head, d_head].
    assert.deepEqual(probeActivations(model, rows, 'blocks.0.attn.hook_z').features.shape, [2, 16]);
    assert.throws(
      () => probeActivations(model, rows, 'blocks.0.hook_resid_pr'),
      /unknown hook point.*did you mean 'blocks\.0\.hook_resid_pre'/,
    );
    assert.throws(() => probeActivations(model, rows, name, { position: 4 }), /position 4 is out of range for prompt 0/);
  });
});
