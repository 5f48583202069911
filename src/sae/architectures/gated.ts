/**
 * Gated SAE (Rajamanoharan et al. 2024, "Improving Dictionary Learning with Gated Sparse
 * Autoencoders"; SAELens 'gated'). Two paths share W_enc:
 *   gate:      pi_gate = saeIn W_enc + b_gate;                  active = (pi_gate > 0)
 *   magnitude: pi_mag  = saeIn (W_enc * exp(r_mag)) + b_mag;    acts = active * ReLU(pi_mag)
 * The gate decides which features fire, the magnitude path how strongly; the step in the gate
 * has no gradient, so training adds an L1 on ReLU(pi_gate) (weighted by the decoder row norms)
 * and an auxiliary loss: ReLU(pi_gate) alone, through the decoder, must reconstruct the input.
 * Parameters: W_enc, b_gate, r_mag, b_mag, W_dec, b_dec (no b_enc). Training schedules the L1
 * coefficient; nothing else is special about it.
 */
import type { Tensor } from '../../tensor/index.js';
import { zeros } from '../../tensor/index.js';
import {
  affineArchitecture,
  baseParamShapes,
  defineTraining,
  initBase,
  meanL0,
  mseLoss,
  reconstructionLoss,
  weightedL1,
} from '../common.js';
import { stopGradient } from '../ops.js';
import type { SaeArchitecture, SaeParams, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';

/** The gate's pre-activation pi_gate = saeIn W_enc + b_gate. [..., d_in] -> [..., d_sae]. */
export function gatePreActs(p: SaeParams, saeIn: Tensor): Tensor {
  return saeIn.matmul(p.W_enc!).add(p.b_gate!);
}

/** The 'gated' architecture: W_enc [d_in, d_sae], b_gate / r_mag / b_mag [d_sae], W_dec [d_sae, d_in], b_dec [d_in]. */
export const gated: SaeArchitecture = affineArchitecture({
  name: 'gated',
  description: 'Gated SAE: a gate path and a magnitude path sharing W_enc (r_mag rescales); L1 + auxiliary loss on the gate',
  paramShapes: (cfg) => ({ ...baseParamShapes(cfg, { bEnc: false }), b_gate: [cfg.d_sae], r_mag: [cfg.d_sae], b_mag: [cfg.d_sae] }),
  init: (cfg, options) => ({
    ...initBase(cfg, options, { bEnc: false }),
    b_gate: zeros([cfg.d_sae]),
    r_mag: zeros([cfg.d_sae]),
    b_mag: zeros([cfg.d_sae]),
  }),
  // hook_sae_acts_pre sees the magnitude path's pre-activation, as in SAELens.
  hiddenPre: (p, saeIn) => saeIn.matmul(p.W_enc!.mul(p.r_mag!.exp())).add(p.b_mag!),
  activate: (p, hiddenPre, saeIn) => gatePreActs(p, saeIn).gt(0).cast(hiddenPre.dtype).mul(hiddenPre.relu()),
  trainingLoss: (params, x, options = {}) => gatedLoss(params, x, options),
  training: defineTraining({ coefficient: { name: 'l1', term: 'l1_loss' } }),
});

/**
 * MSE + l1Coefficient * mean(sum ReLU(pi_gate) * ||W_dec row||) + the auxiliary reconstruction
 * loss ||ReLU(pi_gate) W_dec + b_dec - x||^2 (W_dec and b_dec detached there unless
 * `detachAuxDecoder: false`, as in the paper and current SAELens). Metrics: mse_loss, l1_loss,
 * auxiliary_reconstruction_loss, l0.
 */
export function gatedLoss(params: SaeParams, x: Tensor, options: SaeTrainingOptions = {}): SaeTrainingLoss {
  const { target, saeIn, acts, restore, mse } = reconstructionLoss(gated, params, x, options);
  const gateActs = gatePreActs(params, saeIn).relu();
  const l1 = weightedL1(gateActs, params.W_dec!, options.l1Coefficient ?? 1);
  const detach = options.detachAuxDecoder ?? true;
  const W_dec = detach ? stopGradient(params.W_dec!) : params.W_dec!;
  const b_dec = detach ? stopGradient(params.b_dec!) : params.b_dec!;
  const aux = mseLoss(restore(gateActs.matmul(W_dec).add(b_dec)), target);
  return {
    loss: mse.add(l1).add(aux),
    metrics: { mse_loss: mse, l1_loss: l1, auxiliary_reconstruction_loss: aux, l0: meanL0(acts) },
    featureActs: acts,
  };
}
