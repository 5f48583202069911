/**
 * Linear probes (Alain & Bengio 2016, "Understanding intermediate layers using linear classifier
 * probes"; Belinkov 2022, "Probing Classifiers"): fit a linear map from a model's activations to
 * a property of the input and measure, on held-out examples, how well the property can be read
 * off linearly.
 *
 * - 'logistic': multinomial logistic regression, trained with Adam (the `src/train` loop: one
 *   compiled graph per step) on mean cross-entropy + l2 * ||W||^2.
 * - 'linear': least squares with a ridge penalty, solved exactly (normal equations, Cholesky in
 *   float64): mean squared error + l2 * ||W||^2. For class labels it regresses one-hot targets and
 *   predicts the argmax; for real-valued targets it is ridge regression, with R^2 and MSE.
 *
 * Features are standardised with the training split's mean and standard deviation before
 * fitting (so `l2` means the same at every layer); the returned weights and bias are folded back
 * to act on raw features: scores = features @ weights + bias.
 */
import { PRNG, Tensor, concat, permutation, tensor, zeros } from '../tensor/index.js';
import { suggest, type HookedTransformer, type RunOptions } from '../model/hooked.js';
import { adam } from '../train/optim.js';
import { fixedData, syntheticData } from '../train/data.js';
import { train } from '../train/loop.js';
import { maskFloat, type PromptInput } from './common.js';
import { promptList, rowActivations } from './steering.js';

export type ProbeKind = 'logistic' | 'linear';

export interface TrainProbeOptions {
  /** 'logistic' (default): multinomial logistic regression; 'linear': least squares / ridge. */
  kind?: ProbeKind;
  /**
   * 'classification' (integer labels 0..C-1) or 'regression' (real targets, [n] or [n, k]).
   * Default: classification for 'logistic'; for 'linear', classification when every label is a
   * non-negative integer and the labels are one-dimensional, regression otherwise.
   */
  task?: 'classification' | 'regression';
  /** Fraction of examples held out for testing (default 0.2), chosen by a seeded shuffle. */
  testFraction?: number;
  /** Seed of the train/test split (and of minibatches). Default 0. */
  seed?: number;
  /** Penalty l2 * ||W||^2 on the weights (not the bias), in standardised feature units. Default 1e-4. */
  l2?: number;
  /** Adam steps for 'logistic' (default 300). */
  steps?: number;
  /** Adam learning rate for 'logistic' (default 0.05). */
  lr?: number;
  /** Minibatch size for 'logistic' (default: the whole training split every step). */
  batchSize?: number;
  /** Number of classes (default max label + 1). */
  numClasses?: number;
  /** Standardise features with the training split's statistics (default true). */
  standardize?: boolean;
}

export interface ProbeResult {
  kind: ProbeKind;
  task: 'classification' | 'regression';
  /** [d, C] (classes) or [d, k] (regression outputs), acting on raw features. */
  weights: Tensor;
  /** [C] or [k]. */
  bias: Tensor;
  /** Classes (classification) or outputs (regression). */
  outputs: number;
  /** Whether the targets were [n] (regression predictions are then [n], not [n, 1]). */
  vectorTargets: boolean;
  trainIndices: number[];
  testIndices: number[];
  /** Classification accuracy on each split (null without a test split, or for regression). */
  trainAccuracy: number | null;
  testAccuracy: number | null;
  /** Regression: coefficient of determination (averaged over outputs, as scikit-learn) and mean squared error. */
  trainR2: number | null;
  testR2: number | null;
  trainMse: number | null;
  testMse: number | null;
  /** The fitted objective on the training split (standardised units). */
  loss: number;
  /** Chance accuracy: the share of the most common class in the training split (classification). */
  majorityBaseline: number | null;
}

/**
 * Fits a linear probe from `features` [n, d] to `labels` (n class ids, or regression targets [n]
 * or [n, k]) on a seeded train split and scores it on the held-out split.
 */
