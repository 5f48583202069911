/**
 * Every config field either changes the arithmetic the way the checkpoint's library computes it,
 * or is refused with an error naming the file and the field. Each case edits a fixture's config
 * and loads it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookedTransformer } from '../src/model/hooked.js';
import { HfConfigReader } from '../src/model/hf-config.js';
import { familyFor } from '../src/model/families/index.js';
import type { ModelConfig } from '../src/model/config.js';
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
  [
    'phi',
    'a rotary fraction giving an odd number of dims',
    (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: 1e4, partial_rotary_factor: 0.2 }),
    'partial_rotary_factor',
  ],
  ['phi', 'an unknown activation', (c) => (c.hidden_act = 'gelu_10'), 'hidden_act', /gelu_10/],
  ['phi', 'q/k LayerNorm with a head_dim other than hidden_size / heads', (c) => ((c.qk_layernorm = true), (c.head_dim = 8)), 'head_dim'],
  ['stablelm', 'a head_dim other than hidden_size / heads', (c) => (c.head_dim = 8), 'head_dim'],
  ['stablelm', 'no num_key_value_heads (StableLM defaults to 32)', (c) => delete c.num_key_value_heads, 'num_key_value_heads'],
  ['gpt_neo', 'an unknown attention type', (c) => (c.attention_types = [[['global', 'sparse'], 1]]), 'attention_types[0]', /sparse/],
  ['gpt_neo', 'attention types for the wrong number of layers', (c) => (c.attention_types = [[['global'], 3]]), 'attention_types'],
  ['gpt_neo', 'a malformed attention_types entry', (c) => (c.attention_types = [['global', 2]]), 'attention_types[0]'],
  ['gptj', 'a rotary_dim wider than a head', (c) => (c.rotary_dim = 64), 'rotary_dim'],
  ['gptj', 'an odd rotary_dim', (c) => (c.rotary_dim = 3), 'rotary_dim'],
  ['gptj', 'no rotary_dim (null)', (c) => (c.rotary_dim = null), 'rotary_dim'],
  ['gptj', 'rotary switched off', (c) => (c.rotary = false), 'rotary'],
  ['gptj', 'RoPE scaling (GPT-J reads none)', (c) => (c.rope_scaling = { rope_type: 'linear', factor: 2 }), 'rope_scaling'],
  ['opt', 'a removed final LayerNorm', (c) => (c._remove_final_layer_norm = true), '_remove_final_layer_norm'],
  [
    'bloom',
    'the residual taken after the LayerNorm',
    (c) => (c.apply_residual_connection_post_layernorm = true),
    'apply_residual_connection_post_layernorm',
  ],
  ['bloom', 'an MLP width other than 4 * hidden_size', (c) => (c.n_inner = 100), 'n_inner'],
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

  it("real checkpoints' config.json files read without refusals (opt-125m, opt-350m, bloom-560m)", () => {
    const read = (raw: Record<string, unknown>): ModelConfig => {
      const r = new HfConfigReader(raw, 'config.json');
      const cfg = familyFor(r.modelType, 'config.json').config(r);
      r.finish();
      return cfg;
    };
    const opt125m = {
      _name_or_path: 'facebook/opt-125m',
      activation_dropout: 0.0,
      activation_function: 'relu',
      architectures: ['OPTForCausalLM'],
      attention_dropout: 0.0,
      bos_token_id: 2,
      do_layer_norm_before: true,
      dropout: 0.1,
      eos_token_id: 2,
      ffn_dim: 3072,
      hidden_size: 768,
      init_std: 0.02,
      layerdrop: 0.0,
      max_position_embeddings: 2048,
      model_type: 'opt',
      num_attention_heads: 12,
      num_hidden_layers: 12,
      pad_token_id: 1,
      prefix: '</s>',
      torch_dtype: 'float16',
      transformers_version: '4.21.0.dev0',
      use_cache: true,
      vocab_size: 50272,
      word_embed_proj_dim: 768,
    };
    assert.equal(read(opt125m).dMlp, 3072);
    const opt350m = {
      ...opt125m,
      hidden_size: 1024,
      num_hidden_layers: 24,
      num_attention_heads: 16,
      ffn_dim: 4096,
      word_embed_proj_dim: 512,
    };
    assert.equal(read({ ...opt350m, do_layer_norm_before: false }).normAfterAdd, true);
    const bloom560m = {
      apply_residual_connection_post_layernorm: false,
      attention_dropout: 0.0,
      attention_softmax_in_fp32: true,
      bias_dropout_fusion: true,
      bos_token_id: 1,
      eos_token_id: 2,
      hidden_dropout: 0.0,
      hidden_size: 1024,
      initializer_range: 0.02,
      layer_norm_epsilon: 1e-5,
      masked_softmax_fusion: true,
      model_type: 'bloom',
      n_head: 16,
      n_inner: null,
      n_layer: 24,
      offset_alibi: 100,
      pad_token_id: 3,
      pretraining_tp: 1,
      skip_bias_add: true,
      skip_bias_add_qkv: false,
      slow_but_exact: false,
      transformers_version: '4.26.0',
      unk_token_id: 0,
      use_cache: true,
      vocab_size: 250880,
    };
    const bloom = read(bloom560m);
    assert.equal(bloom.positional, 'alibi');
    assert.equal(bloom.dMlp, 4096);
  });

  it("BLOOM's Megatron training settings, which transformers never reads, are accepted", () => {
    const model = load('bloom', (c) =>
      Object.assign(c, {
        attention_softmax_in_fp32: true,
        bias_dropout_fusion: true,
        masked_softmax_fusion: true,
        offset_alibi: 100,
        skip_bias_add: true,
        skip_bias_add_qkv: false,
        unk_token_id: 0,
        n_inner: null,
        seq_length: 2048,
      }),
    );
    assert.equal(model.cfg.positional, 'alibi');
  });

  it('the legacy spellings of the GPT-era configs read the same model', () => {
    const bloom = load('bloom', (c) => {
      c.n_embed = c.hidden_size;
      delete c.hidden_size;
      c.num_attention_heads = c.n_head;
      delete c.n_head;
    });
    assert.deepEqual(bloom.cfg, load('bloom', () => {}).cfg);
    const phi = load('phi', (c) => {
      const rope = c.rope_parameters as { rope_theta: number; partial_rotary_factor: number };
      delete c.rope_parameters;
      Object.assign(c, { rope_theta: rope.rope_theta, partial_rotary_factor: rope.partial_rotary_factor, rope_scaling: null });
    });
    assert.deepEqual(phi.cfg, load('phi', () => {}).cfg);
  });

  it("the GPT-era fixtures' transformers-4 configs (config_t4.json) read the same model", () => {
    for (const fam of ['phi', 'stablelm', 'stablelm_seq']) {
      const t4 = readJson(`${FIXTURES_HF}${fam}/config_t4.json`);
      assert.deepEqual(
        load(fam, (c) => {
          for (const k of Object.keys(c)) delete c[k];
          Object.assign(c, t4);
        }).cfg,
        load(fam, () => {}).cfg,
        fam,
      );
    }
  });

  it('OPT with norms after the residual add (OPT-350m) has no final norm, whatever _remove_final_layer_norm says', () => {
    const model = load('opt_postln', (c) => (c._remove_final_layer_norm = true));
    assert.equal(model.cfg.normAfterAdd, true);
    assert.deepEqual(model.params.ln_final, {});
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
