/**
 * Token contexts for SAEs, the one source of them for training, evaluation and feature pages:
 * fixed-length windows of a token stream, each optionally starting with the BOS token, addressed
 * by a 0-based index so any context can be produced again later (an exact resume of the activation
 * store recomputes the activations its buffer held from the contexts they came from; a feature
 * page points back to the context it shows).
 *
 * 1. Streams: a token file (nanoGPT's .bin + .bin.json, `TokenFile`, or its path), any
 *    `TokenReader`, ids in memory, a text file tokenized in paragraphs (`textFileTokens`), the
 *    default model's corpus (`defaultCorpusTokens`, `defaultCorpusContexts`).
 * 2. Cutting (`tokenContexts`): windows of contextSize tokens (contextSize - 1 after a prepended
 *    BOS); in shuffled epochs (the activation store's default: `epochPlan`'s random phase and
 *    order, as `tokenWindows` does) or consecutive from the start, in order.
 * 3. Batching (`planContexts`, `contextBatches`): the contexts of one pass in order, as
 *    [batch, contextSize] rows for a model's forward pass (evaluation and feature collection).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { HookedTransformer, ModelTokenizer } from '../model/hooked.js';
import { tensor, type Tensor } from '../tensor/index.js';
import { corpusManifest, loadCorpus, splitCorpus } from '../train/corpus.js';
import { TokenFile } from '../train/tokens.js';
import { epochPlan, epochWindowCount } from '../train/windows.js';
import { writeFileAtomic } from '../io/atomic.js';

// ---------------------------------------------------------------------------------------------
// Streams

/** Something that reads `count` token ids at `start` (a `TokenFile` is one). */
export interface TokenReader {
  readonly length: number;
  read(start: number, count: number): Int32Array;
}

