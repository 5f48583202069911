/**
 * Feature pages: everything a page shows about one feature, sliced from a feature store without
 * recomputation (`featurePage`), and as readable text (`formatFeaturePage`, what `glassbox sae
 * show` prints).
 */
import type { FeatureStore } from './store.js';

/** One token of a context window. */
export interface PageToken {
  id: number;
  /** Its string (null when the store has no tokenizer strings). */
  str: string | null;
  /** The feature's activation there. */
  act: number;
}

/** One of a feature's top contexts, or one of its sampled firing tokens with its context window. */
export interface PageContext {
  /** The max activation in the context (for a sample: the sampled token's activation). */
  activation: number;
  /** The context's global index in the corpus the store was built from. */
  context: number;
  /** The max-activating (or sampled) token's position in that context. */
  position: number;
  /** The max-activating (or sampled) token's index in `tokens`. */
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
  /**
   * A uniform sample of the tokens the feature fired on, each with its window, largest activation
   * first (null when the store was written without samples).
   */
  samples: PageContext[] | null;
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
  const W = s.window;
  // Rows of [d_sae, n] / [d_sae, n, W] arrays as contexts, up to the first empty slot (context -1).
  const windows = (n: number, values: Float32Array, ctxs: Float64Array, positions: Int32Array, ids: Int32Array, acts: Float32Array) => {
    const out: PageContext[] = [];
    for (let i = 0; i < n; i++) {
      const o = index * n + i;
      if (ctxs[o]! < 0) break;
      const tokens: PageToken[] = [];
      let maxIndex = -1;
      for (let w = 0; w < W; w++) {
        const id = ids[o * W + w]!;
        if (id < 0) continue;
        if (w === s.before) maxIndex = tokens.length;
        tokens.push({ id, str: str(id), act: acts[o * W + w]! });
      }
      out.push({ activation: values[o]!, context: ctxs[o]!, position: positions[o]!, maxIndex, tokens });
    }
    return out;
  };
  const contexts = windows(s.topK, s.topValues, s.topContexts, s.topPositions, s.topTokens, s.topActs);
  const sm = s.samples;
  const samples = sm ? windows(sm.n, sm.values, sm.contexts, sm.positions, sm.tokens, sm.acts) : null;
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
    samples,
    logitEffects: l ? { positive: side(l.posIds, l.posValues), negative: side(l.negIds, l.negValues) } : null,
  };
}

/** Sampled contexts whose activations lie between two quantiles of the sample. */
export interface QuantileGroup {
  /** The quantiles of the feature's firing activations (as the sample estimates them) the group spans: [from, to] in [0, 1]. */
  fromQuantile: number;
  toQuantile: number;
  /** The smallest and largest activation in the group. */
  min: number;
  max: number;
  /** Largest first. */
  contexts: PageContext[];
}

/**
 * Splits a feature's sampled contexts (largest activation first, as `FeaturePage.samples` holds
 * them) into `groups` groups of (nearly) equal size by activation quantile, the top quantile
 * first: with n samples, group g (from the bottom) holds the samples of rank floor(g·n/groups) to
 * floor((g+1)·n/groups) - 1 counted from the smallest. Since the sample is uniform over the tokens
 * the feature fired on, each group shows contexts from one quantile band of its activation
 * distribution (SAEDashboard samples intervals of equal width instead, which leaves the top
 * intervals of a heavy-tailed feature nearly empty). Empty groups (fewer samples than groups) are
 * left out.
 */
export function quantileGroups(samples: readonly PageContext[], groups: number): QuantileGroup[] {
  if (!(Number.isInteger(groups) && groups >= 1)) throw new RangeError(`quantileGroups: groups must be a positive integer, got ${groups}`);
  const n = samples.length;
  const ascending = [...samples].reverse();
  const out: QuantileGroup[] = [];
  for (let g = groups - 1; g >= 0; g--) {
    const lo = Math.floor((g * n) / groups);
    const hi = Math.floor(((g + 1) * n) / groups);
    if (hi <= lo) continue;
    const members = ascending.slice(lo, hi).reverse();
    out.push({
      fromQuantile: g / groups,
      toQuantile: (g + 1) / groups,
      min: members[members.length - 1]!.activation,
      max: members[0]!.activation,
      contexts: members,
    });
  }
  return out;
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
