/**
 * JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"; Gemma Scope; SAELens 'jumprelu'): a
 * feature fires only when its pre-activation exceeds its own learned threshold:
 * acts = ReLU(pre) * (pre > threshold).
 *
 * Training (SAELens's JumpReLUTrainingSAE): the threshold is a parameter (used through ReLU so it
 * stays >= 0); the step function has no useful gradient, so the straight-through estimator gives
 * the threshold a pseudo-derivative through a rectangle kernel of width `bandwidth`
 * (`jumpReluSte`, `stepSte` in ops.ts). The sparsity penalty is an L0: the number of active
 * features ('step' mode), or Anthropic's tanh(c * acts * ||W_dec row||) ('tanh' mode). The
 * threshold is learned by the optimizer with the other parameters (no running estimate); dead
 * features get Anthropic's pre-activation loss when the run asks for it (`jumpreluTraining`).
 */
import { full, type Tensor } from '../../tensor/index.js';
import {
  affineArchitecture,
  baseParamShapes,
  deadMaskOf,
  decoderRowNorms,
  defineTraining,
  initBase,
  meanL0,
  reconstructionLoss,
  weightedL1,
} from '../common.js';
import { jumpReluSte, stepSte } from '../ops.js';
import type { SaeArchitecture, SaeParams, SaeTrainingFacts, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';

/** Inference JumpReLU: ReLU(pre) * (pre > ReLU(threshold)). [..., d_sae] -> [..., d_sae]. */
export function jumpRelu(hiddenPre: Tensor, threshold: Tensor): Tensor {
  return hiddenPre.relu().mul(hiddenPre.gt(threshold.relu()).cast(hiddenPre.dtype));
}

/**
 * JumpReLU's training facts: an L0 coefficient (SAELens's l0_coefficient, with its warm-up); the
 * pre-activation loss on dead features when the loss options give preActLossCoefficient.
 */
export const jumpreluTraining: SaeTrainingFacts = defineTraining({
  coefficient: { name: 'l0', term: 'l0_loss' },
  deadFeatures: (_arch, run) => (run.lossOptions.preActLossCoefficient !== undefined ? { metric: 'pre_act_loss' } : null),
});

/** The 'jumprelu' architecture: standard parameters plus threshold [d_sae]. */
export const jumprelu: SaeArchitecture = affineArchitecture({
  name: 'jumprelu',
  description: 'JumpReLU SAE: a learned threshold per feature; L0 penalty via straight-through estimators',
  paramShapes: (cfg) => ({ ...baseParamShapes(cfg), threshold: [cfg.d_sae] }),
  init: (cfg, options = {}) => ({ ...initBase(cfg, options), threshold: full([cfg.d_sae], options.initThreshold ?? 0.01) }),
  activate: (p, hiddenPre) => jumpRelu(hiddenPre, p.threshold!),
  trainingLoss: (params, x, options = {}) => jumpReluLoss(params, x, options),
  training: jumpreluTraining,
});

/**
 * MSE + l0Coefficient * mean L0 (+ the pre-activation loss on dead features when
 * `preActLossCoefficient` and `deadMask` are given). Defaults: l0Coefficient 1, bandwidth 0.05,
 * sparsityLossMode 'step', tanhScale 4. Metrics: mse_loss, l0_loss, pre_act_loss (when on), l0.
 */
export function jumpReluLoss(
  params: SaeParams,
  x: Tensor,
  options: SaeTrainingOptions = {},
  arch: SaeArchitecture = jumprelu,
): SaeTrainingLoss {
  const bandwidth = options.bandwidth ?? 0.05;
  if (!(bandwidth > 0)) throw new Error(`${arch.name} trainingLoss: bandwidth must be positive, got ${bandwidth}`);
  // The training activation replaces `activate` with the straight-through version.
  const ste: SaeArchitecture = { ...arch, activate: (p, hiddenPre) => jumpReluSte(hiddenPre, p.threshold!.relu(), bandwidth) };
  const { cfg, hiddenPre, acts, mse } = reconstructionLoss(arch, params, x, options, { forward: ste });
  const threshold = params.threshold!.relu();
  const coefficient = options.l0Coefficient ?? 1;
  const mode = options.sparsityLossMode ?? 'step';
  let l0Loss: Tensor;
  if (mode === 'step') l0Loss = stepSte(hiddenPre, threshold, bandwidth).sum(-1).mean().mul(coefficient);
  else if (mode === 'tanh')
    l0Loss = acts
      .mul(decoderRowNorms(params.W_dec!))
      .mul(options.tanhScale ?? 4)
      .tanh()
      .sum(-1)
      .mean()
      .mul(coefficient);
  else throw new Error(`${arch.name} trainingLoss: sparsityLossMode must be 'step' or 'tanh', got '${String(mode)}'`);
  const metrics: Record<string, Tensor> = { mse_loss: mse, l0_loss: l0Loss };
  let loss = mse.add(l0Loss);
  if (options.preActLossCoefficient !== undefined && options.deadMask) {
    // Anthropic's pre-activation loss, on dead features only (SAELens's calculate_pre_act_loss).
    const dead = deadMaskOf(options.deadMask, cfg.d_sae, `${arch.name} trainingLoss`).cast(x.dtype);
    const preAct = weightedL1(threshold.sub(hiddenPre).relu().mul(dead), params.W_dec!, options.preActLossCoefficient);
    metrics.pre_act_loss = preAct;
    loss = loss.add(preAct);
  }
  metrics.l0 = meanL0(acts);
  return { loss, metrics, featureActs: acts };
}
