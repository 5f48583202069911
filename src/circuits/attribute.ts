/**
 * Attribution graphs (Ameisen et al., "Circuit Tracing", 2025; circuit-tracer's attribution.py):
 * the direct linear effect of every active transcoder feature, error node and token embedding on
 * every active feature's pre-activation and on the top logits, in the local replacement model of
 * one prompt (src/circuits/replacement.ts).
 */
import { Tensor, tensor } from '../tensor/index.js';
import type { HookedTransformer, HookList } from '../model/hooked.js';
import { hookName } from '../model/hook-names.js';
import { backwardBytesPerRow, bucketAtLeast, rowsPerPass, type MemoryOptions } from '../analysis/memory.js';
import type { TracingTranscoders } from '../sae/clt/types.js';
import { frozenHooks, prepareReplacement, skipPath, type ReplacementContext } from './replacement.js';
import type { Graph } from './graph.js';

export interface AttributeProgress {
  phase: 'forward' | 'logits' | 'features' | 'bias' | 'done';
  /** Rows (target nodes) computed so far, and how many will be. */
  done: number;
  total: number;
}

export interface AttributeOptions extends MemoryOptions {
  /** Most logit nodes (default 10). */
  maxNLogits?: number;
  /** Keep the most probable tokens until their probabilities add up to this (default 0.95). */
  desiredLogitProb?: number;
  /** Most feature nodes (rows computed); the most influential on the logits are chosen (default all). */
  maxFeatureNodes?: number;
  /** Batches of rows between re-rankings of the features by influence (default 4). */
  updateInterval?: number;
  /** Called after each batch of rows. */
  onProgress?: (p: AttributeProgress) => void;
  /**
   * Cancellation: checked before each phase and after each batch of rows; when the signal is
   * aborted or `shouldStop()` returns true, attribute throws an AttributionCancelledError (and
   * returns nothing: no partial graph).
   */
  signal?: AbortSignal;
  shouldStop?: () => boolean;
  /** Identifies the model and transcoders in the graph (free text). */
  model?: string;
  scan?: string;
}

/** What `attribute` throws when its `signal` is aborted or `shouldStop()` says so. */
export class AttributionCancelledError extends Error {
  constructor(
    /** The phase it was in (the last one reported to onProgress). */
    readonly phase: AttributeProgress['phase'],
    /** Rows computed before it stopped, and how many there were to compute (0 before they are counted). */
    readonly done: number,
    readonly total: number,
  ) {
    super(`attribute: cancelled in the '${phase}' phase, after ${done} of ${total} rows; no graph was made`);
    this.name = 'AttributionCancelledError';
  }
}

/** One row to compute: a feature's pre-activation or a logit, read at one position. */
interface RowTarget {
  /** 0..nLayers-1: transcoder input of that layer; nLayers: the final norm's output (logits). */
  layer: number;
  pos: number;
  /** The vector dotted with the value at (layer, pos): an encoder column, or a demeaned unembedding. */
  vector: Float32Array;
}

/** Active features of one source layer, laid out per position in padded slots (see `attribute`, phase 2). */
interface SourceLayer {
  layer: number;
  /** Slots per position. */
  k: number;
  /** For each target layer t this layer writes: the scaled decoder rows [pos, d_model, k] (a_i * W_dec[s->t][f_i]). */
  decoders: { target: number; rows: Tensor }[];
  /** Active-feature index at [pos * k + slot], or -1 for padding. */
  slotFeature: Int32Array;
}

