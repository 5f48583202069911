/**
 * StableLM (StableLM-3B-4E1T, StableLM 2). Against LLaMA: LayerNorm with biases instead of
 * RMSNorm; partial rotary (partial_rotary_factor, 0.25 by default; GPT-NeoX rotate-half layout);
 * optional q/k/v biases (use_qkv_bias); optional LayerNorm on q and k with a separate [d_head]
 * weight per head and no bias (qk_layernorm); optionally attention and MLP in parallel off the
 * one input LayerNorm (use_parallel_residual, which drops post_attention_layernorm).
 */
import { plainConfig, readActivation, readEnds, readStandardDims, rotaryFields, type ModelConfig } from '../config.js';
import { readRope } from '../rope.js';
import { stack } from '../../tensor/index.js';
import type { BlockParams } from '../forward.js';
import { gatedMlpAt, normAt, qkvoAt, type Family } from './types.js';
import { llamaEnds, llamaSkipped } from './llama.js';

export const stablelm: Family = {
  modelTypes: ['stablelm'],
  config(r): ModelConfig {
    // StableLmConfig's default num_key_value_heads is 32, not num_attention_heads.
    const nKVHeads = r.optDim('num_key_value_heads', 32);
    const dims = readStandardDims(r, { context: 4096 });
    const { nLayers, nHeads, dModel, dHead: dh } = dims;
    if (nHeads % nKVHeads !== 0)
      throw r.has('num_key_value_heads')
        ? r.error('num_key_value_heads', `(${nKVHeads}) must divide num_attention_heads (${nHeads})`)
        : r.error('num_key_value_heads', `is absent, and StableLM's default of 32 does not divide num_attention_heads (${nHeads})`);
    // transformers' StableLM attention is hidden_size / num_attention_heads per head, whatever head_dim says.
    if (dh * nHeads !== dModel) throw r.error('head_dim', `(${dh}) must be hidden_size / num_attention_heads (${dModel / nHeads})`);
    const { rope, partialRotary } = readRope(r, { defaultTheta: 10000, implemented: ['default', 'linear'], maxPositions: dims.nCtx });
    const rotaryDim = Math.floor(dh * (partialRotary ?? 0.25));
    if (rotaryDim % 2 !== 0) throw r.error('partial_rotary_factor', `gives an odd number of rotary dims (${rotaryDim} of ${dh})`);
    const qkvBias = r.bool('use_qkv_bias', false);
    return {
      ...plainConfig(nLayers),
      family: 'stablelm',
      ...dims,
      nKVHeads,
      norm: 'layernorm',
      normEps: r.optNum('layer_norm_eps', 1e-5, { gt: 0, max: 1 }),
      ...rotaryFields(rope, rotaryDim),
      parallelResidual: r.bool('use_parallel_residual', false),
      act: readActivation(r, 'hidden_act', 'silu'),
      gatedMlp: true,
      attnScale: 1 / Math.sqrt(dh),
      qkNorm: r.bool('qk_layernorm', false),
      attnBias: qkvBias,
      attnOutBias: false,
      mlpBias: false,
      ...readEnds(r, false),
    };
  },
  weights(cfg, w) {
    // qk_layernorm: one LayerNorm (weight only) per head, stacked to [heads, d_head].
    const perHead = (prefix: string, heads: number) =>
      stack(
        Array.from({ length: heads }, (_, i) => w.get(`${prefix}.norms.${i}.weight`)),
        0,
      );
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `model.layers.${l}.`;
      const ln1 = normAt(w, `${h}input_layernorm`, true);
      blocks.push({
        ln1,
        // Parallel residual: the MLP reads the same input LayerNorm (ln2 is ln1, as TransformerLens ties them).
        ln2: cfg.parallelResidual ? ln1 : normAt(w, `${h}post_attention_layernorm`, true),
        attn: {
          ...qkvoAt(w, `${h}self_attn.`, { qkv: cfg.attnBias }),
          ...(cfg.qkNorm
            ? { q_norm: perHead(`${h}self_attn.q_layernorm`, cfg.nHeads), k_norm: perHead(`${h}self_attn.k_layernorm`, cfg.nKVHeads) }
            : {}),
        },
        mlp: gatedMlpAt(w, `${h}mlp.`),
      });
    }
    return llamaEnds(cfg, w, blocks, { finalNormBias: true });
  },
  skipped: (cfg) => llamaSkipped(cfg),
};
