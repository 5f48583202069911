/**
 * SAE training (SAELens's SAETrainer): Adam on the architecture's training loss over batches from
 * an activation store, with SAELens's schedules (lr warm-up / decay, sparsity-coefficient
 * warm-up), dead-feature tracking (passes since each feature last fired), the auxiliary losses
 * that revive dead features, optional unit-norm decoder rows, a running threshold estimate,
 * periodic evaluations on held-out batches, metrics.jsonl, atomic checkpoints with an exact
 * resume, and the final SAE saved in SAELens's layout with sparsity.safetensors (in its inference
 * form: BatchTopK SAEs as JumpReLU).
 *
 * The trainer never names an architecture: what differs between them (the sparsity coefficient,
 * k, the rescaling default, the unit-norm default, ghost grads, the dead-feature loss, the running
 * threshold, the inference form, whether it is a transcoder) is the architecture's own
 * (`SaeArchitecture.training`, in its file under architectures/).
 *
 * The run, in order:
 * 1. the SAE: created from `cfg` and the store's widths and metadata, or given; checked against
 *    the store; the config it trains with (`trainingConfig`: the loss options and the
 *    architecture's training defaults);
 * 2. the length, the schedules and the optimizer;
 * 3. the compiled step (`step.ts`);
 * 4. the held-out batches, drawn first so a resumed run draws the same ones;
 * 5. the run directory (`checkpoint.ts`): resume from the newest checkpoint, or a fresh start
 *    (unit decoder rows, input scaling factor, initial b_dec);
 * 6. the loop: a step, then by their cadences a training record, a density window, an evaluation
 *    (`evaluate.ts`) and a checkpoint; an abort checkpoints and stops;
 * 7. the trained SAE: its sparsity, the training form, the inference form
 *    (`toInferenceSae`, the input scaling folded), saved with training.json.
 *
 * Why not `train()` from src/train: one compiled step here also updates state that is not a
 * parameter (the passes-since-fired counters, firing counts, the running threshold) from the
 * step's own feature activations, and transforms the parameters after the optimizer update
 * (decoder rows back to unit norm). `train()` has no place for either, so this loop reuses its
 * pieces instead: the Adam optimizer, the run directory and resume rules (`openRun`), the
 * checkpoint files, the metrics log, the progress display and step rate.
 */
import { join } from 'node:path';
import { scalar, tensor, type Tensor } from '../../tensor/index.js';
import { writeFileAtomic } from '../../io/atomic.js';
import type { DataSource } from '../../train/data.js';
import { makeProgress, metricsLogger, stepRate } from '../../train/progress.js';
import { Sae } from '../sae.js';
import type { SaeConfigInput } from '../config.js';
import { trainingConfig, trainingFacts } from '../common.js';
import { getArchitecture, listArchitectures } from '../registry.js';
import { foldActivationNormScalingFactor, toInferenceSae } from '../transforms.js';
import { saveSae } from '../formats.js';
import type { SaeInitOptions, SaeTrainingOptions } from '../types.js';
import type { ActivationBatch, ActivationMetadata } from './activation-store.js';
import { coefficientSchedule, saeOptimizer, type SaeOptimizerOptions } from './schedules.js';
import { countBelow, density, densityRecord, makeSaeSteps, resetDensityWindow, stepRecord } from './step.js';
import { makeEvaluator } from './evaluate.js';
import { runConfig, startSaeRun, type SaeRunState } from './checkpoint.js';

