/**
 * Training and evaluating cross-layer transcoders on a tiny model (test/tiny-models.ts): the loss
 * falls and the MLP outputs are reconstructed (FVU below 0.2 on every layer, CE-loss recovered
 * above one half); a run interrupted and resumed ends in exactly the state of an uninterrupted
 * one; the multi-hook store's batches are the model's activations at every layer's hooks; resume
 * with other settings is refused; the run directory's set loads back.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CLT_HOOK_IN,
  CLT_HOOK_OUT,
  CrossLayerTranscoder,
  evaluateClt,
  loadClt,
  multiHookView,
  spliceHooks,
  trainClt,
  zeroAblationHooks,
  type TrainCltOptions,
} from '../src/sae/index.js';
import { tensor } from '../src/index.js';
import { nextTokenLoss } from '../src/model/hooked.js';
import { numbers } from './helpers.js';
import { TINY_VOCAB, tinyRandomModel } from './tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'glassbox-clt-train-'));
after(() => rmSync(root, { recursive: true, force: true }));

const model = tinyRandomModel(3);
/** A deterministic token stream over the tiny vocabulary. */
const ids = Array.from({ length: 4000 }, (_, i) => (i * 7 + (i % 5) * 3) % TINY_VOCAB);
const base: TrainCltOptions = {
  dataset: ids,
  contextSize: 8,
  prependBos: false,
  dSae: 64,
  totalTrainingSteps: 200,
  trainBatchSizeTokens: 64,
  storeBatchSizePrompts: 4,
  nBatchesInBuffer: 4,
  lr: 3e-3,
  sparsityCoefficient: 0.01,
  progress: false,
  logEvery: 10,
};
const evalRows = Array.from({ length: 8 }, (_, b) => Array.from({ length: 8 }, (_, i) => (b * 5 + i * 3 + 1) % TINY_VOCAB));

