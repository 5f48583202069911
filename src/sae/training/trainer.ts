/**
 * SAE training (SAELens's SAETrainer): Adam on the architecture's training loss over batches from
 * an activation store, with SAELens's schedules (lr warm-up / decay, sparsity-coefficient
 * warm-up), dead-feature tracking (passes since each feature last fired), the auxiliary losses
 * that revive dead features (AuxK for the TopK family, ghost grads for standard SAEs, the
 * pre-activation loss for JumpReLU), optional unit-norm decoder rows, BatchTopK's threshold
 * estimate, periodic evaluations on held-out batches, metrics.jsonl, atomic checkpoints with an
 * exact resume, and the final SAE saved in SAELens's layout with sparsity.safetensors (BatchTopK
 * SAEs converted to their JumpReLU inference form).
 *
 * Why not `train()` from src/train: one compiled step here also updates state that is not a
 * parameter (the passes-since-fired counters, firing counts, the BatchTopK threshold) from the
 * step's own feature activations, and transforms the parameters after the optimizer update
 * (decoder rows back to unit norm). `train()` has no place for either, so this loop reuses its
 * pieces instead: the Adam optimizer, the checkpoint files (`saveCheckpoint` / `loadCheckpoint`),
 * the same metrics.jsonl and resume rules.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, jit, scalar, tensor, valueAndGrad, zeros } from '../../tensor/index.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { adam, type OptState, type Optimizer } from '../../train/optim.js';
import type { DataSource } from '../../train/data.js';
import { latestCheckpoint, loadCheckpoint, readCheckpointState, saveCheckpoint, type CheckpointContents } from '../../train/checkpoint.js';
import { Sae } from '../sae.js';
import { dOutOf, isTranscoderArchitecture, type SaeConfigInput } from '../config.js';
import { decoderRowNorms, forwardParts, lossConfig, processInput } from '../common.js';
import { stopGradient } from '../ops.js';
import {
  estimateNormScalingFactor,
  foldActivationNormScalingFactor,
  geometricMedian,
  normalizeDecoderRows,
  removeParallelGradient,
  toInferenceSae,
} from '../transforms.js';
import { saveSae } from '../formats.js';
import type { SaeInitOptions, SaeParams, SaeTrainingLoss, SaeTrainingOptions } from '../types.js';
import { concatRows, type ActivationBatch, type ActivationMetadata } from './activation-store.js';
import { coefficientSchedule, saeLrSchedule } from './schedules.js';
import { makeProgress, metricsLogger, truncateMetrics, type MetricsRecord } from '../../train/progress.js';

/** Architectures trained with TopK-style activations (AuxK; threshold for the batch variants). */
const TOPK_FAMILY = new Set(['topk', 'batchtopk', 'matryoshka_batchtopk']);
const BATCH_TOPK = new Set(['batchtopk', 'matryoshka_batchtopk']);

