/**
 * The model computations behind the API, as the model worker (worker.ts) runs them: token ids
 * and checked numbers in, plain numbers out (the main thread tokenizes, checks the request
 * against the model's config, and turns the numbers into the JSON of each endpoint).
 *
 * Every run is padded to shape buckets (src/analysis/buckets.ts): prompts to a few lengths and
 * batches to a few sizes, top-k to a few widths, so the server compiles a bounded number of
 * sessions whatever the requests; the numbers equal the unpadded runs' up to float rounding.
 * A patching sweep runs as one compiled session for all its layers, positions and kinds (the
 * patched sites are mask inputs, see `patchPasses`), one pass per step of its generator.
 */
import type { HookedTransformer } from '../model/hooked.js';
// Each analysis from its own module rather than analysis/index.ts, whose tuned lens reads and
// writes files: this file also runs in the static workbench's Web Worker (no Node).
import { boxSlice, padRows, type ShapeBuckets } from '../analysis/buckets.js';
import { compareSteering, steeringHookName, steeringVector } from '../analysis/steering.js';
import { directLogitAttribution } from '../analysis/dla.js';
import { bucketAtLeast, forwardBytesPerRow, rowsPerPass } from '../analysis/memory.js';
import { headScores, inductionScores } from '../analysis/heads.js';
import { logitLens } from '../analysis/lens.js';
import type { TunedLens } from '../analysis/tuned-lens-core.js';
import { patchPasses, type Patch, type PatchSource } from '../analysis/batched.js';
import { preparePatching } from '../analysis/patching.js';
import type { TracingTranscoders } from '../sae/clt/types.js';
import { hookName } from '../model/hook-names.js';
import type { GenerateOptions } from '../model/generate.js';
import { HttpError } from './errors.js';
import type { PatchingKind } from './schemas.js';

/** What the computations run on: the model, the buckets, and the sweeps' pass budget. */
export interface Computer {
  model: HookedTransformer;
  buckets: ShapeBuckets;
  /** Estimated bytes of one patching pass (sets its rows, see memory.ts). */
  passBudgetBytes: number;
  /** The transcoders graphs are traced with (serve --transcoders), if any. */
  transcoders?: TracingTranscoders;
  /** The tuned lens POST /api/logit-lens reads through with lens: 'tuned', if one is loaded. */
  tunedLens?: TunedLens;
}

/** The top-k widths computed (the first at least k): requests for other k share their sessions. */
const TOPK_WIDTHS = [8, 32, 128];

function topKWidth(c: Computer, k: number): number {
  return Math.min(c.model.cfg.dVocab, TOPK_WIDTHS.find((w) => w >= k) ?? bucketAtLeast(k));
}

/** `topK` ids and probabilities per row of `n` rows read from [rows >= n, width] results. */
function firstK(values: Float32Array, indices: BigInt64Array, width: number, n: number, k: number): { probs: number[]; ids: number[] } {
  const probs: number[] = [];
  const ids: number[] = [];
  for (let r = 0; r < n; r++)
    for (let j = 0; j < k; j++) {
      probs.push(values[r * width + j]!);
      ids.push(Number(indices[r * width + j]));
    }
  return { probs, ids };
}

export interface ForwardArgs {
  tokens: number[];
  topK: number;
}
/** Per position, the topK next tokens: ids and probs [pos * topK]. */
export interface ForwardRaw {
  ids: number[];
  probs: number[];
  /** [pos]: the probability given to the prompt's own token at pos by the positions before it (NaN at 0). */
  tokenProbs: number[];
}

export function forwardTop(c: Computer, a: ForwardArgs): ForwardRaw {
  const s = a.tokens.length;
  const { tokens, attentionMask } = padRows([a.tokens], c.buckets.length(s));
  const width = topKWidth(c, a.topK);
  const probs = c.model.forward(tokens, { attentionMask }).index([0]).softmax(-1); // [pos, d_vocab]
  const { values, indices } = probs.topk(width, -1);
  const all = probs.dataSync() as Float32Array;
  const V = probs.shape[1]!;
  // Each token as the model predicted it after the one before: what a loss-per-token view colours.
  const tokenProbs = a.tokens.map((t, p) => (p === 0 ? NaN : all[(p - 1) * V + t]!));
  return { ...firstK(values.dataSync() as Float32Array, indices.dataSync() as BigInt64Array, width, s, a.topK), tokenProbs };
}