/** Wraps ids in memory as a TokenReader. */
export function arrayTokenReader(ids: ArrayLike<number>): TokenReader {
  const data = ids instanceof Int32Array ? ids : Int32Array.from(ids);
  return {
    length: data.length,
    read(start, count) {
      if (start < 0 || count < 0 || start + count > data.length)
        throw new RangeError(`cannot read ${count} tokens at ${start} (there are ${data.length})`);
      return data.slice(start, start + count);
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

/** Tokenizes documents one after another (each followed by `eosTokenId` when given), without BOS. */
export function tokenizeDocuments(texts: Iterable<string>, tokenizer: ModelTokenizer, eosTokenId: number | null = null): Int32Array {
  const chunks: number[][] = [];
  let n = 0;
  for (const text of texts) {
    const ids = tokenizer.encode(text, { prependBos: false });
    if (eosTokenId !== null) ids.push(eosTokenId);
    chunks.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** The documents of the default model's corpus split, tokenized as `glassbox train default` does: each without BOS, followed by `eosTokenId`. */
function corpusTokens(
  tokenizer: ModelTokenizer,
  split: 'train' | 'validation',
  eosTokenId: number | null,
  all = loadCorpus(),
): { ids: Int32Array; documents: number } {
  const corpus = splitCorpus(all)[split];
  const ids = tokenizeDocuments(
    corpus.documents.map((d) => d.text),
    tokenizer,
    eosTokenId,
  );
  return { ids, documents: corpus.documents.length };
}

/**
 * The default model's corpus (Moby Dick and the State of the Union addresses), the given split
 * (validation by default: text the default model did not train on), tokenized as `glassbox train
 * default` does: each document without BOS, followed by `eosTokenId`.
 */
export function defaultCorpusTokens(
  tokenizer: ModelTokenizer,
  options: { eosTokenId: number | null; split?: 'train' | 'validation' },
): { ids: Int32Array; description: string } {
  const split = options.split ?? 'validation';
  const { ids, documents } = corpusTokens(tokenizer, split, options.eosTokenId);
  return { ids, description: `glassbox default corpus, ${split} split (moby-dick, sotu; ${documents} documents)` };
}

/**
 * A UTF-8 text file tokenized in paragraphs (cut at blank lines, each keeping its trailing
 * newlines, so the tokenizer sees pieces of bounded size), concatenated, without BOS.
 */
export function textFileTokens(path: string, tokenizer: ModelTokenizer): { ids: Int32Array; description: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read the text file (${e instanceof Error ? e.message : String(e)})`);
  }
  return { ids: tokenizeDocuments(text.split(/(?<=\n\s*\n)/), tokenizer), description: path };
}

/**
 * The ids excluded from per-token statistics: `true` for the model's BOS, EOS and padding ids,
 * a list of ids, or none (`false`).
 */
export function specialTokenIds(model: HookedTransformer, exclude: boolean | readonly number[] | undefined): Set<number> {
  if (exclude === false || exclude === undefined) return new Set();
  if (exclude === true) {
    const c = model.cfg;
    return new Set([c.bosTokenId, c.eosTokenId, c.padTokenId].filter((x): x is number => x !== null && x !== undefined));
  }
  return new Set(exclude);
}

// ---------------------------------------------------------------------------------------------
// Contexts

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

/**
 * Already-cut contexts, addressed by index (a `ContextSource` is one): `planContexts` uses them as
 * they are, in index order, `contextSize` and BOS handling included.
 */
export type IndexedContexts = Pick<ContextSource, 'contextSize' | 'contextsPerEpoch' | 'context'> &
  Partial<Pick<ContextSource, 'description' | 'prependBos'>>;

/** Options of `tokenContexts`. */
export interface TokenContextOptions {
  /** Tokens per context (SAELens's context_size), the BOS included. */
  contextSize: number;
  /** Start every context with `bosTokenId` (SAELens's prepend_bos, default true when bosTokenId is given). */
  prependBos?: boolean;
  bosTokenId?: number | null;
  /**
   * Random windows (default): each epoch picks a random phase and a random order of the
   * non-overlapping windows at that phase (`epochPlan`, as `tokenWindows` does). false:
   * consecutive windows from the start, in order (SAELens's streaming order).
   */
  shuffle?: boolean;
  /** Seed of the window order (default 0). */
  seed?: number;
  /** Names the source in configs and errors. */
  description?: string;
}

/**
 * Contexts cut from a token stream (a TokenFile, a path to one, any TokenReader, or ids in
 * memory): windows of contextSize tokens (contextSize - 1 after a prepended BOS).
 */
export function tokenContexts(source: TokenReader | TokenFile | string | ArrayLike<number>, options: TokenContextOptions): ContextSource {
  const reader: TokenReader =
    typeof source === 'string' ? TokenFile.open(source) : isReader(source) ? source : arrayTokenReader(source as ArrayLike<number>);
  const { contextSize } = options;
  if (!(Number.isInteger(contextSize) && contextSize >= 2)) throw new Error(`contextSize must be an integer >= 2, got ${contextSize}`);
  const bos = options.bosTokenId ?? null;
  const prependBos = options.prependBos ?? bos !== null;
  if (prependBos && bos === null) throw new Error('prependBos needs a bosTokenId (the model has none: pass prependBos: false)');
  const span = prependBos ? contextSize - 1 : contextSize;
  const shuffle = options.shuffle ?? true;
  if (!shuffle && reader.length < span)
    throw new Error(`the token stream holds ${reader.length} tokens, too few for one context of ${contextSize}`);
  if (shuffle && reader.length < 2 * span)
    throw new Error(`the token stream holds ${reader.length} tokens, too few for contexts of ${contextSize} (at least ${2 * span} needed)`);
  const seed = options.seed ?? 0;
  const description =
    options.description ?? (typeof source === 'string' ? source : source instanceof TokenFile ? source.path : `${reader.length} tokens`);
  const perEpoch = Math.floor(reader.length / span);

  // Shuffled epochs: each epoch's plan (phase, order), the most recent few cached; epoch starts
  // (the sum of the counts of the epochs before, which differ with the phase) found by walking.
  const plans = new Map<number, { phase: number; order: Uint32Array }>();
  const planOf = (epoch: number): { phase: number; order: Uint32Array } => {
    let p = plans.get(epoch);
    if (p) return p;
    p = epochPlan(reader.length, span, seed, epoch);
    plans.set(epoch, p);
    if (plans.size > 4) plans.delete(plans.keys().next().value as number);
    return p;
  };
  const starts: number[] = [0];
  /** The first token of context j. */
  const startOf = (j: number): number => {
    if (!shuffle) return (j % perEpoch) * span;
    while (starts[starts.length - 1]! <= j)
      starts.push(starts[starts.length - 1]! + epochWindowCount(reader.length, span, seed, starts.length - 1));
    let lo = 0;
    let hi = starts.length - 1; // starts[hi] > j
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= j) lo = mid;
      else hi = mid;
    }
    const plan = planOf(lo);
    return plan.phase + plan.order[j - starts[lo]!]! * span;
  };
  return {
    contextSize,
    prependBos,
    contextsPerEpoch: perEpoch,
    description,
    context(j) {
      if (!(Number.isInteger(j) && j >= 0)) throw new RangeError(`context index must be a non-negative integer, got ${j}`);
      const ids = reader.read(startOf(j), span);
      if (!prependBos) return ids;
      const out = new Int32Array(contextSize);
      out[0] = bos!;
      out.set(ids, 1);
      return out;
    },
  };
}

/** Contexts from a UTF-8 text file, tokenized when opened (`textFileTokens`), with `eosTokenId` appended when given. */
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
      const { ids } = corpusTokens(tokenizer, split, options.eosTokenId, all);
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

// ---------------------------------------------------------------------------------------------
// Batches of contexts, in order

/**
 * Where evaluation and feature collection take tokens from: a token stream (a `TokenFile`, any
 * `TokenReader`, ids in memory, or the path of a nanoGPT-style `.bin` token file), cut here into
 * consecutive contexts, or ready-made contexts.
 */
export type TokenSource = TokenReader | ArrayLike<number> | string | IndexedContexts;

/** How a stream is cut into contexts and batched. */
export interface ContextBatchOptions {
  /** Tokens per context, the BOS included when one is prepended. */
  contextSize: number;
  /** Contexts per batch (one model forward pass). */
  batchSize: number;
  /** Stop after this many batches (default: as many as the stream holds). */
  batches?: number;
  /** Start every context with `bosTokenId` (default: when bosTokenId is not null). */
  prependBos?: boolean;
  bosTokenId?: number | null;
  /** Names the source in reports (default: a file's path, or 'N tokens'). */
  description?: string;
}

/** One batch of contexts. */
export interface ContextBatch {
  /** [rows, contextSize] int64 token ids. */
  tokens: Tensor;
  /** The same ids, row-major. */
  ids: Int32Array;
  rows: number;
  contextSize: number;
  /** Global index of the first row's context (rows are consecutive contexts). */
  firstContext: number;
}

/** The contexts a source yields, and how they were cut. */
export interface ContextPlan {
  contextSize: number;
  prependBos: boolean;
  /** Contexts available in the source. */
  available: number;
  /** Contexts that will be served (batches * batchSize, or fewer at the end of the stream). */
  contexts: number;
  batchSize: number;
  description: string;
  /** Reads the batch starting at context `first` with `rows` rows. */
  batch(first: number, rows: number): ContextBatch;
}

function isIndexed(x: unknown): x is IndexedContexts {
  return typeof x === 'object' && x !== null && typeof (x as IndexedContexts).context === 'function';
}

/**
 * Plans one pass over a source's contexts: a stream is cut by `tokenContexts` into consecutive
 * windows from its start (`shuffle: false`); ready-made contexts are taken in index order.
 */
export function planContexts(source: TokenSource, options: ContextBatchOptions): ContextPlan {
  const { batchSize } = options;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  if (options.batches !== undefined && !(Number.isInteger(options.batches) && options.batches >= 1))
    throw new Error(`batches must be a positive integer, got ${options.batches}`);
  const contexts: IndexedContexts = isIndexed(source)
    ? source
    : tokenContexts(source, {
        contextSize: options.contextSize,
        ...(options.prependBos !== undefined ? { prependBos: options.prependBos } : {}),
        bosTokenId: options.bosTokenId ?? null,
        shuffle: false,
        ...(options.description !== undefined ? { description: options.description } : {}),
      });
  const S = contexts.contextSize;
  const available = contexts.contextsPerEpoch;
  return {
    contextSize: S,
    prependBos: contexts.prependBos ?? false,
    available,
    contexts: Math.min(available, (options.batches ?? Infinity) * batchSize),
    batchSize,
    description: options.description ?? contexts.description ?? 'contexts',
    batch(first, rows) {
      const ids = new Int32Array(rows * S);
      for (let r = 0; r < rows; r++) {
        const c = contexts.context(first + r);
        if (c.length !== S) throw new Error(`context ${first + r} holds ${c.length} tokens, expected ${S}`);
        ids.set(c, r * S);
      }
      return {
        tokens: tensor(
          BigInt64Array.from(ids, (v) => BigInt(v)),
          [rows, S],
          'int64',
        ),
        ids,
        rows,
        contextSize: S,
        firstContext: first,
      };
    },
  };
}

/** The batches of a plan, in order (the last may have fewer rows). */
export function* contextBatches(plan: ContextPlan): Generator<ContextBatch> {
  for (let first = 0; first < plan.contexts; first += plan.batchSize)
    yield plan.batch(first, Math.min(plan.batchSize, plan.contexts - first));
}
