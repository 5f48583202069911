/**
 * The shape of an SAE architecture: how it encodes, decodes, initialises and trains, and the
 * facts its training needs (`SaeTrainingFacts`). Each architecture is one file under
 * `architectures/` and is registered by its SAELens name in `registry.ts`; nothing else names an
 * architecture to decide how to treat it, so a new architecture is a new file.
 */
import type { Tensor } from '../tensor/index.js';
import type { NormalizeActivations, SaeConfig } from './config.js';

/**
 * An SAE's parameters by SAELens name. Common to all: `W_enc` [d_in, d_sae], `W_dec` [d_sae, d_out],
 * `b_dec` [d_out] (d_out = d_in except for transcoders). Most add `b_enc` [d_sae]; JumpReLU adds
 * `threshold` [d_sae]; gated has `b_gate`, `r_mag`, `b_mag` [d_sae] instead of b_enc; skip
 * transcoders add `W_skip` [d_out, d_in].
 */
export type SaeParams = Record<string, Tensor>;

/** Options of `init`. */
export interface SaeInitOptions {
  /** Seed of the generator (default 0). */
  seed?: number;
  /**
   * Norm of each decoder row after initialisation (SAELens's `decoder_init_norm`, default 0.1,
   * Anthropic's April 2024 heuristic); null keeps the Kaiming-uniform rows as drawn, 1 gives unit rows.
   */
  decoderInitNorm?: number | null;
  /** JumpReLU: initial threshold (SAELens's `jumprelu_init_threshold`, default 0.01). */
  initThreshold?: number;
  /** Initial b_dec [d_out], e.g. the geometric median of a sample of activations (default zeros). */
  bDec?: Tensor;
  /**
   * Initialise W_enc as W_dec^T (SAELens's init_encoder_as_decoder_transpose). Default: when
   * d_out = d_in; transcoders, whose input and output spaces differ, draw W_enc on its own.
   */
  encoderAsDecoderTranspose?: boolean;
}

/**
 * Hyper-parameters of a training loss. Each architecture reads the fields it documents; the
 * `Sae` object fills the structural ones (k, applyBDecToInput, ...) from its config.
 */
export interface SaeTrainingOptions {
  /** Standard, gated: the L1 coefficient (SAELens's `l1_coefficient`, default 1). */
  l1Coefficient?: number;
  /** Standard: the p of the sparsity norm (SAELens's `lp_norm`); only 1 is supported. */
  lpNorm?: number;
  /** JumpReLU: the L0 coefficient (SAELens's `l0_coefficient`, default 1). */
  l0Coefficient?: number;
  /** JumpReLU: the rectangle kernel's bandwidth ε (SAELens's `jumprelu_bandwidth`, default 0.05). */
  bandwidth?: number;
  /** JumpReLU: 'step' (DeepMind's L0 via the straight-through estimator, default) or 'tanh' (Anthropic's). */
  sparsityLossMode?: 'step' | 'tanh';
  /** JumpReLU 'tanh' mode: the scale inside tanh (default 4). */
  tanhScale?: number;
  /** JumpReLU: Anthropic's pre-activation loss on dead features (needs `deadMask`); off when undefined. */
  preActLossCoefficient?: number;
  /** TopK family: active features per example (BatchTopK: on average over the batch). */
  k?: number;
  /** TopK family: the AuxK loss coefficient (SAELens's `aux_loss_coefficient`, default 1). */
  auxLossCoefficient?: number;
  /** TopK family: rescale pre-activations by decoder row norms (SAELens training default true). */
  rescaleActsByDecoderNorm?: boolean;
  /** Matryoshka: nested prefix widths (strictly increasing; d_sae is appended if missing). */
  matryoshkaWidths?: readonly number[];
  /** Matryoshka: each level's dead features reconstruct that level's residual (default false). */
  useMatryoshkaAuxLoss?: boolean;
  /** Gated: stop the auxiliary reconstruction's gradient into W_dec and b_dec, as the paper does (default true). */
  detachAuxDecoder?: boolean;
  /**
   * [d_sae] 1 (or true) for features counted dead (no activation in the last N steps). Feeds the
   * AuxK loss (TopK family) and the pre-activation loss (JumpReLU); without it those are 0.
   */
  deadMask?: Tensor;
  /** Subtract b_dec from the input before encoding (default: true for SAEs, false for transcoders). */
  applyBDecToInput?: boolean;
  /** Run-time input normalisation (default 'none'; expected_average_only_in scales inputs beforehand). */
  normalizeActivations?: NormalizeActivations;
  /** expected_average_only_in's factor, when the inputs are not scaled beforehand. */
  normScalingFactor?: number | null;
  /** Transcoders: the activation to reconstruct [..., d_out] (an SAE reconstructs its input). */
  target?: Tensor;
  /**
   * The SAE's config, when the caller has one (the trainer): the loss runs with it as it is, and
   * the structural options above (k, rescaleActsByDecoderNorm, matryoshkaWidths,
   * applyBDecToInput, normalizeActivations, normScalingFactor) are not read. Without it the loss
   * builds a config from the parameters' shapes and those options, with the architecture's
   * `training.defaults` for what they leave out.
   */
  config?: SaeConfig;
}

