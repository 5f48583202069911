/**
 * The HTTP server behind the workbench: a JSON API over one loaded model, and the built web app.
 *
 * API (every body is JSON, checked against a schema: types, ranges, no unknown fields; a prompt
 * is text or a list of token ids; every error is `{ statusCode, error, message }`):
 *
 * - `GET  /api/model`           config summary, hook names, whether there is a tokenizer, limits
 * - `GET  /api/stats`           resident memory, requests and jobs in flight, the worker's compiled sessions
 * - `POST /api/tokenize`        `{ prompt, prependBos? }` -> tokens and their strings
 * - `POST /api/forward`         `{ prompt, prependBos?, topK? }` -> top-k next tokens per position
 * - `POST /api/attention`       `{ prompt, prependBos?, layer, head? }` -> pattern [head][q][k]
 * - `POST /api/logit-lens`      `{ prompt, prependBos?, topK? }` -> top-k per [layer][pos]
 * - `POST /api/dla`             `{ prompt, prependBos?, answer, wrong?, pos? }` -> components, total
 * - `POST /api/heads`           `{ prompt?, prependBos?, seqLen?, batch?, seed? }` -> head scores
 * - `POST /api/patching`        `{ clean, corrupted, prependBos?, answer, wrong, pos?, kinds? }` -> 202 `{ jobId, ... }`
 * - `GET  /api/jobs/:id`        a job's status (and result when done)
 * - `GET  /api/jobs/:id/events` server-sent events: `progress` `{ done, total, partial? }`, then `result`, `error` or `cancelled`
 * - `DELETE /api/jobs/:id`      cancels a running job (its work stops after the forward pass it is in)
 * - `POST /api/steer`           `{ positive, negative, layer, prompt, scale?, ... }` -> steered and unsteered text
 * - `GET /api/saes`, `GET /api/features/:sae/:feature`, `POST /api/features/:sae/steer`, `POST /api/fires`:
 *   the dictionaries attached with `saes` (features.ts)
 * - `GET  /api/graphs`          the attribution graphs held (files from `serve --graph`, computed ones), and whether graphs can be computed
 * - `GET  /api/graphs/:id`      one graph, as its JSON file (metadata, nodes, links)
 * - `POST /api/graph`           `{ prompt, ... }` -> 202 a job computing a graph (needs transcoders; refused without)
 * - `POST /api/graph/intervene` `{ prompt, features }` -> top next tokens before and after (needs transcoders; refused without)
 * - `GET  /api/graph/features/:layer/:feature` a transcoder feature's page from the feature stores (graph-features.ts)
 *
 * The response shapes are documented on the functions in handlers.ts and patching.ts.
 *
 * Resources: every model computation runs in a worker thread that owns a copy of the model
 * (model-worker.ts, worker.ts), so this thread answers GET /api/model, job status, event streams,
 * cancellations and refusals at once while the model computes. The worker runs requests and job
 * passes one at a time, round robin; a job over `maxJobs`, or a request over `maxQueued` waiting,
 * is a 429 at once. Prompts run padded to a few bucket lengths, and a patching sweep runs as one
 * compiled session, so the compiled sessions are bounded in number whatever the requests, and
 * their memory by `sessionBudgetBytes` (see compute.ts). No request names a file: the only files
 * served are the web app's, from `webRoot`.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { HookedTransformer } from '../model/hooked.js';
import { HttpError, installErrorHandler } from './errors.js';
import { loadTunedLens } from '../analysis/tuned-lens.js';
import { attention, dla, forward, heads, logitLensGrid, modelInfo, steer, tokenize, type Ctx } from './handlers.js';
import { attachSaes, registerFeatureRoutes, type SaeSource } from './features.js';
import { JobManager } from './jobs.js';
import { GraphStore } from './graphs.js';
import { interveneGraph, startGraph } from './graph-jobs.js';
import { checkTracingPair } from '../circuits/replacement.js';
import { loadTracingTranscoders, readTranscoderShape } from '../circuits/load-transcoders.js';
import { registerGraphFeatureRoutes, TranscoderFeatureStores } from './graph-features.js';
import { ModelWorker } from './model-worker.js';
import { startPatching } from './patching.js';
import {
  bodySchemas,
  type AttentionBody,
  type DlaBody,
  type GraphBody,
  type GraphInterveneBody,
  type GraphList,
  type GraphParams,
  type GraphStart,
  type ForwardBody,
  type HeadsBody,
  type JobParams,
  type LogitLensBody,
  type PatchingBody,
  type PatchingStart,
  type ServerLimits,
  type ServerStats,
  type SteerBody,
  type TokenizeBody,
} from './schemas.js';
import { DEFAULT_WEB_ROOT, isApiPath, registerWeb } from './web.js';

export interface ServerOptions {
  /**
   * The model every request runs on (loaded once, by the caller). The server's worker thread
   * runs on a copy of its weights taken when the server is created.
   */
  model: HookedTransformer;
  /** Its name, as GET /api/model reports it (default 'model'). */
  modelName?: string;
  /** The built web app (default web/dist at the package root); null: serve no web app. */
  webRoot?: string | null;
  /**
   * Directories the server was started with for data. No endpoint reads files today; any that
   * will must take names inside these (and never a path from a request).
   */
  dataDirs?: readonly string[];
  /** Longest prompt in tokens (default the model's context, at most 4096). */
  maxTokens?: number;
  /** Most tokens a steering request may generate (default 128). */
  maxNewTokens?: number;
  /** Most patching jobs running at once (default 4). */
  maxJobs?: number;
  /** Most requests waiting for the model at once (default 32); more are refused with a 429. */
  maxQueued?: number;
  /**
   * Most memory the compiled sessions' ONNX Runtime arenas may keep together (default 512 MiB):
   * past it the least recently used are released (`ortConfig.maxArenaBytes` in the worker).
   */
  sessionBudgetBytes?: number;
  /** Most compiled sessions kept (default 64). */
  maxSessions?: number;
  /**
   * Estimated bytes of one forward pass of a patching sweep (default 64 MiB): it sets the rows of
   * each pass, so the time a pass holds the worker (and so how soon a cancellation takes effect)
   * and the memory of the sweep's session.
   */
  passBudgetBytes?: number;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /**
   * Host names the server answers to (the Host header), besides the loopback names (localhost,
   * 127.0.0.1, ::1), against DNS rebinding: a page on another site whose name resolves to this
   * machine sends its own name as Host. There is no 'any': every name must be listed.
   */
  allowedHosts?: readonly string[];
  /**
   * Attribution graph files (the JSON `glassbox graph` and circuit-tracer write) for the Graph
   * view, each checked in full when the server is built; served by GET /api/graphs/:id under its
   * slug (or file name).
   */
  graphFiles?: readonly string[];
  /**
   * A transcoder directory (`loadTracingTranscoders`: one SAELens-layout transcoder per layer, or
   * a CLT) for POST /api/graph and /api/graph/intervene; its cfg.json files are checked against
   * the model when the server is built (`readTranscoderShape`), its weights loaded by the model
   * worker before the server is ready.
   */
  transcodersDir?: string;
  /**
   * A tuned lens directory (`saveTunedLens` / the tuned-lens library's layout) for POST
   * /api/logit-lens's `lens: 'tuned'`; checked against the model (d_model, layers, tensor shapes)
   * when the server is built, then loaded by the model worker.
   */
  tunedLensDir?: string;
  /** Fastify's logger option (default off). */
  logger?: FastifyServerOptions['logger'];
  /** SAEs and transcoders to attach (features.ts: `resolveSaeSource` loads one from a directory). */
  saes?: readonly SaeSource[];
  /** Attach SAEs whose cfg.json model_name names another model (default false: refused). */
  allowModelMismatch?: boolean;
}

