/**
 * Rotary position embeddings: the config (both spellings Hugging Face has used) and the
 * frequencies each scaling variant gives.
 *
 * transformers 4 wrote `rope_theta` at the top level and the scaling under `rope_scaling`
 * (`type` or `rope_type`); transformers 5 writes both under `rope_parameters` (`rope_type`,
 * `rope_theta`, `partial_rotary_factor`, and the variant's fields). Every field of the scaling
 * object is read here, so one that glassbox does not implement is refused by name.
 */
import type { HfConfigReader } from './hf-config.js';

export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'longrope'] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

/** The rotary settings of one attention type (Gemma 3 has one for local and one for global layers). */
export interface RopeConfig {
  type: RopeType;
  theta: number;
  /** linear, dynamic, llama3, yarn (and longrope where given): the context extension factor. */
  factor?: number;
  /** llama3, yarn, longrope, dynamic: the context the model was pre-trained at. */
  originalMaxPositions?: number;
  /** llama3: wavelengths above original/lowFreqFactor are scaled, below original/highFreqFactor kept. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** yarn: the ramp's bounds in rotations, and the attention temperature. */
  betaFast?: number;
  betaSlow?: number;
  mscale?: number;
  mscaleAllDim?: number;
  /** yarn, longrope: multiplier of cos and sin (derived from the factor when absent). */
  attentionFactor?: number;
  /** yarn: whether the ramp's bounds are rounded to whole dims (transformers' default true). */
  truncate?: boolean;
  /** longrope: per-frequency divisors for short and long contexts [rotary_dim / 2]. */
  shortFactor?: number[];
  longFactor?: number[];
}

/**
 * Reads the rotary settings: `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling`
 * (transformers 4). `implemented` lists the scaling types the family implements; any other is
 * refused. Also returns the partial-rotary fraction where the config states one.
 */
export function readRope(
  r: HfConfigReader,
  options: { defaultTheta: number; implemented?: readonly RopeType[]; thetaNames?: readonly string[] },
): { rope: RopeConfig; partialRotary: number | null } {
  const implemented = options.implemented ?? ROPE_TYPES;
  const params = r.sub('rope_parameters');
  const legacy = r.sub('rope_scaling');
  const topTheta = r.optNum(['rope_theta', ...(options.thetaNames ?? [])], null, { gt: 0 });
  const topPartial = r.optNum(['partial_rotary_factor'], null, { gt: 0, max: 1 });
  const topOriginal = r.optNum('original_max_position_embeddings', null, { integer: true, min: 1 });
  if (params && legacy && legacy.has('rope_type'))
    throw r.error('rope_scaling', "is given beside 'rope_parameters'; a config should use one spelling");
  const src = params ?? legacy;
  const theta = params?.optNum('rope_theta', null, { gt: 0 }) ?? topTheta ?? options.defaultTheta;
  const partial = params?.optNum('partial_rotary_factor', null, { gt: 0, max: 1 }) ?? topPartial;
  const rope = src ? readScaling(src, theta, implemented) : { type: 'default' as const, theta };
  if (rope.originalMaxPositions === undefined && topOriginal !== null && rope.type !== 'default') rope.originalMaxPositions = topOriginal;
  return { rope, partialRotary: partial };
}

/** One scaling object: `{rope_type|type, factor, ...}`. */
export function readScaling(s: HfConfigReader, theta: number, implemented: readonly RopeType[]): RopeConfig {
  const type = s.str(['rope_type', 'type'], ROPE_TYPES, 'default');
  if (!implemented.includes(type))
    throw s.error(
      s.has('rope_type') ? 'rope_type' : 'type',
      `is '${type}', which glassbox does not implement for this family (implemented: ${implemented.join(', ')})`,
    );
  const rope: RopeConfig = { type, theta };
  const optional = (name: string, key: keyof RopeConfig, rule = { gt: 0 }): void => {
    const v = s.optNum(name, null, rule);
    if (v !== null) (rope as unknown as Record<string, number>)[key] = v;
  };
  switch (type) {
    case 'default':
      break;
    case 'linear':
      rope.factor = s.num('factor', { gt: 0 });
      break;
    case 'dynamic':
      rope.factor = s.num('factor', { gt: 0 });
      optional('original_max_position_embeddings', 'originalMaxPositions');
      break;
    case 'llama3':
      rope.factor = s.num('factor', { gt: 0 });
      rope.lowFreqFactor = s.num('low_freq_factor', { gt: 0 });
      rope.highFreqFactor = s.num('high_freq_factor', { gt: 0 });
      rope.originalMaxPositions = s.num('original_max_position_embeddings', { integer: true, min: 1 });
      if (!(rope.highFreqFactor > rope.lowFreqFactor))
        throw s.error('high_freq_factor', `must be greater than low_freq_factor (${rope.lowFreqFactor}), got ${rope.highFreqFactor}`);
      break;
    case 'yarn':
      rope.factor = s.num('factor', { gt: 0 });
      optional('original_max_position_embeddings', 'originalMaxPositions');
      optional('attention_factor', 'attentionFactor');
      optional('beta_fast', 'betaFast');
      optional('beta_slow', 'betaSlow');
      optional('mscale', 'mscale');
      optional('mscale_all_dim', 'mscaleAllDim');
      if (s.has('truncate')) rope.truncate = s.bool('truncate', true);
      break;
    case 'longrope':
      rope.shortFactor = s.numList('short_factor', { gt: 0 }) ?? undefined;
      rope.longFactor = s.numList('long_factor', { gt: 0 }) ?? undefined;
      if (!rope.shortFactor || !rope.longFactor) throw s.error('short_factor', "and 'long_factor' are both required for longrope");
      optional('factor', 'factor');
      optional('original_max_position_embeddings', 'originalMaxPositions');
      optional('attention_factor', 'attentionFactor');
      break;
  }
  return rope;
}

/**
 * The inverse frequencies [rotary_dim / 2] (rounded to float32, as transformers computes them)
 * and the factor cos and sin are multiplied by, for a forward pass whose positions reach
 * `seqLen - 1` (dynamic scaling and LongRoPE depend on it).
 */
export function ropeFrequencies(rope: RopeConfig, rotaryDim: number, seqLen: number): { invFreq: Float32Array; attentionScaling: number } {
  void seqLen;
  const half = rotaryDim / 2;
  const base = (theta: number): Float32Array =>
    Float32Array.from({ length: half }, (_, j) => Math.fround(1 / Math.pow(theta, (2 * j) / rotaryDim)));
  switch (rope.type) {
    case 'default':
      return { invFreq: base(rope.theta), attentionScaling: 1 };
    case 'linear':
      return { invFreq: base(rope.theta).map((f) => Math.fround(f / rope.factor!)), attentionScaling: 1 };
    default:
      throw new Error(`RoPE scaling '${rope.type}' is not implemented`);
  }
}