/**
 * Builds the attribution graph of `prompt`. Phases:
 * 1. Forward: the clean run of the prompt, with the frozen values (norm scales, attention
 *    patterns), the transcoder inputs and MLP outputs cached; feature activations, errors
 *    (true MLP output minus reconstruction) and token embeddings (replacement.ts).
 * 2. Active features: every non-zero activation (layer, pos, feature), sorted; their decoder
 *    rows scaled by the activation, laid out per source layer as [pos, d_model, slots].
 * 3. Logit targets: the most probable next tokens at the last position until their probability
 *    reaches `desiredLogitProb` (at most `maxNLogits`); each logit node is the demeaned
 *    pre-softcap logit, read through the frozen final norm. With a final soft-cap (Gemma 2),
 *    the capped logit is c * tanh(z / c) of this node's z (plus the mean): monotone, and its
 *    change is (1 - tanh^2(z / c)) times the node's to first order; the graph explains z.
 * 4. Rows: batched backward passes through the frozen replacement model (`model.hooked` with
 *    a metric and `reduce`), each batch row one target: the metric is the target's vector dotted
 *    with the value at its (layer, pos); the gradients at each layer's MLP output and at the token
 *    embeddings, contracted inside the compiled graph with the scaled decoder rows, the error
 *    vectors and the embeddings, give the target's row of direct effects. Rows are batched to
 *    the memory budget (`memoryBudgetBytes` / `maxBatch`), every batch the same size (the last
 *    one padded) so one compiled session serves them all. Logit rows first, then feature rows:
 *    all of them, or with `maxFeatureNodes` the most influential on the logits so far, re-ranked
 *    every `updateInterval` batches.
 * 5. Biases: one forward pass of the frozen replacement model with every node's contribution
 *    removed (token embeddings zero, each MLP output only its transcoder's output bias plus the
 *    skip path) gives each target's bias, the part no node explains; row sum + bias = value.
 * 6. Assemble the Graph in node order (graph.ts).
 * Cancellation (`signal`, `shouldStop`) is checked with each progress report: before phase 1,
 * after each batch of rows, before phase 5.
 */
