/**
 * Downloads from the Hugging Face Hub into the cache layout that `huggingface_hub` (Python) uses,
 * so models downloaded by either are shared:
 *
 *   $HF_HUB_CACHE/models--{org}--{name}/
 *     blobs/<etag>                   file contents, named by sha256 (LFS files) or git sha1
 *     snapshots/<commit>/<filename>  relative symlink to ../../blobs/<etag> (a copy where symlinks fail)
 *     refs/<revision>                the commit the revision (branch, tag) pointed to
 *     .no_exist/<commit>/<filename>  empty marker: the file does not exist at that commit
 *
 * A download asks `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` for the commit
 * (X-Repo-Commit), the blob's name (X-Linked-Etag, else ETag) and size (X-Linked-Size, else
 * Content-Length) and where the bytes are (the Location of an LFS redirect), then GETs the bytes
 * into `blobs/<etag>.incomplete`: interrupted downloads resume with a Range request, the size and
 * (when the etag is a sha256) the hash are checked, and only then is the file renamed into place.
 *
 * Environment: HF_HOME (default $XDG_CACHE_HOME/huggingface, i.e. ~/.cache/huggingface),
 * HF_HUB_CACHE (default $HF_HOME/hub), HF_ENDPOINT (default https://huggingface.co), HF_TOKEN
 * (else the token file `huggingface-cli login` writes, $HF_HOME/token), HF_HUB_OFFLINE=1 (no
 * network: answer from the cache), HF_HUB_DISABLE_PROGRESS_BARS=1.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { copyFile, open, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { writeFileAtomic } from './atomic.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const INDEX_FILE = 'model.safetensors.index.json';
const WEIGHTS_FILE = 'model.safetensors';
/** Files `files: 'auto'` fetches besides the weights, and whether each must exist. */
const AUTO_FILES: readonly [string, boolean][] = [
  ['config.json', true],
  ['tokenizer.json', false],
  ['tokenizer_config.json', false],
  ['special_tokens_map.json', false],
  ['generation_config.json', false],
];

export interface DownloadProgress {
  /** The file's name in the repository. */
  file: string;
  /** Bytes of the file on disk so far (a resumed download starts where it left off). */
  downloaded: number;
  /** The file's size, when the Hub says it. */
  total: number | null;
}

export interface DownloadOptions {
  /** Branch, tag or commit sha (default 'main'; `resolveModelId` parses `org/name@revision`). */
  revision?: string;
  /**
   * The files to fetch, all required; or 'auto' (default): config.json, then tokenizer.json,
   * tokenizer_config.json, special_tokens_map.json and generation_config.json where the repo
   * has them, then the weights: model.safetensors, or model.safetensors.index.json and every
   * shard in its weight_map.
   */
  files?: readonly string[] | 'auto';
  /** Access token (default HF_TOKEN, else the token file of `huggingface-cli login`); null: none. */
  token?: string | null;
  /** The hub cache directory, the one holding `models--*` (default HF_HUB_CACHE, else $HF_HOME/hub). */
  cacheDir?: string;
  /** The Hub's address (default HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** No network: answer from the cache or fail (default: HF_HUB_OFFLINE). */
  offline?: boolean;
  /**
   * Ask the Hub even when the cache has every file for the revision, to pick up new commits on a
   * branch (default false: a complete cached snapshot is used without any request).
   */
  refresh?: boolean;
  /** Called as bytes arrive. Without it a progress bar is drawn on stderr when stderr is a terminal. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Draw the default progress bar (default: stderr is a TTY and HF_HUB_DISABLE_PROGRESS_BARS is unset). */
  progressBar?: boolean;
  /** Link snapshot files to blobs (default true); false, or a file system without symlinks, copies them. */
  symlinks?: boolean;
  /** Attempts after a failed request or a cut connection (default 5). */
  retries?: number;
  /** Aborts the download. */
  signal?: AbortSignal;
}

