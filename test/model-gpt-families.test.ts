/**
 * The GPT-era families beyond parity (test/model-hf.test.ts): TransformerLens hook points,
 * GPT-J's adjacent-pair rotary and BLOOM's ALiBi as TransformerLens exposes them, weight
 * processing and saving keep what each model computes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '../src/index.js';
import { alibiSlopes } from '../src/model/forward.js';
import { HookedTransformer, initParams, loadFromDirectory } from '../src/model/index.js';
import { validateParams } from '../src/model/hooked.js';
import { directLogitAttribution } from '../src/analysis/index.js';
import { FIXTURES_HF, loadFixtureModel, maxDiff, readAll } from './fixture-utils.js';

const FAMILIES = ['phi', 'stablelm', 'stablelm_seq', 'gpt_neo', 'gptj', 'opt', 'opt_postln', 'bloom'];

const ints = (t: Tensor): number[] => Array.from(t.dataSync() as Int32Array, Number);
const rows = (t: Tensor): number[][] => {
  const [b, s] = t.shape as [number, number];
  const v = ints(t);
  return Array.from({ length: b }, (_, i) => v.slice(i * s, (i + 1) * s));
};
const floats = (t: Tensor): Float32Array => t.dataSync() as Float32Array;

/** The left-padded batch of the fixture: tokens and mask. */
function leftBatch(fam: string): { tokens: number[][]; mask: number[][] } {
  const ref = readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
  return { tokens: rows(ref.get('batch_left.input_ids')!), mask: rows(ref.get('batch_left.attention_mask')!) };
}

describe('ALiBi slopes', () => {
  it('equal transformers build_alibi_tensor, non-power-of-two head counts included', () => {
    // From transformers 5.18 build_alibi_tensor (float32), slope = alibi at key position 1.
    const expected: Record<number, number[]> = {
      4: [0.25, 0.0625, 0.015625, 0.00390625],
      6: [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125],
      12: [
        0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625, 0.7071067690849304, 0.3535533845424652, 0.1767766773700714,
        0.0883883386850357,
      ],
      16: [
        0.7071067690849304, 0.4999999701976776, 0.3535533845424652, 0.2499999850988388, 0.1767766773700714, 0.1249999850988388,
        0.0883883386850357, 0.0624999925494194, 0.044194165617227554, 0.031249994412064552, 0.022097082808613777, 0.015624997206032276,
        0.011048541404306889, 0.007812498137354851, 0.005524270236492157, 0.0039062488358467817,
      ],
      20: [
        0.7071067690849304, 0.4999999701976776, 0.3535533845424652, 0.2499999850988388, 0.1767766773700714, 0.1249999850988388,
        0.0883883386850357, 0.0624999925494194, 0.044194165617227554, 0.031249994412064552, 0.022097082808613777, 0.015624997206032276,
        0.011048541404306889, 0.007812498137354851, 0.005524270236492157, 0.0039062488358467817, 0.8408964276313782, 0.5946035981178284,
        0.4204482436180115, 0.2973017990589142,
      ],
    };
    for (const [n, want] of Object.entries(expected)) assert.deepEqual(Array.from(alibiSlopes(Number(n))), want, `${n} heads`);
  });
});

for (const fam of FAMILIES) {
  describe(`${fam}: beyond parity`, () => {
    const model = loadFixtureModel(FIXTURES_HF, fam);
    const { tokens, mask } = leftBatch(fam);

    it('has TransformerLens hook points', () => {
      const has = (n: string) => model.hookNames.includes(n);
      for (const n of [
        'hook_embed',
        'blocks.0.hook_resid_pre',
        'blocks.0.hook_resid_post',
        'blocks.0.ln1.hook_normalized',
        'blocks.0.ln2.hook_scale',
      ])
        assert.ok(has(n), n);
      for (const n of ['hook_q', 'hook_k', 'hook_v', 'hook_z', 'hook_attn_scores', 'hook_pattern']) assert.ok(has(`blocks.0.attn.${n}`), n);
      for (const n of ['hook_attn_out', 'hook_mlp_out', 'mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_in']) assert.ok(has(`blocks.0.${n}`), n);
      assert.equal(has('hook_pos_embed'), ['gpt_neo', 'opt', 'opt_postln'].includes(fam));
      assert.equal(has('blocks.0.attn.hook_rot_q'), ['phi', 'stablelm', 'stablelm_seq', 'gptj'].includes(fam));
      // OPT-350m's norms end each block; there is no final norm.
      assert.equal(has('ln_final.hook_normalized'), fam !== 'opt_postln');
      assert.equal(has('embed.ln.hook_normalized'), fam === 'bloom');
      // Parallel attention and MLP (Phi, GPT-J, StableLM with use_parallel_residual) have no resid_mid.
      assert.equal(has('blocks.0.hook_resid_mid'), !model.cfg.parallelResidual);
    });

    it('processWeights keeps the log-probabilities (left-padded batch), or refuses what it cannot fold', () => {
      const before = model.forward(tokens, { attentionMask: mask }).logSoftmax(-1);
      let processed = model;
      if (model.cfg.normAfterAdd) {
        // Norms after the residual add: their outputs are the residual stream; folding or centring would change the model.
        assert.throws(() => model.processWeights(), /foldLn is not possible .* after the residual add/);
        assert.throws(() => model.processWeights({ foldLn: false }), /centerWritingWeights is not possible/);
        processed = model.processWeights({ foldLn: false, centerWritingWeights: false });
      } else processed = model.processWeights();
      const after = processed.forward(tokens, { attentionMask: mask }).logSoftmax(-1);
      assert.ok(maxDiff(before, after, mask) < 1e-4, `${maxDiff(before, after, mask)}`);
    });

    it('direct logit attribution adds up to the logit difference, or refuses', () => {
      const run = () => directLogitAttribution(model, tokens, { answer: 3, wrong: 7, attentionMask: mask });
      if (model.cfg.normAfterAdd) return void assert.throws(run, /not a sum of component outputs/);
      const { total, logitDiff } = run();
      assert.ok(maxDiff(total.reshape([-1, 1]), logitDiff.reshape([-1, 1])) < 1e-3);
    });

    it('initParams builds a fresh model of the same architecture', () => {
      const params = initParams(model.cfg, { seed: 1 });
      validateParams(model.cfg, params, 'initParams');
      const fresh = new HookedTransformer(model.cfg, params);
      assert.deepEqual(fresh.hookNames, model.hookNames);
      assert.deepEqual(fresh.forward(tokens, { attentionMask: mask }).shape, [tokens.length, tokens[0]!.length, model.cfg.dVocab]);
    });

    it('saves and loads back with the same logits', () => {
      const dir = mkdtempSync(join(tmpdir(), `glassbox-${fam}-`));
      model.save(dir);
      const back = loadFromDirectory(dir);
      assert.deepEqual(back.cfg, model.cfg);
      const d = maxDiff(back.forward(tokens, { attentionMask: mask }), model.forward(tokens, { attentionMask: mask }), mask);
      assert.ok(d < 1e-5, `${d}`);
    });
  });
}

