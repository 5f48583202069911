/**
 * The ground-truth benchmark: synthetic activations from a known dictionary (firing rates,
 * correlated groups, magnitudes, a resumable stream), the recovery scores (MMCS, recall,
 * precision), and SAEs trained on a clean setting recovering the true features: TopK must reach
 * MMCS > 0.8; the numbers of every architecture run are printed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRNG, randn, tensor } from '../src/index.js';
import { SyntheticFeatures, featureRecovery, formatSyntheticResults, runSyntheticBenchmark } from '../src/sae/synthetic.js';

describe('synthetic features', () => {
  it('draws a fixed dictionary of unit vectors and sparse combinations at the stated rates', () => {
    const a = new SyntheticFeatures({ dIn: 32, nFeatures: 128, firingProbability: 0.05, seed: 4 });
    const b = new SyntheticFeatures({ dIn: 32, nFeatures: 128, firingProbability: 0.05, seed: 4 });
    assert.deepEqual(Array.from(a.dictionary), Array.from(b.dictionary), 'the seed fixes the dictionary');
    for (let f = 0; f < 128; f++) {
      let s = 0;
      for (let j = 0; j < 32; j++) s += a.dictionary[f * 32 + j]! ** 2;
      assert.ok(Math.abs(s - 1) < 1e-5, `feature ${f} has norm^2 ${s}`);
    }
    const { x, codes } = a.sample(2000, new PRNG(1), { withCodes: true });
    let active = 0;
    let magnitude = 0;
    for (const c of codes!)
      if (c > 0) {
        active++;
        magnitude += c;
        assert.ok(c >= 0.5 && c <= 1.5, `uniform magnitude ${c}`);
      }
    const perExample = active / 2000;
    assert.ok(Math.abs(perExample - 0.05 * 128) < 0.3, `${perExample} active features per example`);
    assert.ok(Math.abs(magnitude / active - 1) < 0.03, 'mean magnitude 1');
    // x = codes @ dictionary.
    for (const r of [0, 17, 1999])
      for (const j of [0, 9, 31]) {
        let v = 0;
        for (let f = 0; f < 128; f++) v += codes![r * 128 + f]! * a.dictionary[f * 32 + j]!;
        assert.ok(Math.abs(x[r * 32 + j]! - v) < 1e-5, `x[${r}][${j}]`);
      }
  });

  it('makes correlated groups co-fire at the same marginal rate, and exponential magnitudes', () => {
    const g = new SyntheticFeatures({
      dIn: 16,
      nFeatures: 64,
      firingProbability: 0.04,
      correlation: { groupSize: 4, coFire: 0.8 },
      magnitude: 'exponential',
    });
    const { codes } = g.sample(5000, new PRNG(2), { withCodes: true });
    let fired = 0;
    let both = 0;
    let first = 0;
    let magnitude = 0;
    for (let r = 0; r < 5000; r++)
      for (let f = 0; f < 64; f++) {
        const c = codes![r * 64 + f]!;
        if (c > 0) {
          fired++;
          magnitude += c;
        }
        if (f % 4 === 0 && c > 0) {
          first++;
          if (codes![r * 64 + f + 1]! > 0) both++;
        }
      }
    assert.ok(Math.abs(fired / (5000 * 64) - 0.04) < 0.004, `marginal rate ${fired / (5000 * 64)}`);
    assert.ok(Math.abs(both / first - 0.8) < 0.05, `P(neighbour fires | feature fires) = ${both / first}`);
    assert.ok(Math.abs(magnitude / fired - 1) < 0.06, `exponential mean ${magnitude / fired}`);
    assert.throws(() => new SyntheticFeatures({ nFeatures: 10, correlation: { groupSize: 3, coFire: 0.9 } }), /dividing nFeatures/);
  });

  it('streams batches that resume exactly', () => {
    const s = new SyntheticFeatures({ dIn: 8, nFeatures: 32 });
    const a = s.source({ batchSize: 16, seed: 3 });
    a.next();
    const state = JSON.parse(JSON.stringify(a.getState()));
    const want = Array.from(a.next().x.dataSync() as Float32Array);
    const b = s.source({ batchSize: 16, seed: 3 });
    b.setState(state);
    assert.deepEqual(Array.from(b.next().x.dataSync() as Float32Array), want);
  });
});

describe('feature recovery scores', () => {
  it('gives MMCS 1 and full recall for the true dictionary in any order and scale, and little for a random one', () => {
    const s = new SyntheticFeatures({ dIn: 16, nFeatures: 40 });
    const rows = Array.from({ length: 40 }, (_, f) => Array.from(s.dictionary.slice(f * 16, f * 16 + 16)));
    const shuffled = [...rows.slice(20), ...rows.slice(0, 20)].map((r, i) => r.map((v) => v * (1 + i)));
    const extra = [...shuffled, Array.from({ length: 16 }, (_, j) => (j === 0 ? 1 : 0))];
    const perfect = featureRecovery(tensor(extra), s.dictionary);
    assert.ok(Math.abs(perfect.mmcs - 1) < 1e-6, `mmcs ${perfect.mmcs}`);
    assert.equal(perfect.recall, 1);
    assert.ok(perfect.precision >= 40 / 41 - 1e-9 && perfect.precision < 1, `precision ${perfect.precision}`);
    const random = featureRecovery(randn([40, 16], { seed: 1 }), s.dictionary);
    assert.ok(random.mmcs < 0.75 && random.recall === 0, `random dictionary: mmcs ${random.mmcs}, recall ${random.recall}`);
  });
});

describe('SAEs on synthetic data', () => {
  it('recover the true features (TopK: MMCS > 0.8 on the clean setting)', async () => {
    const setting = { dIn: 64, nFeatures: 256, seed: 0 }; // four features per example, uniform magnitudes, no noise
    const results = await runSyntheticBenchmark({
      ...setting,
      steps: 300,
      batchSize: 512,
      lr: 5e-3,
      runs: [
        { architecture: 'topk', options: { k: 4 } },
        { architecture: 'batchtopk', options: { k: 4 } },
        { architecture: 'jumprelu', options: { l0Coefficient: 0.1 } },
        { architecture: 'standard', options: { l1Coefficient: 0.3 } },
      ],
    });
    console.log(`\nsynthetic: 256 features in 64 dimensions, 4 active on average, 300 steps of 512\n${formatSyntheticResults(results)}`);
    const topk = results[0]!;
    assert.ok(topk.mmcs > 0.8, `TopK MMCS ${topk.mmcs.toFixed(3)}`);
    assert.ok(topk.recall > 0.5, `TopK recall ${topk.recall.toFixed(3)}`);
    assert.equal(topk.l0, 4);
    for (const r of results) assert.ok(r.mmcs > 0.5 && Number.isFinite(r.explainedVariance), `${r.label}: MMCS ${r.mmcs.toFixed(3)}`);
  });
});
