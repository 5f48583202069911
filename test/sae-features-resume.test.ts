/**
 * Feature collection that stops midway resumes from its checkpoint (src/sae/features/checkpoint.ts)
 * and gives exactly the store of an uninterrupted run; an existing checkpoint is not overwritten
 * unasked, one of another run is refused naming what differs, and the checkpoint is removed once
 * the collection is done.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRNG, tensor } from '../src/index.js';
import { FeatureCollector, Sae, collectFeatures, type FeatureStats } from '../src/sae/index.js';
import { CHECKPOINT_JSON } from '../src/sae/features/checkpoint.js';
import { tinyRandomModel } from './tiny-models.js';

const D_SAE = 24;

function randomSae(): Sae {
  const sae = Sae.create({ architecture: 'standard', d_in: 16, d_sae: D_SAE, hook_name: 'blocks.1.hook_resid_pre' }, { seed: 4 });
  return sae.withParams({ ...sae.params, b_enc: tensor(new Float32Array(D_SAE).fill(0.02), [D_SAE]) });
}

function assertSameStats(a: FeatureStats, b: FeatureStats): void {
  for (const k of Object.keys(a) as (keyof FeatureStats)[]) {
    const x = a[k];
    const y = b[k];
    if (ArrayBuffer.isView(x)) assert.deepEqual(Array.from(x as Float64Array), Array.from(y as Float64Array), k);
    else assert.deepEqual(x, y, k);
  }
}

describe('collectFeatures: checkpoints and resume', () => {
  const model = tinyRandomModel(3, { nLayers: 2 });
  const sae = randomSae();
  const rng = new PRNG(9);
  const ids = Int32Array.from({ length: 22 * 8 }, () => rng.int(20));
  const options = { contextSize: 8, batchSize: 2, topK: 3, before: 2, after: 1, logitEffects: 0 };

  it('an interrupted run resumes to exactly the uninterrupted store; the checkpoint is then removed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gb-resume-'));
    try {
      const full = collectFeatures(model, sae, ids, options);
      const checkpoint = { dir, everyBatches: 2 };
      assert.throws(
        () =>
          collectFeatures(model, sae, ids, {
            ...options,
            checkpoint,
            onBatch: (done) => {
              if (done === 5) throw new Error('stopped');
            },
          }),
        /stopped/,
      );
      assert.ok(existsSync(join(dir, CHECKPOINT_JSON)), 'a checkpoint after batch 4');
      assert.throws(
        () => collectFeatures(model, sae, ids, { ...options, checkpoint }),
        /holds a checkpoint of this collection \(4 of 11 batches\); resume it/,
      );
      assert.throws(
        () => collectFeatures(model, sae, ids, { ...options, topK: 4, checkpoint, resume: true }),
        /the checkpoint is of another run \(collector\.top_k: 3 in the checkpoint, 4 now/,
      );
      const seen: number[] = [];
      const resumed = collectFeatures(model, sae, ids, { ...options, checkpoint, resume: true, onBatch: (d) => seen.push(d) });
      assert.deepEqual(seen, [4, 5, 6, 7, 8, 9, 10, 11], 'resumes after batch 4');
      assertSameStats(resumed.stats, full.stats);
      assert.equal(resumed.meta.corpus.tokens, full.meta.corpus.tokens);
      assert.ok(!existsSync(join(dir, CHECKPOINT_JSON)), 'the checkpoint is removed when done');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a snapshot restored into a collector with other options is refused, naming the array', () => {
    const c = new FeatureCollector(D_SAE, { topK: 3 });
    assert.throws(
      () => FeatureCollector.restore(D_SAE, { topK: 5 }, c.snapshot(), 'ckpt'),
      /ckpt: 'heap' is Int32Array\(72\), this collector needs Int32Array\(120\)/,
    );
  });
});
