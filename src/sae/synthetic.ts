/**
 * A ground-truth benchmark for SAE training: activations built from a known dictionary, so what an
 * SAE learned can be scored against the features that generated the data.
 *
 * The data: `nFeatures` random unit vectors in `dIn` dimensions (an overcomplete dictionary, fixed
 * by the seed); each example is a sparse non-negative combination of them: every feature fires
 * independently with probability `firingProbability` (or, with `correlation`, features come in
 * groups that fire together), with magnitudes drawn uniformly or exponentially, plus optional
 * Gaussian noise.
 *
 * The scores (Sharkey et al. 2022, "Taking features out of superposition"): the mean max cosine
 * similarity (MMCS): for each true feature, the highest cosine similarity with any learned decoder
 * row, averaged over the true features; and the recall: the fraction of true features that some
 * decoder row matches with cosine > 0.9.
 */
import { PRNG, Tensor, tensor } from '../tensor/index.js';
import type { ActivationBatch, ActivationMetadata, ActivationSource } from './training/activation-store.js';
import { trainSae, type TrainSaeOptions } from './training/trainer.js';

/** How the synthetic activations are made. */
export interface SyntheticOptions {
  /** Activation width (default 64). */
  dIn?: number;
  /** True features: unit vectors in dIn dimensions (default 256). */
  nFeatures?: number;
  /** Probability that a feature fires in an example (default 4 / nFeatures: four features per example on average). */
  firingProbability?: number;
  /** Magnitude of a firing feature: 'uniform' in [0.5, 1.5] (default) or 'exponential' with mean 1. */
  magnitude?: 'uniform' | 'exponential';
  /**
   * Correlated features: consecutive groups of `groupSize` features; a group switches on with
   * probability firingProbability / coFire and each of its features then fires with probability
   * `coFire`, so each feature's firing rate is unchanged but features of a group co-occur.
   */
  correlation?: { groupSize: number; coFire: number } | null;
  /** Standard deviation of Gaussian noise added to every coordinate (default 0). */
  noiseStd?: number;
  /** Seed of the dictionary (default 0). */
  seed?: number;
}

/** The generator of the synthetic activations, with its true dictionary. */
export class SyntheticFeatures {
  readonly dIn: number;
  readonly nFeatures: number;
  readonly firingProbability: number;
  readonly magnitude: 'uniform' | 'exponential';
  readonly correlation: { groupSize: number; coFire: number } | null;
  readonly noiseStd: number;
  /** The true features [nFeatures, dIn], unit rows. */
  readonly dictionary: Float32Array;

  constructor(options: SyntheticOptions = {}) {
    this.dIn = options.dIn ?? 64;
    this.nFeatures = options.nFeatures ?? 256;
    this.firingProbability = options.firingProbability ?? 4 / this.nFeatures;
    this.magnitude = options.magnitude ?? 'uniform';
    this.correlation = options.correlation ?? null;
    this.noiseStd = options.noiseStd ?? 0;
    if (!(Number.isInteger(this.dIn) && this.dIn > 0)) throw new Error(`dIn must be a positive integer, got ${this.dIn}`);
    if (!(Number.isInteger(this.nFeatures) && this.nFeatures > 0))
      throw new Error(`nFeatures must be a positive integer, got ${this.nFeatures}`);
    if (!(this.firingProbability > 0 && this.firingProbability <= 1))
      throw new Error(`firingProbability must be in (0, 1], got ${this.firingProbability}`);
    if (this.magnitude !== 'uniform' && this.magnitude !== 'exponential')
      throw new Error(`magnitude must be 'uniform' or 'exponential', got '${String(this.magnitude)}'`);
    const c = this.correlation;
    if (c) {
      if (!(Number.isInteger(c.groupSize) && c.groupSize >= 1 && this.nFeatures % c.groupSize === 0))
        throw new Error(`correlation.groupSize must be a positive integer dividing nFeatures (${this.nFeatures}), got ${c.groupSize}`);
      if (!(c.coFire > 0 && c.coFire <= 1 && this.firingProbability / c.coFire <= 1))
        throw new Error(`correlation.coFire must be in [firingProbability, 1], got ${c.coFire}`);
    }
    const rng = new PRNG(options.seed ?? 0);
    const d = this.dIn;
    const dict = new Float32Array(this.nFeatures * d);
    for (let f = 0; f < this.nFeatures; f++) {
      let s = 0;
      for (let j = 0; j < d; j++) {
        const v = rng.normal();
        dict[f * d + j] = v;
        s += v * v;
      }
      const inv = 1 / Math.sqrt(s);
      for (let j = 0; j < d; j++) dict[f * d + j]! *= inv;
    }
    this.dictionary = dict;
  }

