/**
 * Rotary position embeddings: the config (both spellings Hugging Face has used) and the
 * frequencies each scaling variant gives, computed as transformers 5.18's `modeling_rope_utils.py`
 * computes them (in float32 where it rounds to float32).
 *
 * transformers 4 wrote `rope_theta` at the top level and the scaling under `rope_scaling`
 * (`type` or `rope_type`); transformers 5 writes both under `rope_parameters` (`rope_type`,
 * `rope_theta`, `partial_rotary_factor`, and the variant's fields). Every field of the scaling
 * object is read here, so one that glassbox does not implement is refused by name. Defaults that
 * transformers derives from other fields (YaRN's and LongRoPE's attention factor, LongRoPE's
 * factor, the pre-training context) are resolved when the config is read, so a `RopeConfig` is
 * self-contained (it is stored as is in glassbox's own checkpoint format).
 */
import type { HfConfigReader } from './hf-config.js';

export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3', 'yarn', 'longrope'] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

/** The rotary settings of one attention type (Gemma 3 has one for local and one for global layers). */
export interface RopeConfig {
  type: RopeType;
  theta: number;
  /** linear, dynamic, llama3, yarn, longrope: the context extension factor. */
  factor?: number;
  /**
   * llama3, yarn, longrope: the context the model was pre-trained at (`original_max_position_embeddings`).
   * dynamic: `max_position_embeddings`, beyond which the base grows (transformers' definition).
   */
  originalMaxPositions?: number;
  /** llama3: wavelengths above original/lowFreqFactor are scaled, below original/highFreqFactor kept. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** yarn: the ramp's bounds in rotations (transformers' defaults 32 and 1). */
  betaFast?: number;
  betaSlow?: number;
  /** yarn, longrope: multiplier of cos and sin (resolved from the factor when the config omits it). */
  attentionFactor?: number;
  /** yarn: whether the ramp's bounds are rounded to whole dims (transformers' default true). */
  truncate?: boolean;
  /** longrope: per-frequency divisors for short and long contexts [rotary_dim / 2]. */
  shortFactor?: number[];
  longFactor?: number[];
}

export interface ReadRopeOptions {
  /** rope_theta when the config gives none. */
  defaultTheta: number;
  /** The scaling types the family implements; any other is refused (default: all). */
  implemented?: readonly RopeType[];
  /** The top-level names transformers reads the base from (default `rope_theta`; GPT-NeoX: `rotary_emb_base`). */
  thetaNames?: readonly string[];
  /** The top-level names of the rotary fraction (default `partial_rotary_factor`; GPT-NeoX: `rotary_pct`). */
  partialNames?: readonly string[];
  /** The model's `max_position_embeddings` (dynamic scaling, and the defaults of the others). */
  maxPositions: number;
  /** Other names of scaling types (Phi-3: 'su' and 'yarn' mean LongRoPE). */
  aliases?: Readonly<Record<string, RopeType>>;
  /**
   * The top-level `original_max_position_embeddings` when the config omits it, for families whose
   * config class declares the field (Phi-3: 4096). transformers lets a top-level value override the
   * one inside the scaling object (llama3, yarn, longrope).
   */
  topOriginalDefault?: number;
}

/**
 * Reads the rotary settings: `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling`
 * (transformers 4). Also returns the partial-rotary fraction where the config states one, and the
 * field it came from.
 */
export function readRope(
  r: HfConfigReader,
  options: ReadRopeOptions,
): { rope: RopeConfig; partialRotary: number | null; partialField: string } {
  const implemented = options.implemented ?? ROPE_TYPES;
  const params = r.sub('rope_parameters');
  const legacy = r.sub('rope_scaling');
  const topTheta = r.optNum(options.thetaNames ?? ['rope_theta'], null, { gt: 0 });
  const topPartial = r.optNum(options.partialNames ?? ['partial_rotary_factor'], null, { gt: 0, max: 1 });
  const topOriginal = r.optNum('original_max_position_embeddings', options.topOriginalDefault ?? null, { integer: true, min: 1 });
  if (params && legacy)
    throw r.error(
      'rope_scaling',
      "is given beside 'rope_parameters'; a config should use one spelling (transformers would read only rope_scaling)",
    );
  // transformers: the scaling object becomes rope_parameters; its own rope_theta wins over the top-level one.
  const src = params ?? legacy;
  const theta = src?.optNum('rope_theta', null, { gt: 0 }) ?? topTheta ?? options.defaultTheta;
  const inner = src?.optNum('partial_rotary_factor', null, { gt: 0, max: 1 }) ?? null;
  const partial = inner ?? topPartial;
  // Where the fraction was read, for messages.
  const partialNames = options.partialNames ?? ['partial_rotary_factor'];
  const partialField = inner !== null ? `${src!.path}partial_rotary_factor` : (partialNames.find((n) => r.has(n)) ?? partialNames[0]!);
  const rope = src
    ? readScaling(src, theta, implemented, options.maxPositions, topOriginal, options.aliases)
    : { type: 'default' as const, theta };
  return { rope, partialRotary: partial, partialField };
}