/** Options of `trainSae`. Names follow SAELens's LanguageModelSAERunnerConfig, in camelCase. */
export interface TrainSaeOptions {
  /** An SAE to train (its parameters are the starting point); or give `cfg`. */
  sae?: Sae;
  /**
   * The SAE to create: architecture, d_sae (the width), k, ... d_in (and d_out for transcoders)
   * default to the store's widths; hook_name, context_size, ... to the store's metadata.
   */
  cfg?: Partial<SaeConfigInput> & Pick<SaeConfigInput, 'architecture' | 'd_sae'>;
  /** Initialisation of a created SAE (seed defaults to `seed`; decoderInitNorm 0.1). */
  init?: SaeInitOptions;
  /** Training batches (an ActivationStore, a CachedActivationStore, or any source of { x, target? }). */
  store: DataSource<ActivationBatch> & Partial<{ batchSize: number; dIn: number; dOut: number | undefined; metadata: ActivationMetadata }>;
  /** Held-out batches for the evaluations (default: the first `nEvalBatches` batches of `store`, which training then skips). */
  evalStore?: DataSource<ActivationBatch>;
  /** Batches per evaluation (SAELens's n_eval_batches, default 10; 0 switches evaluations off). */
  nEvalBatches?: number;
  /** Evaluate every N steps and at the end (default: every tenth of the run). */
  evalEvery?: number;
  /** Training length in activations (SAELens's training_tokens); or give totalTrainingSteps. */
  totalTrainingTokens?: number;
  totalTrainingSteps?: number;
  /** Learning rate (default 3e-4) and its schedule. */
  lr?: number;
  lrScheduler?: 'constant' | 'cosineannealing';
  lrWarmUpSteps?: number;
  lrDecaySteps?: number;
  lrEnd?: number;
  adamBeta1?: number;
  adamBeta2?: number;
  /** Standard / gated / transcoder: the L1 coefficient (default 1) and its linear warm-up from 0. */
  l1Coefficient?: number;
  l1WarmUpSteps?: number;
  /** JumpReLU: the L0 coefficient (default 1) and its warm-up. */
  l0Coefficient?: number;
  l0WarmUpSteps?: number;
  /** TopK family: active features per example (sets cfg.k). */
  k?: number;
  /** TopK family: the AuxK loss coefficient (default 1). */
  auxLossCoefficient?: number;
  /** A feature is dead after this many steps without firing (SAELens's dead_feature_window, default 1000). */
  deadFeatureWindow?: number;
  /** Steps per feature-density window: density is logged and reset every window (default 2000). */
  featureSamplingWindow?: number;
  /** Density below which a feature counts as dead in the density logs (default 1e-8). */
  deadFeatureThreshold?: number;
  /** Standard SAEs and transcoders: ghost grads on dead features (SAELens < 6's use_ghost_grads). */
  useGhostGrads?: boolean;
  /**
   * Keep decoder rows at unit norm: the gradient's component along each row is removed before the
   * update and the rows are renormalised after it (SAELens < 6's normalize_sae_decoder; Gao et
   * al.'s TopK recipe). Default: on for TopK-family SAEs trained without
   * rescale_acts_by_decoder_norm (they need it), off otherwise.
   */
  normalizeDecoder?: boolean;
  /**
   * 'expected_average_only_in': inputs are scaled to an average norm of sqrt(d_in) during
   * training (the factor estimated from `nBatchesForNormEstimate` batches) and the factor is
   * folded into the saved SAE. Default 'none'.
   */
  normalizeActivations?: 'none' | 'expected_average_only_in';
  nBatchesForNormEstimate?: number;
  /** Initial b_dec: 'zeros' (default), 'mean' or 'geometric_median' of the first batches. */
  bDecInitMethod?: 'zeros' | 'mean' | 'geometric_median';
  /** BatchTopK: the threshold's moving-average rate (SAELens's topk_threshold_lr, default 0.01). */
  topkThresholdLr?: number;
  /** More loss options (JumpReLU bandwidth / sparsityLossMode / preActLossCoefficient, Matryoshka aux, ...). */
  lossOptions?: SaeTrainingOptions;
  /** Seed of the initialisation (default 0). */
  seed?: number;
  /** Run directory: metrics.jsonl, checkpoints/, and the final SAE (cfg.json, sae_weights.safetensors, sparsity.safetensors). */
  outDir?: string;
  /** Continue from the newest checkpoint in outDir (a fresh start when there is none). */
  resume?: boolean;
  /** Checkpoint every N steps and at the end (default a tenth of the run); checkpoints kept (default 2). */
  checkpointEvery?: number;
  keepCheckpoints?: number;
  /** Log a training record every N steps (default 10). */
  logEvery?: number;
  /** A bar on a terminal ('auto', default), plain lines, or none. */
  progress?: boolean | 'auto';
  onLog?: (record: Record<string, number | string>) => void;
  /** When aborted, the run checkpoints (with outDir) and returns with interrupted: true. */
  signal?: AbortSignal;
  /** Save the final SAE into outDir (default true with outDir). */
  saveFinal?: boolean;
}

/** What `trainSae` returns. */
export interface TrainSaeResult {
  /** The trained SAE in its inference form (as saved): norms folded, BatchTopK as JumpReLU, input scaling folded; with its sparsity. */
  sae: Sae;
  /** The SAE in its training form (training-space parameters, no folding). */
  trainingSae: Sae;
  step: number;
  startStep: number;
  /** Activations trained on, resumed steps included. */
  tokens: number;
  /** BatchTopK: the threshold estimate (else null). */
  topkThreshold: number | null;
  /** The input scaling factor trained with (expected_average_only_in), else null. */
  normScalingFactor: number | null;
  /** The last evaluation, if any. */
  evals: Record<string, number> | null;
  /** log10 feature density [d_sae] from the last sampling window. */
  sparsity: Tensor;
  history: Record<string, number | string>[];
  interrupted: boolean;
  elapsed: number;
}

/** Non-parameter training state, updated inside the compiled step and checkpointed with the optimizer state. */
interface SaeStats {
  /** [d_sae] steps since each feature last fired (SAELens's n_forward_passes_since_fired). */
  n_forward_passes_since_fired: Tensor;
  /** [d_sae] firings in the current sampling window (SAELens's act_freq_scores). */
  act_freq_scores: Tensor;
  /** Scalar: activations in the current sampling window (SAELens's n_frac_active_tokens). */
  n_frac_active_tokens: Tensor;
  /** Scalar: BatchTopK's threshold estimate (0 for other architectures). */
  topk_threshold: Tensor;
}

