/**
 * Toy Models of Superposition (Elhage et al. 2022), n = 5 features in m = 2 dimensions with
 * importance 0.7^i: dense features give the 2 most important features, orthogonal; very sparse
 * features (S = 0.99) give all 5 as a pentagon. One batched run trains both sparsities with 4
 * restarts each and keeps the best restart per sparsity, so the result does not hang on a lucky
 * initialisation. (At S = 0.9 this importance gives a square of 4 features; the pentagon appears
 * from about S = 0.95.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor } from '../src/tensor/index.js';
import {
  analyzeSuperposition,
  formatSuperpositionSummary,
  sweepSparsity,
  trainSuperposition,
  writeSuperpositionReport,
  type SweepResult,
} from '../src/recipes/toys/superposition.js';

// lr 1e-2 (the paper: 1e-3 for 10000 steps) converges in 1500 steps: about 5 s.
const settings = {
  nFeatures: 5,
  nHidden: 2,
  importanceDecay: 0.7,
  steps: 1500,
  batchSize: 1024,
  lr: 1e-2,
  restarts: 4,
  seed: 0,
  progress: false,
};

let sweep: Promise<SweepResult> | null = null;
const trained = (): Promise<SweepResult> => (sweep ??= sweepSparsity({ ...settings, sparsities: [0, 0.99] }));

test('analyzeSuperposition on hand-made geometries', () => {
  // A regular pentagon of unit vectors: every feature has dimensionality 2/5.
  const angles = [0, 72, 144, 216, 288].map((d) => (d * Math.PI) / 180);
  const pentagon = analyzeSuperposition(tensor([angles.map(Math.cos), angles.map(Math.sin)]));
  assert.deepEqual(pentagon.represented, [0, 1, 2, 3, 4]);
  for (const g of pentagon.representedAngleGaps!) assert.ok(Math.abs(g - 72) < 1e-4, `gap ${g}`);
  for (const d of pentagon.dimensionality) assert.ok(Math.abs(d - 0.4) < 1e-5, `dimensionality ${d}`);
  assert.ok(Math.abs(pentagon.featuresPerDimension - 2.5) < 1e-5);
  // sum over j != i of cos^2(angle between i and j) = 2 cos^2 72 + 2 cos^2 144 = 1.5
  for (const s of pentagon.superposition) assert.ok(Math.abs(s - 1.5) < 1e-5, `superposition ${s}`);

  // Two orthogonal features and three unused ones.
  const w = analyzeSuperposition(
    tensor([
      [1, 0, 0, 0.01, 0],
      [0, 1, 0, 0, 0],
    ]),
  );
  assert.deepEqual(w.represented, [0, 1]);
  assert.deepEqual(w.WtW[0]!.slice(0, 2), [1, 0]);
  assert.ok(Math.abs(w.superposition[0]! - 1e-4) < 1e-9 && w.superposition[1] === 0 && w.superposition[2] === 0, `${w.superposition}`);
  assert.ok(Math.abs(w.superposition[3]! - 1) < 1e-6, 'a tiny feature along feature 0 interferes with it fully');
  assert.deepEqual(w.representedAngleGaps, [90, 270]);
  assert.equal(w.dimensionality[2], 0);
  assert.equal(
    analyzeSuperposition(
      tensor([
        [1, 0],
        [0, 1],
        [1, 1],
      ]),
    ).angles,
    null,
    'angles only for m = 2',
  );
});

test('dense features (S = 0): only the two most important, orthogonal', async () => {
  const { models } = await trained();
  const dense = models[0]!;
  const a = dense.analysis;
  assert.equal(dense.sparsity, 0);
  const byNorm = a.norms.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]);
  assert.deepEqual(
    byNorm
      .slice(0, 2)
      .map(([, i]) => i)
      .sort(),
    [0, 1],
    `norms ${a.norms}`,
  );
  assert.deepEqual(a.represented, [0, 1]);
  for (const i of [2, 3, 4]) assert.ok(a.norms[i]! < 0.1, `feature ${i} should be dropped, norm ${a.norms[i]}`);
  // W^T W on features 0 and 1 is the identity: unit norm, orthogonal.
  for (const i of [0, 1]) assert.ok(Math.abs(a.WtW[i]![i]! - 1) < 0.1, `W^T W[${i}][${i}] = ${a.WtW[i]![i]}`);
  assert.ok(Math.abs(a.WtW[0]![1]!) < 0.1, `W^T W[0][1] = ${a.WtW[0]![1]}`);
  for (const g of a.representedAngleGaps!) assert.ok(Math.abs(g - 90) < 10 || Math.abs(g - 270) < 10, `gap ${g}`);
  assert.ok(dense.loss === Math.min(...dense.restartLosses));
  assert.ok(dense.loss > 0.05 && dense.loss < 0.15, `loss ${dense.loss}`);
});

test('sparse features (S = 0.99): all five, in a pentagon', async () => {
  const { models } = await trained();
  const sparse = models[1]!;
  const a = sparse.analysis;
  assert.equal(sparse.sparsity, 0.99);
  assert.deepEqual(a.represented, [0, 1, 2, 3, 4], `norms ${a.norms}`);
  for (const v of a.norms) assert.ok(v > 0.8, `norm ${v}`);
  const gaps = a.representedAngleGaps!;
  assert.equal(gaps.length, 5);
  for (const g of gaps) assert.ok(Math.abs(g - 72) < 15, `angles between neighbours ${gaps.map((x) => x.toFixed(1))}`);
  assert.ok(Math.abs(gaps.reduce((s, g) => s + g, 0) - 360) < 1e-6);
  // In superposition: each feature interferes with the others, and there are > 2 features per dimension.
  for (const s of a.superposition) assert.ok(s > 0.5, `superposition ${a.superposition}`);
  assert.ok(a.featuresPerDimension > 2, `features per dimension ${a.featuresPerDimension}`);
  assert.ok(sparse.loss < models[0]!.loss / 10, 'sparse inputs are easier to reconstruct');
});

test('the training run: history, loss decreasing, W and b shapes', async () => {
  const { models, train } = await trained();
  assert.equal(train.step, settings.steps);
  assert.deepEqual(train.params.W.shape, [8, 2, 5], '2 sparsities x 4 restarts');
  const losses = train.history.filter((r) => r.kind === 'train').map((r) => r.loss as number);
  assert.ok(losses.at(-1)! < losses[0]! / 2, `loss ${losses[0]} -> ${losses.at(-1)}`);
  for (const m of models) {
    assert.deepEqual(m.W.shape, [2, 5]);
    assert.deepEqual(m.b.shape, [5]);
    assert.deepEqual(
      m.importance.map((v) => +v.toFixed(4)),
      [1, 0.7, 0.49, 0.343, 0.2401],
    );
  }
});

test('report: heatmaps, feature directions, norms chart and a text summary', async () => {
  const { models } = await trained();
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-superposition-'));
  try {
    const logged: string[] = [];
    const { files, summary } = await writeSuperpositionReport(models, dir, { log: (t) => logged.push(t) });
    for (const name of ['wtw-S0.svg', 'features-S0.svg', 'wtw-S0.99.svg', 'features-S0.99.svg', 'norms.svg', 'summary.txt']) {
      assert.ok(files.includes(join(dir, name)) && existsSync(join(dir, name)), name);
    }
    assert.ok(readFileSync(join(dir, 'features-S0.99.svg'), 'utf8').startsWith('<svg'));
    assert.equal(readFileSync(join(dir, 'summary.txt'), 'utf8'), summary);
    assert.deepEqual(logged, [summary]);
    assert.match(summary, /W\^T W:/);
    assert.match(summary, /represented \(norm > 0\.5\): 5 of 5/);
    assert.match(summary, /angles between neighbouring represented features/);
    assert.equal(
      formatSuperpositionSummary(models[0]!)
        .split('\n')
        .filter((l) => /^f\d /.test(l)).length,
      10,
      'two tables of 5 rows',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trainSuperposition is deterministic for a seed, and checks its options', async () => {
  const quick = { ...settings, steps: 20, batchSize: 64, restarts: 2, sparsity: 0.9 };
  const [a, b] = [await trainSuperposition(quick), await trainSuperposition(quick)];
  assert.deepEqual(a.W.dataSync(), b.W.dataSync());
  assert.equal(a.loss, b.loss);
  assert.equal(a.restartLosses.length, 2);
  await assert.rejects(trainSuperposition({ ...quick, sparsity: 1 }), /sparsity must be in \[0, 1\)/);
  await assert.rejects(trainSuperposition({ ...quick, nHidden: 0 }), /nHidden must be a positive integer/);
});
