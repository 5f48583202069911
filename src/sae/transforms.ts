/**
 * Weight transformations that keep (or deliberately fix) what an SAE computes, as SAELens does
 * them: folding the decoder norms into the encoder, folding the input scaling factor, turning a
 * BatchTopK SAE into the JumpReLU SAE it is saved as, unit-norm decoder constraints, and the
 * statistics initialisation and evaluation need (norm scaling factor, geometric median, log
 * feature density).
 */
import { Tensor, tensor } from '../tensor/index.js';
import { decoderRowNorms, foldDecoderNormParams, trainingFacts } from './common.js';
import { Sae } from './sae.js';
import type { SaeParams } from './types.js';

/**
 * SAELens's fold_W_dec_norm: divides each decoder row by its norm and multiplies the matching
 * encoder column (and b_enc, threshold, b_gate, b_mag) by it, so every decoder row has unit norm
 * and the reconstruction is unchanged while the activations now measure the feature's
 * contribution in the output's units. For architectures that select the top k features only when
 * `rescale_acts_by_decoder_norm` (otherwise the top-k choice would change).
 */
export function foldDecoderNorm(sae: Sae): Sae {
  const arch = sae.cfg.architecture;
  if (trainingFacts(sae.architecture).selectsTopK && !sae.cfg.rescale_acts_by_decoder_norm)
    throw new Error(`foldDecoderNorm: folding would change which features a ${arch} SAE picks (rescale_acts_by_decoder_norm is off)`);
  return sae.withParams(foldDecoderNormParams(sae.params));
}

/**
 * SAELens's fold_activation_norm_scaling_factor: an SAE trained on inputs multiplied by `factor`
 * becomes one that takes raw inputs (W_enc * factor, W_dec / factor, b_dec / factor), and its
 * config's normalize_activations becomes 'none'. Without `factor`, the config's
 * norm_scaling_factor is used.
 */
export function foldActivationNormScalingFactor(sae: Sae, factor?: number): Sae {
  const s = factor ?? sae.cfg.norm_scaling_factor;
  if (typeof s !== 'number' || !(s > 0)) throw new Error(`foldActivationNormScalingFactor: no positive scaling factor (got ${String(s)})`);
  const p = sae.params;
  const params: SaeParams = { ...p, W_enc: p.W_enc!.mul(s), W_dec: p.W_dec!.div(s), b_dec: p.b_dec!.div(s) };
  return new Sae({ ...sae.cfg, normalize_activations: 'none', norm_scaling_factor: null }, params, {
    sparsity: sae.sparsity,
    extraTensors: { ...sae.extraTensors },
  });
}

/**
 * The factor that scales activations to an average norm of sqrt(d_in) (SAELens's
 * estimate_norm_scaling_factor for 'expected_average_only_in': sqrt(d_in) / mean ||x||).
 * @param acts a sample of activations [n, d_in] (any leading shape)
 */
export function estimateNormScalingFactor(acts: Tensor): number {
  const d = acts.shape[acts.rank - 1]!;
  const meanNorm = acts.square().sum(-1).sqrt().mean().item();
  if (!(meanNorm > 0)) throw new Error('estimateNormScalingFactor: the activations have zero norm');
  return Math.sqrt(d) / meanNorm;
}

/**
 * The SAE as it is used and saved after training (SAELens's save_inference_model), as its
 * architecture's `training.inferenceForm` makes it: a BatchTopK (or Matryoshka BatchTopK) SAE
 * becomes the JumpReLU SAE with every feature's threshold the one estimated during training
 * (`topkThreshold`, from `updateTopkThreshold`), its decoder norms folded in when it rescaled by
 * them; a TopK SAE that rescaled by decoder norms gets its norms folded. Other SAEs come back
 * unchanged.
 */
export function toInferenceSae(sae: Sae, options: { topkThreshold?: number } = {}): Sae {
  const { cfg, params } = trainingFacts(sae.architecture).inferenceForm(sae.cfg, sae.params, options);
  if (cfg === sae.cfg && params === sae.params) return sae;
  return new Sae(cfg, params, { sparsity: sae.sparsity, extraTensors: { ...sae.extraTensors } });
}

/** W_dec with unit-norm rows (the decoder constraint of the original SAE recipes): [d_sae, d_out] -> same. */
export function normalizeDecoderRows(W_dec: Tensor): Tensor {
  return W_dec.div(decoderRowNorms(W_dec).maximum(1e-8).unsqueeze(1));
}

/**
 * Removes from a W_dec gradient its component along each (unit) decoder row, so a step keeps the
 * rows' norms to first order (SAELens < 6's remove_gradient_parallel_to_decoder_directions).
 * @param gradWDec [d_sae, d_out]
 * @param W_dec [d_sae, d_out] with unit rows
 */
export function removeParallelGradient(gradWDec: Tensor, W_dec: Tensor): Tensor {
  const parallel = gradWDec.mul(W_dec).sum(-1, true); // [d_sae, 1]
  return gradWDec.sub(parallel.mul(W_dec));
}

/**
 * The geometric median of points (Weiszfeld's algorithm, as SAELens's compute_geometric_median),
 * a robust initial b_dec. [n, d] -> [d].
 */
export function geometricMedian(points: Tensor, options: { maxIter?: number; eps?: number; ftol?: number } = {}): Tensor {
  if (points.rank !== 2) throw new Error(`geometricMedian: expected points [n, d], got [${points.shape}]`);
  const [n, d] = points.shape as [number, number];
  const x = Float64Array.from(points.cast('float32').dataSync() as Float32Array);
  const eps = options.eps ?? 1e-6;
  const ftol = options.ftol ?? 1e-20;
  const median = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) median[j]! += x[i * d + j]! / n;
  const objective = (m: Float64Array, dist: Float64Array): number => {
    let total = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[i * d + j]! - m[j]!) ** 2;
      dist[i] = Math.sqrt(s);
      total += dist[i]!;
    }
    return total / n;
  };
  const dist = new Float64Array(n);
  let prev = objective(median, dist);
  for (let it = 0; it < (options.maxIter ?? 100); it++) {
    const next = new Float64Array(d);
    let wsum = 0;
    for (let i = 0; i < n; i++) {
      const w = 1 / Math.max(eps, dist[i]!);
      wsum += w;
      for (let j = 0; j < d; j++) next[j]! += w * x[i * d + j]!;
    }
    for (let j = 0; j < d; j++) median[j] = next[j]! / wsum;
    const obj = objective(median, dist);
    if (Math.abs(prev - obj) <= ftol * obj) break;
    prev = obj;
  }
  return tensor(Float32Array.from(median), [d]);
}

/**
 * log10 of each feature's firing density (SAELens's sparsity.safetensors `sparsity`), from
 * feature activations [n, d_sae] (any leading shape); features that never fire get log10(1e-10).
 */
export function logFeatureDensity(featureActs: Tensor): Tensor {
  const d = featureActs.shape[featureActs.rank - 1]!;
  const fired = featureActs.reshape([-1, d]).gt(0).cast('float32').mean(0);
  return fired.add(1e-10).log().div(Math.LN10);
}
