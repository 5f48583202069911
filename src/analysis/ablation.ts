/**
 * Ablations: replace part of an activation by zero, by its mean over a reference batch, or by its
 * value on another (resampled) input, and measure a metric before and after.
 */
import { PRNG, scalar, tensor, type Tensor } from '../tensor/index.js';
import type { ActivationCache, HookFn, HookedTransformer, RunOptions } from '../model/hooked.js';
import {
  patchHooks,
  patchedLogits,
  runPatches,
  sliceEvaluator,
  type BatchOptions,
  type Patch,
  type PatchSite,
  type PatchSource,
} from './batched.js';
import { checkHead, checkLayer, maskFloat, metricValue, promptTokens, type Metric, type PromptInput } from './common.js';
import { hookName } from '../model/hook-names.js';

/**
 * What to ablate:
 * - `{ hook }`: a whole hook point (`pos`: only that position, the query position for
 *   hook_pattern and hook_attn_scores; `index`: any site, see `PatchSite`);
 * - `{ layer, head }`: one attention head, its slice of `blocks.{layer}.attn.hook_z`
 *   [batch, pos, head, d_head] (so its output, through W_O, is what is removed);
 * - `{ layer, neuron }`: one MLP neuron, its entry of `blocks.{layer}.mlp.hook_post` [batch, pos, d_mlp].
 */
export type AblationTarget =
  | { hook: string; pos?: number; index?: readonly (number | null)[] }
  | { layer: number; head: number; pos?: number }
  | { layer: number; neuron: number; pos?: number };

/** zero: 0; mean: the mean over a reference batch; resample: the value on a reference row. */
export type AblationKind = 'zero' | 'mean' | 'resample';

export interface AblationOptions extends RunOptions {
  /** Default 'zero'. */
  kind?: AblationKind;
  /** The reference batch for 'mean' and 'resample' (the same length as the input unless `meanOverPositions`). */
  reference?: PromptInput;
  /** Attention mask of the reference batch: 'mean' then averages over its real tokens only. */
  referenceMask?: RunOptions['attentionMask'];
  /**
   * 'mean': average over the reference's positions as well as its rows (default false: a mean
   * per position, over the rows). Position is axis 1 of every hook point except hook_attn_scores
   * and hook_pattern ([batch, head, q, k]), which are averaged over rows only.
   */
  meanOverPositions?: boolean;
  /** 'resample': row i of the input takes reference row `resampleRows[i]` (default: random rows from `seed`). */
  resampleRows?: readonly number[];
  /** Seed of the random reference rows (default 0). */
  seed?: number;
}

/** The patch site of an ablation target. */
export function ablationSite(model: HookedTransformer, target: AblationTarget): PatchSite {
  const pos = target.pos ?? null;
  if ('hook' in target) {
    if (target.index) return { hook: target.hook, index: target.index };
    if (target.pos === undefined) return { hook: target.hook };
    return { hook: target.hook, index: /hook_(pattern|attn_scores)$/.test(target.hook) ? [null, target.pos] : [target.pos] };
  }
  checkLayer(model, target.layer, 'ablation');
  if ('head' in target) {
    checkHead(model, target.head, 'ablation');
    return { hook: hookName('z', target.layer), index: [pos, target.head] };
  }
  if (model.cfg.moe)
    throw new Error(
      `ablation: layer ${target.layer} is a mixture of experts (${model.cfg.family}), whose neurons belong to each expert; ` +
        `ablate blocks.${target.layer}.mlp.experts.E.hook_post with a { hook, index } target`,
    );
  if (!Number.isInteger(target.neuron) || target.neuron < 0 || target.neuron >= model.cfg.dMlp)
    throw new Error(`ablation: neuron ${target.neuron} is out of range (d_mlp ${model.cfg.dMlp})`);
  return { hook: hookName('post', target.layer), index: [pos, target.neuron] };
}

