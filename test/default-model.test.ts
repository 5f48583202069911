/** The default model that ships in models/default: it loads offline, tokenizes, and beats the n-gram baselines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MODEL_DIR, HookedTransformer } from '../src/model/index.js';
import { loadCorpus, splitCorpus } from '../src/train/corpus.js';
import { defaultModelConfig } from '../src/train/default-model.js';

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
