/**
 * Downloads from the Hugging Face Hub into the shared cache (see cache.ts for the layout).
 *
 * `downloadModel` in phases:
 *   1. Answer from the cache when it holds every wanted file of the revision (offline: only then).
 *   2. HEAD the first file to pin the commit; ask for the rest by that commit, so a branch that
 *      moves meanwhile cannot mix two commits in one snapshot.
 *   3. GET each blob the cache lacks into `blobs/<etag>.incomplete`, resuming an interrupted one
 *      with a Range request; check its size and (for sha256 etags) its hash; rename it into place.
 *   4. Link the snapshot's files to their blobs, mark absent optional files, write the ref.
 *
 * Environment: HF_HOME (default $XDG_CACHE_HOME/huggingface, i.e. ~/.cache/huggingface),
 * HF_HUB_CACHE (default $HF_HOME/hub), HF_ENDPOINT (default https://huggingface.co), HF_TOKEN
 * (else the token file `huggingface-cli login` writes, $HF_HOME/token), HF_HUB_OFFLINE=1 (no
 * network: answer from the cache), HF_HUB_DISABLE_PROGRESS_BARS=1.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { open, rename, rm, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatBytes, stderrBar } from '../progress.js';
import {
  AUTO_FILES,
  INDEX_FILE,
  SHA256,
  WEIGHTS_FILE,
  checkRepoPath,
  checkRevision,
  fromCache,
  linkIntoSnapshot,
  markAbsent,
  repoFolderName,
  repoPath,
  shardsOf,
  writeRef,
  type Wanted,
} from './cache.js';
import { DEFAULT_ENDPOINT, envFlag, envStr, hubCacheDir, hubToken, validateRepoId } from './env.js';
import { HubError } from './errors.js';
import { backoff, errText, fileMeta, headersFor, httpError, request, sleep, type Ctx, type FileMeta, type ProgressBar } from './http.js';

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

/** Hashes what is already in a partial file (to resume with the hash running). */
async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** Downloads a blob into `blobs/<etag>`, resuming `blobs/<etag>.incomplete`, and verifies it. */
async function downloadBlob(ctx: Ctx, meta: FileMeta, file: string, revision: string): Promise<string> {
  const blob = repoPath(ctx.repoDir, 'blobs', meta.etag);
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
    await ctx.bar?.start(file, total, offset);
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

/** The download bar: one file at a time, bytes so far, total and ETA. */
async function terminalBar(): Promise<ProgressBar> {
  let bar: Awaited<ReturnType<typeof stderrBar>> | null = null;
  return {
    async start(file, total, at) {
      bar = await stderrBar(total === null ? `${file} | {got}` : `${file} [{bar}] {percentage}% | {got}/{all} | {eta_formatted}`, 10);
      bar.start(total ?? 0, at, { got: formatBytes(at), all: total === null ? '?' : formatBytes(total) });
    },
    update(at) {
      bar?.update(at, { got: formatBytes(at) });
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
  const repoDir = repoPath(cacheDir, repoFolderName(repoId));
  const offline = options.offline ?? envFlag('HF_HUB_OFFLINE');
  const wanted: Wanted = { files };

  if (offline) {
    const hit = fromCache(repoDir, revision, wanted, false);
    if ('dir' in hit) return hit.dir;
    const why =
      hit.commit === null
        ? `revision ${JSON.stringify(revision)} has never been downloaded into ${repoDir}`
        : `missing from ${repoPath(repoDir, 'snapshots', hit.commit)}: ${hit.missing.join(', ')}`;
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
      if (commit !== null) markAbsent(repoDir, commit, file);
      return null;
    }
    if (commit === null) commit = meta.commit;
    else if (meta.commit !== commit) {
      throw new HubError('protocol', `${repoId}@${revision}: ${file} came from commit ${meta.commit}, the other files from ${commit}`);
    }
    const blob = await downloadBlob(ctx, meta, file, rev);
    const target = repoPath(repoDir, 'snapshots', commit, file);
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
  if (revision !== sha) writeRef(repoDir, revision, sha);
  return repoPath(repoDir, 'snapshots', sha);
}
