/**
 * Toy Models of Superposition (Elhage et al. 2022). n sparse features are squeezed through m < n
 * hidden dimensions and read back out: h = W x, x' = ReLU(W^T h + b), trained to minimise the
 * importance-weighted reconstruction error sum_i I_i (x_i - x'_i)^2. Each feature is present with
 * probability 1 - S (S is the sparsity) with a value uniform in [0, 1]. Dense features (S = 0)
 * get the m most important features, orthogonal, and drop the rest; sparse features are stored
 * in superposition, more features than dimensions (for n = 5, m = 2: a pentagon), because
 * interference between features that rarely co-occur costs little and the ReLU filters it out.
 *
 * As the paper, several independent instances train at once in one batched graph (a leading
 * instance dimension): every sparsity of a sweep, each with a few restarts from different
 * initialisations, of which the one with the lowest loss is kept, since a single run can settle
 * in a worse local optimum.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { PRNG, randn, tensor, zeros, type Tensor } from '../../tensor/index.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { heatmap, lineChart, saveSvg, vectorPlot } from '../../viz/charts.js';
import { adamw } from '../../train/optim.js';
import { syntheticData } from '../../train/data.js';
import { train, type TrainResult } from '../../train/loop.js';
import { runFingerprint, withDefaults } from '../../train/fingerprint.js';

export interface SuperpositionOptions {
  /** n: features (default 5). */
  nFeatures?: number;
  /** m: hidden dimensions (default 2). */
  nHidden?: number;
  /** S: probability that a feature is absent (default 0.9). */
  sparsity?: number;
  /** Importance of feature i is importanceDecay^i (default 0.7). */
  importanceDecay?: number;
  /** Optimizer steps (default 10000, as the paper). */
  steps?: number;
  /** Examples per instance per step (default 1024). */
  batchSize?: number;
  /** AdamW learning rate, constant (default 1e-3, as the paper). */
  lr?: number;
  /** AdamW decoupled weight decay (default 0.01, torch.optim.AdamW's default, which the paper used). */
  weightDecay?: number;
  /** Independent initialisations per sparsity; the lowest-loss one is kept (default 4). */
  restarts?: number;
  /**
   * Examples per sparsity on which the restarts are compared (default: enough for about 4096
   * occurrences of each feature, at least 16384).
   */
  evalSamples?: number;
  /** Norm above which a feature counts as represented (default 0.5). */
  representedThreshold?: number;
  seed?: number;
  /** Run directory for the training loop (metrics.jsonl, checkpoints). */
  outDir?: string;
  /** Continue from the newest checkpoint in outDir. */
  resume?: boolean;
  progress?: boolean | 'auto';
}

export interface SweepOptions extends Omit<SuperpositionOptions, 'sparsity'> {
  sparsities: readonly number[];
}

/** The defaults of `SweepOptions`. */
const SWEEP_DEFAULTS = {
  nFeatures: 5,
  nHidden: 2,
  importanceDecay: 0.7,
  steps: 10000,
  batchSize: 1024,
  lr: 1e-3,
  weightDecay: 0.01,
  restarts: 4,
  seed: 0,
};

/**
 * The options outside the run's fingerprint (every other one is checked on resume): how long to
 * train (the learning rate is constant, so a resumed run may go on for longer), how the trained
 * models are compared and analysed afterwards, where, and what is shown.
 */
export const SWEEP_NOT_FINGERPRINTED = [
  'steps',
  'evalSamples',
  'representedThreshold',
  'outDir',
  'resume',
  'progress',
] as const satisfies readonly (keyof SweepOptions)[];

/** The trained parameters of all instances: W [instances, m, n], b [instances, n]. */
export interface SuperpositionParams {
  W: Tensor;
  b: Tensor;
}

export interface SuperpositionAnalysis {
  /** W^T W [n][n]: the diagonal is each feature's squared norm, off-diagonal its interference. */
  WtW: number[][];
  /** ||W_i|| [n], W_i the column of W for feature i. */
  norms: number[];
  /**
   * [n] sum over j != i of (W^_i . W_j)^2, W^_i = W_i / ||W_i||: how much the other features
   * interfere along feature i's direction (0 for a feature of zero norm). For a dropped feature
   * W^_i is the direction of a tiny vector, so read this together with its norm.
   */
  superposition: number[];
  /** [n] the paper's feature dimensionality ||W_i||^2 / sum_j (W^_i . W_j)^2: 1 alone, 1/2 antipodal, 2/5 pentagon. */
  dimensionality: number[];
  /** Features with norm > threshold, ascending. */
  represented: number[];
  threshold: number;
  /** ||W||_F^2 / m: about how many features each hidden dimension holds. */
  featuresPerDimension: number;
  /** For m = 2: the angle of each feature direction in degrees, [0, 360); null otherwise. */
  angles: number[] | null;
  /**
   * For m = 2: the angles between neighbouring represented features going round the circle
   * (sorted by angle; they sum to 360); null otherwise or with fewer than 2 represented.
   */
  representedAngleGaps: number[] | null;
}