interface StepOut {
  params: SaeParams;
  opt: OptState;
  stats: SaeStats;
  loss: Tensor;
  metrics: Record<string, Tensor>;
  numDead: Tensor;
}

/**
 * Trains an SAE (or transcoder) on activation batches; see the file comment and
 * `TrainSaeOptions`. Returns the trained SAE (inference form) and the run's records.
 */
export async function trainSae(o: TrainSaeOptions): Promise<TrainSaeResult> {
  const store = o.store;
  const seed = o.seed ?? 0;
  const nEval = o.nEvalBatches ?? 10;
  // ---- The SAE ----
  let sae = o.sae ?? createSae(o, seed);
  const arch = sae.cfg.architecture;
  if (o.k !== undefined && !TOPK_FAMILY.has(arch))
    throw new Error(`k applies to the TopK family (topk, batchtopk, matryoshka_batchtopk), not '${arch}'`);
  if (o.k !== undefined && sae.cfg.k !== o.k) sae = sae.withConfig({ k: o.k });
  const transcoder = sae.isTranscoder || isTranscoderArchitecture(arch);
  if (store.dIn !== undefined && store.dIn !== sae.dIn)
    throw new Error(`the store's activations have width ${store.dIn} but the SAE's d_in is ${sae.dIn}`);
  if (transcoder && store.dOut !== undefined && store.dOut !== sae.dOut)
    throw new Error(`the store's output activations have width ${store.dOut} but the transcoder's d_out is ${sae.dOut}`);
  if (sae.cfg.normalize_activations !== 'none')
    throw new Error(
      `trainSae: the SAE's config already normalises its input ('${sae.cfg.normalize_activations}'); pass normalizeActivations to trainSae instead`,
    );
  const normalize = o.normalizeActivations ?? 'none';
  if (normalize !== 'none' && normalize !== 'expected_average_only_in')
    throw new Error(`normalizeActivations must be 'none' or 'expected_average_only_in', got '${String(normalize)}'`);
  if (normalize !== 'none' && transcoder) throw new Error('normalizeActivations is not supported for transcoders');
  const topkFamily = TOPK_FAMILY.has(arch);
  const batchTopk = BATCH_TOPK.has(arch);
  const rescale = !!sae.cfg.rescale_acts_by_decoder_norm;
  const normalizeDecoder = o.normalizeDecoder ?? (topkFamily && !rescale);
  const ghost = o.useGhostGrads ?? false;
  if (ghost && !['standard', 'transcoder', 'skip_transcoder'].includes(arch))
    throw new Error(`useGhostGrads applies to standard SAEs and transcoders, not '${arch}' (TopK SAEs use the AuxK loss)`);
  const window = o.deadFeatureWindow ?? 1000;
  const samplingWindow = o.featureSamplingWindow ?? 2000;
  const deadThreshold = o.deadFeatureThreshold ?? 1e-8;
  for (const [k, v] of Object.entries({ deadFeatureWindow: window, featureSamplingWindow: samplingWindow }))
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`${k} must be a positive integer, got ${v}`);
  const thresholdLr = o.topkThresholdLr ?? 0.01;

  // ---- Length and schedules ----
  let steps: number;
  let B = store.batchSize ?? 0;
  if (o.totalTrainingSteps !== undefined) steps = o.totalTrainingSteps;
  else if (o.totalTrainingTokens !== undefined) {
    if (!B) throw new Error('totalTrainingTokens needs a store that knows its batch size; give totalTrainingSteps instead');
    steps = Math.floor(o.totalTrainingTokens / B);
  } else throw new Error('give totalTrainingTokens or totalTrainingSteps');
  if (!(Number.isInteger(steps) && steps > 0))
    throw new Error(`the run has ${steps} steps (totalTrainingTokens / batch size must be at least 1)`);
  const lr = o.lr ?? 3e-4;
  const lrAt = saeLrSchedule({
    lr,
    totalSteps: steps,
    scheduler: o.lrScheduler,
    warmUpSteps: o.lrWarmUpSteps,
    decaySteps: o.lrDecaySteps,
    lrEnd: o.lrEnd,
  });
  const sparsityTerm = sparsityTermOf(arch);
  const coefAt =
    sparsityTerm === 'l0_loss'
      ? coefficientSchedule(o.l0Coefficient ?? 1, o.l0WarmUpSteps ?? 0)
      : coefficientSchedule(o.l1Coefficient ?? 1, o.l1WarmUpSteps ?? 0);
  const optimizer: Optimizer = adam({ beta1: o.adamBeta1 ?? 0.9, beta2: o.adamBeta2 ?? 0.999 });

  // ---- The loss and the compiled step ----
  const lossOptions: SaeTrainingOptions = {
    ...sae.trainingOptions(),
    ...o.lossOptions,
    ...(o.auxLossCoefficient !== undefined ? { auxLossCoefficient: o.auxLossCoefficient } : {}),
    ...(sparsityTerm === 'l0_loss' ? { l0Coefficient: 1 } : { l1Coefficient: 1 }),
  };
  const preActLoss = o.lossOptions?.preActLossCoefficient !== undefined && arch.startsWith('jumprelu');
  const lossOf = (p: SaeParams, x: Tensor, target: Tensor | undefined, dead: Tensor | undefined): SaeTrainingLoss => {
    const opts: SaeTrainingOptions = { ...lossOptions, ...(target ? { target } : {}), ...(dead ? { deadMask: dead } : {}) };
    if (ghost) return ghostGradsLoss(sae, p, x, opts, dead);
    const r = sae.architecture.trainingLoss(p, x, opts);
    // JumpReLU's pre-activation loss is there only with dead features; log it as 0 without.
    if (preActLoss && !r.metrics.pre_act_loss) r.metrics.pre_act_loss = scalar(0);
    return r;
  };
  const usesDead = topkFamily || ghost || preActLoss;
  const makeStep = (withDead: boolean) =>
    jit((p: SaeParams, opt: OptState, stats: SaeStats, batch: ActivationBatch, lrT: Tensor, coef: Tensor): StepOut => {
      const dead = withDead ? stats.n_forward_passes_since_fired.gt(window) : undefined;
      const [[loss, aux], grads] = valueAndGrad(
        (pp: SaeParams) => {
          const r = lossOf(pp, batch.x, batch.target, dead);
          let total = r.loss;
          const metrics = { ...r.metrics };
          if (sparsityTerm && metrics[sparsityTerm]) {
            // The architecture's term was computed with coefficient 1; the schedule's coefficient is an input.
            total = total.add(metrics[sparsityTerm]!.mul(coef.sub(1)));
            metrics[sparsityTerm] = metrics[sparsityTerm]!.mul(coef);
          }
          return [total, { metrics, acts: stopGradient(r.featureActs) }];
        },
        { hasAux: true },
      )(p) as unknown as [[Tensor, { metrics: Record<string, Tensor>; acts: Tensor }], SaeParams];
      let g = grads;
      if (normalizeDecoder) g = { ...g, W_dec: removeParallelGradient(g.W_dec!, p.W_dec!) };
      const next = optimizer.update(p, g, opt, lrT);
      let params = next.params;
      if (normalizeDecoder) params = { ...params, W_dec: normalizeDecoderRows(params.W_dec!) };
      // Dead-feature and density bookkeeping from this step's activations.
      const acts = aux.acts;
      const d = acts.shape[acts.rank - 1]!;
      const fired = acts.reshape([-1, d]).gt(0).cast('float32').sum(0);
      const since = stats.n_forward_passes_since_fired.add(1).where(fired.eq(0), scalar(0));
      const rows = acts.size / d;
      let threshold = stats.topk_threshold;
      const metrics = { ...aux.metrics };
      // Activations are non-negative, so L0 is the firing count: the architecture's own l0 graph is then unused (and pruned).
      if (metrics.l0) metrics.l0 = fired.sum().div(rows);
      if (batchTopk && metrics.min_positive_act) {
        const m = metrics.min_positive_act;
        threshold = threshold
          .mul(1 - thresholdLr)
          .add(m.mul(thresholdLr))
          .where(m.lt(Infinity), threshold);
        delete metrics.min_positive_act;
      }
      // Explained variance of this batch: 1 - MSE / total variance of the target.
      const target = batch.target ?? batch.x;
      const tss = target.sub(target.mean(0)).square().sum(-1).mean();
      if (metrics.mse_loss) metrics.explained_variance = scalar(1).sub(metrics.mse_loss.div(tss.maximum(1e-12)));
      return {
        params,
        opt: next.state,
        stats: {
          n_forward_passes_since_fired: since,
          act_freq_scores: stats.act_freq_scores.add(fired),
          n_frac_active_tokens: stats.n_frac_active_tokens.add(rows),
          topk_threshold: threshold,
        },
        loss,
        metrics,
        numDead: since.gt(window).cast('float32').sum(),
      };
    });
  const stepPlain = makeStep(false);
  const stepDead = usesDead ? makeStep(true) : stepPlain;

  // ---- Held-out batches (drawn first, so a resumed run draws the same ones) ----
  const evalSource = o.evalStore ?? store;
  const evalBatches: ActivationBatch[] = [];
  for (let i = 0; i < nEval; i++) evalBatches.push(evalSource.next());
  if (!B) B = evalBatches[0]?.x.shape[0] ?? 0;

  // ---- Fresh start or resume ----
  const config = JSON.parse(
    JSON.stringify({
      cfg: sae.cfg,
      steps,
      lr,
      lrScheduler: o.lrScheduler ?? 'constant',
      lrWarmUpSteps: o.lrWarmUpSteps ?? 0,
      lrDecaySteps: o.lrDecaySteps ?? 0,
      lrEnd: o.lrEnd ?? null,
      l1Coefficient: o.l1Coefficient ?? null,
      l1WarmUpSteps: o.l1WarmUpSteps ?? 0,
      l0Coefficient: o.l0Coefficient ?? null,
      l0WarmUpSteps: o.l0WarmUpSteps ?? 0,
      auxLossCoefficient: o.auxLossCoefficient ?? null,
      deadFeatureWindow: window,
      featureSamplingWindow: samplingWindow,
      useGhostGrads: ghost,
      normalizeDecoder,
      normalizeActivations: normalize,
      bDecInitMethod: o.bDecInitMethod ?? 'zeros',
      topkThresholdLr: thresholdLr,
      lossOptions: o.lossOptions ?? null,
      nEvalBatches: nEval,
      seed,
    }),
  ) as Record<string, unknown>;
  const ckptRoot = o.outDir ? join(o.outDir, 'checkpoints') : null;
  const metricsFile = o.outDir ? join(o.outDir, 'metrics.jsonl') : null;
  if (o.outDir) mkdirSync(o.outDir, { recursive: true });
  let params = sae.params;
  let opt = optimizer.init(params);
  let stats = freshStats(sae.dSae);
  /** The run's records: on resume, those already in metrics.jsonl up to the checkpoint. */
  const history: MetricsRecord[] = [];
  let startStep = 0;
  let elapsedBefore = 0;
  let normFactor: number | null = null;
  let lastDensity: Float32Array | null = null;
  const latest = ckptRoot ? latestCheckpoint(ckptRoot) : null;
  if (latest && !o.resume)
    throw new Error(`${o.outDir} already holds checkpoints (latest: step ${latest.step}); pass resume to continue, or use a new directory`);
  if (latest && o.resume) {
    const saved = readCheckpointState(latest.dir);
    if (JSON.stringify(saved.config) !== JSON.stringify(config))
      throw new Error(
        `${join(latest.dir, 'state.json')}: the checkpoint was written by a run with other settings; resume with the same settings or use a new directory`,
      );
    const ck = loadCheckpoint(latest.dir, params, { ...opt, sae_stats: stats });
    params = ck.params;
    const { sae_stats: savedStats, ...optRest } = ck.optState as OptState & { sae_stats: SaeStats };
    opt = optRest as OptState;
    stats = savedStats;
    startStep = ck.state.step;
    elapsedBefore = ck.state.elapsed;
    const extra = (ck.state.extra ?? {}) as { normScalingFactor?: number | null; lastDensity?: number[] | null };
    normFactor = extra.normScalingFactor ?? null;
    lastDensity = extra.lastDensity ? Float32Array.from(extra.lastDensity) : null;
    store.setState(ck.state.data);
    if (metricsFile) history.push(...truncateMetrics(metricsFile, startStep));
  } else {
    if (metricsFile && existsSync(metricsFile)) writeFileAtomic(metricsFile, '');
    // A unit-norm decoder starts with unit rows (removeParallelGradient assumes them).
    if (normalizeDecoder) params = { ...params, W_dec: normalizeDecoderRows(params.W_dec!) };
    const bInit = o.bDecInitMethod ?? 'zeros';
    const needSample = normalize !== 'none' || bInit !== 'zeros';
    if (needSample) {
      const n = Math.max(1, o.nBatchesForNormEstimate ?? (normalize !== 'none' ? 100 : 1));
      const sample: Tensor[] = [];
      for (let i = 0; i < n; i++) sample.push(store.next().x);
      if (normalize !== 'none') normFactor = estimateNormScalingFactor(concatRows(sample));
      if (bInit !== 'zeros') {
        if (transcoder) throw new Error('bDecInitMethod applies to SAEs, not transcoders (b_dec lives in the output space)');
        const rows = concatRows(sample.slice(0, Math.max(1, Math.ceil(4096 / Math.max(1, sample[0]!.shape[0]!)))));
        const scaled = normFactor ? rows.mul(normFactor) : rows;
        let bDec: Tensor;
        if (bInit === 'mean') bDec = scaled.mean(0);
        else if (bInit === 'geometric_median') bDec = geometricMedian(scaled.slice([{ start: 0, end: Math.min(4096, scaled.shape[0]!) }]));
        else throw new Error(`bDecInitMethod must be 'zeros', 'mean' or 'geometric_median', got '${String(bInit)}'`);
        params = { ...params, b_dec: bDec };
      }
    }
  }
  const scaleBatch = (b: ActivationBatch): ActivationBatch =>
    normFactor === null ? b : { x: b.x.mul(normFactor), ...(b.target ? { target: b.target } : {}) };
  const scaledEval = evalBatches.map(scaleBatch);

  // ---- Evaluation ----
  const evalFn = makeEvaluator(sae, lossOptions);
  const evaluate = (p: SaeParams): Record<string, number> => evalFn(p, scaledEval);

  // ---- Logging, progress, checkpoints ----
  const log = metricsLogger(history, metricsFile, o.onLog);
  const logEvery = o.logEvery ?? 10;
  const evalEvery = o.evalEvery ?? Math.max(1, Math.ceil(steps / 10));
  const ckptEvery = o.checkpointEvery ?? Math.max(1, Math.ceil(steps / 10));
  const progress = await makeProgress(o.progress ?? 'auto', startStep, steps, 'sae');
  const t0 = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - t0) / 1000;
  const checkpoint = (done: number): void => {
    if (!ckptRoot) return;
    const state: CheckpointContents = {
      step: done,
      data: store.getState(),
      optimizer: { name: optimizer.name, hyper: { ...optimizer.hyper } },
      config,
      elapsed: elapsed(),
      extra: { normScalingFactor: normFactor, lastDensity: lastDensity ? Array.from(lastDensity) : null },
    };
    saveCheckpoint(ckptRoot, params, { ...opt, sae_stats: stats }, state, o.keepCheckpoints ?? 2);
  };

  let done = startStep;
  let interrupted = false;
  let numDead = (stats.n_forward_passes_since_fired.gt(window).cast('float32').sum().item() as number) > 0;
  let lastEval: Record<string, number> | null = null;
  let windowStart = performance.now();
  let windowSteps = 0;
  try {
    while (done < steps) {
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      const lrNow = lrAt(done);
      const coefNow = coefAt(done);
      const batch = scaleBatch(store.next());
      if (!B) B = batch.x.shape[0]!;
      const step = numDead ? stepDead : stepPlain;
      const out = step(params, opt, stats, batch, scalar(lrNow), scalar(coefNow));
      const lossValue = out.loss.item() as number;
      if (!Number.isFinite(lossValue))
        throw new Error(
          `the loss became ${lossValue} at step ${done + 1}; lower the learning rate${ckptRoot ? ` (the last checkpoint in ${ckptRoot} is intact)` : ''}`,
        );
      params = out.params;
      opt = out.opt;
      stats = out.stats;
      numDead = usesDead && (out.numDead.item() as number) > 0;
      done++;
      windowSteps++;
      const now = performance.now();
      const rate = (windowSteps * 1000) / Math.max(1e-9, now - windowStart);
      if (now - windowStart > 5000) {
        windowStart = now;
        windowSteps = 0;
      }
      if (done % logEvery === 0 || done === steps) {
        const record: Record<string, number | string> = {
          kind: 'train',
          step: done,
          loss: lossValue,
          'losses/overall_loss': lossValue,
        };
        for (const [k, v] of Object.entries(out.metrics)) {
          const val = v.item() as number;
          if (k === 'l0') record['metrics/l0'] = val;
          else if (k === 'explained_variance') record['metrics/explained_variance'] = val;
          else record[`losses/${k}`] = val;
        }
        const since = out.stats.n_forward_passes_since_fired.dataSync() as Float32Array;
        record['sparsity/mean_passes_since_fired'] = since.reduce((s, v) => s + v, 0) / since.length;
        record['sparsity/dead_features'] = out.numDead.item() as number;
        record['details/current_learning_rate'] = lrNow;
        if (sparsityTerm) record[`details/current_${sparsityTerm === 'l0_loss' ? 'l0' : 'l1'}_coefficient`] = coefNow;
        if (batchTopk) record['details/topk_threshold'] = out.stats.topk_threshold.item() as number;
        record['details/n_training_tokens'] = done * B;
        record.tokensPerSec = rate * B;
        record.elapsed = elapsed();
        log(record);
      }
      if (done % samplingWindow === 0) {
        lastDensity = density(stats);
        log({ kind: 'sparsity', step: done, ...densityRecord(lastDensity, deadThreshold) });
        if (done < steps) stats = { ...stats, act_freq_scores: zeros([sae.dSae]), n_frac_active_tokens: scalar(0) };
      }
      if (nEval > 0 && (done % evalEvery === 0 || done === steps)) {
        lastEval = evaluate(params);
        log({ kind: 'eval', step: done, ...lastEval });
      }
      progress.update(done, { loss: lossValue, rate: rate * B, unit: 'tokens/s' });
      if (ckptRoot && (done % ckptEvery === 0 || done === steps)) checkpoint(done);
      await new Promise((r) => setImmediate(r));
    }
    if (interrupted && ckptRoot && done > startStep) checkpoint(done);
  } finally {
    progress.stop();
  }

  // ---- The trained SAE ----
  const threshold = batchTopk ? (stats.topk_threshold.item() as number) : null;
  const finalDensity = (stats.n_frac_active_tokens.item() as number) > 0 ? density(stats) : (lastDensity ?? density(stats));
  const sparsity = tensor(
    Float32Array.from(finalDensity, (v) => Math.log10(v + 1e-10)),
    [sae.dSae],
  );
  const trainingSae = new Sae(
    normFactor === null ? sae.cfg : { ...sae.cfg, normalize_activations: 'expected_average_only_in', norm_scaling_factor: normFactor },
    params,
    { sparsity, extraTensors: { ...sae.extraTensors } },
  );
  let inference = toInferenceSae(sae.withParams(params), batchTopk ? { topkThreshold: threshold! } : {});
  if (normFactor !== null) inference = foldActivationNormScalingFactor(inference, normFactor);
  inference = inference.withSparsity(sparsity);
  if (o.outDir && (o.saveFinal ?? true) && !interrupted) {
    saveSae(inference, o.outDir);
    writeFileAtomic(
      join(o.outDir, 'training.json'),
      `${JSON.stringify(
        {
          steps: done,
          tokens: done * B,
          batchSize: B,
          seconds: elapsed(),
          topkThreshold: threshold,
          normScalingFactor: normFactor,
          evals: lastEval,
          deadFeatures: countBelow(finalDensity, deadThreshold),
          config,
        },
        null,
        2,
      )}\n`,
    );
  }
  return {
    sae: inference,
    trainingSae,
    step: done,
    startStep,
    tokens: done * B,
    topkThreshold: threshold,
    normScalingFactor: normFactor,
    evals: lastEval,
    sparsity,
    history,
    interrupted,
    elapsed: elapsed(),
  };
}

