/**
 * Talking to the Hub over HTTP: resolve URLs, headers (the token goes to the Hub's origin only),
 * retries with backoff on network errors, 429 and 5xx, errors that say what to do, and the HEAD
 * request that gives a file's commit, blob name, size and download location.
 *
 * A HEAD asks `{endpoint}/{repo}/resolve/{revision}/{file}` for the commit (X-Repo-Commit), the
 * blob's name (X-Linked-Etag, else ETag) and size (X-Linked-Size, else Content-Length) and where
 * the bytes are (the Location of an LFS redirect). The commit and the blob name become cache
 * paths, so both are checked: a commit is 40 hex digits, a blob name a plain file name.
 */
import { HubError } from './errors.js';
import { SHA1 } from './cache.js';
import type { DownloadProgress } from './download.js';

export interface FileMeta {
  commit: string;
  etag: string;
  size: number | null;
  /** Where to GET the bytes (the LFS redirect's target, or the resolve URL). */
  location: string;
}

/** One download's connection to the Hub, and where its progress goes. */
export interface Ctx {
  repoId: string;
  endpoint: string;
  token: string | null;
  retries: number;
  signal: AbortSignal | undefined;
  onProgress: ((p: DownloadProgress) => void) | undefined;
  bar: ProgressBar | null;
  useSymlinks: boolean;
  repoDir: string;
}

/** A byte-count progress display for one file at a time. */
export interface ProgressBar {
  start(file: string, total: number | null, at: number): Promise<void>;
  update(at: number): void;
  stop(): void;
}

export function resolveUrl(ctx: Ctx, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${ctx.endpoint}/${ctx.repoId}/resolve/${encodeURIComponent(revision)}/${path}`;
}

export function headersFor(ctx: Ctx, url: string, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'glassbox', ...extra };
  // The token goes to the Hub only, never to the storage a redirect points at.
  if (ctx.token !== null && new URL(url).origin === new URL(ctx.endpoint).origin) h.Authorization = `Bearer ${ctx.token}`;
  return h;
}

function normalizeEtag(v: string | null): string | null {
  if (v === null) return null;
  return v.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

export function backoff(attempt: number): number {
  return Math.min(8000, 250 * 2 ** attempt);
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Turns a failed Hub answer into an error that says what to do. */
export function httpError(ctx: Ctx, res: Response, revision: string, file: string): HubError {
  const code = res.headers.get('x-error-code');
  const detail = res.headers.get('x-error-message');
  const tail = detail ? ` (the Hub says: ${detail})` : '';
  const what = `${ctx.repoId}@${revision}: ${file}`;
  const tokenHint =
    ctx.token === null
      ? 'set HF_TOKEN to a token (https://huggingface.co/settings/tokens) of an account with access'
      : 'the token in use (HF_TOKEN) does not give access; check it and that its account has accepted the terms on the model page';
  if (code === 'RepoNotFound') {
    return new HubError(
      'repo-not-found',
      `${ctx.repoId}: repository not found at ${ctx.endpoint}${tail}. If it is private or gated, ${tokenHint}.`,
      res.status,
    );
  }
  if (code === 'GatedRepo' || res.status === 401 || res.status === 403) {
    return new HubError(
      'unauthorized',
      `${what}: HTTP ${res.status}: ${ctx.repoId} is gated or private${tail}. Request access on its page (${ctx.endpoint}/${ctx.repoId}) and ${tokenHint}.`,
      res.status,
    );
  }
  if (code === 'RevisionNotFound')
    return new HubError('revision-not-found', `${ctx.repoId}: revision ${JSON.stringify(revision)} not found${tail}`, res.status);
  if (res.status === 404) {
    return new HubError(
      'entry-not-found',
      `${ctx.repoId}@${revision}: file ${JSON.stringify(file)} not found (HTTP 404${code ? `, ${code}` : ''})${tail}`,
      res.status,
    );
  }
  return new HubError('http', `${what}: HTTP ${res.status} ${res.statusText}${tail}`, res.status);
}

/** A request with retries on network errors, 429 and 5xx. */
export async function request(ctx: Ctx, url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: ctx.signal });
    } catch (e) {
      if (ctx.signal?.aborted || attempt >= ctx.retries) {
        throw new HubError(
          'http',
          `${url}: request failed (${errText(e)}). Check the network and HF_ENDPOINT; to use only files already cached, set HF_HUB_OFFLINE=1.`,
        );
      }
      await sleep(backoff(attempt), ctx.signal);
      continue;
    }
    if (isRetryableStatus(res.status) && attempt < ctx.retries) {
      await res.body?.cancel();
      const after = Number(res.headers.get('retry-after'));
      await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 60_000) : backoff(attempt), ctx.signal);
      continue;
    }
    return res;
  }
}

export function errText(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

/** HEAD: the file's commit, blob name, size and download location; null when the file is absent (404 entry). */
export async function fileMeta(ctx: Ctx, revision: string, file: string): Promise<FileMeta | null> {
  let url = resolveUrl(ctx, revision, file);
  for (let hops = 0; hops < 10; hops++) {
    const res = await request(ctx, url, { method: 'HEAD', redirect: 'manual', headers: headersFor(ctx, url) });
    const commit = res.headers.get('x-repo-commit');
    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.get('location');
      if (loc === null) throw new HubError('protocol', `${ctx.repoId}@${revision}: ${file}: HTTP ${res.status} without a Location`);
      const next = new URL(loc, url).toString();
      // An LFS file: the Hub answers with its metadata and a redirect to the storage.
      if (commit !== null) return metaFrom(ctx, res, revision, file, next);
      url = next; // a renamed repo: follow
      continue;
    }
    if (res.ok) return metaFrom(ctx, res, revision, file, null);
    const err = httpError(ctx, res, revision, file);
    if (err.kind === 'entry-not-found') return null;
    throw err;
  }
  throw new HubError('protocol', `${ctx.repoId}@${revision}: ${file}: too many redirects`);
}

/** `location` null: the bytes are at the resolve URL itself, asked for by commit so they match the HEAD. */
function metaFrom(ctx: Ctx, res: Response, revision: string, file: string, location: string | null): FileMeta {
  const commit = res.headers.get('x-repo-commit');
  const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
  // A redirect's Content-Length is that of its own (empty) body, not the file's.
  const sizeText = res.headers.get('x-linked-size') ?? (location === null ? res.headers.get('content-length') : null);
  if (commit === null || etag === null || etag === '') {
    throw new HubError(
      'protocol',
      `${ctx.repoId}@${revision}: ${file}: the server at ${ctx.endpoint} did not send ${commit === null ? 'X-Repo-Commit' : 'an ETag'}; is HF_ENDPOINT a Hugging Face Hub?`,
    );
  }
  if (!SHA1.test(commit))
    throw new HubError(
      'protocol',
      `${ctx.repoId}@${revision}: ${file}: the server sent X-Repo-Commit ${JSON.stringify(commit.slice(0, 80))}, not a 40-digit commit sha; refusing it`,
    );
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(etag) || etag.length > 128)
    throw new HubError('protocol', `${ctx.repoId}@${revision}: ${file}: unusable ETag ${JSON.stringify(etag.slice(0, 80))}`);
  const size = sizeText === null ? null : Number(sizeText);
  return {
    commit,
    etag,
    size: size !== null && Number.isSafeInteger(size) && size >= 0 ? size : null,
    location: location ?? resolveUrl(ctx, commit, file),
  };
}