/**
 * One scaling object: `{rope_type|type, factor, ...}`. `topOriginal` is the top-level
 * `original_max_position_embeddings`, which transformers prefers to the object's own for llama3,
 * yarn and longrope (both default to `maxPositions`).
 */
export function readScaling(
  s: HfConfigReader,
  theta: number,
  implemented: readonly RopeType[],
  maxPositions: number,
  topOriginal: number | null = null,
  aliases: Readonly<Record<string, RopeType>> = {},
): RopeConfig {
  const name = s.str(['rope_type', 'type'], [...ROPE_TYPES, ...Object.keys(aliases)], 'default');
  const type: RopeType = aliases[name] ?? (name as RopeType);
  if (!implemented.includes(type))
    throw s.error(
      s.has('rope_type') ? 'rope_type' : 'type',
      `is '${name}', which glassbox does not implement for this family (implemented: ${implemented.join(', ')})`,
    );
  const rope: RopeConfig = { type, theta };
  const original = (): number => {
    const own = s.optNum('original_max_position_embeddings', null, { integer: true, min: 1 });
    return topOriginal ?? own ?? maxPositions;
  };
  switch (type) {
    case 'default':
      break;
    case 'linear':
      rope.factor = s.num('factor', { gt: 0 });
      break;
    case 'dynamic':
      rope.factor = s.num('factor', { gt: 0 });
      // transformers' dynamic scaling grows the base beyond max_position_embeddings and reads no
      // original_max_position_embeddings (a value there changes nothing).
      s.ignore('original_max_position_embeddings');
      rope.originalMaxPositions = maxPositions;
      break;
    case 'llama3':
      rope.factor = s.num('factor', { gt: 0 });
      rope.lowFreqFactor = s.num('low_freq_factor', { gt: 0 });
      rope.highFreqFactor = s.num('high_freq_factor', { gt: 0 });
      rope.originalMaxPositions = original();
      if (!(rope.highFreqFactor > rope.lowFreqFactor))
        throw s.error('high_freq_factor', `must be greater than low_freq_factor (${rope.lowFreqFactor}), got ${rope.highFreqFactor}`);
      break;
    case 'yarn': {
      rope.originalMaxPositions = original();
      if (!('factor' in s.raw)) throw s.error('factor', 'is required for yarn');
      // A null factor means the ratio of the extended to the pre-training context (DeepSeek-V3's configs).
      const factor = s.optNum('factor', null, { gt: 0 }) ?? maxPositions / rope.originalMaxPositions;
      rope.factor = factor;
      const mscale = s.optNum('mscale', null, { min: 0 });
      const mscaleAllDim = s.optNum('mscale_all_dim', null, { min: 0 });
      // get_mscale in transformers; both mscales are used only when both are non-zero.
      const m = (scale: number, k = 1): number => (scale <= 1 ? 1 : 0.1 * k * Math.log(scale) + 1);
      rope.attentionFactor =
        s.optNum('attention_factor', null, { gt: 0 }) ?? (mscale && mscaleAllDim ? m(factor, mscale) / m(factor, mscaleAllDim) : m(factor));
      // `beta_fast or 32`: transformers also replaces 0 by the default.
      // A negative bound would take the logarithm of a negative number of rotations (NaN frequencies).
      rope.betaFast = s.optNum('beta_fast', null, { min: 0 }) || 32;
      rope.betaSlow = s.optNum('beta_slow', null, { min: 0 }) || 1;
      rope.truncate = s.bool('truncate', true);
      break;
    }
    case 'longrope': {
      rope.shortFactor = s.numList('short_factor', { gt: 0 }) ?? undefined;
      rope.longFactor = s.numList('long_factor', { gt: 0 }) ?? undefined;
      if (!rope.shortFactor || !rope.longFactor) throw s.error('short_factor', "and 'long_factor' are both required for longrope");
      rope.originalMaxPositions = original();
      // Phi-3 gives no factor: the ratio of the extended to the pre-training context.
      const factor = s.optNum('factor', null, { gt: 0 }) ?? maxPositions / rope.originalMaxPositions;
      rope.factor = factor;
      rope.attentionFactor =
        s.optNum('attention_factor', null, { gt: 0 }) ??
        (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(rope.originalMaxPositions)));
      break;
    }
  }
  return rope;
}