export function attribute(
  model: HookedTransformer,
  prompt: string | readonly number[],
  transcoders: TracingTranscoders,
  options: AttributeOptions = {},
): Graph {
  const cfg = model.cfg;
  const tc = transcoders;
  const tokens = typeof prompt === 'string' ? model.toTokens(prompt)[0]! : [...prompt];
  const maxNLogits = options.maxNLogits ?? 10;
  const desired = options.desiredLogitProb ?? 0.95;
  if (!Number.isInteger(maxNLogits) || maxNLogits < 1)
    throw new Error(`attribute: maxNLogits must be a positive integer, got ${maxNLogits}`);
  if (!(desired > 0 && desired <= 1)) throw new Error(`attribute: desiredLogitProb must be in (0, 1], got ${desired}`);
  const onProgress = options.onProgress ?? (() => {});
  const stopRequested = (): boolean => options.signal?.aborted === true || options.shouldStop?.() === true;
  /** Reports progress, then stops here if cancellation was asked for. */
  const progress = (p: AttributeProgress): void => {
    onProgress(p);
    if (p.phase !== 'done' && stopRequested()) throw new AttributionCancelledError(p.phase, p.done, p.total);
  };
  progress({ phase: 'forward', done: 0, total: 0 });

  // 1. Forward.
  const ctx = prepareReplacement(model, tokens, tc);
  const nPos = ctx.nPos;
  const L = tc.nLayers;
  const d = cfg.dModel;

  // 2. Active features, sorted by (layer, pos, feature).
  const active: number[] = [];
  const actVals: number[] = [];
  const layerSpan: [number, number][] = [];
  for (let l = 0; l < L; l++) {
    const w = tc.widths[l]!;
    const a = ctx.acts[l]!.dataSync() as Float32Array;
    const start = actVals.length;
    for (let p = 0; p < nPos; p++)
      for (let f = 0; f < w; f++) {
        const v = a[p * w + f]!;
        if (!Number.isFinite(v)) throw new Error(`attribute: feature ${f} of layer ${l} at position ${p} is ${v}`);
        if (v !== 0) {
          active.push(l, p, f);
          actVals.push(v);
        }
      }
    layerSpan.push([start, actVals.length]);
  }
  const nActive = actVals.length;
  const sources: SourceLayer[] = [];
  for (let s = 0; s < L; s++) {
    const [start, end] = layerSpan[s]!;
    if (start === end) continue;
    const perPos = new Int32Array(nPos);
    for (let i = start; i < end; i++) perPos[active[3 * i + 1]!]++;
    const k = Math.max(...perPos);
    const slotFeature = new Int32Array(nPos * k).fill(-1);
    const slotOf = new Int32Array(end - start);
    const fill = new Int32Array(nPos);
    for (let i = start; i < end; i++) {
      const p = active[3 * i + 1]!;
      slotOf[i - start] = p * k + fill[p]!;
      slotFeature[p * k + fill[p]!] = i;
      fill[p]!++;
    }
    const featIdx = tensor(
      Array.from({ length: end - start }, (_, j) => active[3 * (start + j) + 2]!),
      [end - start],
      'int64',
    );
    const targets = tc.crossLayer ? Array.from({ length: L - s }, (_, j) => s + j) : [s];
    const decoders = targets.map((t) => {
      const rows = tc.wDec(s, t).gather(featIdx, 0).dataSync() as Float32Array; // [n_s, d]
      const out = new Float32Array(nPos * d * k); // [pos, d, k]
      for (let j = 0; j < end - start; j++) {
        const a = actVals[start + j]!;
        const slot = slotOf[j]!;
        const p = Math.floor(slot / k);
        const kk = slot % k;
        for (let c = 0; c < d; c++) out[(p * d + c) * k + kk] = a * rows[j * d + c]!;
      }
      return { target: t, rows: tensor(out, [nPos, d, k]) };
    });
    sources.push({ layer: s, k, decoders, slotFeature });
  }

  // 3. Logit targets: demeaned unembedding columns, through the final norm's weight for RMSNorm
  // (ln_final.hook_normalized is before the weight there, after weight and bias for LayerNorm).
  const last = ctx.logits
    .slice([0, nPos - 1])
    .reshape([cfg.dVocab])
    .dataSync() as Float32Array;
  const probs = softmax(last);
  const order = Array.from(probs.keys())
    .sort((a, b) => probs[b]! - probs[a]! || a - b)
    .slice(0, maxNLogits);
  let cum = 0;
  const logitTokens: number[] = [];
  for (const t of order) {
    logitTokens.push(t);
    cum += probs[t]!;
    if (cum >= desired) break;
  }
  const nLogits = logitTokens.length;
  const { vectors: logitVecs, offsets: logitOffsets } = logitVectors(model, logitTokens);

  // Node order of the full row space: [active features, errors (layer-major), tokens].
  const errorCol = nActive;
  const tokenCol = errorCol + L * nPos;
  const nCols = tokenCol + nPos;
  const encCols = (l: number, feats: number[]): Float32Array[] => {
    if (feats.length === 0) return [];
    const cols = tc
      .wEnc(l)
      .transpose()
      .gather(tensor(feats, [feats.length], 'int64'), 0)
      .dataSync() as Float32Array;
    return feats.map((_, j) => cols.slice(j * d, (j + 1) * d));
  };

  // 4. Rows.
  const maxFeatureNodes = Math.min(options.maxFeatureNodes ?? nActive, nActive);
  if (!Number.isInteger(maxFeatureNodes) || maxFeatureNodes < 0)
    throw new Error(`attribute: maxFeatureNodes must be a non-negative integer, got ${options.maxFeatureNodes}`);
  const extraPerPosition = sources.reduce((acc, s) => acc + s.k * (s.decoders.length + 1), 0) + 2 * L;
  const perPass = rowsPerPass(backwardBytesPerRow(cfg, nPos, extraPerPosition), options);
  const totalRows = nLogits + maxFeatureNodes;
  const batch = Math.min(perPass, bucketAtLeast(Math.min(totalRows, perPass)));
  const runRows = rowBatchRunner(ctx, sources, batch, { errorCol, tokenCol, nCols });
  const rows: Float32Array[] = [];
  const rowNode: number[] = []; // full-space node of each computed row: feature index, or nCols + logit rank
  let done = 0;
  progress({ phase: 'logits', done, total: totalRows });
  for (let i = 0; i < nLogits; i += batch) {
    const part = logitTokens.slice(i, i + batch).map((_, j) => ({ layer: L, pos: nPos - 1, vector: logitVecs[i + j]! }));
    runRows(part).forEach((r, j) => {
      rows.push(r);
      rowNode.push(nCols + i + j);
    });
    done += part.length;
    progress({ phase: 'logits', done, total: totalRows });
  }
  const visited = new Uint8Array(nActive);
  const runFeatures = (idx: number[]): void => {
    const byLayer = new Map<number, number[]>();
    for (const i of idx) byLayer.set(active[3 * i]!, [...(byLayer.get(active[3 * i]!) ?? []), i]);
    const vec = new Map<number, Float32Array>();
    for (const [l, is] of byLayer)
      encCols(
        l,
        is.map((i) => active[3 * i + 2]!),
      ).forEach((v, j) => vec.set(is[j]!, v));
    const part = idx.map((i) => ({ layer: active[3 * i]!, pos: active[3 * i + 1]!, vector: vec.get(i)! }));
    runRows(part).forEach((r, j) => {
      rows.push(r);
      rowNode.push(idx[j]!);
      visited[idx[j]!] = 1;
    });
    done += idx.length;
    progress({ phase: 'features', done, total: totalRows });
  };
  if (maxFeatureNodes === nActive) {
    for (let i = 0; i < nActive; i += batch) runFeatures(Array.from({ length: Math.min(batch, nActive - i) }, (_, j) => i + j));
  } else {
    const interval = options.updateInterval ?? 4;
    let nVisited = 0;
    while (nVisited < maxFeatureNodes) {
      const infl = partialInfluence(
        rows,
        rowNode,
        nCols,
        nLogits,
        logitTokens.map((t) => probs[t]!),
      );
      const ranked = Array.from({ length: nActive }, (_, i) => i)
        .filter((i) => !visited[i])
        .sort((a, b) => infl[b]! - infl[a]! || a - b)
        .slice(0, Math.min(interval * batch, maxFeatureNodes - nVisited));
      for (let i = 0; i < ranked.length; i += batch) runFeatures(ranked.slice(i, i + batch));
      nVisited += ranked.length;
    }
  }

  // 5. Biases and values of the target nodes.
  progress({ phase: 'bias', done, total: totalRows });
  const { featureBias, featurePre, logitBias, logitValue } = biasesAndValues(ctx, logitVecs, logitOffsets, active, nActive);

  // 6. Assemble in node order: [selected features, errors, tokens, logits].
  const selected: number[] = [];
  for (let i = 0; i < nActive; i++) if (visited[i]) selected.push(i);
  const nSel = selected.length;
  const n = nSel + L * nPos + nPos + nLogits;
  const colMap = new Int32Array(nCols).fill(-1); // full-space column -> node index
  selected.forEach((a, j) => (colMap[a] = j));
  for (let c = errorCol; c < nCols; c++) colMap[c] = nSel + (c - errorCol);
  const nodeOfRow = (node: number): number => (node >= nCols ? n - nLogits + (node - nCols) : colMap[node]!);
  const adjacency = new Float32Array(n * n);
  rows.forEach((r, j) => {
    const t = nodeOfRow(rowNode[j]!);
    for (let c = 0; c < nCols; c++) {
      const s = colMap[c]!;
      if (s >= 0) adjacency[t * n + s] = r[c]!;
    }
  });
  const biases = new Float32Array(n);
  const values = new Float32Array(n);
  selected.forEach((a, j) => {
    biases[j] = featureBias[a]!;
    values[j] = featurePre[a]!;
  });
  const errNorms = ctx.errors.map((e) => e.square().sum(-1).sqrt().dataSync() as Float32Array);
  for (let l = 0; l < L; l++) for (let p = 0; p < nPos; p++) values[nSel + l * nPos + p] = errNorms[l]![p]!;
  const embNorms = ctx.embed.square().sum(-1).sqrt().dataSync() as Float32Array;
  for (let p = 0; p < nPos; p++) values[nSel + L * nPos + p] = embNorms[p]!;
  for (let i = 0; i < nLogits; i++) {
    biases[n - nLogits + i] = logitBias[i]!;
    values[n - nLogits + i] = logitValue[i]!;
  }
  progress({ phase: 'done', done, total: totalRows });
  return {
    inputTokens: tokens,
    inputString: typeof prompt === 'string' ? prompt : '',
    nLayers: L,
    activeFeatures: Int32Array.from(active),
    activationValues: Float32Array.from(actVals),
    selectedFeatures: Int32Array.from(selected),
    logitTokens,
    logitProbabilities: Float32Array.from(logitTokens.map((t) => probs[t]!)),
    adjacency,
    biases,
    values,
    model: options.model ?? '',
    scan: options.scan ?? '',
  };
}

