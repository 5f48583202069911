/**
 * Feature stores for transcoder features (any `TracingTranscoders`: a cross-layer transcoder, or
 * a set of per-layer transcoders), so the Graph view's node pane can show a feature's top
 * contexts, activation histogram and logit effects as the SAE pages do.
 *
 * Layer l's encoder is treated as one dictionary read at its input hook (`inputHook(l)`): each
 * layer gets its own `FeatureCollector` and its own store, in the store format
 * `FeatureStoreReader` reads, at `featureStoreDir(dir, l)` (DIR/features/layer-l, beside the
 * transcoder files). One forward pass per batch caches every layer's input, so all layers are
 * collected together. A store's JSON holds `transcoders.weights_sha256`, the digest of the
 * weights its numbers depend on (`layerWeightsDigest`), so a store is refused for other
 * transcoders.
 *
 * Logit effects of a feature of layer s: the sum of its decoder rows over the layers it writes to
 * (sum_{t >= s} W_dec[s->t] for a CLT, W_dec[s->s] for a per-layer transcoder), through the
 * unembedding with the final norm's weight folded in. This is the direct path only, the same
 * approximation the SAE pages take: every write lands in the residual stream, and what later
 * attention and MLP layers make of it, and the final norm's scale, are left out.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { HookedTransformer } from '../../model/hooked.js';
import { scalar, type Tensor } from '../../tensor/index.js';
import { planContexts, specialTokenIds, type TokenSource } from '../contexts.js';
import { FeatureCollector, type CollectorArray, type CollectorSnapshot } from '../features/collector.js';
import { decoderLogitEffects } from '../features/logit-effects.js';
import {
  collectionFingerprint,
  finishStore,
  runCollectionBatches,
  saveFeatureStore,
  type CollectionRunOptions,
  type FeatureStore,
  type FeatureStoreMeta,
} from '../features/store.js';
import type { TracingTranscoders } from './types.js';

/** The store of layer `layer`'s features of the transcoders in `dir`: DIR/features/layer-{layer}. */
export function featureStoreDir(dir: string, layer: number): string {
  return join(dir, 'features', `layer-${layer}`);
}

/** Options of `collectTranscoderFeatures` (those of `collectFeatures` that apply; contexts default to 128 tokens with BOS). */
export interface CollectTranscoderFeaturesOptions extends CollectionRunOptions {
  /** Recorded in the JSON. */
  transcodersPath?: string | null;
}

/**
 * sha256 (hex) of the weights layer `layer`'s store depends on: its encoder (W_enc, b_enc,
 * threshold), its decoders into every layer it writes, and the input hook it reads.
 */
