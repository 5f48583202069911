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
 * Every run here, and in integrated gradients, EAP-IG and path patching, is the model's one
 * hooked run (`model.hooked`): forward with hooks and a cache, or forward+backward of a metric.
 */
import { Tensor, stack, tensor } from '../tensor/index.js';
import type { HookedTransformer } from '../model/hooked.js';
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
import { hookName } from '../model/hook-names.js';
import { memoryOptionsOf } from './memory.js';

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
    hookName('resid_pre', l),
    hookName('attn_out', l),
    ...(hasMlp ? [hookName('mlp_out', l)] : []),
    hookName('z', l),
    hookName('pattern', l),
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
    residPre: perLayer((l) => hookName('resid_pre', l), [0, 2]),
    attnOut: perLayer((l) => hookName('attn_out', l), [0, 2]),
    mlpOut: hasMlp ? perLayer((l) => hookName('mlp_out', l), [0, 2]) : null,
    headOut: perLayer((l) => hookName('z', l), [0, 1, 3]), // z: [batch, pos, head, d_head]
    headOutByPos: perLayer((l) => hookName('z', l), [0, 3]),
    headPattern: perLayer((l) => hookName('pattern', l), [0, 2, 3]), // pattern: [batch, head, q, k]
    headPatternByPos: perLayer((l) => hookName('pattern', l), [0, 3]),
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
  const sweepOpts: PatchingOptions = memoryOptionsOf(options);
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