export interface AttentionArgs {
  tokens: number[];
  layer: number;
  /** One head, or every head of the layer. */
  head?: number;
}
/** pattern [heads, q, k] as a flat row-major array. */
export interface AttentionRaw {
  heads: number[];
  pattern: Float32Array;
}

export function attentionPatterns(c: Computer, a: AttentionArgs): AttentionRaw {
  const s = a.tokens.length;
  const H = c.model.cfg.nHeads;
  const name = hookName('pattern', a.layer);
  const { tokens, attentionMask } = padRows([a.tokens], c.buckets.length(s));
  const { cache } = c.model.runWithCache(tokens, { names: [name], attentionMask });
  const heads = a.head === undefined ? Array.from({ length: H }, (_, h) => h) : [a.head];
  const box = boxSlice(cache.get(name).cast('float32'), [
    [0, 1],
    [heads[0]!, heads.at(-1)! + 1],
    [0, s],
    [0, s],
  ]);
  return { heads, pattern: box.dataSync() as Float32Array };
}

export interface LensRaw {
  labels: string[];
  /** [layer, pos, topK] flat. */
  ids: number[];
  probs: number[];
  /** With `track`: that token's probability and rank (1 = the most likely) [layer, pos] flat. */
  trackProbs?: number[];
  trackRanks?: number[];
}

/** The logit lens, or with `tuned` the tuned lens, of one prompt. */
export function lens(c: Computer, a: ForwardArgs & { track?: number; tuned?: boolean }): LensRaw {
  const width = topKWidth(c, a.topK);
  if (a.tuned && !c.tunedLens) throw new HttpError(400, 'no tuned lens is loaded');
  const r = logitLens(c.model, [a.tokens], { topK: width, buckets: c.buckets, ...(a.tuned ? { tunedLens: c.tunedLens! } : {}) });
  let tracked: Pick<LensRaw, 'trackProbs' | 'trackRanks'> = {};
  if (a.track !== undefined) {
    const probs = r.logits.softmax(-1).dataSync() as Float32Array; // [layers, pos, d_vocab]
    const V = r.logits.shape[2]!;
    const trackProbs: number[] = [];
    const trackRanks: number[] = [];
    for (let at = 0; at < probs.length; at += V) {
      const p = probs[at + a.track]!;
      // Rank among the whole vocabulary: 1 + the tokens strictly more likely (ties share the better rank).
      let above = 0;
      for (let v = 0; v < V; v++) if (probs[at + v]! > p) above++;
      trackProbs.push(p);
      trackRanks.push(above + 1);
    }
    tracked = { trackProbs, trackRanks };
  }
  const ids: number[] = [];
  const probs: number[] = [];
  for (const layer of r.top)
    for (const preds of layer)
      for (let j = 0; j < a.topK; j++) {
        ids.push(preds[j]!.token);
        probs.push(preds[j]!.prob);
      }
  return { labels: r.labels, ids, probs, ...tracked };
}

export interface DlaArgs {
  tokens: number[];
  answer: number;
  wrong?: number;
  /** Absolute position (0 <= pos < tokens.length). */
  pos: number;
}
export interface DlaRaw {
  labels: string[];
  values: number[];
  total: number;
  logitDiff: number;
}

export function dlaValues(c: Computer, a: DlaArgs): DlaRaw {
  const { tokens, attentionMask } = padRows([a.tokens], c.buckets.length(a.tokens.length));
  const r = directLogitAttribution(c.model, tokens, {
    answer: a.answer,
    ...(a.wrong !== undefined ? { wrong: a.wrong } : {}),
    pos: a.pos,
    attentionMask,
  });
  return { labels: r.labels, values: r.values, total: r.total.item(), logitDiff: r.logitDiff.item() };
}

export interface HeadsArgs {
  prompt: number[] | null;
  seqLen: number;
  batch: number;
  seed: number;
}
/** [layer * head] scores. */
export interface HeadsRaw {
  previousToken: number[];
  duplicateToken: number[];
  induction: number[];
  tokens: number[][];
}

export function headDetectors(c: Computer, a: HeadsArgs): HeadsRaw {
  const { model, buckets } = c;
  const ind = inductionScores(model, { seqLen: a.seqLen, batch: a.batch, seed: a.seed, buckets });
  const other = headScores(model, a.prompt ? [a.prompt] : ind.tokens, ['previousToken', 'duplicateToken'], { buckets });
  const arr = (t: { dataSync(): unknown }) => Array.from(t.dataSync() as Float32Array);
  return {
    previousToken: arr(other.previousToken!),
    duplicateToken: arr(other.duplicateToken!),
    induction: arr(ind.scores),
    tokens: ind.tokens,
  };
}

