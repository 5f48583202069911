/**
 * Grokking (Power et al. 2022; Nanda et al. 2023), at a scale a test can afford: p = 31,
 * d_model 64, half the pairs for training, AdamW with weight decay 1. The model memorises the
 * training pairs long before it generalises, and then computes with a few Fourier frequencies.
 * (`glassbox train grokking` runs the paper's p = 113 setting.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fourierAnalysis, modularAdditionData, trainGrokking, writeGrokkingReport } from '../src/recipes/toys/grokking.js';
import { tensor } from '../src/tensor/index.js';

test('modular addition: memorisation first, generalisation much later, a sparse Fourier embedding', async () => {
  const r = await trainGrokking({ p: 31, trainFraction: 0.5, dModel: 64, lr: 3e-3, steps: 4000, evalEvery: 50, seed: 0, progress: false });
  const curve = r.curve.map((c) => `${c.step}: train ${c.trainAccuracy.toFixed(2)} test ${c.testAccuracy.toFixed(2)}`).join(', ');
  assert.ok(r.final.testAccuracy >= 0.99, `final test accuracy ${r.final.testAccuracy} (${curve})`);
  assert.ok(r.train.stoppedEarly, 'stopped once test accuracy passed 99.5%');
  assert.ok(r.memorisedAt !== null && r.generalisedAt !== null);
  // Delayed generalisation: the train set is fit several times sooner than the test set.
  assert.ok(r.generalisedAt! >= 4 * r.memorisedAt!, `memorised at ${r.memorisedAt}, generalised at ${r.generalisedAt}`);
  const atMemorisation = r.curve.find((c) => c.step === r.memorisedAt)!;
  assert.ok(atMemorisation.testLoss > 2, `test loss when the train set is memorised: ${atMemorisation.testLoss}`);
  // A few of the 15 frequencies hold 90% of the embedding's norm.
  assert.ok(r.fourier.keyFrequencies.length <= 8, `key frequencies ${r.fourier.keyFrequencies}`);

  const dir = mkdtempSync(join(tmpdir(), 'glassbox-grokking-'));
  const summary = await writeGrokkingReport(r, dir);
  assert.match(summary, /generalised \(test accuracy >= 99%\) at step \d+/);
  for (const f of ['loss.svg', 'accuracy.svg', 'embedding-fourier.svg']) assert.match(readFileSync(join(dir, f), 'utf8'), /^<svg/);
  assert.equal(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).generalisedAt, r.generalisedAt);
});

test('the data split covers every pair once and labels are (a + b) mod p', () => {
  const { train, test: held } = modularAdditionData(7, 0.3, 1);
  const rows = [...(train.tokens.toArray() as bigint[][]), ...(held.tokens.toArray() as bigint[][])].map((r) => r.map(Number));
  assert.equal(rows.length, 49);
  assert.equal(new Set(rows.map((r) => `${r[0]},${r[1]}`)).size, 49);
  assert.ok(rows.every((r) => r[2] === 7));
  const labels = [...(train.labels.toArray() as bigint[]), ...(held.labels.toArray() as bigint[])].map(Number);
  rows.forEach((r, i) => assert.equal(labels[i], (r[0]! + r[1]!) % 7));
  assert.equal(train.tokens.shape[0], 15);
});

test('fourierAnalysis finds the frequency an embedding is built from', () => {
  const p = 11;
  // W_E[x] = [cos(2 pi 3 x / p), sin(2 pi 3 x / p)]: all the norm sits in frequency 3.
  const rows = Array.from({ length: p }, (_, x) => [Math.cos((2 * Math.PI * 3 * x) / p), Math.sin((2 * Math.PI * 3 * x) / p)]);
  const f = fourierAnalysis(tensor(rows), p);
  assert.deepEqual(f.keyFrequencies, [3]);
  assert.ok(Math.abs(f.frequencyNorms[2]!.norm2 - p) < 1e-3, `norm2 ${f.frequencyNorms[2]!.norm2}`);
  assert.ok(f.constantNorm2 < 1e-6);
});
