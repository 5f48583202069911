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
import { rmsGatedConfig, readEnds, readStandardDims, type ModelConfig } from '../config.js';
import { readWholeHeadRope } from '../rope.js';
import type { BlockParams } from '../forward.js';
import { gatedMlpAt, normAt, qkvoAt, type Family } from './types.js';
import { llamaEnds, llamaSkipped } from './llama.js';

export const olmo2: Family = {
  modelTypes: ['olmo2'],
  config(r): ModelConfig {
    const dims = readStandardDims(r, { context: 2048 });
    const rope = readWholeHeadRope(r, 'olmo2', dims.dHead, {
      defaultTheta: 10000,
      maxPositions: dims.nCtx,
      partialWithPlainRope: 'refused',
    });
    const attentionBias = r.bool('attention_bias', false);
    return {
      ...rmsGatedConfig(r, 'olmo2', dims, rope, { normEps: 1e-5 }),
      postNorms: true,
      preNorms: false,
      qkNorm: true,
      qkNormAllHeads: true,
      attnBias: attentionBias,
      attnOutBias: attentionBias,
      mlpBias: false,
      ...readEnds(r, false),
    };
  },
  weights(cfg, w) {
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `model.layers.${l}.`;
      blocks.push({
        ln1: {},
        ln2: {},
        ln1_post: normAt(w, `${h}post_attention_layernorm`),
        ln2_post: normAt(w, `${h}post_feedforward_layernorm`),
        attn: {
          // With attention_bias false transformers builds no biases (and ignores any in the file).
          ...qkvoAt(w, `${h}self_attn.`, { qkv: cfg.attnBias, o: cfg.attnBias }),
          q_norm: w.get(`${h}self_attn.q_norm.weight`),
          k_norm: w.get(`${h}self_attn.k_norm.weight`),
        },
        mlp: gatedMlpAt(w, `${h}mlp.`),
      });
    }
    return llamaEnds(cfg, w, blocks);
  },
  skipped: (cfg) => llamaSkipped(cfg),
};
