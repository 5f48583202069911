/**
 * Attribution patching (Nanda 2023, "Attribution patching: activation patching at industrial
 * scale"; Kramár et al. 2024, "AtP*"): a first-order Taylor estimate of every activation patch at
 * once. Activation patching writes the clean value of a node into the corrupted run and measures
 * the metric; attribution patching estimates that as
 *
 *   M(corrupted with node := clean) - M(corrupted)  ~=  (clean_act - corrupted_act) . dM/d act |corrupted
 *
 * from one forward pass on the clean prompt (activations only) and one forward+backward pass on
 * the corrupted prompt (activations and gradients, one compiled session via `gradientsAt`). The
 * direction is the one of this repository's activation patching (clean into corrupted, "denoising"),
 * and the estimate is normalised the same way (divided by M(clean) - M(corrupted)), so every
 * result here compares entry by entry with `patchResidPre`, `patchAttnOut`, `patchMlpOut`,
 * `patchHeadOut` and `patchHeadPattern` (`compareAttributionPatching` runs both and reports their
 * Pearson correlation).
 *
 * This module also holds the traced-run helpers that integrated gradients, EAP-IG and path
 * patching share: a forward pass with hooks that also caches activations (`runHookedWithCache`),
 * and a forward+backward pass with hooks (`hookedValueAndGrad`), each one compiled session.
 */
import { Tensor, jit, markGradTarget, stack, tensor, valueAndGrad, type GradTargets } from '../tensor/index.js';
import { forwardInputs, type HookContext, type HookFn, type HookedTransformer, type RunOptions } from '../model/hooked.js';
import { transformerForward, type HookPoints, type ModelParams } from '../model/forward.js';
import { normPos, perRow, promptTokens, type TokenChoice } from './common.js';
import {
  patchAttnOut,
  patchHeadOut,
  patchHeadPattern,
  patchMlpOut,
  patchResidPre,
  type PatchingOptions,
  type PatchingProblem,
} from './patching.js';

/**
 * A differentiable metric: logits [batch, pos, d_vocab] -> a scalar tensor, written with tensor
 * ops only (no `dataSync`/`item`), so it can be traced into the backward pass.
 */
export type TensorMetric = (logits: Tensor) => Tensor;

/**
 * The differentiable mean logit difference: mean over the batch of logit(answer) - logit(wrong)
 * at `pos` (default -1), or of logit(answer) alone when `wrong` is not given. Equals
 * `logitDiffMetric` on concrete logits.
 */
export function logitDiffTensorMetric(answer: TokenChoice, wrong?: TokenChoice, pos = -1): TensorMetric {
  return (logits) => {
    const [b, s, v] = logits.shape as [number, number, number];
    const a = typeof answer === 'number' ? [answer] : [...answer];
    const w = wrong === undefined ? null : typeof wrong === 'number' ? [wrong] : [...wrong];
    if (a.length !== 1 && a.length !== b) throw new Error(`logitDiffTensorMetric: ${a.length} answers for a batch of ${b}`);
    if (w && w.length !== 1 && w.length !== b) throw new Error(`logitDiffTensorMetric: ${w.length} wrong tokens for a batch of ${b}`);
    const p = normPos(pos, s);
    // A [b, d_vocab] weight matrix: +1/b at each row's answer, -1/b at its wrong token.
    const weights = new Float32Array(b * v);
    for (let r = 0; r < b; r++) {
      weights[r * v + a[r % a.length]!]! += 1 / b;
      if (w) weights[r * v + w[r % w.length]!]! -= 1 / b;
    }
    return logits
      .slice([null, { start: p, end: p + 1 }])
      .reshape([b, v])
      .mul(tensor(weights, [b, v]))
      .sum();
  };
}

/**
 * The differentiable metric of a patching problem: `override` when given; else the problem's own
 * `metric` when it returns a tensor built with tensor ops; else the mean logit difference of its
 * answer and wrong tokens at its position.
 */