/** One trained toy model (the best restart for its sparsity). */
export interface SuperpositionModel {
  sparsity: number;
  /** Feature importances [n]. */
  importance: number[];
  /** [m, n] */
  W: Tensor;
  /** [n] */
  b: Tensor;
  /** Mean importance-weighted loss per example on the evaluation set. */
  loss: number;
  /** The same loss for every restart (the kept one is the smallest). */
  restartLosses: number[];
  /** Which restart was kept. */
  restart: number;
  analysis: SuperpositionAnalysis;
}

export interface SweepResult {
  /** One per sparsity, in the order given. */
  models: SuperpositionModel[];
  /** The training run over all instances (its loss is the sum over instances). */
  train: TrainResult<SuperpositionParams>;
}

export interface SuperpositionResult extends SuperpositionModel {
  train: TrainResult<SuperpositionParams>;
}

/** Importances [n]: decay^i. */
export function featureImportance(nFeatures: number, decay: number): number[] {
  return Array.from({ length: nFeatures }, (_, i) => decay ** i);
}

/**
 * Sparse feature vectors [instances, batch, n] float32: feature i of instance k is present with
 * probability 1 - sparsities[k], uniform in [0, 1) when present.
 */
export function sparseFeatures(rng: PRNG, sparsities: readonly number[], batch: number, nFeatures: number): Tensor {
  const data = new Float32Array(sparsities.length * batch * nFeatures);
  let o = 0;
  for (const s of sparsities) {
    const present = 1 - s;
    // One 32-bit draw per number: the values are float32 anyway, and the data is the hot loop.
    for (let j = 0; j < batch * nFeatures; j++, o++) if (rng.nextU32() * 2 ** -32 < present) data[o] = rng.nextU32() * 2 ** -32;
  }
  return tensor(data, [sparsities.length, batch, nFeatures]);
}

/** x' = ReLU(W^T W x + b) for x [instances, batch, n], W [instances, m, n], b [instances, n]. */
export function superpositionForward(params: SuperpositionParams, x: Tensor): Tensor {
  const h = x.matmul(params.W.transpose(-2, -1)); // [instances, batch, m]
  return h.matmul(params.W).add(params.b.unsqueeze(1)).relu();
}

/** Per-instance loss [instances]: mean over the batch of sum_i importance_i (x_i - x'_i)^2. */
export function superpositionLoss(params: SuperpositionParams, x: Tensor, importance: Tensor): Tensor {
  return x.sub(superpositionForward(params, x)).square().mul(importance).sum(-1).mean(-1);
}

/**
 * Trains toy models for every sparsity in `sparsities` (each with `restarts` initialisations) in
 * one batched run, and keeps the lowest-loss restart per sparsity.
 */
export async function sweepSparsity(given: SweepOptions): Promise<SweepResult> {
  const o = withDefaults(SWEEP_DEFAULTS, given);
  const n = o.nFeatures!;
  const m = o.nHidden!;
  const restarts = o.restarts!;
  const seed = o.seed!;
  const batch = o.batchSize!;
  const steps = o.steps!;
  const decay = o.importanceDecay!;
  const threshold = o.representedThreshold ?? 0.5;
  for (const [k, v] of Object.entries({ nFeatures: n, nHidden: m, restarts, batchSize: batch }))
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`superposition: ${k} must be a positive integer, got ${v}`);
  if (o.sparsities.length === 0) throw new Error('superposition: no sparsities given');
  for (const s of o.sparsities) if (!(s >= 0 && s < 1)) throw new Error(`superposition: sparsity must be in [0, 1), got ${s}`);
  if (!(decay > 0)) throw new Error(`superposition: importanceDecay must be > 0, got ${decay}`);

  const importance = featureImportance(n, decay);
  const importanceT = tensor(importance, [n]);
  // Instance k = sparsity index * restarts + restart.
  const instanceSparsity = o.sparsities.flatMap((s) => Array<number>(restarts).fill(s));
  const k = instanceSparsity.length;
  const params: SuperpositionParams = {
    W: randn([k, m, n], { seed }).mul(Math.sqrt(2 / (m + n))), // Xavier normal, as the paper
    b: zeros([k, n]),
  };
  const result = await train({
    params,
    // The sum over instances: each instance's gradient (and so its Adam update) is its own.
    loss: (p: SuperpositionParams, x: Tensor) => superpositionLoss(p, x, importanceT).sum(),
    optimizer: adamw({ weightDecay: o.weightDecay! }),
    data: syntheticData((rng) => sparseFeatures(rng, instanceSparsity, batch, n), { seed: seed + 1 }),
    steps,
    lr: o.lr!,
    outDir: o.outDir,
    resume: o.resume,
    config: { toy: 'superposition', ...runFingerprint(o, SWEEP_NOT_FINGERPRINTED) },
    logEvery: Math.max(1, Math.floor(steps / 200)),
    itemsPerBatch: k * batch,
    progress: o.progress ?? 'auto',
  });

  const W = result.params.W.dataSync() as Float32Array;
  const b = result.params.b.dataSync() as Float32Array;
  const models = o.sparsities.map((s, si) => {
    const evalSamples = o.evalSamples ?? Math.max(16384, Math.ceil(4096 / (1 - s)));
    // Every restart of a sparsity is scored on the same held-out examples.
    const x = sparseFeatures(new PRNG(seed + 2 + si), [s], evalSamples, n).dataSync() as Float32Array;
    const losses = Array.from({ length: restarts }, (_, r) => {
      const inst = si * restarts + r;
      return reconstructionLoss(W.subarray(inst * m * n, (inst + 1) * m * n), b.subarray(inst * n, (inst + 1) * n), x, importance, m);
    });
    const best = losses.indexOf(Math.min(...losses));
    const inst = si * restarts + best;
    const Wi = tensor(W.slice(inst * m * n, (inst + 1) * m * n), [m, n]);
    return {
      sparsity: s,
      importance,
      W: Wi,
      b: tensor(b.slice(inst * n, (inst + 1) * n), [n]),
      loss: losses[best]!,
      restartLosses: losses,
      restart: best,
      analysis: analyzeSuperposition(Wi, threshold),
    };
  });
  return { models, train: result };
}