/** The SAE `trainSae` creates from `cfg` and the store's widths and metadata. */
function createSae(o: TrainSaeOptions, seed: number): Sae {
  if (!o.cfg) throw new Error('trainSae: give an SAE (sae) or a config to create one (cfg: { architecture, d_sae, ... })');
  const meta = o.store.metadata;
  const transcoder = isTranscoderArchitecture(o.cfg.architecture);
  const dIn = o.cfg.d_in ?? o.store.dIn;
  if (dIn === undefined) throw new Error("trainSae: cfg.d_in is missing and the store does not know its activations' width");
  const input: SaeConfigInput = {
    ...(meta
      ? {
          model_name: meta.model_name,
          hook_name: meta.hook_name,
          context_size: meta.context_size,
          prepend_bos: meta.prepend_bos,
          dataset_path: meta.dataset_path,
          ...(meta.exclude_special_tokens !== undefined ? { exclude_special_tokens: meta.exclude_special_tokens } : {}),
          ...(transcoder && meta.hook_name_out ? { hook_name_out: meta.hook_name_out } : {}),
        }
      : {}),
    ...o.cfg,
    d_in: dIn,
    ...(o.k !== undefined ? { k: o.k } : {}),
  } as SaeConfigInput;
  if (transcoder && input.d_out === undefined && o.store.dOut !== undefined) input.d_out = o.store.dOut;
  return Sae.create(input, { seed, ...o.init });
}

