/**
 * buildDefaultModel end to end at toy size: tokenizer, token files, the synthetic copying stage,
 * the short-window stage, the full-context stage with random repeats, evaluation, and a model
 * directory that loads again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HookedTransformer } from '../src/model/index.js';
import { buildDefaultModel } from '../src/train/default-model.js';

test('buildDefaultModel: synthetic copying, short windows, then the full context with random repeats, then a report and a loadable model', async () => {
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
      repeats: 'random',
      repeatFraction: 0.5,
      batchSize: 2,
      seqLen: 128,
      tokensSeen: 9 * 2 * 128,
      seconds: 0,
      lr: 2e-3,
    },
  );
  // Each early stage ran in its own run directory, then the main stage.
  const lastStep = (run: string): number =>
    readFileSync(join(workDir, run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.kind === 'train')
      .at(-1).step;
  assert.equal(lastStep('run-synthetic'), 2);
  assert.equal(lastStep('run-short'), 3);
  assert.ok(existsSync(join(workDir, 'run', 'metrics.jsonl')));
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
