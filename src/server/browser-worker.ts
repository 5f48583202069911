/**
 * The static workbench's engine: a Web Worker that loads the model in the page (onnxruntime-web,
 * the model folder over fetch + HTTP Range) and answers the workbench's JSON API with the
 * server's own handlers (handlers.ts) and computations (compute.ts), so the page shows the same
 * numbers as `glassbox serve` and never freezes while a model runs.
 *
 * Answered: GET /api/model, POST /api/forward, /api/attention, /api/logit-lens, /api/dla,
 * /api/heads, /api/steer, GET /api/saes and /api/graphs (empty: no dictionaries or graph files in
 * a page), and patching as a job (POST /api/patching, DELETE /api/jobs/:id):
 * its sweep runs one forward pass per step between messages, so progress is posted and a
 * cancel is heard; its events go to the page as `job-event` messages (the page's stand-in for
 * the server's event stream, `events: 'local-job:<id>'`).
 * Request bodies come from the web app itself; the handlers check them against the model
 * (token ids, layers, heads, positions, lengths) as on the server.
 */
import { initWasmRuntime, type WasmRuntime } from '../tensor/backends/ort-wasm.js';
import { setGraphRuntime } from '../tensor/backends/runtime.js';
import { setBackend } from '../tensor/backend.js';
import { modelFromBlobs, modelFromUrl } from '../model/from-files.js';
import type { HookedTransformer } from '../model/hooked.js';
import { fetchTunedLens, type TunedLens } from '../analysis/tuned-lens-core.js';
import { shapeBuckets } from '../analysis/buckets.js';
import { memoryConfig } from '../analysis/memory.js';
import { MODEL_CALLS, patchingSweep, type Computer, type PatchingArgs } from './compute.js';
import { startPatching } from './patching.js';
import { JobManager, type JobEvent } from './jobs.js';
import { attention, dla, forward, heads, logitLensGrid, modelInfo, steer, type Ctx } from './handlers.js';
import { errorBody, HttpError } from './errors.js';
import type { FromWorker, LocalJobEvent, ModelLoaded, ToWorker } from './browser-protocol.js';
import type { ModelWorker } from './model-worker.js';
import type { GraphList, PatchingBody, SaeList, ServerLimits } from './schemas.js';

type Route = (ctx: Ctx, body: never) => unknown;
const ROUTES: Record<string, Route> = {
  'GET /api/model': (ctx) => modelInfo(ctx),
  'POST /api/forward': forward,
  'POST /api/attention': attention,
  'POST /api/logit-lens': logitLensGrid,
  'POST /api/dla': dla,
  'POST /api/heads': heads,
  'POST /api/steer': steer,
  'POST /api/patching': (c, body: PatchingBody) => startLocalPatching(c, body),
  // Dictionaries and graphs need files the page does not have: the static build lists none, so
  // the app shows its other views (its nav hides the dictionary views) rather than an error.
  'GET /api/saes': (): SaeList => ({ saes: [] }),
  'GET /api/graphs': (): GraphList => ({ graphs: [], canCompute: false, featureStore: false }),
};

let computer: Computer | null = null;
/** The page's jobs, with the server's own job manager (one sweep at a time, as `glassbox serve` by default). */
const jobs = new JobManager({ maxRunning: 1 });

function postJobEvent(jobId: string, event: LocalJobEvent): void {
  scope.postMessage({ type: 'job-event', jobId, event });
}

/** A job's event as the server sends it over server-sent events, as a worker message. */
function localEvent(e: JobEvent): LocalJobEvent {
  switch (e.event) {
    case 'progress':
      return { type: 'progress', ...e.data };
    case 'result':
      return { type: 'result', result: e.data };
    case 'error':
      return { type: 'error', error: e.data };
    case 'cancelled':
      return { type: 'cancelled', ...(e.data.partial !== undefined ? { partial: e.data.partial } : {}) };
  }
}

/** A patching sweep as a job: the server's own checks, job and result (patching.ts, jobs.ts), run step by step here. */
async function startLocalPatching(c: Ctx, body: PatchingBody): Promise<unknown> {
  const job = await startPatching(c, jobs, body);
  // The sweep's steps are macrotasks (localJob), so no event was sent before this.
  job.subscribe((e) => postJobEvent(job.id, localEvent(e)));
  return { jobId: job.id, status: job.status, total: job.total, events: `local-job:${job.id}` };
}

/** DELETE /api/jobs/:id: cancels the job (its sweep stops after the step it is in); its summary keeps the finished part. */
function cancelLocalJob(path: string): unknown {
  return jobs.cancel(decodeURIComponent(path.slice('/api/jobs/'.length))).summary();
}

class JobCancelled extends Error {}

/** The handlers' worker.job: the sweep's generator, one step per macrotask, so messages (cancel) get in between. */
function localJob(
  args: PatchingArgs,
  onStep: (v: unknown) => void,
): { started: Promise<unknown>; finished: Promise<unknown>; cancel(): void } {
  const steps = patchingSweep(computer!, args);
  let cancelled = false;
  let first = true;
  let onStarted!: (v: unknown) => void;
  let onStartFailed!: (e: unknown) => void;
  const started = new Promise<unknown>((res, rej) => {
    onStarted = res;
    onStartFailed = rej;
  });
  const finished = new Promise<unknown>((resolve, reject) => {
    const fail = (e: unknown) => {
      if (first) onStartFailed(e);
      reject(e);
    };
    const step = () => {
      if (cancelled) return fail(new JobCancelled('cancelled'));
      try {
        const r = steps.next();
        if (r.done) return resolve(r.value);
        if (first) {
          first = false;
          onStarted(r.value);
        } else onStep(r.value);
        setTimeout(step, 0);
      } catch (e) {
        fail(e);
      }
    };
    setTimeout(step, 0);
  });
  // A job that fails before it starts is answered by startPatching; its `finished` is not awaited then.
  finished.catch(() => {});
  return { started, finished, cancel: () => (cancelled = true) };
}

