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
 *    and offer the token to the feature's reservoir sample (below);
 * 2. offer each feature that fired its best position: fill the window around it and push it on
 *    the feature's heap (or replace the root when the heap is full and the new entry is better).
 * `stats()` then sorts each heap, best first.
 *
 * Besides the top-k, each feature keeps a uniform sample of `samples` of the tokens it fired on
 * (reservoir sampling, Vitter's algorithm R: the n-th firing token replaces a random slot with
 * probability samples / n), each with its window, so a feature page can show contexts from the
 * whole activation distribution grouped by quantile, as SAEDashboard's interval groups do, rather
 * than only the top of it. The random draws are a hash of (seed, feature, context, position), not
 * a generator's stream, so the sample does not depend on how the contexts are batched and a
 * resumed run needs no generator state: the reservoir arrays and the firing counts are enough.
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
    sample_value: Float32Array;
    sample_context: Float64Array;
    sample_position: Int32Array;
    sample_tokens: Int32Array;
    sample_acts: Float32Array;
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
  /** Firing tokens kept per feature in its uniform reservoir sample (default 32; 0 for none). */
  samples?: number;
  /** Seed of the reservoir sample's draws (default 0). */
  sampleSeed?: number;
}

/** Each feature's uniform sample of the tokens it fired on, with their windows (see `FeatureCollector`). */
export interface FeatureSamples {
  /** Slots per feature. */
  n: number;
  seed: number;
  /** [d_sae, n] the sampled token's activation, largest first; slots past the feature's firing count are empty. */
  values: Float32Array;
  /** [d_sae, n] the sampled token's global context index, -1 for empty slots. */
  contexts: Float64Array;
  /** [d_sae, n] its position in that context. */
  positions: Int32Array;
  /** [d_sae, n, window] token ids around it, -1 outside the context (and in empty slots). */
  tokens: Int32Array;
  /** [d_sae, n, window] the feature's activation at each token of the window. */
  acts: Float32Array;
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
  /** The reservoir samples (null when collected without, or read from a store that has none). */
  samples: FeatureSamples | null;
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
  /** Reservoir slots per feature. */
  readonly samples: number;
  readonly sampleSeed: number;
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
  #sampleValue: Float32Array;
  #sampleContext: Float64Array;
  #samplePosition: Int32Array;
  #sampleTokens: Int32Array;
  #sampleActs: Float32Array;
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
    this.samples = posInt('samples', options.samples ?? 32, 0);
    this.sampleSeed = options.sampleSeed ?? 0;
    if (!Number.isSafeInteger(this.sampleSeed)) throw new Error(`FeatureCollector: sampleSeed must be an integer, got ${this.sampleSeed}`);
    const ns = dSae * this.samples;
    this.#sampleValue = new Float32Array(ns);
    this.#sampleContext = new Float64Array(ns).fill(-1);
    this.#samplePosition = new Int32Array(ns);
    this.#sampleTokens = new Int32Array(ns * this.window).fill(-1);
    this.#sampleActs = new Float32Array(ns * this.window);
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
          if (this.samples > 0) this.#sample(f, a, ctx, r, p, ids, acts, S);
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

