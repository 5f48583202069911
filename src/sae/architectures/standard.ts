/**
 * The standard SAE (SAELens 'standard'): ReLU(x W_enc + b_enc) W_dec + b_dec, trained with the MSE
 * plus an L1 penalty on the feature activations weighted by the decoder row norms (SAELens 6's
 * `StandardTrainingSAE`: the penalty cannot be dodged by shrinking activations and growing rows,
 * so the decoder needs no norm constraint). Dead features can be revived with SAELens < 6's ghost
 * grads (`ghostGradsLoss`), which the transcoders built on it share.
 */
import { scalar, type Tensor } from '../../tensor/index.js';
import { affineArchitecture, defineTraining, lossConfig, meanL0, processInput, reconstructionLoss, weightedL1 } from '../common.js';
import { stopGradient } from '../ops.js';
import type { SaeArchitecture, SaeTrainingFacts, SaeTrainingLoss, SaeTrainingOptions, SaeParams } from '../types.js';

/**
 * The standard SAE's training facts: an L1 coefficient (SAELens's l1_coefficient, with its
 * warm-up); ghost grads on dead features when the run asks for them.
 */
export const standardTraining: SaeTrainingFacts = defineTraining({
  coefficient: { name: 'l1', term: 'l1_loss' },
  ghostGrads: true,
  deadFeatures: (arch, run) =>
    run.useGhostGrads ? { metric: 'ghost_grad_loss', loss: (params, x, options) => ghostGradsLoss(arch, params, x, options) } : null,
});

/** The 'standard' architecture: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]. */
export const standard: SaeArchitecture = affineArchitecture({
  name: 'standard',
  description: 'ReLU SAE; L1 penalty weighted by decoder row norms',
  activate: (_p, hiddenPre) => hiddenPre.relu(),
  trainingLoss: (params, x, options = {}) => standardTrainingLoss(params, x, options),
  training: standardTraining,
});

/**
 * MSE + l1Coefficient * mean over examples of sum_i acts_i * ||W_dec[i]||.
 * @param x [..., d_in]; metrics: mse_loss, l1_loss, l0
 */
export function standardTrainingLoss(
  params: SaeParams,
  x: Tensor,
  options: SaeTrainingOptions = {},
  arch: SaeArchitecture = standard,
): SaeTrainingLoss {
  const { acts, mse } = reconstructionLoss(arch, params, x, options);
  const lp = options.lpNorm ?? 1;
  if (lp !== 1) throw new Error(`${arch.name} trainingLoss: lpNorm ${lp} is not supported (only 1, SAELens's default)`);
  const l1 = weightedL1(acts, params.W_dec!, options.l1Coefficient ?? 1);
  return { loss: mse.add(l1), metrics: { mse_loss: mse, l1_loss: l1, l0: meanL0(acts) }, featureActs: acts };
}

/**
 * `arch`'s loss plus SAELens < 6's ghost-grads term on the dead features of `options.deadMask`:
 * the dead features' exp(pre-activations), through the decoder and rescaled to half the residual's
 * norm, fit the residual; the term is scaled to the size of the MSE. Zero when no feature is dead
 * (and without a dead mask). Metrics: the loss's, plus ghost_grad_loss.
 */
export function ghostGradsLoss(arch: SaeArchitecture, params: SaeParams, x: Tensor, options: SaeTrainingOptions): SaeTrainingLoss {
  const base = arch.trainingLoss(params, x, options);
  const dead = options.deadMask;
  if (!dead) return { ...base, metrics: { ...base.metrics, ghost_grad_loss: scalar(0) } };
  const cfg = lossConfig(arch, params, options);
  const target = options.target ?? x;
  const { saeIn } = processInput(x, params, cfg, arch.transcoder);
  const hiddenPre = arch.hiddenPre(params, saeIn, cfg);
  const acts = base.featureActs;
  let out = acts.matmul(params.W_dec!).add(params.b_dec!);
  if (params.W_skip) out = out.add(x.matmul(params.W_skip.transpose()));
  const residual = stopGradient(target.sub(out));
  const ghostActs = hiddenPre.where(dead, -1e4).exp();
  let ghostOut = ghostActs.matmul(params.W_dec!);
  const scale = stopGradient(residual.square().sum(-1).sqrt().div(ghostOut.square().sum(-1).sqrt().mul(2).add(1e-6)));
  ghostOut = ghostOut.mul(scale.unsqueeze(-1));
  const perItemGhost = ghostOut.sub(residual).square();
  const perItemMse = stopGradient(out.sub(target).square());
  const anyDead = dead.cast('float32').sum().gt(0).cast('float32');
  const ghostLoss = perItemGhost
    .mul(stopGradient(perItemMse.div(perItemGhost.add(1e-6))))
    .mean()
    .mul(anyDead);
  return { loss: base.loss.add(ghostLoss), metrics: { ...base.metrics, ghost_grad_loss: ghostLoss }, featureActs: acts };
}
