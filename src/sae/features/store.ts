/**
 * Feature stores: every feature's statistics over a corpus (`collectFeatures`), kept in a
 * directory with
 * - `features.safetensors`: top_tokens [d_sae, k, window] int32 (-1 past a context's ends),
 *   top_acts [d_sae, k, window] f32, top_values [d_sae, k] f32, top_contexts [d_sae, k] f64 (-1:
 *   empty), top_positions [d_sae, k] i32, histogram [d_sae, bins] f64, fire_count [d_sae] f64,
 *   act_sum [d_sae] f64, max_act [d_sae] f32, density [d_sae] f32, and, when the hook point
 *   writes linearly to the residual stream, logit_pos_ids / logit_neg_ids [d_sae, n] i32 and
 *   logit_pos_values / logit_neg_values [d_sae, n] f32; and, when collected with samples (every
 *   store since they were added; older ones open without), each feature's uniform sample of the
 *   tokens it fired on: sample_values [d_sae, s] f32 (largest first), sample_contexts [d_sae, s] f64
 *   (-1: empty), sample_positions [d_sae, s] i32, sample_tokens / sample_acts [d_sae, s, window];
 * - `features.json`: the format and version, the SAE, model and corpus description, the options
 *   (k, window, histogram bin edges), the strings of every token id the tensors mention, and the
 *   sha256 of features.safetensors (so a tensors file from another run is refused).
 *
 * Why safetensors + JSON rather than a database: SQLite or DuckDB would need native modules (a
 * build step on every platform, and none in the browser), while safetensors is already the
 * project's tensor format (readable from Python too); a feature page is a few slices of fixed-shape
 * arrays, so indexing needs no query engine. Both files are written atomically, the tensors first,
 * then the JSON that vouches for them.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { SafetensorsError, loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import type { HookedTransformer } from '../../model/hooked.js';
import { tensor, type Tensor } from '../../tensor/index.js';
import { defaultContextSize, defaultPrependBos, runSaeOnBatch } from '../evals.js';
import { planContexts, specialTokenIds, type ContextBatch, type ContextPlan, type TokenSource } from '../contexts.js';
import { treeDigest } from '../../train/fingerprint.js';
import { loadCollectionCheckpoint, removeCollectionCheckpoint, saveCollectionCheckpoint } from './checkpoint.js';
import { readJsonFile } from '../formats.js';
import type { Sae } from '../sae.js';
import { checkSaeModel } from '../attach.js';
import { refuseNonFiniteParams } from '../common.js';
import { FeatureCollector, type CollectorSnapshot, type FeatureCollectorOptions, type FeatureStats } from './collector.js';
import { logitEffects, type LogitEffects } from './logit-effects.js';

/** The JSON file of a feature store. */
export const FEATURES_JSON = 'features.json';
/** The tensors file of a feature store. */
export const FEATURES_TENSORS = 'features.safetensors';
const FORMAT = 'glassbox-feature-store';
const VERSION = 1;

/** features.json. */
export interface FeatureStoreMeta {
  format: typeof FORMAT;
  version: typeof VERSION;
  tensorsFile: string;
  /** sha256 of features.safetensors (hex). */
  tensorsSha256: string;
  sae: {
    architecture: string;
    hook_name: string | null;
    hook_name_out: string | null;
    hook_head_index: number | null;
    d_in: number;
    d_sae: number;
    d_out: number;
    /** Where it was loaded from, when known. */
    path: string | null;
  };
  /**
   * Present in a store of one layer of a transcoder set (`collectTranscoderFeatures`): the layer,
   * and the sha256 of the weights its numbers depend on (that layer's encoder and its decoders),
   * so a store is never shown for other transcoders.
   */
  transcoders?: { layer: number; n_layers: number; cross_layer: boolean; weights_sha256: string; path: string | null };
  model: { name: string | null; family: string; n_layers: number; d_model: number; d_vocab: number };
  corpus: {
    description: string;
    contexts: number;
    context_size: number;
    prepend_bos: boolean;
    /** Positions run through the model. */
    tokens: number;
    /** Positions counted (special tokens left out). */
    tokens_counted: number;
    excluded_token_ids: number[];
  };
  top_k: number;
  window: { before: number; after: number };
  histogram: { scale: 'log'; min: number; max: number; bins: number; edges: number[] };
  logit_effects: { n: number; path: string } | { n: 0; reason: string };
  /**
   * Each feature's reservoir sample of the tokens it fired on: slots per feature and the draws'
   * seed. Absent (or null) in stores written before samples were collected.
   */
  samples?: { n: number; seed: number } | null;
  /** The string of every token id the tensors mention (null when the model has no tokenizer). */
  token_strings: { ids: number[]; strings: string[] } | null;
}