/**
 * Refuses a RoPE config that does not fit the rotary dims (LongRoPE's factor lists must give one
 * divisor per frequency). Families call it once the rotary dim is known.
 */
/**
 * RoPE over whole heads, as LLaMA and its descendants apply it: the settings, with LongRoPE's
 * factors checked against the head. A partial-rotary fraction other than 1 is refused with scaled
 * RoPE (transformers computes frequencies for part of the head that its attention then cannot
 * apply); with plain RoPE `partialWithPlainRope` says whether the family ignores it, as
 * transformers' LLaMA does, or refuses it.
 */
export function readWholeHeadRope(
  r: HfConfigReader,
  family: string,
  dHead: number,
  options: Pick<ReadRopeOptions, 'defaultTheta' | 'maxPositions'> & { partialWithPlainRope: 'ignored' | 'refused' },
): RopeConfig {
  const { rope, partialRotary, partialField } = readRope(r, { defaultTheta: options.defaultTheta, maxPositions: options.maxPositions });
  if (partialRotary !== null && partialRotary !== 1 && (rope.type !== 'default' || options.partialWithPlainRope === 'refused'))
    throw r.error(
      partialField,
      `is ${partialRotary}; ${family} rotates whole heads${rope.type !== 'default' ? ' (transformers fails with scaled RoPE here)' : ''}`,
    );
  checkRopeDims(r, rope, dHead);
  return rope;
}

export function checkRopeDims(
  r: HfConfigReader,
  rope: RopeConfig,
  rotaryDim: number,
  field = r.has('rope_parameters') ? 'rope_parameters' : 'rope_scaling',
): void {
  if (rope.type !== 'longrope') return;
  for (const [name, list] of [
    ['short_factor', rope.shortFactor!],
    ['long_factor', rope.longFactor!],
  ] as const)
    if (list.length !== rotaryDim / 2)
      throw r.error(`${field}.${name}`, `lists ${list.length} factors; the rotary dim ${rotaryDim} needs ${rotaryDim / 2}`);
}

const f32 = Math.fround;

/** transformers' `1 / base ** (arange(0, dim, 2) / dim)` in float32: the exponents [dim/2], their powers. */
function basePowers(theta: number, rotaryDim: number): Float32Array {
  return Float32Array.from({ length: rotaryDim / 2 }, (_, j) => f32(Math.pow(f32(theta), f32((2 * j) / rotaryDim))));
}

/**
 * The inverse frequencies [rotary_dim / 2] (float32, as transformers computes them) and the
 * factor cos and sin are multiplied by, for a forward pass whose positions reach `seqLen - 1`
 * (transformers' `max(position_ids) + 1` over the whole batch): dynamic scaling and LongRoPE depend
 * on it, so a padded batch takes the frequencies of its longest row.
 *
 * Every call is computed as transformers computes it on a freshly loaded model. transformers'
 * dynamic scaling is stateful: its rotary module keeps the frequencies of the longest call seen
 * since the last call within `max_position_embeddings`, so there a call shorter than an earlier
 * one (but past max_position_embeddings) reuses the earlier, larger base; glassbox does not carry
 * state between calls. Generation follows transformers step by step: each decoding step rotates
 * its new query and key with the frequencies of its own length while the cached keys keep theirs
 * (see `generate` in hooked.ts for Phi-3's recomputed cache).
 */