export function problemTensorMetric(model: HookedTransformer, problem: PatchingProblem, override?: TensorMetric): TensorMetric {
  if (override) return override;
  if (problem.metric) {
    const m = problem.metric;
    return (logits) => {
      let v: number | Tensor;
      try {
        v = m(logits);
      } catch (e) {
        throw new Error(
          `the problem's metric cannot be differentiated (${(e as Error).message}); pass a TensorMetric (logits -> scalar tensor, tensor ops only) as options.metric`,
        );
      }
      if (!(v instanceof Tensor))
        throw new Error("the problem's metric returns a number; pass a TensorMetric (logits -> scalar tensor) as options.metric");
      return v.size === 1 ? v.reshape([]) : v.mean();
    };
  }
  const tokens = promptTokens(model, problem.clean);
  const [b] = tokens.shape as [number, number];
  return logitDiffTensorMetric(perRow(model, problem.answer, b, 'answer'), perRow(model, problem.wrong, b, 'wrong'), problem.pos ?? -1);
}

/**
 * A metric over `k` stacked copies of a batch of `batch` rows (logits [k * batch, pos, d_vocab]):
 * sum over copies i of weights[i] * metric(copy i). `weights` is a concrete [k] tensor, so the
 * compiled graph does not depend on its values. The copies come from one `split`, whose backward
 * is one concat: k slices would each pad their gradient back to the full logits, k tensors of
 * k * batch * pos * d_vocab floats alive together in ONNX Runtime (memory quadratic in k: 256
 * integrated-gradients points on a 14-token prompt of the default model took over 20 GB).
 */
export function weightedCopiesMetric(metric: TensorMetric, k: number, batch: number, weights: Tensor): TensorMetric {
  return (logits) => {
    if (logits.shape[0] !== k * batch) throw new Error(`weightedCopiesMetric: ${logits.shape[0]} rows, expected ${k} x ${batch}`);
    const w = weights.split(1);
    let total: Tensor | null = null;
    logits.split(batch).forEach((copy, i) => {
      const v = metric(copy).mul(w[i]!.reshape([]));
      total = total ? total.add(v) : v;
    });
    return total!;
  };
}

/** Repeats a tensor's rows (axis 0) k times: [k * n, ...] (copy i is rows i*n .. (i+1)*n - 1). */
export function repeatRows(t: Tensor, k: number): Tensor {
  if (k === 1) return t;
  const data = t.dataSync();
  const out = new (data.constructor as new (n: number) => typeof data)(data.length * k);
  for (let i = 0; i < k; i++) out.set(data as never, i * data.length);
  return tensor(out, [k * t.shape[0]!, ...t.shape.slice(1)], t.dtype);
}

/** What a traced run of the model does at its hook points. */
export interface HookedRunSpec {
  /** [hook name, fn] pairs applied in order (a returned tensor replaces the activation). */
  hooks?: readonly (readonly [string, HookFn])[];
  /** Hook points whose (post-hook) values are returned. */
  cache?: readonly string[];
  /** Attention mask ([batch, pos], 1 for real tokens). */
  attentionMask?: RunOptions['attentionMask'];
}

function specPoints(model: HookedTransformer, spec: HookedRunSpec, marks: readonly string[], out: Record<string, Tensor>): HookPoints {
  const known = new Set(model.hookNames);
  const hooks = new Map<string, HookFn[]>();
  for (const [name, fn] of spec.hooks ?? []) {
    if (!known.has(name)) throw new Error(`unknown hook point '${name}'`);
    hooks.set(name, [...(hooks.get(name) ?? []), fn]);
  }
  const cache = new Set(spec.cache ?? []);
  const markSet = new Set(marks);
  for (const n of [...cache, ...markSet]) if (!known.has(n)) throw new Error(`unknown hook point '${n}'`);
  const hp = ((name: string, x: Tensor): Tensor => {
    const fns = hooks.get(name);
    if (fns) {
      const layer = /^blocks\.(\d+)\./.exec(name);
      const ctx: HookContext = { name, layer: layer ? Number(layer[1]) : null, markGrad: (t) => markGradTarget(name, t) };
      for (const fn of fns) {
        const y = fn(x, ctx);
        if (y instanceof Tensor) {
          if (y.shape.length !== x.shape.length || y.shape.some((d, i) => d !== x.shape[i]))
            throw new Error(`hook on '${name}' returned shape [${y.shape}], expected [${x.shape}]`);
          x = y.dtype === x.dtype ? y : y.cast(x.dtype);
        }
      }
    }
    if (markSet.has(name)) x = markGradTarget(name, x);
    if (cache.has(name)) out[name] = x;
    return x;
  }) as HookPoints;
  hp.active = (name) => hooks.has(name) || cache.has(name) || markSet.has(name);
  return hp;
}

