/**
 * Activation patching (causal tracing; Meng et al. 2022, Wang et al. 2022): run the corrupted
 * prompt, write in one activation from the clean run, and see how much of the clean behaviour
 * comes back. The sweeps mirror TransformerLens's `patching` module (`get_act_patch_resid_pre`,
 * `get_act_patch_attn_out`, `get_act_patch_mlp_out`, `get_act_patch_attn_head_out_all_pos` /
 * `_by_pos`, `get_act_patch_attn_head_pattern_all_pos` / `_by_pos`), with the metric normalised
 * so that the clean run scores 1 and the corrupted run 0. Every sweep runs many patches per
 * forward pass (batched.ts).
 */
import { tensor, type Tensor } from '../tensor/index.js';
import type { ActivationCache, HookedTransformer, RunOptions } from '../model/hooked.js';
import { runPatches, type BatchOptions, type ChunkEvaluator, type Patch, type PatchSite, type PatchSource } from './batched.js';
import { metricValue, normPos, perRow, promptTokens, rowLogitDiffs, type Metric, type PromptInput, type TokenChoice } from './common.js';
import { hookName } from '../model/hook-names.js';

/** A clean/corrupted pair of prompt batches of the same shape, and what to measure. */
export interface PatchingProblem {
  clean: PromptInput;
  corrupted: PromptInput;
  /** The clean answer: one token for every row, or one per row. */
  answer: TokenChoice;
  /** The corrupted answer; the default metric is logit(answer) - logit(wrong). */
  wrong: TokenChoice;
  /** The position read by the default metric (default -1, the last). */
  pos?: number;
  /**
   * A raw metric instead of the mean logit difference (logits [batch, pos, d_vocab] -> number);
   * it is normalised the same way.
   */
  metric?: Metric;
  /** Attention mask shared by both prompts ([batch, pos]; left padding keeps pos -1 the last real token). */
  attentionMask?: RunOptions['attentionMask'];
}

/** Options of the patching sweeps (the attention mask belongs to the problem): `maxBatch` or `memoryBudgetBytes`. */
export type PatchingOptions = Pick<BatchOptions, 'maxBatch' | 'memoryBudgetBytes'>;

/** A problem with its clean run done: what every sweep needs. */
export interface PreparedPatching {
  cleanTokens: Tensor;
  corruptedTokens: Tensor;
  /** The clean run's cache of the hook points the sweep patches. */
  cleanCache: ActivationCache;
  /** Raw metric on the clean and the corrupted run. */
  cleanValue: number;
  corruptedValue: number;
  /** (value - corruptedValue) / (cleanValue - corruptedValue). */
  normalise(value: number): number;
  /** Reads a chunk of patched runs into raw metric values. */
  evaluate: ChunkEvaluator;
  /** The attention mask of both prompts, if any. */
  attentionMask?: RunOptions['attentionMask'];
}

/**
 * Runs the clean prompt (caching `hooks`) and the corrupted one, and sets up the normalised metric.
 */
export function preparePatching(model: HookedTransformer, problem: PatchingProblem, hooks: readonly string[]): PreparedPatching {
  const cleanTokens = promptTokens(model, problem.clean);
  const corruptedTokens = promptTokens(model, problem.corrupted);
  if (cleanTokens.shape[0] !== corruptedTokens.shape[0] || cleanTokens.shape[1] !== corruptedTokens.shape[1])
    throw new Error(`patching: clean [${cleanTokens.shape}] and corrupted [${corruptedTokens.shape}] prompts must have the same shape`);
  const [b, s] = cleanTokens.shape as [number, number];
  let raw: (logits: Tensor) => number;
  let evaluate: ChunkEvaluator;
  if (problem.metric) {
    const metric = problem.metric;
    raw = (l) => metricValue(metric, l);
    evaluate = (logits, k) => Array.from({ length: k }, (_, i) => raw(logits.slice([{ start: i * b, end: (i + 1) * b }])));
  } else {
    const answers = perRow(model, problem.answer, b, 'patching answer');
    const wrongs = perRow(model, problem.wrong, b, 'patching wrong');
    const pos = normPos(problem.pos ?? -1, s);
    // Read at `pos` from the logits as they are (a slice would compile a session per position).
    raw = (l) => rowLogitDiffs(l, answers, wrongs, pos).reduce((x, y) => x + y, 0) / b;
    evaluate = (logits, k) => {
      const d = rowLogitDiffs(logits, answers, wrongs, pos);
      return Array.from({ length: k }, (_, i) => d.slice(i * b, (i + 1) * b).reduce((x, y) => x + y, 0) / b);
    };
  }
  const run = problem.attentionMask ? { attentionMask: problem.attentionMask } : {};
  const clean = model.runWithCache(cleanTokens, { names: [...hooks], ...run });
  const cleanValue = raw(clean.logits);
  const corruptedValue = raw(model.forward(corruptedTokens, run));
  const span = cleanValue - corruptedValue;
  if (!(Math.abs(span) > 1e-12))
    throw new Error(`patching: the metric is the same on the clean and corrupted prompts (${cleanValue}); nothing to recover`);
  return {
    cleanTokens,
    corruptedTokens,
    cleanCache: clean.cache,
    cleanValue,
    corruptedValue,
    normalise: (v) => (v - corruptedValue) / span,
    evaluate,
    ...run,
  };
}

function patchSites(p: Patch): readonly PatchSite[] {
  return Array.isArray(p) ? (p as readonly PatchSite[]) : [p as PatchSite];
}