function softmax(x: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  const out = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += out[i] = Math.exp(x[i]! - m);
  for (let i = 0; i < x.length; i++) out[i]! /= s;
  return out;
}

/**
 * The vector each logit node dots with `ln_final.hook_normalized` at the last position (the
 * demeaned unembedding column, times the RMSNorm weight where the hook is before it), [d_model]
 * each, and the constant part of each demeaned logit (b_U[tok] - mean b_U).
 */
export function logitVectors(model: HookedTransformer, toks: readonly number[]): { vectors: Float32Array[]; offsets: number[] } {
  const cfg = model.cfg;
  const WU = model.params.unembed.W_U; // [d, vocab]
  const idx = tensor([...toks], [toks.length], 'int64');
  let cols = WU.transpose()
    .gather(idx, 0)
    .sub(WU.mean(1).reshape([1, cfg.dModel])); // [k, d]
  const w = model.params.ln_final.w;
  if (cfg.norm === 'rmsnorm' && w) cols = cols.mul((cfg.normWeightOffset ? w.add(cfg.normWeightOffset) : w).reshape([1, cfg.dModel]));
  const data = cols.dataSync() as Float32Array;
  const bU = model.params.unembed.b_U;
  let offsets = toks.map(() => 0);
  if (bU) {
    const b = bU.dataSync() as Float32Array;
    let mean = 0;
    for (const v of b) mean += v;
    mean /= b.length;
    offsets = toks.map((t) => b[t]! - mean);
  }
  return { vectors: toks.map((_, j) => data.slice(j * cfg.dModel, (j + 1) * cfg.dModel)), offsets };
}

