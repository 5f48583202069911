/**
 * TopK SAE (Gao et al. 2024; SAELens 'topk'): keep each example's k largest pre-activations
 * (ReLU'd), zero the rest. No sparsity penalty; the AuxK loss revives dead features. With
 * `rescale_acts_by_decoder_norm` (SAELens's training default) the pre-activations are multiplied
 * by the decoder row norms before the top-k and the activations divided by them before decoding,
 * so the choice does not drift with the decoder's scale; `foldDecoderNorm` bakes it in.
 *
 * Training facts of the whole TopK family (`topkTraining`, shared by BatchTopK and Matryoshka):
 * no sparsity coefficient, k required, rescaled by decoder norms by default (else the decoder is
 * kept at unit norm), dead features revived by the AuxK loss, and the saved SAE has its decoder
 * norms folded in when it rescaled by them.
 */
import type { Tensor } from '../../tensor/index.js';
import type { SaeConfig } from '../config.js';
import {
  actsTimesWDec,
  affineArchitecture,
  auxKLoss,
  deadMaskOf,
  decoderRowNorms,
  defineTraining,
  foldDecoderNormParams,
  meanL0,
  reconstructionLoss,
  topkActivation,
  zeroLoss,
} from '../common.js';
import type { SaeArchitecture, SaeParams, SaeTrainingFacts, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';

/** cfg.k, required by the TopK family. */
export function kOf(cfg: SaeConfig, arch: string): number {
  if (typeof cfg.k !== 'number') throw new Error(`${arch}: the config has no 'k' (active features per example)`);
  return cfg.k;
}

/** The pre-activations the top-k ranks: multiplied by the decoder row norms when the config says so. */
export function rankedPreActs(p: SaeParams, hiddenPre: Tensor, cfg: SaeConfig): Tensor {
  return cfg.rescale_acts_by_decoder_norm ? hiddenPre.mul(decoderRowNorms(p.W_dec!)) : hiddenPre;
}

/** acts (divided by the decoder norms when rescaling) @ W_dec + b_dec. */
export function topkDecode(p: SaeParams, acts: Tensor, cfg: SaeConfig): Tensor {
  return actsTimesWDec(acts, p.W_dec!, !!cfg.rescale_acts_by_decoder_norm).add(p.b_dec!);
}

/** SAELens's training defaults of the TopK family: k 100, pre-activations rescaled by decoder norms. */
export const TOPK_DEFAULTS: Readonly<Partial<SaeConfig>> = { k: 100, rescale_acts_by_decoder_norm: true };

/** The TopK family's training facts (see the file comment). */
export const topkTraining: SaeTrainingFacts = defineTraining({
  coefficient: null,
  selectsTopK: true,
  defaults: TOPK_DEFAULTS,
  unitNormDecoder: (cfg) => !cfg.rescale_acts_by_decoder_norm,
  deadFeatures: () => ({ metric: 'auxiliary_reconstruction_loss' }),
  inferenceForm: (cfg, params) => (cfg.rescale_acts_by_decoder_norm ? { cfg, params: foldDecoderNormParams(params) } : { cfg, params }),
});

/** The 'topk' architecture (cfg.k required): W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]. */
export const topk: SaeArchitecture = affineArchitecture({
  name: 'topk',
  description: 'TopK SAE: the k largest pre-activations per example; AuxK loss for dead features',
  activate: (p, hiddenPre, _saeIn, cfg) => topkActivation(rankedPreActs(p, hiddenPre, cfg), kOf(cfg, 'topk')),
  decode: topkDecode,
  trainingLoss: (params, x, options = {}) => topkFamilyLoss(topk, params, x, options),
  training: topkTraining,
});

/**
 * MSE + auxLossCoefficient * AuxK (SAELens's TopKTrainingSAE). Defaults: k 100,
 * rescaleActsByDecoderNorm true, auxLossCoefficient 1; the AuxK term is 0 without `deadMask`.
 * Metrics: mse_loss, auxiliary_reconstruction_loss, l0.
 */
export function topkFamilyLoss(arch: SaeArchitecture, params: SaeParams, x: Tensor, options: SaeTrainingOptions = {}): SaeTrainingLoss {
  const { cfg, target, hiddenPre, acts, out, mse } = reconstructionLoss(arch, params, x, options, { defaults: TOPK_DEFAULTS });
  const rescale = !!cfg.rescale_acts_by_decoder_norm;
  const aux = options.deadMask
    ? auxKLoss(
        rankedPreActs(params, hiddenPre, cfg),
        deadMaskOf(options.deadMask, cfg.d_sae, `${arch.name} trainingLoss`),
        params.W_dec!,
        target.sub(out),
        cfg.d_in,
        rescale,
      ).mul(options.auxLossCoefficient ?? 1)
    : zeroLoss();
  return {
    loss: mse.add(aux),
    metrics: { mse_loss: mse, auxiliary_reconstruction_loss: aux, l0: meanL0(acts) },
    featureActs: acts,
  };
}
