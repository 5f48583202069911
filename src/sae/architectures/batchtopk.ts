/**
 * BatchTopK SAE (Bussmann et al. 2024; SAELens 'batchtopk'): during training the k * batch
 * largest (ReLU'd) pre-activations across the whole batch survive, so examples share the budget.
 * Meanwhile a single threshold is estimated as an exponential moving average of the smallest
 * surviving activation (`updateTopkThreshold`, from the `min_positive_act` metric); for
 * inference the SAE becomes a JumpReLU SAE with that threshold for every feature
 * (`toInferenceSae`), as SAELens saves it. Its training facts (`batchtopkTraining`) are the TopK
 * family's plus that running threshold and that inference form.
 */
import { Tensor, full, scalar } from '../../tensor/index.js';
import type { SaeConfig } from '../config.js';
import { batchTopkActivation, defineTraining, foldDecoderNormParams } from '../common.js';
import type { SaeArchitecture, SaeParams, SaeRunningThreshold, SaeTrainingFacts, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';
import { kOf, rankedPreActs, topk, topkFamilyLoss, topkTraining } from './topk.js';

/**
 * SAELens's running threshold, inside the compiled training step: the tensor form of
 * `updateTopkThreshold`, fed by (and removing) the loss's `min_positive_act` metric.
 */
export const topkThreshold: SaeRunningThreshold = {
  update(threshold, metrics, lr) {
    const m = metrics.min_positive_act;
    if (!m) return threshold;
    delete metrics.min_positive_act;
    return threshold
      .mul(1 - lr)
      .add(m.mul(lr))
      .where(m.lt(Infinity), threshold);
  },
};

/**
 * The JumpReLU form a BatchTopK (or Matryoshka BatchTopK) SAE is used and saved as (SAELens's
 * save_inference_model): the decoder norms folded in when it rescaled by them, and every feature's
 * threshold the running estimate; k, the matryoshka widths and the rescaling flag go.
 */
export function batchTopkInferenceForm(
  cfg: SaeConfig,
  params: SaeParams,
  state: { topkThreshold?: number },
): { cfg: SaeConfig; params: SaeParams } {
  const t = state.topkThreshold;
  if (typeof t !== 'number' || !Number.isFinite(t))
    throw new Error(`toInferenceSae: a ${cfg.architecture} SAE needs topkThreshold (the running estimate from updateTopkThreshold)`);
  const folded = cfg.rescale_acts_by_decoder_norm ? foldDecoderNormParams(params) : params;
  const out: SaeConfig = { ...cfg, architecture: 'jumprelu' };
  delete out.k;
  delete out.matryoshka_widths;
  delete out.rescale_acts_by_decoder_norm;
  return { cfg: out, params: { ...folded, threshold: full([cfg.d_sae], t) } };
}

/** BatchTopK's training facts: the TopK family's, with the running threshold and the JumpReLU inference form. */
export const batchtopkTraining: SaeTrainingFacts = defineTraining({
  ...topkTraining,
  threshold: topkThreshold,
  inferenceForm: batchTopkInferenceForm,
});

/** The 'batchtopk' architecture (cfg.k: average active features per example): topk's parameters, encoder and decoder. */
export const batchtopk: SaeArchitecture = {
  ...topk,
  name: 'batchtopk',
  description: 'BatchTopK SAE: the k * batch largest activations across the batch; saved as jumprelu for inference',
  batchDependent: true,
  activate: (p, hiddenPre, _saeIn, cfg) => batchTopkActivation(rankedPreActs(p, hiddenPre, cfg), kOf(cfg, 'batchtopk')),
  trainingLoss: (params, x, options = {}) => batchTopkLoss(batchtopk, params, x, options),
  training: batchtopkTraining,
};

/**
 * The TopK loss (MSE + AuxK) with the BatchTopK activation, plus the metric `min_positive_act`:
 * the smallest non-zero activation in the batch (+Infinity when none), which feeds
 * `updateTopkThreshold`.
 */
export function batchTopkLoss(arch: SaeArchitecture, params: SaeParams, x: Tensor, options: SaeTrainingOptions = {}): SaeTrainingLoss {
  const r = topkFamilyLoss(arch, params, x, options);
  r.metrics.min_positive_act = minPositive(r.featureActs);
  return r;
}

/** The smallest positive value of `acts` (scalar; +Infinity when none is positive). */
export function minPositive(acts: Tensor): Tensor {
  return acts.where(acts.gt(0), scalar(Infinity, acts.dtype)).min();
}

/**
 * SAELens's threshold update: threshold <- (1 - lr) * threshold + lr * minPositiveAct, skipped
 * when the batch had no positive activation. Start from 0; lr is SAELens's `topk_threshold_lr`
 * (default 0.01).
 */
export function updateTopkThreshold(threshold: number, minPositiveAct: number | Tensor, lr = 0.01): number {
  const m = minPositiveAct instanceof Tensor ? minPositiveAct.item() : minPositiveAct;
  return Number.isFinite(m) ? (1 - lr) * threshold + lr * m : threshold;
}
