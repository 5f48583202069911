/**
 * Tuned lens (Belrose et al. 2023): an untrained lens is the logit lens; a briefly trained one is
 * clearly closer to the model's final distribution at every layer (on held-out tokens); the files
 * round-trip exactly, in the tuned-lens library's layout, and a lens for another model is refused
 * with the file named.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HookedTransformer, PRNG, tensor, type ModelConfig, type Tensor } from '../src/index.js';
import { loadSafetensors, saveSafetensors } from '../src/io/safetensors.js';
import { fixedData } from '../src/train/data.js';
import { logitLens } from '../src/analysis/lens.js';
import {
  compareLenses,
  initTunedLens,
  loadTunedLens,
  saveTunedLens,
  trainTunedLens,
  tunedLens,
  tunedLensLogits,
  type TunedLens,
} from '../src/analysis/tuned-lens.js';
import { randomWeights, tinyConfig } from './tiny-models.js';

const V = 23;

/** A tiny model with every weight random (biases and norm weights too). */
function tinyModel(over: Partial<ModelConfig>, seed: number): HookedTransformer {
  const nLayers = over.nLayers ?? 3;
  const cfg: ModelConfig = tinyConfig({ nLayers, dVocab: V, ...over });
  const params = randomWeights(cfg, seed, 0.3);
  return new HookedTransformer(cfg, params);
}

const randomTokens = (rng: PRNG, b: number, s: number): Tensor =>
  tensor(
    Array.from({ length: b * s }, () => rng.int(V)),
    [b, s],
    'int64',
  );

function maxDiff(a: Tensor, b: Tensor): number {
  const x = a.dataSync() as Float32Array;
  const y = b.dataSync() as Float32Array;
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'glassbox-tuned-lens-'));

