/**
 * Pieces shared by the architectures: input processing (normalisation, b_dec subtraction),
 * SAELens's initialisation, decoder norms and their folding, the MSE, TopK / BatchTopK activations,
 * the AuxK loss, the config a training loss runs with, and the training facts of an architecture
 * that states none (`DEFAULT_TRAINING`).
 */
import { PRNG, Tensor, jit, scalar, tensor, zeros, type DType } from '../tensor/index.js';
import { dOutOf, makeSaeConfig, type SaeConfig } from './config.js';
import { stopGradient } from './ops.js';
import { refuseNonFinite } from '../model/checkpoint-use.js';
import type { SaeArchitecture, SaeInitOptions, SaeParams, SaeTrainingFacts, SaeTrainingOptions } from './types.js';

/**
 * Refuses an SAE whose parameters hold NaN or an infinity, naming the parameter and the element:
 * run, such an SAE reads every feature as dead (NaN never passes an activation's threshold).
 */
export function refuseNonFiniteParams(params: SaeParams, where: string): void {
  for (const [name, t] of Object.entries(params)) refuseNonFinite(t, `${where}: parameter '${name}'`);
}

/** A tensor of zeros of `shape` that costs one scalar inside a trace. */
export function zerosShaped(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return scalar(0, dtype).expand(shape);
}

/** Each decoder row's L2 norm: W_dec [d_sae, d_out] -> [d_sae]. */
export function decoderRowNorms(W_dec: Tensor): Tensor {
  return W_dec.square().sum(-1).sqrt();
}

/** SAELens's MSE: squared error summed over the last axis, averaged over the others. [..., d] x2 -> scalar. */
export function mseLoss(recon: Tensor, target: Tensor): Tensor {
  return recon.sub(target).square().sum(-1).mean();
}

/**
 * The L1 of feature activations weighted by the decoder row norms, averaged over examples, times
 * `coefficient`: mean over examples of coefficient * sum_i acts_i * ||W_dec[i]||. The sparsity
 * penalty that cannot be dodged by shrinking activations and growing rows. [..., d_sae] -> scalar.
 */
export function weightedL1(acts: Tensor, W_dec: Tensor, coefficient: number): Tensor {
  return acts.mul(decoderRowNorms(W_dec)).sum(-1).mean().mul(coefficient);
}

/** The affine encoder most architectures share: saeIn W_enc + b_enc. [..., d_in] -> [..., d_sae]. */
export function affinePreActs(p: SaeParams, saeIn: Tensor): Tensor {
  return saeIn.matmul(p.W_enc!).add(p.b_enc!);
}

/** The affine decoder most architectures share: acts W_dec + b_dec. [..., d_sae] -> [..., d_out]. */
export function affineDecode(p: SaeParams, acts: Tensor): Tensor {
  return acts.matmul(p.W_dec!).add(p.b_dec!);
}

/** Mean number of non-zero features per example: [..., d_sae] -> scalar. */
export function meanL0(acts: Tensor): Tensor {
  return acts.ne(0).cast(acts.dtype).sum(-1).mean();
}

/**
 * The processed SAE input and the inverse of its normalisation.
 * @param x raw input [..., d_in]
 * @returns saeIn [..., d_in] (normalised, b_dec subtracted when configured) and `restore`, which
 *   undoes the normalisation on a reconstruction [..., d_out] (identity for transcoders, as in SAELens)
 */
export function processInput(
  x: Tensor,
  params: SaeParams,
  cfg: SaeConfig,
  transcoder: boolean,
): { saeIn: Tensor; restore: (out: Tensor) => Tensor } {
  let v = x;
  let restore = (out: Tensor): Tensor => out;
  switch (cfg.normalize_activations) {
    case 'expected_average_only_in': {
      const s = cfg.norm_scaling_factor;
      if (typeof s === 'number') {
        v = v.mul(s);
        restore = (out) => out.div(s);
      }
      break;
    }
    case 'constant_norm_rescale': {
      const coeff = v.square().sum(-1, true).sqrt().pow(-1).mul(Math.sqrt(cfg.d_in)); // [..., 1]
      v = v.mul(coeff);
      restore = (out) => out.div(coeff);
      break;
    }
    case 'layer_norm': {
      const mu = v.mean(-1, true);
      const centred = v.sub(mu);
      const std = centred
        .square()
        .sum(-1, true)
        .div(Math.max(1, cfg.d_in - 1))
        .sqrt(); // torch's unbiased std
      v = centred.div(std.add(1e-5));
      restore = (out) => out.mul(std).add(mu);
      break;
    }
    default:
      break;
  }
  if (transcoder) restore = (out) => out;
  if (cfg.apply_b_dec_to_input && !transcoder) v = v.sub(params.b_dec!);
  return { saeIn: v, restore };
}

