/**
 * A training run's fingerprint: what a checkpoint records of the settings that wrote it, so that a
 * resume with other settings is refused by name instead of continuing into weights that neither
 * run would have produced.
 *
 * One mechanism for every trainer: the fingerprint is the whole options object, minus an explicit
 * list of the fields that may change on resume (how long to train, how often to log or
 * checkpoint, where to write) or that something else describes (the loss function, which the
 * caller's config describes). A field added to an options type is therefore in the fingerprint
 * unless someone decides otherwise, and a field holding something JSON cannot describe (a function,
 * a class instance) is an error until it is excluded or given a describer.
 */
import { createHash } from 'node:crypto';
import { Tensor } from '../tensor/index.js';
import { namedLeaves } from './tree.js';

/**
 * The options of every training loop (`train`, `trainSae`, `trainClt`) that say where a run goes
 * and how it is watched, never what it computes: each loop leaves them out of its fingerprint, so
 * they may change on resume.
 */
export const RUN_CONTROL_OPTIONS = [
  'outDir',
  'resume',
  'checkpointEvery',
  'keepCheckpoints',
  'logEvery',
  'progress',
  'onLog',
  'onWarning',
  'signal',
] as const;

/** Turns an option's value into a JSON value for the fingerprint. */
export type Describer = (value: never) => unknown;

/**
 * The fingerprint of `options`: every own field except those in `excluded` (and those holding
 * undefined), in sorted order, each made a canonical JSON value (objects with sorted keys,
 * non-finite numbers as strings). `describe` turns fields JSON cannot hold (tensors, models, data
 * sources) into values. Throws, naming the field, when a field holds a function or an object that
 * is not plain data and has no describer: decide whether it may change on resume or describe it.
 */
export function runFingerprint(
  options: object,
  excluded: readonly string[],
  describe: Readonly<Record<string, Describer>> = {},
): Record<string, unknown> {
  const skip = new Set(excluded);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(options).sort()) {
    if (skip.has(key)) continue;
    const raw = (options as Record<string, unknown>)[key];
    if (raw === undefined) continue;
    const d = describe[key];
    out[key] = canonical(d ? (d as (v: unknown) => unknown)(raw) : raw, key);
  }
  return out;
}

/** Plain options with their defaults: `defaults` overlaid by the fields of `given` that are not undefined. */
export function withDefaults<T extends object>(defaults: Partial<T>, given: T): T {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) out[k] = v;
  return out as T;
}

function canonical(value: unknown, path: string): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map((v, i) => canonical(v === undefined ? null : v, `${path}[${i}]`));
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (value instanceof Tensor) return { tensor: tensorDigest(value) };
    if (proto === Object.prototype || proto === null) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(value).sort()) {
        const v = (value as Record<string, unknown>)[k];
        if (v !== undefined) out[k] = canonical(v, `${path}.${k}`);
      }
      return out;
    }
  }
  const kind = typeof value === 'function' ? 'a function' : `a ${(value as object).constructor?.name ?? typeof value}`;
  throw new Error(
    `runFingerprint: '${path}' holds ${kind}, which a run's fingerprint cannot describe; list it among the fields that may change on resume, or give it a describer`,
  );
}

/** SHA-256 (hex) of a tensor's dtype, shape and values. */
export function tensorDigest(t: Tensor): string {
  const hash = createHash('sha256');
  hashTensor(hash, t);
  return hash.digest('hex');
}

/** SHA-256 (hex) of every tensor of a pytree: names, dtypes, shapes and values, in the tree's order. */
export function treeDigest(tree: unknown): string {
  const hash = createHash('sha256');
  for (const [name, t] of namedLeaves(tree)) {
    hash.update(`${name}\0`);
    hashTensor(hash, t);
  }
  return hash.digest('hex');
}

function hashTensor(hash: ReturnType<typeof createHash>, t: Tensor): void {
  const data = t.dataSync();
  hash.update(`${t.dtype}[${t.shape.join(',')}]\0`);
  hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/**
 * SHA-256 (hex) of a schedule's values at steps 0 .. steps - 1 (as float64). Two schedules with
 * the same digest over the steps a checkpoint has done drove those steps identically; where they
 * differ later does not matter to a resume.
 */
export function scheduleDigest(schedule: (step: number) => number, steps: number): string {
  const hash = createHash('sha256');
  const chunk = new Float64Array(4096);
  for (let start = 0; start < steps; start += chunk.length) {
    const n = Math.min(chunk.length, steps - start);
    for (let i = 0; i < n; i++) chunk[i] = schedule(start + i);
    hash.update(new Uint8Array(chunk.buffer, 0, n * 8));
  }
  return hash.digest('hex');
}

/**
 * Where two fingerprints differ: one line per differing leaf ("lr: 0.001 in the checkpoint, 0.5
 * now"), at most `limit` of them.
 */
export function fingerprintDiff(saved: unknown, now: unknown, path = '', limit = 6): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, p: string): void => {
    if (out.length >= limit) return;
    if (isRecord(a) && isRecord(b)) {
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) walk(a[k], b[k], p ? `${p}.${k}` : k);
      return;
    }
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((v, i) => walk(v, b[i], `${p}[${i}]`));
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${p || '(the whole value)'}: ${show(a)} in the checkpoint, ${show(b)} now`);
  };
  walk(saved, now, path);
  return out;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function show(v: unknown): string {
  if (v === undefined) return 'not set';
  const s = JSON.stringify(v);
  return s.length > 100 ? `${s.slice(0, 97)}...` : s;
}
