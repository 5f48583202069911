/**
 * SAE evaluation with known answers: an exact identity SAE (W_enc = [I, -I], W_dec = [I; -I], so
 * relu(x) - relu(-x) = x) recovers all of the CE loss with zero FVU; an all-zero SAE recovers none
 * of it (it is the zero ablation); an SAE that outputs the mean activation explains no variance;
 * on a model whose embeddings are one-hot, an SAE whose feature i fires exactly on token i has
 * the densities, dead and dense features one counts by hand; a transcoder is compared with its
 * output hook.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookedTransformer, PRNG, tensor, type ModelConfig, type ModelParams, type Tensor } from '../src/index.js';
import { Sae, attachSae, makeSaeConfig, runSae } from '../src/sae/index.js';
import { evaluateSae, formatEvalReport } from '../src/sae/evals.js';
import { randomWeights, tinyConfig } from './tiny-models.js';
import { matrix } from './sae-helpers.js';

const vec = (t: Tensor): number[] => Array.from(t.cast('float32').dataSync() as Float32Array);

function config(over: Partial<ModelConfig> = {}): ModelConfig {
  return tinyConfig({ dVocab: 12, ...over });
}

function randomModel(seed: number, over: Partial<ModelConfig> = {}): HookedTransformer {
  const cfg = config(over);
  const params = randomWeights(cfg, seed, 0.5);
  return new HookedTransformer(cfg, params);
}

/** A random model whose embedding of token t is e_t and whose position p adds (p + 1) / 64 on dimension 12. */
function oneHotModel(seed: number): HookedTransformer {
  const m = randomModel(seed);
  const { dVocab: V, dModel: D, nCtx } = m.cfg;
  const W_E = new Float32Array(V * D);
  for (let t = 0; t < V; t++) W_E[t * D + t] = 1;
  const W_pos = new Float32Array(nCtx * D);
  for (let p = 0; p < nCtx; p++) W_pos[p * D + V] = (p + 1) / 64;
  const params: ModelParams = { ...m.params, embed: { W_E: tensor(W_E, [V, D]) }, pos_embed: { W_pos: tensor(W_pos, [nCtx, D]) } };
  return new HookedTransformer(m.cfg, params);
}

function standardSae(hook: string, d: number, dSae: number, p: { W_enc: Tensor; W_dec: Tensor; b_enc?: Tensor; b_dec?: Tensor }): Sae {
  const cfg = makeSaeConfig({ architecture: 'standard', d_in: d, d_sae: dSae, hook_name: hook });
  return new Sae(cfg, {
    W_enc: p.W_enc,
    W_dec: p.W_dec,
    b_enc: p.b_enc ?? tensor(new Float32Array(dSae), [dSae]),
    b_dec: p.b_dec ?? tensor(new Float32Array(d), [d]),
  });
}

/** relu(x) - relu(-x) = x: an SAE that reconstructs exactly. */
function identitySae(hook: string, d: number): Sae {
  return standardSae(hook, d, 2 * d, {
    W_enc: matrix(d, 2 * d, (r, c) => (c === r ? 1 : c === r + d ? -1 : 0)),
    W_dec: matrix(2 * d, d, (r, c) => (r === c ? 1 : r === c + d ? -1 : 0)),
  });
}

function seededTokens(n: number, vocab: number, seed: number): Int32Array {
  const rng = new PRNG(seed);
  return Int32Array.from({ length: n }, () => rng.int(vocab));
}

/** The activations at `hook` for consecutive contexts of `S` tokens, [N, d]. */
function cached(model: HookedTransformer, ids: Int32Array, S: number, hook: string): { x: Float32Array; d: number; N: number } {
  const rows: number[][] = [];
  for (let i = 0; i + S <= ids.length; i += S) rows.push(Array.from(ids.subarray(i, i + S)));
  const t = model.runWithCache(rows, { names: [hook] }).cache.get(hook);
  const d = t.shape[t.rank - 1]!;
  return { x: t.cast('float32').dataSync() as Float32Array, d, N: t.size / d };
}