/** Options of `trainSae`. Names follow SAELens's LanguageModelSAERunnerConfig, in camelCase. */
export interface TrainSaeOptions extends SaeOptimizerOptions {
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
  /** Learning rate (default 3e-4); its schedule and Adam's betas are `SaeOptimizerOptions`. */
  lr?: number;
  /**
   * The L1 coefficient (default 1) and its linear warm-up from 0, for architectures whose
   * training coefficient is 'l1' (standard, gated, transcoders).
   */
  l1Coefficient?: number;
  l1WarmUpSteps?: number;
  /** The L0 coefficient (default 1) and its warm-up, for architectures whose coefficient is 'l0' (JumpReLU). */
  l0Coefficient?: number;
  l0WarmUpSteps?: number;
  /** Active features per example (sets cfg.k), for architectures that select the top k (the TopK family). */
  k?: number;
  /** TopK family: the AuxK loss coefficient (default 1). */
  auxLossCoefficient?: number;
  /** A feature is dead after this many steps without firing (SAELens's dead_feature_window, default 1000). */
  deadFeatureWindow?: number;
  /** Steps per feature-density window: density is logged and reset every window (default 2000). */
  featureSamplingWindow?: number;
  /** Density below which a feature counts as dead in the density logs (default 1e-8). */
  deadFeatureThreshold?: number;
  /** Ghost grads on dead features (SAELens < 6's use_ghost_grads), for architectures that have them (standard SAEs and their transcoders). */
  useGhostGrads?: boolean;
  /**
   * Keep decoder rows at unit norm: the gradient's component along each row is removed before the
   * update and the rows are renormalised after it (SAELens < 6's normalize_sae_decoder; Gao et
   * al.'s TopK recipe). Default: the architecture's `training.unitNormDecoder` (on for TopK-family
   * SAEs trained without rescale_acts_by_decoder_norm, which need it; off otherwise).
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
  /** The running threshold's moving-average rate (BatchTopK's; SAELens's topk_threshold_lr, default 0.01). */
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
  /** Warnings (on resume: a damaged checkpoint skipped for an older one, temporary files of killed writes removed). Default: stderr. */
  onWarning?: (message: string) => void;
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
  /** The running threshold's estimate (BatchTopK's), else null. */
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

/**
 * Trains an SAE (or transcoder) on activation batches; see the file comment and
 * `TrainSaeOptions`. Returns the trained SAE (inference form) and the run's records.
 */
export async function trainSae(o: TrainSaeOptions): Promise<TrainSaeResult> {
  const store = o.store;
  const seed = o.seed ?? 0;
  const nEval = o.nEvalBatches ?? 10;

  // 1. The SAE and the config it trains with.
  const { sae, arch, facts, transcoder, normalize, normalizeDecoder, ghost, window, samplingWindow, deadThreshold, thresholdLr, trainCfg } =
    resolveSae(o, seed);

  // 2. Length, schedules, optimizer.
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
  const { lrAt, optimizer, settings: optimizerSettings } = saeOptimizer(o, lr, steps);
  const coefficient = facts.coefficient;
  const coefAt = coefficient ? coefficientSchedule(...coefficientSetting(o, coefficient.name)) : () => 1;

  // 3. The compiled step.
  const lossOptions: SaeTrainingOptions = {
    ...o.lossOptions,
    config: trainCfg,
    ...(o.auxLossCoefficient !== undefined ? { auxLossCoefficient: o.auxLossCoefficient } : {}),
    ...(coefficient ? { [`${coefficient.name}Coefficient`]: 1 } : {}),
  };
  const deadFeatures = facts.deadFeatures(arch, { useGhostGrads: ghost, lossOptions: o.lossOptions ?? {} });
  const steppers = makeSaeSteps({
    arch,
    lossOptions,
    coefficient,
    deadFeatures,
    threshold: facts.threshold,
    thresholdLr,
    deadFeatureWindow: window,
    normalizeDecoder,
    optimizer,
  });

  // 4. Held-out batches (drawn first, so a resumed run draws the same ones).
  const evalSource = o.evalStore ?? store;
  const evalBatches: ActivationBatch[] = [];
  for (let i = 0; i < nEval; i++) evalBatches.push(evalSource.next());
  if (!B) B = evalBatches[0]?.x.shape[0] ?? 0;

  // 5. The run directory: resume, or a fresh start.
  const config = runConfig(o, {
    cfg: sae.cfg,
    totalTrainingSteps: steps,
    lr,
    ...optimizerSettings,
    deadFeatureWindow: window,
    featureSamplingWindow: samplingWindow,
    useGhostGrads: ghost,
    normalizeDecoder,
    normalizeActivations: normalize,
    bDecInitMethod: o.bDecInitMethod ?? 'zeros',
    topkThresholdLr: thresholdLr,
    nEvalBatches: nEval,
    seed,
    ...(coefficient
      ? Object.fromEntries(
          [`${coefficient.name}Coefficient`, `${coefficient.name}WarmUpSteps`].map((k, i) => [
            k,
            coefficientSetting(o, coefficient.name)[i]!,
          ]),
        )
      : {}),
    ...(normalize !== 'none' || (o.bDecInitMethod ?? 'zeros') !== 'zeros'
      ? { nBatchesForNormEstimate: Math.max(1, o.nBatchesForNormEstimate ?? (normalize !== 'none' ? 100 : 1)) }
      : {}),
  });
  const schedules = { lr: lrAt, ...(coefficient ? { [`${coefficient.name}Coefficient`]: coefAt } : {}) };
  const run = startSaeRun({
    outDir: o.outDir,
    resume: o.resume,
    config,
    optimizer,
    params: sae.params,
    dSae: sae.dSae,
    store,
    schedules,
    keep: o.keepCheckpoints ?? 2,
    onWarning: o.onWarning,
    fresh: {
      normalizeDecoder,
      normalizeActivations: normalize,
      bDecInitMethod: o.bDecInitMethod ?? 'zeros',
      nBatchesForNormEstimate: o.nBatchesForNormEstimate,
      transcoder,
    },
  });
  const { ckptRoot, metricsFile } = run;
  const state = run.state;
  const startStep = state.step;
  const normFactor = state.normFactor;
  /** The run's records: on resume, those already in metrics.jsonl up to the checkpoint. */
  const history = run.history;
  const scaleBatch = (b: ActivationBatch): ActivationBatch =>
    normFactor === null ? b : { x: b.x.mul(normFactor), ...(b.target ? { target: b.target } : {}) };
  const scaledEval = evalBatches.map(scaleBatch);
  const evalFn = makeEvaluator(arch, trainCfg);

  // 6. The loop.
  const log = metricsLogger(history, metricsFile, o.onLog);
  const logEvery = o.logEvery ?? 10;
  const evalEvery = o.evalEvery ?? Math.max(1, Math.ceil(steps / 10));
  const ckptEvery = o.checkpointEvery ?? Math.max(1, Math.ceil(steps / 10));
  const progress = await makeProgress(o.progress ?? 'auto', startStep, steps, 'sae');
  const t0 = performance.now();
  const elapsed = (): number => state.elapsedBefore + (performance.now() - t0) / 1000;
  const checkpoint = (): void => run.checkpoint(state, elapsed());

  let interrupted = false;
  let numDead = (state.stats.n_forward_passes_since_fired.gt(window).cast('float32').sum().item() as number) > 0;
  let lastEval: Record<string, number> | null = null;
  const nextRate = stepRate();
  try {
    while (state.step < steps) {
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      const lrNow = lrAt(state.step);
      const coefNow = coefAt(state.step);
      const batch = scaleBatch(store.next());
      if (!B) B = batch.x.shape[0]!;
      const step = numDead ? steppers.withDead : steppers.plain;
      const out = step(state.params, state.opt, state.stats, batch, scalar(lrNow), scalar(coefNow));
      const lossValue = out.loss.item() as number;
      if (!Number.isFinite(lossValue))
        throw new Error(
          `the loss became ${lossValue} at step ${state.step + 1}; lower the learning rate${ckptRoot ? ` (the last checkpoint in ${ckptRoot} is intact)` : ''}`,
        );
      state.params = out.params;
      state.opt = out.opt;
      state.stats = out.stats;
      numDead = deadFeatures !== null && (out.numDead.item() as number) > 0;
      const done = ++state.step;
      const rate = nextRate();
      if (done % logEvery === 0 || done === steps)
        log({
          kind: 'train',
          step: done,
          loss: lossValue,
          ...stepRecord(out, { loss: lossValue, lr: lrNow, coefficient, coef: coefNow, threshold: !!facts.threshold }),
          'details/n_training_tokens': done * B,
          tokensPerSec: rate * B,
          elapsed: elapsed(),
        });
      if (done % samplingWindow === 0) {
        state.lastDensity = density(state.stats);
        log({ kind: 'sparsity', step: done, ...densityRecord(state.lastDensity, deadThreshold) });
        if (done < steps) state.stats = resetDensityWindow(state.stats, sae.dSae);
      }
      if (nEval > 0 && (done % evalEvery === 0 || done === steps)) {
        lastEval = evalFn(state.params, scaledEval);
        log({ kind: 'eval', step: done, ...lastEval });
      }
      progress.update(done, { loss: lossValue, rate: rate * B, unit: 'tokens/s' });
      if (ckptRoot && (done % ckptEvery === 0 || done === steps)) checkpoint();
      await new Promise((r) => setImmediate(r));
    }
    if (interrupted && ckptRoot && state.step > startStep) checkpoint();
  } finally {
    progress.stop();
  }

  // 7. The trained SAE.
  const threshold = facts.threshold ? (state.stats.topk_threshold.item() as number) : null;
  const { sparsity, finalDensity, trainingSae, inference } = trainedSae(sae, state, threshold);
  if (o.outDir && (o.saveFinal ?? true) && !interrupted) {
    saveSae(inference, o.outDir);
    const summary = {
      steps: state.step,
      tokens: state.step * B,
      batchSize: B,
      seconds: elapsed(),
      topkThreshold: threshold,
      normScalingFactor: normFactor,
      evals: lastEval,
      deadFeatures: countBelow(finalDensity, deadThreshold),
      config,
    };
    writeFileAtomic(join(o.outDir, 'training.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }
  return {
    sae: inference,
    trainingSae,
    step: state.step,
    startStep,
    tokens: state.step * B,
    topkThreshold: threshold,
    normScalingFactor: normFactor,
    evals: lastEval,
    sparsity,
    history,
    interrupted,
    elapsed: elapsed(),
  };
}

/**
 * The SAE a run trained, from its state: the density of the current sampling window (the last
 * finished one when the current is empty) as log10 sparsity; the training form (the input
 * scaling, when there was one, in its config); and the inference form (the architecture's
 * `inferenceForm` via `toInferenceSae`, the input scaling folded into the weights).
 */
function trainedSae(
  sae: Sae,
  state: SaeRunState,
  threshold: number | null,
): { sparsity: Tensor; finalDensity: Float32Array; trainingSae: Sae; inference: Sae } {
  const { params, stats, normFactor } = state;
  const finalDensity = (stats.n_frac_active_tokens.item() as number) > 0 ? density(stats) : (state.lastDensity ?? density(stats));
  const sparsity = tensor(
    Float32Array.from(finalDensity, (v) => Math.log10(v + 1e-10)),
    [sae.dSae],
  );
  const trainingSae = new Sae(
    normFactor === null ? sae.cfg : { ...sae.cfg, normalize_activations: 'expected_average_only_in', norm_scaling_factor: normFactor },
    params,
    { sparsity, extraTensors: { ...sae.extraTensors } },
  );
  let inference = toInferenceSae(sae.withParams(params), threshold !== null ? { topkThreshold: threshold } : {});
  if (normFactor !== null) inference = foldActivationNormScalingFactor(inference, normFactor);
  return { sparsity, finalDensity, trainingSae, inference: inference.withSparsity(sparsity) };
}

/**
 * Phase 1 of `trainSae`: the SAE (created from `cfg`, or given; `k` applied), checked against the
 * store and the options, and the settings its architecture's training facts decide.
 */
function resolveSae(o: TrainSaeOptions, seed: number) {
  const store = o.store;
  let sae = o.sae ?? createSae(o, seed);
  const arch = sae.architecture;
  const facts = trainingFacts(arch);
  if (o.k !== undefined && !facts.selectsTopK)
    throw new Error(`k applies to architectures that select the top k features (${namesWith((f) => f.selectsTopK)}), not '${arch.name}'`);
  if (o.k !== undefined && sae.cfg.k !== o.k) sae = sae.withConfig({ k: o.k });
  const transcoder = sae.isTranscoder;
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
  const normalizeDecoder = o.normalizeDecoder ?? facts.unitNormDecoder(sae.cfg);
  const ghost = o.useGhostGrads ?? false;
  if (ghost && !facts.ghostGrads)
    throw new Error(`useGhostGrads applies to architectures with ghost grads (${namesWith((f) => f.ghostGrads)}), not '${arch.name}'`);
  const window = o.deadFeatureWindow ?? 1000;
  const samplingWindow = o.featureSamplingWindow ?? 2000;
  const deadThreshold = o.deadFeatureThreshold ?? 1e-8;
  for (const [k, v] of Object.entries({ deadFeatureWindow: window, featureSamplingWindow: samplingWindow }))
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`${k} must be a positive integer, got ${v}`);
  const thresholdLr = o.topkThresholdLr ?? 0.01;
  const trainCfg = trainingConfig(arch, sae.cfg, o.lossOptions);
  return { sae, arch, facts, transcoder, normalize, normalizeDecoder, ghost, window, samplingWindow, deadThreshold, thresholdLr, trainCfg };
}

/** The value and warm-up of a training coefficient from trainSae's options (`<name>Coefficient`, `<name>WarmUpSteps`). */
function coefficientSetting(o: TrainSaeOptions, name: 'l1' | 'l0'): [number, number] {
  return name === 'l0' ? [o.l0Coefficient ?? 1, o.l0WarmUpSteps ?? 0] : [o.l1Coefficient ?? 1, o.l1WarmUpSteps ?? 0];
}

/** The registered architectures whose training facts satisfy `has`, for errors. */
function namesWith(has: (facts: ReturnType<typeof trainingFacts>) => boolean): string {
  return listArchitectures()
    .filter((n) => has(trainingFacts(getArchitecture(n))))
    .join(', ');
}

/** The SAE `trainSae` creates from `cfg` and the store's widths and metadata. */
function createSae(o: TrainSaeOptions, seed: number): Sae {
  if (!o.cfg) throw new Error('trainSae: give an SAE (sae) or a config to create one (cfg: { architecture, d_sae, ... })');
  const meta = o.store.metadata;
  const transcoder = getArchitecture(o.cfg.architecture, 'Sae.create').transcoder;
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
