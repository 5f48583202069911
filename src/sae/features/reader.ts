/**
 * One feature's page from a store on disk without loading the store: every tensor of
 * features.safetensors is feature-major ([d_sae, ...]), so a feature's rows are one contiguous
 * byte range per tensor, read with one positioned read each. A page costs a fixed number of small
 * reads (one per tensor, about 15) whatever the dictionary's width or the corpus size, so a
 * workbench or a script opens any feature at once.
 *
 * Opening checks features.json as `loadFeatureStore` does and, unless `verify: false`, the
 * tensors file against the sha256 the JSON vouches for (one streaming pass, bounded memory); the
 * header's shapes and dtypes are checked against the JSON either way.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { SafetensorsFile } from '../../io/safetensors.js';
import { featurePage, type FeaturePage } from './page.js';
import {
  checkTensorsHash,
  openStoreJson,
  storeFromTensors,
  storeLayout,
  tensorMismatch,
  tokenStrings,
  type FeatureStoreMeta,
  type StoreTensor,
} from './store.js';

type Typed = Int32Array | Float32Array | Float64Array;
const ARRAYS = { int32: Int32Array, float32: Float32Array, float64: Float64Array } as const;

/** A feature store opened for page reads. Close it when done. */
export class FeatureStoreReader {
  readonly meta: FeatureStoreMeta;
  /** Bytes read from the tensors file by `page` so far. */
  bytesRead = 0;
  readonly #file: SafetensorsFile;
  readonly #tensorsPath: string;
  readonly #layout: StoreTensor[];
  readonly #strings: Map<number, string> | null;

  private constructor(meta: FeatureStoreMeta, file: SafetensorsFile, tensorsPath: string) {
    this.meta = meta;
    this.#file = file;
    this.#tensorsPath = tensorsPath;
    this.#layout = storeLayout(meta);
    this.#strings = tokenStrings(meta);
  }

  /**
   * Opens the store in `dir`: features.json checked, features.safetensors's header checked against
   * it (and its sha256, unless `verify` is false). Errors name the file.
   */
  static open(dir: string, options: { verify?: boolean } = {}): FeatureStoreReader {
    const { meta, jsonPath, tensorsPath } = openStoreJson(dir);
    if (options.verify ?? true) checkTensorsHash(streamSha256(tensorsPath), meta, tensorsPath, jsonPath);
    const file = SafetensorsFile.open(tensorsPath);
    const reader = new FeatureStoreReader(meta, file, tensorsPath);
    try {
      for (const t of reader.#layout) {
        if (!file.has(t[0])) throw new Error(`${tensorsPath}: tensor '${t[0]}' is missing (present: ${file.keys().join(', ') || 'none'})`);
        const info = file.info(t[0]);
        const bad = tensorMismatch(t, { dtype: info.tensorDtype, shape: info.shape }, tensorsPath, jsonPath);
        if (bad) throw bad;
      }
    } catch (e) {
      file.close();
      throw e;
    }
    return reader;
  }

  /** Whether the store holds each feature's activation samples (stores written before them do not). */
  get hasSamples(): boolean {
    return (this.meta.samples?.n ?? 0) > 0;
  }

  /** Rows `first .. first + count - 1` of tensor `name`: one positioned read. */
  #read(name: string, first: number, count: number): Typed {
    const [, shape, dtype] = this.#layout.find((t) => t[0] === name)!;
    const Arr = ARRAYS[dtype];
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    const bytes = this.#file.readBytesAt(name, first * per * Arr.BYTES_PER_ELEMENT, count * per * Arr.BYTES_PER_ELEMENT);
    this.bytesRead += bytes.byteLength;
    return new Arr(bytes.buffer as ArrayBuffer, bytes.byteOffset, count * per);
  }

  /** [d_sae] every feature's firing count (one read of d_sae numbers: what a summary of the whole dictionary needs). */
  fireCounts(): Float64Array {
    return this.#read('fire_count', 0, this.meta.sae.d_sae) as Float64Array;
  }

  /** The page of feature `index`, equal to `featurePage(loadFeatureStore(dir), index)`: one positioned read per tensor. */
  page(index: number): FeaturePage {
    const d = this.meta.sae.d_sae;
    if (!(Number.isInteger(index) && index >= 0 && index < d))
      throw new RangeError(`feature ${index} is out of range (the store ${this.#tensorsPath} has features 0..${d - 1})`);
    const rows = new Map(this.#layout.map(([name]) => [name, this.#read(name, index, 1)]));
    return {
      ...featurePage(
        storeFromTensors(this.meta, 1, (name) => rows.get(name)!, this.#strings),
        0,
      ),
      index,
    };
  }

  close(): void {
    this.#file.close();
  }
}

/** sha256 (hex) of a file, read in 1 MiB pieces. */
function streamSha256(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
