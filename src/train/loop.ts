/**
 * The training loop. One compiled graph per step does the forward pass, the backward pass,
 * gradient clipping and the optimizer update; the loop around it feeds batches and the learning
 * rate, shows progress, logs metrics to JSONL, evaluates, and checkpoints atomically so a run can
 * stop at any moment and `resume` to the same final weights as an uninterrupted run.
 */
import { Tensor, jit, scalar, valueAndGrad } from '../tensor/index.js';
import { clipByGlobalNorm, type OptState, type Optimizer } from './optim.js';
import type { Schedule } from './schedule.js';
import type { DataSource } from './data.js';
import { openTrainingRun } from './checkpoint.js';
import { RUN_CONTROL_OPTIONS, runFingerprint, treeDigest } from './fingerprint.js';
import { makeProgress, metricsLogger, stepRate, type MetricsRecord } from './progress.js';

/** A loss: a float scalar, or the scalar with extra scalar metrics to log. */
export type LossFn<P, B> = (params: P, batch: B) => Tensor | { loss: Tensor; metrics?: Record<string, Tensor> };

export interface TrainOptions<P, B> {
  /** Initial parameters (a pytree of float tensors). On resume they give the structure and shapes. */
  params: P;
  loss: LossFn<P, B>;
  optimizer: Optimizer;
  data: DataSource<B>;
  /** Total optimizer steps. */
  steps: number;
  /** Learning rate: a number or a schedule of the step. */
  lr: number | Schedule;
  /** Clip gradients to this global L2 norm. */
  clipGradNorm?: number;
  /** Run directory: `metrics.jsonl` and `checkpoints/`. Without it nothing is written. */
  outDir?: string;
  /** Checkpoint every N steps (and at the end). Default: steps / 10, rounded up. */
  checkpointEvery?: number;
  /** Checkpoints kept (default 2). */
  keepCheckpoints?: number;
  /**
   * Continue from the newest checkpoint in `outDir` (starting fresh if there is none). Without it,
   * a run directory that already holds checkpoints is an error, so nothing is overwritten.
   */
  resume?: boolean;
  /**
   * Describes the run (model config, hyper-parameters, and what `loss` and `data` are); saved, and
   * checked on resume. The loop adds its own settings to the checkpoint (see `TRAIN_NOT_FINGERPRINTED`).
   */
  config?: unknown;
  /** Append a metrics record every N steps (default 1). */
  logEvery?: number;
  /** Evaluate every N steps (and at the end); the results are logged with `"kind": "eval"`. */
  evalEvery?: number;
  evaluate?: (params: P, step: number) => Record<string, number>;
  /** Checked after each evaluation: returning true ends the run early (with a final checkpoint). */
  stopWhen?: (evalRecord: Record<string, number>, step: number) => boolean;
  /** Tokens (or examples) per batch, for the throughput shown and logged. */
  itemsPerBatch?: number;
  /** What the items are, for the progress display: 'tokens' shows tokens/s (default 'items'). */
  itemName?: string;
  /** Progress: a bar on a terminal ('auto', default), plain lines (true when not a TTY), or none (false). */
  progress?: boolean | 'auto';
  /** Called with every logged record. */
  onLog?: (record: Record<string, number | string>) => void;
  /** Extra state saved in checkpoints and handed back on resume (e.g. a generator's state). */
  extraState?: { get(): unknown; set(state: unknown): void };
  /** When aborted, the loop checkpoints (with outDir) and returns with `interrupted: true`. */
  signal?: AbortSignal;
  /**
   * Warnings (on resume: a damaged checkpoint skipped for an older one, temporary files of killed
   * writes removed). Default: printed to stderr.
   */
  onWarning?: (message: string) => void;
}

/**
 * The fields of `TrainOptions` outside the loop's part of a run's fingerprint: every other field
 * (the initial parameters, by digest; the learning rate; gradient clipping; and any field added
 * later) is recorded in each checkpoint, and a resume with a different value is refused by name.
 */
export const TRAIN_NOT_FINGERPRINTED = [
  // May change on resume: how long to train, how often to log, evaluate or checkpoint, where, what is shown.
  // (A learning-rate schedule that depends on `steps` is still compared, by its values over the steps done.)
  'steps',
  ...RUN_CONTROL_OPTIONS,
  'evalEvery',
  'evaluate',
  'stopWhen',
  'itemsPerBatch',
  'itemName',
  'extraState',
  // Recorded in their own fields of the checkpoint.
  'config',
  'optimizer',
  // Functions the caller's `config` describes (the data source's position is saved).
  'loss',
  'data',
] as const satisfies readonly (keyof TrainOptions<unknown, unknown>)[];

/** The loop's own settings that shape the weights, as a checkpoint records them (`CheckpointState.run`). */
function loopFingerprint<P, B>(o: TrainOptions<P, B>): Record<string, unknown> {
  const decayed = o.optimizer.decayed?.(o.params);
  return {
    ...runFingerprint(o, TRAIN_NOT_FINGERPRINTED, {
      params: (p: P) => `sha256:${treeDigest(p)}`,
      lr: (lr: number | Schedule) => (typeof lr === 'number' ? lr : 'a schedule (compared by its values over the steps done)'),
    }),
    ...(decayed ? { weightDecayOn: decayed } : {}),
  };
}

