/**
 * Hugging Face's Rust tokenizers in Node, through the `tokenizers` npm package (napi-rs; prebuilt
 * binaries for Linux, macOS and Windows ship inside the package, nothing is built or downloaded
 * at install). It is optional: where it is not installed, or has no binary for the platform (and
 * in the browser), `Tokenizer` encodes with the pure-JS `@huggingface/tokenizers` alone.
 *
 * Both implement the same `tokenizer.json` pipelines; test/rust-tokenizer.test.ts checks they give
 * the same ids on the fixture tokenizers. The binding's encode calls are asynchronous (they run on
 * libuv's thread pool), so it serves `Tokenizer.encodeMany`, the bulk path; the synchronous
 * `encode` stays on the JS implementation.
 */

import { nodeBuiltin } from '../tensor/node-builtin.js';

/** The part of the binding's encoding that glassbox reads. */
export interface RustEncoding {
  getIds(): number[];
}

/** The part of the binding's `Tokenizer` that glassbox calls. */
export interface RustTokenizer {
  encodeBatch(texts: string[], options: { addSpecialTokens: boolean }): Promise<RustEncoding[]>;
}

interface RustModule {
  Tokenizer: { fromString(json: string): RustTokenizer };
}

let loaded: RustModule | null | undefined;
let reason: string | null = null;

/**
 * The binding, loaded once per process; null where it cannot load (`rustTokenizersUnavailable()`
 * says why). Never throws.
 */
export function rustTokenizers(): RustModule | null {
  if (loaded !== undefined) return loaded;
  try {
    // node:module through getBuiltinModule, not an import, so the Tokenizer bundles for a browser
    // (where there is no binding and this says so).
    const nodeModule = nodeBuiltin('node:module');
    if (!nodeModule) throw new Error('not running in Node.js');
    const mod = nodeModule.createRequire(import.meta.url)('tokenizers') as Partial<RustModule>;
    if (typeof mod?.Tokenizer?.fromString !== 'function')
      throw new Error('the module has no Tokenizer.fromString; check its version (0.23 is known to work)');
    loaded = mod as RustModule;
  } catch (e) {
    reason = `the Rust tokenizers binding (npm package "tokenizers") did not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    loaded = null;
  }
  return loaded;
}

/** Why the binding is not available (null when it is, or before the first attempt to load it). */
export function rustTokenizersUnavailable(): string | null {
  rustTokenizers();
  return reason;
}