/** A feature store in memory: the JSON and the statistics. */
export interface FeatureStore {
  meta: FeatureStoreMeta;
  stats: FeatureStats;
  /** [d_sae] firing density over the counted tokens. */
  density: Float32Array;
  logits: LogitEffects | null;
  /** Token strings by id (from meta.token_strings). */
  strings: Map<number, string> | null;
}

/** What a feature collection run takes, whatever it collects from (an SAE, or transcoders' layers). */
export interface CollectionRunOptions extends FeatureCollectorOptions {
  /** Batches to run (default: until the source ends). */
  batches?: number;
  /** Contexts per batch (default 8). */
  batchSize?: number;
  /** Tokens per context, BOS included (default: the SAE's context_size, else 128; at most the model's context). */
  contextSize?: number;
  /** Start each context with BOS (default: the SAE's prepend_bos, else true, when the model has a BOS token). */
  prependBos?: boolean;
  /** Special tokens left out: true (default) for the model's BOS/EOS/pad ids, false, or a list. Overrides excludedTokenIds. */
  excludeSpecial?: boolean | readonly number[];
  /** Logit-effect tokens per side (default 10; 0 for none). */
  logitEffects?: number;
  /** Recorded in the JSON. */
  modelName?: string | null;
  description?: string;
  onBatch?: (done: number, total: number) => void;
  /**
   * Write the collector's state to `dir` every `everyBatches` batches (default 50), so that a run
   * stopped midway resumes (`resume`) instead of starting over (see checkpoint.ts). The
   * checkpoint is removed once the collection is done.
   */
  checkpoint?: { dir: string; everyBatches?: number };
  /**
   * Continue from the checkpoint in `checkpoint.dir` when there is one (a checkpoint of another run
   * is refused). Without it an existing checkpoint is refused too, so nothing is overwritten unasked.
   */
  resume?: boolean;
}

/** Options of `collectFeatures`. */
export interface CollectFeaturesOptions extends CollectionRunOptions {
  /** Recorded in the JSON. */
  saePath?: string | null;
  /** Collect even when the SAE's cfg.json names another model (see `checkSaeModel`). */
  allowModelMismatch?: boolean;
}

/**
 * Runs `model` and `sae` over batches of contexts from `tokens` and collects every feature's
 * top-k contexts, histogram, density and logit effects. Streams:
 * 1. plan the contexts (`planContexts`: the SAE's context size and BOS handling by default);
 * 2. for each batch, run the model to the SAE's hook point and the SAE, and feed the feature
 *    activations to a `FeatureCollector` (special tokens left out);
 * 3. compute the logit effects (`logitEffects`; none when the hook point does not write linearly
 *    to the residual stream);
 * 4. describe the run in the store's JSON, with the strings of every token id it mentions.
 */