describe('GPT-J rotary (TransformerLens rotary_adjacent_pairs)', () => {
  const model = loadFixtureModel(FIXTURES_HF, 'gptj');
  const { nHeads: nH, dHead: dh, rotaryDim: rd } = model.cfg;
  it('hook_q is the unrotated projection; hook_rot_q rotates dims (2i, 2i+1) by position * 10000^(-2i/rotary_dim)', () => {
    const toks = [[5, 9, 200, 31, 7, 400]];
    const { cache } = model.runWithCache(toks, {
      names: ['blocks.0.ln1.hook_normalized', 'blocks.0.attn.hook_q', 'blocks.0.attn.hook_rot_q'],
    });
    const s = toks[0]!.length;
    const q0 = cache.get('blocks.0.ln1.hook_normalized').matmul(model.params.blocks[0]!.attn.W_Q).reshape([1, s, nH, dh]);
    assert.ok(maxDiff(cache.get('blocks.0.attn.hook_q'), q0) < 1e-6);
    const q = floats(cache.get('blocks.0.attn.hook_q'));
    const rot = floats(cache.get('blocks.0.attn.hook_rot_q'));
    let err = 0;
    for (let p = 0; p < s; p++)
      for (let h = 0; h < nH; h++) {
        const o = (p * nH + h) * dh;
        for (let i = 0; i < rd / 2; i++) {
          const a = p * Math.pow(10000, (-2 * i) / rd);
          const [x, y] = [q[o + 2 * i]!, q[o + 2 * i + 1]!];
          err = Math.max(err, Math.abs(rot[o + 2 * i]! - (x * Math.cos(a) - y * Math.sin(a))));
          err = Math.max(err, Math.abs(rot[o + 2 * i + 1]! - (y * Math.cos(a) + x * Math.sin(a))));
        }
        for (let i = rd; i < dh; i++) err = Math.max(err, Math.abs(rot[o + i]! - q[o + i]!));
      }
    assert.ok(err < 1e-4, `${err}`);
  });
});

describe('BLOOM ALiBi in hook_attn_scores (TransformerLens form)', () => {
  const model = loadFixtureModel(FIXTURES_HF, 'bloom');
  const { nHeads: nH, dHead: dh } = model.cfg;
  const names = ['blocks.0.attn.hook_q', 'blocks.0.attn.hook_k', 'blocks.0.attn.hook_attn_scores'];
  it('scores are q.k / sqrt(d_head) + slope * (key pos - query pos), with left padding not moving positions', () => {
    const row = [5, 9, 200, 31, 7];
    const pad = 3;
    const { cache } = model.runWithCache([row], { names });
    const padded = model.runWithCache([[...Array(pad).fill(0), ...row]], {
      names,
      attentionMask: [[...Array(pad).fill(0), ...row.map(() => 1)]],
    });
    const s = row.length;
    const q = floats(cache.get(names[0]!));
    const k = floats(cache.get(names[1]!));
    const scores = floats(cache.get(names[2]!));
    const paddedScores = floats(padded.cache.get(names[2]!));
    const slopes = alibiSlopes(nH);
    let err = 0;
    let padErr = 0;
    for (let h = 0; h < nH; h++)
      for (let i = 0; i < s; i++)
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += q[(i * nH + h) * dh + e]! * k[(j * nH + h) * dh + e]!;
          const want = dot / Math.sqrt(dh) + slopes[h]! * (j - i);
          const got = scores[(h * s + i) * s + j]!;
          err = Math.max(err, Math.abs(got - want));
          const S = s + pad;
          padErr = Math.max(padErr, Math.abs(paddedScores[(h * S + i + pad) * S + j + pad]! - got));
        }
    assert.ok(err < 1e-4, `${err}`);
    assert.ok(padErr < 1e-4, `${padErr}`);
  });
});
