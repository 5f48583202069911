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
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile } from '../../io/safetensors.js';
import { readJsonFile } from '../formats.js';
import type { FeatureStats } from './collector.js';
import { featurePage, type FeaturePage } from './page.js';
import { checkMeta, FEATURES_JSON, FEATURES_TENSORS, type FeatureStore, type FeatureStoreMeta } from './store.js';

type Typed = Int32Array | Float32Array | Float64Array;
const ARRAYS = { int32: Int32Array, float32: Float32Array, float64: Float64Array } as const;

/** A feature store opened for page reads. Close it when done. */
export class FeatureStoreReader {
  readonly meta: FeatureStoreMeta;
  /** Bytes read from the tensors file by `page` so far. */
  bytesRead = 0;
  readonly #file: SafetensorsFile;
  readonly #tensorsPath: string;
  readonly #strings: Map<number, string> | null;

  private constructor(meta: FeatureStoreMeta, file: SafetensorsFile, tensorsPath: string) {
    this.meta = meta;
    this.#file = file;
    this.#tensorsPath = tensorsPath;
    const ts = meta.token_strings;
    this.#strings = ts ? new Map(ts.ids.map((id, i) => [id, ts.strings[i]!])) : null;
  }

  /**
   * Opens the store in `dir`: features.json checked, features.safetensors's header checked against
   * it (and its sha256, unless `verify` is false). Errors name the file.
   */
  static open(dir: string, options: { verify?: boolean } = {}): FeatureStoreReader {
    const jsonPath = join(dir, FEATURES_JSON);
    const raw = readJsonFile(jsonPath, {
      missing: `not found (a feature store directory holds ${FEATURES_JSON} and ${FEATURES_TENSORS})`,
      unreadable: 'cannot read the feature store description',
    });
    const meta = checkMeta(raw, jsonPath);
    const tensorsPath = join(dir, meta.tensorsFile);
    if (!existsSync(tensorsPath)) throw new Error(`${tensorsPath}: not found (the tensors of the feature store ${jsonPath} describes)`);
    if (options.verify ?? true) {
      const hash = streamSha256(tensorsPath);
      if (hash !== meta.tensorsSha256)
        throw new Error(
          `${tensorsPath}: does not match ${jsonPath} (its sha256 is ${hash.slice(0, 12)}..., the JSON expects ${meta.tensorsSha256.slice(0, 12)}...): the files come from different runs, or one was changed`,
        );
    }
    const file = SafetensorsFile.open(tensorsPath);
    const reader = new FeatureStoreReader(meta, file, tensorsPath);
    try {
      for (const [name, shape, dtype] of reader.#layout()) {
        if (!file.has(name)) throw new Error(`${tensorsPath}: tensor '${name}' is missing (present: ${file.keys().join(', ') || 'none'})`);
        const info = file.info(name);
        if (info.tensorDtype !== dtype || info.shape.length !== shape.length || info.shape.some((x, i) => x !== shape[i]))
          throw new Error(
            `${tensorsPath}: tensor '${name}' is ${info.tensorDtype} [${info.shape.join(', ')}], but ${jsonPath} implies ${dtype} [${shape.join(', ')}]`,
          );
      }
    } catch (e) {
      file.close();
      throw e;
    }
    return reader;
  }

  /** The tensors a page reads: name, full shape, dtype. */
  #layout(): [string, number[], keyof typeof ARRAYS][] {
    const m = this.meta;
    const d = m.sae.d_sae;
    const k = m.top_k;
    const W = m.window.before + 1 + m.window.after;
    const B = m.histogram.bins;
    const out: [string, number[], keyof typeof ARRAYS][] = [
      ['top_tokens', [d, k, W], 'int32'],
      ['top_acts', [d, k, W], 'float32'],
      ['top_values', [d, k], 'float32'],
      ['top_contexts', [d, k], 'float64'],
      ['top_positions', [d, k], 'int32'],
      ['histogram', [d, B], 'float64'],
      ['fire_count', [d], 'float64'],
      ['act_sum', [d], 'float64'],
      ['max_act', [d], 'float32'],
      ['density', [d], 'float32'],
    ];
    if ('path' in m.logit_effects) {
      const n = m.logit_effects.n;
      out.push(['logit_pos_ids', [d, n], 'int32'], ['logit_pos_values', [d, n], 'float32']);
      out.push(['logit_neg_ids', [d, n], 'int32'], ['logit_neg_values', [d, n], 'float32']);
    }
    return out;
  }

  /** Feature `index`'s row of every tensor: one positioned read each. */
  #rows(index: number): Map<string, Typed> {
    const rows = new Map<string, Typed>();
    for (const [name, shape, dtype] of this.#layout()) {
      const Arr = ARRAYS[dtype];
      const per = shape.slice(1).reduce((a, b) => a * b, 1);
      const bytes = this.#file.readBytesAt(name, index * per * Arr.BYTES_PER_ELEMENT, per * Arr.BYTES_PER_ELEMENT);
      this.bytesRead += bytes.byteLength;
      rows.set(name, new Arr(bytes.buffer as ArrayBuffer, 0, per));
    }
    return rows;
  }

  /** The page of feature `index`, equal to `featurePage(loadFeatureStore(dir), index)`. */
  page(index: number): FeaturePage {
    const m = this.meta;
    const d = m.sae.d_sae;
    if (!(Number.isInteger(index) && index >= 0 && index < d))
      throw new RangeError(`feature ${index} is out of range (the store ${this.#tensorsPath} has features 0..${d - 1})`);
    const r = this.#rows(index);
    const get = <T extends Typed>(name: string) => r.get(name) as T;
    const stats: FeatureStats = {
      dSae: 1,
      topK: m.top_k,
      before: m.window.before,
      after: m.window.after,
      window: m.window.before + 1 + m.window.after,
      histogram: { min: m.histogram.min, max: m.histogram.max, bins: m.histogram.bins, edges: m.histogram.edges },
      tokens: m.corpus.tokens_counted,
      contexts: m.corpus.contexts,
      topTokens: get('top_tokens'),
      topActs: get('top_acts'),
      topValues: get('top_values'),
      topContexts: get('top_contexts'),
      topPositions: get('top_positions'),
      histogramCounts: get('histogram'),
      fireCount: get('fire_count'),
      actSum: get('act_sum'),
      maxAct: get('max_act'),
    };
    const one: FeatureStore = {
      meta: m,
      stats,
      density: get('density'),
      logits:
        'path' in m.logit_effects
          ? {
              n: m.logit_effects.n,
              path: m.logit_effects.path,
              posIds: get('logit_pos_ids'),
              posValues: get('logit_pos_values'),
              negIds: get('logit_neg_ids'),
              negValues: get('logit_neg_values'),
            }
          : null,
      strings: this.#strings,
    };
    return { ...featurePage(one, 0), index };
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
