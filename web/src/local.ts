/**
 * The static workbench's engine: when the page is served as static files (`npm run
 * build:static`) and no `glassbox serve` answers /api, the JSON API is answered in the page by a
 * Web Worker (src/server/browser-worker.ts) running the model on onnxruntime-web. api.ts sends
 * requests here instead of over HTTP once `startLocalEngine` has run.
 */
import type { FromWorker, LocalJobEvent, ModelLoaded, ToWorker } from '../../src/server/browser-protocol';
import type { ErrorBody } from '../../src/server/schemas';

export interface LocalEngineInfo {
  runtime: string;
  threads: number;
  threadsNote: string | null;
  loadMs: number;
}

export type LocalAnswer<T = unknown> = { ok: true; body: T } | { ok: false; error: ErrorBody };

export interface LocalEngine {
  info: LocalEngineInfo;
  /** Answers one API request: the result's JSON, or the error body `glassbox serve` would send. */
  request(method: string, path: string, body?: unknown): Promise<LocalAnswer>;
  /**
   * Replaces the model with one from a folder's files (`folderFiles`); the error names the file
   * and field, and then the model before stays.
   */
  loadFolder(folder: string, files: { name: string; blob: Blob }[]): Promise<LocalAnswer<ModelLoaded>>;
}

/**
 * A model folder's files from what a folder input (`webkitdirectory`) or a drop gave, as
 * `{ path, file }` with `path` relative to what was picked or dropped ('gpt2/config.json', or
 * 'config.json' for loose files): the folder's name and its top-level files by name (files in
 * subfolders are not part of a Hugging Face model folder's layout and are left out).
 */
export function folderFiles(entries: { path: string; file: Blob }[]): { folder: string; files: { name: string; blob: Blob }[] } {
  const parts = entries.map((e) => e.path.replace(/^\/+/, '').split('/'));
  const first = parts[0]?.[0];
  const inOneFolder = first !== undefined && parts.every((p) => p.length >= 2 && p[0] === first);
  const folder = inOneFolder ? first : 'dropped files';
  const files: { name: string; blob: Blob }[] = [];
  entries.forEach((e, i) => {
    const p = inOneFolder ? parts[i]!.slice(1) : parts[i]!;
    if (p.length === 1) files.push({ name: p[0]!, blob: e.file });
  });
  return { folder, files };
}

let engine: LocalEngine | null = null;

/**
 * Jobs' events from the worker, kept until the page follows the job (its first progress may come
 * before `followLocalJob`): the latest progress and the final event.
 */
const jobState = new Map<string, { progress?: LocalJobEvent; final?: LocalJobEvent; listener?: (e: LocalJobEvent) => void }>();

function jobEvent(jobId: string, event: LocalJobEvent): void {
  const st = jobState.get(jobId) ?? {};
  jobState.set(jobId, st);
  if (event.type === 'progress') st.progress = event;
  else st.final = event;
  st.listener?.(event);
  if (event.type !== 'progress' && st.listener) jobState.delete(jobId);
}

/** Follows a job of the page's engine (`events` = 'local-job:<id>'); returns a function that stops listening. */
export function followLocalJob(events: string, onEvent: (e: LocalJobEvent) => void): () => void {
  const jobId = events.slice('local-job:'.length);
  const st = jobState.get(jobId) ?? {};
  jobState.set(jobId, st);
  st.listener = onEvent;
  if (st.progress) onEvent(st.progress);
  if (st.final) {
    onEvent(st.final);
    jobState.delete(jobId);
  }
  return () => {
    st.listener = undefined;
    jobState.delete(jobId);
  };
}

export function localEngine(): LocalEngine | null {
  return engine;
}

/** Whether `glassbox serve` answers /api/model at this origin (a static host answers 404 or HTML). */
export async function serverAnswers(): Promise<boolean> {
  try {
    const res = await fetch('/api/model', { headers: { accept: 'application/json' } });
    return res.ok && (res.headers.get('content-type') ?? '').includes('application/json');
  } catch {
    return false;
  }
}

/**
 * Which model the page loads: the `?model=` parameter of the page's URL, as a Hugging Face repo
 * id (`org/name` or `org/name@revision`, fetched from the Hub by the browser) or a URL prefix of
 * a model folder (`/path/`, `./path/`, `https://...`); without it, the default model shipped
 * beside the page (model/).
 */
export function modelSource(search: string, base: string): { url: string; name: string } {
  const spec = new URLSearchParams(search).get('model');
  if (spec === null || spec === '') return { url: `${base}model/`, name: 'default (in this page)' };
  if (/^(https?:\/\/|\/|\.\/)/.test(spec)) {
    const url = new URL(spec.endsWith('/') ? spec : `${spec}/`, base).href;
    return { url, name: spec };
  }
  const hub = /^([\w.-]+)\/([\w.-]+)(?:@([\w./-]+))?$/.exec(spec);
  if (!hub)
    throw new Error(
      `?model=${spec}: not a Hugging Face repo id (org/name or org/name@revision) nor a URL of a model folder (/path/, ./path/, https://...)`,
    );
  const [, org, name, revision] = hub;
  return { url: `https://huggingface.co/${org}/${name}/resolve/${encodeURIComponent(revision ?? 'main')}/`, name: spec };
}

/** Starts the worker, loads the model (`modelSource`), and routes api.ts to it. */
export async function startLocalEngine(): Promise<LocalEngine> {
  const base = new URL('.', document.baseURI).href;
  const source = modelSource(location.search, base);
  const worker = new Worker(new URL('../../src/server/browser-worker.ts', import.meta.url), { type: 'module' });
  const pending = new Map<number, (m: Extract<FromWorker, { type: 'response' }>) => void>();
  let nextId = 1;
  const info = await new Promise<LocalEngineInfo>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.type === 'ready') resolve({ runtime: m.runtime, threads: m.threads, threadsNote: m.threadsNote, loadMs: m.loadMs });
      else if (m.type === 'init-error') reject(new Error(`the in-page engine failed to start: ${m.message}`));
      else if (m.type === 'job-event') jobEvent(m.jobId, m.event);
      else pending.get(m.id)?.(m);
    };
    worker.onerror = (e) => reject(new Error(`the in-page engine's worker failed: ${e.message}`));
    const init: ToWorker = { type: 'init', wasmBase: `${base}ort/`, modelBase: source.url, modelName: source.name };
    worker.postMessage(init);
  });
  const send = <T>(msg: Extract<ToWorker, { id: number }>): Promise<LocalAnswer<T>> =>
    new Promise((resolve) => {
      pending.set(msg.id, (m) => {
        pending.delete(msg.id);
        resolve(m.ok ? { ok: true, body: m.body as T } : { ok: false, error: m.error });
      });
      worker.postMessage(msg);
    });
  engine = {
    info,
    request: (method, path, body) => send({ type: 'request', id: nextId++, method, path, ...(body === undefined ? {} : { body }) }),
    loadFolder: (folder, files) => send<ModelLoaded>({ type: 'load-files', id: nextId++, folder, files }),
  };
  return engine;
}
