/**
 * Contexts where a feature does not fire, for detection scoring: a pool of context windows taken
 * from the store's top contexts (of many features), each run through the model and the SAE as
 * its own context, so for every feature it is known, not assumed, which windows leave it at zero.
 *
 * 1. pick up to `size` full windows from the store, spread over the features (deterministic);
 * 2. run them in batches (BOS prepended as the SAE was trained) and keep each window's max
 *    activation per feature, [size, d_sae], over its own tokens (BOS left out);
 * 3. for a feature, offer the windows whose max is exactly 0, in a per-feature shuffled order.
 */
import type { HookedTransformer } from '../../model/hooked.js';
import { tensor } from '../../tensor/index.js';
import { defaultPrependBos, runSaeOnBatch } from '../evals.js';
import type { FeatureStore } from '../features/store.js';
import type { Sae } from '../sae.js';
import type { TextContext } from './explain.js';

/** Options of `nonActivatingPool`. */
export interface PoolOptions {
  /** Windows in the pool (default 64). */
  size?: number;
  /** Windows per forward pass (default 16). */
  batchSize?: number;
  seed?: number;
}

/** The pool: its windows and, per window, each feature's max activation. */
export interface NonActivatingPool {
  windows: TextContext[];
  /** [windows, d_sae] row-major. */
  maxActs: Float32Array;
  /** Up to `count` windows where `feature` stays at 0. */
  pick: (feature: number, count: number) => TextContext[];
}

/** Builds the pool (see the file's doc). */
export function nonActivatingPool(model: HookedTransformer, sae: Sae, store: FeatureStore, options: PoolOptions = {}): NonActivatingPool {
  const s = store.stats;
  const d = s.dSae;
  if (sae.dSae !== d) throw new Error(`the SAE has ${sae.dSae} features, the feature store ${d}: they do not belong together`);
  const W = s.window;
  const size = options.size ?? 64;
  // 1. candidate windows: the k-th top context of features taken round-robin
  const picked: Int32Array[] = [];
  const seen = new Set<string>();
  for (let rank = 0; rank < s.topK && picked.length < size; rank++) {
    const step = Math.max(1, Math.floor(d / size));
    for (let f0 = 0; f0 < step && picked.length < size; f0++)
      for (let f = (f0 + rank * 7) % step; f < d && picked.length < size; f += step) {
        const o = f * s.topK + rank;
        if (s.topContexts[o]! < 0) continue;
        const ids = s.topTokens.subarray(o * W, (o + 1) * W);
        if (ids.some((t) => t < 0)) continue;
        const key = ids.join(',');
        if (seen.has(key)) continue;
        seen.add(key);
        picked.push(Int32Array.from(ids));
      }
  }
  // 2. run them
  const bos = defaultPrependBos(model, sae) ? model.cfg.bosTokenId : null;
  const offset = bos === null ? 0 : 1;
  const S = W + offset;
  const maxActs = new Float32Array(picked.length * d);
  const B = options.batchSize ?? 16;
  for (let start = 0; start < picked.length; start += B) {
    const rows = picked.slice(start, start + B);
    const ids = new BigInt64Array(rows.length * S);
    rows.forEach((r, i) => {
      if (bos !== null) ids[i * S] = BigInt(bos);
      r.forEach((t, j) => (ids[i * S + offset + j] = BigInt(t)));
    });
    const acts = runSaeOnBatch(model, sae, tensor(ids, [rows.length, S], 'int64'))
      .acts.cast('float32')
      .dataSync() as Float32Array;
    for (let i = 0; i < rows.length; i++) {
      const m = maxActs.subarray((start + i) * d, (start + i + 1) * d);
      for (let p = offset; p < S; p++) {
        const a = acts.subarray((i * S + p) * d, (i * S + p + 1) * d);
        for (let f = 0; f < d; f++) if (a[f]! > m[f]!) m[f] = a[f]!;
      }
    }
  }
  const str = (id: number): string => store.strings?.get(id) ?? `<#${id}>`;
  const windows: TextContext[] = picked.map((r) => ({ tokens: Array.from(r, str), acts: Array.from(r, () => 0) }));
  const seed = options.seed ?? 0;
  return {
    windows,
    maxActs,
    pick(feature, count) {
      const ok: number[] = [];
      for (let w = 0; w < windows.length; w++) if (maxActs[w * d + feature] === 0) ok.push(w);
      // a per-feature rotation, so features do not all get the same windows
      const shift = ok.length ? (feature * 2654435761 + seed) % ok.length : 0;
      return Array.from({ length: Math.min(count, ok.length) }, (_, i) => windows[ok[(shift + i) % ok.length]!]!);
    },
  };
}
