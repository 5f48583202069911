/**
 * OLMo 2: the LLaMA layout (RMSNorm, full rotary, grouped-query attention, gated SiLU MLP) with
 * the norms moved: none before attention or the MLP, an RMSNorm on each one's output before the
 * residual add (`ln1_post`, `ln2_post`, as Gemma 2 names its post norms), and q/k RMSNorm over
 * the whole projection (all heads at once, weights [n_heads*d_head] and [n_kv_heads*d_head]),
 * after `hook_q` / `hook_k` and before rotary. `attention_bias` puts biases on q, k, v and the
 * output projection.
 *
 * TransformerLens calls OLMo 2's post norms ln1 / ln2 and hooks attn_out / mlp_out before them;
 * glassbox keeps `hook_attn_out` / `hook_mlp_out` as what is added to the residual stream (after
 * the norm), as for Gemma 2, so residual decompositions (DLA, patching) stay exact.
 */
import { readActivation, readStandardDims, readTokenIds, type ModelConfig } from '../config.js';
import { readRope } from '../rope.js';
import type { BlockParams } from '../forward.js';
import { INV_FREQ, linearT, tiedHead, type Family } from './types.js';

export const olmo2: Family = {
  modelTypes: ['olmo2'],
  config(r): ModelConfig {
    const dims = readStandardDims(r);
    const { rope, partialRotary, partialField } = readRope(r, { defaultTheta: 10000, maxPositions: dims.nCtx });
    if (partialRotary !== null && partialRotary !== 1) throw r.error(partialField, `is ${partialRotary}; olmo2 rotates whole heads`);
    const attentionBias = r.bool('attention_bias', false);
    return {
      family: 'olmo2',
      ...dims,
      norm: 'rmsnorm',
      normEps: r.optNum('rms_norm_eps', 1e-5, { gt: 0, max: 1 }),
      normWeightOffset: 0,
      positional: 'rotary',
      rotaryDim: dims.dHead,
      ropeTheta: rope.theta,
      ...(rope.type !== 'default' ? { ropeScaling: rope } : {}),
      parallelResidual: false,
      act: readActivation(r, 'hidden_act', 'silu'),
      gatedMlp: true,
      attnScale: 1 / Math.sqrt(dims.dHead),
      attnSoftcap: null,
      finalSoftcap: null,
      slidingWindow: Array(dims.nLayers).fill(null),
      embedScale: 1,
      postNorms: true,
      preNorms: false,
      qkNorm: true,
      qkNormAllHeads: true,
      attnBias: attentionBias,
      attnOutBias: attentionBias,
      mlpBias: false,
      unembedBias: false,
      tiedEmbeddings: r.bool('tie_word_embeddings', false),
      ...readTokenIds(r),
    };
  },
  weights(cfg, w) {
    // With attention_bias false transformers builds no biases (and ignores any in the file).
    const bias = (name: string) => (cfg.attnBias ? w.get(name) : undefined);
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `model.layers.${l}.`;
      blocks.push({
        ln1: {},
        ln2: {},
        ln1_post: { w: w.get(`${h}post_attention_layernorm.weight`) },
        ln2_post: { w: w.get(`${h}post_feedforward_layernorm.weight`) },
        attn: {
          W_Q: linearT(w, `${h}self_attn.q_proj.weight`),
          W_K: linearT(w, `${h}self_attn.k_proj.weight`),
          W_V: linearT(w, `${h}self_attn.v_proj.weight`),
          W_O: linearT(w, `${h}self_attn.o_proj.weight`),
          b_Q: bias(`${h}self_attn.q_proj.bias`),
          b_K: bias(`${h}self_attn.k_proj.bias`),
          b_V: bias(`${h}self_attn.v_proj.bias`),
          b_O: bias(`${h}self_attn.o_proj.bias`),
          q_norm: w.get(`${h}self_attn.q_norm.weight`),
          k_norm: w.get(`${h}self_attn.k_norm.weight`),
        },
        mlp: {
          W_gate: linearT(w, `${h}mlp.gate_proj.weight`),
          W_in: linearT(w, `${h}mlp.up_proj.weight`),
          W_out: linearT(w, `${h}mlp.down_proj.weight`),
        },
      });
    }
    const embed = w.get('model.embed_tokens.weight');
    return {
      embed: { W_E: embed },
      blocks,
      ln_final: { w: w.get('model.norm.weight') },
      unembed: { W_U: cfg.tiedEmbeddings ? embed.transpose() : linearT(w, 'lm_head.weight') },
    };
  },
  skipped: (cfg) => [INV_FREQ, ...tiedHead(cfg, 'lm_head.weight')],
};
