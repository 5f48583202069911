/**
 * Integrated gradients on the input embeddings (Sundararajan, Taly & Yan 2017, "Axiomatic
 * attribution for deep networks"). For an input x and a baseline x' (both activations at the
 * model's input hook point), the attribution of input coordinate i is
 *
 *   IG_i = (x_i - x'_i) * integral over a in [0, 1] of dM/dx_i at x' + a (x - x') da,
 *
 * approximated by a quadrature rule with `steps` points; the attributions then satisfy
 * completeness: their sum is M(x) - M(x') up to the quadrature error, which shrinks as `steps`
 * grows. The interpolation points run as stacked copies of the batch, as many per
 * forward+backward pass as the memory budget allows (`memoryBudgetBytes`, see memory.ts; one
 * compiled session per chunk shape). Attributions are reported per coordinate and summed over
 * d_model per token position.
 *
 * The input is `blocks.0.hook_resid_pre` (token + positional embeddings, the residual stream the
 * first block reads; default) or `hook_embed` (token embeddings only, positions held fixed, as
 * Captum's LayerIntegratedGradients on a word-embedding layer). The baseline is zeros (the paper's
 * choice for text) or another prompt's embeddings (e.g. the corrupted prompt of a patching problem).
 */
import { Tensor, tensor, zeros } from '../tensor/index.js';
import type { HookedTransformer, RunOptions } from '../model/hooked.js';
import { backwardPlan, memoryOptionsOf, type ChunkPlan, type MemoryOptions } from './memory.js';
import { promptTokens, type PromptInput } from './common.js';
import { repeatRows, weightedCopiesMetric, type TensorMetric } from './attribution.js';

/**
 * Quadrature rules on [0, 1], named as in Captum: right, left and middle Riemann sums (the paper
 * uses the right sum, a = k/m for k = 1..m), the trapezoid rule, and Gauss-Legendre (Captum's default).
 */
export type IntegrationRule = 'riemann_right' | 'riemann_left' | 'riemann_middle' | 'riemann_trapezoid' | 'gausslegendre';

/** The interpolation coefficients a_k in [0, 1] and their weights (summing to 1) of a rule with `steps` points. */
export function integrationPoints(steps: number, rule: IntegrationRule): { alphas: number[]; weights: number[] } {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`integration: steps must be a positive integer, got ${steps}`);
  const m = steps;
  const even = new Array<number>(m).fill(1 / m);
  switch (rule) {
    case 'riemann_right':
      return { alphas: Array.from({ length: m }, (_, k) => (k + 1) / m), weights: even };
    case 'riemann_left':
      return { alphas: Array.from({ length: m }, (_, k) => k / m), weights: even };
    case 'riemann_middle':
      return { alphas: Array.from({ length: m }, (_, k) => (k + 0.5) / m), weights: even };
    case 'riemann_trapezoid': {
      if (m < 2) throw new Error('integration: the trapezoid rule needs at least 2 steps');
      const h = 1 / (m - 1);
      return {
        alphas: Array.from({ length: m }, (_, k) => k * h),
        weights: Array.from({ length: m }, (_, k) => (k === 0 || k === m - 1 ? h / 2 : h)),
      };
    }
    case 'gausslegendre':
      return gaussLegendre(m);
    default:
      throw new Error(`integration: unknown rule '${String(rule)}'`);
  }
}

/** Gauss-Legendre nodes and weights on [0, 1] (Newton's method on the Legendre polynomial P_m). */
function gaussLegendre(m: number): { alphas: number[]; weights: number[] } {
  const alphas: number[] = [];
  const weights: number[] = [];
  for (let i = 1; i <= m; i++) {
    let x = Math.cos((Math.PI * (i - 0.25)) / (m + 0.5));
    let dp = 1;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= m; k++) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      const pm = m === 1 ? x : p1;
      const pm1 = m === 1 ? 1 : p0;
      dp = (m * (x * pm - pm1)) / (x * x - 1);
      const dx = pm / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    alphas.push((1 - x) / 2);
    weights.push(1 / ((1 - x * x) * dp * dp));
  }
  return { alphas, weights };
}

/** Where the baseline comes from. */
export type IgBaseline = 'zeros' | { tokens: PromptInput } | { values: Tensor };