/** Host names that reach only this machine. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1', '[::1]'];

function hostnameOf(host: string | undefined): string | null {
  if (!host) return null;
  try {
    return new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}

function isLoopback(name: string | null): boolean {
  return name !== null && (LOOPBACK_HOSTS.includes(name) || name.endsWith('.localhost'));
}

/** The limits a server with these options enforces. */
export function serverLimits(
  model: Pick<HookedTransformer, 'cfg'>,
  options: Pick<ServerOptions, 'maxTokens' | 'maxNewTokens' | 'maxJobs' | 'maxQueued'>,
): ServerLimits {
  const { cfg } = model;
  const ctxLimit = cfg.positional === 'learned' ? cfg.nCtx : Infinity;
  const maxTokens = options.maxTokens ?? Math.min(cfg.nCtx, 4096);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`maxTokens must be a positive integer, got ${maxTokens}`);
  if (maxTokens > ctxLimit) throw new Error(`maxTokens ${maxTokens} exceeds the model's context of ${cfg.nCtx} tokens`);
  const maxNewTokens = options.maxNewTokens ?? 128;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  const maxJobs = options.maxJobs ?? 4;
  if (!Number.isInteger(maxJobs) || maxJobs < 1) throw new Error(`maxJobs must be a positive integer, got ${maxJobs}`);
  const maxQueued = options.maxQueued ?? 32;
  if (!Number.isInteger(maxQueued) || maxQueued < 1) throw new Error(`maxQueued must be a positive integer, got ${maxQueued}`);
  return {
    maxTokens,
    maxChars: Math.max(4096, 32 * maxTokens),
    maxTopK: 100,
    maxNewTokens,
    maxSteerPrompts: 64,
    maxHeadBatch: 32,
    maxJobs,
    maxQueued,
  };
}