/** The full forward pass without hooks, for losses: input processing, encode, decode, skip connection. */
export function forwardParts(
  arch: SaeArchitecture,
  params: SaeParams,
  x: Tensor,
  cfg: SaeConfig,
): { saeIn: Tensor; hiddenPre: Tensor; acts: Tensor; out: Tensor; restore: (out: Tensor) => Tensor } {
  const { saeIn, restore } = processInput(x, params, cfg, arch.transcoder);
  const hiddenPre = arch.hiddenPre(params, saeIn, cfg);
  const acts = arch.activate(params, hiddenPre, saeIn, cfg);
  let out = restore(arch.decode(params, acts, cfg));
  if (params.W_skip) out = out.add(x.matmul(params.W_skip.transpose()));
  return { saeIn, hiddenPre, acts, out, restore };
}

/**
 * What every training loss starts from: its config (`lossConfig`, with `defaults`), the target
 * (`options.target`, else x), the forward pass of `forward` (`arch` unless the loss swaps in a
 * training activation) and the MSE of its reconstruction against the target.
 * @param x [..., d_in]; out and target [..., d_out]; acts and hiddenPre [..., d_sae]
 */
export function reconstructionLoss(
  arch: SaeArchitecture,
  params: SaeParams,
  x: Tensor,
  options: SaeTrainingOptions,
  { defaults, forward = arch }: { defaults?: Readonly<Partial<SaeConfig>>; forward?: SaeArchitecture } = {},
): ReturnType<typeof forwardParts> & { cfg: SaeConfig; target: Tensor; mse: Tensor } {
  const cfg = lossConfig(arch, params, options, defaults);
  const target = options.target ?? x;
  const parts = forwardParts(forward, params, x, cfg);
  return { ...parts, cfg, target, mse: mseLoss(parts.out, target) };
}

/**
 * An architecture with the standard encoder and decoder unless `spec` says otherwise: an SAE (not a
 * transcoder) that treats examples one at a time, with the parameters of `baseParamShapes` and
 * `initBase`, pre-activations saeIn W_enc + b_enc (`affinePreActs`) and the reconstruction
 * acts W_dec + b_dec (`affineDecode`). `spec` gives the rest: its name, activation, loss and
 * training facts.
 */
export function affineArchitecture(
  spec: Pick<SaeArchitecture, 'name' | 'description' | 'activate' | 'trainingLoss' | 'training'> & Partial<SaeArchitecture>,
): SaeArchitecture {
  return {
    transcoder: false,
    batchDependent: false,
    paramShapes: (cfg) => baseParamShapes(cfg),
    init: (cfg, options) => initBase(cfg, options),
    hiddenPre: affinePreActs,
    decode: affineDecode,
    ...spec,
  };
}

/**
 * The config a training loss runs with: `o.config` when the caller has one; else one built from
 * the parameters' shapes (d_in, d_sae, d_out) and the structural options, with `defaults` (the
 * architecture's `training.defaults`) for the fields they leave out. Checked against the
 * parameters' shapes either way.
 */
export function lossConfig(
  arch: SaeArchitecture,
  params: SaeParams,
  o: SaeTrainingOptions,
  defaults: Readonly<Partial<SaeConfig>> = trainingFacts(arch).defaults,
): SaeConfig {
  const W_enc = params.W_enc;
  const W_dec = params.W_dec;
  if (!W_enc || !W_dec || W_enc.rank !== 2 || W_dec.rank !== 2)
    throw new Error(
      `${arch.name} trainingLoss: params need W_enc [d_in, d_sae] and W_dec [d_sae, d_out]; got ${Object.entries(params)
        .map(([k, t]) => `${k} [${t.shape}]`)
        .join(', ')}`,
    );
  let cfg = o.config;
  if (!cfg) {
    const base = makeSaeConfig(
      { architecture: arch.name, d_in: W_enc.shape[0]!, d_sae: W_enc.shape[1]!, norm_scaling_factor: null },
      arch.transcoder,
    );
    if (arch.transcoder) base.d_out = W_dec.shape[1]!;
    cfg = withDefaults(withTrainingOptions(base, o), defaults);
  }
  checkParamShapes(arch, cfg, params, `${arch.name} trainingLoss`);
  return cfg;
}

