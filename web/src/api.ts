/**
 * The workbench's only link to the model: the JSON API of `glassbox serve` (src/server), over
 * HTTP. Every error the server sends is `{ statusCode, error, message }`; `ApiError` carries it.
 *
 * The API's types are the server's own (src/server/schemas.ts): the request bodies derived from
 * the JSON schemas the server validates with, the responses those its handlers are declared to
 * return. Imported as types only: nothing of the server's reaches the bundle.
 */
import type {
  AttentionBody,
  AttentionResult,
  DlaBody,
  DlaResult,
  ErrorBody,
  ForwardBody,
  ForwardResult,
  GraphBody,
  GraphFile,
  GraphInterveneBody,
  GraphList,
  GraphStart,
  HeadsBody,
  HeadsResult,
  InterveneResult,
  JobProgress,
  JobSummary,
  LogitLensBody,
  LogitLensResult,
  ModelInfo,
  PatchingBody,
  PatchingStart,
  SteerBody,
  SteerResult,
} from '../../src/server/schemas';
import type { FeaturePageResult, FeatureSteerBody, FeatureSteerResult, FiresBody, FiresResult, SaeList } from '../../src/server/schemas';
import { followLocalJob, localEngine } from './local';

export type {
  AttentionResult,
  DlaResult,
  ForwardResult,
  Generation,
  GraphFile,
  GraphList,
  GraphSummary,
  Grid,
  HeadsResult,
  InterveneResult,
  LogitLensResult,
  ModelInfo,
  PatchingKind,
  PatchingResult,
  PatchingStart,
  Prompt,
  ServerLimits,
  SteerResult,
  TokenProb,
  TokenRef,
} from '../../src/server/schemas';
export type {
  ContextGroup,
  FeatureContext,
  FeaturePageResult,
  FeatureSteerResult,
  FiresResult,
  LogitToken,
  SaeInfo,
  SaeList,
} from '../../src/server/schemas';

/** An error answered by the API (or a network failure, with statusCode 0). */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Any thrown value as an ApiError. */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Error) return new ApiError(0, 'Network error', e.message);
  return new ApiError(0, 'Error', String(e));
}

async function request<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  // The static workbench: the API is answered in the page (local.ts).
  const local = localEngine();
  if (local) {
    const r = await local.request(method, url, body);
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    if (!r.ok) throw new ApiError(r.error.statusCode, r.error.error, r.error.message);
    return r.body as T;
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Network error', `could not reach the server (${e instanceof Error ? e.message : String(e)})`);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const b = (json ?? {}) as Partial<ErrorBody>;
    throw new ApiError(b.statusCode ?? res.status, b.error ?? res.statusText, b.message ?? (text.slice(0, 300) || res.statusText));
  }
  if (json === null) throw new ApiError(res.status, 'Bad response', `the server answered ${url} with something that is not JSON`);
  return json as T;
}

