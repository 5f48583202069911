/**
 * Gemma 3 text models (`gemma3_text`), and the language model of Gemma 3 multimodal checkpoints
 * (`gemma3`: the text settings under `text_config`, the weights under `language_model`). Like
 * Gemma 2 (embeddings scaled by sqrt(d_model), RMSNorm weights stored as w - 1, norms before and
 * after attention and the MLP, GELU-tanh gated MLP, query scale from query_pre_attn_scalar,
 * optional final soft-cap), plus an RMSNorm on each head's q and k (also w - 1), five sliding-window
 * layers to one global layer (`layer_types`, or `sliding_window_pattern`), and two RoPEs: local
 * layers use `rope_local_base_freq` (plain), global layers `rope_theta` with its scaling (the
 * 4B-27B models: linear, factor 8).
 *
 * Images are not supported: glassbox feeds token ids only, so a multimodal checkpoint runs as its
 * language model does on text without `pixel_values` (an image placeholder id inside the
 * vocabulary embeds as an ordinary token, as in transformers; one outside it, which transformers
 * would embed as token 0, is refused like any id outside the vocabulary); the vision tower and
 * projector are never loaded.
 */
import { headDim, readActivation, rotaryFields, type ModelConfig, type RopeId } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import { checkRopeDims, readScaling, ROPE_TYPES, type RopeConfig } from '../rope.js';
import { llamaSkipped, llamaWeights } from './llama.js';
import type { Family } from './types.js';

const LAYER_TYPES = ['full_attention', 'sliding_attention'] as const;

export const gemma3: Family = {
  modelTypes: ['gemma3_text', 'gemma3'],
  config(r): ModelConfig {
    if (r.modelType === 'gemma3_text') return textConfig(r, 'gemma3_text', r.bool('tie_word_embeddings', true), r);
    // Multimodal: everything outside text_config concerns images (the vision tower, the projector,
    // the image placeholder tokens), which glassbox does not run.
    r.ignore('vision_config', 'mm_tokens_per_image', 'boi_token_index', 'eoi_token_index', 'image_token_index');
    r.ignore('boi_token_id', 'eoi_token_id', 'image_token_id');
    const t = r.subConfig('text_config');
    t.expect('model_type', ['gemma3_text']);
    // The language model has no unembedding of its own: the top-level setting ties lm_head.
    t.ignore('tie_word_embeddings');
    return textConfig(t, 'gemma3', r.bool('tie_word_embeddings', true), r);
  },
  weights(cfg, w) {
    if (cfg.family === 'gemma3_text') return llamaWeights(cfg, w);
    // The Hub's files (and transformers 5.18's save_pretrained) use language_model.model.*;
    // transformers' own module names are model.language_model.*.
    return w.has('model.language_model.embed_tokens.weight')
      ? llamaWeights(cfg, w, 'model.language_model.', 'lm_head')
      : llamaWeights(cfg, w, 'language_model.model.', 'language_model.lm_head');
  },
  skipped: (cfg) =>
    cfg.family === 'gemma3_text'
      ? llamaSkipped(cfg)
      : [
          ...llamaSkipped(cfg, ['lm_head.weight', 'language_model.lm_head.weight']),
          {
            pattern: /^(model\.)?(vision_tower|multi_modal_projector)\./,
            why: "the vision tower and its projector (glassbox runs a multimodal Gemma 3's language model only)",
          },
        ],
};

/**
 * The Gemma3TextConfig fields, with that class's defaults (the multimodal checkpoints' text_config
 * lists only what differs from them). `top` holds the token ids of a multimodal config.
 */