export async function trainProbe(
  features: Tensor | readonly (readonly number[])[],
  labels: Tensor | readonly number[] | readonly (readonly number[])[],
  options: TrainProbeOptions = {},
): Promise<ProbeResult> {
  const X = toFloat64Matrix(features, 'trainProbe features');
  const [n, d] = X.shape;
  const { values: yv, cols: k, vector } = toTargets(labels, 'trainProbe labels');
  if (yv.length / k !== n) throw new Error(`trainProbe: ${yv.length / k} labels for ${n} feature rows`);
  const kind = options.kind ?? 'logistic';
  if (kind !== 'logistic' && kind !== 'linear') throw new Error(`trainProbe: kind must be 'logistic' or 'linear', got '${String(kind)}'`);
  const integral = vector && yv.every((v) => Number.isInteger(v) && v >= 0);
  const task = options.task ?? (kind === 'logistic' || integral ? 'classification' : 'regression');
  if (kind === 'logistic' && task !== 'classification')
    throw new Error("trainProbe: a 'logistic' probe classifies; use kind 'linear' for regression");
  if (task === 'classification' && !integral) throw new Error('trainProbe: classification labels must be one non-negative integer per row');
  const C = task === 'classification' ? (options.numClasses ?? Math.max(...yv) + 1) : k;
  if (task === 'classification' && yv.some((v) => v >= C)) throw new Error(`trainProbe: a label is >= numClasses ${C}`);
  const l2 = options.l2 ?? 1e-4;
  if (!(l2 >= 0)) throw new Error(`trainProbe: l2 must be >= 0, got ${l2}`);

  // Seeded split.
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction >= 0 && testFraction < 1)) throw new Error(`trainProbe: testFraction must be in [0, 1), got ${testFraction}`);
  const order = Array.from(permutation(n, new PRNG(options.seed ?? 0)));
  const nTest = Math.round(n * testFraction);
  const testIdx = order.slice(0, nTest).sort((a, b) => a - b);
  const trainIdx = order.slice(nTest).sort((a, b) => a - b);
  if (trainIdx.length === 0) throw new Error(`trainProbe: no training examples (n = ${n}, testFraction ${testFraction})`);

  // Standardisation from the training split.
  const mean = new Float64Array(d);
  const std = new Float64Array(d).fill(1);
  if (options.standardize ?? true) {
    for (const i of trainIdx) for (let j = 0; j < d; j++) mean[j]! += X.data[i * d + j]!;
    for (let j = 0; j < d; j++) mean[j]! /= trainIdx.length;
    const v = new Float64Array(d);
    for (const i of trainIdx) for (let j = 0; j < d; j++) v[j]! += (X.data[i * d + j]! - mean[j]!) ** 2;
    for (let j = 0; j < d; j++) std[j] = Math.sqrt(v[j]! / trainIdx.length) || 1;
  }
  const rows = (idx: number[]): Float64Array => {
    const out = new Float64Array(idx.length * d);
    idx.forEach((i, r) => {
      for (let j = 0; j < d; j++) out[r * d + j] = (X.data[i * d + j]! - mean[j]!) / std[j]!;
    });
    return out;
  };
  const targets = (idx: number[]): Float64Array => {
    const out = new Float64Array(idx.length * C);
    idx.forEach((i, r) => {
      if (task === 'classification') out[r * C + yv[i]!] = 1;
      else for (let c = 0; c < C; c++) out[r * C + c] = yv[i * k + c]!;
    });
    return out;
  };
  const Xtr = rows(trainIdx);
  const Ytr = targets(trainIdx);
  const m = trainIdx.length;

  // Fit in standardised units: W [d, C], b [C].
  let W: Float64Array;
  let b: Float64Array;
  let loss: number;
  if (kind === 'linear') ({ W, b, loss } = ridge(Xtr, Ytr, m, d, C, l2));
  else {
    const steps = options.steps ?? 300;
    const bs = options.batchSize ?? m;
    if (!Number.isInteger(bs) || bs < 1) throw new Error(`trainProbe: batchSize must be a positive integer, got ${bs}`);
    const xt = tensor(Float32Array.from(Xtr), [m, d]);
    const yt = tensor(Float32Array.from(Ytr), [m, C]);
    const data =
      bs >= m
        ? fixedData({ x: xt, y: yt })
        : syntheticData(
            (r) => {
              const pick = Array.from({ length: bs }, () => r.int(m));
              const bx = new Float32Array(bs * d);
              const by = new Float32Array(bs * C);
              pick.forEach((i, row) => {
                bx.set(Xtr.subarray(i * d, (i + 1) * d), row * d);
                by.set(Ytr.subarray(i * C, (i + 1) * C), row * C);
              });
              return { x: tensor(bx, [bs, d]), y: tensor(by, [bs, C]) };
            },
            { seed: options.seed ?? 0 },
          );
    const objective = (p: { W: Tensor; b: Tensor }, batch: { x: Tensor; y: Tensor }): Tensor => {
      const ce = batch.y.mul(batch.x.matmul(p.W).add(p.b).logSoftmax(-1)).sum(-1).mean().neg();
      return l2 > 0 ? ce.add(p.W.square().sum().mul(l2)) : ce;
    };
    const res = await train({
      params: { W: zeros([d, C]), b: zeros([C]) },
      loss: objective,
      optimizer: adam(),
      data,
      steps,
      lr: options.lr ?? 0.05,
      progress: false,
      logEvery: steps,
    });
    W = Float64Array.from(res.params.W.dataSync() as Float32Array);
    b = Float64Array.from(res.params.b.dataSync() as Float32Array);
    loss = objective(res.params, { x: xt, y: yt }).item();
  }

  // Fold the standardisation into raw-feature weights: ((x - mu) / sigma) W + b = x (W / sigma) + (b - (mu / sigma) W).
  const Wr = new Float64Array(d * C);
  const br = Float64Array.from(b);
  for (let j = 0; j < d; j++)
    for (let c = 0; c < C; c++) {
      Wr[j * C + c] = W[j * C + c]! / std[j]!;
      br[c]! -= (mean[j]! / std[j]!) * W[j * C + c]!;
    }

  const result: ProbeResult = {
    kind,
    task,
    weights: tensor(Float32Array.from(Wr), [d, C]),
    bias: tensor(Float32Array.from(br), [C]),
    outputs: C,
    vectorTargets: vector,
    trainIndices: trainIdx,
    testIndices: testIdx,
    trainAccuracy: null,
    testAccuracy: null,
    trainR2: null,
    testR2: null,
    trainMse: null,
    testMse: null,
    loss,
    majorityBaseline: null,
  };
  const scoresOf = (idx: number[]): Float64Array => {
    const s = new Float64Array(idx.length * C);
    idx.forEach((i, r) => {
      for (let c = 0; c < C; c++) {
        let acc = br[c]!;
        for (let j = 0; j < d; j++) acc += X.data[i * d + j]! * Wr[j * C + c]!;
        s[r * C + c] = acc;
      }
    });
    return s;
  };
  if (task === 'classification') {
    const acc = (idx: number[]): number | null => {
      if (idx.length === 0) return null;
      const s = scoresOf(idx);
      let right = 0;
      idx.forEach((i, r) => (right += argmax(s.subarray(r * C, (r + 1) * C)) === yv[i] ? 1 : 0));
      return right / idx.length;
    };
    result.trainAccuracy = acc(trainIdx);
    result.testAccuracy = acc(testIdx);
    const counts = new Array<number>(C).fill(0);
    for (const i of trainIdx) counts[yv[i]!]!++;
    result.majorityBaseline = Math.max(...counts) / trainIdx.length;
  } else {
    const fit = (idx: number[]): { r2: number; mse: number } | null => {
      if (idx.length === 0) return null;
      const s = scoresOf(idx);
      let se = 0;
      let r2 = 0;
      for (let c = 0; c < C; c++) {
        let mu = 0;
        for (const i of idx) mu += yv[i * k + c]!;
        mu /= idx.length;
        let res = 0;
        let tot = 0;
        idx.forEach((i, r) => {
          res += (yv[i * k + c]! - s[r * C + c]!) ** 2;
          tot += (yv[i * k + c]! - mu) ** 2;
        });
        se += res;
        // scikit-learn's r2_score: a constant target scores 1 when predicted exactly, else 0.
        r2 += tot > 0 ? 1 - res / tot : res === 0 ? 1 : 0;
      }
      return { r2: r2 / C, mse: se / (idx.length * C) };
    };
    const tr = fit(trainIdx);
    const te = fit(testIdx);
    result.trainR2 = tr?.r2 ?? null;
    result.trainMse = tr?.mse ?? null;
    result.testR2 = te?.r2 ?? null;
    result.testMse = te?.mse ?? null;
  }
  return result;
}

