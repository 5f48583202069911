/**
 * Bad configs: every dimension field of several families set to values that are not dimensions,
 * to values that disagree with the weights, and the findings one by one. The oracle:
 * either a clear error naming the directory's config.json or model.safetensors and the field (or
 * the weight it disagrees with), or a model that computes exactly the fixture's logits.
 */
import { HF, TL, DEFAULT_DIR, PROMPT, getPath, load, modelDir, readConfig, sameLogits, setPath, type Json } from './build.js';
import type { HookedTransformer } from '../../src/model/hooked.js';
import { re, type Case } from './harness.js';

/** The fields that fix the weights' shapes, per family (dotted paths into config.json). */
const DIMENSIONS: Record<string, string[]> = {
  gpt2: ['n_layer', 'n_embd', 'n_head', 'n_positions', 'n_ctx', 'vocab_size'],
  llama: [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'num_key_value_heads',
    'head_dim',
    'intermediate_size',
    'vocab_size',
    'max_position_embeddings',
  ],
  gpt_neox: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'intermediate_size', 'vocab_size', 'max_position_embeddings'],
  opt: [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'ffn_dim',
    'vocab_size',
    'max_position_embeddings',
    'word_embed_proj_dim',
  ],
  bloom: ['n_layer', 'hidden_size', 'n_head', 'vocab_size'],
  gemma2: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'intermediate_size', 'vocab_size'],
  mixtral: [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'num_key_value_heads',
    'intermediate_size',
    'vocab_size',
    'num_local_experts',
  ],
  gptj: ['n_layer', 'n_embd', 'n_head', 'n_positions', 'vocab_size', 'rotary_dim'],
  phi3: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'intermediate_size', 'vocab_size'],
  qwen3: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'intermediate_size', 'vocab_size'],
  phi: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'intermediate_size', 'vocab_size', 'max_position_embeddings'],
  stablelm: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'intermediate_size', 'vocab_size'],
  olmo2: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'intermediate_size', 'vocab_size'],
  gpt_neo: ['num_layers', 'hidden_size', 'num_heads', 'vocab_size', 'max_position_embeddings'],
  gemma: ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'intermediate_size', 'vocab_size'],
  gemma3_text: [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'num_key_value_heads',
    'head_dim',
    'intermediate_size',
    'vocab_size',
  ],
  mistral: [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'num_key_value_heads',
    'head_dim',
    'intermediate_size',
    'vocab_size',
    'max_position_embeddings',
  ],
  qwen2: [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'num_key_value_heads',
    'intermediate_size',
    'vocab_size',
    'max_position_embeddings',
  ],
  gemma3_mm: [
    'text_config.num_hidden_layers',
    'text_config.hidden_size',
    'text_config.num_attention_heads',
    'text_config.num_key_value_heads',
    'text_config.head_dim',
    'text_config.intermediate_size',
    'text_config.vocab_size',
  ],
};

/**
 * Fields whose other valid values the weights' shapes do not rule out (heads when d_head is the
 * width over the heads; GPT-J's rotary dims): a changed value is another model, which transformers
 * would run the same way, so only invalid values are tried.
 */
const FREE: Record<string, string[]> = {
  gpt2: ['n_head'],
  gpt_neox: ['num_attention_heads'],
  opt: ['num_attention_heads'],
  bloom: ['n_head'],
  gptj: ['n_head', 'rotary_dim'],
  phi: ['num_attention_heads'],
  stablelm: ['num_attention_heads'],
  olmo2: ['num_attention_heads'],
  gpt_neo: ['num_heads'],
};

/** Values that are not dimensions. */
const NOT_DIMENSIONS: [string, unknown][] = [
  ['0', 0],
  ['-1', -1],
  ['1.5', 1.5],
  ['"2"', '2'],
  ['null', null],
  ['1e9', 1e9],
  ['2^24', 2 ** 24],
  ['true', true],
  ['[]', []],
];

/**
 * The patterns of a clear refusal of `field` in `dir`: the file, and the field (or another field
 * it must agree with, or the weight it disagrees with).
 */
function refusal(dir: string, field: string): RegExp[] {
  const name = field.replace(/^text_config\./, '');
  return [
    new RegExp(`${re(dir)}/(config\\.json|model\\.safetensors)`),
    new RegExp(`\\b${re(name)}\\b|field '[^']+'|weight '[^']+'|tensor '[^']+'|tensors are not used`),
  ];
}

