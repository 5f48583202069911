/**
 * Activation caches on disk: `cacheActivations` writes an activation source's stream (an
 * `ActivationStore`'s, already shuffled by its buffer) to safetensors shards
 * (`shard_00000.safetensors`, ..., each written atomically, then `manifest.json` last, so a
 * directory without it is an incomplete cache), and `CachedActivationStore` trains from them
 * without the model: shards are read one at a time in a seeded order that changes every epoch,
 * rows shuffled within each shard, and its state (epoch, shard, row) resumes exactly.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PRNG, permutation, type Tensor } from '../../tensor/index.js';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { readJsonFile } from '../formats.js';
import {
  batchRows,
  concatRows,
  positiveInt,
  refillSeed,
  type ActivationBatch,
  type ActivationMetadata,
  type ActivationSource,
} from './activation-store.js';

/** The manifest of an activation cache directory. */
export interface ActivationCacheManifest {
  format: 'glassbox-activation-cache';
  version: 1;
  /** Tensor names in each shard: the hook names. */
  hook_name: string | null;
  hook_name_out: string | null;
  d_in: number;
  d_out: number | null;
  dtype: 'float32';
  total_tokens: number;
  shards: { file: string; tokens: number }[];
  metadata: ActivationMetadata;
}

export const ACTIVATION_MANIFEST = 'manifest.json';

/** Options of `cacheActivations`. */
export interface CacheActivationsOptions {
  /** Activations to write (rounded up to whole batches of the source). */
  totalTokens: number;
  /** Activations per shard (default 65536, rounded up to whole batches). */
  shardTokens?: number;
  /** Called after each shard with the tokens written so far. */
  onShard?: (written: number, total: number) => void;
}

/**
 * Writes `totalTokens` activations from `source` (an ActivationStore: already shuffled by its
 * buffer) to `dir` as `shard_00000.safetensors`, ... (tensors named by the hook names, [n, d]
 * float32), each written atomically, then `manifest.json` (atomically, last: a directory without
 * it is an incomplete cache). Shards of an earlier incomplete run are replaced.
 */
