/**
 * Mixtral: Mistral's attention (RMSNorm, full rotary, grouped-query attention, no biases, a
 * sliding window on every layer when `sliding_window` is set) with a sparse mixture of experts in
 * place of the MLP: a router (Linear d_model -> num_local_experts, no bias), softmax, the top
 * `num_experts_per_tok` probabilities renormalised to sum to 1, and the weighted sum of those
 * experts, each a gated SiLU MLP of width intermediate_size (see `moe` in forward.ts).
 *
 * Weights, in either of the layouts transformers reads: per expert, as Mixtral's files on the Hub
 * and transformers 5.18's save_pretrained write them (`block_sparse_moe.gate.weight`,
 * `block_sparse_moe.experts.E.w1/w2/w3.weight`: w1 gate, w3 up, w2 down), or fused, as
 * transformers 5 holds them in memory (`mlp.gate.weight`, `mlp.experts.gate_up_proj`
 * [E, 2*d_mlp, d_model] with the gate rows first, `mlp.experts.down_proj` [E, d_model, d_mlp]).
 *
 * `router_jitter_noise` (noise on the router input while training) and `router_aux_loss_coef` /
 * `output_router_logits` (the load-balancing loss) change nothing at inference; they are inert.
 * Mixtral always renormalises the top-k weights: `norm_topk_prob` false is refused, as is any
 * other MoE field (shared experts, grouped routing, ...), unread and so refused by the loader.
 */
import { rmsGatedConfig, readEnds, readStandardDims, type ModelConfig } from '../config.js';
import { readWholeHeadRope } from '../rope.js';
import { stack } from '../../tensor/index.js';
import type { BlockParams, MoeParams } from '../forward.js';
import { linearT, normAt, qkvoAt, type Family, type WeightReader } from './types.js';
import { llamaEnds, llamaSkipped } from './llama.js';

export const mixtral: Family = {
  modelTypes: ['mixtral'],
  config(r): ModelConfig {
    const dims = readStandardDims(r, { context: 4096 * 32 });
    const window = r.optNum('sliding_window', null, { integer: true, min: 1 });
    const rope = readWholeHeadRope(r, 'mixtral', dims.dHead, {
      defaultTheta: 1e6,
      maxPositions: dims.nCtx,
      partialWithPlainRope: 'refused',
    });
    const nExperts = r.dim(['num_local_experts', 'num_experts']);
    const topK = r.optDim('num_experts_per_tok', 2); // MixtralConfig's default
    if (topK > nExperts) throw r.error('num_experts_per_tok', `(${topK}) must be at most num_local_experts (${nExperts})`);
    r.expect('norm_topk_prob', [true], 'Mixtral renormalises the top-k weights; glassbox implements only');
    return {
      ...rmsGatedConfig(r, 'mixtral', dims, rope, { normEps: 1e-5 }),
      moe: { nExperts, topK },
      slidingWindow: Array(dims.nLayers).fill(window),
      attnBias: false,
      attnOutBias: false,
      mlpBias: false,
      ...readEnds(r, false),
    };
  },
  weights(cfg, w) {
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `model.layers.${l}.`;
      blocks.push({
        ln1: normAt(w, `${h}input_layernorm`),
        ln2: normAt(w, `${h}post_attention_layernorm`),
        attn: qkvoAt(w, `${h}self_attn.`),
        moe: experts(cfg, w, h),
      });
    }
    return llamaEnds(cfg, w, blocks);
  },
  skipped: (cfg) => llamaSkipped(cfg),
};

/** One layer's router and experts, from the fused (transformers 5) or per-expert (Hub) layout. */
function experts(cfg: ModelConfig, w: WeightReader, h: string): MoeParams {
  const E = cfg.moe!.nExperts;
  const dMlp = cfg.dMlp;
  const fused = `${h}mlp.experts.gate_up_proj`;
  if (w.has(fused)) {
    const gateUp = w.get(fused); // [E, 2*d_mlp, d_model]: gate rows, then up rows
    if (gateUp.shape.join() !== [E, 2 * dMlp, cfg.dModel].join())
      throw new Error(`weight '${fused}' has shape [${gateUp.shape}] but the config implies [${[E, 2 * dMlp, cfg.dModel]}]`);
    return {
      W_router: linearT(w, `${h}mlp.gate.weight`),
      W_gate: gateUp.slice([null, { end: dMlp }]).transpose(),
      W_in: gateUp.slice([null, { start: dMlp }]).transpose(),
      W_out: w.get(`${h}mlp.experts.down_proj`).transpose(),
    };
  }
  const pre = `${h}block_sparse_moe.`;
  const perExpert = (name: string) => stack(Array.from({ length: E }, (_, e) => linearT(w, `${pre}experts.${e}.${name}.weight`)));
  return { W_router: linearT(w, `${pre}gate.weight`), W_gate: perExpert('w1'), W_in: perExpert('w3'), W_out: perExpert('w2') };
}
