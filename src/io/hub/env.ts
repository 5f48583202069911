/**
 * The Hub's environment: where the cache is, which endpoint and token to use, and the names a
 * model can be asked for by (`org/name[@revision]`). The variables are those `huggingface_hub`
 * reads, so both share one cache and one login.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

const TRUTHY = new Set(['1', 'on', 'yes', 'true']);
export function envFlag(name: string): boolean {
  return TRUTHY.has((process.env[name] ?? '').trim().toLowerCase());
}
export function envStr(name: string): string | undefined {
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
