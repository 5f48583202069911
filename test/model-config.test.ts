/**
 * Every config field either changes the arithmetic the way the checkpoint's library computes it,
 * or is refused with an error naming the file and the field. Each case edits a fixture's config
 * and loads it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookedTransformer } from '../src/model/hooked.js';
import { FIXTURES_HF, readAll, readJson } from './fixture-utils.js';

function load(fam: string, edit: (c: Record<string, unknown>) => void): HookedTransformer {
  const cfg = structuredClone(readJson(`${FIXTURES_HF}${fam}/config.json`));
  edit(cfg);
  const w = readAll(`${FIXTURES_HF}${fam}/model.safetensors`);
  return HookedTransformer.fromHf(cfg, { has: (n) => w.has(n), get: (n) => w.get(n)! }, `${fam}/config.json`);
}

/** [family, what the case is, the edit, the field the error must name, more text it must hold]. */
const REFUSED: [string, string, (c: Record<string, unknown>) => void, string, RegExp?][] = [
  ['llama', 'an unknown field', (c) => (c.attention_temperature = 2), 'attention_temperature'],
  ['llama', 'quantized weights', (c) => (c.quantization_config = { quant_method: 'gptq' }), 'quantization_config'],
  [
    'llama',
    'an unknown RoPE type (t5 spelling)',
    (c) => (c.rope_parameters = { rope_type: 'su', rope_theta: 1e4 }),
    'rope_parameters.rope_type',
    /'su'/,
  ],
  [
    'llama',
    'an unknown RoPE type (t4 spelling)',
    (c) => {
      delete c.rope_parameters;
      c.rope_theta = 1e4;
      c.rope_scaling = { type: 'ntk-by-parts', factor: 2 };
    },
    'rope_scaling.type',
  ],
  [
    'llama',
    'an unknown field inside the RoPE parameters',
    (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: 1e4, warp: 3 }),
    'rope_parameters.warp',
  ],
  ['llama', 'an unknown activation', (c) => (c.hidden_act = 'swishy'), 'hidden_act', /swishy/],
  ['llama', 'key/value heads that do not divide the heads', (c) => (c.num_key_value_heads = 3), 'num_key_value_heads'],
  ['llama', 'a fractional layer count', (c) => (c.num_hidden_layers = 1.5), 'num_hidden_layers', /integer/],
  ['llama', 'a negative width', (c) => (c.hidden_size = -64), 'hidden_size'],
  ['llama', 'a layer count as a string', (c) => (c.num_hidden_layers = '2'), 'num_hidden_layers', /number/],
  [
    'llama',
    'a non-positive RoPE base',
    (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: -5 }),
    'rope_parameters.rope_theta',
  ],
  ['llama', 'a zero sliding window', (c) => ((c.sliding_window = 0), (c.model_type = 'mistral')), 'sliding_window'],
  ['gemma2', 'bidirectional attention', (c) => (c.use_bidirectional_attention = true), 'use_bidirectional_attention'],
  ['gemma2', 'a zero soft-cap', (c) => (c.attn_logit_softcapping = 0), 'attn_logit_softcapping'],
  ['gemma2', 'layer types of the wrong length', (c) => (c.layer_types = ['full_attention']), 'layer_types'],
  ['gpt2', 'attention scaled by inverse layer index', (c) => (c.scale_attn_by_inverse_layer_idx = true), 'scale_attn_by_inverse_layer_idx'],
  ['gpt2', 'heads that do not divide the width', (c) => (c.n_head = 3), 'n_embd'],
  [
    'gpt_neox',
    'a rotary fraction above 1',
    (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: 1e4, partial_rotary_factor: 2 }),
    'rope_parameters.partial_rotary_factor',
  ],
  ['olmo2', 'a sliding window (OLMo 2 has none)', (c) => (c.sliding_window = 4), 'sliding_window'],
  ['olmo2', 'MLP biases (OLMo 2 has none)', (c) => (c.mlp_bias = true), 'mlp_bias'],
  ['olmo2', 'an unknown activation', (c) => (c.hidden_act = 'swishy'), 'hidden_act', /swishy/],
  ['mixtral', 'top-k weights not renormalised', (c) => (c.norm_topk_prob = false), 'norm_topk_prob', /renormalises/],
  ['mixtral', 'more experts per token than experts', (c) => (c.num_experts_per_tok = 5), 'num_experts_per_tok'],
  ['mixtral', 'no expert count', (c) => delete c.num_local_experts, 'num_local_experts'],
  ['mixtral', 'shared experts', (c) => (c.shared_expert_intermediate_size = 128), 'shared_expert_intermediate_size'],
  ['mixtral', 'a count of shared experts', (c) => (c.n_shared_experts = 1), 'n_shared_experts'],
  ['mixtral', 'a sigmoid router', (c) => (c.scoring_func = 'sigmoid'), 'scoring_func'],
  ['mixtral', 'dense layers among the MoE layers', (c) => (c.mlp_only_layers = [0]), 'mlp_only_layers'],
  ['mixtral', 'attention biases (Mixtral has none)', (c) => (c.attention_bias = true), 'attention_bias'],
  [
    'qwen2',
    'sliding-window layers without a window in use',
    (c) => (c.layer_types = ['sliding_attention', 'full_attention']),
    'layer_types',
  ],
];

describe('config fields are implemented or refused by name', () => {
  for (const [fam, what, edit, field, extra] of REFUSED)
    it(`${fam}: ${what}`, () => {
      assert.throws(
        () => load(fam, edit),
        (e: Error) => {
          assert.ok(e.message.startsWith(`${fam}/config.json: `), `names the file: ${e.message}`);
          assert.ok(e.message.includes(`'${field}'`), `names the field '${field}': ${e.message}`);
          if (extra) assert.match(e.message, extra);
          return true;
        },
      );
    });

  it('a config that is not a JSON object is refused', () => {
    assert.throws(
      () =>
        HookedTransformer.fromHf(
          null as unknown as Record<string, unknown>,
          {
            has: () => false,
            get: () => {
              throw new Error('unused');
            },
          },
          'x/config.json',
        ),
      /x\/config\.json: the config must be a JSON object, got null/,
    );
  });

  it('fields that do not change the arithmetic are accepted (dropout, initialisation, generation defaults)', () => {
    const model = load('llama', (c) =>
      Object.assign(c, { attention_dropout: 0.1, initializer_range: 0.5, do_sample: true, pretraining_tp: 2 }),
    );
    assert.equal(model.cfg.nLayers, 2);
  });

  it('the transformers-4 spelling (rope_theta at the top) reads like rope_parameters', () => {
    const t5 = load('qwen2', () => {});
    const t4 = load('qwen2', (c) => {
      c.rope_theta = (c.rope_parameters as { rope_theta: number }).rope_theta;
      delete c.rope_parameters;
      c.rope_scaling = null;
    });
    assert.equal(t4.cfg.ropeTheta, t5.cfg.ropeTheta);
    assert.equal(t4.cfg.ropeTheta, 1e6);
  });
});