describe('trainClt on a tiny model', () => {
  it("the multi-hook view's batches are every layer's input and MLP output, concatenated, from one forward pass", () => {
    const inputs = ['blocks.0.ln2.hook_normalized', 'blocks.1.ln2.hook_normalized'];
    const targets = ['blocks.0.hook_mlp_out', 'blocks.1.hook_mlp_out'];
    const view = multiHookView(model, inputs, targets);
    const tokens = [[1, 2, 3, 4]];
    const { cache } = view.runWithCache(tokens, { names: [CLT_HOOK_IN, CLT_HOOK_OUT] });
    const direct = model.runWithCache(tokens, { names: [...inputs, ...targets] }).cache;
    const x = numbers(cache.get(CLT_HOOK_IN));
    const y = numbers(cache.get(CLT_HOOK_OUT));
    assert.deepEqual(cache.get(CLT_HOOK_IN).shape, [1, 4, 32]);
    for (let p = 0; p < 4; p++)
      for (let l = 0; l < 2; l++) {
        assert.deepEqual(x.slice(p * 32 + l * 16, p * 32 + (l + 1) * 16), numbers(direct.get(inputs[l]!)).slice(p * 16, (p + 1) * 16));
        assert.deepEqual(y.slice(p * 32 + l * 16, p * 32 + (l + 1) * 16), numbers(direct.get(targets[l]!)).slice(p * 16, (p + 1) * 16));
      }
  });

  it('the loss falls, FVU ends below 0.2 on every layer and CE-loss recovered above 0.5 (JumpReLU CLT)', async () => {
    const r = await trainClt(model, base);
    const first = r.history[0]!['losses/overall_loss'] as number;
    const last = r.history.at(-1)!['losses/overall_loss'] as number;
    assert.ok(last < 0.5 * first, `loss ${first} -> ${last}`);
    const report = evaluateClt(model, r.clt, evalRows);
    for (const f of report.fvu) assert.ok(f < 0.2, `FVU ${report.fvu.join(', ')}`);
    assert.ok(report.ceLossRecovered > 0.5, `CE-loss recovered ${report.ceLossRecovered}`);
    for (const l0 of report.l0) assert.ok(l0 > 0 && l0 < 64, `L0 ${report.l0.join(', ')}`);
  });

  it('ReLU, TopK and per-layer sets train too (the loss falls)', async () => {
    for (const o of [{ activation: 'relu' as const }, { activation: 'topk' as const, k: 8 }, { crossLayer: false, skip: true }]) {
      const r = await trainClt(model, { ...base, ...o, totalTrainingSteps: 60 });
      const first = r.history[0]!['losses/overall_loss'] as number;
      const last = r.history.at(-1)!['losses/overall_loss'] as number;
      assert.ok(last < 0.7 * first, `${JSON.stringify(o)}: loss ${first} -> ${last}`);
      if (o.activation === 'topk') for (let l = 0; l < 2; l++) assert.ok((r.history.at(-1)![`metrics/l0/layer_${l}`] as number) <= 8);
    }
  });

  it('an interrupted run resumed from its checkpoint ends in the state of an uninterrupted one', async () => {
    const o = { ...base, totalTrainingSteps: 12, logEvery: 1, checkpointEvery: 5 };
    const whole = await trainClt(model, { ...o, outDir: join(root, 'whole') });
    const dir = join(root, 'parts');
    const stop = new AbortController();
    const part = await trainClt(model, {
      ...o,
      outDir: dir,
      signal: stop.signal,
      onLog: (rec) => {
        if (rec.step === 7) stop.abort();
      },
    });
    assert.equal(part.interrupted, true);
    assert.equal(part.step, 7);
    const resumed = await trainClt(model, { ...o, outDir: dir, resume: true });
    assert.equal(resumed.startStep, 7);
    assert.equal(resumed.step, 12);
    for (const [k, v] of Object.entries(whole.trainingParams)) assert.deepEqual(numbers(resumed.trainingParams[k]!), numbers(v), k);
    assert.deepEqual(resumed.scaleIn, whole.scaleIn);
    const strip = (h: typeof whole.history) => h.map(({ elapsed: _e, ...rest }) => rest);
    assert.deepEqual(strip(resumed.history), strip(whole.history));
    // The saved set is the returned one.
    const saved = loadClt(dir);
    for (const [k, v] of Object.entries(resumed.clt.params)) assert.deepEqual(numbers(saved.params[k]!), numbers(v), k);
    // Resuming with other settings is refused, naming the field.
    await assert.rejects(trainClt(model, { ...o, outDir: dir, resume: true, dSae: 32 }), /settings differ.*dSae|widths/);
    await assert.rejects(trainClt(model, { ...o, outDir: dir }), /already holds checkpoints/);
  });

  it('evaluateClt by hand: a set whose decoders are zero splices in zero-ablation (CE recovered 0, FVU = sum ||y||^2 / sum ||y - mean||^2)', () => {
    const cfg = {
      n_layers: 2,
      d_in: 16,
      d_out: 16,
      widths: [8, 8],
      activation: 'relu' as const,
      cross_layer: true,
      skip: false,
      hook_names_in: ['blocks.0.ln2.hook_normalized', 'blocks.1.ln2.hook_normalized'],
      hook_names_out: ['blocks.0.hook_mlp_out', 'blocks.1.hook_mlp_out'],
    };
    const init = CrossLayerTranscoder.init(cfg, { seed: 1 });
    const params = { ...init.params, 'W_dec.0': init.params['W_dec.0']!.mul(0), 'W_dec.1': init.params['W_dec.1']!.mul(0) };
    const zero = new CrossLayerTranscoder(cfg, params);
    const rows = evalRows.slice(0, 3);
    const r = evaluateClt(model, zero, rows, { batchSize: 2 });
    const tokens = tensor(
      BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
      [3, 8],
      'int64',
    );
    const spliced = model.hooked(tokens, { hooks: spliceHooks(zero) }).logits;
    const ablated = model.hooked(tokens, { hooks: zeroAblationHooks(zero) }).logits;
    assert.deepEqual(numbers(spliced), numbers(ablated));
    assert.ok(Math.abs(r.ceLossRecovered) < 1e-6, `${r.ceLossRecovered}`);
    assert.ok(Math.abs(r.ceZeroAblation - (nextTokenLoss(ablated, tokens, null, false).item() as number)) < 1e-5);
    const { logits, cache } = model.runWithCache(tokens, { names: cfg.hook_names_out });
    assert.ok(Math.abs(r.ceClean - (nextTokenLoss(logits, tokens, null, false).item() as number)) < 1e-5);
    for (let l = 0; l < 2; l++) {
      const y = numbers(cache.get(cfg.hook_names_out[l]!));
      const n = y.length / 16;
      const mean = Array.from({ length: 16 }, (_, i) => y.filter((_, j) => j % 16 === i).reduce((a, b) => a + b, 0) / n);
      const sq = y.reduce((a, v) => a + v * v, 0);
      const tss = y.reduce((a, v, j) => a + (v - mean[j % 16]!) ** 2, 0);
      assert.ok(Math.abs(r.fvu[l]! - sq / tss) < 1e-4 * (sq / tss), `layer ${l}: ${r.fvu[l]} vs ${sq / tss}`);
    }
    assert.equal(r.positions, 24);
  });
});