/**
 * Activation patching of arbitrary patches: for each patch, the corrupted run with the patch's
 * sites taken from the clean run; returns the normalised metric per patch (1: the clean value,
 * 0: the corrupted value). E.g. `[{ hook: 'blocks.0.hook_resid_pre' }]` (every position) gives 1.
 */
export function activationPatching(
  model: HookedTransformer,
  problem: PatchingProblem,
  patches: readonly Patch[],
  options: PatchingOptions = {},
): number[] {
  const hooks = [...new Set(patches.flatMap((p) => patchSites(p).map((s) => s.hook)))];
  const prep = preparePatching(model, problem, hooks);
  return patchWith(model, prep, patches, hooks, options);
}

function patchWith(
  model: HookedTransformer,
  prep: PreparedPatching,
  patches: readonly Patch[],
  hooks: readonly string[],
  options: PatchingOptions,
): number[] {
  const sources: Record<string, PatchSource> = {};
  for (const h of hooks) {
    const v = prep.cleanCache.get(h);
    sources[h] = { shape: v.shape.slice(1), values: v };
  }
  const run = { ...options, ...(prep.attentionMask ? { attentionMask: prep.attentionMask } : {}) };
  return runPatches(model, prep.corruptedTokens, patches, sources, prep.evaluate, run).map(prep.normalise);
}

/** Patches built from a grid of indices, run, and returned as a tensor of the grid's shape. */
function sweep(
  model: HookedTransformer,
  problem: PatchingProblem,
  hookOf: (layer: number) => string,
  grid: readonly number[],
  site: (layer: number, i: readonly number[]) => readonly (number | null)[],
  options: PatchingOptions,
): Tensor {
  const L = model.cfg.nLayers;
  const hooks = Array.from({ length: L }, (_, l) => hookOf(l));
  for (const h of hooks) if (!model.hookNames.includes(h)) throw new Error(`patching: this model has no hook point '${h}'`);
  const prep = preparePatching(model, problem, hooks);
  const inner = grid.reduce((a, d) => a * d, 1);
  const patches: Patch[] = [];
  for (let l = 0; l < L; l++)
    for (let f = 0; f < inner; f++) {
      const idx: number[] = [];
      let rem = f;
      for (let ax = grid.length - 1; ax >= 0; ax--) {
        idx[ax] = rem % grid[ax]!;
        rem = Math.floor(rem / grid[ax]!);
      }
      patches.push({ hook: hooks[l]!, index: site(l, idx) });
    }
  return tensor(patchWith(model, prep, patches, hooks, options), [L, ...grid]);
}

function seqLen(model: HookedTransformer, problem: PatchingProblem): number {
  return promptTokens(model, problem.corrupted).shape[1]!;
}

/**
 * Patches the residual stream at the start of each layer (`blocks.{l}.hook_resid_pre`) at each
 * position: [n_layers, pos] (TransformerLens's `get_act_patch_resid_pre`).
 */
export function patchResidPre(model: HookedTransformer, problem: PatchingProblem, options: PatchingOptions = {}): Tensor {
  return sweep(
    model,
    problem,
    (l) => hookName('resid_pre', l),
    [seqLen(model, problem)],
    (_, [p]) => [p!],
    options,
  );
}

/** Patches each layer's attention output (`hook_attn_out`) at each position: [n_layers, pos]. */
export function patchAttnOut(model: HookedTransformer, problem: PatchingProblem, options: PatchingOptions = {}): Tensor {
  return sweep(
    model,
    problem,
    (l) => hookName('attn_out', l),
    [seqLen(model, problem)],
    (_, [p]) => [p!],
    options,
  );
}

/** Patches each layer's MLP output (`hook_mlp_out`) at each position: [n_layers, pos]. */
export function patchMlpOut(model: HookedTransformer, problem: PatchingProblem, options: PatchingOptions = {}): Tensor {
  return sweep(
    model,
    problem,
    (l) => hookName('mlp_out', l),
    [seqLen(model, problem)],
    (_, [p]) => [p!],
    options,
  );
}

/**
 * Patches each head's output (its slice of `attn.hook_z`): at every position at once,
 * [n_layers, n_heads] (`get_act_patch_attn_head_out_all_pos`), or with `perPosition` one position
 * at a time, [n_layers, pos, n_heads] (`get_act_patch_attn_head_out_by_pos`).
 */
export function patchHeadOut(
  model: HookedTransformer,
  problem: PatchingProblem,
  options: PatchingOptions & { perPosition?: boolean } = {},
): Tensor {
  const H = model.cfg.nHeads;
  const z = (l: number) => hookName('z', l);
  if (!options.perPosition) return sweep(model, problem, z, [H], (_, [h]) => [null, h!], options);
  return sweep(model, problem, z, [seqLen(model, problem), H], (_, [p, h]) => [p!, h!], options);
}

/**
 * Patches each head's attention pattern (its slice of `attn.hook_pattern` [batch, head, q, k]):
 * every query position at once, [n_layers, n_heads] (`get_act_patch_attn_head_pattern_all_pos`),
 * or with `perPosition` one query (destination) position at a time, [n_layers, n_heads, pos]
 * (`get_act_patch_attn_head_pattern_by_pos`, with its axis order).
 */
export function patchHeadPattern(
  model: HookedTransformer,
  problem: PatchingProblem,
  options: PatchingOptions & { perPosition?: boolean } = {},
): Tensor {
  const H = model.cfg.nHeads;
  const pat = (l: number) => hookName('pattern', l);
  if (!options.perPosition) return sweep(model, problem, pat, [H], (_, [h]) => [h!], options);
  return sweep(model, problem, pat, [H, seqLen(model, problem)], (_, [h, p]) => [h!, p!], options);
}
