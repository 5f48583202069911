/**
 * Checkpoints of a feature collection (`collectFeatures` with `checkpoint`), so a long run
 * (a million tokens through a 16k-wide dictionary) resumes where it stopped instead of starting
 * over. A checkpoint is the collector's whole state after a number of batches, in a directory:
 * - `collector.safetensors`: the collector's running arrays (heaps, windows, histograms, counts);
 * - `collector.json`: the batches done, the collector's counters, the run's fingerprint (the SAE's
 *   weights digest and config, the context plan, the collector options) and the tensors' sha256.
 * Written atomically, tensors first, then the JSON that vouches for them. A resume whose run
 * differs from the checkpoint's (another SAE, corpus, context size, top-k, ...) is refused,
 * naming what differs.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { tensor, type Tensor } from '../../tensor/index.js';
import { fingerprintDiff } from '../../train/fingerprint.js';
import { readJsonFile } from '../formats.js';
import type { CollectorArray, CollectorSnapshot } from './collector.js';

export const CHECKPOINT_JSON = 'collector.json';
export const CHECKPOINT_TENSORS = 'collector.safetensors';
const FORMAT = 'glassbox-feature-collection-checkpoint';

interface CheckpointJson {
  format: typeof FORMAT;
  version: 1;
  batchesDone: number;
  counters: CollectorSnapshot['counters'];
  run: unknown;
  tensorsSha256: string;
}

const DTYPES = { Int32Array: 'int32', Float32Array: 'float32', Float64Array: 'float64' } as const;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Writes the collector's state after `batchesDone` batches of the run `run` (a JSON fingerprint).
 * `snapshot.arrays` may hold several collectors' arrays under distinct names (the transcoder
 * collector keeps one collector per layer in one checkpoint, so the layers never disagree).
 */
export function saveCollectionCheckpoint(
  dir: string,
  snapshot: { counters: CollectorSnapshot['counters']; arrays: Readonly<Record<string, CollectorArray>> },
  batchesDone: number,
  run: unknown,
): void {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(snapshot.arrays) as [string, CollectorArray][])
    tensors[name] = tensor(a, [a.length], DTYPES[a.constructor.name as keyof typeof DTYPES]);
  const path = join(dir, CHECKPOINT_TENSORS);
  saveSafetensors(path, tensors);
  const json: CheckpointJson = {
    format: FORMAT,
    version: 1,
    batchesDone,
    counters: snapshot.counters,
    run,
    tensorsSha256: sha256(readFileSync(path)),
  };
  writeFileAtomic(join(dir, CHECKPOINT_JSON), `${JSON.stringify(json)}\n`);
}

/**
 * The checkpoint in `dir` for the run `run`, or null when there is none. One written by another
 * run (its fingerprint differs), or whose files do not match, is an error naming the file.
 */
export function loadCollectionCheckpoint(dir: string, run: unknown): { snapshot: CollectorSnapshot; batchesDone: number } | null {
  const jsonPath = join(dir, CHECKPOINT_JSON);
  if (!existsSync(jsonPath)) return null;
  const raw = readJsonFile(jsonPath, { missing: 'not found', unreadable: 'cannot read the checkpoint' }) as Partial<CheckpointJson> | null;
  if (!raw || raw.format !== FORMAT || raw.version !== 1)
    throw new Error(
      `${jsonPath}: not a feature-collection checkpoint this glassbox reads (format ${JSON.stringify(raw?.format)}, version ${JSON.stringify(raw?.version)})`,
    );
  const diff = fingerprintDiff(raw.run, JSON.parse(JSON.stringify(run)));
  if (diff.length > 0)
    throw new Error(
      `${jsonPath}: the checkpoint is of another run (${diff.join('; ')}); delete ${dir} to start over, or run with the checkpoint's settings`,
    );
  if (!(Number.isSafeInteger(raw.batchesDone) && raw.batchesDone! >= 0))
    throw new Error(`${jsonPath}: 'batchesDone' must be a non-negative integer`);
  const path = join(dir, CHECKPOINT_TENSORS);
  if (!existsSync(path)) throw new Error(`${path}: not found (the collector state ${jsonPath} vouches for)`);
  const hash = sha256(readFileSync(path));
  if (hash !== raw.tensorsSha256)
    throw new Error(`${path}: does not match ${jsonPath} (sha256 ${hash.slice(0, 12)}...): the files come from different writes`);
  const tensors = loadSafetensors(path);
  const arrays: Record<string, CollectorArray> = {};
  for (const [name, t] of tensors) arrays[name] = t.dataSync() as CollectorArray;
  return { snapshot: { counters: raw.counters!, arrays: arrays as unknown as CollectorSnapshot['arrays'] }, batchesDone: raw.batchesDone! };
}

/** Removes a checkpoint (once its run has written the store). */
export function removeCollectionCheckpoint(dir: string): void {
  rmSync(join(dir, CHECKPOINT_JSON), { force: true });
  rmSync(join(dir, CHECKPOINT_TENSORS), { force: true });
  // The directory too, when nothing else is in it.
  if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}
