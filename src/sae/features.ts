/**
 * Feature pages for an SAE over a corpus (what Neuronpedia shows): for every feature its top-k
 * activating contexts (a window of tokens around the context's max-activating token, with the
 * feature's activation at each token), a histogram of its non-zero activations, its firing
 * density, and its logit effects (the decoder direction through the unembedding, with the final
 * norm's weight folded in: the tokens it promotes and suppresses most).
 *
 * Collection streams: batches of contexts run through the model and the SAE one at a time, and
 * per feature only a min-heap of its k best contexts so far (the root is the worst kept, replaced
 * when a better context arrives), a histogram with fixed log-spaced bins and running counts are
 * kept, so memory is O(d_sae · k · window) whatever the corpus size. Each context offers each
 * feature at most one candidate (its max-activating token there), so the top-k are k different
 * contexts. Ties go to the earlier context (then the earlier position), so results do not depend
 * on how the contexts are batched.
 *
 * Storage: a directory with
 * - `features.safetensors`: top_tokens [d_sae, k, window] int32 (-1 past a context's ends),
 *   top_acts [d_sae, k, window] f32, top_values [d_sae, k] f32, top_contexts [d_sae, k] f64 (-1:
 *   empty), top_positions [d_sae, k] i32, histogram [d_sae, bins] f64, fire_count [d_sae] f64,
 *   act_sum [d_sae] f64, max_act [d_sae] f32, density [d_sae] f32, and, when the hook point
 *   writes linearly to the residual stream, logit_pos_ids / logit_neg_ids [d_sae, n] i32 and
 *   logit_pos_values / logit_neg_values [d_sae, n] f32;
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
import { writeFileAtomic } from '../io/atomic.js';
import { SafetensorsError, loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import type { HookedTransformer } from '../model/hooked.js';
import { tensor, type Tensor } from '../tensor/index.js';
import { defaultContextSize, defaultPrependBos, runSaeOnBatch, saeOutputPoint } from './evals.js';
import { contextBatches, planContexts, specialTokenIds, type TokenSource } from './contexts.js';
import type { Sae } from './sae.js';

/** The JSON file of a feature store. */
export const FEATURES_JSON = 'features.json';
/** The tensors file of a feature store. */
export const FEATURES_TENSORS = 'features.safetensors';
const FORMAT = 'glassbox-feature-store';
const VERSION = 1;

/** Fixed log-spaced bins for activation histograms. */
export interface HistogramBins {
  /** Lower edge of the first bin (> 0; smaller activations are counted in the first bin). */
  min: number;
  /** Upper edge of the last bin (larger activations are counted in the last bin). */
  max: number;
  bins: number;
}

/** Options of `FeatureCollector`. */
export interface FeatureCollectorOptions {
  /** Contexts kept per feature (default 20). */
  topK?: number;
  /** Tokens kept before the max-activating token (default 10). */
  before?: number;
  /** Tokens kept after it (default 5). */
  after?: number;
  /** Histogram bins (default 1e-3 to 1e3, 60 bins: 10 per decade). */
  histogram?: Partial<HistogramBins>;
  /** Token ids never counted nor picked (their activations read 0 in the windows). */
  excludedTokenIds?: Iterable<number>;
}

/** The streamed statistics of every feature (row-major arrays, feature-major). */
export interface FeatureStats {
  dSae: number;
  topK: number;
  before: number;
  after: number;
  /** before + 1 + after. */
  window: number;
  histogram: HistogramBins & { edges: number[] };
  /** Tokens counted (special tokens left out). */
  tokens: number;
  /** Contexts seen. */
  contexts: number;
  /** [d_sae, k, window] token ids, -1 outside the context (and in unfilled entries). */
  topTokens: Int32Array;
  /** [d_sae, k, window] the feature's activation at each token of the window. */
  topActs: Float32Array;
  /** [d_sae, k] the max activation of each kept context, best first. */
  topValues: Float32Array;
  /** [d_sae, k] global context index, -1 for unfilled entries. */
  topContexts: Float64Array;
  /** [d_sae, k] position of the max-activating token in its context. */
  topPositions: Int32Array;
  /** [d_sae, bins] counts of non-zero activations. */
  histogramCounts: Float64Array;
  /** [d_sae] tokens the feature fired on (activation > 0). */
  fireCount: Float64Array;
  /** [d_sae] sum of its activations. */
  actSum: Float64Array;
  /** [d_sae] its largest activation (0 when it never fired). */
  maxAct: Float32Array;
}