describe('evaluateSae: known answers', () => {
  const model = randomModel(3);
  const hook = 'blocks.1.hook_resid_pre';
  const ids = seededTokens(16 * 6, 12, 9);
  const opts = { batchSize: 2, contextSize: 16 };

  it('an exact identity SAE recovers all of the CE loss, with FVU 0 and cosine 1', () => {
    const r = evaluateSae(model, identitySae(hook, 16), ids, opts);
    const m = r.modelPerformance!;
    assert.equal(r.data.contexts, 6);
    assert.equal(r.data.tokens, 96);
    assert.ok(Math.abs(m.ceLossScore! - 1) < 1e-5, `CE score ${m.ceLossScore}`);
    assert.ok(Math.abs(m.ceLossWithSae - m.ceLossClean) < 1e-5);
    assert.ok(Math.abs(m.ceLossWithAblation - m.ceLossClean) > 1e-3, 'zero ablation changes the loss');
    assert.ok(Math.abs(m.klDivWithSae) < 1e-5);
    assert.ok(Math.abs(m.klDivScore! - 1) < 1e-5);
    assert.ok(r.reconstruction.fvu! < 1e-9);
    assert.ok(Math.abs(r.reconstruction.explainedVariance! - 1) < 1e-9);
    assert.equal(r.reconstruction.mse, 0);
    assert.ok(Math.abs(r.reconstruction.cosineSimilarity - 1) < 1e-5);
    assert.ok(Math.abs(r.reconstruction.l2Ratio! - 1) < 1e-5);
    // L0: every non-zero coordinate fires one of its two features.
    const { x, N } = cached(model, ids, 16, hook);
    const nonzero = x.filter((v) => v !== 0).length;
    assert.ok(Math.abs(r.sparsity.l0 - nonzero / N) < 1e-9);
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
    assert.match(formatEvalReport(r), /CE loss recovered\s+1\.0000/);
  });

  it('an all-zero SAE is the zero ablation: CE and KL recovered 0, every feature dead', () => {
    const z = (r: number, c: number) => 0 * r * c;
    const sae = standardSae(hook, 16, 8, { W_enc: matrix(16, 8, z), W_dec: matrix(8, 16, z) });
    const r = evaluateSae(model, sae, ids, { ...opts, perFeature: true });
    const m = r.modelPerformance!;
    assert.ok(Math.abs(m.ceLossScore!) < 1e-5, `CE score ${m.ceLossScore}`);
    assert.ok(Math.abs(m.klDivScore!) < 1e-5, `KL score ${m.klDivScore}`);
    assert.equal(r.sparsity.l0, 0);
    assert.equal(r.sparsity.deadFeatures, 8);
    assert.equal(r.sparsity.deadFraction, 1);
    assert.equal(r.sparsity.densityHistogram.dead, 8);
    assert.equal(
      r.sparsity.densityHistogram.counts.reduce((a, b) => a + b, 0),
      0,
    );
    assert.equal(r.reconstruction.cosineSimilarity, 0);
    // Explained variance: 1 - Σ‖x‖² / Σ‖x - μ‖², by hand (it is 0 only when the activations have zero mean).
    const { x, d, N } = cached(model, ids, 16, hook);
    const mu = new Float64Array(d);
    for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) mu[j]! += x[i * d + j]! / N;
    let ss = 0;
    let tss = 0;
    for (let i = 0; i < N; i++)
      for (let j = 0; j < d; j++) {
        ss += x[i * d + j]! ** 2;
        tss += (x[i * d + j]! - mu[j]!) ** 2;
      }
    assert.ok(Math.abs(r.reconstruction.explainedVariance! - (1 - ss / tss)) < 1e-4 * (ss / tss));
    assert.ok(Math.abs(r.reconstruction.mse - ss / (N * d)) < 1e-5 * (ss / (N * d)));
  });

  it('an SAE that outputs the mean activation explains no variance', () => {
    const { x, d, N } = cached(model, ids, 16, hook);
    const mu = new Float32Array(d);
    const acc = new Float64Array(d);
    for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) acc[j]! += x[i * d + j]!;
    for (let j = 0; j < d; j++) mu[j] = acc[j]! / N;
    const z = (r: number, c: number) => 0 * r * c;
    // apply_b_dec_to_input subtracts b_dec before the (zero) encoder: no effect on the output b_dec.
    const sae = standardSae(hook, 16, 8, { W_enc: matrix(16, 8, z), W_dec: matrix(8, 16, z), b_dec: tensor(mu, [d]) });
    const r = evaluateSae(model, sae, ids, { ...opts, skipModelPerformance: true });
    assert.equal(r.modelPerformance, null);
    assert.ok(Math.abs(r.reconstruction.explainedVariance!) < 1e-4, `EV ${r.reconstruction.explainedVariance}`);
    assert.ok(Math.abs(r.reconstruction.fvu! - 1) < 1e-4);
  });

  it('the metrics do not depend on how the contexts are batched', () => {
    const sae = Sae.create({ architecture: 'standard', d_in: 16, d_sae: 24, hook_name: hook }, { seed: 2, decoderInitNorm: 1 });
    const a = evaluateSae(model, sae, ids, { batchSize: 1, contextSize: 16, batches: 100 });
    const b = evaluateSae(model, sae, ids, { batchSize: 6, contextSize: 16 });
    const close = (u: number, v: number) => assert.ok(Math.abs(u - v) <= 1e-5 * Math.max(1, Math.abs(v)), `${u} vs ${v}`);
    close(a.reconstruction.explainedVariance!, b.reconstruction.explainedVariance!);
    close(a.reconstruction.mse, b.reconstruction.mse);
    close(a.sparsity.l0, b.sparsity.l0);
    close(a.modelPerformance!.ceLossScore!, b.modelPerformance!.ceLossScore!);
    assert.equal(a.sparsity.deadFeatures, b.sparsity.deadFeatures);
    // batches limits the contexts: 2 batches of 2.
    assert.equal(evaluateSae(model, sae, ids, { batchSize: 2, contextSize: 16, batches: 2 }).data.contexts, 4);
  });
});