/**
 * `cfg` with the structural training options that are given written into it (k,
 * rescaleActsByDecoderNorm, matryoshkaWidths, applyBDecToInput, normalizeActivations,
 * normScalingFactor). A copy; `cfg` is not changed.
 */
export function withTrainingOptions(cfg: SaeConfig, o: SaeTrainingOptions): SaeConfig {
  const out: SaeConfig = { ...cfg };
  if (o.applyBDecToInput !== undefined) out.apply_b_dec_to_input = o.applyBDecToInput;
  if (o.normalizeActivations !== undefined) out.normalize_activations = o.normalizeActivations;
  if (o.normScalingFactor !== undefined) out.norm_scaling_factor = o.normScalingFactor;
  if (o.k !== undefined) out.k = o.k;
  if (o.rescaleActsByDecoderNorm !== undefined) out.rescale_acts_by_decoder_norm = o.rescaleActsByDecoderNorm;
  if (o.matryoshkaWidths !== undefined) out.matryoshka_widths = [...o.matryoshkaWidths];
  return out;
}

/** `cfg` with `defaults` for the fields it leaves undefined (a copy when any is filled). */
export function withDefaults(cfg: SaeConfig, defaults: Readonly<Partial<SaeConfig>>): SaeConfig {
  const missing = Object.entries(defaults).filter(([k, v]) => v !== undefined && cfg[k] === undefined);
  return missing.length ? { ...cfg, ...Object.fromEntries(missing) } : cfg;
}

/**
 * The config a run trains `arch` with: the SAE's config, the structural loss options written into
 * it (`withTrainingOptions`), and the architecture's training defaults for what both leave out.
 * What the loss would build from the options alone, for the SAE's own config.
 */
export function trainingConfig(arch: SaeArchitecture, cfg: SaeConfig, o: SaeTrainingOptions = {}): SaeConfig {
  return withDefaults(withTrainingOptions(cfg, o), trainingFacts(arch).defaults);
}

/** Throws naming `where`, the parameter and both shapes when `params` does not match the architecture's shapes for `cfg`. */
export function checkParamShapes(arch: SaeArchitecture, cfg: SaeConfig, params: SaeParams, where: string): void {
  const shapes = arch.paramShapes(cfg);
  const missing = Object.keys(shapes).filter((k) => !(params[k] instanceof Tensor));
  if (missing.length)
    throw new Error(
      `${where}: the ${arch.name} architecture needs ${missing.map((m) => `'${m}'`).join(', ')} (present: ${Object.keys(params).join(', ')})`,
    );
  for (const [name, shape] of Object.entries(shapes)) {
    const t = params[name]!;
    if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new Error(
        `${where}: '${name}' has shape [${t.shape.join(', ')}] but d_in ${cfg.d_in}, d_sae ${cfg.d_sae}${arch.transcoder ? `, d_out ${dOutOf(cfg)}` : ''} imply [${shape.join(', ')}]`,
      );
  }
}

/** Shapes common to every architecture: W_enc, W_dec, b_dec (plus b_enc unless `noBEnc`). */
export function baseParamShapes(cfg: SaeConfig, options: { bEnc?: boolean } = {}): Record<string, number[]> {
  const dOut = dOutOf(cfg);
  return {
    W_enc: [cfg.d_in, cfg.d_sae],
    ...(options.bEnc === false ? {} : { b_enc: [cfg.d_sae] }),
    W_dec: [cfg.d_sae, dOut],
    b_dec: [dOut],
  };
}

/**
 * The parameters with each decoder row divided by its norm (clamped at 1e-8) and the matching
 * encoder column (and b_enc, threshold, b_gate, b_mag) multiplied by it: what the SAE computes is
 * unchanged (for rank-chosen features only when their pre-activations are rescaled by the norms;
 * see `foldDecoderNorm`).
 */
