/** Random initialisation of a model's parameters (for toy models, tests and benchmarks). */
import { PRNG, ones, randn, zeros, type Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { BlockParams, ModelParams } from './forward.js';

/** GPT-2-style init: weights N(0, std), biases 0, norm weights 1 (0 where stored as w - 1). */
export function initParams(cfg: ModelConfig, options: { seed?: number; std?: number } = {}): ModelParams {
  const rng = new PRNG(options.seed ?? 0);
  const std = options.std ?? 0.02;
  const w = (shape: number[]): Tensor => randn(shape, { rng }).mul(std);
  const { dModel: d, nHeads: nH, nKVHeads: nKV, dHead: dh, dMlp, dVocab } = cfg;
  const norm = () =>
    cfg.norm === 'none' || cfg.normAffine === false
      ? {}
      : {
          w: cfg.normWeightOffset ? zeros([d]) : ones([d]),
          ...(cfg.norm === 'layernorm' ? { b: zeros([d]) } : {}),
        };
  const pre = cfg.preNorms !== false; // OLMo 2: no norms before attention and the MLP
  const qkDim = (heads: number) => (cfg.qkNormAllHeads ? heads * dh : dh); // OLMo 2: over all heads
  const blocks: BlockParams[] = Array.from({ length: cfg.nLayers }, () => ({
    ln1: pre ? norm() : {},
    ln2: cfg.attnOnly || !pre ? {} : norm(),
    ...(cfg.postNorms ? { ln1_post: norm(), ln2_post: norm() } : {}),
    attn: {
      W_Q: w([d, nH * dh]),
      W_K: w([d, nKV * dh]),
      W_V: w([d, nKV * dh]),
      W_O: w([nH * dh, d]),
      ...(cfg.attnBias ? { b_Q: zeros([nH * dh]), b_K: zeros([nKV * dh]), b_V: zeros([nKV * dh]) } : {}),
      ...(cfg.attnOutBias ? { b_O: zeros([d]) } : {}),
      ...(cfg.qkNorm
        ? {
            // Gemma 3 stores q/k norm weights as w - 1: zero is the identity scale.
            q_norm: cfg.normWeightOffset ? zeros([qkDim(nH)]) : ones([qkDim(nH)]),
            k_norm: cfg.normWeightOffset ? zeros([qkDim(nKV)]) : ones([qkDim(nKV)]),
          }
        : {}),
    },
    ...(cfg.attnOnly
      ? {}
      : cfg.moe
        ? {
            moe: {
              W_router: w([d, cfg.moe.nExperts]),
              W_gate: w([cfg.moe.nExperts, d, dMlp]),
              W_in: w([cfg.moe.nExperts, d, dMlp]),
              W_out: w([cfg.moe.nExperts, dMlp, d]),
            },
          }
        : {
            mlp: {
              W_in: w([d, dMlp]),
              W_out: w([dMlp, d]),
              ...(cfg.gatedMlp ? { W_gate: w([d, dMlp]) } : {}),
              ...(cfg.mlpBias ? { b_in: zeros([dMlp]), b_out: zeros([d]) } : {}),
            },
          }),
  }));
  const W_E = w([dVocab, d]);
  return {
    embed: { W_E, ...(cfg.postEmbedNorm ? { ln: norm() } : {}) },
    ...(cfg.positional === 'learned' ? { pos_embed: { W_pos: w([cfg.nCtx, d]) } } : {}),
    blocks,
    ln_final: cfg.normAfterAdd ? {} : norm(),
    unembed: { W_U: cfg.tiedEmbeddings ? W_E.transpose() : w([d, dVocab]), ...(cfg.unembedBias ? { b_U: zeros([dVocab]) } : {}) },
  };
}