const STEER_HOOKS = /^(hook_embed|hook_pos_embed|blocks\.\d+\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out))$/;

/**
 * How a steering request generates (both continuations, unsteered and steered, use the same
 * settings and seed): what the HTTP thread filled in (handlers.ts `samplingArgs`).
 */
export type Sampling = Required<Pick<GenerateOptions, 'maxNewTokens' | 'temperature' | 'seed'>> & Pick<GenerateOptions, 'topK' | 'topP'>;

/** The sampling settings out of a request's arguments, topK and topP only when given (as `generate` options). */
export function samplingOf(a: Sampling): Sampling {
  return {
    maxNewTokens: a.maxNewTokens,
    temperature: a.temperature,
    seed: a.seed,
    ...(a.topK !== undefined ? { topK: a.topK } : {}),
    ...(a.topP !== undefined ? { topP: a.topP } : {}),
  };
}

export interface SteerArgs extends Sampling {
  positive: number[][];
  negative: number[][];
  layer: number;
  hook: string;
  position: 'last' | 'mean';
  positions: 'all' | 'prompt' | 'generated';
  scale: number;
  prompt: number[];
}
export interface SteerRaw {
  hook: string;
  vectorNorm: number;
  unsteered: number[];
  steered: number[];
}

export function steerRun(c: Computer, a: SteerArgs): SteerRaw {
  const { model, buckets } = c;
  const hook = steeringHookName(model, a.layer, a.hook);
  if (!STEER_HOOKS.test(hook))
    throw new HttpError(
      400,
      `hook '${hook}' is not a residual-stream hook; steering adds a d_model vector at resid_pre, resid_mid, resid_post, attn_out or mlp_out`,
    );
  const vector = steeringVector(model, a.positive, a.negative, { layer: a.layer, hook, position: a.position, buckets });
  const [cmp] = compareSteering(model, [a.prompt], vector, {
    layer: a.layer,
    hook,
    scale: a.scale,
    positions: a.positions,
    ...samplingOf(a),
    buckets,
  });
  return { hook, vectorNorm: vector.square().sum().sqrt().item(), unsteered: cmp!.unsteered, steered: cmp!.steered };
}

/**
 * Per kind, the hook patched at a layer and the axes of one layer's cells: positions (patching the
 * activation at one position), heads (one head's slice of hook_z at every position), or positions
 * by heads (one head at one position, TransformerLens's `get_act_patch_attn_head_out_by_pos`).
 */
export const PATCH_KINDS: Record<PatchingKind, { hook: (l: number) => string; axes: readonly ('pos' | 'head')[] }> = {
  resid_pre: { hook: (l) => hookName('resid_pre', l), axes: ['pos'] },
  attn_out: { hook: (l) => hookName('attn_out', l), axes: ['pos'] },
  mlp_out: { hook: (l) => hookName('mlp_out', l), axes: ['pos'] },
  head_out: { hook: (l) => hookName('z', l), axes: ['head'] },
  head_out_by_pos: { hook: (l) => hookName('z', l), axes: ['pos', 'head'] },
};

/** One layer's cells of a kind: [pos], [head] or [pos, head], for a prompt of `s` tokens and `H` heads. */
export function patchCellShape(kind: PatchingKind, s: number, H: number): number[] {
  return PATCH_KINDS[kind].axes.map((a) => (a === 'pos' ? s : H));
}

/**
 * The patch indices (into the hook's value without its batch axis) of one layer's cells, in
 * row-major order of `patchCellShape`: [p] for a position, [null, h] for a head at every
 * position of hook_z [pos, head, d_head], [p, h] for a head at one position.
 */
function patchCellIndices(kind: PatchingKind, s: number, H: number): (number | null)[][] {
  switch (PATCH_KINDS[kind].axes.join(',')) {
    case 'pos':
      return Array.from({ length: s }, (_, p) => [p]);
    case 'head':
      return Array.from({ length: H }, (_, h) => [null, h]);
    default:
      return Array.from({ length: s * H }, (_, i) => [Math.floor(i / H), i % H]);
  }
}