describe('evaluateSae: density, dead and dense features by hand', () => {
  // Feature i reads dimension i (token i's one-hot) plus the position dimension; b_enc = -0.5, so it
  // fires exactly on token i, with activation 0.5 + (p + 1) / 64.
  const model = oneHotModel(5);
  const V = 12;
  const sae = standardSae('blocks.0.hook_resid_pre', 16, V, {
    W_enc: matrix(16, V, (r, c) => (r === c || r === V ? 1 : 0)),
    W_dec: matrix(V, 16, (r, c) => (r === c ? 1 : 0)),
    b_enc: tensor(new Float32Array(V).fill(-0.5), [V]),
  });
  // 48 tokens: token 0 x20, 1 x12, 2 x8, 3 x4, 5 x3, 9 x1; the other six never occur.
  const counts = new Map([
    [0, 20],
    [1, 12],
    [2, 8],
    [3, 4],
    [5, 3],
    [9, 1],
  ]);
  const stream: number[] = [];
  for (const [t, c] of counts) for (let i = 0; i < c; i++) stream.push(t);
  const rng = new PRNG(4);
  for (let i = stream.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [stream[i], stream[j]] = [stream[j]!, stream[i]!];
  }

  it('densities, L0, dead and dense fractions match the token counts', () => {
    const r = evaluateSae(model, sae, stream, { batchSize: 2, contextSize: 16, perFeature: true, denseThreshold: 0.2 });
    assert.equal(r.data.tokensCounted, 48);
    assert.equal(r.sparsity.l0, 1);
    const expected = Array.from({ length: V }, (_, i) => (counts.get(i) ?? 0) / 48);
    r.sparsity.featureDensity!.forEach((d, i) => assert.ok(Math.abs(d - expected[i]!) < 1e-12, `feature ${i}: ${d} vs ${expected[i]}`));
    assert.equal(r.sparsity.deadFeatures, 6);
    assert.equal(r.sparsity.deadFraction, 0.5);
    assert.equal(r.sparsity.denseFeatures, 2); // 20/48 and 12/48 exceed 0.2
    // log10 densities: 20/48 -0.38, 12/48 -0.60, 8/48 -0.78, 4/48 -1.08, 3/48 -1.20, 1/48 -1.68; bins of 0.25 from -8.
    const h = r.sparsity.densityHistogram;
    assert.equal(h.dead, 6);
    assert.equal(
      h.counts.reduce((a, b) => a + b, 0),
      6,
    );
    const binOf = (d: number) => Math.floor((Math.log10(d) + 8) / 0.25);
    for (const [, c] of counts) assert.ok(h.counts[binOf(c / 48)]! >= 1);
    // L1: each token's activation is 0.5 + (p + 1) / 64.
    let l1 = 0;
    for (let i = 0; i < 48; i++) l1 += 0.5 + ((i % 16) + 1) / 64;
    assert.ok(Math.abs(r.sparsity.l1 - l1 / 48) < 1e-6);
  });

  it('excluded token ids are left out of the counts', () => {
    const r = evaluateSae(model, sae, stream, { batchSize: 3, contextSize: 16, perFeature: true, excludeSpecial: [0] });
    assert.equal(r.data.tokensCounted, 28);
    assert.deepEqual(r.data.excludedTokenIds, [0]);
    assert.equal(r.sparsity.featureDensity![0], 0);
    assert.ok(Math.abs(r.sparsity.featureDensity![1]! - 12 / 28) < 1e-12);
    assert.equal(r.sparsity.deadFeatures, 7);
  });

  it('refuses a source too short for one context, and an SAE at a hook the model lacks', () => {
    assert.throws(() => evaluateSae(model, sae, [1, 2, 3], { contextSize: 16 }), /too few for one context of 16/);
    assert.throws(() => evaluateSae(model, sae.withConfig({ hook_name: 'blocks.7.hook_resid_pre' }), stream), /not a hook point/);
  });
});

