/**
 * An attribution graph as plain data, and pure functions over it (circuit-tracer's graph.py):
 * node order, influence through the normalised adjacency matrix, pruning, replacement and
 * completeness scores.
 *
 * Nodes are ordered [selected features (by layer, position, feature), error nodes (layer-major:
 * layer * nPos + pos), token embeddings (by position), logits (most probable first)]. The
 * adjacency matrix is [n, n], row-major, rows are targets and columns sources: A[t, s] is the
 * direct effect of source s on target t's pre-activation (features) or on the demeaned logit
 * (logits). Only feature and logit rows are non-zero.
 */

/** One attribution graph. */
export interface Graph {
  /** Prompt token ids, [nPos]. */
  inputTokens: number[];
  /** The prompt's text (decoded) when known, else ''. */
  inputString: string;
  nLayers: number;
  /** Every active feature as (layer, pos, feature) triples, sorted: [nActive * 3]. */
  activeFeatures: Int32Array;
  /** Each active feature's activation, [nActive]. */
  activationValues: Float32Array;
  /** Indices into activeFeatures of the features that are nodes (rows computed), ascending: [nSelected]. */
  selectedFeatures: Int32Array;
  /** The logit nodes' token ids, most probable first, [nLogits]. */
  logitTokens: number[];
  /** Their probabilities at the last position, [nLogits]. */
  logitProbabilities: Float32Array;
  /** [n * n] row-major, rows = targets, columns = sources. */
  adjacency: Float32Array;
  /**
   * Each node's bias: the part of its pre-activation no node explains (encoder and decoder
   * biases, positional embeddings, attention and norm biases), [n]; 0 for error and token nodes.
   * For feature and logit rows, sum of the row + bias = the node's value.
   */
  biases: Float32Array;
  /** Each node's value: pre-activation (features), the error's / embedding's norm, demeaned logit, [n]. */
  values: Float32Array;
  /** Identifies the model and transcoders (free text: paths, hub ids). */
  model: string;
  scan: string;
}

/** Node counts and offsets of a graph's node order. */
export interface NodeLayout {
  nFeatures: number;
  nPos: number;
  nLayers: number;
  nErrors: number;
  nTokens: number;
  nLogits: number;
  errorStart: number;
  tokenStart: number;
  logitStart: number;
  n: number;
}

export function nodeLayout(g: Pick<Graph, 'selectedFeatures' | 'inputTokens' | 'nLayers' | 'logitTokens'>): NodeLayout {
  const nFeatures = g.selectedFeatures.length;
  const nPos = g.inputTokens.length;
  const nErrors = g.nLayers * nPos;
  const errorStart = nFeatures;
  const tokenStart = errorStart + nErrors;
  const logitStart = tokenStart + nPos;
  const n = logitStart + g.logitTokens.length;
  return {
    nFeatures,
    nPos,
    nLayers: g.nLayers,
    nErrors,
    nTokens: nPos,
    nLogits: g.logitTokens.length,
    errorStart,
    tokenStart,
    logitStart,
    n,
  };
}

/** What node i is. */
export type GraphNode =
  | { kind: 'feature'; layer: number; pos: number; feature: number; activation: number; activeIndex: number }
  | { kind: 'error'; layer: number; pos: number }
  | { kind: 'token'; pos: number; token: number }
  | { kind: 'logit'; rank: number; token: number; probability: number; pos: number };

export function nodeAt(g: Graph, i: number, layout = nodeLayout(g)): GraphNode {
  if (!Number.isInteger(i) || i < 0 || i >= layout.n) throw new Error(`graph node ${i} is out of range (0..${layout.n - 1})`);
  if (i < layout.errorStart) {
    const a = g.selectedFeatures[i]!;
    return {
      kind: 'feature',
      layer: g.activeFeatures[3 * a]!,
      pos: g.activeFeatures[3 * a + 1]!,
      feature: g.activeFeatures[3 * a + 2]!,
      activation: g.activationValues[a]!,
      activeIndex: a,
    };
  }
  if (i < layout.tokenStart) {
    const e = i - layout.errorStart;
    return { kind: 'error', layer: Math.floor(e / layout.nPos), pos: e % layout.nPos };
  }
  if (i < layout.logitStart) return { kind: 'token', pos: i - layout.tokenStart, token: g.inputTokens[i - layout.tokenStart]! };
  const r = i - layout.logitStart;
  return { kind: 'logit', rank: r, token: g.logitTokens[r]!, probability: g.logitProbabilities[r]!, pos: layout.nPos - 1 };
}