/** A case that edits the config of fixture `fam`: a refusal naming `field` (file and field, or a weight), or the fixture's logits. */
function edited(fam: string, label: string, field: string, edit: (c: Json) => unknown): Case {
  const src = `${HF}${fam}`;
  let dir = '';
  return {
    name: `${fam}: ${label}`,
    run: () => {
      dir = modelDir(src, `${fam}-${label}`, { config: edit });
      return load(dir);
    },
    error: () => refusal(dir, field),
    // An edit that loads must change nothing the forward computes.
    check: sameLogits(src),
  };
}

function sweep(): Case[] {
  const cases: Case[] = [];
  for (const [fam, fields] of Object.entries(DIMENSIONS)) {
    const cfg = readConfig(`${HF}${fam}`);
    for (const field of fields) {
      for (const [label, v] of NOT_DIMENSIONS) cases.push(edited(fam, `${field} = ${label}`, field, (c) => setPath(c, field, v)));
      // A dimension that disagrees with the weights (or, for a context length, changes nothing they compute).
      // Doubling a head count the weights do not pin (d_head = width / heads) is a different, valid model.
      const now = getPath(cfg, field) as number;
      cases.push(edited(fam, `${field} = ${now} + 1`, field, (c) => setPath(c, field, now + 1)));
      if (!FREE[fam]?.includes(field)) cases.push(edited(fam, `${field} = ${now} * 2`, field, (c) => setPath(c, field, now * 2)));
      cases.push(edited(fam, `${field} removed`, field, (c) => setPath(c, field, undefined)));
    }
  }
  return cases;
}

/** A case expecting a refusal whose message matches `patterns(dir)`. */
function refused(src: string, name: string, edit: (c: Json) => unknown, patterns: (dir: string) => RegExp[]): Case {
  let dir = '';
  return {
    name,
    run: () => {
      dir = modelDir(src, name, { config: edit });
      return load(dir);
    },
    error: () => patterns(dir),
  };
}

/**
 * A field left out takes its config class's default, as transformers takes it (checked against
 * transformers 5.18 by removing each field of every fixture's config): the config without the
 * field computes exactly what the config with the default written in does, and has `expect`.
 */
function classDefault(src: string, field: string, value: unknown, expect?: (m: HookedTransformer) => void): Case {
  const name = `${src.split('/').filter(Boolean).pop()}: ${field} absent means ${JSON.stringify(value)}`;
  return {
    name,
    run: () => [
      load(modelDir(src, `${name}-absent`, { config: (c) => setPath(c, field, undefined) })),
      load(modelDir(src, `${name}-written`, { config: (c) => setPath(c, field, value) })),
    ],
    check: (r) => {
      const [absent, written] = r as [HookedTransformer, HookedTransformer];
      const a = absent.forward(PROMPT).dataSync() as Float32Array;
      const b = written.forward(PROMPT).dataSync() as Float32Array;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Error(`logit ${i} is ${a[i]} absent, ${b[i]} written`);
      expect?.(absent);
    },
  };
}

function classDefaults(): Case[] {
  const nCtx = (n: number) => (m: HookedTransformer) => {
    if (m.cfg.nCtx !== n) throw new Error(`nCtx is ${m.cfg.nCtx}, the class default ${n}`);
  };
  return [
    // Gemma 2 (a fixture value other than the default each, so a wrong default shows in the logits).
    classDefault(`${HF}gemma2`, 'query_pre_attn_scalar', 256),
    classDefault(`${HF}gemma2`, 'attn_logit_softcapping', 50),
    classDefault(`${HF}gemma2`, 'final_logit_softcapping', 30),
    classDefault(`${HF}gemma2`, 'max_position_embeddings', 8192, nCtx(8192)),
    classDefault(`${HF}mixtral`, 'num_experts_per_tok', 2),
    // Rotary families: the weights do not fix the context, the class default does.
    classDefault(`${HF}llama`, 'max_position_embeddings', 2048, nCtx(2048)),
    classDefault(`${HF}mistral`, 'max_position_embeddings', 131072, nCtx(131072)),
    classDefault(`${HF}qwen2`, 'max_position_embeddings', 32768, nCtx(32768)),
    classDefault(`${HF}qwen3`, 'max_position_embeddings', 32768, nCtx(32768)),
    classDefault(`${HF}gpt_neox`, 'max_position_embeddings', 2048, nCtx(2048)),
    classDefault(`${HF}gptj`, 'n_positions', 2048, nCtx(2048)),
    classDefault(`${HF}phi`, 'max_position_embeddings', 2048, nCtx(2048)),
    classDefault(`${HF}stablelm`, 'max_position_embeddings', 4096, nCtx(4096)),
    classDefault(`${HF}olmo2`, 'max_position_embeddings', 2048, nCtx(2048)),
    classDefault(`${HF}mixtral`, 'max_position_embeddings', 131072, nCtx(131072)),
    classDefault(`${HF}gemma`, 'max_position_embeddings', 8192, nCtx(8192)),
    {
      name: 'gemma2: a soft-cap of null turns it off (as in transformers)',
      run: () => load(modelDir(`${HF}gemma2`, 'gemma2-softcap-null', { config: (c) => ({ ...c, final_logit_softcapping: null }) })),
      check: (m) => {
        if ((m as HookedTransformer).cfg.finalSoftcap !== null)
          throw new Error(`finalSoftcap is ${(m as HookedTransformer).cfg.finalSoftcap}`);
      },
    },
  ];
}

