/**
 * Gemma and Gemma 2: the LLaMA layout plus embeddings scaled by sqrt(d_model), RMSNorm weights
 * stored as w - 1, GELU (tanh) gated MLP, tied embeddings; Gemma 2 adds post-attention and
 * post-MLP norms, attention and final logit soft-capping, a query scale from
 * query_pre_attn_scalar, and a sliding window on alternate layers.
 */
import { hfOptNum, hfStandardDims, hfRopeTheta, hfTokenId, type ModelConfig } from '../config.js';
import { llamaWeights } from './llama.js';
import type { Family } from './types.js';

export const gemma: Family = {
  modelTypes: ['gemma', 'gemma2'],
  config(hf, file): ModelConfig {
    const family = String(hf.model_type);
    const g2 = family === 'gemma2';
    const dims = hfStandardDims(hf, file);
    const { nLayers, dHead: dh } = dims;
    const window = hfOptNum(hf, 'sliding_window');
    const layerTypes = Array.isArray(hf.layer_types) ? (hf.layer_types as string[]) : null;
    const slidingAt = (l: number): boolean => (layerTypes ? layerTypes[l] === 'sliding_attention' : g2 && l % 2 === 0);
    return {
      family,
      ...dims,
      norm: 'rmsnorm',
      normEps: hfOptNum(hf, 'rms_norm_eps') ?? 1e-6,
      normWeightOffset: 1,
      positional: 'rotary',
      rotaryDim: dh,
      ropeTheta: hfRopeTheta(hf, 10000),
      parallelResidual: false,
      act: 'gelu_tanh',
      gatedMlp: true,
      attnScale: 1 / Math.sqrt(hfOptNum(hf, 'query_pre_attn_scalar') ?? dh),
      attnSoftcap: g2 ? hfOptNum(hf, 'attn_logit_softcapping') : null,
      finalSoftcap: g2 ? hfOptNum(hf, 'final_logit_softcapping') : null,
      slidingWindow: Array.from({ length: nLayers }, (_, l) => (window !== null && slidingAt(l) ? window : null)),
      embedScale: Math.fround(Math.sqrt(dims.dModel)),
      postNorms: g2,
      qkNorm: false,
      attnBias: hf.attention_bias === true,
      attnOutBias: hf.attention_bias === true,
      mlpBias: false,
      unembedBias: false,
      tiedEmbeddings: hf.tie_word_embeddings !== false,
      bosTokenId: hfTokenId(hf, 'bos_token_id'),
      eosTokenId: hfTokenId(hf, 'eos_token_id'),
      padTokenId: hfTokenId(hf, 'pad_token_id'),
    };
  },
  weights: llamaWeights,
};