function asList<T extends object>(x: T | readonly T[]): readonly T[] {
  return Array.isArray(x) ? (x as readonly T[]) : [x as T];
}

/**
 * The values each hook point is ablated to (see `AblationOptions`), given the input's cache of
 * those hook points (for their shapes).
 */
export function ablationSources(
  model: HookedTransformer,
  hooks: readonly string[],
  inputCache: ActivationCache,
  options: AblationOptions = {},
): Record<string, PatchSource> {
  const kind = options.kind ?? 'zero';
  const out: Record<string, PatchSource> = {};
  const shapeOf = (h: string) => inputCache.get(h).shape.slice(1);
  if (kind === 'zero') {
    for (const h of hooks) out[h] = { shape: shapeOf(h), values: scalar(0) };
    return out;
  }
  if (options.reference === undefined) throw new Error(`ablation: '${kind}' ablation needs a reference batch`);
  const ref = promptTokens(model, options.reference);
  const refRun = model.runWithCache(ref, { names: [...hooks], ...(options.referenceMask ? { attentionMask: options.referenceMask } : {}) });
  const refMask = options.referenceMask ? maskFloat(options.referenceMask) : null; // [ref_batch, pos]
  const inputBatch = inputCache.get(hooks[0]!).shape[0]!;
  let rows: number[] = [];
  if (kind === 'resample') {
    const rb = ref.shape[0]!;
    if (options.resampleRows) {
      rows = [...options.resampleRows];
      if (rows.length !== inputBatch || rows.some((r) => !Number.isInteger(r) || r < 0 || r >= rb))
        throw new Error(`ablation: resampleRows must give one reference row (0..${rb - 1}) per input row (${inputBatch})`);
    } else {
      const rng = new PRNG(options.seed ?? 0);
      rows = Array.from({ length: inputBatch }, () => rng.int(rb));
    }
  }
  for (const h of hooks) {
    const shape = shapeOf(h);
    const act = refRun.cache.get(h).cast('float32'); // [ref_batch, ...]
    const overPos = kind === 'mean' && options.meanOverPositions && !/hook_(pattern|attn_scores)$/.test(h);
    const refShape = act.shape.slice(1);
    const sameShape = refShape.length === shape.length && refShape.every((d, i) => d === shape[i]);
    if (!sameShape && !overPos)
      throw new Error(
        `ablation: '${h}' is [${refShape}] on the reference but [${shape}] on the input; use a reference of the same length` +
          (kind === 'mean' ? ' or meanOverPositions' : ''),
      );
    let values: Tensor;
    if (kind === 'mean') {
      const onPos = !/hook_(pattern|attn_scores)$/.test(h);
      if (refMask && onPos) {
        // Only the reference's real tokens count: weights [ref_batch, pos, 1, ...].
        const w = refMask.reshape([...refMask.shape, ...refShape.slice(1).map(() => 1)]);
        const axes = overPos ? [0, 1] : [0];
        values = act.mul(w).sum(axes, true).div(w.sum(axes, true).maximum(1e-9));
      } else values = overPos ? act.mean([0, 1], true) : act.mean(0, true);
    } else values = act.gather(tensor(rows, [rows.length], 'int64'), 0);
    out[h] = { shape, values };
  }
  return out;
}

/** The hook points a list of targets touches. */
function targetHooks(sites: readonly PatchSite[]): string[] {
  return [...new Set(sites.map((s) => s.hook))];
}

/**
 * Hooks for `runWithHooks` that apply the ablation of `targets` (all at once) to `input`'s run.
 * Returns the hooks and the input's token tensor.
 */