export type HubErrorKind =
  | 'unauthorized' // 401/403: gated, private, or a bad token
  | 'repo-not-found'
  | 'revision-not-found'
  | 'entry-not-found' // the file is not in the repo at that revision
  | 'offline' // offline and not in the cache
  | 'integrity' // size or sha256 mismatch
  | 'protocol' // the server did not answer like the Hub
  | 'http'; // any other HTTP failure

export class HubError extends Error {
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

const TRUTHY = new Set(['1', 'on', 'yes', 'true']);
function envFlag(name: string): boolean {
  return TRUTHY.has((process.env[name] ?? '').trim().toLowerCase());
}
function envStr(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** $HF_HOME, default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface. */
export function hfHome(): string {
  return envStr('HF_HOME') ?? join(envStr('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'huggingface');
}

/** The hub cache directory: HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub. */
export function hubCacheDir(): string {
  return envStr('HF_HUB_CACHE') ?? envStr('HUGGINGFACE_HUB_CACHE') ?? join(hfHome(), 'hub');
}

/** The token to send: HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the saved login token. */
export function hubToken(): string | null {
  const env = envStr('HF_TOKEN') ?? envStr('HUGGING_FACE_HUB_TOKEN');
  if (env !== undefined) return env.trim();
  const path = envStr('HF_TOKEN_PATH') ?? join(hfHome(), 'token');
  try {
    const t = readFileSync(path, 'utf8').trim();
    return t === '' ? null : t;
  } catch {
    return null;
  }
}

const REPO_PART = /^[A-Za-z0-9_.-]{1,96}$/;

/** Checks a repo id the way the Hub does (`name` or `org/name`, letters, digits, `-_.`, no `--` or `..`). */
export function validateRepoId(repoId: string): void {
  const parts = repoId.split('/');
  const ok =
    parts.length >= 1 &&
    parts.length <= 2 &&
    parts.every((p) => REPO_PART.test(p) && !/^[-.]|[-.]$/.test(p)) &&
    !repoId.includes('--') &&
    !repoId.includes('..');
  if (!ok)
    throw new Error(
      `${JSON.stringify(repoId)}: not a Hugging Face repo id (expected "org/name": letters, digits, "-", "_", "."; no "--" or "..")`,
    );
}

/** Splits `org/name@revision` into the repo id and the revision (default 'main'). */
export function resolveModelId(spec: string): { repoId: string; revision: string } {
  const at = spec.indexOf('@');
  const repoId = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? 'main' : spec.slice(at + 1);
  validateRepoId(repoId);
  if (revision === '' || revision.includes('..') || revision.startsWith('/') || revision.endsWith('/')) {
    throw new Error(`${JSON.stringify(spec)}: bad revision ${JSON.stringify(revision)} (expected org/name@branch, tag or commit sha)`);
  }
  return { repoId, revision };
}

/** The repo's folder in the cache: `models--{org}--{name}`. */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

const SHA1 = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** A file name as a repository path: relative, '/'-separated, no '..'. */
function checkRepoPath(file: string, where: string): void {
  const parts = file.split('/');
  if (file === '' || file.includes('\\') || file.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`${where}: ${JSON.stringify(file)} is not a plain relative file name`);
  }
}

function checkRevision(revision: string): void {
  if (revision === '' || revision.split('/').some((p) => p === '' || p === '.' || p === '..') || revision.includes('\\')) {
    throw new Error(`bad revision ${JSON.stringify(revision)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The cache

interface Wanted {
  /** Explicit list (all required), or auto. */
  files: readonly string[] | 'auto';
}

function readRef(repoDir: string, revision: string): string | null {
  if (SHA1.test(revision)) return revision;
  try {
    const c = readFileSync(join(repoDir, 'refs', revision), 'utf8').trim();
    return SHA1.test(c) ? c : null;
  } catch {
    return null;
  }
}

/** The cached files of a snapshot: present, known absent, or unknown. */
function cachedState(repoDir: string, commit: string, file: string): 'present' | 'absent' | 'unknown' {
  if (existsSync(join(repoDir, 'snapshots', commit, file))) return 'present'; // follows the link: the blob must be there
  if (existsSync(join(repoDir, '.no_exist', commit, file))) return 'absent';
  return 'unknown';
}

function shardsOf(indexPath: string, where: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new HubError('protocol', `${where}: ${INDEX_FILE} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map))
    throw new HubError('protocol', `${where}: ${INDEX_FILE} has no weight_map object`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== 'string')
      throw new HubError('protocol', `${where}: ${INDEX_FILE} maps a tensor to ${JSON.stringify(s)}, not a file name`);
    checkRepoPath(s, `${where}: ${INDEX_FILE}`);
  }
  return shards as string[];
}

/**
 * The snapshot directory when the cache holds every wanted file of `revision`; else the files
 * it lacks (for the offline error). With `strictOptional`, an optional file counts only if the
 * cache knows whether it exists (a file or a .no_exist marker); offline, unknown means absent.
 */
function fromCache(
  repoDir: string,
  revision: string,
  wanted: Wanted,
  strictOptional: boolean,
): { dir: string } | { missing: string[]; commit: string | null } {
  const commit = readRef(repoDir, revision);
  if (commit === null || !existsSync(join(repoDir, 'snapshots', commit))) return { missing: ['(the revision itself)'], commit: null };
  const where = `${repoDir}/snapshots/${commit}`;
  const missing: string[] = [];
  if (wanted.files !== 'auto') {
    for (const f of wanted.files) if (cachedState(repoDir, commit, f) !== 'present') missing.push(f);
  } else {
    for (const [f, required] of AUTO_FILES) {
      const s = cachedState(repoDir, commit, f);
      if (s === 'present' || (!required && (s === 'absent' || !strictOptional))) continue;
      missing.push(f);
    }
    const single = cachedState(repoDir, commit, WEIGHTS_FILE);
    if (single !== 'present') {
      const idx = cachedState(repoDir, commit, INDEX_FILE);
      if (idx === 'present' && (single === 'absent' || !strictOptional)) {
        for (const s of shardsOf(join(repoDir, 'snapshots', commit, INDEX_FILE), where))
          if (cachedState(repoDir, commit, s) !== 'present') missing.push(s);
      } else {
        missing.push(`${WEIGHTS_FILE} (or ${INDEX_FILE} and its shards)`);
      }
    }
  }
  return missing.length === 0 ? { dir: join(repoDir, 'snapshots', commit) } : { missing, commit };
}

async function linkIntoSnapshot(blob: string, target: string, useSymlinks: boolean): Promise<void> {
  mkdirSync(dirname(target), { recursive: true });
  const rel = relative(dirname(target), blob);
  try {
    if ((await readlink(target)) === rel) return;
  } catch {
    // not a link (absent, or a copied file)
  }
  await rm(target, { force: true });
  if (useSymlinks) {
    try {
      await symlink(rel, target);
      return;
    } catch {
      // no symlinks here (Windows without developer mode, some network or FAT file systems)
    }
  }
  const tmp = `${target}.${process.pid}.tmp`;
  await copyFile(blob, tmp);
  await rename(tmp, target);
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface FileMeta {
  commit: string;
  etag: string;
  size: number | null;
  /** Where to GET the bytes (the LFS redirect's target, or the resolve URL). */
  location: string;
}

interface Ctx {
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

function resolveUrl(ctx: Ctx, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${ctx.endpoint}/${ctx.repoId}/resolve/${encodeURIComponent(revision)}/${path}`;
}

function headersFor(ctx: Ctx, url: string, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'glassbox', ...extra };
  // The token goes to the Hub only, never to the storage a redirect points at.
  if (ctx.token !== null && new URL(url).origin === new URL(ctx.endpoint).origin) h.Authorization = `Bearer ${ctx.token}`;
  return h;
}

function normalizeEtag(v: string | null): string | null {
  if (v === null) return null;
  return v.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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

function backoff(attempt: number): number {
  return Math.min(8000, 250 * 2 ** attempt);
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Turns a failed Hub answer into an error that says what to do. */
function httpError(ctx: Ctx, res: Response, revision: string, file: string): HubError {
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
async function request(ctx: Ctx, url: string, init: RequestInit): Promise<Response> {
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

function errText(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

/** HEAD: the file's commit, blob name, size and download location; null when the file is absent (404 entry). */
async function fileMeta(ctx: Ctx, revision: string, file: string): Promise<FileMeta | null> {
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
  if (!/^[A-Za-z0-9._-]+$/.test(etag))
    throw new HubError('protocol', `${ctx.repoId}@${revision}: ${file}: unusable ETag ${JSON.stringify(etag)}`);
  const size = sizeText === null ? null : Number(sizeText);
  return {
    commit,
    etag,
    size: size !== null && Number.isSafeInteger(size) && size >= 0 ? size : null,
    location: location ?? resolveUrl(ctx, SHA1.test(commit) ? commit : revision, file),
  };
}

/** Hashes what is already in a partial file (to resume with the hash running). */
async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** Downloads a blob into `blobs/<etag>`, resuming `blobs/<etag>.incomplete`, and verifies it. */
async function downloadBlob(ctx: Ctx, meta: FileMeta, file: string, revision: string): Promise<string> {
  const blob = join(ctx.repoDir, 'blobs', meta.etag);
  if (existsSync(blob)) return blob;
  mkdirSync(dirname(blob), { recursive: true });
  const part = `${blob}.incomplete`;
  const checkSha = SHA256.test(meta.etag);
  const what = `${ctx.repoId}@${revision}: ${file}`;

  for (let attempt = 0; ; attempt++) {
    let have = existsSync(part) ? statSync(part).size : 0;
    if (meta.size !== null && have > meta.size) {
      await unlink(part);
      have = 0;
    }
    const done = meta.size !== null && have === meta.size;
    let hash: Hash | null = null;
    try {
      if (!done) hash = await fetchInto(ctx, meta, part, have, file, revision, checkSha);
    } catch (e) {
      if (e instanceof HubError) throw e;
      if (ctx.signal?.aborted || attempt >= ctx.retries) {
        throw new HubError(
          'http',
          `${what}: download failed after ${attempt + 1} attempt(s) (${errText(e)}); run again to resume from ${part}`,
        );
      }
      await sleep(backoff(attempt), ctx.signal);
      continue;
    }
    const got = statSync(part).size;
    if (meta.size !== null && got !== meta.size) {
      if (got < meta.size && attempt < ctx.retries) {
        // the connection ended early without an error: resume
        await sleep(backoff(attempt), ctx.signal);
        continue;
      }
      await rm(part, { force: true });
      throw new HubError('integrity', `${what}: downloaded ${got} bytes, expected ${meta.size}; the partial file was deleted, run again`);
    }
    if (checkSha) {
      if (hash === null) {
        hash = createHash('sha256');
        await hashFile(part, hash);
      }
      const digest = hash.digest('hex');
      if (digest !== meta.etag) {
        await rm(part, { force: true });
        throw new HubError(
          'integrity',
          `${what}: sha256 mismatch (expected ${meta.etag}, got ${digest}); the download was deleted, run again`,
        );
      }
    }
    await rename(part, blob);
    return blob;
  }
}

/**
 * One GET into the partial file, appending from `have` when the server honours Range. Returns
 * the sha256 of the whole file when `withSha` (null when nothing was fetched).
 */
async function fetchInto(
  ctx: Ctx,
  meta: FileMeta,
  part: string,
  have: number,
  file: string,
  revision: string,
  withSha: boolean,
): Promise<Hash | null> {
  const extra: Record<string, string> = have > 0 ? { Range: `bytes=${have}-` } : {};
  const res = await request(ctx, meta.location, { method: 'GET', redirect: 'follow', headers: headersFor(ctx, meta.location, extra) });
  if (res.status === 416 && have > 0) {
    // Range not satisfiable: what we have may be all there is; the size/hash checks decide.
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) throw httpError(ctx, res, revision, file);
  let offset = have;
  if (res.status === 206) {
    const range = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
    if (range === null || Number(range[1]) !== have) {
      await res.body?.cancel();
      throw new HubError(
        'protocol',
        `${ctx.repoId}@${revision}: ${file}: asked for bytes ${have}- and got Content-Range ${JSON.stringify(res.headers.get('content-range'))}`,
      );
    }
  } else {
    offset = 0; // 200: the whole file again
  }
  const hash = withSha ? createHash('sha256') : null;
  if (hash !== null && offset > 0) await hashFile(part, hash);
  const fh = await open(part, offset === 0 ? 'w' : 'a');
  try {
    const total = meta.size;
    ctx.bar?.start(file, total, offset);
    ctx.onProgress?.({ file, downloaded: offset, total });
    if (res.body !== null) {
      for await (const chunk of res.body) {
        const buf = chunk as Uint8Array;
        let off = 0;
        while (off < buf.byteLength) off += (await fh.write(buf, off, buf.byteLength - off)).bytesWritten;
        hash?.update(buf);
        offset += buf.byteLength;
        ctx.bar?.update(offset);
        ctx.onProgress?.({ file, downloaded: offset, total });
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
    ctx.bar?.stop();
  }
  return hash;
}

// ---------------------------------------------------------------------------------------------
// Progress bar

interface ProgressBar {
  start(file: string, total: number | null, at: number): void;
  update(at: number): void;
  stop(): void;
}

async function terminalBar(): Promise<ProgressBar> {
  const { default: cli } = await import('cli-progress');
  let bar: InstanceType<typeof cli.SingleBar> | null = null;
  const size = (n: number): string => {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i++;
    }
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
  };
  return {
    start(file, total, at) {
      bar = new cli.SingleBar(
        {
          stream: process.stderr,
          hideCursor: true,
          format: total === null ? `${file} | {got}` : `${file} [{bar}] {percentage}% | {got}/{all} | {eta_formatted}`,
          etaBuffer: 50,
          fps: 10,
        },
        cli.Presets.shades_classic,
      );
      bar.start(total ?? 0, at, { got: size(at), all: total === null ? '?' : size(total) });
    },
    update(at) {
      bar?.update(at, { got: size(at) });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The entry point

/**
 * Downloads a model's files from the Hub into the shared Hugging Face cache (or finds them
 * there) and returns the snapshot directory, which reads like a local model folder.
 *
 * With a complete snapshot for the revision in the cache, no request is made (pass `refresh`
 * to check a branch for new commits). Offline (HF_HUB_OFFLINE=1 or `offline`), only the cache
 * is used and a missing file is an error naming it.
 */
export async function downloadModel(repoId: string, options: DownloadOptions = {}): Promise<string> {
  validateRepoId(repoId);
  const revision = options.revision ?? 'main';
  checkRevision(revision);
  const files = options.files ?? 'auto';
  if (files !== 'auto') {
    if (files.length === 0) throw new Error(`${repoId}: files is empty`);
    for (const f of files) checkRepoPath(f, repoId);
  }
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const repoDir = join(cacheDir, repoFolderName(repoId));
  const offline = options.offline ?? envFlag('HF_HUB_OFFLINE');
  const wanted: Wanted = { files };

  if (offline) {
    const hit = fromCache(repoDir, revision, wanted, false);
    if ('dir' in hit) return hit.dir;
    const why =
      hit.commit === null
        ? `revision ${JSON.stringify(revision)} has never been downloaded into ${repoDir}`
        : `missing from ${join(repoDir, 'snapshots', hit.commit)}: ${hit.missing.join(', ')}`;
    throw new HubError(
      'offline',
      `${repoId}@${revision}: offline mode is on (HF_HUB_OFFLINE) and the cache lacks it: ${why}. Download it once online, or turn offline mode off.`,
    );
  }
  if (!options.refresh) {
    const hit = fromCache(repoDir, revision, wanted, true);
    if ('dir' in hit) return hit.dir;
  }

  const endpoint = (options.endpoint ?? envStr('HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const showBar =
    options.onProgress === undefined &&
    (options.progressBar ?? (process.stderr.isTTY === true && !envFlag('HF_HUB_DISABLE_PROGRESS_BARS')));
  const ctx: Ctx = {
    repoId,
    endpoint,
    token: options.token === undefined ? hubToken() : options.token,
    retries: options.retries ?? 5,
    signal: options.signal,
    onProgress: options.onProgress,
    bar: showBar ? await terminalBar() : null,
    useSymlinks: options.symlinks ?? true,
    repoDir,
  };

  try {
    return await fetchSnapshot(ctx, revision, files);
  } catch (e) {
    // Asked to look for a newer commit but the Hub cannot be reached: the cached snapshot will do.
    if (options.refresh && e instanceof HubError && e.kind === 'http' && e.status === undefined) {
      const hit = fromCache(repoDir, revision, wanted, false);
      if ('dir' in hit) return hit.dir;
    }
    throw e;
  }
}

/** The online path: HEAD each file, download the blobs the cache lacks, link the snapshot, write the ref. */
async function fetchSnapshot(ctx: Ctx, revision: string, files: readonly string[] | 'auto'): Promise<string> {
  const { repoId, repoDir } = ctx;
  // The first file pins the commit; the rest are asked for by commit, so a branch that moves
  // meanwhile cannot mix two commits in one snapshot.
  let commit: string | null = null;
  const fetchOne = async (file: string, required: boolean): Promise<string | null> => {
    const rev = commit ?? revision;
    const meta = await fileMeta(ctx, rev, file);
    if (meta === null) {
      if (required) throw new HubError('entry-not-found', `${repoId}@${revision}: file ${JSON.stringify(file)} not found (HTTP 404)`, 404);
      if (commit !== null) {
        const marker = join(repoDir, '.no_exist', commit, file);
        mkdirSync(dirname(marker), { recursive: true });
        writeFileSync(marker, '');
      }
      return null;
    }
    if (commit === null) commit = meta.commit;
    else if (meta.commit !== commit) {
      throw new HubError('protocol', `${repoId}@${revision}: ${file} came from commit ${meta.commit}, the other files from ${commit}`);
    }
    const blob = await downloadBlob(ctx, meta, file, rev);
    const target = join(repoDir, 'snapshots', commit, file);
    await linkIntoSnapshot(blob, target, ctx.useSymlinks);
    return target;
  };

  if (files !== 'auto') {
    for (const f of files) await fetchOne(f, true);
  } else {
    for (const [f, required] of AUTO_FILES) await fetchOne(f, required);
    if ((await fetchOne(WEIGHTS_FILE, false)) === null) {
      const index = await fetchOne(INDEX_FILE, false);
      if (index === null) {
        throw new HubError(
          'entry-not-found',
          `${repoId}@${revision}: no safetensors weights (neither ${WEIGHTS_FILE} nor ${INDEX_FILE}); glassbox reads safetensors only`,
          404,
        );
      }
      for (const s of shardsOf(index, `${repoId}@${revision}`)) await fetchOne(s, true);
    }
  }

  const sha = commit as string | null;
  if (sha === null) throw new HubError('protocol', `${repoId}@${revision}: no file was fetched`);
  if (revision !== sha) {
    const ref = join(repoDir, 'refs', revision);
    mkdirSync(dirname(ref), { recursive: true });
    writeFileAtomic(ref, sha);
  }
  return join(repoDir, 'snapshots', sha);
}