/** The loss term the sparsity coefficient scales: 'l1_loss', 'l0_loss', or null (TopK family). */
function sparsityTermOf(arch: string): 'l1_loss' | 'l0_loss' | null {
  if (arch.startsWith('jumprelu')) return 'l0_loss';
  if (TOPK_FAMILY.has(arch)) return null;
  return 'l1_loss';
}

function freshStats(dSae: number): SaeStats {
  return {
    n_forward_passes_since_fired: zeros([dSae]),
    act_freq_scores: zeros([dSae]),
    n_frac_active_tokens: scalar(0),
    topk_threshold: scalar(0),
  };
}

function density(stats: SaeStats): Float32Array {
  const n = Math.max(1, stats.n_frac_active_tokens.item() as number);
  return Float32Array.from(stats.act_freq_scores.dataSync() as Float32Array, (v) => v / n);
}

function countBelow(d: Float32Array, t: number): number {
  let n = 0;
  for (const v of d) if (v < t) n++;
  return n;
}

/** SAELens's sparsity log: mean log10 density, features below 1e-5 / 1e-6, dead features. */
function densityRecord(d: Float32Array, deadThreshold: number): Record<string, number> {
  let logSum = 0;
  for (const v of d) logSum += Math.log10(v + 1e-10);
  return {
    'sparsity/mean_log10_feature_density': logSum / d.length,
    'sparsity/below_1e-5': countBelow(d, 1e-5),
    'sparsity/below_1e-6': countBelow(d, 1e-6),
    'sparsity/dead_features': countBelow(d, deadThreshold),
  };
}

