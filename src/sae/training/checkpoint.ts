/**
 * The SAE trainer's run directory: what a checkpoint holds beyond `train()`'s (the stats beside
 * the optimizer state, the input scaling factor and the last density window), how a run starts
 * (fresh, with SAELens's initial b_dec and input scaling, or resumed through `openRun`, the
 * general loop's resume), and the checkpoint it writes.
 */
import { Tensor } from '../../tensor/index.js';
import { openRun, saveCheckpoint, type CheckpointContents } from '../../train/checkpoint.js';
import type { DataSource } from '../../train/data.js';
import type { OptState, Optimizer } from '../../train/optim.js';
import type { MetricsRecord } from '../../train/progress.js';
import { estimateNormScalingFactor, geometricMedian, normalizeDecoderRows } from '../transforms.js';
import type { SaeConfig } from '../config.js';
import type { SaeParams } from '../types.js';
import type { TrainSaeOptions } from './trainer.js';
import { concatRows, type ActivationBatch } from './activation-store.js';
import { freshStats, type SaeStats } from './step.js';

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
}

/**
 * Opens the run directory and either
 * 1. resumes from its newest checkpoint (`openRun`: same config and optimizer, metrics.jsonl cut
 *    back to the checkpoint): parameters, optimizer state, stats, the input scaling factor, the
 *    last density window, and the store's position; or
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
}): SaeRun {
  let params = o.params;
  const opt = o.optimizer.init(params);
  const stats = freshStats(o.dSae);
  const run = openRun({ outDir: o.outDir, resume: o.resume, config: o.config, optimizer: o.optimizer }, params, {
    ...opt,
    sae_stats: stats,
  });
  const { ckptRoot, metricsFile, resumed, history } = run;
  if (resumed) {
    const { sae_stats: savedStats, ...optRest } = resumed.optState as OptState & { sae_stats: SaeStats };
    const extra = (resumed.state.extra ?? {}) as { normScalingFactor?: number | null; lastDensity?: number[] | null };
    o.store.setState(resumed.state.data);
    return {
      ckptRoot,
      metricsFile,
      history,
      state: {
        params: resumed.params,
        opt: optRest as OptState,
        stats: savedStats,
        step: resumed.state.step,
        elapsedBefore: resumed.state.elapsed,
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
  return { ckptRoot, metricsFile, history, state: { params, opt, stats, step: 0, elapsedBefore: 0, normFactor, lastDensity: null } };
}

/** Writes a checkpoint of `state` under `ckptRoot` (the stats saved beside the optimizer state). */
export function saveSaeCheckpoint(
  ckptRoot: string,
  state: SaeRunState,
  o: { data: unknown; optimizer: Optimizer; config: unknown; elapsed: number; keep: number },
): void {
  const contents: CheckpointContents = {
    step: state.step,
    data: o.data,
    optimizer: { name: o.optimizer.name, hyper: { ...o.optimizer.hyper } },
    config: o.config,
    elapsed: o.elapsed,
    extra: { normScalingFactor: state.normFactor, lastDensity: state.lastDensity ? Array.from(state.lastDensity) : null },
  };
  saveCheckpoint(ckptRoot, state.params, { ...state.opt, sae_stats: state.stats }, contents, o.keep);
}

/** The settings trainSae resolved, as `runConfig` records them. */
export interface ResolvedRun {
  cfg: SaeConfig;
  steps: number;
  lr: number;
  window: number;
  samplingWindow: number;
  ghost: boolean;
  normalizeDecoder: boolean;
  normalize: string;
  thresholdLr: number;
  nEval: number;
  seed: number;
}

/**
 * The run's description saved in every checkpoint (and training.json): the SAE's config and every
 * setting that changes the weights; resuming refuses a checkpoint whose description differs.
 */
export function runConfig(o: TrainSaeOptions, r: ResolvedRun): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify({
      cfg: r.cfg,
      steps: r.steps,
      lr: r.lr,
      lrScheduler: o.lrScheduler ?? 'constant',
      lrWarmUpSteps: o.lrWarmUpSteps ?? 0,
      lrDecaySteps: o.lrDecaySteps ?? 0,
      lrEnd: o.lrEnd ?? null,
      l1Coefficient: o.l1Coefficient ?? null,
      l1WarmUpSteps: o.l1WarmUpSteps ?? 0,
      l0Coefficient: o.l0Coefficient ?? null,
      l0WarmUpSteps: o.l0WarmUpSteps ?? 0,
      auxLossCoefficient: o.auxLossCoefficient ?? null,
      deadFeatureWindow: r.window,
      featureSamplingWindow: r.samplingWindow,
      useGhostGrads: r.ghost,
      normalizeDecoder: r.normalizeDecoder,
      normalizeActivations: r.normalize,
      bDecInitMethod: o.bDecInitMethod ?? 'zeros',
      topkThresholdLr: r.thresholdLr,
      lossOptions: o.lossOptions ?? null,
      nEvalBatches: r.nEval,
      seed: r.seed,
    }),
  ) as Record<string, unknown>;
}