export interface IntegratedGradientsOptions extends MemoryOptions {
  /** 'zeros' (default), another prompt (its activation at the input hook), or values [batch, pos, d_model]. */
  baseline?: IgBaseline;
  /** 'resid_pre' (`blocks.0.hook_resid_pre`: token + positional embeddings; default) or 'embed' (`hook_embed`). */
  at?: 'resid_pre' | 'embed';
  /** Quadrature points (default 50; the paper suggests 20 to 300). */
  steps?: number;
  /** Default 'riemann_right' (the paper's sum). */
  rule?: IntegrationRule;
  attentionMask?: RunOptions['attentionMask'];
  /**
   * Most rows (points x batch) per forward+backward pass; default: as many as the memory budget
   * holds (`memoryBudgetBytes`, default `memoryConfig.memoryBudgetBytes`), at most 256.
   */
  maxBatch?: number;
}

export interface IntegratedGradientsResult {
  /** Per token: the attributions summed over d_model, [batch, pos]. */
  attributions: Tensor;
  /** Per coordinate: (x - x') * the path-averaged gradient, [batch, pos, d_model]. */
  perDim: Tensor;
  /** The path-averaged gradient dM/dx, [batch, pos, d_model]. */
  meanGrad: Tensor;
  /** The hook point that was interpolated. */
  hook: string;
  /** M(input) and M(baseline). */
  inputValue: number;
  baselineValue: number;
  /** Completeness error: sum of the attributions - (M(input) - M(baseline)). */
  delta: number;
  /** How the points were split into forward+backward passes (points per pass, passes). */
  plan: ChunkPlan;
}

/** [k, 1, ..., 1] float tensor of `values` (k entries), for broadcasting over stacked copies. */
function column(values: readonly number[], rank: number): Tensor {
  return tensor(values, [values.length, ...new Array<number>(rank - 1).fill(1)]);
}

/**
 * Path-averaged gradients of `metric` at `hook` along base + a (x - base) for the rule's points:
 * sum_k w_k dM/dx at point k, [batch, pos, d_model]. The points run in chunks of stacked copies,
 * sized by `backwardPlan` from `maxBatch` or the memory budget; the last chunk is padded with
 * weight-0 points so every chunk reuses one compiled session. `extraMarks` / `reduce` let callers
 * (EAP-IG) read more gradients along the same path (`extraPerPosition`: the floats per position
 * that `reduce` adds to a pass, for the plan). `onPlan` receives the plan before the passes run.
 */
export function pathIntegratedGradients<T extends Record<string, Tensor> = { grad: Tensor }>(
  model: HookedTransformer,
  tokens: Tensor,
  spec: {
    hook: string;
    base: Tensor;
    target: Tensor;
    metric: TensorMetric;
    alphas: readonly number[];
    weights: readonly number[];
    attentionMask?: RunOptions['attentionMask'];
    /** More hook points to mark, and a reduction of (targets, per-copy weights [k]) -> summed tensors. */
    extraMarks?: readonly string[];
    reduce?: (targets: Record<string, { value: Tensor; grad: Tensor }>, k: number, weights: Tensor) => T;
    extraPerPosition?: number;
    onPlan?: (plan: ChunkPlan) => void;
  } & MemoryOptions,
): T {
  const [b, s] = tokens.shape as [number, number];
  const diff = spec.target.sub(spec.base);
  const n = spec.alphas.length;
  const plan = backwardPlan(model.cfg, b, s, n, spec);
  spec.onPlan?.(plan);
  const k = plan.size;
  const tiled = repeatRows(tokens, k);
  const mask = spec.attentionMask ? repeatRows(maskTensor(spec.attentionMask), k) : undefined;
  const rank = spec.base.rank;
  const base = spec.base.unsqueeze(0);
  const delta = diff.unsqueeze(0);
  const marks = [spec.hook, ...(spec.extraMarks ?? [])];
  const reduce =
    spec.reduce ??
    ((t: Record<string, { value: Tensor; grad: Tensor }>, kk: number, w: Tensor) => {
      const g = t[spec.hook]!.grad;
      void w; // the weights are already in the metric
      return { grad: g.reshape([kk, b, ...g.shape.slice(1)]).sum(0) } as unknown as T;
    });
  let acc: T | null = null;
  for (let start = 0; start < n; start += k) {
    const a = spec.alphas.slice(start, start + k);
    const w = spec.weights.slice(start, start + k);
    while (a.length < k) {
      a.push(0);
      w.push(0);
    }
    const aT = column(a, rank + 1);
    const wT = tensor(w, [k]);
    const point = (x: Tensor) => base.add(aT.mul(delta)).reshape(x.shape);
    const { grads: out } = model.hooked(tiled, {
      hooks: [[spec.hook, point]],
      grads: marks,
      metric: weightedCopiesMetric(spec.metric, k, b, wT),
      ...(mask ? { attentionMask: mask } : {}),
      reduce: (t) => reduce(t, k, wT),
    });
    if (!acc) acc = out;
    else {
      const prev: T = acc;
      acc = Object.fromEntries(Object.entries(out).map(([key, v]) => [key, prev[key]!.add(v)])) as T;
    }
  }
  return acc!;
}