export function ablationHooks(
  model: HookedTransformer,
  input: PromptInput,
  targets: AblationTarget | readonly AblationTarget[],
  options: AblationOptions = {},
): { hooks: [string, HookFn][]; tokens: Tensor } {
  const tokens = promptTokens(model, input);
  const sites = asList(targets).map((t) => ablationSite(model, t));
  const hooks = targetHooks(sites);
  const { cache } = model.runWithCache(tokens, {
    names: hooks,
    ...(options.attentionMask ? { attentionMask: options.attentionMask } : {}),
  });
  const sources = ablationSources(model, hooks, cache, options);
  return { tokens, hooks: patchHooks(tokens.shape[0]!, sites, sources) };
}

export interface AblateResult {
  /** The metric of the unablated run. */
  before: number;
  /** The metric with the targets ablated. */
  after: number;
  /** The ablated run's logits [batch, pos, d_vocab]. */
  logits: Tensor;
}

/**
 * Ablates `targets` (together, in one run) and returns `metric` before and after, e.g.
 * `ablate(model, tokens, { layer: 1, head: 4 }, { metric: logitDiffMetric(a, b) })`.
 */
export function ablate(
  model: HookedTransformer,
  input: PromptInput,
  targets: AblationTarget | readonly AblationTarget[],
  options: AblationOptions & { metric: Metric },
): AblateResult {
  const tokens = promptTokens(model, input);
  const sites = asList(targets).map((t) => ablationSite(model, t));
  const hooks = targetHooks(sites);
  const run = { ...(options.attentionMask ? { attentionMask: options.attentionMask } : {}) };
  const { logits: clean, cache } = model.runWithCache(tokens, { names: hooks, ...run });
  const sources = ablationSources(model, hooks, cache, options);
  const logits = patchedLogits(model, tokens, sites, sources, run);
  return { before: metricValue(options.metric, clean), after: metricValue(options.metric, logits), logits };
}

/**
 * Ablates each entry of `targets` separately (an entry may be a list ablated together) and
 * returns `metric` before and after each, many ablations per forward pass (see batched.ts).
 */
export function ablationSweep(
  model: HookedTransformer,
  input: PromptInput,
  targets: readonly (AblationTarget | readonly AblationTarget[])[],
  options: AblationOptions & BatchOptions & { metric: Metric },
): { before: number; after: number[] } {
  const tokens = promptTokens(model, input);
  const patches: Patch[] = targets.map((t) => asList(t).map((x) => ablationSite(model, x)));
  const hooks = targetHooks(patches.flatMap((p) => p as PatchSite[]));
  const run = { ...(options.attentionMask ? { attentionMask: options.attentionMask } : {}) };
  const { logits, cache } = model.runWithCache(tokens, { names: hooks, ...run });
  const sources = ablationSources(model, hooks, cache, options);
  const evaluate = sliceEvaluator(tokens.shape[0]!, (l) => metricValue(options.metric, l));
  const after = runPatches(model, tokens, patches, sources, evaluate, {
    ...run,
    ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}),
    ...(options.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
  });
  return { before: metricValue(options.metric, logits), after };
}

/** `ablationSweep` over every attention head: `after` is [n_layers, n_heads]. */
export function headAblationSweep(
  model: HookedTransformer,
  input: PromptInput,
  options: AblationOptions & BatchOptions & { metric: Metric },
): { before: number; after: Tensor } {
  const { nLayers: L, nHeads: H } = model.cfg;
  const targets = Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
  const { before, after } = ablationSweep(model, input, targets, options);
  return { before, after: tensor(after, [L, H]) };
}

/** `ablationSweep` over every neuron of one layer's MLP: `after` is [d_mlp]. */
export function neuronAblationSweep(
  model: HookedTransformer,
  input: PromptInput,
  layer: number,
  options: AblationOptions & BatchOptions & { metric: Metric },
): { before: number; after: Tensor } {
  checkLayer(model, layer, 'neuronAblationSweep');
  const targets = Array.from({ length: model.cfg.dMlp }, (_, n) => ({ layer, neuron: n }));
  const { before, after } = ablationSweep(model, input, targets, options);
  return { before, after: tensor(after, [model.cfg.dMlp]) };
}