describe('evaluateSae: transcoders', () => {
  it('compares the reconstruction with the output hook, and splices it there', () => {
    const model = randomModel(8);
    const base = Sae.create(
      {
        architecture: 'transcoder',
        d_in: 16,
        d_sae: 20,
        d_out: 16,
        hook_name: 'blocks.0.ln2.hook_normalized',
        hook_name_out: 'blocks.0.hook_mlp_out',
      },
      { seed: 3, decoderInitNorm: 1 },
    );
    const ids = seededTokens(32, 12, 1);
    const r = evaluateSae(model, base, ids, { contextSize: 16, batchSize: 2 });
    assert.equal(r.sae.transcoder, true);
    assert.equal(r.sae.hookNameOut, 'blocks.0.hook_mlp_out');
    const rows = [Array.from(ids.subarray(0, 16)), Array.from(ids.subarray(16, 32))];
    const { cache } = model.runWithCache(rows, { names: ['blocks.0.ln2.hook_normalized', 'blocks.0.hook_mlp_out'] });
    const out = vec(runSae(base, cache.get('blocks.0.ln2.hook_normalized')).output);
    const target = vec(cache.get('blocks.0.hook_mlp_out'));
    const mse = out.reduce((s, v, i) => s + (v - target[i]!) ** 2, 0) / out.length;
    assert.ok(Math.abs(r.reconstruction.mse - mse) < 1e-5 * Math.max(1, mse), `${r.reconstruction.mse} vs ${mse}`);
    const ce = model.loss(rows).item();
    const logp = model.runWithHooks(rows, { hooks: attachSae(model, base) }).logSoftmax(-1);
    const lp = vec(logp);
    let nll = 0;
    for (let b = 0; b < 2; b++) for (let p = 0; p < 15; p++) nll -= lp[(b * 16 + p) * 12 + rows[b]![p + 1]!]!;
    assert.ok(Math.abs(r.modelPerformance!.ceLossWithSae - nll / 30) < 1e-5);
    assert.ok(Math.abs(r.modelPerformance!.ceLossClean - ce) < 1e-5);
  });
});