function maskTensor(mask: NonNullable<RunOptions['attentionMask']>): Tensor {
  return mask instanceof Tensor ? mask.cast('int64') : tensor(mask.flat(), [mask.length, mask[0]?.length ?? 0], 'int64');
}

/** The input hook point of `at`. */
export function inputHook(model: HookedTransformer, at: 'resid_pre' | 'embed' = 'resid_pre'): string {
  const hook = at === 'embed' ? 'hook_embed' : 'blocks.0.hook_resid_pre';
  if (!model.hookNames.includes(hook)) throw new Error(`this model has no hook point '${hook}'`);
  return hook;
}

/**
 * Integrated gradients of `metric` (logits -> scalar tensor; see `logitDiffTensorMetric`) with
 * respect to the input embeddings of `input`, from the baseline to the input along a straight line.
 * Per-row attributions sum to the batch's metric difference (a batch-mean metric splits over rows).
 */
export function integratedGradients(
  model: HookedTransformer,
  input: PromptInput,
  metric: TensorMetric,
  options: IntegratedGradientsOptions = {},
): IntegratedGradientsResult {
  const tokens = promptTokens(model, input);
  const hook = inputHook(model, options.at);
  const run = options.attentionMask ? { attentionMask: options.attentionMask } : {};
  const x = model.runWithCache(tokens, { names: [hook], ...run }).cache.get(hook); // [batch, pos, d_model]
  const bl = options.baseline ?? 'zeros';
  let base: Tensor;
  if (bl === 'zeros') base = zeros(x.shape);
  else if ('tokens' in bl) {
    const bt = promptTokens(model, bl.tokens);
    if (bt.shape[0] !== tokens.shape[0] || bt.shape[1] !== tokens.shape[1])
      throw new Error(`integratedGradients: baseline prompt [${bt.shape}] and input [${tokens.shape}] must have the same shape`);
    base = model.runWithCache(bt, { names: [hook], ...run }).cache.get(hook);
  } else {
    base = bl.values.cast('float32');
    if (base.shape.length !== x.shape.length || base.shape.some((d, i) => d !== x.shape[i]))
      throw new Error(`integratedGradients: baseline values [${base.shape}] must have the input's shape [${x.shape}]`);
  }
  const { alphas, weights } = integrationPoints(options.steps ?? 50, options.rule ?? 'riemann_right');
  let plan: ChunkPlan = { size: 0, count: 0 };
  const { grad } = pathIntegratedGradients(model, tokens, {
    hook,
    base,
    target: x,
    metric,
    alphas,
    weights,
    ...run,
    ...memoryOptionsOf(options),
    onPlan: (p) => (plan = p),
  });
  const meanGrad = grad;
  const perDim = x.sub(base).mul(meanGrad);
  const attributions = perDim.sum(2);
  const inputValue = metric(model.forward(tokens, run)).item();
  const baselineValue = metric(model.runWithHooks(tokens, { ...run, hooks: [[hook, () => base]] })).item();
  const delta = attributions.sum().item() - (inputValue - baselineValue);
  return { attributions, perDim, meanGrad, hook, inputValue, baselineValue, delta, plan };
}