/** Trains the toy model at one sparsity (the best of `restarts` initialisations). */
export async function trainSuperposition(o: SuperpositionOptions = {}): Promise<SuperpositionResult> {
  const { sparsity, ...rest } = o;
  const { models, train } = await sweepSparsity({ ...rest, sparsities: [sparsity ?? 0.9] });
  return { ...models[0]!, train };
}

/** Mean over examples x [batch, n] of sum_i importance_i (x_i - ReLU(W^T W x + b)_i)^2, W [m, n] row-major. */
function reconstructionLoss(W: Float32Array, b: Float32Array, x: Float32Array, importance: number[], m: number): number {
  const n = importance.length;
  const rows = x.length / n;
  const h = new Float64Array(m);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const xr = r * n;
    for (let d = 0; d < m; d++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += W[d * n + i]! * x[xr + i]!;
      h[d] = s;
    }
    for (let i = 0; i < n; i++) {
      let y = b[i]!;
      for (let d = 0; d < m; d++) y += W[d * n + i]! * h[d]!;
      const err = x[xr + i]! - Math.max(0, y);
      total += importance[i]! * err * err;
    }
  }
  return total / rows;
}

/** The paper's measures of superposition for one model's W [m, n]. */
export function analyzeSuperposition(W: Tensor, threshold = 0.5): SuperpositionAnalysis {
  if (W.rank !== 2) throw new Error(`analyzeSuperposition: W must be [m, n], got [${W.shape.join(', ')}]`);
  const [m, n] = W.shape as [number, number];
  const w = Array.from(W.cast('float32').dataSync() as Float32Array);
  const col = (i: number): number[] => Array.from({ length: m }, (_, d) => w[d * n + i]!);
  const cols = Array.from({ length: n }, (_, i) => col(i));
  const dot = (a: number[], c: number[]): number => a.reduce((s, v, d) => s + v * c[d]!, 0);
  const WtW = cols.map((a) => cols.map((c) => dot(a, c)));
  const norms = cols.map((_, i) => Math.sqrt(WtW[i]![i]!));
  const superposition: number[] = [];
  const dimensionality: number[] = [];
  for (let i = 0; i < n; i++) {
    const ni = norms[i]!;
    if (ni < 1e-8) {
      superposition.push(0);
      dimensionality.push(0);
      continue;
    }
    let others = 0;
    for (let j = 0; j < n; j++) if (j !== i) others += (WtW[i]![j]! / ni) ** 2;
    superposition.push(others);
    dimensionality.push((ni * ni) / (ni * ni + others));
  }
  const represented = norms.flatMap((v, i) => (v > threshold ? [i] : []));
  let angles: number[] | null = null;
  let representedAngleGaps: number[] | null = null;
  if (m === 2) {
    angles = cols.map(([x, y]) => ((((Math.atan2(y!, x!) * 180) / Math.PI) % 360) + 360) % 360);
    if (represented.length >= 2) {
      const sorted = represented.map((i) => angles![i]!).sort((a, b) => a - b);
      representedAngleGaps = sorted.map((a, j) => (j + 1 < sorted.length ? sorted[j + 1]! - a : sorted[0]! + 360 - a));
    }
  }
  return {
    WtW,
    norms,
    superposition,
    dimensionality,
    represented,
    threshold,
    featuresPerDimension: WtW.reduce((s, row, i) => s + row[i]!, 0) / m,
    angles,
    representedAngleGaps,
  };
}