/**
 * A function computing rows for up to `batch` targets in one forward+backward pass of the frozen
 * replacement model (phase 4 of `attribute`): returns one row per target over the full column space
 * [active features, errors, tokens].
 */
function rowBatchRunner(
  ctx: ReplacementContext,
  sources: SourceLayer[],
  batch: number,
  cols: { errorCol: number; tokenCol: number; nCols: number },
): (targets: RowTarget[]) => Float32Array[] {
  const { model, transcoders: tc, nPos } = ctx;
  const L = tc.nLayers;
  const d = model.cfg.dModel;
  const tokens = tensor(Array.from({ length: batch }, () => ctx.tokens).flat(), [batch, nPos], 'int64');
  const outNames = Array.from({ length: L }, (_, l) => tc.outputHook(l));
  const embedName = hookName('embed');
  // Each MLP output's constant part (features' and error's writes, output bias): the true output
  // less the clean skip path, which is linear in the residual stream and so stays live.
  const mlpConst = ctx.mlpOut.map((m, t) => {
    const skip = skipPath(tc, t, ctx.inputs[t]!);
    return skip ? m.sub(skip) : m;
  });
  return (targets) => {
    if (targets.length > batch) throw new Error(`internal: ${targets.length} rows for a batch of ${batch}`);
    // The targets' vectors [B, d], one-hot positions [B, pos] and layers [B, L + 1]; padding rows are 0.
    const vec = new Float32Array(batch * d);
    const posHot = new Float32Array(batch * nPos);
    const layerHot = new Float32Array(batch * (L + 1));
    targets.forEach((t, b) => {
      vec.set(t.vector, b * d);
      posHot[b * nPos + t.pos] = 1;
      layerHot[b * (L + 1) + t.layer] = 1;
    });
    const V = tensor(vec, [batch, 1, d]);
    const P = tensor(posHot, [batch, nPos]);
    const H = tensor(layerHot, [batch, L + 1]);
    const stash: Tensor[] = [];
    const hooks: HookList = [
      ...frozenHooks(ctx),
      ...Array.from({ length: L }, (_, l) => [tc.inputHook(l), (x: Tensor) => void (stash[l] = x)] as const),
      ['ln_final.hook_normalized', (x: Tensor) => void (stash[L] = x)] as const,
      ...outNames.map(
        (name, t) =>
          [
            name,
            (x: Tensor) => {
              const skip = skipPath(tc, t, stash[t]!);
              const c = mlpConst[t]!.expand(x.shape);
              return skip ? c.add(skip) : c;
            },
          ] as const,
      ),
    ];
    const { grads } = model.hooked(tokens, {
      hooks,
      grads: [...outNames, embedName],
      metric: () => {
        let m: Tensor | null = null;
        for (let l = 0; l <= L; l++) {
          const term = stash[l]!.mul(V)
            .sum(-1)
            .mul(P)
            .sum(-1)
            .mul(H.slice([null, { start: l, end: l + 1 }]).reshape([batch]))
            .sum();
          m = m ? m.add(term) : term;
        }
        return m!;
      },
      reduce: (t) => {
        const g = outNames.map((name) => t[name]!.grad); // [B, pos, d] each
        const gT = g.map((x) => x.permute([1, 0, 2])); // [pos, B, d]
        const features = sources.map((s) => {
          let e: Tensor | null = null;
          for (const dec of s.decoders) {
            const term = gT[dec.target]!.matmul(dec.rows); // [pos, B, k]
            e = e ? e.add(term) : term;
          }
          return e!;
        });
        const errors = g.map((x, l) => x.mul(ctx.errors[l]!).sum(-1)); // [B, pos] each
        const tokenEdges = t[embedName]!.grad.mul(ctx.embed).sum(-1); // [B, pos]
        return { features, errors, tokens: tokenEdges };
      },
    });
    const out = targets.map(() => new Float32Array(cols.nCols));
    sources.forEach((s, si) => {
      const e = grads.features[si]!.dataSync() as Float32Array; // [pos, B, k]
      for (let p = 0; p < nPos; p++)
        for (let kk = 0; kk < s.k; kk++) {
          const f = s.slotFeature[p * s.k + kk]!;
          if (f < 0) continue;
          for (let b = 0; b < targets.length; b++) out[b]![f] = e[(p * batch + b) * s.k + kk]!;
        }
    });
    grads.errors.forEach((et, l) => {
      const e = et.dataSync() as Float32Array;
      for (let b = 0; b < targets.length; b++) for (let p = 0; p < nPos; p++) out[b]![cols.errorCol + l * nPos + p] = e[b * nPos + p]!;
    });
    const tk = grads.tokens.dataSync() as Float32Array;
    for (let b = 0; b < targets.length; b++) for (let p = 0; p < nPos; p++) out[b]![cols.tokenCol + p] = tk[b * nPos + p]!;
    return out;
  };
}