/**
 * A probe's scores on features [n, d]: [n, C] logits (logistic), one-hot regression scores
 * (linear classification) or predictions [n, k] ([n] for one-dimensional targets); and, for
 * classification, the predicted class of each row.
 */
export function probePredict(
  probe: ProbeResult,
  features: Tensor | readonly (readonly number[])[],
): { scores: Tensor; predictions: number[] } {
  const x = features instanceof Tensor ? features.cast('float32') : tensor(features.flat(), [features.length, features[0]?.length ?? 0]);
  if (x.rank !== 2 || x.shape[1] !== probe.weights.shape[0])
    throw new Error(`probePredict: features have shape [${x.shape}], the probe takes [n, ${probe.weights.shape[0]}]`);
  const scores = x.matmul(probe.weights).add(probe.bias);
  const C = probe.outputs;
  const s = scores.dataSync() as Float32Array;
  const n = x.shape[0]!;
  if (probe.task === 'classification')
    return { scores, predictions: Array.from({ length: n }, (_, r) => argmax(s.subarray(r * C, (r + 1) * C))) };
  return { scores: probe.vectorTargets ? scores.reshape([n]) : scores, predictions: probe.vectorTargets ? Array.from(s) : [] };
}

/** Solves the ridge problem min (1/m)||Y - X W - b||^2 + l2 ||W||^2 exactly (X, Y centred for b). */
function ridge(
  X: Float64Array,
  Y: Float64Array,
  m: number,
  d: number,
  C: number,
  l2: number,
): { W: Float64Array; b: Float64Array; loss: number } {
  const xm = new Float64Array(d);
  const ym = new Float64Array(C);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < d; j++) xm[j]! += X[i * d + j]! / m;
    for (let c = 0; c < C; c++) ym[c]! += Y[i * C + c]! / m;
  }
  const Xc = new Float64Array(m * d);
  const Yc = new Float64Array(m * C);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < d; j++) Xc[i * d + j] = X[i * d + j]! - xm[j]!;
    for (let c = 0; c < C; c++) Yc[i * C + c] = Y[i * C + c]! - ym[c]!;
  }
  // Normal equations (X^T X + m l2 I) W = X^T Y, the products on the engine in float64.
  const xt = tensor(Xc, [m, d], 'float64');
  const G = Float64Array.from(xt.transpose().matmul(xt).dataSync() as Float64Array);
  const R = Float64Array.from(
    xt
      .transpose()
      .matmul(tensor(Yc, [m, C], 'float64'))
      .dataSync() as Float64Array,
  );
  let trace = 0;
  for (let j = 0; j < d; j++) trace += G[j * d + j]!;
  // A tiny jitter keeps a rank-deficient, unpenalised system solvable (the minimum-norm-like solution).
  const ridgeTerm = m * l2 + 1e-10 * (trace / d || 1);
  for (let j = 0; j < d; j++) G[j * d + j]! += ridgeTerm;
  const W = choleskySolve(G, R, d, C);
  const b = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let acc = ym[c]!;
    for (let j = 0; j < d; j++) acc -= xm[j]! * W[j * C + c]!;
    b[c] = acc;
  }
  let se = 0;
  for (let i = 0; i < m; i++)
    for (let c = 0; c < C; c++) {
      let p = 0;
      for (let j = 0; j < d; j++) p += Xc[i * d + j]! * W[j * C + c]!;
      se += (Yc[i * C + c]! - p) ** 2;
    }
  let wn = 0;
  for (const w of W) wn += w * w;
  return { W, b, loss: se / m + l2 * wn };
}

