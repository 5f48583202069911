/**
 * A client for OpenAI-compatible chat completions (`POST {apiBase}/chat/completions`), which
 * OpenAI, Ollama, vLLM, llama.cpp's server and most hosted APIs speak.
 *
 * One request in phases:
 *   1. POST { model, messages, temperature, max_tokens } with `Authorization: Bearer <key>` when a
 *      key is given; abort after `timeoutMs`.
 *   2. 429, 5xx, a timeout or a dropped connection: wait (Retry-After when the server sends one,
 *      else exponential backoff with jitter, capped) and try again, up to `retries` times.
 *   3. Any other non-2xx status (400, 401, 404, ...) fails at once: asking again cannot help.
 *   4. A 2xx reply that is not JSON or has no `choices[0].message.content` string is malformed:
 *      asked again like a 5xx (some servers send those under load), then an error.
 *
 * The key is never put in an error message: server text quoted in errors has it replaced by
 * '***' (a server may echo the header back).
 */

/** What went wrong, as a kind a caller can branch on. */
export type ChatErrorKind = 'http' | 'timeout' | 'network' | 'malformed' | 'aborted';

export class ChatError extends Error {
  constructor(
    readonly kind: ChatErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ChatError';
  }
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatOptions {
  /** The API's base URL, e.g. http://localhost:11434/v1 (Ollama) or https://api.openai.com/v1. */
  apiBase: string;
  model: string;
  /** The API key (sent as a bearer token; never logged or stored). null/undefined: none. */
  apiKey?: string | null;
  /** Per-request limit in milliseconds (default 120000). */
  timeoutMs?: number;
  /** Attempts after the first on 429 / 5xx / timeout / malformed replies (default 5). */
  retries?: number;
  /** First backoff in milliseconds (default 1000; doubles each retry, with jitter). */
  backoffMs?: number;
  /** Longest wait between attempts in milliseconds (default 30000; also caps Retry-After). */
  maxBackoffMs?: number;
  temperature?: number;
  maxTokens?: number;
  signal?: AbortSignal;
  /** Called before each retry, with the reason (for progress output). */
  onRetry?: (info: { attempt: number; waitMs: number; reason: string }) => void;
}

/** The API base as safe to print or store: no user:password, no query string. */
export function redactApiBase(apiBase: string): string {
  try {
    const u = new URL(apiBase);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/+$/, '');
  } catch {
    return '(an unparsable URL)';
  }
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ChatError('aborted', 'aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new ChatError('aborted', 'aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Sends one chat completion and returns the assistant's text (see the file's doc for retries). */
export async function chatCompletion(messages: readonly ChatMessage[], options: ChatOptions): Promise<string> {
  let base: URL;
  try {
    base = new URL(options.apiBase);
  } catch {
    throw new Error(`--api-base ${JSON.stringify(options.apiBase)}: not a URL (expected e.g. http://localhost:11434/v1)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new Error(`--api-base ${redactApiBase(options.apiBase)}: expected an http(s) URL`);
  const url = `${options.apiBase.replace(/\/+$/, '')}/chat/completions`;
  const where = `${redactApiBase(options.apiBase)}/chat/completions`;
  const key = options.apiKey ?? null;
  const scrub = (text: string): string => (key ? text.split(key).join('***') : text).slice(0, 300);
  const retries = options.retries ?? 5;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const body = JSON.stringify({
    model: options.model,
    messages,
    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
  });
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;

  for (let attempt = 0; ; attempt++) {
    let failure: ChatError;
    let retryAfterMs: number | null = null;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal });
      const text = await res.text();
      if (res.ok) {
        let content: unknown;
        try {
          content = (JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
        } catch {
          content = undefined;
        }
        if (typeof content === 'string') return content;
        failure = new ChatError(
          'malformed',
          `${where}: the reply has no choices[0].message.content string: ${JSON.stringify(scrub(text))}`,
          res.status,
        );
      } else {
        failure = new ChatError('http', `${where}: HTTP ${res.status} ${res.statusText}: ${JSON.stringify(scrub(text))}`, res.status);
        if (res.status !== 429 && res.status < 500) throw failure;
        const ra = res.headers.get('retry-after');
        if (ra !== null && /^\d+(\.\d+)?$/.test(ra.trim())) retryAfterMs = Number(ra) * 1000;
      }
    } catch (e) {
      if (e instanceof ChatError) throw e;
      if (options.signal?.aborted) throw new ChatError('aborted', `${where}: aborted`);
      if (timeout.aborted) failure = new ChatError('timeout', `${where}: no reply within ${timeoutMs} ms`);
      else
        failure = new ChatError(
          'network',
          `${where}: ${scrub(e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e))}`,
        );
    }
    if (attempt >= retries) {
      failure.message = `${failure.message} (gave up after ${attempt + 1} attempt(s))`;
      throw failure;
    }
    const cap = options.maxBackoffMs ?? 30_000;
    const backoff = (options.backoffMs ?? 1000) * 2 ** attempt * (0.5 + Math.random() / 2);
    const waitMs = Math.min(cap, retryAfterMs ?? backoff);
    options.onRetry?.({ attempt: attempt + 1, waitMs, reason: failure.message });
    await sleep(waitMs, options.signal);
  }
}