  /** The true features as a tensor [nFeatures, dIn]. */
  get features(): Tensor {
    return tensor(this.dictionary, [this.nFeatures, this.dIn]);
  }

  #magnitude(rng: PRNG): number {
    return this.magnitude === 'uniform' ? 0.5 + rng.uniform() : -Math.log(1 - rng.uniform());
  }

  /**
   * `n` examples: x [n, dIn] and, with `withCodes`, the true feature activations [n, nFeatures].
   * Firing features are found by geometric skipping, so the cost follows the number that fire.
   */
  sample(n: number, rng: PRNG, options: { withCodes?: boolean } = {}): { x: Float32Array; codes: Float32Array | null } {
    const d = this.dIn;
    const F = this.nFeatures;
    const x = new Float32Array(n * d);
    const codes = options.withCodes ? new Float32Array(n * F) : null;
    const fire = (row: number, f: number): void => {
      const m = this.#magnitude(rng);
      if (codes) codes[row * F + f] = m;
      const off = f * d;
      const o = row * d;
      for (let j = 0; j < d; j++) x[o + j]! += m * this.dictionary[off + j]!;
    };
    // Positions of successes in a run of Bernoulli(p) trials, by geometric gaps.
    const successes = (count: number, p: number, visit: (i: number) => void): void => {
      if (p >= 1) {
        for (let i = 0; i < count; i++) visit(i);
        return;
      }
      const logq = Math.log(1 - p);
      let i = -1;
      for (;;) {
        i += 1 + Math.floor(Math.log(1 - rng.uniform()) / logq);
        if (i >= count) return;
        visit(i);
      }
    };
    const c = this.correlation;
    for (let r = 0; r < n; r++) {
      if (!c) successes(F, this.firingProbability, (f) => fire(r, f));
      else
        successes(F / c.groupSize, this.firingProbability / c.coFire, (g) => {
          for (let k = 0; k < c.groupSize; k++) if (rng.uniform() < c.coFire) fire(r, g * c.groupSize + k);
        });
    }
    if (this.noiseStd > 0) for (let i = 0; i < x.length; i++) x[i]! += this.noiseStd * rng.normal();
    return { x, codes };
  }

  /** An endless, seeded stream of batches { x: [batchSize, dIn] } (its state is the generator's). */
  source(options: { batchSize: number; seed?: number }): ActivationSource {
    const rng = new PRNG(options.seed ?? 1);
    const { batchSize } = options;
    const metadata: ActivationMetadata = {
      model_name: null,
      hook_name: null,
      context_size: null,
      prepend_bos: false,
      dataset_path: `synthetic: ${this.nFeatures} features in ${this.dIn} dimensions`,
    };
    return {
      batchSize,
      dIn: this.dIn,
      dOut: undefined,
      metadata,
      next: (): ActivationBatch => ({ x: tensor(this.sample(batchSize, rng).x, [batchSize, this.dIn]) }),
      getState: () => rng.getState(),
      setState: (s) => rng.setState(s as ReturnType<PRNG['getState']>),
    };
  }
}

/** How well a learned dictionary recovers the true features. */
export interface FeatureRecovery {
  /** Mean over true features of the max cosine similarity with any learned decoder row. */
  mmcs: number;
  /** Fraction of true features matched by some decoder row with cosine > threshold. */
  recall: number;
  /** Fraction of learned rows that match some true feature with cosine > threshold. */
  precision: number;
  /** Each true feature's best cosine [nFeatures]. */
  bestCosine: Float32Array;
}

/**
 * Scores decoder rows W_dec [d_sae, d] against true features [n, d]: MMCS, recall and precision at
 * cosine > `threshold` (default 0.9). Rows of zero norm match nothing.
 */
