/**
 * `serve`: load a model once and serve the workbench and its JSON API (see app.ts) on
 * 127.0.0.1 unless another host is asked for.
 */
import type { FastifyInstance } from 'fastify';
import { HookedTransformer } from '../model/hooked.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAMES, loadModel } from '../model/pretrained.js';
import { createServer, LOOPBACK_HOSTS, type ServerOptions } from './app.js';
import { resolveSaeSource, type SaeSource } from './features.js';

export { createServer, serverLimits, LOOPBACK_HOSTS, type ServerOptions } from './app.js';
export { HttpError, errorBody, type ErrorBody } from './errors.js';
export { DEFAULT_WEB_ROOT } from './web.js';
export type { ServerLimits, ServerStats } from './schemas.js';
export { resolveSaeSource, attachSaes, readStoreExplanations, type SaeSource, type AttachedSae } from './features.js';

export interface ServeOptions extends Omit<ServerOptions, 'model' | 'modelName' | 'allowedHosts' | 'saes' | 'tunedLensDir'> {
  /**
   * A tuned lens directory for the Logit lens view's tuned lens; by default the model folder's
   * `tuned-lens/` when it has one (`TUNED_LENS_FOLDER`); false: none.
   */
  tunedLensDir?: string | false;
  /** SAEs and transcoders to attach: what `--sae` names (resolveSaeSource), or loaded ones. */
  saes?: readonly (string | SaeSource)[];
  /** A model spec for `loadModel` ('default', a directory, a hub id) or a loaded model. */
  model?: string | HookedTransformer;
  /** Its name for GET /api/model (default: the spec). */
  modelName?: string;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /**
   * Host names (as browsers send them in the Host header) the server answers to besides the
   * loopback names. Required when `host` is not loopback: with no list, a DNS-rebinding page
   * could use the server, so listening on other interfaces without one is refused.
   */
  allowedHosts?: readonly string[];
  /** Port (default 7860; 0 picks a free one). */
  port?: number;
  /** Where the URL and warnings are printed (default stdout / stderr); null prints nothing. */
  print?: { log(line: string): void; warn(line: string): void } | null;
}

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:7860/ */
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

/** True when `host` listens on this machine only. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.includes(host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The folder inside a model's directory where `serve` (and the static workbench) look for a tuned lens. */
export const TUNED_LENS_FOLDER = 'tuned-lens';

/** The tuned lens beside a model spec: its directory's `tuned-lens/` when that holds a config.json, else undefined. */
export function tunedLensBeside(spec: string): string | undefined {
  const dir = DEFAULT_MODEL_NAMES.includes(spec) && !existsSync(spec) ? DEFAULT_MODEL_DIR : existsSync(spec) ? spec : null;
  if (dir === null) return undefined;
  const lens = join(dir, TUNED_LENS_FOLDER);
  return existsSync(join(lens, 'config.json')) ? lens : undefined;
}

/** Loads the model (once), builds the server and listens; resolves when it is listening. */
export async function serve(options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 7860;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`port must be an integer in 0..65535, got ${port}`);
  const print = options.print === undefined ? { log: (l: string) => console.log(l), warn: (l: string) => console.error(l) } : options.print;
  const spec = options.model ?? 'default';
  const modelName = options.modelName ?? (typeof spec === 'string' ? spec : 'model');
  const loopback = isLoopbackHost(host);
  const allowedHosts = options.allowedHosts ?? [];
  if (!loopback && allowedHosts.length === 0)
    throw new Error(
      `listening on ${host} exposes the server beyond this machine, so it needs the host names clients will use (--allowed-hosts name1,name2): ` +
        'without that list a web page on any site could reach the server through DNS rebinding',
    );
  // The SAEs first: a bad --sae is refused before the (slower) model load.
  const saes: SaeSource[] = [];
  for (const s of options.saes ?? []) saes.push(typeof s === 'string' ? await resolveSaeSource(s) : s);
  const model = spec instanceof HookedTransformer ? spec : await loadModel(spec);
  const tunedLensDir =
    options.tunedLensDir === false ? undefined : (options.tunedLensDir ?? (typeof spec === 'string' ? tunedLensBeside(spec) : undefined));
  const { tunedLensDir: _, ...rest } = options;
  const app = createServer({ ...rest, model, modelName, allowedHosts, saes, ...(tunedLensDir !== undefined ? { tunedLensDir } : {}) });
  try {
    await app.listen({ host, port });
  } catch (e) {
    // Not listening (the port taken, the worker's transcoders refused): stop the worker too.
    await app.close().catch(() => {});
    throw e;
  }
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${actualPort}/`;
  if (print) {
    if (!loopback)
      print.warn(
        `glassbox: warning: listening on ${host}, not only this machine: anyone who can reach port ${actualPort} can use this server`,
      );
    print.log(`glassbox: serving ${modelName} (${model.cfg.family}, ${model.cfg.nLayers} layers) at ${url}`);
    if (tunedLensDir !== undefined) print.log(`glassbox: tuned lens from ${tunedLensDir} (the Logit lens view's tuned switch)`);
    for (const s of saes)
      print.log(
        `glassbox: attached ${s.source} (${s.sae.cfg.architecture}, ${s.sae.dSae} features at ${s.sae.cfg.hook_name}${s.store ? ', with its feature store' : ', no feature store'})`,
      );
  }
  return { app, url, host, port: actualPort, close: () => app.close() };
}
