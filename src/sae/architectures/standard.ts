/**
 * The standard SAE (SAELens 'standard'): ReLU(x W_enc + b_enc) W_dec + b_dec, trained with the MSE
 * plus an L1 penalty on the feature activations weighted by the decoder row norms (SAELens 6's
 * `StandardTrainingSAE`: the penalty cannot be dodged by shrinking activations and growing rows,
 * so the decoder needs no norm constraint).
 */
import type { Tensor } from '../../tensor/index.js';
import { baseParamShapes, decoderRowNorms, forwardParts, initBase, lossConfig, meanL0, mseLoss } from '../common.js';
import type { SaeArchitecture, SaeTrainingLoss, SaeTrainingOptions, SaeParams } from '../types.js';

/** The 'standard' architecture: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]. */
export const standard: SaeArchitecture = {
  name: 'standard',
  description: 'ReLU SAE; L1 penalty weighted by decoder row norms',
  transcoder: false,
  batchDependent: false,
  paramShapes: (cfg) => baseParamShapes(cfg),
  init: (cfg, options) => initBase(cfg, options),
  hiddenPre: (p, saeIn) => saeIn.matmul(p.W_enc!).add(p.b_enc!),
  activate: (_p, hiddenPre) => hiddenPre.relu(),
  decode: (p, acts) => acts.matmul(p.W_dec!).add(p.b_dec!),
  trainingLoss: (params, x, options = {}) => standardTrainingLoss(params, x, options),
};

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
  const cfg = lossConfig(arch, params, options);
  const lp = options.lpNorm ?? 1;
  if (lp !== 1) throw new Error(`${arch.name} trainingLoss: lpNorm ${lp} is not supported (only 1, SAELens's default)`);
  const { acts, out } = forwardParts(arch, params, x, cfg);
  const mse = mseLoss(out, options.target ?? x);
  const l1 = acts
    .mul(decoderRowNorms(params.W_dec!))
    .sum(-1)
    .mean()
    .mul(options.l1Coefficient ?? 1);
  return { loss: mse.add(l1), metrics: { mse_loss: mse, l1_loss: l1, l0: meanL0(acts) }, featureActs: acts };
}
