import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { HookedTransformer, gpt2Config, initParams, loadFromDirectory, saveModel } from '../src/model/index.js';
import { mapTensors, randn } from '../src/tensor/index.js';
import { grokkingConfig } from '../src/recipes/toys/grokking.js';
import { defaultModelConfig } from '../src/recipes/default-model.js';
import { inductionConfig } from '../src/recipes/toys/induction.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'glassbox-save-'));
const tokens = [
  [3, 1, 4, 1, 5, 9, 2, 6],
  [2, 7, 1, 8, 2, 8, 1, 8],
];

/** A model with every weight random (norm weights and biases too), so any mix-up shows. */
function randomModel(cfg: ReturnType<typeof gpt2Config>, seed: number): HookedTransformer {
  let k = seed;
  const params = mapTensors(initParams(cfg, { seed }), (t) => randn(t.shape, { seed: k++ }).mul(0.3).add(t));
  if (cfg.tiedEmbeddings) params.unembed.W_U = params.embed.W_E.transpose();
  return new HookedTransformer(cfg, params);
}

/** Loads `dir` and checks it has `model`'s config and gives bit-identical logits on `tokens`. */
function assertReloadsExactly(dir: string, model: HookedTransformer, tokens: number[][]): void {
  const loaded = loadFromDirectory(dir);
  assert.deepEqual(loaded.cfg, model.cfg);
  assert.deepEqual(
    Array.from(loaded.forward(tokens).dataSync() as Float32Array),
    Array.from(model.forward(tokens).dataSync() as Float32Array),
  );
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('a GPT-2 model saves in Hugging Face format (tied embeddings) and loads back identically', () => {
  const cfg = gpt2Config({ nLayers: 2, dModel: 16, nHeads: 4, dVocab: 11, nCtx: 8, bosTokenId: 10, eosTokenId: 10 });
  const model = randomModel(cfg, 1);
  const dir = tmp();
  assert.equal(model.save(dir), 'hf');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt2');
  assert.equal(config.tie_word_embeddings, true);
  assert.deepEqual(
    [config.n_layer, config.n_embd, config.n_head, config.vocab_size, config.n_positions, config.n_inner],
    [2, 16, 4, 11, 8, 64],
  );
  const file = SafetensorsFile.open(join(dir, 'model.safetensors'));
  assert.deepEqual(file.info('transformer.h.0.attn.c_attn.weight').shape, [16, 48]); // Conv1D [in, out], q|k|v
  assert.deepEqual(file.info('transformer.h.1.mlp.c_proj.weight').shape, [64, 16]);
  assert.ok(!file.has('lm_head.weight'), 'tied embeddings store only wte');
  file.close();
  assertReloadsExactly(dir, model, tokens);
});

test('an untied unembedding is stored as lm_head; float16 storage halves the file and stays close', () => {
  const cfg = gpt2Config({ nLayers: 1, dModel: 8, nHeads: 2, dVocab: 11, nCtx: 8, tiedEmbeddings: false });
  const model = randomModel(cfg, 2);
  const dir = tmp();
  model.save(dir);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(config.tie_word_embeddings, false);
  const loaded = loadFromDirectory(dir);
  assert.deepEqual(
    Array.from(loaded.forward(tokens).dataSync() as Float32Array),
    Array.from(model.forward(tokens).dataSync() as Float32Array),
  );

  const half = tmp();
  model.save(half, { dtype: 'float16' });
  assert.equal(JSON.parse(readFileSync(join(half, 'config.json'), 'utf8')).torch_dtype, 'float16');
  const f16 = SafetensorsFile.open(join(half, 'model.safetensors'));
  assert.equal(f16.info('transformer.wte.weight').dtype, 'F16');
  f16.close();
  const d = maxDiff(loadFromDirectory(half).forward(tokens).dataSync() as Float32Array, model.forward(tokens).dataSync() as Float32Array);
  assert.ok(d > 0 && d < 2e-2, `float16 logits differ by ${d}`);
});

test('models Hugging Face cannot describe save in glassbox format and load back identically', () => {
  for (const cfg of [
    inductionConfig({ dModel: 16, nHeads: 2, dVocab: 11, halfLength: 4 }),
    grokkingConfig({ p: 7, dModel: 16, nHeads: 2 }),
  ]) {
    const params = mapTensors(initParams(cfg, { seed: 3 }), (t) => randn(t.shape, { seed: 5 }).mul(0.3).add(t));
    const model = new HookedTransformer(cfg, params);
    const dir = tmp();
    assert.equal(saveModel(dir, model), 'glassbox');
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).model_type, 'glassbox');
    assertReloadsExactly(dir, model, [[1, 2, 3]]);
    assert.throws(
      () => saveModel(tmp(), model, { format: 'hf' }),
      /cannot be written in Hugging Face GPT-(2|NeoX) format \((attention-only|norm is none)/,
    );
  }
});

test('processed weights (folded LayerNorm) cannot pose as GPT-2 and fall back to glassbox format', () => {
  const cfg = gpt2Config({ nLayers: 1, dModel: 8, nHeads: 2, dVocab: 11, nCtx: 8 });
  const processed = randomModel(cfg, 4).processWeights();
  const dir = tmp();
  assert.equal(processed.save(dir), 'glassbox');
  const input = [[1, 2, 3, 4]];
  const d = maxDiff(loadFromDirectory(dir).forward(input).dataSync() as Float32Array, processed.forward(input).dataSync() as Float32Array);
  assert.equal(d, 0);
});

const FIXTURES_HF = join(import.meta.dirname, 'fixtures', 'hf');

test('a GPT-NeoX checkpoint saved again is tensor-for-tensor the Hugging Face file it was loaded from', () => {
  // The fixture has partial rotary (25%), a parallel residual and an untied embed_out: every part of the layout.
  const src = join(FIXTURES_HF, 'gpt_neox');
  const model = loadFromDirectory(src);
  const dir = tmp();
  assert.equal(model.save(dir), 'hf');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt_neox');
  assert.equal(config.use_parallel_residual, true);
  assert.equal(config.rope_parameters.partial_rotary_factor, 0.25);
  const original = SafetensorsFile.open(join(src, 'model.safetensors'));
  const written = SafetensorsFile.open(join(dir, 'model.safetensors'));
  const names = original.keys().filter((k) => !/attention\.(bias|masked_bias|rotary_emb)/.test(k));
  assert.deepEqual([...written.keys()].sort(), [...names].sort());
  for (const name of names) {
    assert.deepEqual(written.info(name).shape, original.info(name).shape, name);
    assert.deepEqual(
      Array.from(written.read(name).dataSync() as Float32Array),
      Array.from(original.read(name).dataSync() as Float32Array),
      name,
    );
  }
  original.close();
  written.close();
  assertReloadsExactly(dir, model, tokens);
});

test('the GPT-2 layout with rotary positions (the default model) saves as GPT-NeoX with tied embeddings', () => {
  const cfg = defaultModelConfig({ positional: 'rotary', nLayers: 2, dModel: 16, nHeads: 4, vocabSize: 11, nCtx: 8 });
  const model = randomModel(cfg, 6);
  const dir = tmp();
  assert.equal(model.save(dir), 'hf');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt_neox');
  assert.equal(config.use_parallel_residual, false);
  assert.equal(config.tie_word_embeddings, true);
  assert.equal(config.hidden_act, 'gelu_new');
  const file = SafetensorsFile.open(join(dir, 'model.safetensors'));
  assert.ok(!file.has('embed_out.weight'), 'tied embeddings store only embed_in');
  file.close();
  assertReloadsExactly(dir, model, tokens);
});
