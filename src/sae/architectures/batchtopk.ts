/**
 * BatchTopK SAE (Bussmann et al. 2024; SAELens 'batchtopk'): during training the k * batch
 * largest (ReLU'd) pre-activations across the whole batch survive, so examples share the budget.
 * Meanwhile a single threshold is estimated as an exponential moving average of the smallest
 * surviving activation (`updateTopkThreshold`, from the `min_positive_act` metric); for
 * inference the SAE becomes a JumpReLU SAE with that threshold for every feature
 * (`toInferenceSae`), as SAELens saves it.
 */
import { Tensor, scalar } from '../../tensor/index.js';
import { baseParamShapes, batchTopkActivation, initBase } from '../common.js';
import type { SaeArchitecture, SaeParams, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';
import { kOf, rankedPreActs, topkDecode, topkFamilyLoss } from './topk.js';

/** The 'batchtopk' architecture (cfg.k: average active features per example); parameters as topk's. */
export const batchtopk: SaeArchitecture = {
  name: 'batchtopk',
  description: 'BatchTopK SAE: the k * batch largest activations across the batch; saved as jumprelu for inference',
  transcoder: false,
  batchDependent: true,
  paramShapes: (cfg) => baseParamShapes(cfg),
  init: (cfg, options) => initBase(cfg, options),
  hiddenPre: (p, saeIn) => saeIn.matmul(p.W_enc!).add(p.b_enc!),
  activate: (p, hiddenPre, _saeIn, cfg) => batchTopkActivation(rankedPreActs(p, hiddenPre, cfg), kOf(cfg, 'batchtopk')),
  decode: topkDecode,
  trainingLoss: (params, x, options = {}) => batchTopkLoss(batchtopk, params, x, options),
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