/**
 * The standard (or transcoder) loss plus SAELens < 6's ghost-grads term on dead features: the
 * dead features' exp(pre-activations), through the decoder and rescaled to half the residual's
 * norm, fit the residual; the term is scaled to the size of the MSE. Zero when no feature is dead.
 */
function ghostGradsLoss(sae: Sae, params: SaeParams, x: Tensor, o: SaeTrainingOptions, dead: Tensor | undefined): SaeTrainingLoss {
  const base = sae.architecture.trainingLoss(params, x, o);
  if (!dead) return { ...base, metrics: { ...base.metrics, ghost_grad_loss: scalar(0) } };
  const cfg = lossConfig(sae.architecture, params, o);
  const target = o.target ?? x;
  const { saeIn } = processInput(x, params, cfg, sae.architecture.transcoder);
  const hiddenPre = sae.architecture.hiddenPre(params, saeIn, cfg);
  const acts = base.featureActs;
  let out = acts.matmul(params.W_dec!).add(params.b_dec!);
  if (params.W_skip) out = out.add(x.matmul(params.W_skip.transpose()));
  const residual = stopGradient(target.sub(out));
  const ghostActs = hiddenPre.where(dead, -1e4).exp();
  let ghostOut = ghostActs.matmul(params.W_dec!);
  const scale = stopGradient(residual.square().sum(-1).sqrt().div(ghostOut.square().sum(-1).sqrt().mul(2).add(1e-6)));
  ghostOut = ghostOut.mul(scale.unsqueeze(-1));
  const perItemGhost = ghostOut.sub(residual).square();
  const perItemMse = stopGradient(out.sub(target).square());
  const anyDead = dead.cast('float32').sum().gt(0).cast('float32');
  const ghostLoss = perItemGhost
    .mul(stopGradient(perItemMse.div(perItemGhost.add(1e-6))))
    .mean()
    .mul(anyDead);
  return { loss: base.loss.add(ghostLoss), metrics: { ...base.metrics, ghost_grad_loss: ghostLoss }, featureActs: acts };
}