export function collectFeatures(
  model: HookedTransformer,
  sae: Sae,
  tokens: TokenSource,
  options: CollectFeaturesOptions = {},
): FeatureStore {
  checkSaeModel(model, sae, options);
  refuseNonFiniteParams(sae.params, 'collectFeatures');
  const plan = planContexts(tokens, {
    contextSize: defaultContextSize(model, sae, options.contextSize),
    batchSize: options.batchSize ?? 8,
    ...(options.batches !== undefined ? { batches: options.batches } : {}),
    prependBos: defaultPrependBos(model, sae, options.prependBos),
    bosTokenId: model.cfg.bosTokenId,
    ...(options.description !== undefined ? { description: options.description } : {}),
  });
  const excluded = specialTokenIds(model, options.excludeSpecial ?? true);
  const collectorOptions = { ...options, excludedTokenIds: excluded };
  let collector = new FeatureCollector(sae.dSae, collectorOptions);
  const positions = runCollectionBatches(plan, options, {
    command: 'glassbox sae features',
    fingerprint: () =>
      collectionFingerprint(
        {
          architecture: sae.cfg.architecture,
          hook_name: sae.cfg.hook_name,
          hook_head_index: sae.cfg.hook_head_index ?? null,
          d_in: sae.dIn,
          d_sae: sae.dSae,
          weights_sha256: treeDigest(sae.params),
        },
        plan,
        collector,
        excluded,
      ),
    snapshot: () => collector.snapshot(),
    restore: (saved, where) => {
      collector = FeatureCollector.restore(sae.dSae, collectorOptions, saved, where);
    },
    collect: (batch) => {
      const { acts } = runSaeOnBatch(model, sae, batch.tokens);
      collector.add(batch.ids, acts.cast('float32').dataSync() as Float32Array, batch.contextSize, batch.firstContext);
    },
  });
  const n = options.logitEffects ?? 10;
  const effects = n > 0 ? logitEffects(model, sae, n) : { reason: 'not computed (logitEffects: 0)' };
  return finishStore(model, {
    plan,
    excluded,
    positions,
    stats: collector.stats(),
    effects,
    dictionary: {
      architecture: sae.cfg.architecture,
      hook_name: sae.cfg.hook_name,
      hook_name_out: sae.isTranscoder ? (sae.cfg.hook_name_out ?? null) : null,
      hook_head_index: sae.cfg.hook_head_index ?? null,
      d_in: sae.dIn,
      d_sae: sae.dSae,
      d_out: sae.dOut,
      path: options.saePath ?? null,
    },
    modelName: options.modelName ?? null,
  });
}

/** @internal What `runCollectionBatches` does with the collector(s) of one collection. */
export interface CollectionJob {
  /** The command named when an existing checkpoint is refused, e.g. 'glassbox sae features'. */
  command: string;
  /** What a checkpoint must agree on to be resumed (`collectionFingerprint`); asked before any restore. */
  fingerprint: () => unknown;
  /** The collector state to checkpoint (`saveCollectionCheckpoint`'s snapshot). */
  snapshot: () => Parameters<typeof saveCollectionCheckpoint>[1];
  /** Replaces the collector state with a checkpoint's (`where`: the checkpoint directory, for errors). */
  restore: (saved: CollectorSnapshot, where: string) => void;
  /** Runs the model on one batch and feeds its feature activations to the collector(s). */
  collect: (batch: ContextBatch) => void;
}

/**
 * @internal The batch loop of a feature collection, shared by the SAE and the transcoder
 * collectors (they differ only in what `job.collect` runs per batch). Returns the positions run
 * through the model: the whole batches, each row `plan.contextSize` long.
 * 1. check `checkpoint.everyBatches` (default 50) and fingerprint the run when checkpointing;
 * 2. restore a checkpoint of this run (refused without `resume`, so nothing is overwritten unasked);
 * 3. for each remaining batch, `job.collect`, then checkpoint every `everyBatches` batches (not after
 *    the last) and report `onBatch(done, total)`;
 * 4. remove the checkpoint once every batch is collected.
 */
export function runCollectionBatches(
  plan: ContextPlan,
  options: Pick<CollectionRunOptions, 'checkpoint' | 'resume' | 'onBatch'>,
  job: CollectionJob,
): number {
  const total = Math.ceil(plan.contexts / plan.batchSize);
  let done = 0;
  const ckpt = options.checkpoint;
  const every = ckpt?.everyBatches ?? 50;
  if (ckpt && !(Number.isInteger(every) && every >= 1)) throw new Error(`checkpoint.everyBatches must be a positive integer, got ${every}`);
  const run = ckpt ? job.fingerprint() : null;
  if (ckpt) {
    const saved = loadCollectionCheckpoint(ckpt.dir, run);
    if (saved && !options.resume)
      throw new Error(
        `${ckpt.dir}: holds a checkpoint of this collection (${saved.batchesDone} of ${total} batches); resume it ('${job.command} --resume', or resume: true), or delete it to start over`,
      );
    if (saved) {
      job.restore(saved.snapshot, ckpt.dir);
      done = saved.batchesDone;
      options.onBatch?.(done, total);
    }
  }
  let positions = Math.min(done * plan.batchSize, plan.contexts) * plan.contextSize;
  for (let first = done * plan.batchSize; first < plan.contexts; first += plan.batchSize) {
    const batch = plan.batch(first, Math.min(plan.batchSize, plan.contexts - first));
    job.collect(batch);
    positions += batch.ids.length;
    done++;
    if (ckpt && done % every === 0 && done < total) saveCollectionCheckpoint(ckpt.dir, job.snapshot(), done, run);
    options.onBatch?.(done, total);
  }
  if (ckpt) removeCollectionCheckpoint(ckpt.dir);
  return positions;
}