/** A case expecting the edited config to load and compute the fixture's logits exactly. */
function kept(src: string, name: string, edit: (c: Json) => unknown): Case {
  return { name, run: () => load(modelDir(src, name, { config: edit })), check: sameLogits(src) };
}

const cfgFile = (dir: string) => new RegExp(`${re(dir)}/config\\.json`);

/** The findings and more, each with the message it must give. */
function findings(): Case[] {
  const gpt2 = `${HF}gpt2`;
  const def = DEFAULT_DIR.replace(/\/$/, '');
  const field = (f: string, problem: RegExp | string) => (dir: string) => [
    cfgFile(dir),
    new RegExp(`field '${re(f)}'`),
    new RegExp(problem),
  ];
  /** One config field set to a bad value each, refused naming config.json, the field and the problem. */
  const badFields = (rows: [src: string, name: string, field: string, value: unknown, problem: string][]): Case[] =>
    rows.map(([src, name, f, value, problem]) => refused(src, name, (c) => setPath(c as Json, f, value), field(f, problem)));
  return [
    // n_layer: fewer layers than the weights, none, too many, not an integer.
    refused(
      gpt2,
      'gpt2: n_layer 1 (the file has 2 layers)',
      (c) => ({ ...c, n_layer: 1 }),
      (dir) => [new RegExp(`${re(dir)}/model\\.safetensors: 12 tensors are not used`), /transformer\.h\.1\./, /field 'n_layer' is 1/],
    ),
    ...badFields([
      [gpt2, 'gpt2: n_layer 0', 'n_layer', 0, 'at least 1'],
      [gpt2, 'gpt2: n_layer 1e9', 'n_layer', 1e9, 'at most 65536'],
      [gpt2, 'gpt2: n_layer 2^24 (took seconds and gigabytes to refuse)', 'n_layer', 2 ** 24, 'at most 65536'],
    ]),
    refused(
      gpt2,
      'gpt2: n_layer 65536 (bounded, but more than the file holds)',
      (c) => ({ ...c, n_layer: 65536 }),
      (dir) => [cfgFile(dir), /field 'n_layer' is 65536, but .*model\.safetensors holds tensors for 2 layers \(0\.\.1\)/],
    ),
    ...badFields([[def, 'default: num_hidden_layers 1e6', 'num_hidden_layers', 1e6, 'at most 65536']]),
    refused(
      def,
      'default: num_hidden_layers 1000',
      (c) => ({ ...c, num_hidden_layers: 1000 }),
      (dir) => [cfgFile(dir), /field 'num_hidden_layers' is 1000, but .* holds tensors for 4 layers \(0\.\.3\)/],
    ),
    ...badFields([
      [gpt2, 'gpt2: n_layer 1.5', 'n_layer', 1.5, 'must be an integer'],
      [gpt2, 'gpt2: n_layer -1', 'n_layer', -1, 'at least 1'],
    ]),
    // The whole config not an object.
    refused(
      gpt2,
      'gpt2: config.json is null',
      () => null,
      (dir) => [cfgFile(dir), /must be a JSON object, got null/],
    ),
    refused(
      gpt2,
      'gpt2: config.json is a list',
      () => [],
      (dir) => [cfgFile(dir), /must be a JSON object, got a list/],
    ),
    refused(
      gpt2,
      'gpt2: config.json is a number',
      () => 42,
      (dir) => [cfgFile(dir), /must be a JSON object, got 42/],
    ),
    refused(
      gpt2,
      'gpt2: config.json is a string',
      () => 'gpt2',
      (dir) => [cfgFile(dir), /must be a JSON object/],
    ),
    // Heads that do not divide the width, and other shapes.
    refused(gpt2, 'gpt2: n_head 3', (c) => ({ ...c, n_head: 3 }), field('n_embd', "divisible by the number of heads, 'n_head' \\(3\\)")),
    refused(
      `${HF}llama`,
      'llama: num_attention_heads 3 (head_dim given)',
      (c) => ({ ...c, num_attention_heads: 3 }),
      (dir) => [cfgFile(dir), /num_key_value_heads|weight '/],
    ),
    ...badFields([[`${HF}llama`, 'llama: num_key_value_heads 3', 'num_key_value_heads', 3, 'must divide']]),
    // Closed lists.
    ...badFields([
      [gpt2, 'gpt2: activation_function "swishy"', 'activation_function', 'swishy', 'does not implement'],
      [def, 'default: hidden_act "Gelu"', 'hidden_act', 'Gelu', 'does not implement'],
    ]),
    refused(
      gpt2,
      'gpt2: model_type "gpt3"',
      (c) => ({ ...c, model_type: 'gpt3' }),
      (dir) => [cfgFile(dir), /model_type 'gpt3' is not supported/],
    ),
    refused(
      gpt2,
      'gpt2: model_type missing',
      (c) => setPath(c as Json, 'model_type', undefined),
      (dir) => [cfgFile(dir), /missing field 'model_type'/],
    ),
    ...badFields([[gpt2, 'gpt2: model_type 7', 'model_type', 7, 'must be a string']]),
    refused(
      gpt2,
      'gpt2: an unknown field',
      (c) => ({ ...c, scale_attn_by_magic: 2 }),
      (dir) => [cfgFile(dir), /'scale_attn_by_magic' \(2\) is not implemented/],
    ),
    refused(
      `${HF}llama`,
      'llama: rope_scaling type "ntk-magic"',
      (c) => ({ ...c, rope_parameters: { rope_type: 'ntk-magic', rope_theta: 10000 } }),
      (dir) => [cfgFile(dir), /rope_parameters\.rope_type' is 'ntk-magic'/],
    ),
    // Rotary settings.
    refused(
      def,
      'default: rotary_pct 2',
      (c) => ({ ...setPath(c as Json, 'rope_parameters', undefined), rotary_pct: 2 }),
      field('rotary_pct', 'at most 1'),
    ),
    refused(
      def,
      'default: rotary_pct 0',
      (c) => ({ ...setPath(c as Json, 'rope_parameters', undefined), rotary_pct: 0 }),
      field('rotary_pct', 'greater than 0'),
    ),
    refused(
      def,
      'default: rotary_pct 0.3 (odd rotary dims)',
      (c) => ({ ...setPath(c as Json, 'rope_parameters', undefined), rotary_pct: 0.3 }),
      (dir) => [cfgFile(dir), /odd number of rotary dims/],
    ),
    ...badFields([
      [def, 'default: rope_theta -5', 'rope_parameters.rope_theta', -5, 'greater than 0'],
      [def, 'default: rope_theta 0', 'rope_parameters.rope_theta', 0, 'greater than 0'],
      [def, 'default: rope_theta "10000"', 'rope_parameters.rope_theta', '10000', 'finite number'],
      [`${HF}llama_rope_yarn`, 'yarn: beta_fast -1', 'rope_parameters.beta_fast', -1, 'at least 0'],
      [`${HF}llama_rope_linear`, 'linear RoPE: factor 0', 'rope_parameters.factor', 0, 'greater than 0'],
      [`${HF}gptj`, 'gptj: rotary_dim 0', 'rotary_dim', 0, 'at least 1'],
    ]),
    // Windows and soft-caps.
    ...badFields([
      [`${HF}mistral`, 'mistral: sliding_window -1', 'sliding_window', -1, 'at least 1'],
      [`${HF}mistral`, 'mistral: sliding_window 0', 'sliding_window', 0, 'at least 1'],
      [`${HF}mistral`, 'mistral: sliding_window 2.5', 'sliding_window', 2.5, 'integer'],
      [`${HF}gemma2`, 'gemma2: attn_logit_softcapping 0', 'attn_logit_softcapping', 0, 'greater than 0'],
      [`${HF}gemma2`, 'gemma2: final_logit_softcapping 0', 'final_logit_softcapping', 0, 'greater than 0'],
      [`${HF}gemma2`, 'gemma2: final_logit_softcapping -3', 'final_logit_softcapping', -3, 'greater than 0'],
      [`${HF}gemma2`, 'gemma2: query_pre_attn_scalar 0', 'query_pre_attn_scalar', 0, 'greater than 0'],
      [`${HF}gpt_neo`, 'gpt_neo: window_size 0', 'window_size', 0, 'at least 1'],
      [`${HF}gpt_neo`, 'gpt_neo: attention_types count 1e15', 'attention_types', [[['global', 'local'], 1e15]], 'more than 2 layers'],
    ]),
    // A stored attention_layers replaces attention_types' expansion in transformers 5.18.
    kept(`${HF}gpt_neo`, 'gpt_neo: attention_types absent, attention_layers stored', (c) =>
      setPath(c as Json, 'attention_types', undefined),
    ),
    kept(`${HF}gpt_neo`, 'gpt_neo: attention_layers absent, attention_types stored', (c) =>
      setPath(c as Json, 'attention_layers', undefined),
    ),
    refused(
      `${HF}gpt_neo`,
      'gpt_neo: attention_layers disagreeing with attention_types',
      (c) => ({ ...c, attention_types: [[['local', 'global'], 1]] }),
      field('attention_layers', 'attention_types expands to \\[local, global\\]'),
    ),
    ...badFields([
      [`${HF}gpt_neo`, 'gpt_neo: attention_layers of 1 layer', 'attention_layers', ['global'], 'lists 1 layers, but num_layers is 2'],
    ]),
    refused(
      `${HF}gpt_neo`,
      'gpt_neo: attention_types "sparse"',
      (c) => ({ ...c, attention_types: [[['sparse'], 2]] }),
      field('attention_types[0]', 'does not implement'),
    ),
    // Norms.
    ...badFields([
      [gpt2, 'gpt2: layer_norm_epsilon 0', 'layer_norm_epsilon', 0, 'greater than 0'],
      [gpt2, 'gpt2: layer_norm_epsilon 1e300', 'layer_norm_epsilon', 1e300, 'at most 1'],
      [`${HF}llama`, 'llama: rms_norm_eps -1e-6', 'rms_norm_eps', -1e-6, 'greater than 0'],
    ]),
    // Biases and heads the weights do not have.
    refused(
      `${HF}llama`,
      'llama: attention_bias true (no biases stored)',
      (c) => ({ ...c, attention_bias: true }),
      (dir) => [new RegExp(`${re(dir)}/model\\.safetensors`), /self_attn\.q_proj\.bias/],
    ),
    refused(
      gpt2,
      'gpt2: tie_word_embeddings false (no lm_head stored)',
      (c) => ({ ...c, tie_word_embeddings: false }),
      (dir) => [new RegExp(`${re(dir)}/model\\.safetensors`), /'lm_head\.weight'/],
    ),
    ...badFields([
      [`${HF}mixtral`, 'mixtral: num_experts_per_tok 5 > 4 experts', 'num_experts_per_tok', 5, 'at most'],
      [`${HF}mixtral`, 'mixtral: norm_topk_prob false', 'norm_topk_prob', false, 'implements only'],
    ]),
    // The TransformerLens fixtures' checkpoints.
    // Bias fields a family's transformers classes never read are inert (transformers 5.18 builds
    // Qwen2's q/k/v biases and no others, Mistral's none, Qwen3's no MLP biases, whatever the
    // config says), and absent ones take the class default: the fixture's logits either way.
    kept(`${TL}qwen2`, 'tl/qwen2: attention_bias true (inert for Qwen2: no o_proj bias)', (c) => ({ ...c, attention_bias: true })),
    kept(`${HF}qwen2`, 'qwen2: mlp_bias true (inert for Qwen2)', (c) => ({ ...c, mlp_bias: true })),
    kept(`${HF}mistral`, 'mistral: attention_bias and mlp_bias true (inert for Mistral)', (c) => ({
      ...c,
      attention_bias: true,
      mlp_bias: true,
    })),
    kept(`${HF}qwen3`, 'qwen3: mlp_bias true (inert for Qwen3)', (c) => ({ ...c, mlp_bias: true })),
    kept(`${TL}llama`, 'tl/llama: attention_bias and mlp_bias removed (default false)', (c) =>
      setPath(setPath(c as Json, 'attention_bias', undefined), 'mlp_bias', undefined),
    ),
    refused(
      `${HF}qwen3`,
      'qwen3: attention_bias false (biases stored)',
      (c) => ({ ...c, attention_bias: false }),
      (dir) => [new RegExp(`${re(dir)}/model\\.safetensors`), /not used/, /self_attn\.q_proj\.bias/],
    ),
    refused(
      `${HF}llama`,
      'llama: mlp_bias true (no biases stored)',
      (c) => ({ ...c, mlp_bias: true }),
      (dir) => [new RegExp(`${re(dir)}/model\\.safetensors`), /mlp\.gate_proj\.bias/],
    ),
    ...badFields([
      [`${TL}gemma2`, 'tl/gemma2: query_pre_attn_scalar "16"', 'query_pre_attn_scalar', '16', 'finite number'],
      [`${TL}gpt_neox`, 'tl/gpt_neox: use_parallel_residual "yes"', 'use_parallel_residual', 'yes', 'true or false'],
    ]),
    // glassbox's own format: the config's fields are read like any other.
    ...glassboxFormat(),
  ];
}

/** A model saved in glassbox's format (an attention-only toy), its glassbox_config fields broken. */
function glassboxFormat(): Case[] {
  const base = `${HF}gpt2`;
  // The gpt2 fixture's ModelConfig, written in glassbox's format: load it once to get it.
  const mk = (label: string, edit: (g: Json) => void, problem: (dir: string) => RegExp[]): Case =>
    refused(
      base,
      `glassbox format: ${label}`,
      (c) => {
        const g = glassboxConfig(c as Json);
        edit(g);
        return { model_type: 'glassbox', glassbox_config: g };
      },
      problem,
    );
  const f = (name: string, p: string) => (dir: string) => [
    cfgFile(dir),
    new RegExp(`field 'glassbox_config\\.${re(name)}'`),
    new RegExp(p),
  ];
  return [
    mk('nLayers 1e9', (g) => (g.nLayers = 1e9), f('nLayers', 'at most 65536')),
    mk('nLayers 1.5', (g) => (g.nLayers = 1.5), f('nLayers', 'integer')),
    mk('dModel "64"', (g) => (g.dModel = '64'), f('dModel', 'finite number')),
    mk('act "swishy"', (g) => (g.act = 'swishy'), f('act', 'does not implement')),
    mk('normEps -1', (g) => (g.normEps = -1), f('normEps', 'greater than 0')),
    mk('slidingWindow of the wrong length', (g) => (g.slidingWindow = [null]), f('slidingWindow', 'one entry per layer')),
    mk('slidingWindow entry 0', (g) => (g.slidingWindow = [0, null]), f('slidingWindow[0]', 'positive integer')),
    mk(
      'an unknown field',
      (g) => (g.magic = 3),
      (dir) => [cfgFile(dir), /'glassbox_config\.magic' \(3\) is not implemented/],
    ),
    mk('positional "sinusoidal"', (g) => (g.positional = 'sinusoidal'), f('positional', 'does not implement')),
    mk('moe topK > nExperts', (g) => (g.moe = { nExperts: 2, topK: 3 }), f('moe.topK', 'at most nExperts')),
    mk('glassbox_config null', (g) => Object.keys(g).forEach((k) => delete g[k]), f('nLayers', 'missing|must be')),
  ];
}

/** The ModelConfig of the gpt2 fixture's config as glassbox would save it. */
function glassboxConfig(hf: Json): Json {
  const d = hf.n_embd as number;
  const h = hf.n_head as number;
  return {
    family: 'gpt2',
    nLayers: hf.n_layer,
    dModel: d,
    nHeads: h,
    nKVHeads: h,
    dHead: d / h,
    dMlp: 4 * d,
    dVocab: hf.vocab_size,
    nCtx: hf.n_positions,
    norm: 'layernorm',
    normEps: 1e-5,
    normWeightOffset: 0,
    positional: 'learned',
    rotaryDim: 0,
    ropeTheta: 0,
    parallelResidual: false,
    act: 'gelu_new',
    gatedMlp: false,
    attnScale: 1 / Math.sqrt(d / h),
    attnSoftcap: null,
    finalSoftcap: null,
    slidingWindow: [null, null],
    embedScale: 1,
    postNorms: false,
    qkNorm: false,
    attnBias: true,
    attnOutBias: true,
    mlpBias: true,
    unembedBias: false,
    tiedEmbeddings: true,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };
}

export function configCases(): Case[] {
  return [...findings(), ...sweep(), ...classDefaults()];
}