/**
 * Evaluation on held-out batches (SAELens's run_evals metric names): explained variance (1 - the
 * residual sum of squares over the total, about the held-out mean), MSE per element, L0 and L1 of
 * the feature activations, the ratio of output to input norms, dead features.
 */
function makeEvaluator(sae: Sae, lossOptions: SaeTrainingOptions): (p: SaeParams, batches: ActivationBatch[]) => Record<string, number> {
  const arch = sae.architecture;
  const run = jit((p: SaeParams, x: Tensor, target: Tensor | null, mean: Tensor) => {
    const cfg = lossConfig(arch, p, lossOptions);
    const { acts, out } = forwardParts(arch, p, x, cfg);
    const t = target ?? x;
    const rescaled = cfg.rescale_acts_by_decoder_norm ? acts.div(decoderRowNorms(p.W_dec!)) : acts;
    return {
      rss: out.sub(t).square().sum(),
      tss: t.sub(mean).square().sum(),
      l0: acts.ne(0).cast('float32').sum(),
      l1: rescaled.abs().sum(),
      normIn: t.square().sum(-1).sqrt().sum(),
      normOut: out.square().sum(-1).sqrt().sum(),
    };
  });
  let mean: Tensor | null = null;
  return (p, batches): Record<string, number> => {
    if (batches.length === 0) return {};
    if (!mean) {
      const d = dOutOf(sae.cfg);
      const acc = new Float64Array(d);
      let n = 0;
      for (const b of batches) {
        const t = (b.target ?? b.x).dataSync() as Float32Array;
        for (let i = 0; i < t.length; i++) acc[i % d]! += t[i]!;
        n += t.length / d;
      }
      mean = tensor(
        Float32Array.from(acc, (v) => v / n),
        [d],
      );
    }
    const sums = { rss: 0, tss: 0, l0: 0, l1: 0, normIn: 0, normOut: 0 };
    let rows = 0;
    let elements = 0;
    for (const b of batches) {
      const r = run(p, b.x, b.target ?? null, mean) as Record<keyof typeof sums, Tensor>;
      for (const k of Object.keys(sums) as (keyof typeof sums)[]) sums[k] += r[k].item() as number;
      rows += b.x.shape[0]!;
      elements += (b.target ?? b.x).size;
    }
    return {
      'reconstruction_quality/explained_variance': 1 - sums.rss / Math.max(1e-30, sums.tss),
      'reconstruction_quality/mse': sums.rss / elements,
      'sparsity/l0': sums.l0 / rows,
      'sparsity/l1': sums.l1 / rows,
      'shrinkage/l2_norm_in': sums.normIn / rows,
      'shrinkage/l2_norm_out': sums.normOut / rows,
      'shrinkage/l2_ratio': sums.normOut / Math.max(1e-30, sums.normIn),
    };
  };
}
