/**
 * Building bad inputs at test time from the fixtures (test/fixtures/hf, test/fixtures/tl,
 * models/default): model directories whose files are links to a fixture's, with the one file a
 * case changes written in; safetensors files with tensors added, changed or damaged.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveSafetensors } from '../../src/io/index.js';
import { loadFromDirectory, type LoadOptions } from '../../src/model/pretrained.js';
import type { HookedTransformer } from '../../src/model/hooked.js';
import type { Tensor } from '../../src/tensor/index.js';
import { readAll } from '../fixture-utils.js';

export const HF = fileURLToPath(new URL('../fixtures/hf/', import.meta.url));
export const TL = fileURLToPath(new URL('../fixtures/tl/', import.meta.url));
export const DEFAULT_DIR = fileURLToPath(new URL('../../models/default/', import.meta.url));
export const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Every directory the suite builds lives under this one, removed at the end (`cleanup`). */
export const ROOT = mkdtempSync(join(tmpdir(), 'glassbox-faults-'));
let counter = 0;

export function cleanup(): void {
  rmSync(ROOT, { recursive: true, force: true });
}

/** A fresh empty directory under ROOT. */
export function freshDir(label: string): string {
  const d = join(ROOT, `${String(counter++).padStart(4, '0')}-${label.replace(/[^a-zA-Z0-9_.-]+/g, '_').slice(0, 60)}`);
  mkdirSync(d, { recursive: true });
  return d;
}

export type Json = Record<string, unknown>;

export function readConfig(src: string): Json {
  return JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Json;
}

/** Sets (or, with undefined, deletes) the field at a dotted path ('text_config.hidden_size'). */
export function setPath(obj: Json, path: string, value: unknown): Json {
  const parts = path.split('.');
  let o: Json = obj;
  for (const p of parts.slice(0, -1)) o = o[p] as Json;
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return obj;
}

export function getPath(obj: Json, path: string): unknown {
  return path.split('.').reduce<unknown>((o, p) => (o as Json | undefined)?.[p], obj);
}

/**
 * A model directory like `src`: each file a link to the fixture's, except those in `files`
 * (written as given: a string or bytes; null leaves the file out). `config` edits a copy of the
 * config (return the new value; it may be anything, `null` included, and is written as JSON).
 */
export function modelDir(
  src: string,
  label: string,
  options: { config?: (c: Json) => unknown; files?: Record<string, string | Uint8Array | null> } = {},
): string {
  const dir = freshDir(label);
  const files = { ...options.files };
  if (options.config) files['config.json'] = JSON.stringify(options.config(readConfig(src)));
  for (const f of readdirSync(src)) if (!(f in files)) symlinkSync(join(src, f), join(dir, f));
  for (const [f, data] of Object.entries(files)) if (data !== null) writeFileSync(join(dir, f), data);
  return dir;
}

/** The fixture's tensors (float32 and friends, as stored). */
export function tensorsOf(src: string): Map<string, Tensor> {
  return readAll(join(src, 'model.safetensors'));
}

/** Writes `tensors` as `dir/model.safetensors` (replacing a link there). */
export function writeWeights(dir: string, tensors: Map<string, Tensor> | Record<string, Tensor>): void {
  const path = join(dir, 'model.safetensors');
  rmSync(path, { force: true });
  saveSafetensors(path, tensors instanceof Map ? Object.fromEntries(tensors) : tensors);
}

/** A fixed prompt every fixture's vocabulary holds. */
export const PROMPT = [[1, 5, 9, 2, 7, 3, 11, 4]];

const reference = new Map<string, Float32Array>();

/** The fixture's own logits on PROMPT (loaded once). */
export function referenceLogits(src: string): Float32Array {
  let r = reference.get(src);
  if (!r) {
    r = loadFromDirectory(src).forward(PROMPT).dataSync() as Float32Array;
    reference.set(src, r);
  }
  return r;
}

/** Asserts that `model` computes the fixture's logits on PROMPT exactly (the config changed nothing). */
export function sameLogits(src: string): (m: unknown) => void {
  return (m) => {
    const got = (m as HookedTransformer).forward(PROMPT).dataSync() as Float32Array;
    const want = referenceLogits(src);
    if (got.length !== want.length) throw new Error(`logits have ${got.length} values, the fixture's ${want.length}`);
    for (let i = 0; i < got.length; i++)
      if (got[i] !== want[i]) throw new Error(`logit ${i} is ${got[i]}, the fixture computes ${want[i]}`);
  };
}

export function load(dir: string, options: LoadOptions = {}): HookedTransformer {
  return loadFromDirectory(dir, options);
}
