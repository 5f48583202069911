/**
 * Phi (Phi-1, Phi-1.5, Phi-2). Against LLaMA: LayerNorm with biases; attention and MLP in
 * parallel, both reading the one input LayerNorm of the block (TransformerLens ties ln2 to ln1,
 * as here); partial rotary (partial_rotary_factor of each head, GPT-NeoX rotate-half layout);
 * optional LayerNorm on each head's q and k (qk_layernorm, one [d_head] weight and bias shared
 * by the heads); biases on q/k/v, the attention output, the MLP and the unembedding
 * (lm_head.bias); a plain (not gated) GELU MLP, gelu_new by default.
 */
import { plainConfig, readActivation, readEnds, readStandardDims, rotaryFields, type ModelConfig } from '../config.js';
import { readRope } from '../rope.js';
import type { BlockParams } from '../forward.js';
import { INV_FREQ, linearT, tiedHead, type Family } from './types.js';

export const phi: Family = {
  modelTypes: ['phi'],
  config(r): ModelConfig {
    const dims = readStandardDims(r, { context: 2048 });
    const { nLayers, dHead: dh } = dims;
    const qkNorm = r.bool('qk_layernorm', false);
    // transformers' per-head q/k LayerNorm is hidden_size / num_attention_heads wide.
    if (qkNorm && dh * dims.nHeads !== dims.dModel)
      throw r.error('head_dim', `(${dh}) differs from hidden_size / num_attention_heads, which qk_layernorm's norms assume`);
    const { rope, partialRotary } = readRope(r, { defaultTheta: 10000, implemented: ['default', 'linear'], maxPositions: dims.nCtx });
    // PhiConfig's default partial_rotary_factor is 0.5; transformers truncates head_dim * factor.
    const rotaryDim = Math.floor(dh * (partialRotary ?? 0.5));
    if (rotaryDim % 2 !== 0) throw r.error('partial_rotary_factor', `gives an odd number of rotary dims (${rotaryDim} of ${dh})`);
    return {
      ...plainConfig(nLayers),
      family: 'phi',
      ...dims,
      norm: 'layernorm',
      normEps: r.optNum('layer_norm_eps', 1e-5, { gt: 0, max: 1 }),
      ...rotaryFields(rope, rotaryDim),
      parallelResidual: true,
      act: readActivation(r, 'hidden_act', 'gelu_new'),
      attnScale: 1 / Math.sqrt(dh),
      qkNorm,
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      unembedBias: true,
      ...readEnds(r, false),
    };
  },
  weights(cfg, w) {
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `model.layers.${l}.`;
      const ln = { w: w.get(`${h}input_layernorm.weight`), b: w.get(`${h}input_layernorm.bias`) };
      blocks.push({
        // One LayerNorm feeds both attention and MLP: ln2 is ln1 (TransformerLens ties them the same way).
        ln1: ln,
        ln2: ln,
        attn: {
          W_Q: linearT(w, `${h}self_attn.q_proj.weight`),
          W_K: linearT(w, `${h}self_attn.k_proj.weight`),
          W_V: linearT(w, `${h}self_attn.v_proj.weight`),
          W_O: linearT(w, `${h}self_attn.dense.weight`),
          b_Q: w.get(`${h}self_attn.q_proj.bias`),
          b_K: w.get(`${h}self_attn.k_proj.bias`),
          b_V: w.get(`${h}self_attn.v_proj.bias`),
          b_O: w.get(`${h}self_attn.dense.bias`),
          ...(cfg.qkNorm
            ? {
                q_norm: w.get(`${h}self_attn.q_layernorm.weight`),
                q_norm_b: w.get(`${h}self_attn.q_layernorm.bias`),
                k_norm: w.get(`${h}self_attn.k_layernorm.weight`),
                k_norm_b: w.get(`${h}self_attn.k_layernorm.bias`),
              }
            : {}),
        },
        mlp: {
          W_in: linearT(w, `${h}mlp.fc1.weight`),
          b_in: w.get(`${h}mlp.fc1.bias`),
          W_out: linearT(w, `${h}mlp.fc2.weight`),
          b_out: w.get(`${h}mlp.fc2.bias`),
        },
      });
    }
    const embed = w.get('model.embed_tokens.weight');
    return {
      embed: { W_E: embed },
      blocks,
      ln_final: { w: w.get('model.final_layernorm.weight'), b: w.get('model.final_layernorm.bias') },
      // Tied checkpoints omit lm_head.weight; the bias is always stored.
      unembed: {
        W_U: cfg.tiedEmbeddings ? embed.transpose() : linearT(w, 'lm_head.weight'),
        b_U: w.get('lm_head.bias'),
      },
    };
  },
  skipped: (cfg) => [INV_FREQ, ...tiedHead(cfg, 'lm_head.weight')],
};