export const api = {
  model: (signal?: AbortSignal) => request<ModelInfo>('GET', '/api/model', undefined, signal),
  forward: (body: ForwardBody, signal?: AbortSignal) => request<ForwardResult>('POST', '/api/forward', body, signal),
  attention: (body: AttentionBody, signal?: AbortSignal) => request<AttentionResult>('POST', '/api/attention', body, signal),
  logitLens: (body: LogitLensBody, signal?: AbortSignal) => request<LogitLensResult>('POST', '/api/logit-lens', body, signal),
  dla: (body: DlaBody, signal?: AbortSignal) => request<DlaResult>('POST', '/api/dla', body, signal),
  heads: (body: HeadsBody, signal?: AbortSignal) => request<HeadsResult>('POST', '/api/heads', body, signal),
  patching: (body: PatchingBody, signal?: AbortSignal) => request<PatchingStart>('POST', '/api/patching', body, signal),
  cancelJob: (id: string) => request<JobSummary>('DELETE', `/api/jobs/${encodeURIComponent(id)}`),
  steer: (body: SteerBody, signal?: AbortSignal) => request<SteerResult>('POST', '/api/steer', body, signal),
  saes: (signal?: AbortSignal) => request<SaeList>('GET', '/api/saes', undefined, signal),
  featurePage: (sae: string, feature: number, signal?: AbortSignal) =>
    request<FeaturePageResult>('GET', `/api/features/${encodeURIComponent(sae)}/${feature}`, undefined, signal),
  featureSteer: (sae: string, body: FeatureSteerBody, signal?: AbortSignal) =>
    request<FeatureSteerResult>('POST', `/api/features/${encodeURIComponent(sae)}/steer`, body, signal),
  fires: (body: FiresBody, signal?: AbortSignal) => request<FiresResult>('POST', '/api/fires', body, signal),
  graphs: (signal?: AbortSignal) => request<GraphList>('GET', '/api/graphs', undefined, signal),
  graph: (id: string, signal?: AbortSignal) => request<GraphFile>('GET', `/api/graphs/${encodeURIComponent(id)}`, undefined, signal),
  graphStart: (body: GraphBody, signal?: AbortSignal) => request<GraphStart>('POST', '/api/graph', body, signal),
  graphIntervene: (body: GraphInterveneBody, signal?: AbortSignal) =>
    request<InterveneResult>('POST', '/api/graph/intervene', body, signal),
  /** A transcoder feature's page from its layer's feature store (only asked for when GET /api/graphs says there are stores). */
  graphFeature: (layer: number, index: number, signal?: AbortSignal) =>
    request<FeaturePageResult>('GET', `/api/graph/features/${layer}/${index}`, undefined, signal),
};

export type JobEvent =
  | { type: 'progress'; done: number; total: number; partial?: unknown }
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: ApiError }
  | { type: 'cancelled'; partial?: unknown };

/**
 * Follows a job's server-sent events (`progress`, then one of `result`, `error`, `cancelled`).
 * Returns a function that stops listening (it does not cancel the job).
 */
export function followJob(eventsUrl: string, onEvent: (e: JobEvent) => void): () => void {
  // A job of the static workbench's in-page engine (local.ts): the same events, as worker messages.
  if (eventsUrl.startsWith('local-job:'))
    return followLocalJob(eventsUrl, (e) =>
      onEvent(e.type === 'error' ? { type: 'error', error: new ApiError(e.error.statusCode, e.error.error, e.error.message) } : e),
    );
  const source = new EventSource(eventsUrl);
  let finished = false;
  const finish = (e: JobEvent) => {
    if (finished) return;
    finished = true;
    source.close();
    onEvent(e);
  };
  const parse = (e: Event): unknown => {
    try {
      return JSON.parse((e as MessageEvent<string>).data);
    } catch {
      return null;
    }
  };
  source.addEventListener('progress', (e) => {
    const d = parse(e) as Partial<JobProgress> | null;
    if (!finished && d && typeof d.done === 'number' && typeof d.total === 'number')
      onEvent({ type: 'progress', done: d.done, total: d.total, ...(d.partial !== undefined ? { partial: d.partial } : {}) });
  });
  source.addEventListener('result', (e) => finish({ type: 'result', result: parse(e) }));
  source.addEventListener('cancelled', (e) => {
    const d = parse(e) as Partial<JobProgress> | null;
    finish({ type: 'cancelled', ...(d?.partial !== undefined ? { partial: d.partial } : {}) });
  });
  source.addEventListener('error', (e) => {
    if (e instanceof MessageEvent) {
      // The job failed: the server's `error` event, `{ statusCode, error, message }`.
      const d = (parse(e) ?? {}) as Partial<ErrorBody>;
      finish({ type: 'error', error: new ApiError(d.statusCode ?? 500, d.error ?? 'Error', d.message ?? 'the job failed') });
      return;
    }
    // The connection failed. EventSource reconnects by itself (the server then replays the
    // job's state); when it gives up (CLOSED), report it.
    if (source.readyState === EventSource.CLOSED)
      finish({ type: 'error', error: new ApiError(0, 'Network error', `lost the event stream ${eventsUrl}`) });
  });
  return () => {
    finished = true;
    source.close();
  };
}
