/**
 * buildDefaultModel end to end at toy size: tokenizer, token files, each training stage (synthetic
 * copying, short windows, the full context with random repeats and synthetic rows), evaluation,
 * and a model directory that loads again; and the synthetic rows it mixes into text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HookedTransformer } from '../src/model/index.js';
import { buildDefaultModel, withSyntheticRows } from '../src/recipes/default-model.js';
import { tensor } from '../src/tensor/index.js';

test('buildDefaultModel: synthetic copying, short windows, then the full context with synthetic rows and random repeats; a report and a loadable model', async () => {
  const root = mkdtempSync(join(tmpdir(), 'glassbox-default-'));
  const outDir = join(root, 'model');
  const workDir = join(root, 'work');
  const options = {
    outDir,
    workDir,
    vocabSize: 300,
    nLayers: 1,
    dModel: 32,
    nHeads: 2,
    nCtx: 128,
    positional: 'rotary' as const,
    steps: 4,
    shortSteps: 3,
    syntheticSteps: 2,
    syntheticFraction: 0.5,
    batchSize: 2,
    repeats: 'random' as const,
    repeatFraction: 0.5,
    evalWindows: 2,
    progress: false,
    log: () => {},
  };
  const report = await buildDefaultModel(options);
  assert.equal(report.config.family, 'gpt_neox');
  assert.deepEqual(
    { ...report.training, seconds: 0 },
    {
      steps: 4,
      shortSteps: 3,
      shortLen: 64,
      syntheticSteps: 2,
      syntheticLen: 64,
      syntheticFraction: 0.5,
      repeats: 'random',
      repeatFraction: 0.5,
      batchSize: 2,
      seqLen: 128,
      tokensSeen: (2 + 3 + 4) * 2 * 128,
      seconds: 0,
      lr: 2e-3,
    },
  );
  // Each stage ran in its own run directory.
  const lastStep = (run: string): number =>
    readFileSync(join(workDir, run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.kind === 'train')
      .at(-1).step;
  assert.deepEqual(['run-synthetic', 'run-short', 'run'].map(lastStep), [2, 3, 4]);
  for (const v of [report.validationLoss, report.bigramValidationLoss, report.copying.first, report.copying.repeated])
    assert.ok(Number.isFinite(v) && v > 0, String(v));
  assert.equal(report.inductionScores.length, 1);
  assert.equal(report.inductionScores[0]!.length, 2);

  const model = await HookedTransformer.fromPretrained(outDir);
  assert.deepEqual(model.cfg.positional, 'rotary');
  assert.equal(model.toString(model.toTokens('Call me Ishmael.', { prependBos: false })[0]!), 'Call me Ishmael.');
  const saved = JSON.parse(readFileSync(join(outDir, 'training.json'), 'utf8'));
  assert.equal(saved.validationLoss, report.validationLoss);

  // Resuming a finished build retrains nothing and gives the same report.
  const again = await buildDefaultModel({ ...options, resume: true });
  assert.equal(again.validationLoss, report.validationLoss);
  assert.equal(again.training.tokensSeen, report.training.tokensSeen);
});

test('withSyntheticRows: a fraction of the rows become end-to-end copying sequences; the rest stay text', () => {
  const rows = 400;
  const L = 128;
  const textRow = (r: number) => Array.from({ length: L }, (_, i) => 1000 + ((r * L + i) % 7));
  const text = tensor(
    Array.from({ length: rows }, (_, r) => textRow(r)),
    undefined,
    'int64',
  );
  const source = { next: () => ({ tokens: text }), getState: () => null, setState: () => {} };
  const data = withSyntheticRows(source, { fraction: 0.25, segment: 64, vocab: 50, seed: 3 });
  const out = Array.from(data.next().tokens.dataSync() as BigInt64Array, Number);
  let synthetic = 0;
  for (let r = 0; r < rows; r++) {
    const row = out.slice(r * L, (r + 1) * L);
    if (row[0]! >= 1000) {
      assert.deepEqual(row, textRow(r), 'a text row is untouched');
      continue;
    }
    synthetic++;
    // Each 64-token chunk holds ids < 50 and ends in a segment of 16..32 of them written twice.
    for (let c = 0; c < L; c += 64) {
      const chunk = row.slice(c, c + 64);
      assert.ok(chunk.every((t) => t >= 0 && t < 50));
      const repeated = Array.from({ length: 17 }, (_, k) => 16 + k).some(
        (m) => chunk.slice(64 - 2 * m, 64 - m).join() === chunk.slice(64 - m).join(),
      );
      assert.ok(repeated, `row ${r} chunk ${c / 64} ends in a repeated segment`);
    }
  }
  assert.ok(synthetic > 70 && synthetic < 130, `${synthetic} of ${rows} rows synthetic`);
  assert.throws(() => withSyntheticRows(source, { fraction: 0.5, segment: 60, vocab: 50 }).next(), /not a multiple of the segment 60/);
  assert.throws(() => withSyntheticRows(source, { fraction: 2, segment: 64, vocab: 50 }), /fraction must be in \[0, 1\]/);
});
