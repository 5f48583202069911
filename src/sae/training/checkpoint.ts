/**
 * The SAE trainer's run directory: what a checkpoint holds beyond `train()`'s (the stats beside
 * the optimizer state, the input scaling factor and the last density window), how a run starts
 * (fresh, with SAELens's initial b_dec and input scaling, or resumed through `openTrainingRun`,
 * the general loop's resume), and the checkpoint it writes.
 */
import { Tensor } from '../../tensor/index.js';
import { openTrainingRun } from '../../train/checkpoint.js';
import type { DataSource } from '../../train/data.js';
import type { OptState, Optimizer } from '../../train/optim.js';
import type { MetricsRecord } from '../../train/progress.js';
import { estimateNormScalingFactor, geometricMedian, normalizeDecoderRows } from '../transforms.js';
import type { SaeConfig } from '../config.js';
import type { SaeParams } from '../types.js';
import type { TrainSaeOptions } from './trainer.js';
import { concatRows, type ActivationBatch } from './activation-store.js';
import { freshStats, type SaeStats } from './step.js';
import { RUN_CONTROL_OPTIONS, runFingerprint, treeDigest } from '../../train/fingerprint.js';

/** Where a run stands: what a checkpoint saves and a resume restores. */
export interface SaeRunState {
  params: SaeParams;
  opt: OptState;
  stats: SaeStats;
  /** Completed steps. */
  step: number;
  /** Seconds of training before this process (from the checkpoint). */
  elapsedBefore: number;
  /** The input scaling factor (expected_average_only_in), else null. */
  normFactor: number | null;
  /** Density of the last finished sampling window, when one finished. */
  lastDensity: Float32Array | null;
}

/** How a fresh run initialises what it trains (trainSae's options of the same names). */
export interface SaeFreshStart {
  normalizeDecoder: boolean;
  normalizeActivations: 'none' | 'expected_average_only_in';
  bDecInitMethod: 'zeros' | 'mean' | 'geometric_median';
  nBatchesForNormEstimate?: number;
  transcoder: boolean;
}

/** A run directory opened by `startSaeRun`. */
export interface SaeRun {
  state: SaeRunState;
  ckptRoot: string | null;
  metricsFile: string | null;
  /** The records logged up to the resumed checkpoint (empty for a fresh start). */
  history: MetricsRecord[];
  /** Writes a checkpoint of `state` (the stats saved beside the optimizer state); nothing without a run directory. */
  checkpoint(state: SaeRunState, elapsed: number): void;
}

/**
 * Opens the run directory (`openTrainingRun`) and either
 * 1. resumes from its newest checkpoint (same config and optimizer, metrics.jsonl cut back to the
 *    checkpoint): parameters, optimizer state, stats, the input scaling factor, the last density
 *    window, and the store's position; or
 * 2. starts fresh: a unit-norm decoder starts with unit rows; with input scaling or a b_dec
 *    initialisation, the first batches of the store give the scaling factor (sqrt(d_in) over the
 *    mean norm) and the initial b_dec (the mean or the geometric median of up to 4096 rows).
 */