/**
 * Influence of every column on the logits through the rows computed so far (circuit-tracer's
 * partial influences, used to choose the next feature rows): [nCols] over the full column space.
 */
function partialInfluence(rows: Float32Array[], rowNode: number[], nCols: number, nLogits: number, logitP: number[]): Float64Array {
  // The computed rows over all columns plus the logits, each row normalised to sum 1.
  const m = rows.length;
  const n = nCols + nLogits;
  const a = new Float32Array(m * n);
  rows.forEach((r, i) => a.set(r, i * n));
  const normRows = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let c = 0; c < n; c++) s += Math.abs(a[i * n + c]!);
    s = Math.max(s, 1e-10);
    for (let c = 0; c < n; c++) normRows[i * n + c] = Math.abs(a[i * n + c]!) / s;
  }
  const total = new Float64Array(n);
  let cur = new Float64Array(n);
  for (let j = 0; j < nLogits; j++) cur[nCols + j] = logitP[j]!;
  for (let it = 0; it < 1000; it++) {
    const next = new Float64Array(n);
    let any = false;
    for (let i = 0; i < m; i++) {
      const w = cur[rowNode[i]!]!;
      if (!w) continue;
      for (let c = 0; c < n; c++) {
        const v = normRows[i * n + c]!;
        if (v) {
          next[c] += w * v;
          any = true;
        }
      }
    }
    if (!any) return total;
    for (let c = 0; c < n; c++) total[c] += next[c]!;
    cur = next;
  }
  throw new Error('attribute: partial influence did not converge');
}