/** Solves A X = B for symmetric positive definite A [d, d], B [d, C] (row-major). */
function choleskySolve(A: Float64Array, B: Float64Array, d: number, C: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) throw new Error('trainProbe: the least-squares system is singular; use l2 > 0');
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j]!;
    }
  const X = Float64Array.from(B);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < d; i++) {
      let s = X[i * C + c]!;
      for (let k = 0; k < i; k++) s -= L[i * d + k]! * X[k * C + c]!;
      X[i * C + c] = s / L[i * d + i]!;
    }
    for (let i = d - 1; i >= 0; i--) {
      let s = X[i * C + c]!;
      for (let k = i + 1; k < d; k++) s -= L[k * d + i]! * X[k * C + c]!;
      X[i * C + c] = s / L[i * d + i]!;
    }
  }
  return X;
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function toFloat64Matrix(x: Tensor | readonly (readonly number[])[], what: string): { data: Float64Array; shape: [number, number] } {
  if (x instanceof Tensor) {
    if (x.rank !== 2) throw new Error(`${what}: expected [n, d], got shape [${x.shape}]`);
    return { data: Float64Array.from(x.cast('float64').dataSync() as Float64Array), shape: [x.shape[0]!, x.shape[1]!] };
  }
  const n = x.length;
  const d = x[0]?.length ?? 0;
  if (n === 0 || d === 0) throw new Error(`${what}: empty`);
  if (x.some((r) => r.length !== d)) throw new Error(`${what}: rows have different lengths`);
  return { data: Float64Array.from(x.flat()), shape: [n, d] };
}

function toTargets(
  y: Tensor | readonly number[] | readonly (readonly number[])[],
  what: string,
): { values: number[]; cols: number; vector: boolean } {
  if (y instanceof Tensor) {
    if (y.rank !== 1 && y.rank !== 2) throw new Error(`${what}: expected [n] or [n, k], got shape [${y.shape}]`);
    const values = Array.from(y.cast('float64').dataSync() as Float64Array);
    return { values, cols: y.rank === 2 ? y.shape[1]! : 1, vector: y.rank === 1 };
  }
  if (y.length === 0) throw new Error(`${what}: empty`);
  if (Array.isArray(y[0])) {
    const rows = y as readonly (readonly number[])[];
    const k = rows[0]!.length;
    if (rows.some((r) => r.length !== k)) throw new Error(`${what}: rows have different lengths`);
    return { values: rows.flat(), cols: k, vector: false };
  }
  return { values: [...(y as readonly number[])], cols: 1, vector: true };
}

