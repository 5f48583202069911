/**
 * Checkpoints: one `model.safetensors`, or shards listed by `model.safetensors.index.json`
 * (`{"metadata": {...}, "weight_map": {tensor name: shard file}}`), behind one API.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import type { Tensor } from '../tensor/index.js';
import { floatTensor } from './float-read.js';
import { readFloatTensorsParallel, type ParallelOptions, type ReadJob } from './parallel-read.js';
import {
  SafetensorsError,
  SafetensorsFile,
  nearestNames,
  unknownTensorProblem,
  type OpenOptions,
  type ParsedHeader,
  type ReadOptions,
  type TensorInfo,
} from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface CheckpointOptions extends OpenOptions {
  /**
   * 'eager' (default): at open, read and validate every shard's header and check that each
   * tensor the index maps to a shard is in it. 'lazy': only check that the shards exist; a
   * shard's header is read and checked when one of its tensors is first asked for.
   * Either way a shard's file descriptor is opened on the first read from it.
   */
  validate?: 'eager' | 'lazy';
}

/** @internal */
export interface Shard {
  /** the name in the index (relative to the index's directory) */
  readonly name: string;
  readonly path: string;
  /** tensors the index maps to this shard */
  readonly names: string[];
  file: SafetensorsFile | null;
}

/** A checkpoint, single-file or sharded: the tensors of all its files under one set of names. */
export class Checkpoint {
  /** The file opened: the safetensors file, or the index of a sharded checkpoint. */
  readonly path: string;
  /** True when the checkpoint is sharded (opened through an index). */
  readonly sharded: boolean;
  /** The safetensors files, in the order the index first mentions them. */
  readonly files: readonly string[];
  /**
   * Sharded: the index's `metadata` object (often `{ total_size }`). Single file: the file's
   * `__metadata__` string map.
   */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly #shards: Shard[];
  readonly #where: Map<string, Shard>;
  readonly #sorted: string[];
  readonly #options: OpenOptions;
  #closed = false;

  /** @internal use `openCheckpoint` */
  constructor(
    path: string,
    sharded: boolean,
    shards: Shard[],
    where: Map<string, Shard>,
    metadata: Record<string, unknown>,
    options: OpenOptions,
  ) {
    this.path = path;
    this.sharded = sharded;
    this.#shards = shards;
    this.#where = where;
    this.#sorted = [...where.keys()].sort();
    this.#options = options;
    this.files = Object.freeze(shards.map((s) => s.path));
    this.metadata = Object.freeze({ ...metadata });
  }