/** A training loss and the scalars to log: SAELens's loss names plus `l0` (mean active features per example). */
export interface SaeTrainingLoss {
  /** Scalar: mse_loss plus every other *_loss term. */
  loss: Tensor;
  /** Scalars: mse_loss, l1_loss / l0_loss, auxiliary_reconstruction_loss, inner_mse_loss_<width>, l0, ... */
  metrics: Record<string, Tensor>;
  /** The feature activations [..., d_sae] (for firing counts; not differentiated by `train`). */
  featureActs: Tensor;
}

/**
 * One SAE architecture. The inference path is split at SAELens's hook points so `runSae` can hook
 * each stage: input -> `hiddenPre` (hook_sae_acts_pre) -> `activate` (hook_sae_acts_post) ->
 * `decode` (hook_sae_recons).
 */
export interface SaeArchitecture {
  /** The registry name (SAELens's `architecture`). */
  readonly name: string;
  /** One line for listings and errors. */
  readonly description: string;
  /** Whether the decoder writes to another hook point (d_out, no b_dec subtraction, optional W_skip). */
  readonly transcoder: boolean;
  /**
   * Whether `activate` mixes examples (BatchTopK picks its top k * batch across the batch): such an
   * SAE must be converted with `toInferenceSae` before it is used one example at a time.
   */
  readonly batchDependent: boolean;
  /** Parameter names and shapes for a config. */
  paramShapes(cfg: SaeConfig): Record<string, number[]>;
  /** Fresh parameters (SAELens's initialisation). */
  init(cfg: SaeConfig, options?: SaeInitOptions): SaeParams;
  /** Pre-activations [..., d_sae] from the processed input [..., d_in] (b_dec already subtracted when configured). */
  hiddenPre(params: SaeParams, saeIn: Tensor, cfg: SaeConfig): Tensor;
  /** Feature activations [..., d_sae] from the pre-activations (and the processed input, for gated). */
  activate(params: SaeParams, hiddenPre: Tensor, saeIn: Tensor, cfg: SaeConfig): Tensor;
  /** The reconstruction [..., d_out] from feature activations: acts @ W_dec + b_dec (before output normalisation). */
  decode(params: SaeParams, acts: Tensor, cfg: SaeConfig): Tensor;
  /**
   * The training loss as a pure function of the parameters (usable under `valueAndGrad`, `jit`
   * and `train`). `x` is [..., d_in]; the MSE sums over the last axis and averages over the rest.
   */
  trainingLoss(params: SaeParams, x: Tensor, options?: SaeTrainingOptions): SaeTrainingLoss;
  /**
   * What `trainSae`, `Sae.create` and the transforms need to know about training this
   * architecture (SAELens's TrainingSAE methods). Without it: `DEFAULT_TRAINING` (an L1
   * coefficient and nothing else).
   */
  readonly training?: SaeTrainingFacts;
}

/** A sparsity coefficient the trainer schedules (SAELens's get_coefficients). */
export interface SaeTrainingCoefficient {
  /**
   * 'l1' or 'l0': trainSae takes its value and warm-up from its `<name>Coefficient` and
   * `<name>WarmUpSteps` options (default 1 and 0) and logs it as `details/current_<name>_coefficient`.
   */
  readonly name: 'l1' | 'l0';
  /**
   * The loss metric it multiplies, e.g. 'l1_loss': the trainer computes the loss with
   * `<name>Coefficient: 1` and scales this term by the scheduled value.
   */
  readonly term: string;
}