/** What a finished collection hands `finishStore`. */
export interface FinishedCollection {
  plan: ContextPlan;
  excluded: Iterable<number>;
  /** Positions run through the model. */
  positions: number;
  stats: FeatureStats;
  effects: LogitEffects | { reason: string };
  dictionary: FeatureStoreMeta['sae'];
  modelName: string | null;
  /** For one layer of a transcoder set: which (see `FeatureStoreMeta.transcoders`). */
  transcoders?: FeatureStoreMeta['transcoders'];
}

/**
 * @internal The store of a finished collection (also for the transcoder collector,
 * src/sae/clt/features.ts): its JSON describes the dictionary, the model and the corpus, with the
 * strings of every token id the tensors mention.
 */
export function finishStore(model: HookedTransformer, c: FinishedCollection): FeatureStore {
  const { plan, stats, effects } = c;
  const logits = 'reason' in effects ? null : effects;
  const meta: FeatureStoreMeta = {
    format: FORMAT,
    version: VERSION,
    tensorsFile: FEATURES_TENSORS,
    tensorsSha256: '',
    sae: c.dictionary,
    ...(c.transcoders ? { transcoders: c.transcoders } : {}),
    model: {
      name: c.modelName,
      family: model.cfg.family,
      n_layers: model.cfg.nLayers,
      d_model: model.cfg.dModel,
      d_vocab: model.cfg.dVocab,
    },
    corpus: {
      description: plan.description,
      contexts: plan.contexts,
      context_size: plan.contextSize,
      prepend_bos: plan.prependBos,
      tokens: c.positions,
      tokens_counted: stats.tokens,
      excluded_token_ids: [...c.excluded].sort((a, b) => a - b),
    },
    top_k: stats.topK,
    window: { before: stats.before, after: stats.after },
    histogram: {
      scale: 'log',
      min: stats.histogram.min,
      max: stats.histogram.max,
      bins: stats.histogram.bins,
      edges: stats.histogram.edges,
    },
    logit_effects: logits ? { n: logits.n, path: logits.path } : { n: 0, reason: (effects as { reason: string }).reason },
    samples: stats.samples ? { n: stats.samples.n, seed: stats.samples.seed } : null,
    token_strings: null,
  };
  if (model.tokenizer) {
    const ids = new Set<number>();
    for (const id of stats.topTokens) if (id >= 0) ids.add(id);
    if (stats.samples) for (const id of stats.samples.tokens) if (id >= 0) ids.add(id);
    if (logits) for (const arr of [logits.posIds, logits.negIds]) for (const id of arr) ids.add(id);
    const sorted = [...ids].sort((a, b) => a - b);
    meta.token_strings = { ids: sorted, strings: model.tokenizer.toStrTokens(sorted) };
  }
  return makeStore(meta, stats, logits);
}

/**
 * @internal What a collection checkpoint must agree on to be resumed: the dictionary (`sae`, its
 * weights' digest included), the contexts, the collector.
 */
export function collectionFingerprint(sae: unknown, plan: ContextPlan, c: FeatureCollector, excluded: Iterable<number>): unknown {
  return {
    sae,
    contexts: {
      description: plan.description,
      available: plan.available,
      contexts: plan.contexts,
      context_size: plan.contextSize,
      batch_size: plan.batchSize,
      prepend_bos: plan.prependBos,
    },
    collector: {
      top_k: c.topK,
      before: c.before,
      after: c.after,
      histogram: c.bins,
      excluded: [...excluded].sort((a, b) => a - b),
      samples: c.samples,
      sample_seed: c.sampleSeed,
    },
  };
}

function makeStore(meta: FeatureStoreMeta, stats: FeatureStats, logits: LogitEffects | null, strings = tokenStrings(meta)): FeatureStore {
  const density = new Float32Array(stats.dSae);
  if (stats.tokens > 0) for (let f = 0; f < stats.dSae; f++) density[f] = stats.fireCount[f]! / stats.tokens;
  return { meta, stats, density, logits, strings };
}

/** @internal Token strings by id, from features.json's token_strings (null when it has none). */
export function tokenStrings(meta: FeatureStoreMeta): Map<number, string> | null {
  const ts = meta.token_strings;
  return ts ? new Map(ts.ids.map((id, i) => [id, ts.strings[i]!])) : null;
}

