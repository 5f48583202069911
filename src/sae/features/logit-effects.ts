/**
 * Logit effects of SAE features (what Neuronpedia shows beside a feature's contexts): the decoder
 * direction through the unembedding, with the final norm's weight folded in, the tokens it
 * promotes and suppresses most.
 */
import type { HookedTransformer } from '../../model/hooked.js';
import { hookName, layerOf } from '../../model/hook-names.js';
import type { Tensor } from '../../tensor/index.js';
import { saeOutputPoint } from '../evals.js';
import type { Sae } from '../sae.js';

/** Each feature's strongest effects on the logits: top (promoted) and bottom (suppressed) tokens. */
export interface LogitEffects {
  /** Tokens per side. */
  n: number;
  /** [d_sae, n] token ids, largest effect first. */
  posIds: Int32Array;
  posValues: Float32Array;
  /** [d_sae, n] token ids, most negative first. */
  negIds: Int32Array;
  negValues: Float32Array;
  /** How the decoder direction reached the logits, e.g. 'W_dec @ diag(ln_final.w) @ W_U'. */
  path: string;
}

/**
 * How an SAE's decoder rows reach the residual stream: a function [c, d_out] -> [c, d_model], and
 * its description; null when the hook point does not write linearly to the residual stream.
 */
function toResidual(
  model: HookedTransformer,
  out: { name: string; head: number | null },
  dec: string,
): { map: (dirs: Tensor) => Tensor; path: string; foldNorm: boolean } | { reason: string } {
  const { name, head } = out;
  const cfg = model.cfg;
  if (
    /^(hook_embed|hook_pos_embed|blocks\.\d+\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out|mlp_in))$/.test(name) &&
    head === null
  )
    return { map: (d) => d, path: dec, foldNorm: true };
  const layer = layerOf(name);
  if (layer !== null && name === hookName('z', layer) && !cfg.postNorms) {
    const W_O = model.params.blocks[layer]!.attn.W_O; // [n_heads * d_head, d_model]
    const W = head === null ? W_O : W_O.slice([{ start: head * cfg.dHead, end: (head + 1) * cfg.dHead }]);
    return { map: (d) => d.matmul(W), path: `${dec} @ blocks.${layer}.attn.W_O${head === null ? '' : `[head ${head}]`}`, foldNorm: true };
  }
  if (layer !== null && name === hookName('post', layer) && !cfg.postNorms && head === null) {
    const mlp = model.params.blocks[layer]!.mlp;
    if (mlp) return { map: (d) => d.matmul(mlp.W_out), path: `${dec} @ blocks.${layer}.mlp.W_out`, foldNorm: true };
  }
  if (name === 'ln_final.hook_normalized' && head === null)
    // LayerNorm's hook_normalized is after the weight (nothing to fold); RMSNorm's is before it.
    return { map: (d) => d, path: dec, foldNorm: cfg.norm === 'rmsnorm' };
  return {
    reason: `the output point '${name}'${head === null ? '' : ` (head ${head})`} does not write linearly to the residual stream`,
  };
}

/**
 * Each feature's logit effects: its decoder row, mapped into the residual stream (through W_O for
 * hook_z SAEs, W_out for mlp.hook_post), times the unembedding W_U with the final norm's weight
 * folded in (as Neuronpedia computes them). Null, with the reason, for hook points that do not
 * write linearly to the residual stream. Computed in chunks of features, so [d_sae, d_vocab] is
 * never held whole.
 */
export function logitEffects(model: HookedTransformer, sae: Sae, n = 10): LogitEffects | { reason: string } {
  return decoderLogitEffects(model, sae.params.W_dec!, saeOutputPoint(sae), n);
}

/**
 * The logit effects of any decoder: `W_dec` [d, d_out] writing at hook point `out` (a head's
 * slice when `out.head` is set), as `logitEffects` computes them for an SAE. `label` names the
 * decoder in the path (e.g. 'sum_t W_dec[2->t]').
 */
export function decoderLogitEffects(
  model: HookedTransformer,
  W_dec: Tensor,
  out: { name: string; head: number | null },
  n = 10,
  label = 'W_dec',
): LogitEffects | { reason: string } {
  const route = toResidual(model, out, label);
  if ('reason' in route) return route;
  const V = model.cfg.dVocab;
  const k = Math.min(n, V);
  let W_U = model.params.unembed.W_U; // [d_model, d_vocab]
  let path = `${route.path} @ W_U`;
  const w = model.params.ln_final.w;
  if (route.foldNorm && w && model.cfg.norm !== 'none') {
    const eff = model.cfg.normWeightOffset ? w.add(model.cfg.normWeightOffset) : w;
    W_U = W_U.mul(eff.unsqueeze(1));
    path = `${route.path} @ diag(ln_final.w) @ W_U`;
  }
  const d = W_dec.shape[0]!;
  const posIds = new Int32Array(d * k);
  const posValues = new Float32Array(d * k);
  const negIds = new Int32Array(d * k);
  const negValues = new Float32Array(d * k);
  const chunk = Math.max(1, Math.min(d, Math.floor((1 << 22) / V)));
  for (let s = 0; s < d; s += chunk) {
    const e = Math.min(d, s + chunk);
    const effects = route.map(W_dec.slice([{ start: s, end: e }])).matmul(W_U); // [c, V]
    const top = effects.topk(k, -1, true);
    const bottom = effects.topk(k, -1, false);
    posValues.set(top.values.cast('float32').dataSync() as Float32Array, s * k);
    negValues.set(bottom.values.cast('float32').dataSync() as Float32Array, s * k);
    posIds.set(top.indices.cast('int32').dataSync() as Int32Array, s * k);
    negIds.set(bottom.indices.cast('int32').dataSync() as Int32Array, s * k);
  }
  return { n: k, posIds, posValues, negIds, negValues, path };
}
