/**
 * Transcoders (Dunefsky et al. 2024; SAELens 'transcoder', 'skip_transcoder',
 * 'jumprelu_transcoder', 'jumprelu_skip_transcoder'): the encoder reads one hook point (e.g.
 * `blocks.L.ln2.hook_normalized`) and the decoder writes another (e.g. `blocks.L.hook_mlp_out`),
 * so the sparse features stand in for a computation (an MLP) rather than an activation.
 * cfg: d_out, hook_name_out; W_dec [d_sae, d_out], b_dec [d_out]; b_dec is never subtracted from
 * the input. Skip transcoders add a linear path x W_skip^T with W_skip [d_out, d_in] (SAELens's
 * layout; initialised to zeros). Training reconstructs `options.target` (the output activation);
 * a transcoder's training facts are its base's (L1 and ghost grads on the ReLU ones, L0 and the
 * pre-activation loss on the JumpReLU ones).
 */
import type { Tensor } from '../../tensor/index.js';
import { zeros } from '../../tensor/index.js';
import { dOutOf } from '../config.js';
import type { SaeArchitecture, SaeParams, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';
import { jumprelu, jumpReluLoss } from './jumprelu.js';
import { standard, standardTrainingLoss } from './standard.js';

/** A loss written for any architecture variant (the variant decides transcoder handling). */
export type ArchitectureLoss = (params: SaeParams, x: Tensor, options: SaeTrainingOptions, arch: SaeArchitecture) => SaeTrainingLoss;

/**
 * A transcoder built on `base`'s encoder and activation: same parameters with W_dec/b_dec of width
 * d_out, plus W_skip [d_out, d_in] when `skip`. `loss` is the base's loss function.
 */
export function makeTranscoder(name: string, base: SaeArchitecture, loss: ArchitectureLoss, skip: boolean): SaeArchitecture {
  const arch: SaeArchitecture = {
    ...base,
    name,
    description: `${skip ? 'skip ' : ''}transcoder with ${base.name} features: reads hook_name, writes hook_name_out${skip ? ' (plus x W_skip^T)' : ''}`,
    transcoder: true,
    paramShapes: (cfg) => ({ ...base.paramShapes(cfg), ...(skip ? { W_skip: [dOutOf(cfg), cfg.d_in] } : {}) }),
    // The input and output spaces differ: W_enc is drawn on its own, not as W_dec^T.
    init: (cfg, options) => ({
      ...base.init(cfg, { encoderAsDecoderTranspose: false, ...options }),
      ...(skip ? { W_skip: zeros([dOutOf(cfg), cfg.d_in]) } : {}),
    }),
    trainingLoss: (params, x, options = {}) => {
      if (!options.target)
        throw new Error(`${name} trainingLoss: a transcoder needs options.target, the output activation [..., d_out] to reconstruct`);
      return loss(params, x, { ...options, applyBDecToInput: false }, arch);
    },
  };
  return arch;
}

/** 'transcoder': ReLU features; W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_out], b_dec [d_out]. */
export const transcoder = makeTranscoder('transcoder', standard, standardTrainingLoss, false);
/** 'skip_transcoder': the transcoder plus W_skip [d_out, d_in]. */
export const skipTranscoder = makeTranscoder('skip_transcoder', standard, standardTrainingLoss, true);
/** 'jumprelu_transcoder': JumpReLU features (threshold [d_sae]), W_dec [d_sae, d_out]. */
export const jumpreluTranscoder = makeTranscoder('jumprelu_transcoder', jumprelu, jumpReluLoss, false);
/** 'jumprelu_skip_transcoder': the JumpReLU transcoder plus W_skip [d_out, d_in]. */
export const jumpreluSkipTranscoder = makeTranscoder('jumprelu_skip_transcoder', jumprelu, jumpReluLoss, true);
