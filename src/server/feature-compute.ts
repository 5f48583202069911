/**
 * The model worker's side of the attached dictionaries (features.ts is the HTTP thread's): the
 * SAEs cross to the worker as their config and one copy of each parameter's storage, and the
 * worker runs the computations that need the model: the features firing on a prompt, steering
 * along one feature, and a feature's logit effects when the SAE has no feature store.
 */
import { logitEffects, promptFeatureActs, steerWithFeature, topFeaturesPerToken } from '../sae/features/index.js';
import { Sae } from '../sae/sae.js';
import type { SaeConfig } from '../sae/config.js';
import type { SaeParams } from '../sae/types.js';
import { Tensor } from '../tensor/index.js';
import type { DType, TypedArray } from '../tensor/dtype.js';
import { samplingOf, type Computer, type Sampling } from './compute.js';

/** An SAE as it crosses to the worker: its config, and its parameters' storage (transferred). */
export interface PackedSae {
  cfg: SaeConfig;
  params: { name: string; shape: number[]; dtype: DType; buffer: TypedArray }[];
}

/** Copies of the SAEs' parameters to send to the worker, and the buffers to transfer. */
export function packSaes(saes: readonly Sae[]): { packed: PackedSae[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const packed = saes.map((sae) => ({
    cfg: sae.cfg,
    params: Object.entries(sae.params).map(([name, t]) => {
      const buffer = t._storage().slice() as TypedArray;
      transfer.push(buffer.buffer as ArrayBuffer);
      return { name, shape: [...t.shape], dtype: t.dtype, buffer };
    }),
  }));
  return { packed, transfer };
}

function unpackSae(p: PackedSae): Sae {
  const params: SaeParams = {};
  for (const t of p.params) params[t.name] = Tensor._concrete(t.shape, t.dtype, t.buffer);
  return new Sae(p.cfg, params, { where: 'the attached SAE' });
}

/** The worker's SAEs, by their index in the server's list. */
let saes: Sae[] = [];
/** Logit effects by SAE, computed on first use (for SAEs without a feature store). */
const effects = new Map<number, ReturnType<typeof logitEffects>>();

/** Called once by the worker with what the server sent. */
export function installSaes(packed: readonly PackedSae[] | undefined): void {
  saes = (packed ?? []).map(unpackSae);
  effects.clear();
}

function saeAt(i: number): Sae {
  const sae = saes[i];
  if (!sae) throw new Error(`internal: no attached SAE number ${i}`);
  return sae;
}

export interface FiresArgs {
  tokens: number[];
  /** Indices of the SAEs to run. */
  saes: number[];
  topK: number;
  highlight?: { sae: number; feature: number };
}
export interface FiresRaw {
  /** Per SAE run: per token, feature ids and activations (strongest first). */
  top: { features: number[]; acts: number[] }[][];
  highlight: number[] | null;
}

/** Each SAE's activations on the prompt (right-padded to a bucket length), and each token's top features. */
export function featureFires(c: Computer, a: FiresArgs): FiresRaw {
  const S = c.buckets.length(a.tokens.length);
  let highlight: number[] | null = null;
  const top = a.saes.map((i) => {
    const sae = saeAt(i);
    const acts = promptFeatureActs(c.model, sae, a.tokens, S);
    if (a.highlight && a.highlight.sae === i) {
      const f = a.highlight.feature;
      highlight = a.tokens.map((_, p) => acts[p * sae.dSae + f]!);
    }
    return topFeaturesPerToken(acts, sae.dSae, a.topK).map((row) => ({ features: row.map((r) => r.feature), acts: row.map((r) => r.act) }));
  });
  if (a.highlight && highlight === null) {
    const sae = saeAt(a.highlight.sae);
    const acts = promptFeatureActs(c.model, sae, a.tokens, S);
    highlight = a.tokens.map((_, p) => acts[p * sae.dSae + a.highlight!.feature]!);
  }
  return { top, highlight };
}

export interface FeatureSteerArgs extends Sampling {
  sae: number;
  feature: number;
  prompt: number[];
  scale: number;
}

/** The prompt (left-padded to a bucket length, the KV cache a bucket long) continued without and with the feature. */
export function featureSteer(c: Computer, a: FeatureSteerArgs): { unsteered: number[]; steered: number[] } {
  const S = c.buckets.length(a.prompt.length);
  return steerWithFeature(c.model, saeAt(a.sae), a.feature, a.prompt, {
    scale: a.scale,
    ...samplingOf(a),
    paddedLength: S,
    cacheLength: c.buckets.length(S + a.maxNewTokens),
  });
}

export interface FeatureLogitsArgs {
  sae: number;
  feature: number;
}
export type FeatureLogitsRaw =
  { path: string; posIds: number[]; posValues: number[]; negIds: number[]; negValues: number[] } | { reason: string };

/** One feature's logit effects (the SAE's all computed once, then kept). */
export function featureLogits(c: Computer, a: FeatureLogitsArgs): FeatureLogitsRaw {
  let e = effects.get(a.sae);
  if (!e) {
    e = logitEffects(c.model, saeAt(a.sae), 10);
    effects.set(a.sae, e);
  }
  if ('reason' in e) return { reason: e.reason };
  const { n } = e;
  const row = <T extends ArrayLike<number>>(arr: T) => Array.from({ length: n }, (_, j) => arr[a.feature * n + j]!);
  return { path: e.path, posIds: row(e.posIds), posValues: row(e.posValues), negIds: row(e.negIds), negValues: row(e.negValues) };
}