export function layerWeightsDigest(tc: TracingTranscoders, layer: number): string {
  const hash = createHash('sha256');
  hash.update(`${tc.activation}\0${tc.k ?? ''}\0${tc.crossLayer}\0${tc.inputHook(layer)}\0`);
  const parts: [string, Tensor | null][] = [
    ['W_enc', tc.wEnc(layer)],
    ['b_enc', tc.bEnc(layer)],
    ['threshold', tc.threshold(layer)],
  ];
  for (const t of targetsOf(tc, layer)) parts.push([`W_dec->${t}`, tc.wDec(layer, t)]);
  for (const [name, t] of parts) {
    hash.update(`${name}\0`);
    if (!t) continue;
    const data = t.cast('float32').dataSync() as Float32Array;
    hash.update(`[${t.shape.join(',')}]\0`);
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}

/** The layers a feature of `source` writes to: source..nLayers-1 for a CLT, [source] otherwise. */
function targetsOf(tc: TracingTranscoders, source: number): number[] {
  return tc.crossLayer ? Array.from({ length: tc.nLayers - source }, (_, i) => source + i) : [source];
}

/**
 * The logit effects of layer `source`'s features: sum_t W_dec[source->t] [width, d_out], written
 * at `outputHook(source)` (every target writes the residual stream the same way), through the
 * unembedding (see the file comment for the approximation).
 */
function layerLogitEffects(model: HookedTransformer, tc: TracingTranscoders, source: number, n: number) {
  const targets = targetsOf(tc, source);
  let sum = scalar(0, 'float32').expand([tc.widths[source]!, tc.dOut]);
  for (const t of targets) sum = sum.add(tc.wDec(source, t));
  const label = targets.length === 1 ? `W_dec[${source}->${source}]` : `sum_{t=${source}..${targets.at(-1)}} W_dec[${source}->t]`;
  return decoderLogitEffects(model, sum, { name: tc.outputHook(source), head: null }, n, label);
}

/**
 * Runs `model` over batches of contexts from `tokens`, encodes every layer's input with the
 * transcoders, and collects each layer's features into its own store (`FeatureStore[]`, index =
 * layer). Phases:
 * 1. check the pair (every input hook is a hook point of the model, d_in = d_model) and plan the
 *    contexts (`planContexts`);
 * 2. for each batch, one forward pass caching every layer's input hook; encode layer l's input
 *    and feed the activations to layer l's `FeatureCollector` (special tokens left out);
 *    checkpoint every layer's collector together every `everyBatches` batches;
 * 3. each layer's logit effects (`layerLogitEffects`);
 * 4. each layer's store JSON, with `transcoders` naming the layer and its weights' digest.
 */
export function collectTranscoderFeatures(
  model: HookedTransformer,
  tc: TracingTranscoders,
  tokens: TokenSource,
  options: CollectTranscoderFeaturesOptions = {},
): FeatureStore[] {
  const L = tc.nLayers;
  const hooks = Array.from({ length: L }, (_, l) => tc.inputHook(l));
  const known = new Set(model.hookNames);
  hooks.forEach((h, l) => {
    if (!known.has(h))
      throw new Error(`collectTranscoderFeatures: transcoder layer ${l} reads '${h}', which is not a hook point of ${model}`);
  });
  if (tc.dIn !== model.cfg.dModel)
    throw new Error(`collectTranscoderFeatures: the transcoders read d_in ${tc.dIn}, the model's d_model is ${model.cfg.dModel}`);
  const requested = options.contextSize ?? 128;
  const plan = planContexts(tokens, {
    contextSize: model.cfg.positional === 'learned' || !model.allowLongContext ? Math.min(requested, model.cfg.nCtx) : requested,
    batchSize: options.batchSize ?? 8,
    ...(options.batches !== undefined ? { batches: options.batches } : {}),
    prependBos: options.prependBos ?? model.cfg.bosTokenId !== null,
    bosTokenId: model.cfg.bosTokenId,
    ...(options.description !== undefined ? { description: options.description } : {}),
  });
  const excluded = specialTokenIds(model, options.excludeSpecial ?? true);
  const collectorOptions = { ...options, excludedTokenIds: excluded };
  let collectors = tc.widths.map((w) => new FeatureCollector(w, collectorOptions));
  const digests = Array.from({ length: L }, (_, l) => layerWeightsDigest(tc, l));
  const positions = runCollectionBatches(plan, options, {
    command: 'glassbox clt features',
    fingerprint: () =>
      collectionFingerprint({ transcoders: { widths: tc.widths, hooks, weights_sha256: digests } }, plan, collectors[0]!, excluded),
    snapshot: () => mergeSnapshots(collectors),
    restore: (saved, where) => {
      collectors = splitSnapshot(saved, L).map((s, l) =>
        FeatureCollector.restore(tc.widths[l]!, collectorOptions, s, `${where} (layer ${l})`),
      );
    },
    collect: (batch) => {
      const { cache } = model.runWithCache(batch.tokens, { names: hooks });
      for (let l = 0; l < L; l++) {
        const acts = tc.encode(l, cache.get(hooks[l]!)).cast('float32').dataSync() as Float32Array;
        collectors[l]!.add(batch.ids, acts, batch.contextSize, batch.firstContext);
      }
    },
  });
  const n = options.logitEffects ?? 10;
  return collectors.map((c, l) =>
    finishStore(model, {
      plan,
      excluded,
      positions,
      stats: c.stats(),
      effects: n > 0 ? layerLogitEffects(model, tc, l, n) : { reason: 'not computed (logitEffects: 0)' },
      dictionary: {
        architecture: `${tc.crossLayer ? 'clt' : 'transcoder'}-${tc.activation}`,
        hook_name: hooks[l]!,
        hook_name_out: tc.outputHook(l),
        hook_head_index: null,
        d_in: tc.dIn,
        d_sae: tc.widths[l]!,
        d_out: tc.dOut,
        path: options.transcodersPath ?? null,
      },
      transcoders: {
        layer: l,
        n_layers: L,
        cross_layer: tc.crossLayer,
        weights_sha256: digests[l]!,
        path: options.transcodersPath ?? null,
      },
      modelName: options.modelName ?? null,
    }),
  );
}

/** Every layer's collector state as one snapshot (arrays named `layer{l}.{name}`; the counters are the same for all layers). */
function mergeSnapshots(collectors: readonly FeatureCollector[]): {
  counters: CollectorSnapshot['counters'];
  arrays: Record<string, CollectorArray>;
} {
  const arrays: Record<string, CollectorArray> = {};
  let counters: CollectorSnapshot['counters'] | null = null;
  collectors.forEach((c, l) => {
    const s = c.snapshot();
    counters ??= s.counters;
    for (const [name, a] of Object.entries(s.arrays)) arrays[`layer${l}.${name}`] = a;
  });
  return { counters: counters!, arrays };
}

/** The per-layer snapshots of a merged one (a missing array is reported by `FeatureCollector.restore`). */
function splitSnapshot(merged: CollectorSnapshot, layers: number): CollectorSnapshot[] {
  const all = merged.arrays as unknown as Record<string, CollectorArray>;
  return Array.from({ length: layers }, (_, l) => {
    const arrays: Record<string, CollectorArray> = {};
    const prefix = `layer${l}.`;
    for (const [name, a] of Object.entries(all)) if (name.startsWith(prefix)) arrays[name.slice(prefix.length)] = a;
    return { counters: merged.counters, arrays: arrays as unknown as CollectorSnapshot['arrays'] };
  });
}

/** Writes each layer's store to `featureStoreDir(dir, l)`; returns their JSONs. */
export function saveTranscoderFeatureStores(stores: readonly FeatureStore[], dir: string): FeatureStoreMeta[] {
  return stores.map((s, l) => saveFeatureStore(s, featureStoreDir(dir, l)));
}

/**
 * Refuses a store (its features.json's `meta`, at `where`) that was not built for layer `layer` of
 * `tc`: no `transcoders` field (an SAE's store), another layer, another width, or weights whose
 * digest differs. The error names the file and the field.
 */
export function checkTranscoderStore(meta: FeatureStoreMeta, tc: TracingTranscoders, layer: number, where: string, digest?: string): void {
  const t = meta.transcoders;
  if (!t)
    throw new Error(
      `${where}: field 'transcoders' is missing: this is not a store of transcoder features ('glassbox clt features' writes them)`,
    );
  if (t.layer !== layer)
    throw new Error(`${where}: field 'transcoders.layer' is ${t.layer}, but the store sits where layer ${layer}'s belongs`);
  if (meta.sae.d_sae !== tc.widths[layer])
    throw new Error(
      `${where}: field 'sae.d_sae' is ${meta.sae.d_sae}, but layer ${layer} of the transcoders has ${tc.widths[layer]} features`,
    );
  const mine = digest ?? layerWeightsDigest(tc, layer);
  if (t.weights_sha256 !== mine)
    throw new Error(
      `${where}: field 'transcoders.weights_sha256' (${String(t.weights_sha256).slice(0, 12)}...) is not that of these transcoders' layer ${layer} (${mine.slice(0, 12)}...): the store was built for other transcoders; rebuild it with 'glassbox clt features'`,
    );
}
