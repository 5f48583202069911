/**
 * Gemma and Gemma 2: the LLaMA layout plus embeddings scaled by sqrt(d_model), RMSNorm weights
 * stored as w - 1, GELU (tanh) gated MLP, tied embeddings; Gemma 2 adds post-attention and
 * post-MLP norms, attention and final logit soft-capping, a query scale from
 * query_pre_attn_scalar, and a sliding window on alternate layers. Every RoPE scaling
 * transformers has (Gemma 3 is in gemma3.ts).
 */
import { plainConfig, readActivation, readEnds, readStandardDims, rotaryFields, type Activation, type ModelConfig } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import { readWholeHeadRope } from '../rope.js';
import { llamaSkipped, llamaWeights } from './llama.js';
import type { Family } from './types.js';

export const gemma: Family = {
  modelTypes: ['gemma', 'gemma2'],
  config(r): ModelConfig {
    const family = r.modelType;
    const g2 = family === 'gemma2';
    const dims = readStandardDims(r, { headDim: 256, context: 8192 });
    const { nLayers, dHead: dh } = dims;
    // Gemma2Config's default window is 4096 (Gemma 1 has none).
    const window = r.optNum('sliding_window', g2 ? 4096 : null, { integer: true, min: 1 });
    const layerTypes = r.strList('layer_types', ['full_attention', 'sliding_attention'] as const);
    if (layerTypes && layerTypes.length !== nLayers)
      throw r.error('layer_types', `lists ${layerTypes.length} layers, but num_hidden_layers is ${nLayers}`);
    const slidingAt = (l: number): boolean => (layerTypes ? layerTypes[l] === 'sliding_attention' : g2 && l % 2 === 0);
    const rope = readWholeHeadRope(r, family, dh, { defaultTheta: 10000, maxPositions: dims.nCtx, partialWithPlainRope: 'ignored' });
    r.expect('use_bidirectional_attention', [false]);
    // Gemma2Config's defaults apply where a field is absent (soft-caps 50 and 30, query_pre_attn_scalar
    // 256); a soft-cap of null turns it off, as in transformers. Gemma 1 has none of these fields.
    const softcap = (name: string, classDefault: number): number | null =>
      g2 ? (name in r.raw ? r.optNum(name, null, { gt: 0 }) : classDefault) : null;
    if (!g2) r.ignore('query_pre_attn_scalar', 'attn_logit_softcapping', 'final_logit_softcapping');
    const attentionBias = r.bool('attention_bias', false);
    return {
      ...plainConfig(dims.nLayers),
      family,
      ...dims,
      norm: 'rmsnorm',
      normEps: r.optNum('rms_norm_eps', 1e-6, { gt: 0, max: 1 }),
      normWeightOffset: 1,
      ...rotaryFields(rope, dh),
      act: gemmaActivation(r, g2),
      gatedMlp: true,
      attnScale: 1 / Math.sqrt(g2 ? r.optNum('query_pre_attn_scalar', 256, { gt: 0 }) : dh),
      attnSoftcap: softcap('attn_logit_softcapping', 50),
      finalSoftcap: softcap('final_logit_softcapping', 30),
      slidingWindow: Array.from({ length: nLayers }, (_, l) => (window !== null && slidingAt(l) ? window : null)),
      embedScale: Math.fround(Math.sqrt(dims.dModel)),
      postNorms: g2,
      attnBias: attentionBias,
      attnOutBias: attentionBias,
      mlpBias: false,
      ...readEnds(r, true),
    };
  },
  weights: llamaWeights,
  skipped: (cfg) => llamaSkipped(cfg),
};

/**
 * Gemma 2 computes `hidden_activation` (transformers ignores a `hidden_act` beside it). Gemma 1
 * configs use either name, and their legacy value 'gelu' means the tanh approximation, as
 * transformers reads it.
 */
function gemmaActivation(r: HfConfigReader, g2: boolean): Activation {
  if (g2) {
    r.ignore('hidden_act');
    return readActivation(r, 'hidden_activation', 'gelu_pytorch_tanh');
  }
  const act = readActivation(r, ['hidden_activation', 'hidden_act'], 'gelu_pytorch_tanh');
  return act === 'gelu' ? 'gelu_tanh' : act;
}