export interface ProbeActivationsOptions {
  /**
   * Which positions give examples: 'last' (default; each prompt's last real token), 'mean' (the
   * mean over each prompt's real tokens), 'all' (every real token: one example per position), or
   * one position index (negative counts from the end).
   */
  position?: 'last' | 'mean' | 'all' | number;
  /** [batch, pos] 1 for real tokens, 0 for padding, for a padded batch of token rows. */
  attentionMask?: RunOptions['attentionMask'];
}

export interface ProbeActivations {
  /** [n, d]: one row per example; trailing dims of the hook (e.g. heads x d_head) are flattened. */
  features: Tensor;
  /** The prompt (row index) of each example. */
  prompt: number[];
  /** The position of each example (-1 for 'mean'). */
  pos: number[];
  /** The token at each example's position (null for 'mean'): labels for token-identity probes. */
  token: (number | null)[];
}

/**
 * Gathers probe features from `runWithCache` at `hookName` (e.g. 'blocks.3.hook_resid_post'):
 * one row per prompt ('last', 'mean', a position) or per token ('all'). Strings are tokenized one
 * at a time (so their lengths may differ); a padded batch of token rows takes `attentionMask`.
 */
export function probeActivations(
  model: HookedTransformer,
  prompts: PromptInput,
  hookName: string,
  options: ProbeActivationsOptions = {},
): ProbeActivations {
  const position = options.position ?? 'last';
  if (!model.hookNames.includes(hookName))
    throw new Error(`probeActivations: unknown hook point '${hookName}'${suggest(hookName, model.hookNames)}`);
  const rows = promptList(model, prompts);
  let acts: Tensor[]; // per prompt [pos, ...]
  let valid: boolean[][];
  if (options.attentionMask !== undefined) {
    const s = rows[0]!.length;
    if (rows.some((r) => r.length !== s)) throw new Error('probeActivations: an attentionMask needs token rows of one length');
    const mask = maskFloat(options.attentionMask);
    if (mask.shape[0] !== rows.length || mask.shape[1] !== s)
      throw new Error(`probeActivations: attentionMask has shape [${mask.shape}], the tokens [${rows.length},${s}]`);
    const md = mask.dataSync() as Float32Array;
    valid = rows.map((_, r) => Array.from({ length: s }, (_, p) => md[r * s + p]! !== 0));
    const act = model
      .runWithCache(tensor(rows.flat(), [rows.length, s], 'int64'), { names: [hookName], attentionMask: mask.cast('int64') })
      .cache.get(hookName);
    acts = rows.map((_, r) => act.index([r]));
  } else {
    acts = rowActivations(model, rows, hookName);
    valid = rows.map((r) => r.map(() => true));
  }
  const feats: Tensor[] = [];
  const out: Omit<ProbeActivations, 'features'> = { prompt: [], pos: [], token: [] };
  const push = (f: Tensor, r: number, p: number): void => {
    feats.push(f.reshape([1, f.size]));
    out.prompt.push(r);
    out.pos.push(p);
    out.token.push(p >= 0 ? rows[r]![p]! : null);
  };
  acts.forEach((a, r) => {
    const real = valid[r]!.flatMap((v, p) => (v ? [p] : []));
    if (real.length === 0) throw new Error(`probeActivations: prompt ${r} has no real tokens`);
    if (position === 'last') push(a.index([real.at(-1)!]), r, real.at(-1)!);
    else if (position === 'all') for (const p of real) push(a.index([p]), r, p);
    else if (position === 'mean') {
      const m = tensor(
        valid[r]!.map((v) => (v ? 1 / real.length : 0)),
        [valid[r]!.length, ...a.shape.slice(1).map(() => 1)],
      );
      push(a.cast('float32').mul(m).sum(0), r, -1);
    } else if (typeof position === 'number') {
      const s = rows[r]!.length;
      const p = position < 0 ? position + s : position;
      if (!Number.isInteger(position) || p < 0 || p >= s)
        throw new Error(`probeActivations: position ${position} is out of range for prompt ${r} of ${s} tokens`);
      push(a.index([p]), r, p);
    } else throw new Error(`probeActivations: position must be 'last', 'mean', 'all' or a number, got '${String(position)}'`);
  });
  return { features: concat(feats, 0).cast('float32'), ...out };
}
