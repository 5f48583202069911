/**
 * Checking a model's parameters against its config before it runs: every weight's shape, named
 * in the error with both shapes.
 */
import type { Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { ModelParams } from './forward.js';

/** Checks every weight's shape against the config; the error names the weight and both shapes. */
export function validateParams(cfg: ModelConfig, p: ModelParams, file: string): void {
  const { dModel: d, nHeads: nH, nKVHeads: nKV, dHead: dh, dMlp, dVocab } = cfg;
  const check = (name: string, t: Tensor | undefined, shape: number[]): void => {
    if (!t) return;
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i]))
      throw new Error(
        `${file}: weight '${name}' has shape [${t.shape}] but the config implies [${shape}] (d_model ${d}, heads ${nH}/${nKV}x${dh}, d_mlp ${dMlp}, vocab ${dVocab})`,
      );
  };
  check('embed.W_E', p.embed.W_E, [dVocab, d]);
  if (cfg.postEmbedNorm && !p.embed.ln) throw new Error(`${file}: the config has an embedding norm, but there are no weights for it`);
  check('embed.ln.w', p.embed.ln?.w, [d]);
  check('embed.ln.b', p.embed.ln?.b, [d]);
  if (p.pos_embed) check('pos_embed.W_pos', p.pos_embed.W_pos, [cfg.nCtx, d]);
  if (p.blocks.length !== cfg.nLayers) throw new Error(`${file}: ${p.blocks.length} blocks of weights for ${cfg.nLayers} layers`);
  p.blocks.forEach((b, l) => {
    const at = (n: string) => `blocks.${l}.${n}`;
    for (const [n, norm] of [
      ['ln1', b.ln1],
      ['ln2', b.ln2],
      ['ln1_post', b.ln1_post],
      ['ln2_post', b.ln2_post],
    ] as const) {
      check(at(`${n}.w`), norm?.w, [d]);
      check(at(`${n}.b`), norm?.b, [d]);
    }
    check(at('attn.W_Q'), b.attn.W_Q, [d, nH * dh]);
    check(at('attn.W_K'), b.attn.W_K, [d, nKV * dh]);
    check(at('attn.W_V'), b.attn.W_V, [d, nKV * dh]);
    check(at('attn.W_O'), b.attn.W_O, [nH * dh, d]);
    check(at('attn.b_Q'), b.attn.b_Q, [nH * dh]);
    check(at('attn.b_K'), b.attn.b_K, [nKV * dh]);
    check(at('attn.b_V'), b.attn.b_V, [nKV * dh]);
    check(at('attn.b_O'), b.attn.b_O, [d]);
    if (cfg.qkNorm && !(b.attn.q_norm && b.attn.k_norm)) throw new Error(`${file}: block ${l} has no q/k norm weights`);
    // Per head [d_head] (Qwen3, Phi), a row per head [heads, d_head] (StableLM), or all heads together (OLMo 2).
    for (const [n, t, heads] of [
      ['q_norm', b.attn.q_norm, nH],
      ['q_norm_b', b.attn.q_norm_b, nH],
      ['k_norm', b.attn.k_norm, nKV],
      ['k_norm_b', b.attn.k_norm_b, nKV],
    ] as const)
      check(at(`attn.${n}`), t, cfg.qkNormAllHeads ? [heads * dh] : t?.rank === 2 ? [heads, dh] : [dh]);
    if (cfg.moe) {
      const E = cfg.moe.nExperts;
      if (!b.moe) throw new Error(`${file}: block ${l} has no mixture-of-experts weights`);
      check(at('moe.W_router'), b.moe.W_router, [d, E]);
      check(at('moe.W_gate'), b.moe.W_gate, [E, d, dMlp]);
      check(at('moe.W_in'), b.moe.W_in, [E, d, dMlp]);
      check(at('moe.W_out'), b.moe.W_out, [E, dMlp, d]);
    } else if (!cfg.attnOnly && !b.mlp) throw new Error(`${file}: block ${l} has no MLP weights`);
    check(at('mlp.W_in'), b.mlp?.W_in, [d, dMlp]);
    check(at('mlp.W_gate'), b.mlp?.W_gate, [d, dMlp]);
    check(at('mlp.W_out'), b.mlp?.W_out, [dMlp, d]);
    check(at('mlp.b_in'), b.mlp?.b_in, [dMlp]);
    check(at('mlp.b_out'), b.mlp?.b_out, [d]);
  });
  check('ln_final.w', p.ln_final.w, [d]);
  check('unembed.W_U', p.unembed.W_U, [d, dVocab]);
}