export interface PatchingArgs {
  clean: number[];
  corrupted: number[];
  answer: number;
  wrong: number;
  /** Absolute position read by the metric. */
  pos: number;
  kinds: PatchingKind[];
}
/** What a patching job reports once its clean and corrupted runs are done. */
export interface PatchingStarted {
  cleanValue: number;
  corruptedValue: number;
  /** Patched runs in all. */
  total: number;
  /** Patched runs per pass. */
  passSize: number;
}
/** Per kind, the normalised metric [layer * (positions or heads)]. */
export type PatchingRaw = Partial<Record<PatchingKind, number[]>>;

/**
 * A job step: the first reports the start, each later one the patched runs done and the
 * normalised values of the runs this pass added (in sweep order: kind, layer, position or head).
 */
export type PatchingStep = { started: PatchingStarted } | { done: number; values: number[] };

/**
 * The patching sweep as a generator: the clean and corrupted runs (a bad problem throws here,
 * before the first yield), then one forward pass per step over all the kinds' patches. The
 * prompts run right-padded to a bucket length; positions past the prompt are never patched
 * except by head_out, which patches every position and leaves the real ones unchanged there.
 */
export function* patchingSweep(c: Computer, a: PatchingArgs): Generator<PatchingStep, PatchingRaw, void> {
  const { model, buckets } = c;
  const { nLayers: L, nHeads: H } = model.cfg;
  const s = a.clean.length;
  const S = buckets.length(s);
  const clean = padRows([a.clean], S);
  const corrupted = padRows([a.corrupted], S);
  const hooks = a.kinds.flatMap((k) => Array.from({ length: L }, (_, l) => PATCH_KINDS[k].hook(l)));
  const prep = preparePatching(
    model,
    { clean: clean.tokens, corrupted: corrupted.tokens, answer: a.answer, wrong: a.wrong, pos: a.pos, attentionMask: clean.attentionMask },
    hooks,
  );
  const sources: Record<string, PatchSource> = {};
  for (const h of hooks) {
    const v = prep.cleanCache.get(h);
    sources[h] = { shape: v.shape.slice(1), values: v };
  }
  const patches: Patch[] = [];
  const widths = a.kinds.map((k) => patchCellShape(k, s, H).reduce((x, y) => x * y, 1));
  for (const kind of a.kinds) {
    const cells = patchCellIndices(kind, s, H);
    for (let l = 0; l < L; l++) for (const index of cells) patches.push({ hook: PATCH_KINDS[kind].hook(l), index });
  }
  // Rows per pass: what the pass budget holds, a bucket size, and no more than the sweep needs.
  const fit = rowsPerPass(forwardBytesPerRow(model.cfg, S), { memoryBudgetBytes: c.passBudgetBytes });
  let passSize = Math.min(bucketAtLeast(patches.length), largestBucketAtMost(fit));
  passSize = Math.max(1, passSize);
  yield { started: { cleanValue: prep.cleanValue, corruptedValue: prep.corruptedValue, total: patches.length, passSize } };
  const values: number[] = [];
  for (const pass of patchPasses(model, prep.corruptedTokens, patches, sources, prep.evaluate, {
    attentionMask: clean.attentionMask,
    passSize,
  })) {
    const added = pass.values.map(prep.normalise);
    values.push(...added);
    yield { done: pass.done, values: added };
  }
  const out: PatchingRaw = {};
  let at = 0;
  a.kinds.forEach((kind, i) => {
    const n = L * widths[i]!;
    out[kind] = values.slice(at, at + n);
    at += n;
  });
  return out;
}

/** The largest of 1, 2, 3, 4, 6, 8, 12, ... that is at most `n` (n >= 1). */
function largestBucketAtMost(n: number): number {
  let b = 1;
  while (bucketAtLeast(b + 1) <= n) b = bucketAtLeast(b + 1);
  return b;
}

/** A computation a request names: run in one step, on the worker's model, with the request's arguments. */
export type Computation = (c: Computer, args: never) => unknown;

/**
 * The model's own computations by the name a request gives: what both workers answer, the
 * server's (worker.ts, which adds the dictionary and graph ones) and the static page's
 * (browser-worker.ts).
 */
export const MODEL_CALLS: Record<string, Computation> = {
  forward: forwardTop,
  attention: attentionPatterns,
  logitLens: lens,
  dla: dlaValues,
  heads: headDetectors,
  steer: steerRun,
};