function checkTokens(model: HookedTransformer, tokens: Tensor): void {
  if (tokens.rank !== 2 || tokens.dtype !== 'int64') throw new Error(`tokens must be an int64 [batch, pos] tensor, got [${tokens.shape}]`);
  const ids = tokens.dataSync() as BigInt64Array;
  const V = BigInt(model.cfg.dVocab);
  for (let i = 0; i < ids.length; i++)
    if (ids[i]! < 0n || ids[i]! >= V) throw new Error(`token id ${ids[i]} is outside the vocabulary (0..${model.cfg.dVocab - 1})`);
}

function maskOf(mask: RunOptions['attentionMask'], tokens: Tensor): Tensor | null {
  if (!mask) return null;
  const m = mask instanceof Tensor ? mask : tensor((mask as number[][]).flat(), [mask.length, (mask[0] as number[]).length], 'int64');
  if (m.shape[0] !== tokens.shape[0] || m.shape[1] !== tokens.shape[1])
    throw new Error(`attentionMask has shape [${m.shape}], tokens have [${tokens.shape}]`);
  return m;
}

/**
 * One forward pass (one compiled session) with hooks that also returns the activations at
 * `spec.cache` after the hooks ran: what `runWithHooks` and `runWithCache` do, together.
 * tokens [batch, pos] -> { logits [batch, pos, d_vocab], cache by hook name }.
 */
export function runHookedWithCache(
  model: HookedTransformer,
  tokens: Tensor,
  spec: HookedRunSpec,
): { logits: Tensor; cache: Record<string, Tensor> } {
  const toks = tokens.dtype === 'int64' ? tokens : tokens.cast('int64');
  checkTokens(model, toks);
  const fwd = forwardInputs(model.cfg, toks, maskOf(spec.attentionMask, toks));
  const call = jit((params: ModelParams, t: Tensor) => {
    const cache: Record<string, Tensor> = {};
    const hp = specPoints(model, spec, [], cache);
    const logits = transformerForward(model.cfg, params, { ...fwd, tokens: t }, hp);
    return { logits, cache };
  });
  return call(model.params, toks) as { logits: Tensor; cache: Record<string, Tensor> };
}

/**
 * One forward+backward pass (one compiled session) with hooks: the value of `metric(logits)` and,
 * for each hook point in `marks`, its (post-hook) value and the metric's gradient with respect to
 * it, as `gradientsAt` gives, but with hooks applied first (e.g. an interpolated input). `reduce`
 * runs inside the compiled graph on the traced values and gradients, so only what it returns is
 * read back (by default the targets themselves).
 */
export function hookedValueAndGrad<T = GradTargets>(
  model: HookedTransformer,
  tokens: Tensor,
  spec: HookedRunSpec & { marks: readonly string[]; metric: TensorMetric; reduce?: (targets: GradTargets) => T },
): { value: Tensor; out: T } {
  const toks = tokens.dtype === 'int64' ? tokens : tokens.cast('int64');
  checkTokens(model, toks);
  const fwd = forwardInputs(model.cfg, toks, maskOf(spec.attentionMask, toks));
  const reduce = spec.reduce ?? ((t: GradTargets) => t as unknown as T);
  const run = jit((params: ModelParams, t: Tensor) => {
    const [value, , targets] = valueAndGrad((pp: ModelParams) => {
      const hp = specPoints(model, spec, spec.marks, {});
      const v = spec.metric(transformerForward(model.cfg, pp, { ...fwd, tokens: t }, hp));
      if (v.size !== 1) throw new Error(`the metric must return a scalar, got shape [${v.shape}]`);
      return v.reshape([]);
    })(params);
    return { value, out: reduce(targets as GradTargets) };
  });
  return run(model.params, toks) as { value: Tensor; out: T };
}

