/**
 * The cache layout `huggingface_hub` (Python) uses, so models downloaded by either are shared:
 *
 *   $HF_HUB_CACHE/models--{org}--{name}/
 *     blobs/<etag>                   file contents, named by sha256 (LFS files) or git sha1
 *     snapshots/<commit>/<filename>  relative symlink to ../../blobs/<etag> (a copy where symlinks fail)
 *     refs/<revision>                the commit the revision (branch, tag) pointed to
 *     .no_exist/<commit>/<filename>  empty marker: the file does not exist at that commit
 *
 * Every path is built by `repoPath`, which refuses any that would leave the repo's folder: names
 * come from the user (revision, files), from the server (commit, etag) and from files the server
 * sent (a shard index), and none of them may write or remove anything outside the cache.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { HubError } from './errors.js';

export const INDEX_FILE = 'model.safetensors.index.json';
export const WEIGHTS_FILE = 'model.safetensors';
/** Files `files: 'auto'` fetches besides the weights, and whether each must exist. */
export const AUTO_FILES: readonly [string, boolean][] = [
  ['config.json', true],
  ['tokenizer.json', false],
  ['tokenizer_config.json', false],
  ['special_tokens_map.json', false],
  ['generation_config.json', false],
];

export const SHA1 = /^[0-9a-f]{40}$/;
export const SHA256 = /^[0-9a-f]{64}$/;

/** The repo's folder in the cache: `models--{org}--{name}`. */
export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--');
}

/**
 * `repoDir/parts...`, refused unless it stays strictly inside `repoDir` (no `..`, no absolute
 * part, nothing that resolves to the folder itself or above it).
 */
export function repoPath(repoDir: string, ...parts: string[]): string {
  const root = resolve(repoDir);
  const path = resolve(root, ...parts);
  const rel = relative(root, path);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || parts.some((p) => p.includes('\0')))
    throw new HubError('protocol', `refusing the cache path ${JSON.stringify(join(...parts))}: it would leave ${root}`);
  return path;
}

/** A file name as a repository path: relative, '/'-separated, no '..'. */
export function checkRepoPath(file: string, where: string): void {
  const parts = file.split('/');
  if (file === '' || file.includes('\\') || file.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`${where}: ${JSON.stringify(file)} is not a plain relative file name`);
  }
}

export function checkRevision(revision: string): void {
  if (revision === '' || revision.split('/').some((p) => p === '' || p === '.' || p === '..') || revision.includes('\\')) {
    throw new Error(`bad revision ${JSON.stringify(revision)}`);
  }
}

export interface Wanted {
  /** Explicit list (all required), or auto. */
  files: readonly string[] | 'auto';
}

export function readRef(repoDir: string, revision: string): string | null {
  if (SHA1.test(revision)) return revision;
  try {
    const c = readFileSync(repoPath(repoDir, 'refs', revision), 'utf8').trim();
    return SHA1.test(c) ? c : null;
  } catch {
    return null;
  }
}

/** The cached files of a snapshot: present, known absent, or unknown. */
export function cachedState(repoDir: string, commit: string, file: string): 'present' | 'absent' | 'unknown' {
  if (existsSync(repoPath(repoDir, 'snapshots', commit, file))) return 'present'; // follows the link: the blob must be there
  if (existsSync(repoPath(repoDir, '.no_exist', commit, file))) return 'absent';
  return 'unknown';
}

export function shardsOf(indexPath: string, where: string): string[] {
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
export function fromCache(
  repoDir: string,
  revision: string,
  wanted: Wanted,
  strictOptional: boolean,
): { dir: string } | { missing: string[]; commit: string | null } {
  const commit = readRef(repoDir, revision);
  if (commit === null || !existsSync(repoPath(repoDir, 'snapshots', commit))) return { missing: ['(the revision itself)'], commit: null };
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
        for (const s of shardsOf(repoPath(repoDir, 'snapshots', commit, INDEX_FILE), where))
          if (cachedState(repoDir, commit, s) !== 'present') missing.push(s);
      } else {
        missing.push(`${WEIGHTS_FILE} (or ${INDEX_FILE} and its shards)`);
      }
    }
  }
  return missing.length === 0 ? { dir: repoPath(repoDir, 'snapshots', commit) } : { missing, commit };
}

/** Links (or copies) a downloaded blob into the snapshot at `target` (both already checked paths). */
export async function linkIntoSnapshot(blob: string, target: string, useSymlinks: boolean): Promise<void> {
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

/** Records that `file` does not exist at `commit` (an empty marker, as huggingface_hub writes). */
export function markAbsent(repoDir: string, commit: string, file: string): void {
  const marker = repoPath(repoDir, '.no_exist', commit, file);
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, '');
}

/** Points `refs/<revision>` at `commit`. */
export function writeRef(repoDir: string, revision: string, commit: string): void {
  const ref = repoPath(repoDir, 'refs', revision);
  mkdirSync(dirname(ref), { recursive: true });
  writeFileAtomic(ref, commit);
}
