/**
 * LLaMA and its close relatives (Mistral, Qwen2, Qwen3): RMSNorm, full rotary, grouped-query
 * attention, gated SiLU MLP, no biases (Qwen2: q/k/v biases; Qwen3: q/k RMSNorm per head;
 * Mistral: a sliding window on every layer). Every RoPE scaling transformers has (linear, dynamic,
 * llama3, yarn, longrope).
 */
import { readActivation, readStandardDims, readTokenIds, type ModelConfig } from '../config.js';
import { checkRopeDims, readRope } from '../rope.js';
import type { BlockParams } from '../forward.js';
import { INV_FREQ, linearT, tiedHead, type Family, type SkippedTensors, type WeightReader } from './types.js';

export const llama: Family = {
  modelTypes: ['llama', 'mistral', 'qwen2', 'qwen3'],
  config(r): ModelConfig {
    const family = r.modelType;
    const dims = readStandardDims(r, family === 'qwen3' ? 128 : null);
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
    const { rope, partialRotary, partialField } = readRope(r, { defaultTheta: 10000, maxPositions: dims.nCtx });
    // transformers' plain RoPE for these families rotates the whole head whatever partial_rotary_factor
    // says; its scaled variants would give frequencies for a fraction of it, which its attention cannot apply.
    if (partialRotary !== null && partialRotary !== 1 && rope.type !== 'default')
      throw r.error(partialField, `is ${partialRotary}; ${family} rotates whole heads (transformers fails with scaled RoPE here)`);
    checkRopeDims(r, rope, dh);
    const attentionBias = r.bool('attention_bias', false);
    return {
      family,
      ...dims,
      norm: 'rmsnorm',
      normEps: r.optNum('rms_norm_eps', 1e-6, { gt: 0, max: 1 }),
      normWeightOffset: 0,
      positional: 'rotary',
      rotaryDim: dh,
      ropeTheta: rope.theta,
      ...(rope.type !== 'default' ? { ropeScaling: rope } : {}),
      parallelResidual: false,
      act: readActivation(r, 'hidden_act', 'silu'),
      gatedMlp: true,
      attnScale: 1 / Math.sqrt(dh),
      attnSoftcap: null,
      finalSoftcap: null,
      slidingWindow: Array.from({ length: nLayers }, (_, l) => (slidesAt(l) ? window : null)),
      embedScale: 1,
      postNorms: false,
      qkNorm: family === 'qwen3',
      attnBias: family === 'qwen2' || attentionBias,
      attnOutBias: attentionBias,
      mlpBias: r.bool('mlp_bias', false),
      unembedBias: false,
      tiedEmbeddings: r.bool('tie_word_embeddings', false),
      ...readTokenIds(r),
    };
  },
  weights: llamaWeights,
  skipped: (cfg) => llamaSkipped(cfg),
};

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
export function llamaWeights(cfg: ModelConfig, w: WeightReader, prefix = 'model.', lmHead = 'lm_head.weight') {
  const opt = (present: boolean, name: string) => (present ? w.get(name) : undefined);
  const blocks: BlockParams[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `${prefix}layers.${l}.`;
    blocks.push({
      ln1: { w: w.get(`${h}input_layernorm.weight`) },
      ln2: { w: w.get(`${h}${cfg.postNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}.weight`) },
      ...(cfg.postNorms
        ? {
            // Gemma 2 names: post_attention_layernorm is the norm after attention.
            ln1_post: { w: w.get(`${h}post_attention_layernorm.weight`) },
            ln2_post: { w: w.get(`${h}post_feedforward_layernorm.weight`) },
          }
        : {}),
      attn: {
        W_Q: linearT(w, `${h}self_attn.q_proj.weight`),
        W_K: linearT(w, `${h}self_attn.k_proj.weight`),
        W_V: linearT(w, `${h}self_attn.v_proj.weight`),
        W_O: linearT(w, `${h}self_attn.o_proj.weight`),
        b_Q: opt(cfg.attnBias, `${h}self_attn.q_proj.bias`),
        b_K: opt(cfg.attnBias, `${h}self_attn.k_proj.bias`),
        b_V: opt(cfg.attnBias, `${h}self_attn.v_proj.bias`),
        b_O: opt(cfg.attnOutBias, `${h}self_attn.o_proj.bias`),
        q_norm: opt(cfg.qkNorm, `${h}self_attn.q_norm.weight`),
        k_norm: opt(cfg.qkNorm, `${h}self_attn.k_norm.weight`),
      },
      mlp: {
        W_gate: linearT(w, `${h}mlp.gate_proj.weight`),
        W_in: linearT(w, `${h}mlp.up_proj.weight`),
        W_out: linearT(w, `${h}mlp.down_proj.weight`),
        b_gate: opt(cfg.mlpBias, `${h}mlp.gate_proj.bias`),
        b_in: opt(cfg.mlpBias, `${h}mlp.up_proj.bias`),
        b_out: opt(cfg.mlpBias, `${h}mlp.down_proj.bias`),
      },
    });
  }
  const embed = w.get(`${prefix}embed_tokens.weight`);
  return {
    embed: { W_E: embed },
    blocks,
    ln_final: { w: w.get(`${prefix}norm.weight`) },
    // Tied (transformers then ignores a stored lm_head) or the checkpoint's own.
    unembed: { W_U: cfg.tiedEmbeddings ? embed.transpose() : linearT(w, lmHead) },
  };
}
