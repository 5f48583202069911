/**
 * Long-running jobs (activation patching sweeps). A job's work runs in the model worker, one
 * forward pass per step (model-worker.ts); this thread keeps the job's state, so its status, its
 * event stream and its cancellation are answered at once whatever the worker is doing. A slot is
 * reserved before any work starts, so a job over the limit is refused at once. Listeners (the
 * SSE streams) see `progress` events `{ done, total, partial? }` and one final event: `result` (the job's
 * value), `error` (`{ statusCode, error, message }`) or `cancelled`.
 */
import { asUserError, describeError, HttpError } from './errors.js';
import type { ErrorBody, JobProgress, JobStatus, JobSummary } from './schemas.js';

export type { JobStatus } from './schemas.js';

export type JobEvent =
  | { event: 'progress'; data: JobProgress }
  | { event: 'result'; data: unknown }
  | { event: 'error'; data: ErrorBody }
  | { event: 'cancelled'; data: JobProgress };

/** The work of a started job: its result to come, and how to stop it. */
export interface JobRun {
  finished: Promise<unknown>;
  cancel(): void;
}

/** A reserved place among the running jobs; `release` gives it back if no job starts in it. */
export interface JobSlot {
  release(): void;
}

export class Job {
  // The Web Crypto global (Node and browsers): the static workbench's worker runs jobs too.
  readonly id = globalThis.crypto.randomUUID();
  readonly createdAt = Date.now();
  status: JobStatus = 'running';
  done = 0;
  result: unknown = undefined;
  /** The part of the result finished so far (a job that reports one), kept when it is cancelled. */
  partial: unknown = undefined;
  error: ErrorBody | null = null;
  finishedAt: number | null = null;
  private readonly listeners = new Set<(e: JobEvent) => void>();
  /** Stops the work (set when it starts). */
  stopWork: () => void = () => {};

  constructor(
    readonly kind: string,
    readonly total: number,
  ) {}

  /** Records the patched runs done (and the result so far, when given) and tells the listeners. */
  progress(done: number, partial?: unknown): void {
    if (this.finished || done === this.done) return;
    this.done = done;
    if (partial !== undefined) this.partial = partial;
    this.emit(this.progressEvent());
  }

  /** `{ done, total }`, and `partial` while the job has one and no result. */
  private progressData(): JobProgress {
    return {
      done: this.done,
      total: this.total,
      ...(this.partial !== undefined && this.status !== 'done' ? { partial: this.partial } : {}),
    };
  }

  get finished(): boolean {
    return this.status !== 'running';
  }

  /** The event that ended the job (null while it runs). */
  finalEvent(): JobEvent | null {
    switch (this.status) {
      case 'done':
        return { event: 'result', data: this.result };
      case 'error':
        return { event: 'error', data: this.error! };
      case 'cancelled':
        return { event: 'cancelled', data: this.progressData() };
      default:
        return null;
    }
  }

  progressEvent(): JobEvent {
    return { event: 'progress', data: this.progressData() };
  }

  /** Calls `fn` with every later event; returns the unsubscribe function. */
  subscribe(fn: (e: JobEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(e: JobEvent): void {
    for (const fn of [...this.listeners]) fn(e);
    if (e.event !== 'progress') this.listeners.clear();
  }

  finish(status: Exclude<JobStatus, 'running'>): void {
    if (this.finished) return;
    this.status = status;
    this.finishedAt = Date.now();
    if (status === 'cancelled') this.stopWork();
    this.emit(this.finalEvent()!);
  }

  /** The job as GET /api/jobs/:id returns it. */
  summary(): JobSummary {
    return {
      id: this.id,
      kind: this.kind,
      status: this.status,
      done: this.done,
      total: this.total,
      createdAt: new Date(this.createdAt).toISOString(),
      ...(this.status === 'done' ? { result: this.result } : this.partial !== undefined ? { partial: this.partial } : {}),
      ...(this.error ? { error: this.error } : {}),
    };
  }
}

export interface JobManagerOptions {
  /** Most jobs running at once (default 4); starting another is a 429. */
  maxRunning?: number;
  /** Finished jobs kept for GET (default 100, the oldest dropped first). */
  keepFinished?: number;
  /** How long a finished job is kept (default 30 minutes). */
  ttlMs?: number;
}

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  private readonly maxRunning: number;
  private readonly keepFinished: number;
  private readonly ttlMs: number;
  /** Slots reserved by jobs that are preparing (their clean and corrupted runs). */
  private reserved = 0;

  constructor(options: JobManagerOptions = {}) {
    this.maxRunning = options.maxRunning ?? 4;
    this.keepFinished = options.keepFinished ?? 100;
    this.ttlMs = options.ttlMs ?? 30 * 60_000;
  }

  /** Jobs running or preparing. */
  get running(): number {
    let n = this.reserved;
    for (const j of this.jobs.values()) if (!j.finished) n++;
    return n;
  }

  /**
   * Reserves a place for a job about to start: a 429 at once when `maxRunning` jobs are running
   * or preparing. The slot is taken by `start` or given back with `release`.
   */
  reserve(): JobSlot {
    this.prune();
    const running = this.running;
    if (running >= this.maxRunning)
      throw new HttpError(429, `${running} jobs are running, the most this server runs at once; wait for one to finish or cancel one`);
    this.reserved++;
    let held = true;
    return {
      release: () => {
        if (held) this.reserved--;
        held = false;
      },
    };
  }

  /**
   * A job in `slot` whose work has started (`begin` starts it, given the job for its progress);
   * `format` turns the work's value into the job's result.
   */
  start(slot: JobSlot, kind: string, total: number, begin: (job: Job) => JobRun, format: (value: unknown) => unknown = (v) => v): Job {
    const job = new Job(kind, total);
    const run = begin(job);
    slot.release();
    this.jobs.set(job.id, job);
    job.stopWork = () => run.cancel();
    run.finished.then(
      (value) => {
        if (job.finished) return;
        try {
          job.result = format(value);
        } catch (e) {
          job.error = describeError(asUserError(e), 0);
          job.finish('error');
          return;
        }
        job.done = job.total;
        job.finish('done');
      },
      (e: unknown) => {
        if (job.finished) return;
        job.error = describeError(asUserError(e), 0);
        job.finish('error');
      },
    );
    return job;
  }

  get(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new HttpError(404, `no job '${id}' (finished jobs are kept for ${Math.round(this.ttlMs / 60_000)} minutes)`);
    return job;
  }

  /** Cancels a running job: its work stops after the pass it is in. A finished job is a 409. */
  cancel(id: string): Job {
    const job = this.get(id);
    if (job.finished) throw new HttpError(409, `job '${id}' has already finished (${job.status})`);
    job.finish('cancelled');
    return job;
  }

  /** Cancels every running job (the server is closing). */
  cancelAll(): void {
    for (const job of this.jobs.values()) if (!job.finished) job.finish('cancelled');
  }

  private prune(): void {
    const now = Date.now();
    const finished = [...this.jobs.values()].filter((j) => j.finished).sort((a, b) => a.finishedAt! - b.finishedAt!);
    finished.forEach((j, i) => {
      if (now - j.finishedAt! > this.ttlMs || i < finished.length - this.keepFinished) this.jobs.delete(j.id);
    });
  }
}
