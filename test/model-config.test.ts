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

/** The scaling object of a config (rope_parameters, or Gemma 3's per-layer-type ones). */
const rope = (c: Record<string, unknown>) => c.rope_parameters as Record<string, unknown> & { full_attention?: Record<string, unknown> };

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
  // RoPE scaling
  ['llama_rope_yarn', 'YaRN without a factor', (c) => delete rope(c).factor, 'rope_parameters.factor'],
  [
    'llama_rope_llama3',
    'Llama 3 scaling whose high-frequency factor is not above the low one',
    (c) => (rope(c).high_freq_factor = 1),
    'rope_parameters.high_freq_factor',
  ],
  ['llama_rope_longrope', 'LongRoPE factors of the wrong length', (c) => (rope(c).short_factor = [1, 2]), 'rope_parameters.short_factor'],
  ['llama_rope_longrope', 'a YaRN field in LongRoPE parameters', (c) => (rope(c).beta_fast = 32), 'rope_parameters.beta_fast'],
  [
    'llama_rope_yarn',
    'partial rotary with scaled RoPE (transformers fails)',
    (c) => (rope(c).partial_rotary_factor = 0.5),
    'rope_parameters.partial_rotary_factor',
  ],
  ['llama_rope_linear', 'rope_scaling beside rope_parameters', (c) => (c.rope_scaling = { type: 'linear', factor: 2 }), 'rope_scaling'],
  ['gpt_neox', 'a top-level rope_theta GPTNeoXConfig does not read, unlike its base', (c) => (c.rope_theta = 500), 'rope_theta'],
  // Phi-3
  [
    'phi3',
    'a RoPE type Phi3Config refuses',
    (c) => (c.rope_parameters = { rope_type: 'dynamic', factor: 2, rope_theta: 1e4 }),
    'rope_parameters.rope_type',
    /dynamic/,
  ],
  ['phi3', 'attention biases (transformers has none for Phi-3)', (c) => (c.attention_bias = true), 'attention_bias'],
  ['phi3', "Phi-4 mini's remote-code switch at a value that changes layers", (c) => (c.full_attn_mod = 2), 'full_attn_mod'],
  // Gemma 3
  [
    'gemma3_text',
    'attention soft-capping (transformers 5.18 ignores it)',
    (c) => (c.attn_logit_softcapping = 50),
    'attn_logit_softcapping',
  ],
  ['gemma3_text', 'bidirectional attention', (c) => (c.use_bidirectional_attention = true), 'use_bidirectional_attention'],
  ['gemma3_text', 'a null sliding window', (c) => (c.sliding_window = null), 'sliding_window'],
  ['gemma3_text', 'an unknown field in the global RoPE', (c) => (rope(c).full_attention!.warp = 3), 'rope_parameters.full_attention.warp'],
  [
    'gemma3_text',
    'flat rope_parameters (transformers reads only the per-layer-type ones)',
    (c) => (c.rope_parameters = { rope_type: 'linear', factor: 8, rope_theta: 1e6 }),
    'rope_parameters.factor',
  ],
  [
    'gemma3_mm',
    'final soft-capping (Gemma3ForConditionalGeneration ignores it)',
    (c) => ((c.text_config as Record<string, unknown>).final_logit_softcapping = 30),
    'text_config.final_logit_softcapping',
  ],
  [
    'gemma3_mm',
    'an unknown text_config field',
    (c) => ((c.text_config as Record<string, unknown>).altup_num_inputs = 4),
    'text_config.altup_num_inputs',
  ],
  [
    'gemma3_mm',
    'a text_config of another model type',
    (c) => ((c.text_config as Record<string, unknown>).model_type = 'gemma2'),
    'text_config.model_type',
  ],
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

  it("Phi-3's legacy LongRoPE name 'su' and a top-level original_max_position_embeddings read like the t5 spelling", () => {
    const t5 = load('phi3', () => {});
    const su = load('phi3', (c) => {
      const p = rope(c);
      c.rope_theta = p.rope_theta;
      c.partial_rotary_factor = p.partial_rotary_factor;
      c.rope_scaling = { type: 'su', short_factor: p.short_factor, long_factor: p.long_factor };
      delete c.rope_parameters;
      c.auto_map = { AutoModelForCausalLM: 'modeling_phi3.Phi3ForCausalLM' };
    });
    assert.deepEqual(su.cfg, t5.cfg);
    assert.equal(t5.cfg.ropeScaling?.originalMaxPositions, 15);
  });

  it('a top-level original_max_position_embeddings overrides the one inside the scaling (as transformers does)', () => {
    const model = load('llama_rope_yarn', (c) => (c.original_max_position_embeddings = 32));
    assert.equal(model.cfg.ropeScaling?.originalMaxPositions, 32);
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
