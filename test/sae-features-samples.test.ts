/**
 * Activation samples (src/sae/features/collector.ts) and quantile groups (page.ts): each feature's
 * reservoir sample of the tokens it fired on, checked against answers built by hand (every firing
 * token kept while they fit, with its window), its independence from batching and resumes, the
 * uniformity of its draws over seeds, the groups `quantileGroups` makes of hand-built samples, and
 * stores with and without samples through `FeatureStoreReader`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRNG, tensor } from '../src/index.js';
import {
  FeatureCollector,
  FeatureStoreReader,
  Sae,
  collectFeatures,
  featurePage,
  loadFeatureStore,
  quantileGroups,
  saveFeatureStore,
  type PageContext,
} from '../src/sae/index.js';
import { tinyRandomModel } from './tiny-models.js';

/** Activations [rows, S, d] with the given (row, position, feature) -> value entries, zero elsewhere. */
function actsOf(rows: number, S: number, d: number, entries: [number, number, number, number][]): Float32Array {
  const acts = new Float32Array(rows * S * d);
  for (const [r, p, f, v] of entries) acts[(r * S + p) * d + f] = v;
  return acts;
}

describe('FeatureCollector samples', () => {
  it('keeps every firing token while they fit, largest first, each with its window', () => {
    // Two contexts of 4 tokens; feature 0 fires on (0,1)=1, (0,3)=2, (1,0)=0.5; feature 1 never.
    const ids = Int32Array.from([10, 11, 12, 13, 20, 21, 22, 23]);
    const acts = actsOf(2, 4, 2, [
      [0, 1, 0, 1],
      [0, 3, 0, 2],
      [1, 0, 0, 0.5],
    ]);
    const c = new FeatureCollector(2, { topK: 1, before: 1, after: 1, samples: 5 });
    c.add(ids, acts, 4);
    const s = c.stats().samples!;
    assert.equal(s.n, 5);
    assert.deepEqual(Array.from(s.values.subarray(0, 5)), [2, 1, 0.5, 0, 0]);
    assert.deepEqual(Array.from(s.contexts.subarray(0, 5)), [0, 0, 1, -1, -1]);
    assert.deepEqual(Array.from(s.positions.subarray(0, 3)), [3, 1, 0]);
    // Windows [p-1, p, p+1]: -1 outside the context.
    assert.deepEqual(Array.from(s.tokens.subarray(0, 9)), [12, 13, -1, 10, 11, 12, -1, 20, 21]);
    assert.deepEqual(Array.from(s.acts.subarray(0, 9)), [0, 2, 0, 0, 1, 0, 0, 0.5, 0]);
    // Feature 1's slots are empty.
    assert.deepEqual(Array.from(s.contexts.subarray(5, 10)), [-1, -1, -1, -1, -1]);
  });

  it('samples the same tokens however the contexts are batched, and after a resume', () => {
    const rng = new PRNG(3);
    const [rows, S, d] = [12, 8, 5];
    const ids = Int32Array.from({ length: rows * S }, () => rng.int(50));
    const acts = Float32Array.from({ length: rows * S * d }, () => (rng.uniform() < 0.4 ? rng.uniform() * 3 : 0));
    const opts = { topK: 2, before: 2, after: 1, samples: 3, sampleSeed: 7 };
    const whole = new FeatureCollector(d, opts);
    whole.add(ids, acts, S);
    const byRow = new FeatureCollector(d, opts);
    for (let r = 0; r < rows; r++) byRow.add(ids.subarray(r * S, (r + 1) * S), acts.subarray(r * S * d, (r + 1) * S * d), S);
    const half = new FeatureCollector(d, opts);
    half.add(ids.subarray(0, 5 * S), acts.subarray(0, 5 * S * d), S);
    const resumed = FeatureCollector.restore(d, opts, structuredClone(half.snapshot()));
    resumed.add(ids.subarray(5 * S), acts.subarray(5 * S * d), S);
    const want = whole.stats().samples!;
    assert.ok(
      want.contexts.every((c) => c >= 0),
      'every feature fired on more tokens than it keeps',
    );
    assert.deepEqual(byRow.stats().samples, want);
    assert.deepEqual(resumed.stats().samples, want);
    const other = new FeatureCollector(d, { ...opts, sampleSeed: 8 });
    other.add(ids, acts, S);
    assert.notDeepEqual(other.stats().samples!.contexts, want.contexts, 'another seed draws other tokens');
  });

  it('keeps each firing token with probability samples / fired (over 400 seeds)', () => {
    // One feature firing on 10 tokens (one context), 2 slots: each token is kept with probability 0.2.
    const ids = Int32Array.from({ length: 10 }, (_, i) => i);
    const acts = Float32Array.from({ length: 10 }, (_, i) => i + 1);
    const kept = new Array<number>(10).fill(0);
    const seeds = 400;
    for (let seed = 0; seed < seeds; seed++) {
      const c = new FeatureCollector(1, { topK: 1, before: 0, after: 0, samples: 2, sampleSeed: seed });
      c.add(ids, acts, 10);
      for (const p of c.stats().samples!.positions) kept[p]!++;
    }
    // Binomial(400, 0.2): mean 80, sd 8; 3 sd either side.
    for (const [p, n] of kept.entries()) assert.ok(n >= 56 && n <= 104, `token ${p} kept ${n} times of ${seeds}`);
  });

  it('has none with samples: 0', () => {
    const c = new FeatureCollector(2, { samples: 0 });
    c.add(Int32Array.from([1, 2]), Float32Array.from([1, 0, 0, 1]), 2);
    assert.equal(c.stats().samples, null);
  });
});

