/**
 * LLaMA and its close relatives (Mistral, Qwen2, Qwen3): RMSNorm, full rotary, grouped-query
 * attention, gated SiLU MLP, no biases (Qwen2: q/k/v biases; Qwen3: q/k RMSNorm per head;
 * Mistral: a sliding window on every layer).
 */
import { hfOptNum, hfStandardDims, hfRopeTheta, hfTokenId, type ModelConfig } from '../config.js';
import type { BlockParams } from '../forward.js';
import { linearT, type Family, type WeightReader } from './types.js';

export const llama: Family = {
  modelTypes: ['llama', 'mistral', 'qwen2', 'qwen3'],
  config(hf, file): ModelConfig {
    const family = String(hf.model_type);
    const dims = hfStandardDims(hf, file);
    const { nLayers, dHead: dh } = dims;
    const window = hfOptNum(hf, 'sliding_window');
    // Qwen2 only slides when use_sliding_window says so; Mistral whenever a window is set.
    const slides = family === 'mistral' ? window !== null : hf.use_sliding_window === true && window !== null;
    const act = String(hf.hidden_act ?? 'silu');
    return {
      family,
      ...dims,
      norm: 'rmsnorm',
      normEps: hfOptNum(hf, 'rms_norm_eps') ?? 1e-6,
      normWeightOffset: 0,
      positional: 'rotary',
      rotaryDim: dh,
      ropeTheta: hfRopeTheta(hf, 10000),
      parallelResidual: false,
      act: act === 'silu' || act === 'swish' ? 'silu' : act === 'gelu' ? 'gelu' : act === 'relu' ? 'relu' : 'gelu_tanh',
      gatedMlp: true,
      attnScale: 1 / Math.sqrt(dh),
      attnSoftcap: null,
      finalSoftcap: null,
      slidingWindow: Array(nLayers).fill(slides ? window : null),
      embedScale: 1,
      postNorms: false,
      qkNorm: family === 'qwen3',
      attnBias: family === 'qwen2' || hf.attention_bias === true,
      attnOutBias: hf.attention_bias === true,
      mlpBias: hf.mlp_bias === true,
      unembedBias: false,
      tiedEmbeddings: hf.tie_word_embeddings === true,
      bosTokenId: hfTokenId(hf, 'bos_token_id'),
      eosTokenId: hfTokenId(hf, 'eos_token_id'),
      padTokenId: hfTokenId(hf, 'pad_token_id'),
    };
  },
  weights: llamaWeights,
};

/** The LLaMA weight layout, shared with Gemma (which adds its post-norms). */
export function llamaWeights(cfg: ModelConfig, w: WeightReader) {
  const opt = (name: string) => (w.has(name) ? w.get(name) : undefined);
  const blocks: BlockParams[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const h = `model.layers.${l}.`;
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
        b_Q: opt(`${h}self_attn.q_proj.bias`),
        b_K: opt(`${h}self_attn.k_proj.bias`),
        b_V: opt(`${h}self_attn.v_proj.bias`),
        b_O: opt(`${h}self_attn.o_proj.bias`),
        q_norm: opt(`${h}self_attn.q_norm.weight`),
        k_norm: opt(`${h}self_attn.k_norm.weight`),
      },
      mlp: {
        W_gate: linearT(w, `${h}mlp.gate_proj.weight`),
        W_in: linearT(w, `${h}mlp.up_proj.weight`),
        W_out: linearT(w, `${h}mlp.down_proj.weight`),
        b_gate: opt(`${h}mlp.gate_proj.bias`),
        b_in: opt(`${h}mlp.up_proj.bias`),
        b_out: opt(`${h}mlp.down_proj.bias`),
      },
    });
  }
  const embed = w.get('model.embed_tokens.weight');
  return {
    embed: { W_E: embed },
    blocks,
    ln_final: { w: w.get('model.norm.weight') },
    unembed: { W_U: w.has('lm_head.weight') ? linearT(w, 'lm_head.weight') : embed.transpose() },
  };
}