function textConfig(r: HfConfigReader, family: string, tiedEmbeddings: boolean, top: HfConfigReader): ModelConfig {
  const multimodal = family === 'gemma3';
  const dModel = r.optDim('hidden_size', 2304);
  const nHeads = r.optDim('num_attention_heads', 8);
  const nKVHeads = r.optDim('num_key_value_heads', 4);
  if (nHeads % nKVHeads !== 0) throw r.error('num_key_value_heads', `(${nKVHeads}) must divide num_attention_heads (${nHeads})`);
  headDim(r, dModel, nHeads, 'hidden_size'); // transformers refuses a width the heads do not divide
  const dHead = r.optDim('head_dim', 256); // the class default, not hidden_size / heads
  const nLayers = r.optLayers('num_hidden_layers', 26);
  const nCtx = r.optDim('max_position_embeddings', 131072);

  // Local (sliding) and global layers.
  if ('sliding_window' in r.raw && r.raw.sliding_window === null)
    throw r.error('sliding_window', 'is null; Gemma 3 needs a window for its sliding-attention layers');
  const window = r.optNum('sliding_window', 4096, { integer: true, min: 1 });
  let layerTypes = r.strList('layer_types', LAYER_TYPES);
  if (layerTypes) {
    if (layerTypes.length !== nLayers)
      throw r.error('layer_types', `lists ${layerTypes.length} layers, but num_hidden_layers is ${nLayers}`);
    r.ignore('sliding_window_pattern', '_sliding_window_pattern'); // read only when layer_types is absent
  } else {
    const pattern = r.optNum('sliding_window_pattern', 6, { integer: true, min: 1 });
    // transformers 5 also saves the pattern it used as _sliding_window_pattern but never reads it back.
    const saved = r.optNum('_sliding_window_pattern', null);
    if (saved !== null && saved !== pattern)
      throw r.error('_sliding_window_pattern', `is ${saved}, but sliding_window_pattern gives ${pattern} and layer_types is absent`);
    layerTypes = Array.from({ length: nLayers }, (_, i) => ((i + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'));
  }
  r.expect('use_bidirectional_attention', [false]);

  const { global, local } = readGemma3Rope(r, nCtx, dHead);
  const finalSoftcap = r.optNum('final_logit_softcapping', null, { gt: 0 });
  if (multimodal && finalSoftcap !== null)
    throw r.error(
      'final_logit_softcapping',
      `is ${finalSoftcap}; transformers' Gemma3ForConditionalGeneration does not apply it while Gemma3ForCausalLM does, so glassbox will not guess`,
    );
  // transformers 5.18's Gemma3Attention never passes attn_logit_softcapping to the attention (Gemma 2's
  // does); released Gemma 3 configs set it null, and a value would be read differently by different
  // transformers versions, so glassbox refuses one.
  r.expect('attn_logit_softcapping', [null], 'transformers 5.18 ignores it for Gemma 3; glassbox accepts only');
  r.ignore('hidden_act'); // Gemma3TextConfig computes hidden_activation only
  const attentionBias = r.bool('attention_bias', false);
  // Token ids: the multimodal config's own, else text_config's, else Gemma3TextConfig's defaults.
  const tokenId = (name: string, fallback: number): number => (multimodal ? top.tokenId(name) : null) ?? r.tokenId(name) ?? fallback;
  return {
    family,
    nLayers,
    dModel,
    nHeads,
    nKVHeads,
    dHead,
    dMlp: r.optDim('intermediate_size', 9216),
    dVocab: r.optDim('vocab_size', 262208),
    nCtx,
    norm: 'rmsnorm',
    normEps: r.optNum('rms_norm_eps', 1e-6, { gt: 0, max: 1 }),
    normWeightOffset: 1,
    ...rotaryFields(global, dHead),
    layerRope: layerTypes.map((t): RopeId => (t === 'sliding_attention' ? 'local' : 'global')),
    localRope: local,
    parallelResidual: false,
    act: readActivation(r, 'hidden_activation', 'gelu_pytorch_tanh'),
    gatedMlp: true,
    attnScale: 1 / Math.sqrt(r.optNum('query_pre_attn_scalar', 256, { gt: 0 })),
    attnSoftcap: null,
    finalSoftcap,
    slidingWindow: layerTypes.map((t) => (t === 'sliding_attention' ? window : null)),
    embedScale: Math.fround(Math.sqrt(dModel)),
    postNorms: true,
    qkNorm: true,
    attnBias: attentionBias,
    attnOutBias: attentionBias,
    mlpBias: false,
    unembedBias: false,
    tiedEmbeddings,
    bosTokenId: tokenId('bos_token_id', 2),
    eosTokenId: tokenId('eos_token_id', 1),
    padTokenId: tokenId('pad_token_id', 0),
  };
}

/**
 * The global and local RoPE: transformers 5 nests them under rope_parameters.full_attention and
 * .sliding_attention; transformers 4 wrote rope_theta (global, default 1e6), rope_local_base_freq
 * (local, default 1e4) and rope_scaling (global layers only).
 */
function readGemma3Rope(r: HfConfigReader, maxPositions: number, dHead: number): { global: RopeConfig; local: RopeConfig } {
  const params = r.sub('rope_parameters');
  const legacy = r.sub('rope_scaling');
  if (params && legacy) throw r.error('rope_scaling', "is given beside 'rope_parameters'; a config should use one spelling");
  const globalTheta = r.optNum('rope_theta', 1e6, { gt: 0 });
  const localTheta = r.optNum('rope_local_base_freq', 1e4, { gt: 0 });
  const read = (s: HfConfigReader | null, theta: number): RopeConfig =>
    s ? readScaling(s, s.optNum('rope_theta', null, { gt: 0 }) ?? theta, ROPE_TYPES, maxPositions) : { type: 'default', theta };
  const global = read(params ? params.sub('full_attention') : legacy, globalTheta);
  const local = read(params?.sub('sliding_attention') ?? null, localTheta);
  checkRopeDims(r, global, dHead, params ? 'rope_parameters.full_attention' : 'rope_scaling');
  checkRopeDims(r, local, dHead, 'rope_parameters.sliding_attention');
  // transformers reads YaRN's truncate from the outer rope_parameters, where Gemma 3 never has it.
  for (const [name, rope] of [
    ['full_attention', global],
    ['sliding_attention', local],
  ] as const)
    if (params && rope.type === 'yarn' && rope.truncate === false)
      throw r.error(
        `rope_parameters.${name}.truncate`,
        'is false; transformers ignores it for Gemma 3 (it reads truncate from the outer rope_parameters)',
      );
  return { global, local };
}
