/**
 * RoPE scaling (linear, dynamic, llama3, yarn, longrope), Phi-3's LongRoPE and Gemma 3's two RoPEs
 * against transformers 5.18 (test/fixtures/hf, made by make_hf.py): the frequencies transformers
 * computed, both config spellings giving the same model, a check that the scaling matters at all,
 * generation across LongRoPE's and dynamic scaling's length threshold, and the stateless reading
 * of dynamic scaling. The full parity battery for these folders runs in model-hf.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '../src/index.js';
import { HookedTransformer } from '../src/model/hooked.js';
import { loadFromDirectory } from '../src/model/index.js';
import { ropeOf, type RopeId } from '../src/model/config.js';
import { ropeFrequencies } from '../src/model/rope.js';
import { HfConfigReader } from '../src/model/hf-config.js';
import { gemma3 } from '../src/model/families/gemma3.js';
import { FIXTURES_HF, loadFixtureModel, maxDiff, readAll, readJson } from './fixture-utils.js';

const TOL = 1e-4;
const SCALED = ['llama_rope_linear', 'llama_rope_dynamic', 'llama_rope_llama3', 'llama_rope_yarn', 'llama_rope_longrope', 'phi3'];
const WITH_ROPE = [...SCALED, 'phi3_noscale', 'gemma3_text', 'gemma3_mm'];

const ints = (t: Tensor): number[] => Array.from(t.dataSync() as Int32Array, Number);

/** A fixture model from an edited copy of its config (or another config file in its folder). */
function loadWith(fam: string, edit: (c: Record<string, unknown>) => void = () => {}, file = 'config.json'): HookedTransformer {
  const cfg = structuredClone(readJson(`${FIXTURES_HF}${fam}/${file}`));
  edit(cfg);
  const w = readAll(`${FIXTURES_HF}${fam}/model.safetensors`);
  return HookedTransformer.fromHf(cfg, { has: (n) => w.has(n), get: (n) => w.get(n)! }, `${fam}/${file}`);
}

/** Max relative difference in float32 ulps (2^-23 of the reference). */
function ulps(a: ArrayLike<number>, b: readonly number[]): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) * 2 ** -23));
  return m;
}

interface RefRope {
  rope_type: string;
  attention_scaling: number;
  inv_freq?: number[];
  inv_freq_at_or_below_max_position_embeddings?: number[];
  inv_freq_for_L_16?: number[];
  inv_freq_short?: number[];
  inv_freq_long?: number[];
}

describe('RoPE frequencies equal the ones transformers computed (ref.json rope)', () => {
  for (const fam of WITH_ROPE)
    it(fam, () => {
      const model = loadFixtureModel(FIXTURES_HF, fam);
      const cfg = model.cfg;
      const rope = (readJson(`${FIXTURES_HF}${fam}/ref.json`) as { rope: Record<string, RefRope> }).rope;
      for (const [layerType, ref] of Object.entries(rope)) {
        const id: RopeId = layerType === 'sliding_attention' ? 'local' : 'global';
        const r = ropeOf(cfg, id);
        assert.equal(r.type, ref.rope_type, `${layerType}: type`);
        const at = (seqLen: number) => ropeFrequencies(r, cfg.rotaryDim, seqLen);
        const cases: [number, number[]][] = [];
        if (ref.inv_freq) cases.push([1, ref.inv_freq]);
        if (ref.inv_freq_at_or_below_max_position_embeddings) cases.push([cfg.nCtx, ref.inv_freq_at_or_below_max_position_embeddings]);
        if (ref.inv_freq_for_L_16) cases.push([16, ref.inv_freq_for_L_16]);
        if (ref.inv_freq_short) cases.push([r.originalMaxPositions!, ref.inv_freq_short]);
        if (ref.inv_freq_long) cases.push([r.originalMaxPositions! + 1, ref.inv_freq_long]);
        assert.ok(cases.length > 0);
        for (const [seqLen, expected] of cases) {
          const { invFreq, attentionScaling } = at(seqLen);
          // torch's float32 pow may differ from a correctly rounded one by an ulp or two.
          assert.ok(ulps(invFreq, expected) <= 2, `${layerType} at length ${seqLen}: ${ulps(invFreq, expected)} ulps`);
          assert.ok(Math.abs(attentionScaling - ref.attention_scaling) < 1e-12, `${layerType}: attention scaling ${attentionScaling}`);
        }
      }
    });
});

describe('the transformers-4 spelling (config_t4.json) gives the same model', () => {
  for (const fam of WITH_ROPE)
    it(fam, () => {
      assert.ok(existsSync(`${FIXTURES_HF}${fam}/config_t4.json`));
      const t5 = loadFixtureModel(FIXTURES_HF, fam);
      const t4 = loadWith(fam, undefined, 'config_t4.json');
      assert.deepEqual(t4.cfg, t5.cfg);
      const ref = readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
      const p0 = [ints(ref.get('p0.input_ids')!)];
      assert.ok(maxDiff(t4.forward(p0), ref.get('p0.logits')!) < TOL);
    });
});