/** How an architecture revives dead features in a training run (SAELens's calculate_aux_loss). */
export interface SaeDeadFeatureLoss {
  /** The auxiliary loss's metric (e.g. 'auxiliary_reconstruction_loss'), logged as 0 while no feature is dead. */
  readonly metric: string;
  /** The loss to train with when it is not the architecture's `trainingLoss` (ghost grads add their term around it). */
  readonly loss?: (params: SaeParams, x: Tensor, options: SaeTrainingOptions) => SaeTrainingLoss;
}

/** A value the trainer estimates from each step's activations, outside the gradient (BatchTopK's threshold). */
export interface SaeRunningThreshold {
  /**
   * The estimate after a step, from the estimate before it (a scalar, 0 at the start) and the
   * step's loss metrics, which it may remove (they are then not logged). `lr` is trainSae's
   * `topkThresholdLr` (SAELens's topk_threshold_lr). Runs inside the compiled step.
   */
  update(threshold: Tensor, metrics: Record<string, Tensor>, lr: number): Tensor;
}

/** The run-time choices `SaeTrainingFacts.deadFeatures` depends on. */
export interface SaeDeadFeatureRun {
  /** trainSae's useGhostGrads (only asked of architectures with `ghostGrads`). */
  useGhostGrads: boolean;
  /** trainSae's lossOptions (e.g. JumpReLU's preActLossCoefficient). */
  lossOptions: SaeTrainingOptions;
}

/** What training an architecture involves beyond its loss (one object per architecture, in its file). */
export interface SaeTrainingFacts {
  /** The sparsity coefficient the trainer schedules, or null (the TopK family: k sets the sparsity). */
  readonly coefficient: SaeTrainingCoefficient | null;
  /**
   * Features are chosen by rank (the TopK family): cfg.k is needed (trainSae's `k` sets it), and
   * folding the decoder norms into the encoder would change the choice unless the pre-activations
   * are rescaled by them.
   */
  readonly selectsTopK: boolean;
  /**
   * SAELens's training defaults for config fields a config leaves out (the TopK family:
   * rescale_acts_by_decoder_norm true, k 100). `Sae.create` takes rescale_acts_by_decoder_norm
   * from here (k it requires); training losses take all of them.
   */
  readonly defaults: Readonly<Partial<SaeConfig>>;
  /** Whether trainSae keeps decoder rows at unit norm by default (its normalizeDecoder) for a config. */
  unitNormDecoder(cfg: SaeConfig): boolean;
  /** Whether trainSae's useGhostGrads applies (SAELens < 6's ghost grads: standard SAEs and transcoders). */
  readonly ghostGrads: boolean;
  /**
   * How dead features are revived in a run: the auxiliary loss (and the loss that has it, when it
   * is not `trainingLoss`), or null when the run does nothing with them (the trainer then never
   * computes the dead mask). `arch` is the architecture being trained (a transcoder shares its
   * base's facts).
   */
  deadFeatures(arch: SaeArchitecture, run: SaeDeadFeatureRun): SaeDeadFeatureLoss | null;
  /** The running threshold the trainer estimates (BatchTopK's), or null. */
  readonly threshold: SaeRunningThreshold | null;
  /**
   * The parameters and config the trained SAE is used and saved with (SAELens's
   * process_state_dict_for_saving_inference): TopK folds its decoder norms when it rescaled by
   * them, BatchTopK becomes a JumpReLU SAE with its running threshold; others are returned as they
   * are (the same objects).
   */
  inferenceForm(cfg: SaeConfig, params: SaeParams, state: { topkThreshold?: number }): { cfg: SaeConfig; params: SaeParams };
  /**
   * Config fields a new SAE needs beyond d_in, d_sae and k, with a choice for a width (the
   * matryoshka widths d_sae/16, d_sae/4, d_sae): `glassbox sae train` uses it when its flags do not
   * give them.
   */
  suggestedConfig?(dSae: number): Partial<SaeConfig>;
}