export function foldDecoderNormParams(params: SaeParams): SaeParams {
  return foldNorms(params) as SaeParams;
}

const foldNorms = jit((params: SaeParams) => {
  const norms = decoderRowNorms(params.W_dec!).maximum(1e-8);
  const out: SaeParams = { ...params, W_dec: params.W_dec!.div(norms.unsqueeze(1)), W_enc: params.W_enc!.mul(norms) };
  for (const k of ['b_enc', 'threshold', 'b_gate', 'b_mag']) if (params[k]) out[k] = params[k]!.mul(norms);
  return out;
});

/** Uniform(-bound, bound) samples of `shape` from `rng`. */
function uniform(shape: [number, number], bound: number, rng: PRNG): Float32Array {
  const out = new Float32Array(shape[0] * shape[1]);
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.uniform() - 1) * bound;
  return out;
}

/**
 * SAELens's initialisation of W_enc, W_dec and b_dec (plus b_enc = 0 unless `bEnc: false`):
 * W_dec [d_sae, d_out] Kaiming-uniform (bound sqrt(6 / d_out)), each row rescaled to
 * `decoderInitNorm` (default 0.1), W_enc = W_dec^T (unless `encoderAsDecoderTranspose: false`, as
 * transcoders ask, or d_out differs from d_in: then W_enc [d_in, d_sae] is Kaiming-uniform on its
 * own, bound sqrt(6 / d_sae)), b_dec zeros (or `options.bDec`).
 */
export function initBase(cfg: SaeConfig, options: SaeInitOptions = {}, shape: { bEnc?: boolean } = {}): SaeParams {
  const rng = new PRNG(options.seed ?? 0);
  const dOut = dOutOf(cfg);
  const dec = uniform([cfg.d_sae, dOut], Math.sqrt(6 / dOut), rng);
  const norm = options.decoderInitNorm === undefined ? 0.1 : options.decoderInitNorm;
  if (norm !== null)
    for (let r = 0; r < cfg.d_sae; r++) {
      let s = 0;
      for (let c = 0; c < dOut; c++) s += dec[r * dOut + c]! ** 2;
      const f = norm / Math.max(Math.sqrt(s), 1e-12);
      for (let c = 0; c < dOut; c++) dec[r * dOut + c]! *= f;
    }
  const W_dec = tensor(dec, [cfg.d_sae, dOut]);
  const tied = (options.encoderAsDecoderTranspose ?? true) && dOut === cfg.d_in;
  const W_enc = tied
    ? tensor(W_dec.transpose().dataSync(), [cfg.d_in, cfg.d_sae])
    : tensor(uniform([cfg.d_in, cfg.d_sae], Math.sqrt(6 / cfg.d_sae), rng), [cfg.d_in, cfg.d_sae]);
  const b_dec = options.bDec ?? zeros([dOut]);
  if (b_dec.rank !== 1 || b_dec.shape[0] !== dOut) throw new Error(`init: bDec has shape [${b_dec.shape}], expected [${dOut}]`);
  return { W_enc, ...(shape.bEnc === false ? {} : { b_enc: zeros([cfg.d_sae]) }), W_dec, b_dec };
}

/**
 * TopK activation (SAELens's `TopK`): keep each example's k largest pre-activations, ReLU them,
 * zero the rest. [..., d_sae] -> [..., d_sae].
 */
export function topkActivation(hiddenPre: Tensor, k: number): Tensor {
  const d = hiddenPre.shape[hiddenPre.rank - 1]!;
  if (!Number.isInteger(k) || k < 1 || k > d) throw new Error(`topk: k must be an integer in 1..d_sae (${d}), got ${k}`);
  const { values, indices } = hiddenPre.topk(k, -1);
  return zerosShaped(hiddenPre.shape, hiddenPre.dtype).scatter(indices, values.relu(), hiddenPre.rank - 1);
}

/**
 * BatchTopK activation (SAELens's `BatchTopK`): ReLU, then keep the floor(k * n) largest values
 * over the whole batch of n examples. [..., d_sae] -> [..., d_sae].
 */