/** The config with the RoPE scaling taken out (theta and rotary fraction kept). */
function unscaled(c: Record<string, unknown>): void {
  const p = c.rope_parameters as Record<string, unknown>;
  c.rope_parameters = {
    rope_type: 'default',
    rope_theta: p.rope_theta,
    ...(p.partial_rotary_factor ? { partial_rotary_factor: p.partial_rotary_factor } : {}),
  };
}

describe('ignoring the scaling would fail parity: unscaled RoPE moves p0 logits by more than the tolerance', () => {
  for (const fam of SCALED)
    it(fam, () => {
      const ref = readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
      const p0 = [ints(ref.get('p0.input_ids')!)];
      const plain = loadWith(fam, unscaled);
      assert.equal(plain.cfg.ropeScaling, undefined);
      // Unscaled, the dynamic fixture's p0 (16 tokens) is past its context of 15: opt in.
      assert.ok(maxDiff(plain.forward(p0, { allowLongContext: true }), ref.get('p0.logits')!) > 100 * TOL);
      assert.ok(maxDiff(loadFixtureModel(FIXTURES_HF, fam).forward(p0), ref.get('p0.logits')!) < TOL);
    });
  for (const fam of ['gemma3_text', 'gemma3_mm'])
    it(`${fam} (global layers unscaled)`, () => {
      const ref = readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
      const p0 = [ints(ref.get('p0.input_ids')!)];
      const plain = loadWith(fam, (c) => {
        const t = (c.text_config ?? c) as { rope_parameters: { full_attention: Record<string, unknown> } };
        t.rope_parameters.full_attention = { rope_type: 'default', rope_theta: t.rope_parameters.full_attention.rope_theta };
      });
      assert.ok(maxDiff(plain.forward(p0), ref.get('p0.logits')!) > 100 * TOL);
    });
});

describe('generation across the length threshold (gen_p1: 11 tokens + 10 past position 15)', () => {
  const generate = (model: HookedTransformer, prompt: number[], cache: boolean): number[] =>
    model.generate(prompt, { maxNewTokens: 10, stopAtEos: false, useKvCache: cache }).newTokens[0]!;

  for (const fam of ['llama_rope_dynamic', 'llama_rope_longrope'])
    it(`${fam}: cached keys keep their rotation, as in transformers; uncached equals transformers uncached`, () => {
      const model = loadFixtureModel(FIXTURES_HF, fam);
      const ref = readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
      const prompt = ints(ref.get('gen_p1.input_ids')!);
      assert.deepEqual(generate(model, prompt, true), ints(ref.get('gen_p1.output_ids')!).slice(prompt.length));
      assert.deepEqual(generate(model, prompt, false), ints(ref.get('gen_p1.output_ids_nocache')!).slice(prompt.length));
    });

  it("phi3: the cache is recomputed at the threshold, so cached generation equals transformers' uncached one", () => {
    // transformers 5.18's Phi3ForCausalLM drops its cache at the threshold and then feeds only the
    // newest token, so its own cached generation loses the context from there (gen_p1.output_ids);
    // glassbox recomputes the cache instead, which is what dropping it intends.
    const model = loadFixtureModel(FIXTURES_HF, 'phi3');
    const ref = readAll(`${FIXTURES_HF}phi3/ref.safetensors`);
    const prompt = ints(ref.get('gen_p1.input_ids')!);
    const uncached = ints(ref.get('gen_p1.output_ids_nocache')!).slice(prompt.length);
    assert.notDeepEqual(ints(ref.get('gen_p1.output_ids')!).slice(prompt.length), uncached);
    assert.deepEqual(generate(model, prompt, true), uncached);
    assert.deepEqual(generate(model, prompt, false), uncached);
  });
});

describe('Phi-3 batched generation across the threshold', () => {
  it('left-padded, with the cache recomputed at the threshold, equals uncached generation', () => {
    const model = loadFixtureModel(FIXTURES_HF, 'phi3');
    const ref = readAll(`${FIXTURES_HF}phi3/ref.safetensors`);
    const a = ints(ref.get('p1.input_ids')!);
    const b = ints(ref.get('p2.input_ids')!);
    const opts = {
      maxNewTokens: 8, // 11 + 8 tokens: past original_max_position_embeddings (15)
      stopAtEos: false,
      attentionMask: [a.map(() => 1), [...Array(a.length - b.length).fill(0), ...b.map(() => 1)]],
    };
    const prompts = [a, [...Array(a.length - b.length).fill(0), ...b]];
    const cached = model.generate(prompts, opts).newTokens;
    assert.deepEqual(cached, model.generate(prompts, { ...opts, useKvCache: false }).newTokens);
    // The longest row alone chooses the same frequencies at every step, so it generates the same.
    assert.deepEqual(cached[0], model.generate(a, { maxNewTokens: 8, stopAtEos: false }).newTokens[0]);
  });
});