export function featureRecovery(W_dec: Tensor, truth: Tensor | Float32Array, threshold = 0.9): FeatureRecovery {
  if (W_dec.rank !== 2) throw new Error(`featureRecovery: W_dec must be [d_sae, d], got [${W_dec.shape}]`);
  const [m, d] = W_dec.shape as [number, number];
  const t = truth instanceof Tensor ? (truth.cast('float32').dataSync() as Float32Array) : truth;
  if (t.length % d !== 0) throw new Error(`featureRecovery: the true features do not have width ${d}`);
  const n = t.length / d;
  const unit = (a: Float32Array, rows: number): Float64Array => {
    const out = new Float64Array(a.length);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += a[r * d + j]! ** 2;
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let j = 0; j < d; j++) out[r * d + j] = a[r * d + j]! * inv;
    }
    return out;
  };
  const L = unit(W_dec.cast('float32').dataSync() as Float32Array, m);
  const T = unit(t, n);
  const best = new Float32Array(n).fill(-1);
  const bestLearned = new Float32Array(m).fill(-1);
  for (let i = 0; i < n; i++)
    for (let r = 0; r < m; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += T[i * d + j]! * L[r * d + j]!;
      if (s > best[i]!) best[i] = s;
      if (s > bestLearned[r]!) bestLearned[r] = s;
    }
  let sum = 0;
  let hit = 0;
  for (const v of best) {
    sum += v;
    if (v > threshold) hit++;
  }
  let matched = 0;
  for (const v of bestLearned) if (v > threshold) matched++;
  return { mmcs: sum / n, recall: hit / n, precision: matched / m, bestCosine: best };
}

/** One architecture's run in the synthetic benchmark. */
export interface SyntheticRun {
  architecture: string;
  /** Options given to trainSae beyond the defaults (l1Coefficient, k, ...). */
  options?: Partial<TrainSaeOptions>;
  /** Width of the SAE (default nFeatures). */
  width?: number;
  /** Label in the results (default the architecture). */
  label?: string;
}

/** What a synthetic run scored. */
export interface SyntheticResult extends Omit<FeatureRecovery, 'bestCosine'> {
  label: string;
  architecture: string;
  width: number;
  /** Held-out explained variance and L0 (trainSae's evaluation). */
  explainedVariance: number;
  l0: number;
  /** Features that never fired in the last sampling window. */
  deadFeatures: number;
  seconds: number;
}

/** Options of `runSyntheticBenchmark`. */
export interface SyntheticBenchmarkOptions extends SyntheticOptions {
  runs: readonly SyntheticRun[];
  /** Steps per run (default 1500) and examples per step (default 1024). */
  steps?: number;
  batchSize?: number;
  /** Learning rate (default 3e-3). */
  lr?: number;
}

/**
 * Trains each run's SAE on the same synthetic data and scores its decoder against the true
 * features. Decoders are scored in their training form (the rows' directions are what counts).
 */
export async function runSyntheticBenchmark(o: SyntheticBenchmarkOptions): Promise<SyntheticResult[]> {
  const data = new SyntheticFeatures(o);
  const results: SyntheticResult[] = [];
  const steps = o.steps ?? 1500;
  const batchSize = o.batchSize ?? 1024;
  for (const run of o.runs) {
    const width = run.width ?? data.nFeatures;
    const t0 = performance.now();
    const r = await trainSae({
      cfg: { architecture: run.architecture, d_sae: width },
      store: data.source({ batchSize, seed: 1 }),
      totalTrainingSteps: steps,
      lr: o.lr ?? 3e-3,
      nEvalBatches: 2,
      evalEvery: steps,
      deadFeatureWindow: 200,
      featureSamplingWindow: Math.max(1, Math.min(500, steps)),
      progress: false,
      seed: 0,
      ...run.options,
    });
    const score = featureRecovery(r.trainingSae.params.W_dec!, data.dictionary);
    let dead = 0;
    for (const v of r.sparsity.dataSync() as Float32Array) if (v <= -9.9) dead++;
    results.push({
      label: run.label ?? run.architecture,
      architecture: run.architecture,
      width,
      mmcs: score.mmcs,
      recall: score.recall,
      precision: score.precision,
      explainedVariance: r.evals?.['reconstruction_quality/explained_variance'] ?? NaN,
      l0: r.evals?.['sparsity/l0'] ?? NaN,
      deadFeatures: dead,
      seconds: (performance.now() - t0) / 1000,
    });
  }
  return results;
}

/** The results as a Markdown table. */
export function formatSyntheticResults(results: readonly SyntheticResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.label} | ${r.width} | ${r.mmcs.toFixed(3)} | ${(100 * r.recall).toFixed(1)}% | ${(100 * r.precision).toFixed(1)}% | ${r.explainedVariance.toFixed(3)} | ${r.l0.toFixed(2)} | ${r.deadFeatures} | ${r.seconds.toFixed(1)} |`,
  );
  return [
    '| run | width | MMCS | recall@0.9 | precision@0.9 | explained var. | L0 | dead | s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}
