/**
 * Matryoshka BatchTopK SAE (Bussmann et al. 2025, "Learning Multi-Level Features with Matryoshka
 * SAEs"; SAELens 'matryoshka_batchtopk'): a BatchTopK SAE whose nested prefixes of the dictionary
 * (features [0, w) for each width w in `matryoshka_widths`) must each reconstruct the input on
 * their own; the loss adds each inner prefix's MSE to the full SAE's. Early features learn general
 * concepts, later ones refine them, which curbs feature absorption. Inference and training facts
 * are BatchTopK's (saved as jumprelu via `toInferenceSae`), plus the widths a new SAE needs.
 */
import type { Tensor } from '../../tensor/index.js';
import { auxKLoss, deadMaskOf, decoderRowNorms, meanL0, mseLoss, reconstructionLoss, zeroLoss } from '../common.js';
import type { SaeArchitecture, SaeParams, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';
import { batchtopk, batchtopkTraining, minPositive } from './batchtopk.js';
import { TOPK_DEFAULTS, rankedPreActs } from './topk.js';

/** The 'matryoshka_batchtopk' architecture (cfg.k, cfg.matryoshka_widths); parameters as topk's. */
export const matryoshkaBatchtopk: SaeArchitecture = {
  ...batchtopk,
  name: 'matryoshka_batchtopk',
  description: 'Matryoshka BatchTopK SAE: every nested prefix of the dictionary reconstructs; saved as jumprelu for inference',
  trainingLoss: (params, x, options = {}) => matryoshkaLoss(params, x, options),
  training: {
    ...batchtopkTraining,
    suggestedConfig: (dSae) => ({ matryoshka_widths: [Math.max(1, Math.floor(dSae / 16)), Math.max(2, Math.floor(dSae / 4)), dSae] }),
  },
};

/**
 * The widths of the nested levels: strictly increasing positive integers, with d_sae appended when
 * the list does not end there (as SAELens does). Throws naming the problem.
 */
export function matryoshkaWidthsOf(widths: readonly number[] | undefined, dSae: number): number[] {
  if (!widths || widths.length === 0) throw new Error('matryoshka_batchtopk: matryoshkaWidths must not be empty');
  const w = [...widths];
  if (w[w.length - 1] !== dSae) w.push(dSae);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isInteger(w[i]) || w[i]! < 1 || w[i]! > dSae)
      throw new Error(`matryoshka_batchtopk: width ${w[i]} must be an integer in 1..d_sae (${dSae})`);
    if (i > 0 && w[i]! <= w[i - 1]!) throw new Error(`matryoshka_batchtopk: widths must be strictly increasing, got [${w.join(', ')}]`);
  }
  return w;
}

/** Features [start, end) of the last axis. */
function features(t: Tensor, start: number, end: number): Tensor {
  return t.slice([...Array<null>(t.rank - 1).fill(null), { start, end }]);
}

/**
 * MSE of the full SAE + the MSE of each inner prefix + the AuxK loss (per level with
 * `useMatryoshkaAuxLoss`, else over the whole dictionary). Defaults as BatchTopK's (k 100,
 * rescaleActsByDecoderNorm true). Metrics: mse_loss, inner_mse_loss_<width> per inner level,
 * auxiliary_reconstruction_loss, l0, min_positive_act.
 * 1. the full forward pass (BatchTopK activation over the whole dictionary) and its MSE;
 * 2. cumulative reconstructions, level by level (features [w_{i-1}, w_i) added to b_dec), and the
 *    MSE of each inner one;
 * 3. with dead features, the AuxK loss: each level's dead features fit that level's residual
 *    (useMatryoshkaAuxLoss), or all dead features the full residual.
 */
export function matryoshkaLoss(params: SaeParams, x: Tensor, options: SaeTrainingOptions = {}): SaeTrainingLoss {
  const arch = matryoshkaBatchtopk;
  const { cfg, target, hiddenPre, acts, out, restore, mse } = reconstructionLoss(arch, params, x, options, { defaults: TOPK_DEFAULTS });
  const widths = matryoshkaWidthsOf(cfg.matryoshka_widths, cfg.d_sae);
  const rescale = !!cfg.rescale_acts_by_decoder_norm;
  const W_dec = params.W_dec!;
  const scaledActs = rescale ? acts.div(decoderRowNorms(W_dec)) : acts;

  const metrics: Record<string, Tensor> = { mse_loss: mse };
  let loss = mse;
  // Cumulative reconstructions: level i adds features [widths[i-1], widths[i]).
  const partial: Tensor[] = [];
  let decoded: Tensor = params.b_dec!;
  let prev = 0;
  for (const w of widths) {
    decoded = features(scaledActs, prev, w)
      .matmul(W_dec.slice([{ start: prev, end: w }]))
      .add(decoded);
    partial.push(restore(decoded));
    prev = w;
  }
  widths.slice(0, -1).forEach((w, i) => {
    const inner = mseLoss(partial[i]!, target);
    metrics[`inner_mse_loss_${w}`] = inner;
    loss = loss.add(inner);
  });

  let aux = zeroLoss();
  if (options.deadMask) {
    const dead = deadMaskOf(options.deadMask, cfg.d_sae, 'matryoshka_batchtopk trainingLoss');
    const ranked = rankedPreActs(params, hiddenPre, cfg);
    if (options.useMatryoshkaAuxLoss) {
      prev = 0;
      widths.forEach((w, i) => {
        const level = auxKLoss(
          features(ranked, prev, w),
          dead.slice([{ start: prev, end: w }]),
          W_dec.slice([{ start: prev, end: w }]),
          target.sub(partial[i]!),
          cfg.d_in,
          rescale,
        );
        aux = aux.add(level);
        prev = w;
      });
    } else aux = auxKLoss(ranked, dead, W_dec, target.sub(out), cfg.d_in, rescale);
    aux = aux.mul(options.auxLossCoefficient ?? 1);
  }
  metrics.auxiliary_reconstruction_loss = aux;
  metrics.l0 = meanL0(acts);
  metrics.min_positive_act = minPositive(acts);
  return { loss: loss.add(aux), metrics, featureActs: acts };
}
