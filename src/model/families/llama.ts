/**
 * LLaMA and its close relatives (Mistral, Qwen2, Qwen3): RMSNorm, full rotary, grouped-query
 * attention, gated SiLU MLP, no biases (Qwen2: q/k/v biases; Qwen3: q/k RMSNorm per head;
 * Mistral: a sliding window on every layer). Every RoPE scaling transformers has (linear, dynamic,
 * llama3, yarn, longrope).
 */
import { rmsGatedConfig, readEnds, readStandardDims, type ModelConfig } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import { readWholeHeadRope } from '../rope.js';
import type { BlockParams, ModelParams } from '../forward.js';
import { gatedMlpAt, normAt, qkvoAt, unembedAt, INV_FREQ, tiedHead, type Family, type WeightReader, type SkippedTensors } from './types.js';

/** The config classes' defaults for head_dim and max_position_embeddings (transformers 5.18). */
const LLAMA_CLASS_DEFAULTS: Record<string, { headDim?: number; context: number }> = {
  llama: { context: 2048 },
  mistral: { context: 4096 * 32 },
  qwen2: { context: 32768 },
  qwen3: { headDim: 128, context: 32768 },
};

export const llama: Family = {
  modelTypes: ['llama', 'mistral', 'qwen2', 'qwen3'],
  config(r): ModelConfig {
    const family = r.modelType;
    const dims = readStandardDims(r, LLAMA_CLASS_DEFAULTS[family] ?? { context: 2048 });
    const { nLayers, dHead: dh } = dims;
    const window = r.optNum('sliding_window', null, { integer: true, min: 1 });
    // Qwen2/Qwen3 only slide when use_sliding_window says so, on layers from max_window_layers on;
    // Mistral whenever a window is set.
    const useWindow = family === 'mistral' ? window !== null : r.bool('use_sliding_window', false) && window !== null;
    const windowFrom = family === 'qwen2' || family === 'qwen3' ? r.optNum('max_window_layers', 0, { integer: true, min: 0 }) : 0;
    const layerTypes = r.strList('layer_types', ['full_attention', 'sliding_attention'] as const);
    if (layerTypes && layerTypes.length !== nLayers)
      throw r.error('layer_types', `lists ${layerTypes.length} layers, but num_hidden_layers is ${nLayers}`);
    const slidesAt = (l: number): boolean => useWindow && (layerTypes ? layerTypes[l] === 'sliding_attention' : l >= windowFrom);
    if (layerTypes?.includes('sliding_attention') && !useWindow)
      throw r.error('layer_types', 'names sliding_attention layers, but no sliding window is in use (sliding_window / use_sliding_window)');
    // transformers' plain RoPE for these families rotates the whole head whatever partial_rotary_factor says.
    const rope = readWholeHeadRope(r, family, dh, { defaultTheta: 10000, maxPositions: dims.nCtx, partialWithPlainRope: 'ignored' });
    const { attnBias, attnOutBias, mlpBias } = llamaBiases(r, family);
    return {
      ...rmsGatedConfig(r, family, dims, rope, { normEps: 1e-6 }),
      slidingWindow: Array.from({ length: nLayers }, (_, l) => (slidesAt(l) ? window : null)),
      qkNorm: family === 'qwen3',
      attnBias,
      attnOutBias,
      mlpBias,
      ...readEnds(r, false),
    };
  },
  weights: llamaWeights,
  skipped: (cfg) => llamaSkipped(cfg),
};

/**
 * The biases each family's transformers 5.18 classes build. LLaMA: q/k/v/o from `attention_bias`,
 * the MLP's from `mlp_bias` (both default false). Qwen3: q/k/v/o from `attention_bias`; no MLP
 * biases. Qwen2: q/k/v always, never o or the MLP's. Mistral: none. A field the family's classes
 * never read (Mistral's or Qwen2's `attention_bias`, any but LLaMA's `mlp_bias`, as configs
 * converted from LLaMA carry) is inert there: read and ignored, so the model is the one
 * transformers builds; biases stored for it are then refused as unused tensors.
 */