/** The node index of a selected feature (layer, pos, feature), or -1 when it is not a node. */
export function featureNodeIndex(g: Graph, layer: number, pos: number, feature: number): number {
  for (let i = 0; i < g.selectedFeatures.length; i++) {
    const a = g.selectedFeatures[i]!;
    if (g.activeFeatures[3 * a] === layer && g.activeFeatures[3 * a + 1] === pos && g.activeFeatures[3 * a + 2] === feature) return i;
  }
  return -1;
}

/** |A| with each row divided by its sum (rows summing to 0 stay 0): [n * n]. */
export function normalizeAdjacency(a: Float32Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < n; c++) s += Math.abs(a[r * n + c]!);
    const d = Math.max(s, 1e-10);
    for (let c = 0; c < n; c++) out[r * n + c] = Math.abs(a[r * n + c]!) / d;
  }
  return out;
}

/**
 * Total influence of each node on the weighted outputs: w A + w A^2 + ... (the sum over every
 * path length), for w the initial weights (logit probabilities on the logit nodes) and A a
 * normalised adjacency. The graph is acyclic (edges go forward in layers), so the series ends;
 * it is refused after `maxIter` terms.
 */
export function computeInfluence(normalized: Float64Array, n: number, weights: Float64Array, maxIter = 1000): Float64Array {
  const total = new Float64Array(n);
  let cur = weights;
  for (let it = 0; ; it++) {
    const next = new Float64Array(n);
    let any = false;
    for (let r = 0; r < n; r++) {
      const w = cur[r]!;
      if (w === 0) continue;
      const row = r * n;
      for (let c = 0; c < n; c++) {
        const v = normalized[row + c]!;
        if (v !== 0) {
          next[c] += w * v;
          any = true;
        }
      }
    }
    if (!any) return total;
    if (it >= maxIter) throw new Error(`influence did not converge in ${maxIter} steps (the graph has a cycle?)`);
    for (let c = 0; c < n; c++) total[c] += next[c]!;
    cur = next;
  }
}

/** The logit probabilities on the logit nodes, 0 elsewhere: [n]. */
export function logitWeights(g: Graph, layout = nodeLayout(g)): Float64Array {
  const w = new Float64Array(layout.n);
  for (let i = 0; i < layout.nLogits; i++) w[layout.logitStart + i] = g.logitProbabilities[i]!;
  return w;
}

/** The smallest score among the largest ones that together hold `fraction` of the total. */
function thresholdFor(scores: ArrayLike<number>, fraction: number): number {
  const sorted = Float64Array.from(scores).sort().reverse();
  let total = 0;
  for (const s of sorted) total += s;
  if (sorted.length === 0) return Infinity;
  let acc = 0;
  for (let i = 0; i < sorted.length; i++) {
    acc += sorted[i]!;
    if (acc / total >= fraction) return sorted[i]!;
  }
  return sorted[sorted.length - 1]!;
}

export interface PruneOptions {
  /** Keep the most influential nodes holding this fraction of the total node influence (default 0.8). */
  nodeThreshold?: number;
  /** Keep the most influential edges holding this fraction of the total edge influence (default 0.98). */
  edgeThreshold?: number;
}

export interface PruneResult {
  /** Kept nodes, [n]. */
  nodeMask: Uint8Array;
  /** Kept edges, [n * n] (same layout as the adjacency). */
  edgeMask: Uint8Array;
  /** Each node's influence on the logits (through the normalised adjacency), [n]. */
  influence: Float64Array;
  /** Cumulative influence fraction at each node's rank (circuit-tracer's cumulative_scores), [n]. */
  cumulativeScores: Float64Array;
}

/**
 * Prunes a graph to the nodes and edges carrying most of the influence on the logits:
 * 1. node influence: logit probabilities times (A + A^2 + ...) of the row-normalised |A|;
 * 2. keep the nodes holding `nodeThreshold` of the total influence, plus every token and logit;
 * 3. edge scores: each edge's normalised weight times its target's influence (plus its logit
 *    weight) in the node-pruned graph; keep the edges holding `edgeThreshold` of the total;
 * 4. repeatedly drop feature and error nodes left without outgoing edges, and feature nodes left
 *    without incoming edges, with their edges, until nothing changes.
 */
