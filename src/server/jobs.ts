/**
 * Long-running jobs (activation patching sweeps). A job's work is an async function that runs in
 * chunks (a model call is synchronous, so a chunk holds the event loop) and calls `checkpoint`
 * between them: that reports progress, yields to the event loop (`setImmediate`) so other
 * requests are answered, and stops the job if it was cancelled. Listeners (the SSE streams) see
 * `progress` events `{ done, total }` and one final event: `result` (the job's value), `error`
 * (`{ statusCode, error, message }`) or `cancelled`.
 */
import { randomUUID } from 'node:crypto';
import { asUserError, describeError, HttpError } from './errors.js';
import type { ErrorBody, JobProgress, JobStatus, JobSummary } from './schemas.js';

export type { JobStatus } from './schemas.js';

export type JobEvent =
  | { event: 'progress'; data: JobProgress }
  | { event: 'result'; data: unknown }
  | { event: 'error'; data: ErrorBody }
  | { event: 'cancelled'; data: JobProgress };

/** What a job's work sees. */
export interface JobControl {
  /** Records progress, yields to the event loop, and throws `Cancelled` if the job was cancelled. */
  checkpoint(done: number): Promise<void>;
}

class Cancelled extends Error {}

export class Job {
  readonly id = randomUUID();
  readonly createdAt = Date.now();
  status: JobStatus = 'running';
  done = 0;
  result: unknown = undefined;
  error: ErrorBody | null = null;
  finishedAt: number | null = null;
  private readonly listeners = new Set<(e: JobEvent) => void>();

  constructor(
    readonly kind: string,
    readonly total: number,
  ) {}

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
        return { event: 'cancelled', data: { done: this.done, total: this.total } };
      default:
        return null;
    }
  }

  progressEvent(): JobEvent {
    return { event: 'progress', data: { done: this.done, total: this.total } };
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
      ...(this.status === 'done' ? { result: this.result } : {}),
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

  constructor(options: JobManagerOptions = {}) {
    this.maxRunning = options.maxRunning ?? 4;
    this.keepFinished = options.keepFinished ?? 100;
    this.ttlMs = options.ttlMs ?? 30 * 60_000;
  }

  /**
   * Starts `work` on the next turn of the event loop (so the request that started it is answered
   * first) and returns its job.
   */
  start(kind: string, total: number, work: (control: JobControl) => Promise<unknown>): Job {
    this.prune();
    const running = [...this.jobs.values()].filter((j) => !j.finished).length;
    if (running >= this.maxRunning)
      throw new HttpError(429, `${running} jobs are running, the most this server runs at once; wait for one to finish or cancel one`);
    const job = new Job(kind, total);
    this.jobs.set(job.id, job);
    const control: JobControl = {
      checkpoint: async (done) => {
        if (job.finished) throw new Cancelled();
        if (done !== job.done) {
          job.done = done;
          job.emit(job.progressEvent());
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (job.finished) throw new Cancelled();
      },
    };
    setImmediate(() => {
      if (job.finished) return;
      work(control).then(
        (result) => {
          if (job.finished) return;
          job.result = result;
          job.done = job.total;
          job.finish('done');
        },
        (e: unknown) => {
          if (e instanceof Cancelled || job.finished) return;
          job.error = describeError(asUserError(e), 0);
          job.finish('error');
        },
      );
    });
    return job;
  }

  get(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new HttpError(404, `no job '${id}' (finished jobs are kept for ${Math.round(this.ttlMs / 60_000)} minutes)`);
    return job;
  }

  /** Cancels a running job: it stops at its next checkpoint. A finished job is a 409. */
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