/**
 * Streams feature activations into per-feature top-k heaps, histograms and counts. Feed it
 * batches of contexts in order with `add`; `stats()` returns the result (best contexts first).
 */
export class FeatureCollector {
  readonly dSae: number;
  readonly topK: number;
  readonly before: number;
  readonly after: number;
  readonly window: number;
  readonly bins: HistogramBins;
  #excluded: Set<number>;
  #tokens = 0;
  #contexts = 0;
  #nextContext = 0;
  // Slots hold entries; each feature's heap (slot numbers f*k .. f*k+k-1) orders them worst first.
  #heap: Int32Array;
  #heapSize: Int32Array;
  #value: Float32Array;
  #context: Float64Array;
  #position: Int32Array;
  #winTokens: Int32Array;
  #winActs: Float32Array;
  #hist: Float64Array;
  #fires: Float64Array;
  #sum: Float64Array;
  #max: Float32Array;
  // Per-context scratch: the best activation and position of each feature that fired.
  #stamp: Float64Array;
  #best: Float32Array;
  #bestPos: Int32Array;
  #logMin: number;
  #logSpan: number;

  constructor(dSae: number, options: FeatureCollectorOptions = {}) {
    const posInt = (name: string, v: number, min: number): number => {
      if (!(Number.isInteger(v) && v >= min)) throw new Error(`FeatureCollector: ${name} must be an integer >= ${min}, got ${v}`);
      return v;
    };
    this.dSae = posInt('dSae', dSae, 1);
    this.topK = posInt('topK', options.topK ?? 20, 1);
    this.before = posInt('before', options.before ?? 10, 0);
    this.after = posInt('after', options.after ?? 5, 0);
    this.window = this.before + 1 + this.after;
    const h = { min: options.histogram?.min ?? 1e-3, max: options.histogram?.max ?? 1e3, bins: options.histogram?.bins ?? 60 };
    if (!(h.min > 0 && h.max > h.min && Number.isInteger(h.bins) && h.bins >= 1))
      throw new Error(`FeatureCollector: histogram needs 0 < min < max and a positive integer number of bins, got ${JSON.stringify(h)}`);
    this.bins = h;
    this.#logMin = Math.log(h.min);
    this.#logSpan = Math.log(h.max) - Math.log(h.min);
    this.#excluded = new Set(options.excludedTokenIds ?? []);
    const n = dSae * this.topK;
    this.#heap = new Int32Array(n);
    this.#heapSize = new Int32Array(dSae);
    this.#value = new Float32Array(n);
    this.#context = new Float64Array(n).fill(-1);
    this.#position = new Int32Array(n);
    this.#winTokens = new Int32Array(n * this.window).fill(-1);
    this.#winActs = new Float32Array(n * this.window);
    this.#hist = new Float64Array(dSae * h.bins);
    this.#fires = new Float64Array(dSae);
    this.#sum = new Float64Array(dSae);
    this.#max = new Float32Array(dSae);
    this.#stamp = new Float64Array(dSae).fill(-1);
    this.#best = new Float32Array(dSae);
    this.#bestPos = new Int32Array(dSae);
  }

  /** Tokens counted so far. */
  get tokens(): number {
    return this.#tokens;
  }

