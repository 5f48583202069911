/**
 * Learning-rate schedules: functions from the step (0-based, the step about to be taken) to the
 * learning rate. The training loop feeds the value into the compiled step as a tensor.
 */
export type Schedule = (step: number) => number;

/** The same rate at every step. */
export function constant(lr: number): Schedule {
  checkRate('constant', lr);
  return () => lr;
}

/** Linear warm-up from 0 to `lr` over `warmupSteps` (step s uses lr * (s + 1) / warmupSteps), then constant. */
export function linearWarmup(lr: number, warmupSteps: number): Schedule {
  checkRate('linearWarmup', lr);
  return (s) => (s < warmupSteps ? (lr * (s + 1)) / warmupSteps : lr);
}

export interface DecayOptions {
  /** Peak rate, reached at the end of warm-up. */
  lr: number;
  totalSteps: number;
  warmupSteps?: number;
  /** Rate at the last step (default 0). */
  finalLr?: number;
}

/** Linear warm-up, then cosine decay from `lr` to `finalLr` at `totalSteps`. */
export function cosineDecay(o: DecayOptions): Schedule {
  return decay('cosineDecay', o, (t) => 0.5 * (1 + Math.cos(Math.PI * t)));
}

/** Linear warm-up, then linear decay from `lr` to `finalLr` at `totalSteps`. */
export function linearDecay(o: DecayOptions): Schedule {
  return decay('linearDecay', o, (t) => 1 - t);
}

function decay(name: string, o: DecayOptions, shape: (t: number) => number): Schedule {
  checkRate(name, o.lr);
  const warm = o.warmupSteps ?? 0;
  const final = o.finalLr ?? 0;
  if (!(o.totalSteps > warm)) throw new Error(`${name}: totalSteps (${o.totalSteps}) must exceed warmupSteps (${warm})`);
  return (s) => {
    if (s < warm) return (o.lr * (s + 1)) / warm;
    const t = Math.min(1, (s - warm) / Math.max(1, o.totalSteps - warm - 1));
    return final + (o.lr - final) * shape(t);
  };
}

function checkRate(name: string, lr: number): void {
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`${name}: learning rate must be a finite number >= 0, got ${lr}`);
}