/** Attribution patching estimates, each normalised (clean = 1, corrupted = 0) like activation patching. */
export interface AttributionPatchingResult {
  /** `blocks.{l}.hook_resid_pre` per position: [n_layers, pos] (compare `patchResidPre`). */
  residPre: Tensor;
  /** `blocks.{l}.hook_attn_out` per position: [n_layers, pos] (compare `patchAttnOut`). */
  attnOut: Tensor;
  /** `blocks.{l}.hook_mlp_out` per position: [n_layers, pos]; null for attention-only models (compare `patchMlpOut`). */
  mlpOut: Tensor | null;
  /** Each head's output (its slice of `attn.hook_z`), every position at once: [n_layers, n_heads] (compare `patchHeadOut`). */
  headOut: Tensor;
  /** Each head's output per position: [n_layers, pos, n_heads] (compare `patchHeadOut(..., { perPosition: true })`). */
  headOutByPos: Tensor;
  /** Each head's attention pattern (`attn.hook_pattern`), every query at once: [n_layers, n_heads] (compare `patchHeadPattern`). */
  headPattern: Tensor;
  /** Each head's pattern per query position: [n_layers, n_heads, pos] (compare `patchHeadPattern(..., { perPosition: true })`). */
  headPatternByPos: Tensor;
  /** The raw metric on the clean and on the corrupted prompt. */
  cleanValue: number;
  corruptedValue: number;
}

export interface AttributionPatchingOptions {
  /** A differentiable metric to use instead of the problem's (see `problemTensorMetric`). */
  metric?: TensorMetric;
}

/**
 * Attribution patching of every node at once: one forward pass on the clean prompt and one
 * forward+backward pass on the corrupted prompt (the linearisation point: clean values are
 * "patched into" the corrupted run, as in `activationPatching`). Each entry is
 * sum over (batch, the node's other axes) of (clean - corrupted) * dM/d act at the corrupted run,
 * divided by M(clean) - M(corrupted). Exact wherever the metric is linear in the node (e.g. the
 * last layer's attention output of an attention-only model without a final norm); elsewhere a
 * first-order estimate, known to fail where attention saturates (Kramár et al. 2024).
 * The backward pass runs once over the prompt batch as given, so the memory budget of the sweeps
 * does not apply to it (about `backwardBytesPerRow` per row, plus the marked activations).
 */
export function attributionPatching(
  model: HookedTransformer,
  problem: PatchingProblem,
  options: AttributionPatchingOptions = {},
): AttributionPatchingResult {
  const { nLayers: L } = model.cfg;
  const clean = promptTokens(model, problem.clean);
  const corrupted = promptTokens(model, problem.corrupted);
  if (clean.shape[0] !== corrupted.shape[0] || clean.shape[1] !== corrupted.shape[1])
    throw new Error(`attribution patching: clean [${clean.shape}] and corrupted [${corrupted.shape}] prompts must have the same shape`);
  const metric = problemTensorMetric(model, problem, options.metric);
  const hasMlp = model.hookNames.includes('blocks.0.hook_mlp_out');
  const layerHooks = (l: number) => [
    `blocks.${l}.hook_resid_pre`,
    `blocks.${l}.hook_attn_out`,
    ...(hasMlp ? [`blocks.${l}.hook_mlp_out`] : []),
    `blocks.${l}.attn.hook_z`,
    `blocks.${l}.attn.hook_pattern`,
  ];
  const names = Array.from({ length: L }, (_, l) => layerHooks(l)).flat();
  const run = problem.attentionMask ? { attentionMask: problem.attentionMask } : {};
  const cleanRun = model.runWithCache(clean, { names, ...run });
  const cleanValue = metric(cleanRun.logits).item();
  const { value, targets } = model.gradientsAt(corrupted, names, metric, run);
  const corruptedValue = value.item();
  const span = cleanValue - corruptedValue;
  if (!(Math.abs(span) > 1e-12))
    throw new Error(`attribution patching: the metric is the same on the clean and corrupted prompts (${cleanValue}); nothing to recover`);
  // (clean - corrupted) * grad, summed over `axes`, normalised.
  const attr = (name: string, axes: number[]): Tensor => {
    const t = targets[name]!;
    return cleanRun.cache.get(name).sub(t.value).mul(t.grad).sum(axes).div(span);
  };
  const perLayer = (hook: (l: number) => string, axes: number[]) => stack(Array.from({ length: L }, (_, l) => attr(hook(l), axes)));
  return {
    residPre: perLayer((l) => `blocks.${l}.hook_resid_pre`, [0, 2]),
    attnOut: perLayer((l) => `blocks.${l}.hook_attn_out`, [0, 2]),
    mlpOut: hasMlp ? perLayer((l) => `blocks.${l}.hook_mlp_out`, [0, 2]) : null,
    headOut: perLayer((l) => `blocks.${l}.attn.hook_z`, [0, 1, 3]), // z: [batch, pos, head, d_head]
    headOutByPos: perLayer((l) => `blocks.${l}.attn.hook_z`, [0, 3]),
    headPattern: perLayer((l) => `blocks.${l}.attn.hook_pattern`, [0, 2, 3]), // pattern: [batch, head, q, k]
    headPatternByPos: perLayer((l) => `blocks.${l}.attn.hook_pattern`, [0, 3]),
    cleanValue,
    corruptedValue,
  };
}

