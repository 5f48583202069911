/**
 * The trainer's evaluations on held-out batches (SAELens's run_evals metric names): explained
 * variance (1 - the residual sum of squares over the total, about the held-out mean), MSE per
 * element, L0 and L1 of the feature activations, the ratio of output to input norms.
 */
import { jit, tensor, type Tensor } from '../../tensor/index.js';
import { decoderRowNorms, forwardParts } from '../common.js';
import { dOutOf, type SaeConfig } from '../config.js';
import type { SaeArchitecture, SaeParams } from '../types.js';
import type { ActivationBatch } from './activation-store.js';

/**
 * An evaluator of `arch` with the run's config `cfg` on held-out batches:
 * 1. the held-out mean of the target, once (float64 sums);
 * 2. per batch, one compiled pass summing squared errors, total squares about the mean, L0, L1
 *    (of the activations divided by the decoder norms when the config rescales by them) and norms;
 * 3. the sums turned into SAELens's metrics.
 */
export function makeEvaluator(
  arch: SaeArchitecture,
  cfg: SaeConfig,
): (p: SaeParams, batches: readonly ActivationBatch[]) => Record<string, number> {
  const run = jit((p: SaeParams, x: Tensor, target: Tensor | null, mean: Tensor) => {
    const { acts, out } = forwardParts(arch, p, x, cfg);
    const t = target ?? x;
    const rescaled = cfg.rescale_acts_by_decoder_norm ? acts.div(decoderRowNorms(p.W_dec!)) : acts;
    return {
      rss: out.sub(t).square().sum(),
      tss: t.sub(mean).square().sum(),
      l0: acts.ne(0).cast('float32').sum(),
      l1: rescaled.abs().sum(),
      normIn: t.square().sum(-1).sqrt().sum(),
      normOut: out.square().sum(-1).sqrt().sum(),
    };
  });
  let mean: Tensor | null = null;
  return (p, batches): Record<string, number> => {
    if (batches.length === 0) return {};
    if (!mean) {
      const d = dOutOf(cfg);
      const acc = new Float64Array(d);
      let n = 0;
      for (const b of batches) {
        const t = (b.target ?? b.x).dataSync() as Float32Array;
        for (let i = 0; i < t.length; i++) acc[i % d]! += t[i]!;
        n += t.length / d;
      }
      mean = tensor(
        Float32Array.from(acc, (v) => v / n),
        [d],
      );
    }
    const sums = { rss: 0, tss: 0, l0: 0, l1: 0, normIn: 0, normOut: 0 };
    let rows = 0;
    let elements = 0;
    for (const b of batches) {
      const r = run(p, b.x, b.target ?? null, mean) as Record<keyof typeof sums, Tensor>;
      for (const k of Object.keys(sums) as (keyof typeof sums)[]) sums[k] += r[k].item() as number;
      rows += b.x.shape[0]!;
      elements += (b.target ?? b.x).size;
    }
    return {
      'reconstruction_quality/explained_variance': 1 - sums.rss / Math.max(1e-30, sums.tss),
      'reconstruction_quality/mse': sums.rss / elements,
      'sparsity/l0': sums.l0 / rows,
      'sparsity/l1': sums.l1 / rows,
      'shrinkage/l2_norm_in': sums.normIn / rows,
      'shrinkage/l2_norm_out': sums.normOut / rows,
      'shrinkage/l2_ratio': sums.normOut / Math.max(1e-30, sums.normIn),
    };
  };
}