export function batchTopkActivation(hiddenPre: Tensor, k: number): Tensor {
  const acts = hiddenPre.relu();
  const flat = acts.reshape([-1]);
  const n = acts.size / acts.shape[acts.rank - 1]!;
  const keep = Math.floor(k * n);
  if (!(k > 0) || keep < 1 || keep > flat.size)
    throw new Error(`batchtopk: k * batch = ${k} * ${n} must give between 1 and ${flat.size} active values`);
  const { values, indices } = flat.topk(keep, 0);
  return zerosShaped(flat.shape, flat.dtype).scatter(indices, values, 0).reshape(acts.shape);
}

/**
 * Acts times W_dec without b_dec, dividing the acts by the decoder row norms first when
 * `rescale` (SAELens's `act_times_W_dec`). [..., d_sae] -> [..., d_out].
 */
export function actsTimesWDec(acts: Tensor, W_dec: Tensor, rescale: boolean): Tensor {
  return (rescale ? acts.div(decoderRowNorms(W_dec)) : acts).matmul(W_dec);
}

/**
 * SAELens's AuxK loss for one block of latents (Gao et al. 2024, appendix B.1): the top k_aux
 * dead latents (k_aux = d_in / 2) reconstruct the residual the live ones left, scaled down by
 * min(dead / k_aux, 1). k_aux is fixed so the graph does not depend on how many latents are dead;
 * picks beyond the dead ones are zeroed, which is the same as SAELens's min(k_aux, dead).
 *
 * @param hiddenPre the block's pre-activations [..., n]
 * @param dead the block's dead mask [n] (bool)
 * @param W_dec the block's decoder rows [n, d_out]
 * @param residual target - reconstruction [..., d_out] (gradient stopped here)
 * @param dIn the input width (k_aux = floor(dIn / 2))
 * @returns the unweighted loss (scalar)
 */
export function auxKLoss(hiddenPre: Tensor, dead: Tensor, W_dec: Tensor, residual: Tensor, dIn: number, rescale: boolean): Tensor {
  const n = hiddenPre.shape[hiddenPre.rank - 1]!;
  const kAux = Math.max(1, Math.min(Math.floor(dIn / 2), n));
  const numDead = dead.cast(hiddenPre.dtype).sum();
  const scale = numDead.div(kAux).minimum(1);
  const candidates = hiddenPre.where(dead, -1e30);
  const { values, indices } = candidates.topk(kAux, -1);
  const chosenDead = dead.gather(indices, 0);
  const auxActs = zerosShaped(hiddenPre.shape, hiddenPre.dtype).scatter(indices, values.where(chosenDead, 0), hiddenPre.rank - 1);
  const recons = actsTimesWDec(auxActs, W_dec, rescale);
  return recons.sub(stopGradient(residual)).square().sum(-1).mean().mul(scale);
}

/** The dead mask as bool [d_sae], checking its shape. */
export function deadMaskOf(mask: Tensor, dSae: number, where: string): Tensor {
  if (mask.rank !== 1 || mask.shape[0] !== dSae) throw new Error(`${where}: deadMask has shape [${mask.shape}], expected [${dSae}]`);
  return mask.dtype === 'bool' ? mask : mask.ne(0);
}

/** A float scalar 0 (a loss term that is switched off). */
export function zeroLoss(): Tensor {
  return scalar(0);
}

/**
 * The training facts of an architecture that states none: an L1 coefficient, no top-k, no config
 * defaults, no unit-norm decoder, no ghost grads, nothing done with dead features, no running
 * threshold, saved as trained.
 */
export const DEFAULT_TRAINING: SaeTrainingFacts = {
  coefficient: { name: 'l1', term: 'l1_loss' },
  selectsTopK: false,
  defaults: {},
  unitNormDecoder: () => false,
  ghostGrads: false,
  deadFeatures: () => null,
  threshold: null,
  inferenceForm: (cfg, params) => ({ cfg, params }),
};

/** Training facts: `DEFAULT_TRAINING` with the given ones in place of its. */
export function defineTraining(facts: Partial<SaeTrainingFacts>): SaeTrainingFacts {
  return { ...DEFAULT_TRAINING, ...facts };
}

/** An architecture's training facts (`DEFAULT_TRAINING` when it states none). */
export function trainingFacts(arch: SaeArchitecture): SaeTrainingFacts {
  return arch.training ?? DEFAULT_TRAINING;
}
