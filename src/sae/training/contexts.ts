/**
 * Contexts for the activation store: fixed-length windows of token ids, addressed by index, so
 * that any context can be produced again later (an exact resume recomputes the activations the
 * shuffle buffer held from the contexts they came from).
 *
 * Sources: a token file (nanoGPT's .bin + .bin.json, `TokenFile`), token ids in memory, a text
 * file tokenized when opened, and the corpus the default model was trained on.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TokenFile } from '../../train/tokens.js';
import { epochPlan, epochWindowCount } from '../../train/windows.js';
import { corpusManifest, loadCorpus, splitCorpus } from '../../train/corpus.js';
import { writeFileAtomic } from '../../io/atomic.js';
import type { ModelTokenizer } from '../../model/hooked.js';
import { arrayTokenReader, textFileTokens, tokenizeDocuments, type TokenReader } from '../features/tokens.js';

/** Fixed-length windows of token ids, addressed by a 0-based index (any index: sources cycle). */
export interface ContextSource {
  /** Tokens per context, the BOS included when one is prepended (SAELens's context_size). */
  readonly contextSize: number;
  /** Whether each context starts with the BOS token. */
  readonly prependBos: boolean;
  /** About how many contexts one pass over the data holds (an epoch; shuffled epochs start at a random phase, so some hold one fewer). */
  readonly contextsPerEpoch: number;
  /** What the contexts come from (SAELens's dataset_path). */
  readonly description: string;
  /** The ids of context `j` (length contextSize). */
  context(j: number): Int32Array;
}

/** Options of `tokenContexts`. */
export interface TokenContextOptions {
  /** Tokens per context (SAELens's context_size), the BOS included. */
  contextSize: number;
  /** Start every context with `bosTokenId` (SAELens's prepend_bos, default true when bosTokenId is given). */
  prependBos?: boolean;
  bosTokenId?: number | null;
  /**
   * Random windows (default): each epoch picks a random phase and a random order of the
   * non-overlapping windows at that phase, as `tokenWindows` does. false: consecutive windows
   * from the start, in order (SAELens's streaming order).
   */
  shuffle?: boolean;
  /** Seed of the window order (default 0). */
  seed?: number;
  /** Names the source in configs and errors. */
  description?: string;
}

/**
 * Contexts cut from a token stream (a TokenFile, a path to one, or ids in memory): windows of
 * contextSize tokens (contextSize - 1 after a prepended BOS).
 */
export function tokenContexts(source: TokenReader | TokenFile | string | ArrayLike<number>, options: TokenContextOptions): ContextSource {
  const reader: TokenReader =
    typeof source === 'string'
      ? TokenFile.open(source)
      : source instanceof TokenFile || isReader(source)
        ? (source as TokenReader)
        : arrayTokenReader(source as ArrayLike<number>);
  const { contextSize } = options;
  if (!(Number.isInteger(contextSize) && contextSize >= 2)) throw new Error(`contextSize must be an integer >= 2, got ${contextSize}`);
  const bos = options.bosTokenId ?? null;
  const prependBos = options.prependBos ?? bos !== null;
  if (prependBos && bos === null) throw new Error('prependBos needs a bosTokenId (the model has none: pass prependBos: false)');
  const span = prependBos ? contextSize - 1 : contextSize;
  if (reader.length < 2 * span)
    throw new Error(`the token stream holds ${reader.length} tokens, too few for contexts of ${contextSize} (at least ${2 * span} needed)`);
  const shuffle = options.shuffle ?? true;
  const seed = options.seed ?? 0;
  const description =
    options.description ?? (typeof source === 'string' ? source : source instanceof TokenFile ? source.path : `${reader.length} tokens`);

  // Per-epoch plans (phase, order), the most recent few cached; epoch starts found by walking.
  const plans = new Map<number, { phase: number; order: Uint32Array | null }>();
  const planOf = (epoch: number): { phase: number; order: Uint32Array | null } => {
    let p = plans.get(epoch);
    if (p) return p;
    p = shuffle ? epochPlan(reader.length, span, seed, epoch) : { phase: 0, order: null };
    plans.set(epoch, p);
    if (plans.size > 4) plans.delete(plans.keys().next().value as number);
    return p;
  };
  // Epoch start indices: starts[e] = sum of counts of epochs < e (counts differ with the phase).
  const starts: number[] = [0];
  const countOf = (epoch: number): number => epochWindowCount(reader.length, span, seed, epoch);
  const locate = (j: number): { epoch: number; index: number } => {
    if (!shuffle) {
      const n = Math.floor(reader.length / span);
      return { epoch: Math.floor(j / n), index: j % n };
    }
    while (starts[starts.length - 1]! <= j) starts.push(starts[starts.length - 1]! + countOf(starts.length - 1));
    let lo = 0;
    let hi = starts.length - 1; // starts[hi] > j
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= j) lo = mid;
      else hi = mid;
    }
    return { epoch: lo, index: j - starts[lo]! };
  };
  return {
    contextSize,
    prependBos,
    contextsPerEpoch: Math.floor(reader.length / span),
    description,
    context(j) {
      if (!(Number.isInteger(j) && j >= 0)) throw new RangeError(`context index must be a non-negative integer, got ${j}`);
      const { epoch, index } = locate(j);
      const plan = planOf(epoch);
      const start = plan.phase + (plan.order ? plan.order[index]! : index) * span;
      const ids = reader.read(start, span);
      if (!prependBos) return ids;
      const out = new Int32Array(contextSize);
      out[0] = bos!;
      out.set(ids, 1);
      return out;
    },
  };
}

