/**
 * Messages between the static workbench's page (web/src/local.ts) and its Web Worker
 * (browser-worker.ts), which answers the JSON API in the page, with the server's own handlers,
 * when no `glassbox serve` is there.
 */
import type { ErrorBody } from './schemas.js';

export type ToWorker =
  | { type: 'init'; wasmBase: string; modelBase: string; modelName: string; numThreads?: number }
  | { type: 'request'; id: number; method: string; path: string; body?: unknown }
  /**
   * Replace the model with one from a folder's files (dropped on the page or picked), by name;
   * answered by a `response` with a `ModelLoaded` body, or an error naming the file and field.
   * On an error the model loaded before stays.
   */
  | { type: 'load-files'; id: number; folder: string; files: { name: string; blob: Blob }[] };

/** The body of the answer to `load-files`. */
export interface ModelLoaded {
  name: string;
  loadMs: number;
  /** What the page should say about the folder, e.g. that it has no tokenizer.json. */
  notes: string[];
}

export type FromWorker =
  | { type: 'ready'; runtime: string; threads: number; threadsNote: string | null; loadMs: number }
  | { type: 'init-error'; message: string }
  | { type: 'response'; id: number; ok: true; body: unknown }
  | { type: 'response'; id: number; ok: false; error: ErrorBody }
  | { type: 'job-event'; jobId: string; event: LocalJobEvent };

/** A job's events, as `glassbox serve` sends them over server-sent events. */
export type LocalJobEvent =
  | { type: 'progress'; done: number; total: number; partial?: unknown }
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: ErrorBody }
  | { type: 'cancelled'; partial?: unknown };