export function startSaeRun(o: {
  outDir?: string;
  resume?: boolean;
  config: unknown;
  optimizer: Optimizer;
  params: SaeParams;
  dSae: number;
  store: DataSource<ActivationBatch>;
  fresh: SaeFreshStart;
  /** The schedules of the step (learning rate, sparsity coefficient), compared over the steps a checkpoint has done. */
  schedules: Record<string, (step: number) => number>;
  /** Checkpoints kept (default 2). */
  keep?: number;
  onWarning?: (message: string) => void;
}): SaeRun {
  let params = o.params;
  const opt = o.optimizer.init(params);
  const stats = freshStats(o.dSae);
  const opened = openTrainingRun(
    {
      outDir: o.outDir,
      resume: o.resume,
      config: o.config,
      optimizer: o.optimizer,
      run: o.outDir ? { params: `sha256:${treeDigest(params)}` } : {},
      schedules: o.schedules,
      onWarning: o.onWarning,
      data: o.store,
      keep: o.keep,
    },
    params,
    { ...opt, sae_stats: stats },
  );
  const { ckptRoot, metricsFile, history, start } = opened;
  const checkpoint = (state: SaeRunState, elapsed: number): void =>
    opened.checkpoint({
      step: state.step,
      params: state.params,
      optState: { ...state.opt, sae_stats: state.stats },
      elapsed,
      extra: { normScalingFactor: state.normFactor, lastDensity: state.lastDensity ? Array.from(state.lastDensity) : null },
    });
  if (start.resumed) {
    const { sae_stats: savedStats, ...optRest } = start.optState as OptState & { sae_stats: SaeStats };
    const extra = (start.extra ?? {}) as { normScalingFactor?: number | null; lastDensity?: number[] | null };
    return {
      ckptRoot,
      metricsFile,
      history,
      checkpoint,
      state: {
        params: start.params,
        opt: optRest as OptState,
        stats: savedStats,
        step: start.step,
        elapsedBefore: start.elapsed,
        normFactor: extra.normScalingFactor ?? null,
        lastDensity: extra.lastDensity ? Float32Array.from(extra.lastDensity) : null,
      },
    };
  }
  const f = o.fresh;
  let normFactor: number | null = null;
  // A unit-norm decoder starts with unit rows (removeParallelGradient assumes them).
  if (f.normalizeDecoder) params = { ...params, W_dec: normalizeDecoderRows(params.W_dec!) };
  const bInit = f.bDecInitMethod;
  if (f.normalizeActivations !== 'none' || bInit !== 'zeros') {
    const n = Math.max(1, f.nBatchesForNormEstimate ?? (f.normalizeActivations !== 'none' ? 100 : 1));
    const sample: Tensor[] = [];
    for (let i = 0; i < n; i++) sample.push(o.store.next().x);
    if (f.normalizeActivations !== 'none') normFactor = estimateNormScalingFactor(concatRows(sample));
    if (bInit !== 'zeros') {
      if (f.transcoder) throw new Error('bDecInitMethod applies to SAEs, not transcoders (b_dec lives in the output space)');
      const rows = concatRows(sample.slice(0, Math.max(1, Math.ceil(4096 / Math.max(1, sample[0]!.shape[0]!)))));
      const scaled = normFactor ? rows.mul(normFactor) : rows;
      let bDec: Tensor;
      if (bInit === 'mean') bDec = scaled.mean(0);
      else if (bInit === 'geometric_median') bDec = geometricMedian(scaled.slice([{ start: 0, end: Math.min(4096, scaled.shape[0]!) }]));
      else throw new Error(`bDecInitMethod must be 'zeros', 'mean' or 'geometric_median', got '${String(bInit)}'`);
      params = { ...params, b_dec: bDec };
    }
  }
  return {
    ckptRoot,
    metricsFile,
    history,
    checkpoint,
    state: { params, opt, stats, step: 0, elapsedBefore: 0, normFactor, lastDensity: null },
  };
}

/** The settings trainSae resolved, as `runConfig` records them (each under its option's name). */
export interface ResolvedRun {
  cfg: SaeConfig;
  totalTrainingSteps: number;
  lr: number;
  lrScheduler: string;
  lrWarmUpSteps: number;
  lrDecaySteps: number;
  adamBeta1: number;
  adamBeta2: number;
  deadFeatureWindow: number;
  featureSamplingWindow: number;
  useGhostGrads: boolean;
  normalizeDecoder: boolean;
  normalizeActivations: string;
  bDecInitMethod: string;
  topkThresholdLr: number;
  nEvalBatches: number;
  seed: number;
  /** The architecture's sparsity coefficient and its warm-up, under their option names. */
  l1Coefficient?: number;
  l1WarmUpSteps?: number;
  l0Coefficient?: number;
  l0WarmUpSteps?: number;
  /** Batches the input scaling and b_dec are estimated from, when either is. */
  nBatchesForNormEstimate?: number;
}

/**
 * The options of `trainSae` outside a run's fingerprint (every other one, and any added later, is
 * checked on resume): where the run goes, how often it logs, evaluates and checkpoints, what is
 * shown and written at the end, and the density below which the logs count a feature dead.
 */
export const SAE_NOT_FINGERPRINTED = [
  ...RUN_CONTROL_OPTIONS,
  'evalEvery',
  'saveFinal',
  'deadFeatureThreshold',
] as const satisfies readonly (keyof TrainSaeOptions)[];

/** A store by what it says of itself: batch size, widths and provenance (its position is checkpointed). */
function describeStore(store: unknown): unknown {
  if (store === undefined || store === null) return null;
  const s = store as Partial<{ batchSize: number; dIn: number; dOut: number; metadata: unknown }>;
  const known = { batchSize: s.batchSize, dIn: s.dIn, dOut: s.dOut, metadata: s.metadata };
  return Object.values(known).some((v) => v !== undefined) ? known : 'a data source';
}

/**
 * The run's description saved in every checkpoint (and training.json): every option of
 * `trainSae` but `SAE_NOT_FINGERPRINTED`, with the values it resolved (the SAE's config, the
 * defaults) in place of those left out; the store by its batch size, widths and provenance.
 * Resuming refuses a checkpoint whose description differs, naming the fields.
 */
export function runConfig(o: TrainSaeOptions, r: ResolvedRun): Record<string, unknown> {
  return runFingerprint({ ...o, ...r }, SAE_NOT_FINGERPRINTED, {
    sae: (sae: { cfg: unknown }) => ({ cfg: sae.cfg }),
    store: describeStore,
    evalStore: describeStore,
  });
}
