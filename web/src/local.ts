/**
 * The static workbench's engine: when the page is served as static files (`npm run
 * build:static`) and no `glassbox serve` answers /api, the JSON API is answered in the page by a
 * Web Worker (src/server/browser-worker.ts) running the model on onnxruntime-web. api.ts sends
 * requests here instead of over HTTP once `startLocalEngine` has run.
 */
import type { FromWorker, ToWorker } from '../../src/server/browser-protocol';
import type { ErrorBody } from '../../src/server/schemas';

export interface LocalEngineInfo {
  runtime: string;
  threads: number;
  threadsNote: string | null;
  loadMs: number;
}

export interface LocalEngine {
  info: LocalEngineInfo;
  /** Answers one API request: the result's JSON, or the error body `glassbox serve` would send. */
  request(method: string, path: string, body?: unknown): Promise<{ ok: true; body: unknown } | { ok: false; error: ErrorBody }>;
}

let engine: LocalEngine | null = null;

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

/** Starts the worker, loads the model shipped beside the page (model/), and routes api.ts to it. */
export async function startLocalEngine(): Promise<LocalEngine> {
  const worker = new Worker(new URL('../../src/server/browser-worker.ts', import.meta.url), { type: 'module' });
  const pending = new Map<number, (m: Extract<FromWorker, { type: 'response' }>) => void>();
  let nextId = 1;
  const info = await new Promise<LocalEngineInfo>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.type === 'ready') resolve({ runtime: m.runtime, threads: m.threads, threadsNote: m.threadsNote, loadMs: m.loadMs });
      else if (m.type === 'init-error') reject(new Error(`the in-page engine failed to start: ${m.message}`));
      else pending.get(m.id)?.(m);
    };
    worker.onerror = (e) => reject(new Error(`the in-page engine's worker failed: ${e.message}`));
    const base = new URL('.', document.baseURI).href;
    const init: ToWorker = { type: 'init', wasmBase: `${base}ort/`, modelBase: `${base}model/`, modelName: 'default (in this page)' };
    worker.postMessage(init);
  });
  engine = {
    info,
    request(method, path, body) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, (m) => {
          pending.delete(id);
          resolve(m.ok ? { ok: true, body: m.body } : { ok: false, error: m.error });
        });
        const msg: ToWorker = { type: 'request', id, method, path, ...(body === undefined ? {} : { body }) };
        worker.postMessage(msg);
      });
    },
  };
  return engine;
}
