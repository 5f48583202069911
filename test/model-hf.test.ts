/**
 * HookedTransformer against Hugging Face transformers 5.18 outputs (test/fixtures/hf): logits,
 * losses, hidden states, attention patterns, right- and left-padded batches and greedy generation,
 * for every family (one fixture per family, more where a config switch changes the architecture),
 * and, for a mixture of experts, the router logits of every layer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from '../src/index.js';
import { FIXTURES_HF, loadFixtureModel, maxDiff, readAll, readJson } from './fixture-utils.js';

/** Every folder the generator made (test/fixtures/hf/index.json), so none can be left untested. */
const FAMILIES = Object.keys(readJson(`${FIXTURES_HF}index.json`));
/** The model types the suite must cover (the 18 of issue 14), each by at least one folder. */
const MODEL_TYPES = [
  ...['gpt2', 'gpt_neox', 'llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2'],
  ...['gemma3_text', 'phi3', 'phi', 'olmo2', 'stablelm', 'gpt_neo', 'gptj', 'opt', 'bloom', 'mixtral'],
];

it('the fixtures cover every supported model type', () => {
  const covered = new Set(FAMILIES.map((f) => (readJson(`${FIXTURES_HF}${f}/config.json`) as { model_type: string }).model_type));
  assert.deepEqual(
    MODEL_TYPES.filter((t) => !covered.has(t)),
    [],
  );
});
const TOL = 1e-4;

const ints = (t: Tensor): number[] => Array.from(t.dataSync() as Int32Array, Number);
const rows = (t: Tensor): number[][] => {
  const [b, s] = t.shape as [number, number];
  const v = ints(t);
  return Array.from({ length: b }, (_, i) => v.slice(i * s, (i + 1) * s));
};

/** Max diff of attention patterns [B, H, T, T] over query rows that are real tokens. */
function patternDiff(a: Tensor, b: Tensor, mask: number[][]): number {
  const [B, H, T] = a.shape as [number, number, number];
  let m = 0;
  for (let h = 0; h < H; h++)
    for (let i = 0; i < B; i++) {
      const sa = a
        .slice([
          { start: i, end: i + 1 },
          { start: h, end: h + 1 },
        ])
        .reshape([1, T, T]);
      const sb = b
        .slice([
          { start: i, end: i + 1 },
          { start: h, end: h + 1 },
        ])
        .reshape([1, T, T]);
      m = Math.max(m, maxDiff(sa, sb, [mask[i]!]));
    }
  return m;
}

for (const fam of FAMILIES) {
  describe(`Hugging Face parity: ${fam}`, () => {
    const model = loadFixtureModel(FIXTURES_HF, fam);
    const ref = readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
    const L = model.cfg.nLayers;

    for (const c of ['p0', 'p1', 'p2', 'batch_right', 'batch_left']) {
      it(`${c}: logits, hidden states, attention patterns${c.startsWith('batch') ? ' at real tokens' : ', loss'}`, () => {
        const tokens = rows(ref.get(`${c}.input_ids`)!);
        const mask = c.startsWith('batch') ? rows(ref.get(`${c}.attention_mask`)!) : tokens.map((r) => r.map(() => 1));
        const moe = model.cfg.moe !== undefined;
        const names = [...Array(L).keys()].flatMap((l) => [
          `blocks.${l}.hook_resid_pre`,
          `blocks.${l}.attn.hook_pattern`,
          ...(moe ? [`blocks.${l}.mlp.hook_router_logits`] : []),
        ]);
        const { logits, cache } = model.runWithCache(tokens, { attentionMask: mask, names });
        assert.ok(maxDiff(logits, ref.get(`${c}.logits`)!, mask) < TOL, 'logits');
        for (let l = 0; l < L; l++) {
          // Mixture of experts: transformers' router logits are [batch * pos, n_experts].
          if (moe)
            assert.ok(
              maxDiff(
                cache.get(`blocks.${l}.mlp.hook_router_logits`),
                ref.get(`${c}.router_logits.${l}`)!.reshape(logits.shape.slice(0, 2).concat(-1)),
                mask,
              ) < TOL,
              `router logits ${l}`,
            );
          assert.ok(maxDiff(cache.get(`blocks.${l}.hook_resid_pre`), ref.get(`${c}.hidden_states.${l}`)!, mask) < TOL, `hidden state ${l}`);
          assert.ok(
            patternDiff(cache.get(`blocks.${l}.attn.hook_pattern`), ref.get(`${c}.attentions.${l}`)!, mask) < TOL,
            `attention ${l}`,
          );
        }
        // Left padding: HF's loss also scores the first real token from the pad before it; compare right padding and single prompts.
        if (c !== 'batch_left')
          assert.ok(Math.abs(model.loss(tokens, { attentionMask: mask }).item() - ref.get(`${c}.loss`)!.item()) < TOL, 'loss');
      });
    }

    it('greedy generation equals transformers, with and without the KV cache', () => {
      const prompt = ints(ref.get('gen.input_ids')!);
      const expected = ints(ref.get('gen.output_ids')!).slice(prompt.length);
      assert.deepEqual(model.generate(prompt, { maxNewTokens: 10, stopAtEos: false }).newTokens[0], expected);
      assert.deepEqual(
        model.generate(prompt, { maxNewTokens: 10, stopAtEos: false, useKvCache: false }).newTokens[0],
        ints(ref.get('gen.output_ids_nocache')!).slice(prompt.length),
      );
    });

    it('left-padded batched generation equals each prompt alone', () => {
      const a = ints(ref.get('p1.input_ids')!);
      const b = ints(ref.get('p2.input_ids')!);
      const s = a.length;
      const batch = model.generate([a, [...Array(s - b.length).fill(0), ...b]], {
        maxNewTokens: 4,
        stopAtEos: false,
        attentionMask: [a.map(() => 1), [...Array(s - b.length).fill(0), ...b.map(() => 1)]],
      });
      assert.deepEqual(batch.newTokens[0], model.generate(a, { maxNewTokens: 4, stopAtEos: false }).newTokens[0]);
      assert.deepEqual(batch.newTokens[1], model.generate(b, { maxNewTokens: 4, stopAtEos: false }).newTokens[0]);
    });
  });
}
