/**
 * The feature collector: streams feature activations into, per feature, a min-heap of its k best
 * contexts so far (the root is the worst kept, replaced when a better context arrives), a histogram
 * with fixed log-spaced bins and running counts, so memory is O(d_sae · k · window) whatever the
 * corpus size. Each context offers each feature at most one candidate (its max-activating token
 * there, with a window of tokens around it), so the top-k are k different contexts. Ties go to the
 * earlier context (then the earlier position), so results do not depend on how the contexts are
 * batched.
 *
 * For each context of a batch (`add`):
 * 1. count every token that is not excluded, and for each feature that fires there its firing
 *    count, sum, max and histogram bin, keeping the feature's best position in the context;
 * 2. offer each feature that fired its best position: fill the window around it and push it on
 *    the feature's heap (or replace the root when the heap is full and the new entry is better).
 * `stats()` then sorts each heap, best first.
 */

/** One of a collector's running arrays. */
export type CollectorArray = Int32Array | Float32Array | Float64Array;

/** A collector's state: its running arrays and counters (see `FeatureCollector.snapshot`). */
export interface CollectorSnapshot {
  counters: { tokens: number; contexts: number; nextContext: number };
  arrays: {
    heap: Int32Array;
    heap_size: Int32Array;
    value: Float32Array;
    context: Float64Array;
    position: Int32Array;
    win_tokens: Int32Array;
    win_acts: Float32Array;
    hist: Float64Array;
    fires: Float64Array;
    sum: Float64Array;
    max: Float32Array;
  };
}

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

  /**
   * The collector's whole state (for a checkpoint): its running arrays by name and its counters.
   * `FeatureCollector.restore` with the same options continues exactly where this one stands.
   */
  snapshot(): CollectorSnapshot {
    return {
      counters: { tokens: this.#tokens, contexts: this.#contexts, nextContext: this.#nextContext },
      arrays: {
        heap: this.#heap,
        heap_size: this.#heapSize,
        value: this.#value,
        context: this.#context,
        position: this.#position,
        win_tokens: this.#winTokens,
        win_acts: this.#winActs,
        hist: this.#hist,
        fires: this.#fires,
        sum: this.#sum,
        max: this.#max,
      },
    };
  }

  /**
   * A collector built with `options` and continued from `snapshot` (a copy of its arrays). An array
   * of the wrong type or length (a snapshot of a collector with other options) is refused, naming it.
   */
  static restore(dSae: number, options: FeatureCollectorOptions, snapshot: CollectorSnapshot, where = 'snapshot'): FeatureCollector {
    const c = new FeatureCollector(dSae, options);
    const mine = c.snapshot().arrays;
    for (const [name, target] of Object.entries(mine) as [keyof CollectorSnapshot['arrays'], CollectorArray][]) {
      const src = snapshot.arrays[name];
      if (!src || src.constructor !== target.constructor || src.length !== target.length)
        throw new Error(
          `${where}: '${name}' is ${src ? `${src.constructor.name}(${src.length})` : 'missing'}, this collector needs ${target.constructor.name}(${target.length}) (a checkpoint of another run?)`,
        );
      (target as Float64Array).set(src as Float64Array);
    }
    const { tokens, contexts, nextContext } = snapshot.counters;
    for (const [k, v] of Object.entries(snapshot.counters))
      if (!(Number.isSafeInteger(v) && v >= 0)) throw new Error(`${where}: counter '${k}' must be a non-negative integer, got ${v}`);
    c.#tokens = tokens;
    c.#contexts = contexts;
    c.#nextContext = nextContext;
    return c;
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
