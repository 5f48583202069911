/**
 * The HTTP thread's side of the model worker (worker.ts): starts the thread with a copy of the
 * model, sends it computations and jobs, and routes its answers back to promises and job
 * callbacks. The HTTP thread never runs the model, so it answers (GET /api/model, job status,
 * event streams, cancellations, refusals) while the worker computes.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { HookedTransformer } from '../model/hooked.js';
import { HttpError } from './errors.js';
import { packModel, type ToMain, type ToWorker, type WorkerSettings, type WorkerStats } from './worker-protocol.js';
import type { ErrorBody } from './schemas.js';
import type { Sae } from '../sae/sae.js';
import { packSaes } from './feature-compute.js';

interface Pending {
  resolve(value: unknown): void;
  reject(e: Error): void;
  /** A job's steps. */
  onStep?(value: unknown): void;
  job: boolean;
}

/** The worker's entry: worker.js next to this module, or worker.ts when running from source under tsx. */
function startWorker(init: unknown, transfer: ArrayBuffer[]): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url);
  if (!fromSource) return new Worker(entry, { workerData: init, transferList: transfer });
  // Under tsx the worker thread does not inherit the loader, so it registers it before importing the entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData: init, transferList: transfer });
}

function httpError(e: ErrorBody): HttpError {
  return new HttpError(e.statusCode, e.message);
}

export class ModelWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<string, Pending>();
  /** Requests (not jobs) sent and not yet answered. */
  private calls = 0;
  /** Why the worker stopped, once it has. */
  private stopped: Error | null = null;
  private closing = false;
  /** Resolves when the worker has built its model (or fails to). */
  readonly ready: Promise<void>;
  /** The worker's sessions after its latest step. */
  stats: WorkerStats = { compiles: 0, runs: 0, released: 0, sessions: 0, arenaBytes: 0 };

  constructor(
    model: HookedTransformer,
    settings: WorkerSettings,
    /** Most requests waiting for the worker at once; more are refused with a 429. */
    private readonly maxQueued: number,
    /** The attached dictionaries, sent to the worker with the model. */
    saes: readonly Sae[] = [],
  ) {
    const { packed, transfer } = packModel(model.cfg, model.params);
    const sent = packSaes(saes);
    this.worker = startWorker({ model: packed, settings, saes: sent.packed }, [...transfer, ...sent.transfer]);
    this.worker.unref();
    let ready!: () => void;
    let failed!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      ready = res;
      failed = rej;
    });
    // Nobody may wait on `ready`; a failure reaches the callers through `stop`.
    this.ready.catch(() => {});
    this.worker.on('message', (m: ToMain) => {
      switch (m.type) {
        case 'ready':
          ready();
          break;
        case 'failed':
          failed(new Error(m.message));
          break;
        case 'result':
          this.settle(m.id)?.resolve(m.value);
          break;
        case 'error':
          this.settle(m.id)?.reject(httpError(m.error));
          break;
        case 'step':
          this.pending.get(m.id)?.onStep?.(m.value);
          break;
        case 'stats':
          this.stats = m.stats;
          break;
      }
    });
    this.worker.on('error', (e) => {
      failed(e);
      this.stop(e);
    });
    this.worker.on('exit', (code) => {
      const e = new Error(`the model worker exited (code ${code})`);
      failed(e);
      this.stop(e);
    });
  }

  private settle(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (!p.job) this.calls--;
    if (this.pending.size === 0) this.worker.unref();
    return p;
  }

  private stop(e: Error): void {
    if (this.stopped) return;
    this.stopped = this.closing ? new Error('the server is closing') : e;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new HttpError(this.closing ? 503 : 500, `the model worker stopped: ${this.stopped.message}`));
    }
    this.calls = 0;
  }

  private send(m: ToWorker, p: Pending): void {
    if (this.stopped) throw new HttpError(503, `the model worker has stopped (${this.stopped.message}); restart the server`);
    if (this.pending.size === 0) this.worker.ref();
    this.pending.set(m.id, p);
    if (!p.job) this.calls++;
    this.worker.postMessage(m);
  }

  /**
   * Runs computation `op` (compute.ts) in the worker. More than `maxQueued` requests waiting is a
   * 429 at once; a computation's error comes back as the HttpError it maps to.
   */
  call<T>(op: string, args: unknown): Promise<T> {
    if (this.calls >= this.maxQueued)
      return Promise.reject(
        new HttpError(429, `the model is busy: ${this.calls} requests are waiting for it, the most this server queues; try again shortly`),
      );
    return new Promise<T>((resolve, reject) => {
      try {
        this.send({ type: 'call', id: randomUUID(), op, args }, { resolve: resolve as (v: unknown) => void, reject, job: false });
      } catch (e) {
        reject(e as Error);
      }
    });
  }

  /**
   * Starts job `op` in the worker: `started` resolves with the value of its first step (or
   * rejects with the error that stopped it before), `onStep` sees every later one, `finished`
   * resolves with its result. `cancel` stops it after the step it is in: the worker drops it from
   * its queue, and `finished` rejects.
   */
  job<S, T>(op: string, args: unknown, onStep: (value: unknown) => void): { started: Promise<S>; finished: Promise<T>; cancel(): void } {
    const id = randomUUID();
    let first = true;
    let started!: (v: S) => void;
    let startFailed!: (e: Error) => void;
    const startedP = new Promise<S>((res, rej) => {
      started = res;
      startFailed = rej;
    });
    const finished = new Promise<T>((resolve, reject) => {
      const step = (v: unknown) => {
        if (first) {
          first = false;
          started(v as S);
        } else onStep(v);
      };
      const fail = (e: Error) => {
        if (first) startFailed(e);
        reject(e);
      };
      try {
        this.send({ type: 'job', id, op, args }, { resolve: resolve as (v: unknown) => void, reject: fail, onStep: step, job: true });
      } catch (e) {
        fail(e as Error);
      }
    });
    // Whoever awaits `started` sees a failure first; `finished` is awaited only after a start.
    finished.catch(() => {});
    return {
      started: startedP,
      finished,
      cancel: () => {
        const p = this.settle(id);
        if (!p) return;
        p.reject(new HttpError(409, 'the job was cancelled'));
        if (!this.stopped) this.worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
      },
    };
  }

  /** Requests waiting for the worker or running in it. */
  get queued(): number {
    return this.calls;
  }

  /** Stops the worker (and with it every computation in flight). */
  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}