/** Pearson correlation of two equally long lists of numbers (or tensors, flattened); NaN when either is constant. */
export function pearsonCorrelation(a: Tensor | ArrayLike<number>, b: Tensor | ArrayLike<number>): number {
  const xs = a instanceof Tensor ? Array.from(a.cast('float32').dataSync() as Float32Array) : Array.from(a);
  const ys = b instanceof Tensor ? Array.from(b.cast('float32').dataSync() as Float32Array) : Array.from(b);
  if (xs.length !== ys.length) throw new Error(`pearsonCorrelation: ${xs.length} vs ${ys.length} values`);
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** The nodes `compareAttributionPatching` can check, each named after its activation patching sweep. */
export type AttributionKind =
  'resid_pre' | 'attn_out' | 'mlp_out' | 'head_out' | 'head_out_by_pos' | 'head_pattern' | 'head_pattern_by_pos';

export interface AttributionComparison {
  /** Attribution patching's estimate (normalised). */
  attribution: Tensor;
  /** The real activation patching sweep (normalised), same shape. */
  activation: Tensor;
  /** Pearson correlation of the two over every entry (NaN when one is constant). */
  correlation: number;
}

/**
 * Runs attribution patching and the real activation patching sweeps of the same nodes and
 * returns both with their Pearson correlation, per kind of node (default: resid_pre, attn_out,
 * mlp_out where the model has MLPs, head_out and head_out_by_pos).
 */
export function compareAttributionPatching(
  model: HookedTransformer,
  problem: PatchingProblem,
  options: AttributionPatchingOptions & PatchingOptions & { kinds?: readonly AttributionKind[] } = {},
): Partial<Record<AttributionKind, AttributionComparison>> {
  const atp = attributionPatching(model, problem, options);
  const kinds: readonly AttributionKind[] = options.kinds ?? [
    'resid_pre',
    'attn_out',
    ...(atp.mlpOut ? (['mlp_out'] as const) : []),
    'head_out',
    'head_out_by_pos',
  ];
  const sweepOpts: PatchingOptions = {
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
    ...(options.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
  };
  const out: Partial<Record<AttributionKind, AttributionComparison>> = {};
  for (const kind of kinds) {
    let attribution: Tensor;
    let activation: Tensor;
    switch (kind) {
      case 'resid_pre':
        [attribution, activation] = [atp.residPre, patchResidPre(model, problem, sweepOpts)];
        break;
      case 'attn_out':
        [attribution, activation] = [atp.attnOut, patchAttnOut(model, problem, sweepOpts)];
        break;
      case 'mlp_out':
        if (!atp.mlpOut) throw new Error('compareAttributionPatching: this model has no MLPs');
        [attribution, activation] = [atp.mlpOut, patchMlpOut(model, problem, sweepOpts)];
        break;
      case 'head_out':
        [attribution, activation] = [atp.headOut, patchHeadOut(model, problem, sweepOpts)];
        break;
      case 'head_out_by_pos':
        [attribution, activation] = [atp.headOutByPos, patchHeadOut(model, problem, { ...sweepOpts, perPosition: true })];
        break;
      case 'head_pattern':
        [attribution, activation] = [atp.headPattern, patchHeadPattern(model, problem, sweepOpts)];
        break;
      case 'head_pattern_by_pos':
        [attribution, activation] = [atp.headPatternByPos, patchHeadPattern(model, problem, { ...sweepOpts, perPosition: true })];
        break;
    }
    out[kind] = { attribution, activation, correlation: pearsonCorrelation(attribution, activation) };
  }
  return out;
}
