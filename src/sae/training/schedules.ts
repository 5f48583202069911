/**
 * SAELens's learning-rate and coefficient schedules, as functions of the 0-based step about to be
 * taken.
 */
import { adam, type Optimizer } from '../../train/optim.js';

/** Options of `saeLrSchedule` (SAELens's lr, lr_scheduler_name, lr_warm_up_steps, lr_decay_steps, lr_end). */
export interface SaeLrScheduleOptions {
  lr: number;
  totalSteps: number;
  /** 'constant' (SAELens's default) or 'cosineannealing' (from lr down to lrEnd over the main phase). */
  scheduler?: 'constant' | 'cosineannealing';
  /** Linear warm-up: step s < warmUpSteps uses lr * (s + 1) / warmUpSteps (torch's LinearLR from 1/W to 1). */
  warmUpSteps?: number;
  /** Linear decay to lrEnd over the last decaySteps steps (torch's LinearLR from 1 to lrEnd / lr). */
  decaySteps?: number;
  /** Final rate of the decay / cosine phase (default lr / 10, as SAELens). */
  lrEnd?: number;
}

/** The learning rate at each step, as SAELens's get_lr_scheduler: warm-up, then constant or cosine, then decay. */
export function saeLrSchedule(o: SaeLrScheduleOptions): (step: number) => number {
  const { lr, totalSteps } = o;
  if (!(Number.isFinite(lr) && lr >= 0)) throw new Error(`lr must be a finite number >= 0, got ${lr}`);
  const warm = o.warmUpSteps ?? 0;
  const decay = o.decaySteps ?? 0;
  const lrEnd = o.lrEnd ?? lr / 10;
  const scheduler = o.scheduler ?? 'constant';
  if (scheduler !== 'constant' && scheduler !== 'cosineannealing')
    throw new Error(`lr scheduler must be 'constant' or 'cosineannealing', got '${String(scheduler)}'`);
  for (const [k, v] of Object.entries({ warmUpSteps: warm, decaySteps: decay }))
    if (!(Number.isInteger(v) && v >= 0)) throw new Error(`${k} must be an integer >= 0, got ${v}`);
  if (warm + decay > totalSteps)
    throw new Error(`lr warm-up (${warm}) and decay (${decay}) steps together exceed the ${totalSteps} training steps`);
  const mainSteps = totalSteps - warm - decay;
  return (s) => {
    if (s < warm) return (lr * (s + 1)) / warm;
    if (s >= totalSteps - decay && decay > 0) {
      const i = s - (totalSteps - decay);
      return lr * (1 + ((lrEnd / lr - 1) * Math.min(i, decay)) / decay);
    }
    if (scheduler === 'constant' || mainSteps <= 0) return lr;
    const i = s - warm;
    return lrEnd + ((lr - lrEnd) * (1 + Math.cos((Math.PI * i) / mainSteps))) / 2;
  };
}

/**
 * SAELens's coefficient warm-up (CoefficientScheduler): value * min(1, step / warmUpSteps), so
 * the first step uses 0 when warming up.
 */
export function coefficientSchedule(value: number, warmUpSteps = 0): (step: number) => number {
  if (!(Number.isFinite(value) && value >= 0)) throw new Error(`a sparsity coefficient must be a finite number >= 0, got ${value}`);
  if (!(Number.isInteger(warmUpSteps) && warmUpSteps >= 0))
    throw new Error(`coefficient warm-up steps must be an integer >= 0, got ${warmUpSteps}`);
  return (s) => (warmUpSteps > 0 ? value * Math.min(1, s / warmUpSteps) : value);
}

/** The schedule and Adam settings that `trainSae` and `trainClt` share (SAELens's names in camelCase). */
export interface SaeOptimizerOptions {
  /** 'constant' (default) or 'cosineannealing'; see `SaeLrScheduleOptions`. */
  lrScheduler?: 'constant' | 'cosineannealing';
  lrWarmUpSteps?: number;
  lrDecaySteps?: number;
  lrEnd?: number;
  /** Adam's betas (default 0.9 and 0.999). */
  adamBeta1?: number;
  adamBeta2?: number;
}

/** The settings of `SaeOptimizerOptions` with their defaults filled in (what a run records of them), but lrEnd. */
export interface SaeOptimizerSettings {
  lrScheduler: 'constant' | 'cosineannealing';
  lrWarmUpSteps: number;
  lrDecaySteps: number;
  adamBeta1: number;
  adamBeta2: number;
}

/**
 * A run's learning rate at each step (`saeLrSchedule` from base rate `lr` over `totalSteps`), its
 * Adam optimizer, and the settings resolved (the defaults filled in).
 */
export function saeOptimizer(
  o: SaeOptimizerOptions,
  lr: number,
  totalSteps: number,
): { lrAt: (step: number) => number; optimizer: Optimizer; settings: SaeOptimizerSettings } {
  const settings: SaeOptimizerSettings = {
    lrScheduler: o.lrScheduler ?? 'constant',
    lrWarmUpSteps: o.lrWarmUpSteps ?? 0,
    lrDecaySteps: o.lrDecaySteps ?? 0,
    adamBeta1: o.adamBeta1 ?? 0.9,
    adamBeta2: o.adamBeta2 ?? 0.999,
  };
  const lrAt = saeLrSchedule({
    lr,
    totalSteps,
    scheduler: settings.lrScheduler,
    warmUpSteps: settings.lrWarmUpSteps,
    decaySteps: settings.lrDecaySteps,
    lrEnd: o.lrEnd,
  });
  return { lrAt, optimizer: adam({ beta1: settings.adamBeta1, beta2: settings.adamBeta2 }), settings };
}