  /** Tensor names, sorted. */
  keys(): string[] {
    return [...this.#sorted];
  }

  has(name: string): boolean {
    return this.#where.has(name);
  }

  get size(): number {
    return this.#where.size;
  }

  /** The path of the safetensors file that holds `name`. */
  fileOf(name: string): string {
    return this.#shard(name).path;
  }

  /** dtype, shape and byte length of a tensor, from its file's header (no data is read). */
  info(name: string): TensorInfo {
    return this.#file(name).info(name);
  }

  /** Reads one tensor (see `SafetensorsFile.read` for the dtypes and options). */
  read(name: string, options: ReadOptions = {}): Tensor {
    return this.#file(name).read(name, options);
  }

  /**
   * Reads many tensors at once: the floating-point ones (F32, F16, BF16) on several threads (the
   * main thread and workers; see parallel-read.ts), the others one by one. Same tensors as `read`.
   */
  readTensors(names: readonly string[], options: ReadOptions & ParallelOptions = {}): Map<string, Tensor> {
    const weightDtype = options.weightDtype ?? 'float32';
    if (weightDtype !== 'float32' && weightDtype !== 'stored')
      throw new SafetensorsError(this.path, `weightDtype must be 'float32' or 'stored', got ${JSON.stringify(weightDtype)}`);
    const jobs: ReadJob[] = [];
    const jobNames = new Map<ReadJob, string>();
    for (const name of names) {
      const file = this.#file(name);
      const place = file._place(name);
      if (!place) continue;
      const job = { ...place, path: file.path };
      jobs.push(job);
      jobNames.set(job, name);
    }
    const data = readFloatTensorsParallel(
      jobs,
      weightDtype,
      options,
      (job, problem) => new SafetensorsError(job.path, problem, jobNames.get(job)),
    );
    const read = new Map<string, Tensor>();
    jobs.forEach((job, i) => read.set(jobNames.get(job)!, floatTensor(job.shape, data[i]!)));
    return new Map(names.map((n) => [n, read.get(n) ?? this.read(n, options)]));
  }

  /** The raw little-endian bytes of one tensor, as stored. */
  readBytes(name: string): Uint8Array {
    return this.#file(name).readBytes(name);
  }

  /** Closes every open shard. `keys` and `has` keep working; `info` and reads throw. */
  close(): void {
    for (const s of this.#shards) s.file?.close();
    this.#closed = true;
  }

  #shard(name: string): Shard {
    const s = this.#where.get(name);
    if (s === undefined) throw new SafetensorsError(this.path, unknownTensorProblem(name, this.#sorted, 'this checkpoint'), name);
    return s;
  }

  #file(name: string): SafetensorsFile {
    const s = this.#shard(name);
    if (this.#closed) throw new SafetensorsError(this.path, 'cannot read: the checkpoint was closed', name);
    if (s.file === null) s.file = SafetensorsFile._deferred(checkShard(this.path, s, SafetensorsFile._parse(s.path, this.#options)));
    return s.file;
  }
}

/** Checks that every tensor the index maps to shard `s` is in its header. */
function checkShard(indexPath: string, s: Shard, h: ParsedHeader): ParsedHeader {
  for (const name of s.names)
    if (!h.entries.has(name)) {
      const near = nearestNames(name, h.sortedNames);
      throw new SafetensorsError(
        indexPath,
        `the index maps it to shard '${s.name}', which has no such tensor` +
          (near.length > 0 ? ` (nearest there: ${near.map((n) => `'${n}'`).join(', ')})` : ' (the shard holds no tensors)'),
        name,
      );
    }
  return h;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Opens a checkpoint. `path` is a directory holding `model.safetensors` or
 * `model.safetensors.index.json` (when it holds neither, the only `*.safetensors.index.json`
 * or, failing that, the only `*.safetensors` file is used), or the path of a safetensors file or
 * an index file itself. Shards must exist and hold every tensor the index maps to them.
 */
export function openCheckpoint(path: string, options: CheckpointOptions = {}): Checkpoint {
  let target = path;
  let stat;
  try {
    stat = statSync(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot open the checkpoint (${e instanceof Error ? e.message : String(e)})`, undefined, { cause: e });
  }
  if (stat.isDirectory()) {
    const single = join(path, SINGLE_FILE);
    const index = join(path, INDEX_FILE);
    if (isFile(single)) target = single;
    else if (isFile(index)) target = index;
    else {
      const listing = readdirSync(path);
      const indexes = listing.filter((f) => f.endsWith('.safetensors.index.json'));
      const files = listing.filter((f) => f.endsWith('.safetensors'));
      if (indexes.length === 1) target = join(path, indexes[0]!);
      else if (indexes.length === 0 && files.length === 1) target = join(path, files[0]!);
      else {
        const found = [...indexes, ...files];
        throw new SafetensorsError(
          path,
          `no ${SINGLE_FILE} or ${INDEX_FILE} in this directory` +
            (found.length > 0
              ? ` (found ${found.map((f) => `'${f}'`).join(', ')}: open one of them by path)`
              : ' (it holds no safetensors files)'),
        );
      }
    }
  }
  if (target.endsWith('.json')) return openSharded(target, options);
  const file = SafetensorsFile.open(target, options);
  const shard: Shard = { name: target, path: target, names: file.keys(), file };
  const where = new Map(shard.names.map((n) => [n, shard]));
  return new Checkpoint(target, false, [shard], where, file.metadata, options);
}

function openSharded(indexPath: string, options: CheckpointOptions): Checkpoint {
  const fail = (problem: string, tensor?: string): SafetensorsError => new SafetensorsError(indexPath, problem, tensor);
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new SafetensorsError(indexPath, `cannot read the index (${e instanceof Error ? e.message : String(e)})`, undefined, { cause: e });
  }
  if (typeof index !== 'object' || index === null || Array.isArray(index)) throw fail('the index is not a JSON object');
  const { weight_map: weightMap, metadata } = index as Record<string, unknown>;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap))
    throw fail('the index has no "weight_map" object (tensor name -> shard file)');
  if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata)))
    throw fail('the index\'s "metadata" is not a JSON object');

  const dir = join(indexPath, '..');
  const shards = new Map<string, Shard>();
  const where = new Map<string, Shard>();
  for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || file === '') throw fail(`the weight_map entry ${JSON.stringify(file)} is not a file name`, name);
    let shard = shards.get(file);
    if (shard === undefined) {
      const norm = normalize(file);
      if (isAbsolute(file) || norm === '..' || norm.startsWith(`..${sep}`))
        throw fail(`the weight_map names shard '${file}', which is outside the checkpoint directory`, name);
      shard = { name: file, path: join(dir, file), names: [], file: null };
      shards.set(file, shard);
    }
    shard.names.push(name);
    where.set(name, shard);
  }
  const list = [...shards.values()];
  for (const s of list)
    if (!existsSync(s.path) || !isFile(s.path))
      throw fail(
        `shard '${s.name}' does not exist (looked for ${s.path}); it should hold ${s.names.length} tensor${s.names.length === 1 ? '' : 's'}`,
        s.names[0],
      );
  if ((options.validate ?? 'eager') === 'eager')
    for (const s of list) s.file = SafetensorsFile._deferred(checkShard(indexPath, s, SafetensorsFile._parse(s.path, options)));
  return new Checkpoint(indexPath, true, list, where, (metadata ?? {}) as Record<string, unknown>, options);
}