/** The limits `glassbox serve` applies by default (src/server/app.ts serverLimits). */
function limitsFor(nCtx: number, positional: string): ServerLimits {
  const maxTokens = Math.min(positional === 'learned' ? nCtx : Infinity, nCtx, 4096);
  return {
    maxTokens,
    maxChars: Math.max(4096, 32 * maxTokens),
    maxTopK: 100,
    maxNewTokens: 128,
    maxSteerPrompts: 64,
    maxHeadBatch: 32,
    maxJobs: 1,
    maxQueued: 32,
  };
}

const scope = globalThis as unknown as { postMessage(m: FromWorker): void; onmessage: ((e: { data: ToWorker }) => void) | null };
let ctx: Ctx | null = null;

let runtime: WasmRuntime | null = null;

/** Makes `model` (and its tuned lens, if any) the one every request runs on. */
function install(model: HookedTransformer, modelName: string, tunedLens: TunedLens | null): void {
  const limits = limitsFor(model.cfg.nCtx, model.cfg.positional);
  const passBudgetBytes = 64 * 2 ** 20;
  memoryConfig.memoryBudgetBytes = passBudgetBytes;
  computer = { model, buckets: shapeBuckets({ maxLength: limits.maxTokens }), passBudgetBytes, ...(tunedLens ? { tunedLens } : {}) };
  const c = computer;
  // The handlers' "model worker": here the computations run in this worker, one at a time.
  const worker = {
    call: async (name: string, args: unknown) => {
      const fn = MODEL_CALLS[name];
      if (!fn) throw new HttpError(500, `internal: no computation '${name}'`);
      return fn(c, args as never);
    },
    job: (_op: string, args: unknown, onStep: (v: unknown) => void) => localJob(args as PatchingArgs, onStep),
  } as unknown as ModelWorker;
  ctx = {
    model: { cfg: model.cfg, hookNames: [...model.hookNames], tokenizer: model.tokenizer },
    modelName,
    limits,
    worker,
    tunedLens: tunedLens !== null,
  };
}

async function init(m: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  const t0 = performance.now();
  const rt = await initWasmRuntime({ wasmBase: m.wasmBase, ...(m.numThreads !== undefined ? { numThreads: m.numThreads } : {}) });
  runtime = rt;
  setGraphRuntime(rt);
  setBackend('ort');
  const model = await modelFromUrl(m.modelBase);
  // The model folder's tuned lens, if it has one (as `glassbox serve` finds it beside the model).
  install(model, m.modelName, await fetchTunedLens(`${m.modelBase}tuned-lens/`, model));
  scope.postMessage({
    type: 'ready',
    runtime: rt.name,
    threads: rt.threads,
    threadsNote: rt.threadsNote,
    loadMs: performance.now() - t0,
  });
}

/**
 * A model from a folder's files (dropped or picked on the page): the files modelFromBlobs needs,
 * by their names in the folder. The model before stays until this one has loaded; then its
 * jobs are cancelled and its compiled sessions (which hold its weights) released.
 */
async function loadFiles(m: Extract<ToWorker, { type: 'load-files' }>): Promise<ModelLoaded> {
  if (!runtime) throw new HttpError(503, 'the in-page engine is not started');
  const t0 = performance.now();
  const files = new Map<string, Blob>();
  for (const f of m.files) {
    if (files.has(f.name)) throw new HttpError(400, `${m.folder}/${f.name}: given twice`);
    files.set(f.name, f.blob);
  }
  const model = await modelFromBlobs(files, m.folder);
  jobs.cancelAll();
  runtime.clearSessions();
  // A dropped folder's tuned-lens/ is not read (the page passes the model's own files only).
  install(model, `${m.folder} (dropped folder)`, null);
  const notes = model.tokenizer ? [] : [`${m.folder}/tokenizer.json: missing, so prompts are token ids (e.g. 1, 2, 3)`];
  return { name: ctx!.modelName, loadMs: performance.now() - t0, notes };
}

async function answer(m: Extract<ToWorker, { type: 'request' | 'load-files' }>): Promise<void> {
  try {
    if (!ctx) throw new HttpError(503, 'the model is still loading');
    const route =
      m.type === 'load-files'
        ? null
        : m.method === 'DELETE' && m.path.startsWith('/api/jobs/')
          ? () => cancelLocalJob(m.path)
          : ROUTES[`${m.method} ${m.path}`];
    if (m.type === 'request' && !route) throw new HttpError(404, `no route ${m.method} ${m.path}`);
    const body = m.type === 'load-files' ? await loadFiles(m) : await route!(ctx, (m.body ?? {}) as never);
    scope.postMessage({ type: 'response', id: m.id, ok: true, body });
  } catch (e) {
    const status = e instanceof HttpError ? e.statusCode : e instanceof TypeError || e instanceof RangeError ? 500 : 400;
    scope.postMessage({
      type: 'response',
      id: m.id,
      ok: false,
      error: errorBody(status, e instanceof Error ? e.message.split('\n')[0]! : String(e)),
    });
  }
}

// Messages are handled one at a time, in order: a request waits for the model to load.
let chain: Promise<void> = Promise.resolve();
scope.onmessage = (e) => {
  const m = e.data;
  chain = chain.then(() =>
    m.type === 'init'
      ? init(m).catch((err: unknown) =>
          scope.postMessage({ type: 'init-error', message: err instanceof Error ? err.message : String(err) }),
        )
      : answer(m),
  );
};