describe('dynamic scaling carries no state between calls', () => {
  it('p1 after the longer p0 equals transformers on a fresh model (transformers would reuse p0-length frequencies)', () => {
    const model = loadFixtureModel(FIXTURES_HF, 'llama_rope_dynamic');
    const ref = readAll(`${FIXTURES_HF}llama_rope_dynamic/ref.safetensors`);
    model.forward([ints(ref.get('p0.input_ids')!)]);
    assert.ok(maxDiff(model.forward([ints(ref.get('p1.input_ids')!)]), ref.get('p1.logits')!) < TOL);
    // The frequencies p0's length would give move p1's logits: the reference is the fresh one.
    const p1 = ints(ref.get('p1.input_ids')!);
    const padded = model.forward(
      [p1, [...p1, 1, 1, 1, 1, 1]].map((r) => [...r, ...Array(16 - r.length).fill(0)]),
      {
        attentionMask: [[...p1.map(() => 1), ...Array(5).fill(0)], Array(16).fill(1)],
      },
    );
    assert.ok(maxDiff(padded.slice([{ start: 0, end: 1 }, { end: p1.length }]), ref.get('p1.logits')!) > 100 * TOL);
  });
});

describe('Gemma 3 multimodal checkpoints', () => {
  it("the language model loads from transformers 5's in-memory names (model.language_model.*) as from the Hub's", () => {
    const w = readAll(`${FIXTURES_HF}gemma3_mm/model.safetensors`);
    const renamed = new Map([...w].map(([k, v]) => [k.replace(/^language_model\.model\./, 'model.language_model.'), v]));
    assert.ok(renamed.has('model.language_model.embed_tokens.weight'));
    const model = HookedTransformer.fromHf(readJson(`${FIXTURES_HF}gemma3_mm/config.json`), {
      has: (n) => renamed.has(n),
      get: (n) => renamed.get(n)!,
    });
    const ref = readAll(`${FIXTURES_HF}gemma3_mm/ref.safetensors`);
    assert.ok(maxDiff(model.forward([ints(ref.get('p0.input_ids')!)]), ref.get('p0.logits')!) < TOL);
  });

  it('a text_config with only the fields that differ from the defaults reads the Gemma3TextConfig defaults', () => {
    const model = loadWith('gemma3_mm', (c) => {
      const t = c.text_config as Record<string, unknown>;
      // The fixture's values that equal Gemma3TextConfig's defaults can go.
      for (const k of ['attention_bias', 'hidden_activation', 'rms_norm_eps', 'use_bidirectional_attention', 'attn_logit_softcapping'])
        delete t[k];
    });
    const ref = readAll(`${FIXTURES_HF}gemma3_mm/ref.safetensors`);
    assert.ok(maxDiff(model.forward([ints(ref.get('p0.input_ids')!)]), ref.get('p0.logits')!) < TOL);
    const c = structuredClone(readJson(`${FIXTURES_HF}gemma3_text/config.json`));
    for (const k of ['head_dim', 'query_pre_attn_scalar', 'sliding_window', 'layer_types', '_sliding_window_pattern', 'rope_parameters'])
      delete c[k];
    const r = new HfConfigReader(c, 'config.json');
    const bare = gemma3.config(r);
    r.finish();
    assert.equal(bare.dHead, 256);
    assert.equal(bare.attnScale, 1 / 16);
    assert.deepEqual(bare.slidingWindow, [4096, 4096, 4096, 4096]); // 4 layers, pattern 6: all local
    assert.deepEqual(bare.layerRope, ['local', 'local', 'local', 'local']);
    assert.equal(bare.ropeTheta, 1e6);
    assert.equal(bare.localRope?.theta, 1e4);
  });
});

describe('scaled and per-layer RoPE survive saving', () => {
  for (const fam of ['llama_rope_yarn', 'phi3', 'gemma3_text'])
    it(`${fam} saves in glassbox format and reloads with the same logits`, () => {
      const model = loadFixtureModel(FIXTURES_HF, fam);
      const dir = mkdtempSync(join(tmpdir(), 'glassbox-rope-'));
      assert.equal(model.save(dir), 'glassbox');
      const loaded = loadFromDirectory(dir);
      assert.deepEqual(loaded.cfg, model.cfg);
      const ref = readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
      const p0 = [ints(ref.get('p0.input_ids')!)];
      assert.deepEqual(Array.from(loaded.forward(p0).dataSync() as Float32Array), Array.from(model.forward(p0).dataSync() as Float32Array));
    });
});