  /** Writes the window around token p of row r (feature f's activations) at `w0` of the two arrays. */
  #fillWindow(
    tokens: Int32Array,
    winActs: Float32Array,
    w0: number,
    f: number,
    r: number,
    p: number,
    ids: Int32Array,
    acts: Float32Array,
    S: number,
  ): void {
    const d = this.dSae;
    for (let w = 0; w < this.window; w++) {
      const q = p - this.before + w;
      if (q < 0 || q >= S) {
        tokens[w0 + w] = -1;
        winActs[w0 + w] = 0;
      } else {
        const id = ids[r * S + q]!;
        tokens[w0 + w] = id;
        winActs[w0 + w] = this.#excluded.has(id) ? 0 : acts[(r * S + q) * d + f]!;
      }
    }
  }

  /**
   * Offers feature f's firing token (context ctx, row r, position p) to its reservoir: the n-th
   * firing token (n counted from 1) takes slot n - 1 while slots are free, else a slot drawn
   * uniformly from n, kept when it is one of the feature's slots.
   */
  #sample(f: number, a: number, ctx: number, r: number, p: number, ids: Int32Array, acts: Float32Array, S: number): void {
    const seen = this.#fires[f]!; // firing tokens before this one
    let j = seen;
    if (seen >= this.samples) {
      j = Math.floor(uniformHash(this.sampleSeed, f, ctx, p) * (seen + 1));
      if (j >= this.samples) return;
    }
    const slot = f * this.samples + j;
    this.#sampleValue[slot] = a;
    this.#sampleContext[slot] = ctx;
    this.#samplePosition[slot] = p;
    this.#fillWindow(this.#sampleTokens, this.#sampleActs, slot * this.window, f, r, p, ids, acts, S);
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
    this.#fillWindow(this.#winTokens, this.#winActs, slot * this.window, f, r, p, ids, acts, S);
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
        sample_value: this.#sampleValue,
        sample_context: this.#sampleContext,
        sample_position: this.#samplePosition,
        sample_tokens: this.#sampleTokens,
        sample_acts: this.#sampleActs,
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

  /** The reservoir samples, each feature's filled slots sorted by activation (largest first, then context, position). */
  #sortedSamples(): FeatureSamples {
    const { dSae, samples: n, window: W } = this;
    const out: FeatureSamples = {
      n,
      seed: this.sampleSeed,
      values: new Float32Array(dSae * n),
      contexts: new Float64Array(dSae * n).fill(-1),
      positions: new Int32Array(dSae * n),
      tokens: new Int32Array(dSae * n * W).fill(-1),
      acts: new Float32Array(dSae * n * W),
    };
    for (let f = 0; f < dSae; f++) {
      const filled = Math.min(n, this.#fires[f]!);
      const slots = Array.from({ length: filled }, (_, i) => f * n + i);
      slots.sort(
        (a, b) =>
          this.#sampleValue[b]! - this.#sampleValue[a]! ||
          this.#sampleContext[a]! - this.#sampleContext[b]! ||
          this.#samplePosition[a]! - this.#samplePosition[b]!,
      );
      slots.forEach((s, i) => {
        const o = f * n + i;
        out.values[o] = this.#sampleValue[s]!;
        out.contexts[o] = this.#sampleContext[s]!;
        out.positions[o] = this.#samplePosition[s]!;
        out.tokens.set(this.#sampleTokens.subarray(s * W, (s + 1) * W), o * W);
        out.acts.set(this.#sampleActs.subarray(s * W, (s + 1) * W), o * W);
      });
    }
    return out;
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
      samples: this.samples > 0 ? this.#sortedSamples() : null,
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

/**
 * A number in [0, 1) from (seed, feature, context, position): murmur3's mixing steps over the four
 * integers, so every token gets its own independent-looking draw whatever order it arrives in.
 */
export function uniformHash(seed: number, f: number, ctx: number, p: number): number {
  // Unrolled (no array in this per-firing-token path): f, the context's low and high 32 bits, p.
  let h = mixIn(seed ^ 0x2545f491, f);
  h = mixIn(h, ctx);
  h = mixIn(h, ctx / 4294967296);
  h = mixIn(h, p);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** One murmur3 block step: `x` (as 32 bits) mixed into the hash `h`. */
function mixIn(h: number, x: number): number {
  h = Math.imul(h ^ x, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  return Math.imul(h, 0x1b873593);
}

/** The bins + 1 log-spaced edges from min to max. */
export function histogramEdges(h: HistogramBins): number[] {
  return Array.from({ length: h.bins + 1 }, (_, i) => (i === h.bins ? h.max : h.min * (h.max / h.min) ** (i / h.bins)));
}