describe('quantileGroups', () => {
  const ctx = (activation: number): PageContext => ({ activation, context: activation, position: 0, maxIndex: 0, tokens: [] });

  it('splits the sample into groups of equal rank, the top quantile first', () => {
    const samples = [8, 7, 6, 5, 4, 3, 2, 1, 0.5].map(ctx);
    const groups = quantileGroups(samples, 4);
    // 9 ranks from the smallest: [0, 2), [2, 4), [4, 6), [6, 9).
    assert.deepEqual(
      groups.map((g) => g.contexts.map((c) => c.activation)),
      [
        [8, 7, 6],
        [5, 4],
        [3, 2],
        [1, 0.5],
      ],
    );
    assert.deepEqual(
      groups.map((g) => [g.fromQuantile, g.toQuantile, g.min, g.max]),
      [
        [0.75, 1, 6, 8],
        [0.5, 0.75, 4, 5],
        [0.25, 0.5, 2, 3],
        [0, 0.25, 0.5, 1],
      ],
    );
  });

  it('leaves out empty groups when there are fewer samples than groups', () => {
    const groups = quantileGroups([ctx(3), ctx(1)], 4);
    assert.deepEqual(
      groups.map((g) => [g.fromQuantile, g.contexts.map((c) => c.activation)]),
      [
        [0.75, [3]],
        [0.25, [1]],
      ],
    );
    assert.deepEqual(quantileGroups([], 4), []);
    assert.throws(() => quantileGroups([ctx(1)], 0), /groups must be a positive integer/);
  });
});

describe('stores with and without samples', () => {
  const model = tinyRandomModel(3, { nLayers: 2 });
  const rng = new PRNG(9);
  const ids = Int32Array.from({ length: 12 * 8 }, () => rng.int(20));
  const options = { contextSize: 8, batchSize: 4, topK: 3, before: 2, after: 1, logitEffects: 4, samples: 6 };
  const sae = Sae.create({ architecture: 'standard', d_in: 16, d_sae: 12, hook_name: 'blocks.1.hook_resid_pre' }, { seed: 4 });
  const biased = sae.withParams({ ...sae.params, b_enc: tensor(new Float32Array(12).fill(0.02), [12]) });

  it('reads each page with its samples, their windows the activations the collector saw', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gb-samples-'));
    try {
      saveFeatureStore(collectFeatures(model, biased, ids, options), dir);
      const store = loadFeatureStore(dir);
      assert.deepEqual(store.meta.samples, { n: 6, seed: 0 });
      const reader = FeatureStoreReader.open(dir);
      try {
        assert.equal(reader.hasSamples, true);
        let seen = 0;
        for (let f = 0; f < 12; f++) {
          const page = reader.page(f);
          assert.deepEqual(page, featurePage(store, f));
          const fired = page.fireCount;
          assert.equal(page.samples!.length, Math.min(6, fired));
          for (const s of page.samples!) {
            // The marked token of a sample carries the sample's activation, and no sample exceeds the max.
            assert.equal(s.tokens[s.maxIndex]!.act, s.activation);
            assert.ok(s.activation > 0 && s.activation <= page.maxActivation);
            seen++;
          }
        }
        assert.ok(seen > 0);
      } finally {
        reader.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens a store written before samples (no samples field, no sample tensors): pages have samples null', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gb-samples-'));
    try {
      saveFeatureStore(collectFeatures(model, biased, ids, { ...options, samples: 0 }), dir);
      const jsonPath = join(dir, 'features.json');
      const meta = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
      assert.equal(meta.samples, null);
      delete meta.samples;
      writeFileSync(jsonPath, JSON.stringify(meta));
      const reader = FeatureStoreReader.open(dir);
      try {
        assert.equal(reader.hasSamples, false);
        assert.equal(reader.page(0).samples, null);
        assert.deepEqual(reader.page(3), featurePage(loadFeatureStore(dir), 3));
      } finally {
        reader.close();
      }
      // A JSON that promises samples the tensors file lacks is refused, naming the tensor.
      writeFileSync(jsonPath, JSON.stringify({ ...meta, samples: { n: 6, seed: 0 } }));
      assert.throws(() => FeatureStoreReader.open(dir), /tensor 'sample_values' is missing/);
      writeFileSync(jsonPath, JSON.stringify({ ...meta, samples: { n: -1, seed: 0 } }));
      assert.throws(() => loadFeatureStore(dir), /features\.json: 'samples\.n' must be an integer >= 0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