export function cacheActivations(source: ActivationSource, dir: string, options: CacheActivationsOptions): ActivationCacheManifest {
  const total = positiveInt('totalTokens', options.totalTokens);
  const B = source.batchSize;
  const perShard = Math.max(1, Math.ceil((options.shardTokens ?? 65536) / B));
  const nBatches = Math.ceil(total / B);
  const inName = source.metadata.hook_name ?? 'x';
  const outName = source.metadata.hook_name_out ?? (source.dOut ? 'target' : null);
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, ACTIVATION_MANIFEST)))
    throw new Error(`${dir} already holds an activation cache (${ACTIVATION_MANIFEST}); use a new directory`);
  for (const f of readdirSync(dir)) if (/^shard_\d{5}\.safetensors$/.test(f)) rmSync(join(dir, f));
  const shards: ActivationCacheManifest['shards'] = [];
  let done = 0;
  while (done < nBatches) {
    const count = Math.min(perShard, nBatches - done);
    const xs: Tensor[] = [];
    const ys: Tensor[] = [];
    for (let i = 0; i < count; i++) {
      const b = source.next();
      xs.push(b.x);
      if (b.target) ys.push(b.target);
    }
    const file = `shard_${String(shards.length).padStart(5, '0')}.safetensors`;
    const tensors: Record<string, Tensor> = { [inName]: concatRows(xs) };
    if (outName && ys.length) tensors[outName] = concatRows(ys);
    saveSafetensors(join(dir, file), tensors);
    shards.push({ file, tokens: count * B });
    done += count;
    options.onShard?.(done * B, nBatches * B);
  }
  const manifest: ActivationCacheManifest = {
    format: 'glassbox-activation-cache',
    version: 1,
    hook_name: inName,
    hook_name_out: outName,
    d_in: source.dIn,
    d_out: source.dOut ?? null,
    dtype: 'float32',
    total_tokens: nBatches * B,
    shards,
    metadata: source.metadata,
  };
  writeFileAtomic(join(dir, ACTIVATION_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Reads and checks an activation cache's manifest. */
export function readActivationManifest(dir: string): ActivationCacheManifest {
  const file = join(dir, ACTIVATION_MANIFEST);
  const m = readJsonFile(file, {
    missing: 'missing (not an activation cache, or its writing did not finish)',
    unreadable: 'not valid JSON',
  }) as ActivationCacheManifest;
  if (m?.format !== 'glassbox-activation-cache' || !Array.isArray(m.shards) || m.shards.length === 0)
    throw new Error(`${file}: not a glassbox activation cache manifest`);
  for (const s of m.shards) if (!existsSync(join(dir, s.file))) throw new Error(`${join(dir, s.file)}: missing (listed in ${file})`);
  return m;
}

/** A shard in memory, with its row order for the current epoch. */
interface LoadedShard {
  key: string;
  x: Float32Array;
  y: Float32Array | null;
  perm: Uint32Array | null;
  n: number;
}

/** Options of `CachedActivationStore`. */
export interface CachedStoreOptions {
  /** Rows per batch (default 4096). */
  trainBatchSizeTokens?: number;
  /** Reshuffle the shard order and the rows within each shard every epoch (default true). */
  shuffle?: boolean;
  seed?: number;
}

/**
 * Trains from an activation cache (`cacheActivations`): shards are read one at a time, in a
 * seeded order that changes every epoch, rows shuffled within the shard; the state (epoch, shard,
 * row) is exact.
 */
export class CachedActivationStore implements ActivationSource {
  readonly batchSize: number;
  readonly dIn: number;
  readonly dOut: number | undefined;
  readonly metadata: ActivationMetadata;
  readonly manifest: ActivationCacheManifest;
  readonly dir: string;
  readonly #shuffle: boolean;
  readonly #seed: number;
  #epoch = 0;
  #shard = 0; // position in the epoch's shard order
  #row = 0;
  #order: Uint32Array = new Uint32Array(0);
  #loaded: LoadedShard | null = null;

  constructor(dir: string, options: CachedStoreOptions = {}) {
    this.dir = dir;
    this.manifest = readActivationManifest(dir);
    this.batchSize = positiveInt('trainBatchSizeTokens', options.trainBatchSizeTokens ?? 4096);
    this.dIn = this.manifest.d_in;
    this.dOut = this.manifest.d_out ?? undefined;
    this.metadata = this.manifest.metadata;
    this.#shuffle = options.shuffle ?? true;
    this.#seed = options.seed ?? 0;
    this.#order = this.#epochOrder(0);
  }

  #epochOrder(epoch: number): Uint32Array {
    const n = this.manifest.shards.length;
    if (!this.#shuffle) return Uint32Array.from({ length: n }, (_, i) => i);
    return permutation(n, new PRNG(refillSeed(this.#seed, 0x10000 + epoch)));
  }

  #load(): LoadedShard {
    const index = this.#order[this.#shard]!;
    const key = `${this.#epoch}:${index}`;
    if (this.#loaded?.key === key) return this.#loaded;
    const shard = this.manifest.shards[index]!;
    const path = join(this.dir, shard.file);
    const t = loadSafetensors(path);
    const x = t.get(this.manifest.hook_name ?? 'x');
    if (!x || x.rank !== 2 || x.shape[1] !== this.dIn)
      throw new Error(`${path}: expected '${this.manifest.hook_name}' [n, ${this.dIn}] (see ${ACTIVATION_MANIFEST})`);
    const yName = this.manifest.hook_name_out;
    const y = yName ? t.get(yName) : undefined;
    if (yName && (!y || y.rank !== 2 || y.shape[1] !== this.dOut || y.shape[0] !== x.shape[0]))
      throw new Error(`${path}: expected '${yName}' [${x.shape[0]}, ${this.dOut}]`);
    const n = x.shape[0]!;
    const perm = this.#shuffle ? permutation(n, new PRNG(refillSeed(this.#seed ^ index, this.#epoch))) : null;
    this.#loaded = {
      key,
      x: x.cast('float32').dataSync() as Float32Array,
      y: y ? (y.cast('float32').dataSync() as Float32Array) : null,
      perm,
      n,
    };
    return this.#loaded;
  }

  next(): ActivationBatch {
    const B = this.batchSize;
    const dIn = this.dIn;
    const dOut = this.dOut ?? 0;
    const { x, y, batch } = batchRows(B, dIn, dOut);
    for (let r = 0; r < B; r++) {
      let s = this.#load();
      if (this.#row >= s.n) {
        this.#row = 0;
        this.#shard++;
        if (this.#shard >= this.#order.length) {
          this.#shard = 0;
          this.#epoch++;
          this.#order = this.#epochOrder(this.#epoch);
        }
        s = this.#load();
      }
      const src = s.perm ? s.perm[this.#row]! : this.#row;
      x.set(s.x.subarray(src * dIn, (src + 1) * dIn), r * dIn);
      if (y && s.y) y.set(s.y.subarray(src * dOut, (src + 1) * dOut), r * dOut);
      this.#row++;
    }
    return batch();
  }

  getState(): { epoch: number; shard: number; row: number } {
    return { epoch: this.#epoch, shard: this.#shard, row: this.#row };
  }

  setState(state: unknown): void {
    const s = state as { epoch: number; shard: number; row: number };
    if (![s?.epoch, s?.shard, s?.row].every((v) => Number.isInteger(v) && v >= 0))
      throw new Error('CachedActivationStore.setState: expected { epoch, shard, row }');
    this.#epoch = s.epoch;
    this.#shard = s.shard;
    this.#row = s.row;
    this.#order = this.#epochOrder(s.epoch);
  }
}