/** A readable summary of one model: loss, W^T W as a table, per-feature norms, superposition, angles. */
export function formatSuperpositionSummary(model: SuperpositionModel): string {
  const a = model.analysis;
  const n = a.norms.length;
  const m = model.W.shape[0]!;
  const f = (v: number, w = 7, d = 3): string => v.toFixed(d).padStart(w);
  const lines = [
    `Toy model of superposition: n = ${n} features, m = ${m} hidden, sparsity S = ${model.sparsity} (feature probability ${+(1 - model.sparsity).toFixed(6)})`,
    `loss ${model.loss.toExponential(4)} (restart ${model.restart} of ${model.restartLosses.map((l) => l.toExponential(3)).join(', ')})`,
    `represented (norm > ${a.threshold}): ${a.represented.length} of ${n} [${a.represented.join(', ')}]; features per dimension ${a.featuresPerDimension.toFixed(3)}`,
    '',
    'W^T W:',
    '     ' + Array.from({ length: n }, (_, j) => `f${j}`.padStart(7)).join(''),
    ...a.WtW.map((row, i) => `f${i}`.padEnd(5) + row.map((v) => f(v)).join('')),
    '',
    'feature  importance    norm  superposition  dimensionality' + (a.angles ? '   angle' : ''),
    ...a.norms.map(
      (v, i) =>
        `f${i}`.padEnd(7) +
        f(model.importance[i]!, 12) +
        f(v, 8) +
        f(a.superposition[i]!, 15) +
        f(a.dimensionality[i]!, 16) +
        (a.angles ? f(a.angles[i]!, 8, 1) : ''),
    ),
  ];
  if (a.representedAngleGaps)
    lines.push('', `angles between neighbouring represented features: ${a.representedAngleGaps.map((g) => g.toFixed(1)).join(', ')}`);
  return lines.join('\n') + '\n';
}

/** Colors for feature i (the tableau10 palette vega uses by default). */
const PALETTE = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];

/**
 * Writes, into `dir`: per model, the W^T W heatmap (`wtw-S<sparsity>.svg`) and for m = 2 the
 * feature directions (`features-S<sparsity>.svg`); for several models, each feature's norm
 * against 1 / (1 - S) (`norms.svg`); and `summary.txt`. Logs the summary through `log`
 * (default console.log; null for silence). Returns the files written and the summary.
 */
export async function writeSuperpositionReport(
  models: SuperpositionModel | readonly SuperpositionModel[],
  dir: string,
  options: { log?: ((text: string) => void) | null } = {},
): Promise<{ files: string[]; summary: string }> {
  const list = Array.isArray(models) ? (models as readonly SuperpositionModel[]) : [models as SuperpositionModel];
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const save = (name: string, svg: string): void => {
    const path = join(dir, name);
    saveSvg(path, svg);
    files.push(path);
  };
  for (const model of list) {
    const n = model.analysis.norms.length;
    const names = Array.from({ length: n }, (_, i) => `f${i}`);
    const tag = `S${model.sparsity}`;
    save(
      `wtw-${tag}.svg`,
      await heatmap({
        title: `W^T W, sparsity ${model.sparsity}`,
        values: model.analysis.WtW,
        rowLabels: names,
        colLabels: names,
        diverging: true,
      }),
    );
    if (model.W.shape[0] === 2) {
      const w = model.W.dataSync() as Float32Array;
      const vectors = names.map((label, i) => ({ x: w[i]!, y: w[n + i]!, label, color: PALETTE[i % PALETTE.length]! }));
      save(`features-${tag}.svg`, await vectorPlot({ title: `Feature directions W_i, sparsity ${model.sparsity}`, vectors }));
    }
  }
  if (list.length > 1) {
    const n = list[0]!.analysis.norms.length;
    const series = Array.from({ length: n }, (_, i) => ({
      name: `f${i}`,
      points: list.map((mdl) => [1 / (1 - mdl.sparsity), mdl.analysis.norms[i]!] as [number, number]),
    }));
    save(
      'norms.svg',
      await lineChart({ title: 'Feature norms against sparsity', xLabel: '1 / (1 - S)', yLabel: '||W_i||', logX: true, series }),
    );
  }
  const summary = list.map(formatSuperpositionSummary).join('\n');
  const summaryPath = join(dir, 'summary.txt');
  writeFileAtomic(summaryPath, summary);
  files.push(summaryPath);
  const log = options.log === undefined ? console.log : options.log;
  log?.(summary);
  return { files, summary };
}