/**
 * Phase 5 of `attribute`: each target's value (clean pre-activation, demeaned pre-softcap logit)
 * and bias (its value in the frozen replacement model with every node's contribution removed).
 */
function biasesAndValues(
  ctx: ReplacementContext,
  logitVecs: Float32Array[],
  logitOffsets: number[],
  active: number[],
  nActive: number,
): { featureBias: Float32Array; featurePre: Float32Array; logitBias: Float32Array; logitValue: Float32Array } {
  const { model, transcoders: tc } = ctx;
  const L = tc.nLayers;
  const stash: Tensor[] = [];
  const hooks: HookList = [
    ...frozenHooks(ctx),
    [hookName('embed'), (x: Tensor) => x.mul(0)],
    ...Array.from({ length: L }, (_, l) => [tc.inputHook(l), (x: Tensor) => void (stash[l] = x)] as const),
    ...Array.from(
      { length: L },
      (_, t) =>
        [
          tc.outputHook(t),
          (x: Tensor) => {
            const b = tc.bDec(t).reshape([1, 1, tc.dOut]).expand(x.shape);
            const skip = skipPath(tc, t, stash[t]!);
            return skip ? b.add(skip) : b;
          },
        ] as const,
    ),
  ];
  const inputNames = Array.from({ length: L }, (_, l) => tc.inputHook(l));
  const { cache } = model.hooked(tensor([...ctx.tokens], [1, ctx.nPos], 'int64'), {
    hooks,
    cache: [...new Set([...inputNames, 'ln_final.hook_normalized'])],
  });
  const pre = (x: Tensor, l: number): Tensor => x.matmul(tc.wEnc(l)).add(tc.bEnc(l)); // [1, pos, w]
  const featureBias = new Float32Array(nActive);
  const featurePre = new Float32Array(nActive);
  for (let l = 0; l < L; l++) {
    const w = tc.widths[l]!;
    const zero = pre(cache.get(inputNames[l]!), l).dataSync() as Float32Array;
    const clean = pre(ctx.inputs[l]!, l).dataSync() as Float32Array;
    for (let i = 0; i < nActive; i++) {
      if (active[3 * i] !== l) continue;
      const k = active[3 * i + 1]! * w + active[3 * i + 2]!;
      featureBias[i] = zero[k]!;
      featurePre[i] = clean[k]!;
    }
  }
  const d = model.cfg.dModel;
  const lastOf = (t: Tensor): Float32Array =>
    t
      .slice([0, ctx.nPos - 1])
      .reshape([d])
      .dataSync() as Float32Array;
  const yZero = lastOf(cache.get('ln_final.hook_normalized'));
  const yClean = lastOf(ctx.finalNormalized);
  const dot = (a: Float32Array, b: Float32Array): number => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  };
  return {
    featureBias,
    featurePre,
    logitBias: Float32Array.from(logitVecs.map((v, j) => dot(v, yZero) + logitOffsets[j]!)),
    logitValue: Float32Array.from(logitVecs.map((v, j) => dot(v, yClean) + logitOffsets[j]!)),
  };
}