function llamaBiases(r: HfConfigReader, family: string): Pick<ModelConfig, 'attnBias' | 'attnOutBias' | 'mlpBias'> {
  const attentionBias = family === 'llama' || family === 'qwen3' ? r.bool('attention_bias', false) : false;
  const mlpBias = family === 'llama' ? r.bool('mlp_bias', false) : false;
  r.ignore('attention_bias', 'mlp_bias');
  return { attnBias: family === 'qwen2' || attentionBias, attnOutBias: attentionBias, mlpBias };
}

/** What the LLaMA layout leaves unread: RoPE buffers, and a tied checkpoint's stored unembedding. */
export function llamaSkipped(cfg: ModelConfig, lmHeads: readonly string[] = ['lm_head.weight']): SkippedTensors[] {
  return [INV_FREQ, ...tiedHead(cfg, ...lmHeads)];
}

/**
 * The LLaMA weight layout, shared with Gemma (which adds its post-norms). `prefix` holds the
 * decoder (`model.`; Gemma 3 multimodal checkpoints nest it), `lmHead` the unembedding, read
 * unless the embeddings are tied. Biases and q/k norms are read when the config has them (and
 * then required), as transformers builds them: a stored bias the config says is absent is left
 * unread, so the loader refuses it.
 */
export function llamaWeights(cfg: ModelConfig, w: WeightReader, prefix = 'model.', lmHead = 'lm_head') {
  const blocks: BlockParams[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `${prefix}layers.${l}.`;
    const mlp = gatedMlpAt(w, `${h}mlp.`);
    blocks.push({
      ln1: normAt(w, `${h}input_layernorm`),
      ln2: normAt(w, `${h}${cfg.postNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}`),
      ...(cfg.postNorms
        ? {
            // Gemma 2 names: post_attention_layernorm is the norm after attention.
            ln1_post: normAt(w, `${h}post_attention_layernorm`),
            ln2_post: normAt(w, `${h}post_feedforward_layernorm`),
          }
        : {}),
      attn: {
        // Biases exactly where the config says (transformers builds none otherwise, whatever the file holds).
        ...qkvoAt(w, `${h}self_attn.`, { qkv: cfg.attnBias, o: cfg.attnOutBias }),
        ...(cfg.qkNorm ? { q_norm: w.get(`${h}self_attn.q_norm.weight`), k_norm: w.get(`${h}self_attn.k_norm.weight`) } : {}),
      },
      mlp: cfg.mlpBias
        ? {
            ...mlp,
            b_gate: w.get(`${h}mlp.gate_proj.bias`),
            b_in: w.get(`${h}mlp.up_proj.bias`),
            b_out: w.get(`${h}mlp.down_proj.bias`),
          }
        : mlp,
    });
  }
  return llamaEnds(cfg, w, blocks, { prefix, lmHead });
}

/**
 * The parameters of a checkpoint in the LLaMA layout around its `blocks` (LLaMA, Gemma, Mixtral,
 * OLMo 2, Phi-3, StableLM): the embedding `${prefix}embed_tokens`, the final norm `${prefix}norm`
 * (with a bias when `finalNormBias`), and the unembedding: tied (transformers then ignores a
 * stored lm_head) or the checkpoint's own `lmHead`.
 */
export function llamaEnds(
  cfg: ModelConfig,
  w: WeightReader,
  blocks: BlockParams[],
  { prefix = 'model.', lmHead = 'lm_head', finalNormBias = false }: { prefix?: string; lmHead?: string; finalNormBias?: boolean } = {},
): ModelParams {
  const embed = w.get(`${prefix}embed_tokens.weight`);
  return {
    embed: { W_E: embed },
    blocks,
    ln_final: normAt(w, `${prefix}norm`, finalNormBias),
    unembed: unembedAt(cfg, w, embed, false, lmHead),
  };
}