  /**
   * Adds a batch: `ids` [rows, contextSize] and the feature activations `acts` [rows, contextSize,
   * d_sae] (row-major), the rows being contexts `firstContext`, `firstContext + 1`, ... Contexts
   * must arrive in increasing order (by default each batch continues where the last ended).
   */
  add(ids: Int32Array, acts: Float32Array, contextSize: number, firstContext = this.#nextContext): void {
    const d = this.dSae;
    const S = contextSize;
    if (!(Number.isInteger(S) && S >= 1) || ids.length % S !== 0)
      throw new Error(`FeatureCollector.add: ${ids.length} token ids do not make rows of ${S}`);
    if (acts.length !== ids.length * d)
      throw new Error(
        `FeatureCollector.add: ${acts.length} activations for ${ids.length} tokens and ${d} features (expected ${ids.length * d})`,
      );
    if (firstContext < this.#nextContext)
      throw new Error(
        `FeatureCollector.add: context ${firstContext} was already passed (the last batch ended at context ${this.#nextContext - 1}; feed contexts in order)`,
      );
    const rows = ids.length / S;
    const bins = this.bins.bins;
    const scale = bins / this.#logSpan;
    const touched: number[] = [];
    for (let r = 0; r < rows; r++) {
      const ctx = firstContext + r;
      touched.length = 0;
      for (let p = 0; p < S; p++) {
        const t = r * S + p;
        if (this.#excluded.has(ids[t]!)) continue;
        this.#tokens++;
        const base = t * d;
        for (let f = 0; f < d; f++) {
          const a = acts[base + f]!;
          if (!(a > 0)) continue;
          this.#fires[f]!++;
          this.#sum[f]! += a;
          if (a > this.#max[f]!) this.#max[f] = a;
          const b = Math.floor((Math.log(a) - this.#logMin) * scale);
          this.#hist[f * bins + (b < 0 ? 0 : b >= bins ? bins - 1 : b)]!++;
          if (this.#stamp[f] !== ctx) {
            this.#stamp[f] = ctx;
            this.#best[f] = a;
            this.#bestPos[f] = p;
            touched.push(f);
          } else if (a > this.#best[f]!) {
            this.#best[f] = a;
            this.#bestPos[f] = p;
          }
        }
      }
      for (const f of touched) this.#offer(f, ctx, r, ids, acts, S);
    }
    this.#contexts += rows;
    this.#nextContext = firstContext + rows;
  }

  /** Whether entry (va, ca) is worse than (vb, cb): smaller, or as large but from a later context. */
  static #worse(va: number, ca: number, vb: number, cb: number): boolean {
    return va < vb || (va === vb && ca > cb);
  }

  #offer(f: number, ctx: number, r: number, ids: Int32Array, acts: Float32Array, S: number): void {
    const k = this.topK;
    const v = this.#best[f]!;
    const h0 = f * k;
    let size = this.#heapSize[f]!;
    let slot: number;
    const inserting = size < k;
    if (inserting) {
      slot = h0 + size;
      this.#heap[h0 + size] = slot;
      this.#heapSize[f] = ++size;
    } else {
      slot = this.#heap[h0]!;
      if (!FeatureCollector.#worse(this.#value[slot]!, this.#context[slot]!, v, ctx)) return;
    }
    // Fill the slot.
    const p = this.#bestPos[f]!;
    this.#value[slot] = v;
    this.#context[slot] = ctx;
    this.#position[slot] = p;
    const w0 = slot * this.window;
    const d = this.dSae;
    for (let w = 0; w < this.window; w++) {
      const q = p - this.before + w;
      if (q < 0 || q >= S) {
        this.#winTokens[w0 + w] = -1;
        this.#winActs[w0 + w] = 0;
      } else {
        const id = ids[r * S + q]!;
        this.#winTokens[w0 + w] = id;
        this.#winActs[w0 + w] = this.#excluded.has(id) ? 0 : acts[(r * S + q) * d + f]!;
      }
    }
    // Restore the heap: a new entry sifts up from the end, a replaced root sifts down.
    const worse = (i: number, j: number): boolean => {
      const a = this.#heap[h0 + i]!;
      const b = this.#heap[h0 + j]!;
      return FeatureCollector.#worse(this.#value[a]!, this.#context[a]!, this.#value[b]!, this.#context[b]!);
    };
    const swap = (i: number, j: number): void => {
      const t = this.#heap[h0 + i]!;
      this.#heap[h0 + i] = this.#heap[h0 + j]!;
      this.#heap[h0 + j] = t;
    };
    if (inserting) {
      let i = size - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    } else {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const rr = l + 1;
        let m = i;
        if (l < size && worse(l, m)) m = l;
        if (rr < size && worse(rr, m)) m = rr;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    }
  }

  /** The statistics so far, each feature's contexts best first (the collector can keep going). */
  stats(): FeatureStats {
    const { dSae, topK: k, window: W } = this;
    const topTokens = new Int32Array(dSae * k * W).fill(-1);
    const topActs = new Float32Array(dSae * k * W);
    const topValues = new Float32Array(dSae * k);
    const topContexts = new Float64Array(dSae * k).fill(-1);
    const topPositions = new Int32Array(dSae * k);
    for (let f = 0; f < dSae; f++) {
      const slots = Array.from(this.#heap.subarray(f * k, f * k + this.#heapSize[f]!));
      slots.sort((a, b) => this.#value[b]! - this.#value[a]! || this.#context[a]! - this.#context[b]!);
      slots.forEach((s, i) => {
        const o = f * k + i;
        topValues[o] = this.#value[s]!;
        topContexts[o] = this.#context[s]!;
        topPositions[o] = this.#position[s]!;
        topTokens.set(this.#winTokens.subarray(s * W, (s + 1) * W), o * W);
        topActs.set(this.#winActs.subarray(s * W, (s + 1) * W), o * W);
      });
    }
    const { min, max, bins } = this.bins;
    return {
      dSae,
      topK: k,
      before: this.before,
      after: this.after,
      window: W,
      histogram: { min, max, bins, edges: histogramEdges(this.bins) },
      tokens: this.#tokens,
      contexts: this.#contexts,
      topTokens,
      topActs,
      topValues,
      topContexts,
      topPositions,
      histogramCounts: Float64Array.from(this.#hist),
      fireCount: Float64Array.from(this.#fires),
      actSum: Float64Array.from(this.#sum),
      maxAct: Float32Array.from(this.#max),
    };
  }
}

/** The bins + 1 log-spaced edges from min to max. */
export function histogramEdges(h: HistogramBins): number[] {
  return Array.from({ length: h.bins + 1 }, (_, i) => (i === h.bins ? h.max : h.min * (h.max / h.min) ** (i / h.bins)));
}

// ---------------------------------------------------------------------------------------------
// Logit effects

/** Each feature's strongest effects on the logits: top (promoted) and bottom (suppressed) tokens. */
export interface LogitEffects {
  /** Tokens per side. */
  n: number;
  /** [d_sae, n] token ids, largest effect first. */
  posIds: Int32Array;
  posValues: Float32Array;
  /** [d_sae, n] token ids, most negative first. */
  negIds: Int32Array;
  negValues: Float32Array;
  /** How the decoder direction reached the logits, e.g. 'W_dec @ diag(ln_final.w) @ W_U'. */
  path: string;
}

/**
 * How an SAE's decoder rows reach the residual stream: a function [c, d_out] -> [c, d_model], and
 * its description; null when the hook point does not write linearly to the residual stream.
 */
function toResidual(
  model: HookedTransformer,
  sae: Sae,
): { map: (dirs: Tensor) => Tensor; path: string; foldNorm: boolean } | { reason: string } {
  const { name, head } = saeOutputPoint(sae);
  const cfg = model.cfg;
  if (
    /^(hook_embed|hook_pos_embed|blocks\.\d+\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out|mlp_in))$/.test(name) &&
    head === null
  )
    return { map: (d) => d, path: 'W_dec', foldNorm: true };
  const z = /^blocks\.(\d+)\.attn\.hook_z$/.exec(name);
  if (z && !cfg.postNorms) {
    const W_O = model.params.blocks[Number(z[1])]!.attn.W_O; // [n_heads * d_head, d_model]
    const W = head === null ? W_O : W_O.slice([{ start: head * cfg.dHead, end: (head + 1) * cfg.dHead }]);
    return { map: (d) => d.matmul(W), path: `W_dec @ blocks.${z[1]}.attn.W_O${head === null ? '' : `[head ${head}]`}`, foldNorm: true };
  }
  const post = /^blocks\.(\d+)\.mlp\.hook_post$/.exec(name);
  if (post && !cfg.postNorms && head === null) {
    const mlp = model.params.blocks[Number(post[1])]!.mlp;
    if (mlp) return { map: (d) => d.matmul(mlp.W_out), path: `W_dec @ blocks.${post[1]}.mlp.W_out`, foldNorm: true };
  }
  if (name === 'ln_final.hook_normalized' && head === null)
    // LayerNorm's hook_normalized is after the weight (nothing to fold); RMSNorm's is before it.
    return { map: (d) => d, path: 'W_dec', foldNorm: cfg.norm === 'rmsnorm' };
  return {
    reason: `the SAE's output point '${name}'${head === null ? '' : ` (head ${head})`} does not write linearly to the residual stream`,
  };
}

/**
 * Each feature's logit effects: its decoder row, mapped into the residual stream (through W_O for
 * hook_z SAEs, W_out for mlp.hook_post), times the unembedding W_U with the final norm's weight
 * folded in (as Neuronpedia computes them). Null, with the reason, for hook points that do not
 * write linearly to the residual stream. Computed in chunks of features, so [d_sae, d_vocab] is
 * never held whole.
 */
export function logitEffects(model: HookedTransformer, sae: Sae, n = 10): LogitEffects | { reason: string } {
  const route = toResidual(model, sae);
  if ('reason' in route) return route;
  const V = model.cfg.dVocab;
  const k = Math.min(n, V);
  let W_U = model.params.unembed.W_U; // [d_model, d_vocab]
  let path = `${route.path} @ W_U`;
  const w = model.params.ln_final.w;
  if (route.foldNorm && w && model.cfg.norm !== 'none') {
    const eff = model.cfg.normWeightOffset ? w.add(model.cfg.normWeightOffset) : w;
    W_U = W_U.mul(eff.unsqueeze(1));
    path = `${route.path} @ diag(ln_final.w) @ W_U`;
  }
  const d = sae.dSae;
  const posIds = new Int32Array(d * k);
  const posValues = new Float32Array(d * k);
  const negIds = new Int32Array(d * k);
  const negValues = new Float32Array(d * k);
  const W_dec = sae.params.W_dec!;
  const chunk = Math.max(1, Math.min(d, Math.floor((1 << 22) / V)));
  for (let s = 0; s < d; s += chunk) {
    const e = Math.min(d, s + chunk);
    const effects = route.map(W_dec.slice([{ start: s, end: e }])).matmul(W_U); // [c, V]
    const top = effects.topk(k, -1, true);
    const bottom = effects.topk(k, -1, false);
    posValues.set(top.values.cast('float32').dataSync() as Float32Array, s * k);
    negValues.set(bottom.values.cast('float32').dataSync() as Float32Array, s * k);
    posIds.set(top.indices.cast('int32').dataSync() as Int32Array, s * k);
    negIds.set(bottom.indices.cast('int32').dataSync() as Int32Array, s * k);
  }
  return { n: k, posIds, posValues, negIds, negValues, path };
}

// ---------------------------------------------------------------------------------------------
// The store

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

/** Options of `collectFeatures`. */
export interface CollectFeaturesOptions extends FeatureCollectorOptions {
  /** Batches to run (default: until the source ends). */
  batches?: number;
  /** Contexts per batch (default 8). */
  batchSize?: number;
  /** Tokens per context, BOS included (default: the SAE's context_size, else 128, at most the model's). */
  contextSize?: number;
  /** Start each context with BOS (default: the SAE's prepend_bos when the model has a BOS token). */
  prependBos?: boolean;
  /** Special tokens left out: true (default) for the model's BOS/EOS/pad ids, false, or a list. Overrides excludedTokenIds. */
  excludeSpecial?: boolean | readonly number[];
  /** Logit-effect tokens per side (default 10; 0 for none). */
  logitEffects?: number;
  /** Recorded in the JSON. */
  modelName?: string | null;
  saePath?: string | null;
  description?: string;
  onBatch?: (done: number, total: number) => void;
}

/**
 * Runs `model` and `sae` over batches of contexts from `tokens` and collects every feature's
 * top-k contexts, histogram, density and logit effects (see the file comment). Streams.
 */
export function collectFeatures(
  model: HookedTransformer,
  sae: Sae,
  tokens: TokenSource,
  options: CollectFeaturesOptions = {},
): FeatureStore {
  const plan = planContexts(tokens, {
    contextSize: defaultContextSize(model, sae, options.contextSize),
    batchSize: options.batchSize ?? 8,
    ...(options.batches !== undefined ? { batches: options.batches } : {}),
    prependBos: defaultPrependBos(model, sae, options.prependBos),
    bosTokenId: model.cfg.bosTokenId,
    ...(options.description !== undefined ? { description: options.description } : {}),
  });
  const excluded = specialTokenIds(model, options.excludeSpecial ?? true);
  const collector = new FeatureCollector(sae.dSae, { ...options, excludedTokenIds: excluded });
  const total = Math.ceil(plan.contexts / plan.batchSize);
  let done = 0;
  let positions = 0;
  for (const batch of contextBatches(plan)) {
    const { acts } = runSaeOnBatch(model, sae, batch.tokens);
    collector.add(batch.ids, acts.cast('float32').dataSync() as Float32Array, batch.contextSize, batch.firstContext);
    positions += batch.ids.length;
    options.onBatch?.(++done, total);
  }
  const stats = collector.stats();
  const n = options.logitEffects ?? 10;
  const effects = n > 0 ? logitEffects(model, sae, n) : { reason: 'not computed (logitEffects: 0)' };
  const logits = 'reason' in effects ? null : effects;
  const meta: FeatureStoreMeta = {
    format: FORMAT,
    version: VERSION,
    tensorsFile: FEATURES_TENSORS,
    tensorsSha256: '',
    sae: {
      architecture: sae.cfg.architecture,
      hook_name: sae.cfg.hook_name,
      hook_name_out: sae.isTranscoder ? (sae.cfg.hook_name_out ?? null) : null,
      hook_head_index: sae.cfg.hook_head_index ?? null,
      d_in: sae.dIn,
      d_sae: sae.dSae,
      d_out: sae.dOut,
      path: options.saePath ?? null,
    },
    model: {
      name: options.modelName ?? null,
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
      tokens: positions,
      tokens_counted: stats.tokens,
      excluded_token_ids: [...excluded].sort((a, b) => a - b),
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
    token_strings: null,
  };
  if (model.tokenizer) {
    const ids = new Set<number>();
    for (const id of stats.topTokens) if (id >= 0) ids.add(id);
    if (logits) for (const arr of [logits.posIds, logits.negIds]) for (const id of arr) ids.add(id);
    const sorted = [...ids].sort((a, b) => a - b);
    meta.token_strings = { ids: sorted, strings: model.tokenizer.toStrTokens(sorted) };
  }
  return makeStore(meta, stats, logits);
}

function makeStore(meta: FeatureStoreMeta, stats: FeatureStats, logits: LogitEffects | null): FeatureStore {
  const density = new Float32Array(stats.dSae);
  if (stats.tokens > 0) for (let f = 0; f < stats.dSae; f++) density[f] = stats.fireCount[f]! / stats.tokens;
  const strings = meta.token_strings ? new Map(meta.token_strings.ids.map((id, i) => [id, meta.token_strings!.strings[i]!])) : null;
  return { meta, stats, density, logits, strings };
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

/**
 * Reads a store written by `saveFeatureStore`. Every problem (a missing or unreadable file, a
 * format or version it does not know, a tensors file that is not the one the JSON vouches for, a
 * tensor of the wrong shape or dtype) is an error naming the file.
 */
export function loadFeatureStore(dir: string): FeatureStore {
  const jsonPath = join(dir, FEATURES_JSON);
  if (!existsSync(jsonPath))
    throw new Error(`${jsonPath}: not found (a feature store directory holds ${FEATURES_JSON} and ${FEATURES_TENSORS})`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new Error(`${jsonPath}: cannot read the feature store description (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  const meta = checkMeta(raw, jsonPath);
  const tensorsPath = join(dir, meta.tensorsFile);
  if (!existsSync(tensorsPath)) throw new Error(`${tensorsPath}: not found (the tensors of the feature store ${jsonPath} describes)`);
  const bytes = readFileSync(tensorsPath);
  const hash = sha256(bytes);
  if (hash !== meta.tensorsSha256)
    throw new Error(
      `${tensorsPath}: does not match ${jsonPath} (its sha256 is ${hash.slice(0, 12)}..., the JSON expects ${meta.tensorsSha256.slice(0, 12)}...): the files come from different runs, or one was changed`,
    );
  let tensors: Map<string, Tensor>;
  try {
    tensors = loadSafetensors(tensorsPath);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new Error(`${tensorsPath}: cannot read (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  const d = meta.sae.d_sae;
  const k = meta.top_k;
  const W = meta.window.before + 1 + meta.window.after;
  const B = meta.histogram.bins;
  const get = <T>(name: string, shape: number[], dtype: string): T => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${tensorsPath}: tensor '${name}' is missing (present: ${[...tensors.keys()].join(', ') || 'none'})`);
    if (t.dtype !== dtype || t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i]))
      throw new Error(
        `${tensorsPath}: tensor '${name}' is ${t.dtype} [${t.shape.join(', ')}], but ${jsonPath} implies ${dtype} [${shape.join(', ')}]`,
      );
    return t.dataSync() as T;
  };
  const stats: FeatureStats = {
    dSae: d,
    topK: k,
    before: meta.window.before,
    after: meta.window.after,
    window: W,
    histogram: { min: meta.histogram.min, max: meta.histogram.max, bins: B, edges: meta.histogram.edges },
    tokens: meta.corpus.tokens_counted,
    contexts: meta.corpus.contexts,
    topTokens: get<Int32Array>('top_tokens', [d, k, W], 'int32'),
    topActs: get<Float32Array>('top_acts', [d, k, W], 'float32'),
    topValues: get<Float32Array>('top_values', [d, k], 'float32'),
    topContexts: get<Float64Array>('top_contexts', [d, k], 'float64'),
    topPositions: get<Int32Array>('top_positions', [d, k], 'int32'),
    histogramCounts: get<Float64Array>('histogram', [d, B], 'float64'),
    fireCount: get<Float64Array>('fire_count', [d], 'float64'),
    actSum: get<Float64Array>('act_sum', [d], 'float64'),
    maxAct: get<Float32Array>('max_act', [d], 'float32'),
  };
  let logits: LogitEffects | null = null;
  if ('path' in meta.logit_effects) {
    const n = meta.logit_effects.n;
    logits = {
      n,
      path: meta.logit_effects.path,
      posIds: get<Int32Array>('logit_pos_ids', [d, n], 'int32'),
      posValues: get<Float32Array>('logit_pos_values', [d, n], 'float32'),
      negIds: get<Int32Array>('logit_neg_ids', [d, n], 'int32'),
      negValues: get<Float32Array>('logit_neg_values', [d, n], 'float32'),
    };
  }
  const store = makeStore(meta, stats, logits);
  store.density = get<Float32Array>('density', [d], 'float32');
  return store;
}

/** Checks features.json's structure; errors name the file and the field. */
function checkMeta(raw: unknown, file: string): FeatureStoreMeta {
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
  const ts = m.token_strings;
  if (ts !== null) {
    const t = ts as { ids?: unknown; strings?: unknown };
    if (!t || !Array.isArray(t.ids) || !Array.isArray(t.strings) || t.ids.length !== t.strings.length)
      bad(`'token_strings' must be null or { ids, strings } of the same length`);
  }
  return m as unknown as FeatureStoreMeta;
}

// ---------------------------------------------------------------------------------------------
// Pages

/** One token of a context window. */
export interface PageToken {
  id: number;
  /** Its string (null when the store has no tokenizer strings). */
  str: string | null;
  /** The feature's activation there. */
  act: number;
}

/** One of a feature's top contexts. */
export interface PageContext {
  /** The max activation in the context. */
  activation: number;
  /** The context's global index in the corpus the store was built from. */
  context: number;
  /** The max-activating token's position in that context. */
  position: number;
  /** The max-activating token's index in `tokens`. */
  maxIndex: number;
  tokens: PageToken[];
}

/** Everything a feature page shows, as plain data. */
export interface FeaturePage {
  index: number;
  /** Firing density over the counted tokens. */
  density: number;
  fireCount: number;
  maxActivation: number;
  /** Mean activation where it fires (null when it never fired). */
  meanActivation: number | null;
  /** Non-zero activations by log-spaced bin: counts[i] in [edges[i], edges[i+1]) (the ends clamp). */
  histogram: { edges: number[]; counts: number[] };
  contexts: PageContext[];
  /** Top and bottom tokens of W_dec[i] through the unembedding (null when the hook point has none). */
  logitEffects: {
    positive: { id: number; str: string | null; value: number }[];
    negative: { id: number; str: string | null; value: number }[];
  } | null;
}

/** The page of feature `index` (no recomputation: slices of the store). */
export function featurePage(store: FeatureStore, index: number): FeaturePage {
  const s = store.stats;
  if (!(Number.isInteger(index) && index >= 0 && index < s.dSae))
    throw new RangeError(`feature ${index} is out of range (the store has features 0..${s.dSae - 1})`);
  const str = (id: number): string | null => store.strings?.get(id) ?? null;
  const k = s.topK;
  const W = s.window;
  const contexts: PageContext[] = [];
  for (let i = 0; i < k; i++) {
    const o = index * k + i;
    if (s.topContexts[o]! < 0) break;
    const tokens: PageToken[] = [];
    let maxIndex = -1;
    for (let w = 0; w < W; w++) {
      const id = s.topTokens[o * W + w]!;
      if (id < 0) continue;
      if (w === s.before) maxIndex = tokens.length;
      tokens.push({ id, str: str(id), act: s.topActs[o * W + w]! });
    }
    contexts.push({ activation: s.topValues[o]!, context: s.topContexts[o]!, position: s.topPositions[o]!, maxIndex, tokens });
  }
  const fires = s.fireCount[index]!;
  const l = store.logits;
  const side = (ids: Int32Array, values: Float32Array) =>
    Array.from({ length: l!.n }, (_, j) => {
      const id = ids[index * l!.n + j]!;
      return { id, str: str(id), value: values[index * l!.n + j]! };
    });
  return {
    index,
    density: store.density[index]!,
    fireCount: fires,
    maxActivation: s.maxAct[index]!,
    meanActivation: fires > 0 ? s.actSum[index]! / fires : null,
    histogram: {
      edges: s.histogram.edges,
      counts: Array.from(s.histogramCounts.subarray(index * s.histogram.bins, (index + 1) * s.histogram.bins)),
    },
    contexts,
    logitEffects: l ? { positive: side(l.posIds, l.posValues), negative: side(l.negIds, l.negValues) } : null,
  };
}

/** A page as readable text (what `glassbox sae show` prints). */
export function formatFeaturePage(page: FeaturePage, options: { contexts?: number } = {}): string {
  const tok = (t: { id: number; str: string | null }): string => (t.str !== null ? JSON.stringify(t.str).slice(1, -1) : `#${t.id}`);
  const lines = [
    `feature ${page.index}`,
    `  density ${page.density.toExponential(3)} (${page.fireCount} tokens), max activation ${page.maxActivation.toFixed(4)}, mean when firing ${page.meanActivation === null ? 'n/a' : page.meanActivation.toFixed(4)}`,
  ];
  const counts = page.histogram.counts;
  const nz = counts.map((c, i) => [c, i] as const).filter(([c]) => c > 0);
  if (nz.length > 0) {
    const top = Math.max(...counts);
    lines.push('', 'activation histogram');
    const first = nz[0]![1];
    const last = nz[nz.length - 1]![1];
    for (let i = first; i <= last; i++) {
      const lo = page.histogram.edges[i]!;
      const hi = page.histogram.edges[i + 1]!;
      lines.push(
        `  [${lo.toPrecision(3)}, ${hi.toPrecision(3)})`.padEnd(24) +
          `${String(counts[i]).padStart(8)} ${'#'.repeat(Math.round((30 * counts[i]!) / top))}`,
      );
    }
  }
  const shown = page.contexts.slice(0, options.contexts ?? page.contexts.length);
  if (shown.length > 0) lines.push('', 'top contexts');
  for (const c of shown) {
    const text = c.tokens.map((t, i) => (i === c.maxIndex ? `[[${tok(t)}]]` : tok(t))).join('');
    lines.push(`  ${c.activation.toFixed(4).padStart(9)}  ${text}`);
  }
  if (page.logitEffects) {
    const fmt = (xs: { id: number; str: string | null; value: number }[]) =>
      xs.map((x) => `${JSON.stringify(x.str ?? `#${x.id}`)} ${x.value.toFixed(3)}`).join(', ');
    lines.push('', `promotes    ${fmt(page.logitEffects.positive)}`, `suppresses  ${fmt(page.logitEffects.negative)}`);
  }
  return lines.join('\n');
}