export interface TrainResult<P> {
  params: P;
  optState: OptState;
  /** Completed steps. */
  step: number;
  /** The step the run started from (0, or the resumed checkpoint's). */
  startStep: number;
  lastLoss: number;
  interrupted: boolean;
  /** Seconds of training, including the time before a resume (from the checkpoint). */
  elapsed: number;
  /** Whether `stopWhen` ended the run before `steps`. */
  stoppedEarly: boolean;
  /** Every record of the run (a resumed run's include those logged before the checkpoint), as in metrics.jsonl. */
  history: Record<string, number | string>[];
}

/** Trains `params` to minimise `loss` over `data`. */
export async function train<P, B>(o: TrainOptions<P, B>): Promise<TrainResult<P>> {
  if (!(Number.isInteger(o.steps) && o.steps > 0)) throw new Error(`train: steps must be a positive integer, got ${o.steps}`);
  const schedule: Schedule = typeof o.lr === 'number' ? () => o.lr as number : o.lr;
  const logEvery = o.logEvery ?? 1;
  const ckptEvery = o.checkpointEvery ?? Math.ceil(o.steps / 10);
  const config = o.config === undefined ? null : JSON.parse(JSON.stringify(o.config));

  const runSettings = o.outDir ? loopFingerprint(o) : {};
  const run = openTrainingRun(
    {
      outDir: o.outDir,
      resume: o.resume,
      config,
      optimizer: o.optimizer,
      run: runSettings,
      schedules: { lr: schedule },
      onWarning: o.onWarning,
      data: o.data,
      keep: o.keepCheckpoints ?? 2,
    },
    o.params,
    o.optimizer.init(o.params),
  );
  const { ckptRoot, metricsFile } = run;
  /** The run's records: on resume, those already in metrics.jsonl up to the checkpoint. */
  const history: MetricsRecord[] = run.history;
  let { params, optState } = run.start;
  const { step: startStep, elapsed: elapsedBefore } = run.start;
  if (o.extraState && run.start.extra !== undefined) o.extraState.set(run.start.extra);

  const lossParts = (p: P, b: B): [Tensor, Record<string, Tensor>] => {
    const r = o.loss(p, b);
    return r instanceof Tensor ? [r, {}] : [r.loss, r.metrics ?? {}];
  };
  const step = jit((p: P, s: OptState, batch: B, lr: Tensor) => {
    const [[loss, metrics], grads] = valueAndGrad(lossParts, { hasAux: true })(p, batch) as unknown as [
      [Tensor, Record<string, Tensor>],
      P,
    ];
    let g = grads;
    let gradNorm: Tensor | null = null;
    if (o.clipGradNorm !== undefined) ({ grads: g, norm: gradNorm } = clipByGlobalNorm(grads, o.clipGradNorm));
    const next = o.optimizer.update(p, g, s, lr);
    return { params: next.params, optState: next.state, loss, metrics, ...(gradNorm ? { gradNorm } : {}) };
  });

  const log = metricsLogger(history, metricsFile, o.onLog);
  const progress = await makeProgress(o.progress ?? 'auto', startStep, o.steps, 'train');
  const t0 = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - t0) / 1000;
  const checkpoint = (done: number): void =>
    run.checkpoint({ step: done, params, optState, elapsed: elapsed(), ...(o.extraState ? { extra: o.extraState.get() } : {}) });

  let lastLoss = NaN;
  let done = startStep;
  let interrupted = false;
  let stoppedEarly = false;
  const nextRate = stepRate();
  try {
    while (done < o.steps) {
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      const lr = schedule(done);
      const out = step(params, optState, o.data.next(), scalar(lr)) as {
        params: P;
        optState: OptState;
        loss: Tensor;
        metrics: Record<string, Tensor>;
        gradNorm?: Tensor;
      };
      lastLoss = out.loss.item() as number;
      if (!Number.isFinite(lastLoss)) {
        throw new Error(
          `train: the loss became ${lastLoss} at step ${done + 1}; lower the learning rate or clip gradients${ckptRoot ? ` (the last checkpoint in ${ckptRoot} is intact)` : ''}`,
        );
      }
      params = out.params;
      optState = out.optState;
      done++;
      const rate = nextRate();
      if (done % logEvery === 0 || done === o.steps) {
        const record: Record<string, number | string> = { kind: 'train', step: done, loss: lastLoss, lr };
        for (const [k, v] of Object.entries(out.metrics)) record[k] = v.item() as number;
        if (out.gradNorm) record.gradNorm = out.gradNorm.item() as number;
        record.stepsPerSec = rate;
        if (o.itemsPerBatch) record.itemsPerSec = rate * o.itemsPerBatch;
        record.elapsed = elapsed();
        log(record);
      }
      if (o.evaluate && ((o.evalEvery && done % o.evalEvery === 0) || done === o.steps)) {
        const ev = o.evaluate(params, done);
        log({ kind: 'eval', step: done, ...ev });
        if (o.stopWhen?.(ev, done) && done < o.steps) stoppedEarly = true;
      }
      progress.update(done, {
        loss: lastLoss,
        rate: o.itemsPerBatch ? rate * o.itemsPerBatch : rate,
        unit: o.itemsPerBatch ? `${o.itemName ?? 'items'}/s` : 'steps/s',
      });
      if (ckptRoot && (done % ckptEvery === 0 || done === o.steps || stoppedEarly)) checkpoint(done);
      if (stoppedEarly) break;
      // Lets timers (the progress bar), signals and I/O callbacks run between steps.
      await new Promise((r) => setImmediate(r));
    }
    if (interrupted && ckptRoot && done > startStep) checkpoint(done);
  } finally {
    progress.stop();
  }
  return { params, optState, step: done, startStep, lastLoss, interrupted, stoppedEarly, elapsed: elapsed(), history };
}
