/**
 * The shape of an SAE architecture: how it encodes, decodes, initialises and trains. Each
 * architecture is one file under `architectures/` and is registered by its SAELens name in
 * `registry.ts`.
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
}