export function pruneGraph(g: Graph, options: PruneOptions = {}): PruneResult {
  const nodeThreshold = options.nodeThreshold ?? 0.8;
  const edgeThreshold = options.edgeThreshold ?? 0.98;
  for (const [name, v] of [
    ['nodeThreshold', nodeThreshold],
    ['edgeThreshold', edgeThreshold],
  ] as const)
    if (!(v >= 0 && v <= 1)) throw new Error(`pruneGraph: ${name} must be in [0, 1], got ${v}`);
  const L = nodeLayout(g);
  const n = L.n;
  const weights = logitWeights(g, L);
  // 1-2. Node influence and the node mask.
  const influence = computeInfluence(normalizeAdjacency(g.adjacency, n), n, weights);
  const nodeCut = thresholdFor(influence, nodeThreshold);
  const nodeMask = new Uint8Array(n);
  for (let i = 0; i < n; i++) nodeMask[i] = i >= L.tokenStart || influence[i]! >= nodeCut ? 1 : 0;
  // 3. Edge scores in the node-pruned graph.
  const pruned = new Float32Array(n * n);
  for (let r = 0; r < n; r++) {
    if (!nodeMask[r]) continue;
    for (let c = 0; c < n; c++) if (nodeMask[c]) pruned[r * n + c] = g.adjacency[r * n + c]!;
  }
  const normPruned = normalizeAdjacency(pruned, n);
  const prunedInfluence = computeInfluence(normPruned, n, weights);
  const edgeScores = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    const w = prunedInfluence[r]! + weights[r]!;
    for (let c = 0; c < n; c++) edgeScores[r * n + c] = normPruned[r * n + c]! * w;
  }
  const edgeCut = thresholdFor(edgeScores, edgeThreshold);
  const edgeMask = new Uint8Array(n * n);
  for (let k = 0; k < n * n; k++) edgeMask[k] = edgeScores[k]! >= edgeCut && edgeScores[k]! > 0 ? 1 : 0;
  // 4. Drop nodes without outgoing (features, errors) or incoming (features) edges, to a fixed point.
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 0; i < L.tokenStart; i++) {
      if (!nodeMask[i]) continue;
      let out = false;
      for (let r = 0; r < n && !out; r++) out = edgeMask[r * n + i] === 1;
      let inc = i >= L.errorStart;
      for (let c = 0; c < n && !inc; c++) inc = edgeMask[i * n + c] === 1;
      if (!out || !inc) {
        nodeMask[i] = 0;
        changed = true;
        for (let k = 0; k < n; k++) edgeMask[i * n + k] = edgeMask[k * n + i] = 0;
      }
    }
  }
  // Cumulative influence fraction at each node's rank.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => influence[b]! - influence[a]!);
  let total = 0;
  for (const v of influence) total += v;
  const cumulativeScores = new Float64Array(n);
  let acc = 0;
  for (const i of order) {
    acc += influence[i]!;
    cumulativeScores[i] = total > 0 ? acc / total : 0;
  }
  return { nodeMask, edgeMask, influence, cumulativeScores };
}

export interface GraphScores {
  /**
   * The share of the logits' influence (through the normalised adjacency) that starts at tokens
   * rather than at error nodes: influence(tokens) / (influence(tokens) + influence(errors)).
   */
  replacement: number;
  /**
   * The share of each node's direct input that comes from non-error nodes, averaged over nodes
   * weighted by their influence on the logits (plus the logits' own weights).
   */
  completeness: number;
}

/**
 * Replacement and completeness scores (Ameisen et al. 2025; circuit-tracer's
 * compute_graph_scores) of a graph, or of its pruned version when `pruned` is given (edges and
 * nodes outside the masks removed).
 */
export function graphScores(g: Graph, pruned?: PruneResult): GraphScores {
  const L = nodeLayout(g);
  const n = L.n;
  let a = g.adjacency;
  if (pruned) {
    a = new Float32Array(n * n);
    for (let k = 0; k < n * n; k++) if (pruned.edgeMask[k]) a[k] = g.adjacency[k]!;
  }
  const weights = logitWeights(g, L);
  const norm = normalizeAdjacency(a, n);
  const infl = computeInfluence(norm, n, weights);
  let tok = 0;
  let err = 0;
  for (let i = L.tokenStart; i < L.logitStart; i++) tok += infl[i]!;
  for (let i = L.errorStart; i < L.tokenStart; i++) err += infl[i]!;
  let num = 0;
  let den = 0;
  for (let r = 0; r < n; r++) {
    let errFrac = 0;
    let rowSum = 0;
    for (let c = 0; c < n; c++) rowSum += norm[r * n + c]!;
    for (let c = L.errorStart; c < L.tokenStart; c++) errFrac += norm[r * n + c]!;
    // A row with no inputs (tokens, errors, unselected rows) counts as complete.
    const nonError = rowSum > 0 ? 1 - errFrac : 1;
    const w = infl[r]! + weights[r]!;
    num += nonError * w;
    den += w;
  }
  return { replacement: tok + err > 0 ? tok / (tok + err) : 0, completeness: den > 0 ? num / den : 0 };
}