export function ropeFrequencies(rope: RopeConfig, rotaryDim: number, seqLen: number): { invFreq: Float32Array; attentionScaling: number } {
  const half = rotaryDim / 2;
  const plain = (theta: number): Float32Array => basePowers(theta, rotaryDim).map((p) => f32(1 / p));
  switch (rope.type) {
    case 'default':
      return { invFreq: plain(rope.theta), attentionScaling: 1 };
    case 'linear': {
      const factor = f32(rope.factor!);
      return { invFreq: plain(rope.theta).map((f) => f32(f / factor)), attentionScaling: 1 };
    }
    case 'dynamic': {
      // NTK-aware: within max_position_embeddings the plain frequencies; beyond, a larger base
      // computed in float32 (seq_len is a tensor there): base * (factor * s / max - (factor - 1)) ** (dim / (dim - 2)).
      const maxPos = rope.originalMaxPositions!;
      if (seqLen <= maxPos) return { invFreq: plain(rope.theta), attentionScaling: 1 };
      const factor = rope.factor!;
      const grown = f32(f32(f32(f32(factor) * seqLen) / maxPos) - f32(factor - 1));
      const base = f32(f32(rope.theta) * f32(Math.pow(grown, f32(rotaryDim / (rotaryDim - 2)))));
      return { invFreq: plain(base), attentionScaling: 1 };
    }
    case 'llama3': {
      const inv = plain(rope.theta);
      const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: old } = rope as Required<RopeConfig>;
      const lowWavelen = f32(old / low);
      const highWavelen = f32(old / high);
      const twoPi = f32(2 * Math.PI);
      const out = new Float32Array(half);
      for (let j = 0; j < half; j++) {
        // transformers divides a number by a tensor as reciprocal-then-multiply.
        const wavelen = f32(f32(1 / inv[j]!) * twoPi);
        // Long wavelengths are divided by the factor, short ones kept, those between interpolated.
        const scaled = wavelen > lowWavelen ? f32(inv[j]! / f32(factor)) : inv[j]!;
        if (wavelen < highWavelen || wavelen > lowWavelen) out[j] = scaled;
        else {
          const smooth = f32(f32(f32(f32(1 / wavelen) * old) - f32(low)) / f32(high - low));
          out[j] = f32(f32(f32(f32(1 - smooth) * scaled) / f32(factor)) + f32(smooth * scaled));
        }
      }
      return { invFreq: out, attentionScaling: 1 };
    }
    case 'yarn': {
      const { factor, betaFast, betaSlow, originalMaxPositions: orig, truncate } = rope as Required<RopeConfig>;
      const pow = basePowers(rope.theta, rotaryDim);
      // The dims whose wavelength makes betaFast (resp. betaSlow) rotations over the pre-training context.
      const dimOf = (rotations: number): number => (rotaryDim * Math.log(orig / (rotations * 2 * Math.PI))) / (2 * Math.log(rope.theta));
      let low = dimOf(betaFast);
      let high = dimOf(betaSlow);
      if (truncate) [low, high] = [Math.floor(low), Math.ceil(high)];
      low = Math.max(low, 0);
      high = Math.min(high, rotaryDim - 1);
      if (low === high) high += 0.001; // transformers' guard against a zero-width ramp
      const out = new Float32Array(half);
      for (let j = 0; j < half; j++) {
        const ramp = Math.min(1, Math.max(0, f32(f32(j - f32(low)) / f32(high - low))));
        const extrapolation = f32(1 - ramp); // weight of the unscaled frequency
        const interpolated = f32(1 / f32(f32(factor) * pow[j]!));
        const extrapolated = f32(1 / pow[j]!);
        out[j] = f32(f32(interpolated * f32(1 - extrapolation)) + f32(extrapolated * extrapolation));
      }
      return { invFreq: out, attentionScaling: rope.attentionFactor! };
    }
    case 'longrope': {
      // Beyond the pre-training context the long factors, within it the short ones.
      const ext = seqLen > rope.originalMaxPositions! ? rope.longFactor! : rope.shortFactor!;
      if (ext.length !== half) throw new Error(`LongRoPE: ${ext.length} factors for ${half} rotary frequencies`);
      const pow = basePowers(rope.theta, rotaryDim);
      return { invFreq: pow.map((p, j) => f32(1 / f32(f32(ext[j]!) * p))), attentionScaling: rope.attentionFactor! };
    }
  }
}