/** Builds the server (not listening: call `listen`, or `inject` in tests). */
export function createServer(options: ServerOptions): FastifyInstance {
  const { model } = options;
  const limits = serverLimits(model, options);
  const bodyLimit = options.bodyLimit ?? 2 ** 20;
  const budget = (name: string, v: number | undefined, dflt: number) => {
    const b = v ?? dflt;
    if (!Number.isSafeInteger(b) || b < 1) throw new Error(`${name} must be a positive integer, got ${b}`);
    return b;
  };
  const attached = attachSaes(model, options.modelName ?? 'model', options.saes ?? [], {
    allowModelMismatch: options.allowModelMismatch ?? false,
  });
  // Graph files first: a bad one is refused before the model worker (a thread) is started.
  const graphs = new GraphStore(options.graphFiles ?? []);
  const hasTranscoders = options.transcodersDir !== undefined;
  let featureStores: TranscoderFeatureStores | null = null;
  if (options.transcodersDir !== undefined) {
    // Without feature stores the shapes suffice (cfg.json files): the worker loads the weights,
    // once, and a bad weight file fails the worker's start, which `ready` reports. Stores are
    // checked against the weights' digests, so with stores the HTTP thread reads the weights too.
    if (TranscoderFeatureStores.present(options.transcodersDir)) {
      const tc = loadTracingTranscoders(options.transcodersDir);
      checkTracingPair(model, tc);
      featureStores = TranscoderFeatureStores.open(options.transcodersDir, tc);
    } else checkTracingPair(model, readTranscoderShape(options.transcodersDir));
  }
  if (options.tunedLensDir !== undefined) loadTunedLens(options.tunedLensDir, model);
  const worker = new ModelWorker(
    model,
    {
      maxTokens: limits.maxTokens,
      ...(options.transcodersDir !== undefined ? { transcodersDir: options.transcodersDir } : {}),
      ...(options.tunedLensDir !== undefined ? { tunedLensDir: options.tunedLensDir } : {}),
      sessionBudgetBytes: budget('sessionBudgetBytes', options.sessionBudgetBytes, 512 * 2 ** 20),
      maxSessions: budget('maxSessions', options.maxSessions, 64),
      passBudgetBytes: budget('passBudgetBytes', options.passBudgetBytes, 64 * 2 ** 20),
    },
    limits.maxQueued,
    attached.map((a) => a.sae),
  );
  // The HTTP thread keeps the config, hook names and tokenizer; the weights are the worker's.
  const view = { cfg: model.cfg, hookNames: [...model.hookNames], tokenizer: model.tokenizer };
  const ctx: Ctx = { model: view, modelName: options.modelName ?? 'model', limits, worker, tunedLens: options.tunedLensDir !== undefined };
  const allowedHosts = [...LOOPBACK_HOSTS, ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())];
  const jobs = new JobManager({ maxRunning: limits.maxJobs });

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit,
    // Reject unknown fields and wrong types instead of Fastify's defaults (drop them, coerce).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allowUnionTypes: true } },
  });
  installErrorHandler(app, bodyLimit);
  // JSON only: a text/plain POST is what a cross-site form can send without a CORS preflight.
  app.removeContentTypeParser('text/plain');

  // Against DNS rebinding (a page on another site whose name resolves to 127.0.0.1) and
  // cross-site requests: the Host must be an allowed name, a browser's Origin this host or local.
  app.addHook('onRequest', async (req) => {
    const host = hostnameOf(req.headers.host);
    if (host === null || !(allowedHosts.includes(host) || isLoopback(host)))
      throw new HttpError(403, `host '${req.headers.host ?? ''}' is not allowed; this server answers to ${allowedHosts.join(', ')}`);
    const origin = req.headers.origin;
    if (origin !== undefined && isApiPath(req.url.split('?')[0]!)) {
      let ok = false;
      try {
        const o = new URL(origin);
        ok = o.host === req.headers.host || isLoopback(o.hostname.toLowerCase());
      } catch {
        ok = false;
      }
      if (!ok) throw new HttpError(403, `cross-origin requests from ${origin} are not allowed`);
    }
  });
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (isApiPath(req.url.split('?')[0]!)) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.addHook('preClose', async () => jobs.cancelAll());
  app.addHook('onClose', async () => worker.close());
  // Transcoder weights are read once, by the worker: the server is ready when they are loaded, and
  // a file the loader refuses fails `ready` (and `listen`) with the loader's message.
  if (hasTranscoders) app.addHook('onReady', async () => worker.ready);

  const s = bodySchemas(limits);
  app.get('/api/model', async () => modelInfo(ctx));
  /** GET /api/stats -> `{ rss, queued, jobs, compiles, runs, released, sessions, arenaBytes }` (the worker's after its latest step). */
  app.get('/api/stats', async (): Promise<ServerStats> => ({
    rss: process.memoryUsage.rss(),
    queued: worker.queued,
    jobs: jobs.running,
    ...worker.stats,
  }));
  app.post<{ Body: TokenizeBody }>('/api/tokenize', { schema: { body: s.tokenize } }, async (req) => tokenize(ctx, req.body));
  app.post<{ Body: ForwardBody }>('/api/forward', { schema: { body: s.forward } }, async (req) => forward(ctx, req.body));
  app.post<{ Body: AttentionBody }>('/api/attention', { schema: { body: s.attention } }, async (req) => attention(ctx, req.body));
  app.post<{ Body: LogitLensBody }>('/api/logit-lens', { schema: { body: s.logitLens } }, async (req) => logitLensGrid(ctx, req.body));
  app.post<{ Body: DlaBody }>('/api/dla', { schema: { body: s.dla } }, async (req) => dla(ctx, req.body));
  app.post<{ Body: HeadsBody }>('/api/heads', { schema: { body: s.heads } }, async (req) => heads(ctx, req.body));
  app.post<{ Body: SteerBody }>('/api/steer', { schema: { body: s.steer } }, async (req) => steer(ctx, req.body));

  /**
   * POST /api/patching -> 202 `{ jobId, status: 'running', total, events: '/api/jobs/{id}/events' }`;
   * a bad problem (shapes, tokens, the metric equal on both prompts) is a 400 at once.
   */
  app.post<{ Body: PatchingBody }>('/api/patching', { schema: { body: s.patching } }, async (req, reply) => {
    const job = await startPatching(ctx, jobs, req.body);
    const start: PatchingStart = { jobId: job.id, status: job.status, total: job.total, events: `/api/jobs/${job.id}/events` };
    return reply.code(202).send(start);
  });

  const params = s.jobParams;
  /** GET /api/jobs/:id -> `{ id, kind, status, done, total, createdAt, result? (when done), error? }`. */
  app.get<{ Params: JobParams }>('/api/jobs/:id', { schema: { params } }, async (req) => jobs.get(req.params.id).summary());
  /** DELETE /api/jobs/:id -> the cancelled job's summary; 409 if it had already finished. */
  app.delete<{ Params: JobParams }>('/api/jobs/:id', { schema: { params } }, async (req) => jobs.cancel(req.params.id).summary());
  /**
   * GET /api/jobs/:id/events: `text/event-stream`. First the current `progress` `{ done, total }`,
   * then one `progress` per chunk, and one final event: `result` (the job's result), `error`
   * (`{ statusCode, error, message }`) or `cancelled`; then the stream ends. Closing the stream
   * does not cancel the job (DELETE does).
   */
  app.get<{ Params: JobParams }>('/api/jobs/:id/events', { schema: { params } }, async (req, reply) => {
    const job = jobs.get(req.params.id);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store, no-transform',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
    });
    const write = (e: { event: string; data: unknown }) => res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    write(job.progressEvent());
    const final = job.finalEvent();
    if (final) {
      write(final);
      res.end();
      return;
    }
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    ping.unref();
    const stop = () => {
      clearInterval(ping);
      unsubscribe();
    };
    const unsubscribe = job.subscribe((e) => {
      write(e);
      if (e.event !== 'progress') {
        stop();
        res.end();
      }
    });
    res.on('close', stop);
  });

  registerFeatureRoutes(app, ctx, attached);
  /** GET /api/graphs -> `{ graphs: [{ id, prompt, promptTokens, nodes, links, source }], canCompute, featureStore }`. */
  app.get('/api/graphs', async (): Promise<GraphList> => ({
    graphs: graphs.list(),
    canCompute: hasTranscoders,
    featureStore: featureStores !== null,
  }));
  registerGraphFeatureRoutes(app, ctx, featureStores, { params: s.graphFeatureParams });
  /** GET /api/graphs/:id -> the graph file `{ metadata, nodes, links }`; 404 naming the graphs held. */
  app.get<{ Params: GraphParams }>('/api/graphs/:id', { schema: { params: s.graphParams } }, async (req) => graphs.get(req.params.id));
  /** POST /api/graph -> 202 `{ jobId, status, total, events }`; refused (400) without transcoders. */
  app.post<{ Body: GraphBody }>('/api/graph', { schema: { body: s.graph } }, async (req, reply) => {
    const job = await startGraph(ctx, jobs, graphs, hasTranscoders, req.body);
    const start: GraphStart = { jobId: job.id, status: job.status, total: job.total, events: `/api/jobs/${job.id}/events` };
    return reply.code(202).send(start);
  });
  /** POST /api/graph/intervene -> `{ tokens, strTokens, before, after }`; refused (400) without transcoders. */
  app.post<{ Body: GraphInterveneBody }>('/api/graph/intervene', { schema: { body: s.graphIntervene } }, async (req) =>
    interveneGraph(ctx, hasTranscoders, req.body),
  );

  registerWeb(app, options.webRoot === undefined ? DEFAULT_WEB_ROOT : options.webRoot);
  return app;
}
