/**
 * The default model that ships in models/default: it loads offline, tokenizes, beats the n-gram
 * baselines, and has induction heads that copy repeated random tokens and repeated text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MODEL_DIR, HookedTransformer } from '../src/model/index.js';
import { loadCorpus, splitCorpus } from '../src/train/corpus.js';
import { defaultModelConfig } from '../src/recipes/default-model.js';
import { inductionScores, previousTokenScores } from '../src/analysis/heads.js';

const mean = (a: ArrayLike<number>): number => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

test("fromPretrained('default') opens the shipped model with its tokenizer", async () => {
  const model = await HookedTransformer.fromPretrained('default');
  assert.deepEqual(model.cfg, { ...defaultModelConfig({}, 4095) });
  const text = 'Call me Ishmael. The President of the United States.';
  const ids = model.toTokens(text)[0]!;
  assert.equal(ids[0], 4095, '<|endoftext|> is prepended as BOS');
  assert.equal(model.toString(ids.slice(1)), text);
});

test('the shipped model beats the bigram baseline on held-out text by a wide margin', async () => {
  const report = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'training.json'), 'utf8'));
  assert.ok(
    report.validationLoss < report.bigramValidationLoss - 1,
    `validation ${report.validationLoss} vs bigram ${report.bigramValidationLoss}`,
  );
  // Recompute on a validation document (not seen in training) rather than trusting the report.
  const model = await HookedTransformer.fromPretrained('default');
  const doc = splitCorpus(loadCorpus()).validation.documents[0]!;
  const ids = model.toTokens(doc.text.slice(0, 4000), { prependBos: false })[0]!.slice(0, 256);
  const loss = model.loss([ids]).item() as number;
  assert.ok(loss < report.bigramValidationLoss - 0.5, `loss ${loss} on ${doc.file}`);
  // The report records the corpus exactly.
  assert.equal(report.corpus.splits.validation.files[0], doc.file);
});

test('the shipped model has induction heads, and they copy: repeated random tokens and repeated text', async () => {
  const model = await HookedTransformer.fromPretrained('default');
  // Rows [BOS, r, r] of 20 random tokens: the induction score is the attention from r[t] in the
  // second copy to r[t + 1] in the first. (Its synthetic training repeated at distances of 16 to
  // 32 tokens; the README shows how the scores fall off beyond.)
  const n = 20;
  const { scores, tokens } = inductionScores(model, { seqLen: n, batch: 8, seed: 11 });
  const induction = scores.toArray() as number[][];
  const best = Math.max(...induction.flat());
  assert.ok(best > 0.8, `best induction score ${best}`);
  // Induction needs a previous-token head in an earlier layer, whose output the induction head's keys read.
  const bestLayer = induction.findIndex((row) => row.includes(best));
  const previous = previousTokenScores(model, tokens).toArray() as number[][];
  const bestPrevious = Math.max(...previous.slice(0, bestLayer).flat());
  assert.ok(bestPrevious > 0.9, `best previous-token score below layer ${bestLayer}: ${bestPrevious}`);

  // The heads do what the score says: the second copy of random tokens is predicted far better
  // than the first. perToken[t] predicts token t + 1; r[0] of the second copy cannot be copied yet.
  const perToken = model.loss(tokens, { perToken: true }).cast('float32').mean(0).dataSync() as Float32Array;
  const first = mean(perToken.subarray(0, n));
  const repeated = mean(perToken.subarray(n + 1, 2 * n));
  assert.ok(repeated < first - 5, `random tokens: first ${first}, repeated ${repeated}`);

  // And on held-out text: a passage seen a second time is predicted better than the first time.
  const doc = splitCorpus(loadCorpus()).validation.documents[1]!;
  const passage = model.toTokens(doc.text.slice(0, 2000), { prependBos: false })[0]!.slice(0, 100);
  const text = model
    .loss([[model.cfg.bosTokenId!, ...passage, ...passage]], { perToken: true })
    .cast('float32')
    .dataSync() as Float32Array;
  const textFirst = mean(text.subarray(0, 100));
  const textRepeated = mean(text.subarray(101, 200));
  assert.ok(textRepeated < textFirst - 0.5, `text: first ${textFirst}, repeated ${textRepeated}`);
});
