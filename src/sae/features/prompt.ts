/**
 * Features on one prompt (what the workbench's "what fires on my prompt" view and a feature
 * page's steering box show): every feature's activation at every token of a prompt, each token's
 * strongest features, and generation with one feature added.
 */
import { padRows } from '../../analysis/buckets.js';
import type { HookedTransformer } from '../../model/hooked.js';
import { attachSae, addToFeature } from '../attach.js';
import { runSaeOnBatch } from '../evals.js';
import type { Sae } from '../sae.js';

/** One feature's activation at one token. */
export interface TokenFeature {
  feature: number;
  act: number;
}

/**
 * Every feature's activation at every token of `tokens`: [s, d_sae] row-major (s =
 * tokens.length). `paddedLength` (>= s) runs the prompt right-padded to that length, so prompts of
 * many lengths share compiled sessions; the model is causal, so the real positions see only the
 * prompt and their activations are the unpadded run's.
 */
export function promptFeatureActs(
  model: HookedTransformer,
  sae: Sae,
  tokens: readonly number[],
  paddedLength = tokens.length,
): Float32Array {
  const s = tokens.length;
  if (s === 0) throw new Error('promptFeatureActs: the prompt is empty');
  if (paddedLength < s) throw new Error(`promptFeatureActs: paddedLength ${paddedLength} is shorter than the prompt (${s} tokens)`);
  const { tokens: padded } = padRows([tokens], paddedLength);
  const { acts } = runSaeOnBatch(model, sae, padded); // [paddedLength, d_sae]
  const all = acts.cast('float32').dataSync() as Float32Array;
  return all.slice(0, s * sae.dSae);
}

/**
 * Per token, its `k` strongest features that fire there (activation > 0), strongest first (ties:
 * the lower index first). `acts` is [s, d_sae] row-major.
 */
export function topFeaturesPerToken(acts: Float32Array, dSae: number, k: number): TokenFeature[][] {
  if (acts.length % dSae !== 0) throw new Error(`topFeaturesPerToken: ${acts.length} activations are not rows of ${dSae}`);
  const s = acts.length / dSae;
  const out: TokenFeature[][] = [];
  for (let p = 0; p < s; p++) {
    const row = acts.subarray(p * dSae, (p + 1) * dSae);
    // A small sorted list of the best k so far: O(d_sae * k), k is small.
    const best: TokenFeature[] = [];
    for (let f = 0; f < dSae; f++) {
      const a = row[f]!;
      if (!(a > 0)) continue;
      if (best.length === k && a <= best[k - 1]!.act) continue;
      let i = best.length;
      while (i > 0 && best[i - 1]!.act < a) i--;
      best.splice(i, 0, { feature: f, act: a });
      if (best.length > k) best.pop();
    }
    out.push(best);
  }
  return out;
}

/** Options of `steerWithFeature`. */
export interface FeatureSteerOptions {
  /** Added to the feature's activation at every position (default 1). */
  scale?: number;
  /** Default 20. */
  maxNewTokens?: number;
  /** 0 (default): greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Seed of the sampling generator (default 0); both generations use it. */
  seed?: number;
  /** Run the prompt left-padded to this length (default its own), for shared compiled sessions. */
  paddedLength?: number;
  /** The KV cache's length (default paddedLength + maxNewTokens). */
  cacheLength?: number;
}

/**
 * The prompt continued by the model as it is (unsteered) and with `scale` added to feature
 * `feature`'s activation at every position (steered): the SAE is spliced in with its error term
 * (`attachSae(..., { useErrorTerm: true })`), so the only change to the model is `scale` times
 * the feature's decoder row at the SAE's output hook point. Both generations use the same
 * sampling settings and seed; with scale 0 they agree (up to float rounding).
 */
export function steerWithFeature(
  model: HookedTransformer,
  sae: Sae,
  feature: number,
  prompt: readonly number[],
  options: FeatureSteerOptions = {},
): { unsteered: number[]; steered: number[] } {
  if (!(Number.isInteger(feature) && feature >= 0 && feature < sae.dSae))
    throw new RangeError(`feature ${feature} is out of range (the SAE has features 0..${sae.dSae - 1})`);
  const maxNewTokens = options.maxNewTokens ?? 20;
  const S = options.paddedLength ?? prompt.length;
  const { tokens, attentionMask } = padRows([prompt], S, 1, { side: 'left' });
  const generation = {
    maxNewTokens,
    temperature: options.temperature ?? 0,
    seed: options.seed ?? 0,
    ...(options.topK !== undefined ? { topK: options.topK } : {}),
    ...(options.topP !== undefined ? { topP: options.topP } : {}),
    attentionMask,
    cacheLength: options.cacheLength ?? S + maxNewTokens,
  };
  const unsteered = model.generate(tokens, generation).newTokens[0]!;
  const hooks = attachSae(model, sae, {
    useErrorTerm: true,
    featureHooks: [['hook_sae_acts_post', addToFeature(feature, options.scale ?? 1)]],
  });
  const steered = model.generate(tokens, { ...generation, hooks }).newTokens[0]!;
  return { unsteered, steered };
}
