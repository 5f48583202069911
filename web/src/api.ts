/**
 * The workbench's only link to the model: the JSON API of `glassbox serve` (src/server), over
 * HTTP. Every error the server sends is `{ statusCode, error, message }`; `ApiError` carries it.
 */

/** A prompt as the API takes it: text, or token ids when the model has no tokenizer. */
export type Prompt = string | number[];
/** A token: a text that is exactly one token, or its id. */
export type TokenRef = string | number;

export interface ServerLimits {
  maxTokens: number;
  maxChars: number;
  maxTopK: number;
  maxNewTokens: number;
  maxSteerPrompts: number;
  maxHeadBatch: number;
  maxJobs: number;
}

export interface ModelInfo {
  name: string;
  family: string;
  nLayers: number;
  dModel: number;
  nHeads: number;
  nKVHeads: number;
  dHead: number;
  dMlp: number;
  dVocab: number;
  nCtx: number;
  positional: string;
  norm: string;
  act: string;
  attnOnly: boolean;
  hasTokenizer: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  hookNames: string[];
  limits: ServerLimits;
}

export interface TokenProb {
  token: number;
  str: string | null;
  prob: number | null;
}

interface Tokens {
  tokens: number[];
  strTokens: string[] | null;
}

export interface ForwardResult extends Tokens {
  top: TokenProb[][];
}

export interface AttentionResult extends Tokens {
  layer: number;
  heads: number[];
  /** [head index][query][key] */
  pattern: (number | null)[][][];
}

export interface LogitLensResult extends Tokens {
  labels: string[];
  /** [label][pos][k] */
  top: TokenProb[][][];
}

export interface DlaResult extends Tokens {
  pos: number;
  answer: { token: number; str: string | null };
  wrong: { token: number; str: string | null } | null;
  components: { label: string; value: number | null }[];
  heads: (number | null)[][] | null;
  total: number | null;
  logitDiff: number | null;
}

export type Grid = (number | null)[][];

export interface HeadsResult {
  nLayers: number;
  nHeads: number;
  previousToken: Grid;
  duplicateToken: Grid;
  induction: Grid;
  scoredOn: 'prompt' | 'repeated';
  tokens?: number[];
  strTokens?: string[] | null;
  repeated: { seqLen: number; batch: number; seed: number; tokens: number[][] };
}

export type PatchingKind = 'resid_pre' | 'attn_out' | 'mlp_out' | 'head_out';

export interface PatchingResult extends Tokens {
  corruptedTokens: number[];
  corruptedStrTokens: string[] | null;
  answer: number;
  wrong: number;
  pos: number;
  cleanValue: number | null;
  corruptedValue: number | null;
  residPre?: Grid;
  attnOut?: Grid;
  mlpOut?: Grid;
  headOut?: Grid;
}

export interface PatchingStart {
  jobId: string;
  status: string;
  total: number;
  events: string;
}

export interface SteerResult {
  hook: string;
  layer: number;
  scale: number;
  vectorNorm: number | null;
  prompt: { tokens: number[]; text: string | null };
  unsteered: { tokens: number[]; text: string | null };
  steered: { tokens: number[]; text: string | null };
}

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
    const b = (json ?? {}) as Partial<{ statusCode: number; error: string; message: string }>;
    throw new ApiError(b.statusCode ?? res.status, b.error ?? res.statusText, b.message ?? (text.slice(0, 300) || res.statusText));
  }
  if (json === null) throw new ApiError(res.status, 'Bad response', `the server answered ${url} with something that is not JSON`);
  return json as T;
}

export const api = {
  model: (signal?: AbortSignal) => request<ModelInfo>('GET', '/api/model', undefined, signal),
  forward: (body: { prompt: Prompt; prependBos?: boolean; topK?: number }, signal?: AbortSignal) =>
    request<ForwardResult>('POST', '/api/forward', body, signal),
  attention: (body: { prompt: Prompt; prependBos?: boolean; layer: number; head?: number }, signal?: AbortSignal) =>
    request<AttentionResult>('POST', '/api/attention', body, signal),
  logitLens: (body: { prompt: Prompt; prependBos?: boolean; topK?: number }, signal?: AbortSignal) =>
    request<LogitLensResult>('POST', '/api/logit-lens', body, signal),
  dla: (body: { prompt: Prompt; prependBos?: boolean; answer: TokenRef; wrong?: TokenRef; pos?: number }, signal?: AbortSignal) =>
    request<DlaResult>('POST', '/api/dla', body, signal),
  heads: (body: { prompt?: Prompt; prependBos?: boolean; seqLen?: number; batch?: number; seed?: number }, signal?: AbortSignal) =>
    request<HeadsResult>('POST', '/api/heads', body, signal),
  patching: (
    body: {
      clean: Prompt;
      corrupted: Prompt;
      prependBos?: boolean;
      answer: TokenRef;
      wrong: TokenRef;
      pos?: number;
      kinds?: PatchingKind[];
    },
    signal?: AbortSignal,
  ) => request<PatchingStart>('POST', '/api/patching', body, signal),
  cancelJob: (id: string) => request<unknown>('DELETE', `/api/jobs/${encodeURIComponent(id)}`),
  steer: (
    body: {
      positive: Prompt[];
      negative: Prompt[];
      layer: number;
      hook?: string;
      position?: 'last' | 'mean';
      scale?: number;
      prompt: Prompt;
      prependBos?: boolean;
      maxNewTokens?: number;
      temperature?: number;
      seed?: number;
    },
    signal?: AbortSignal,
  ) => request<SteerResult>('POST', '/api/steer', body, signal),
};

export type JobEvent =
  | { type: 'progress'; done: number; total: number }
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: ApiError }
  | { type: 'cancelled' };

/**
 * Follows a job's server-sent events (`progress`, then one of `result`, `error`, `cancelled`).
 * Returns a function that stops listening (it does not cancel the job).
 */
export function followJob(eventsUrl: string, onEvent: (e: JobEvent) => void): () => void {
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
    const d = parse(e) as { done?: number; total?: number } | null;
    if (!finished && d && typeof d.done === 'number' && typeof d.total === 'number')
      onEvent({ type: 'progress', done: d.done, total: d.total });
  });
  source.addEventListener('result', (e) => finish({ type: 'result', result: parse(e) }));
  source.addEventListener('cancelled', () => finish({ type: 'cancelled' }));
  source.addEventListener('error', (e) => {
    if (e instanceof MessageEvent) {
      // The job failed: the server's `error` event, `{ statusCode, error, message }`.
      const d = (parse(e) ?? {}) as Partial<{ statusCode: number; error: string; message: string }>;
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