describe('tuned lens', () => {
  const model = tinyModel({}, 1);
  const heldOut = randomTokens(new PRNG(99), 16, 12);
  let trained: TunedLens | null = null;
  const getTrained = async (): Promise<TunedLens> => {
    trained ??= (await trainTunedLens(model, (rng) => randomTokens(rng, 8, 12), { steps: 100, lr: 0.01 })).lens;
    return trained;
  };

  it('starts as the logit lens: zero translators give logitLens exactly', () => {
    const lens = initTunedLens(model);
    assert.equal(lens.translators.length, 3);
    assert.deepEqual(lens.translators[0]!.W.shape, [16, 16]);
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    const t = tunedLens(model, lens, prompt, { topK: 3 });
    const l = logitLens(model, prompt, { topK: 3 });
    assert.deepEqual(t.labels, l.labels);
    assert.deepEqual(t.logits.shape, [4, 8, V]);
    assert.ok(maxDiff(t.logits, l.logits) < 1e-5);
    assert.deepEqual(
      t.top.map((layer) => layer.map((pos) => pos.map((p) => p.token))),
      l.top.map((layer) => layer.map((pos) => pos.map((p) => p.token))),
    );
    const kl = compareLenses(model, heldOut, lens);
    assert.deepEqual(kl.labels, ['0_pre', '1_pre', '2_pre', 'final_post']);
    kl.logitLens.forEach((v, i) => assert.ok(Math.abs(v - kl.tunedLens![i]!) < 1e-6));
    assert.equal(kl.logitLens[3], 0);
    assert.ok(kl.logitLens[0]! > 0.3, `the logit lens at the embeddings is far from the output (${kl.logitLens[0]})`);
  });

  it('training lowers KL(final || lens) well below the logit lens at every layer, on held-out tokens', async () => {
    const lens = await getTrained();
    const kl = compareLenses(model, heldOut, lens);
    // Observed: logit lens [1.34, 1.17, 0.19], tuned lens [0.23, 0.07, 0.02] nats.
    for (let l = 0; l < 3; l++)
      assert.ok(kl.tunedLens![l]! < 0.5 * kl.logitLens[l]!, `layer ${l}: tuned ${kl.tunedLens![l]} vs logit ${kl.logitLens[l]}`);
    assert.equal(kl.tunedLens![3], 0);
    // The last layer of the tuned lens is the model's output.
    const prompt = [7, 7, 2, 0, 22, 5];
    const res = tunedLens(model, lens, prompt, { topK: 2 });
    assert.ok(maxDiff(res.logits.index([3]), model.forward([prompt]).index([0])) < 1e-5);
    assert.equal(res.top.length, 4);
    assert.equal(res.top[0]!.length, 6);
    assert.equal(res.top[0]![0]!.length, 2);
    assert.ok(res.top[1]![0]![0]!.prob >= res.top[1]![0]![1]!.prob);
    // tunedLensLogits agrees with tunedLens on one layer.
    const { cache } = model.runWithCache([prompt], { names: ['blocks.1.hook_resid_pre'] });
    assert.ok(maxDiff(tunedLensLogits(model, lens, 1, cache.get('blocks.1.hook_resid_pre')).index([0]), res.logits.index([1])) < 1e-5);
  });

  it('trains from a fixed token set (seeded minibatches) and from a data source, reproducibly', async () => {
    const rows = randomTokens(new PRNG(5), 12, 10);
    const a = await trainTunedLens(model, rows, { steps: 5, lr: 0.01, batchSize: 4, seed: 3 });
    const b = await trainTunedLens(model, rows, { steps: 5, lr: 0.01, batchSize: 4, seed: 3 });
    assert.equal(maxDiff(a.lens.translators[2]!.W, b.lens.translators[2]!.W), 0);
    assert.equal(a.history.length, 5);
    assert.ok('kl_0' in a.history[0]! && 'kl_2' in a.history[0]!);
    const c = await trainTunedLens(model, fixedData({ tokens: rows }), { steps: 3, lr: 0.01 });
    assert.ok(c.lastLoss < (c.history[0]!.loss as number));
    await assert.rejects(trainTunedLens(model, rows, { steps: 1, batchSize: 13 }), /batchSize 13/);
  });

  it('saves and loads exactly, in the tuned-lens layout, and refuses a lens for another model by file', async () => {
    const lens = await getTrained();
    const dir = tmp();
    saveTunedLens(dir, lens, { baseModel: 'tiny' });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.d_model, 16);
    assert.equal(cfg.num_hidden_layers, 3);
    assert.equal(cfg.lens_type, 'linear_tuned_lens');
    assert.equal(cfg.base_model_name_or_path, 'tiny');
    const raw = loadSafetensors(join(dir, 'params.safetensors'));
    assert.deepEqual([...raw.keys()].sort(), ['0.bias', '0.weight', '1.bias', '1.weight', '2.bias', '2.weight']);
    // PyTorch nn.Linear layout: weight is [out, in] = W transposed.
    assert.equal(maxDiff(raw.get('1.weight')!, lens.translators[1]!.W.transpose()), 0);

    const back = loadTunedLens(dir, model);
    lens.translators.forEach((t, l) => {
      assert.equal(maxDiff(back.translators[l]!.W, t.W), 0);
      assert.equal(maxDiff(back.translators[l]!.b, t.b), 0);
    });

    assert.throws(() => loadTunedLens(dir, tinyModel({ dModel: 8, dHead: 2 }, 2)), /config\.json: d_model is 16, the model has d_model 8/);
    assert.throws(() => loadTunedLens(dir, tinyModel({ nLayers: 2 }, 2)), /config\.json: num_hidden_layers is 3, the model has 2 layers/);
    assert.throws(() => compareLenses(tinyModel({ nLayers: 2 }, 2), heldOut, lens), /3 layers .* the model has d_model 16 and 2 layers/);
    // A params file that disagrees with its config is named.
    saveSafetensors(join(dir, 'params.safetensors'), { ...Object.fromEntries(raw), '2.weight': raw.get('2.weight')!.slice([{ end: 8 }]) });
    assert.throws(() => loadTunedLens(dir, model), /params\.safetensors: tensor '2\.weight' has shape \[8,16\], expected \[16,16\]/);
    const noLast = Object.fromEntries([...raw].filter(([k]) => !k.startsWith('2.')));
    saveSafetensors(join(dir, 'params.safetensors'), noLast);
    assert.throws(() => loadTunedLens(dir, model), /params\.safetensors: tensor '2\.weight' is missing/);
    writeFileSync(join(dir, 'config.json'), '{');
    assert.throws(() => loadTunedLens(dir, model), /config\.json: not valid JSON/);
    assert.throws(() => loadTunedLens(join(dir, 'nope'), model), /nope\/config\.json: no such file/);
  });
});
