/**
 * GPT-NeoX (Pythia): LayerNorm, partial rotary (rotary_pct of each head), parallel residual,
 * fused QKV interleaved per head ([n_heads, 3, d_head] rows), exact GELU, untied unembedding.
 * Every RoPE scaling transformers has (over the rotary dims).
 */
import { plainConfig, readActivation, readEnds, readStandardDims, rotaryFields, type ModelConfig } from '../config.js';
import { checkRopeDims, readRope } from '../rope.js';
import type { BlockParams } from '../forward.js';
import { INV_FREQ, MASK_BUFFERS, linearT, tiedHead, type Family, type WeightReader } from './types.js';

export const gptNeox: Family = {
  modelTypes: ['gpt_neox'],
  config(r): ModelConfig {
    const dims = readStandardDims(r, { context: 2048 });
    const { nLayers, dHead: dh } = dims;
    // transformers' GPTNeoXConfig reads the base from rotary_emb_base and the fraction from rotary_pct
    // (default 0.25), each unless rope_parameters gives it.
    const { rope, partialRotary, partialField } = readRope(r, {
      defaultTheta: 10000,
      maxPositions: dims.nCtx,
      thetaNames: ['rotary_emb_base'],
      partialNames: ['rotary_pct'],
    });
    const rotaryPct = partialRotary ?? 0.25;
    // A top-level rope_theta or partial_rotary_factor is not read by GPTNeoXConfig: refuse one that
    // disagrees with what it does read rather than guess which was meant.
    for (const [name, used] of [
      ['rope_theta', rope.theta],
      ['partial_rotary_factor', rotaryPct],
    ] as const) {
      const v = r.optNum(name, null);
      if (v !== null && v !== used)
        throw r.error(name, `is ${v}, but GPT-NeoX uses ${used} (transformers reads rope_parameters, rotary_emb_base and rotary_pct)`);
    }
    const rotaryDim = Math.floor(dh * rotaryPct);
    if (rotaryDim % 2 !== 0) throw r.error(partialField, `gives an odd number of rotary dims (${rotaryDim} of ${dh})`);
    checkRopeDims(r, rope, rotaryDim);
    const attentionBias = r.bool('attention_bias', true);
    return {
      ...plainConfig(nLayers),
      family: 'gpt_neox',
      ...dims,
      norm: 'layernorm',
      normEps: r.optNum('layer_norm_eps', 1e-5, { gt: 0, max: 1 }),
      ...rotaryFields(rope, rotaryDim),
      parallelResidual: r.bool('use_parallel_residual', true),
      act: readActivation(r, 'hidden_act', 'gelu'),
      attnScale: 1 / Math.sqrt(dh),
      attnBias: attentionBias,
      attnOutBias: attentionBias,
      mlpBias: true,
      ...readEnds(r, false),
    };
  },
  weights(cfg, w) {
    const { nHeads: nH, dHead: dh, dModel: d } = cfg;
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `gpt_neox.layers.${l}.`;
      blocks.push({
        ln1: { w: w.get(`${h}input_layernorm.weight`), b: w.get(`${h}input_layernorm.bias`) },
        ln2: { w: w.get(`${h}post_attention_layernorm.weight`), b: w.get(`${h}post_attention_layernorm.bias`) },
        attn: {
          ...perHeadQkv(w, `${h}attention.query_key_value`, nH, dh, d, cfg.attnBias),
          W_O: linearT(w, `${h}attention.dense.weight`),
          // attention_bias decides both (transformers builds them from it and ignores stored ones otherwise).
          b_O: cfg.attnOutBias ? w.get(`${h}attention.dense.bias`) : undefined,
        },
        mlp: {
          W_in: linearT(w, `${h}mlp.dense_h_to_4h.weight`),
          b_in: w.get(`${h}mlp.dense_h_to_4h.bias`),
          W_out: linearT(w, `${h}mlp.dense_4h_to_h.weight`),
          b_out: w.get(`${h}mlp.dense_4h_to_h.bias`),
        },
      });
    }
    const embed = w.get('gpt_neox.embed_in.weight');
    return {
      embed: { W_E: embed },
      blocks,
      ln_final: { w: w.get('gpt_neox.final_layer_norm.weight'), b: w.get('gpt_neox.final_layer_norm.bias') },
      // Tied: the embedding (transformers ties embed_out to it). Untied: Pythia's files name the
      // head embed_out; transformers 5 writes lm_head.
      unembed: {
        W_U: cfg.tiedEmbeddings ? embed.transpose() : linearT(w, w.has('lm_head.weight') ? 'lm_head.weight' : 'embed_out.weight'),
      },
    };
  },
  skipped: (cfg) => [MASK_BUFFERS('.attention'), INV_FREQ, ...tiedHead(cfg, 'embed_out.weight', 'lm_head.weight')],
};

/**
 * A fused query_key_value Linear whose rows are grouped per head, [head, (q|k|v), d_head]
 * (GPT-NeoX, BLOOM): W_Q, W_K, W_V [d_model, n_heads*d_head] and, when `biased`, their biases.
 */
export function perHeadQkv(w: WeightReader, name: string, nH: number, dh: number, d: number, biased: boolean) {
  // The fused rows, checked before they are split (a reshape error would name no weight).
  const shaped = (suffix: 'weight' | 'bias') => {
    const t = w.get(`${name}.${suffix}`);
    const want = suffix === 'weight' ? [3 * nH * dh, d] : [3 * nH * dh];
    if (t.shape.join() !== want.join())
      throw new Error(
        `weight '${name}.${suffix}' has shape [${t.shape}] but the config implies [${want}] (3 x ${nH} heads x d_head ${dh}${suffix === 'weight' ? `, d_model ${d}` : ''})`,
      );
    return t.reshape(suffix === 'weight' ? [nH, 3, dh, d] : [nH, 3, dh]);
  };
  const qkvW = shaped('weight');
  const pickW = (i: number) =>
    qkvW
      .index([null, i])
      .reshape([nH * dh, d])
      .transpose();
  const bias = biased ? shaped('bias') : null;
  const pickB = (i: number) => bias?.index([null, i]).reshape([nH * dh]);
  return { W_Q: pickW(0), W_K: pickW(1), W_V: pickW(2), b_Q: pickB(0), b_K: pickB(1), b_V: pickB(2) };
}