/** The store's tensors by name. */
function storeTensors(store: FeatureStore): Record<string, Tensor> {
  const s = store.stats;
  const [d, k, W, B] = [s.dSae, s.topK, s.window, s.histogram.bins];
  const out: Record<string, Tensor> = {
    top_tokens: tensor(s.topTokens, [d, k, W], 'int32'),
    top_acts: tensor(s.topActs, [d, k, W], 'float32'),
    top_values: tensor(s.topValues, [d, k], 'float32'),
    top_contexts: tensor(s.topContexts, [d, k], 'float64'),
    top_positions: tensor(s.topPositions, [d, k], 'int32'),
    histogram: tensor(s.histogramCounts, [d, B], 'float64'),
    fire_count: tensor(s.fireCount, [d], 'float64'),
    act_sum: tensor(s.actSum, [d], 'float64'),
    max_act: tensor(s.maxAct, [d], 'float32'),
    density: tensor(store.density, [d], 'float32'),
  };
  const sm = s.samples;
  if (sm && sm.n > 0) {
    out.sample_values = tensor(sm.values, [d, sm.n], 'float32');
    out.sample_contexts = tensor(sm.contexts, [d, sm.n], 'float64');
    out.sample_positions = tensor(sm.positions, [d, sm.n], 'int32');
    out.sample_tokens = tensor(sm.tokens, [d, sm.n, W], 'int32');
    out.sample_acts = tensor(sm.acts, [d, sm.n, W], 'float32');
  }
  const l = store.logits;
  if (l) {
    out.logit_pos_ids = tensor(l.posIds, [d, l.n], 'int32');
    out.logit_pos_values = tensor(l.posValues, [d, l.n], 'float32');
    out.logit_neg_ids = tensor(l.negIds, [d, l.n], 'int32');
    out.logit_neg_values = tensor(l.negValues, [d, l.n], 'float32');
  }
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Writes a store to `dir` (created if needed): features.safetensors, then features.json with the
 * tensors' sha256, each atomically. Returns the JSON as written.
 */
export function saveFeatureStore(store: FeatureStore, dir: string): FeatureStoreMeta {
  mkdirSync(dir, { recursive: true });
  const tensorsPath = join(dir, FEATURES_TENSORS);
  saveSafetensors(tensorsPath, storeTensors(store), { metadata: { format: FORMAT, version: String(VERSION) } });
  const meta: FeatureStoreMeta = { ...store.meta, tensorsFile: FEATURES_TENSORS, tensorsSha256: sha256(readFileSync(tensorsPath)) };
  writeFileAtomic(join(dir, FEATURES_JSON), `${JSON.stringify(meta, null, 1)}\n`);
  store.meta = meta;
  return meta;
}

/** A tensor of the store: name, shape and dtype, as features.json implies them. */
export type StoreTensor = [name: string, shape: number[], dtype: 'int32' | 'float32' | 'float64'];

/** @internal Every tensor features.safetensors must hold for `meta` (also for reader.ts). */
export function storeLayout(meta: FeatureStoreMeta): StoreTensor[] {
  const d = meta.sae.d_sae;
  const k = meta.top_k;
  const W = meta.window.before + 1 + meta.window.after;
  const out: StoreTensor[] = [
    ['top_tokens', [d, k, W], 'int32'],
    ['top_acts', [d, k, W], 'float32'],
    ['top_values', [d, k], 'float32'],
    ['top_contexts', [d, k], 'float64'],
    ['top_positions', [d, k], 'int32'],
    ['histogram', [d, meta.histogram.bins], 'float64'],
    ['fire_count', [d], 'float64'],
    ['act_sum', [d], 'float64'],
    ['max_act', [d], 'float32'],
    ['density', [d], 'float32'],
  ];
  if ('path' in meta.logit_effects) {
    const n = meta.logit_effects.n;
    out.push(['logit_pos_ids', [d, n], 'int32'], ['logit_pos_values', [d, n], 'float32']);
    out.push(['logit_neg_ids', [d, n], 'int32'], ['logit_neg_values', [d, n], 'float32']);
  }
  const sm = meta.samples;
  if (sm && sm.n > 0) {
    out.push(['sample_values', [d, sm.n], 'float32'], ['sample_contexts', [d, sm.n], 'float64'], ['sample_positions', [d, sm.n], 'int32']);
    out.push(['sample_tokens', [d, sm.n, W], 'int32'], ['sample_acts', [d, sm.n, W], 'float32']);
  }
  return out;
}

/** @internal features.json in `dir`, read and checked, and the path of the tensors file it vouches for (which must exist). */
export function openStoreJson(dir: string): { meta: FeatureStoreMeta; jsonPath: string; tensorsPath: string } {
  const jsonPath = join(dir, FEATURES_JSON);
  const raw = readJsonFile(jsonPath, {
    missing: `not found (a feature store directory holds ${FEATURES_JSON} and ${FEATURES_TENSORS})`,
    unreadable: 'cannot read the feature store description',
  });
  const meta = checkMeta(raw, jsonPath);
  const tensorsPath = join(dir, meta.tensorsFile);
  if (!existsSync(tensorsPath)) throw new Error(`${tensorsPath}: not found (the tensors of the feature store ${jsonPath} describes)`);
  return { meta, jsonPath, tensorsPath };
}

/** @internal Refuses a tensors file whose sha256 is not the one features.json vouches for. */
export function checkTensorsHash(hash: string, meta: FeatureStoreMeta, tensorsPath: string, jsonPath: string): void {
  if (hash !== meta.tensorsSha256)
    throw new Error(
      `${tensorsPath}: does not match ${jsonPath} (its sha256 is ${hash.slice(0, 12)}..., the JSON expects ${meta.tensorsSha256.slice(0, 12)}...): the files come from different runs, or one was changed`,
    );
}

/** @internal The error for a tensor whose dtype or shape is not what features.json implies. */
export function tensorMismatch(
  t: StoreTensor,
  got: { dtype: string; shape: readonly number[] },
  tensorsPath: string,
  jsonPath: string,
): Error | null {
  const [name, shape, dtype] = t;
  if (got.dtype === dtype && got.shape.length === shape.length && got.shape.every((x, i) => x === shape[i])) return null;
  return new Error(
    `${tensorsPath}: tensor '${name}' is ${got.dtype} [${got.shape.join(', ')}], but ${jsonPath} implies ${dtype} [${shape.join(', ')}]`,
  );
}

/**
 * @internal A store of `rows` features from its tensors' data (`get(name)`, every tensor of
 * `storeLayout(meta)`, `rows` rows each): the whole store (rows = d_sae), or one feature's rows
 * (rows = 1, what reader.ts reads).
 */
export function storeFromTensors(
  meta: FeatureStoreMeta,
  rows: number,
  get: (name: string) => Int32Array | Float32Array | Float64Array,
  strings?: Map<number, string> | null,
): FeatureStore {
  const sm = meta.samples;
  const stats: FeatureStats = {
    dSae: rows,
    topK: meta.top_k,
    before: meta.window.before,
    after: meta.window.after,
    window: meta.window.before + 1 + meta.window.after,
    histogram: { min: meta.histogram.min, max: meta.histogram.max, bins: meta.histogram.bins, edges: meta.histogram.edges },
    tokens: meta.corpus.tokens_counted,
    contexts: meta.corpus.contexts,
    topTokens: get('top_tokens') as Int32Array,
    topActs: get('top_acts') as Float32Array,
    topValues: get('top_values') as Float32Array,
    topContexts: get('top_contexts') as Float64Array,
    topPositions: get('top_positions') as Int32Array,
    histogramCounts: get('histogram') as Float64Array,
    fireCount: get('fire_count') as Float64Array,
    actSum: get('act_sum') as Float64Array,
    maxAct: get('max_act') as Float32Array,
    samples:
      sm && sm.n > 0
        ? {
            n: sm.n,
            seed: sm.seed,
            values: get('sample_values') as Float32Array,
            contexts: get('sample_contexts') as Float64Array,
            positions: get('sample_positions') as Int32Array,
            tokens: get('sample_tokens') as Int32Array,
            acts: get('sample_acts') as Float32Array,
          }
        : null,
  };
  const l = meta.logit_effects;
  const logits: LogitEffects | null =
    'path' in l
      ? {
          n: l.n,
          path: l.path,
          posIds: get('logit_pos_ids') as Int32Array,
          posValues: get('logit_pos_values') as Float32Array,
          negIds: get('logit_neg_ids') as Int32Array,
          negValues: get('logit_neg_values') as Float32Array,
        }
      : null;
  const store = makeStore(meta, stats, logits, strings);
  store.density = get('density') as Float32Array;
  return store;
}

/**
 * Reads a store written by `saveFeatureStore` whole (a server or script that shows pages reads
 * them one at a time with `FeatureStoreReader` instead). Every problem (a missing or unreadable
 * file, a format or version it does not know, a tensors file that is not the one the JSON vouches
 * for, a tensor of the wrong shape or dtype) is an error naming the file.
 * 1. features.json read and its structure checked;
 * 2. features.safetensors checked against the sha256 the JSON vouches for, then read;
 * 3. every tensor checked against the shape and dtype the JSON implies.
 */
export function loadFeatureStore(dir: string): FeatureStore {
  const { meta, jsonPath, tensorsPath } = openStoreJson(dir);
  checkTensorsHash(sha256(readFileSync(tensorsPath)), meta, tensorsPath, jsonPath);
  let tensors: Map<string, Tensor>;
  try {
    tensors = loadSafetensors(tensorsPath);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new Error(`${tensorsPath}: cannot read (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  for (const t of storeLayout(meta)) {
    const got = tensors.get(t[0]);
    if (!got) throw new Error(`${tensorsPath}: tensor '${t[0]}' is missing (present: ${[...tensors.keys()].join(', ') || 'none'})`);
    const bad = tensorMismatch(t, got, tensorsPath, jsonPath);
    if (bad) throw bad;
  }
  return storeFromTensors(meta, meta.sae.d_sae, (name) => tensors.get(name)!.dataSync() as Int32Array | Float32Array | Float64Array);
}

/** @internal Checks features.json's structure (also for reader.ts); errors name the file and the field. */
export function checkMeta(raw: unknown, file: string): FeatureStoreMeta {
  const bad = (what: string): never => {
    throw new Error(`${file}: ${what}`);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad('expected a JSON object');
  const m = raw as Record<string, unknown>;
  if (m.format !== FORMAT) bad(`not a glassbox feature store (format is ${JSON.stringify(m.format)}, expected "${FORMAT}")`);
  if (m.version !== VERSION) bad(`format version ${JSON.stringify(m.version)} is not supported (this glassbox reads version ${VERSION})`);
  const obj = (name: string): Record<string, unknown> => {
    const v = m[name];
    if (!v || typeof v !== 'object' || Array.isArray(v)) bad(`'${name}' must be an object`);
    return v as Record<string, unknown>;
  };
  const int = (where: string, v: unknown, min: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) bad(`'${where}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  if (typeof m.tensorsFile !== 'string' || m.tensorsFile.includes('/') || m.tensorsFile.includes('\\'))
    bad(`'tensorsFile' must be a file name in the store directory`);
  if (typeof m.tensorsSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.tensorsSha256)) bad(`'tensorsSha256' must be a sha256 in hex`);
  int('sae.d_sae', obj('sae').d_sae, 1);
  int('top_k', m.top_k, 1);
  const w = obj('window');
  int('window.before', w.before, 0);
  int('window.after', w.after, 0);
  const h = obj('histogram');
  const bins = int('histogram.bins', h.bins, 1);
  if (!Array.isArray(h.edges) || h.edges.length !== bins + 1 || h.edges.some((e) => typeof e !== 'number'))
    bad(`'histogram.edges' must hold bins + 1 = ${bins + 1} numbers`);
  const c = obj('corpus');
  int('corpus.tokens_counted', c.tokens_counted, 0);
  int('corpus.contexts', c.contexts, 0);
  const l = obj('logit_effects');
  if ('path' in l) int('logit_effects.n', l.n, 1);
  if (m.samples !== undefined && m.samples !== null) {
    const sm = m.samples as Record<string, unknown>;
    if (typeof sm !== 'object' || Array.isArray(sm)) bad(`'samples' must be null or { n, seed }`);
    int('samples.n', sm.n, 0);
    if (typeof sm.seed !== 'number' || !Number.isSafeInteger(sm.seed))
      bad(`'samples.seed' must be an integer, got ${JSON.stringify(sm.seed)}`);
  }
  const ts = m.token_strings;
  if (ts !== null) {
    const t = ts as { ids?: unknown; strings?: unknown };
    if (!t || !Array.isArray(t.ids) || !Array.isArray(t.strings) || t.ids.length !== t.strings.length)
      bad(`'token_strings' must be null or { ids, strings } of the same length`);
  }
  return m as unknown as FeatureStoreMeta;
}