function isReader(x: unknown): x is TokenReader {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as TokenReader).read === 'function' &&
    typeof (x as TokenReader).length === 'number' &&
    !ArrayBuffer.isView(x)
  );
}

/**
 * Contexts from a UTF-8 text file, tokenized when opened: the file is cut into paragraphs (at
 * blank lines, each keeping its trailing newlines) so the tokenizer sees pieces of bounded size,
 * and the ids are concatenated.
 */
export function textFileContexts(
  path: string,
  tokenizer: ModelTokenizer,
  options: Omit<TokenContextOptions, 'description'> & { eosTokenId?: number | null },
): ContextSource {
  const { ids } = textFileTokens(path, tokenizer);
  if (options.eosTokenId !== undefined && options.eosTokenId !== null) {
    const withEos = new Int32Array(ids.length + 1);
    withEos.set(ids);
    withEos[ids.length] = options.eosTokenId;
    return tokenContexts(withEos, { ...options, description: path });
  }
  return tokenContexts(ids, { ...options, description: path });
}

/** The tokenized corpus of the default model, per tokenizer and split, in this process. */
const corpusCache = new Map<string, TokenReader>();

/** Where tokenized corpora are kept between runs: $GLASSBOX_CACHE, else $XDG_CACHE_HOME/glassbox or ~/.cache/glassbox. */
export function glassboxCacheDir(): string {
  return process.env.GLASSBOX_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'glassbox');
}

/**
 * Contexts from the corpus the default model was trained on (Moby Dick and the State of the Union
 * addresses, `loadCorpus`), tokenized with `tokenizer` as `glassbox train default` does it: each
 * document without BOS, followed by `eosTokenId` (<|endoftext|>). `split` picks the training
 * (default) or validation documents. Tokenizing takes a while (about 2.7M tokens), so the ids are
 * kept as a token file under `cacheDir` (default `glassboxCacheDir()`), named by a hash of the
 * documents and the tokenizer; `cacheDir: null` keeps them in memory only.
 */
export function defaultCorpusContexts(
  tokenizer: ModelTokenizer,
  options: Omit<TokenContextOptions, 'description'> & {
    eosTokenId: number | null;
    vocabSize: number;
    split?: 'train' | 'validation';
    cacheDir?: string | null;
  },
): ContextSource {
  const split = options.split ?? 'train';
  const all = loadCorpus();
  const corpus = splitCorpus(all)[split];
  const manifest = corpusManifest(all);
  const key = createHash('sha256')
    .update(JSON.stringify([split, options.eosTokenId, manifest.splits[split].sha256]))
    .update(tokenizer.encode('The whale, Ishmael; 1790. \n\n  Mr. President: <|endoftext|>', { prependBos: false }).join(','))
    .digest('hex')
    .slice(0, 16);
  const description = `glassbox default corpus (${split} split: moby-dick, sotu)`;
  let reader = corpusCache.get(key);
  if (!reader) {
    const dir = options.cacheDir === undefined ? glassboxCacheDir() : options.cacheDir;
    const file = dir ? join(dir, `default-corpus-${split}-${key}.bin`) : null;
    if (file && existsSync(file) && existsSync(`${file}.json`)) reader = TokenFile.open(file);
    else {
      const ids = tokenizeDocuments(
        corpus.documents.map((d) => d.text),
        tokenizer,
        options.eosTokenId,
      );
      reader = arrayTokenReader(ids);
      if (file) {
        try {
          mkdirSync(dir!, { recursive: true });
          writeTokenFileSync(file, ids, {
            vocabSize: options.vocabSize,
            eosTokenId: options.eosTokenId,
            source: { corpus: description, key },
          });
        } catch {
          // an unwritable cache only costs the tokenizing next time
        }
      }
    }
    corpusCache.set(key, reader);
  }
  return tokenContexts(reader, { ...options, description });
}

/** Writes a token file (tokens.ts's format) synchronously and atomically: the .bin, then its sidecar. */
function writeTokenFileSync(path: string, ids: Int32Array, meta: { vocabSize: number; eosTokenId: number | null; source: unknown }): void {
  const dtype = meta.vocabSize <= 65536 ? 'uint16' : 'uint32';
  for (const id of ids) if (id < 0 || id >= meta.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary`);
  const data = dtype === 'uint16' ? Uint16Array.from(ids) : Uint32Array.from(ids);
  writeFileAtomic(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const sidecar = {
    dtype,
    length: ids.length,
    vocabSize: meta.vocabSize,
    ...(meta.eosTokenId !== null ? { eosTokenId: meta.eosTokenId } : {}),
    source: meta.source,
  };
  writeFileAtomic(`${path}.json`, `${JSON.stringify(sidecar, null, 2)}\n`);
}
