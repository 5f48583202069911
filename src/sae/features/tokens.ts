/**
 * Token contexts for SAE evaluation and feature collection: consecutive, non-overlapping windows
 * of a token stream (a token file, ids in memory, a tokenized text file, the default model's
 * corpus), each optionally starting with the BOS token, served in batches of `[batch, context]`
 * rows. Contexts are read lazily, so a corpus of any size streams through in constant memory, and
 * each context has a global index (its place in the stream) that results can point back to.
 */
import { readFileSync } from 'node:fs';
import type { HookedTransformer, ModelTokenizer } from '../../model/hooked.js';
import { tensor, type Tensor } from '../../tensor/index.js';
import { loadCorpus, splitCorpus } from '../../train/corpus.js';
import { TokenFile } from '../../train/tokens.js';

/** Something that reads `count` token ids at `start` (a `TokenFile` is one). */
export interface TokenReader {
  readonly length: number;
  read(start: number, count: number): Int32Array;
}

/**
 * Already-cut contexts, addressed by index (the SAE trainer's `ContextSource` fits): used as they
 * are, in index order, `contextSize` and BOS handling included.
 */
export interface IndexedContexts {
  readonly contextSize: number;
  /** Contexts in one pass (contexts past it are not read). */
  readonly contextsPerEpoch: number;
  readonly description?: string;
  readonly prependBos?: boolean;
  context(j: number): Int32Array;
}

/**
 * Where tokens come from: a token stream (a `TokenFile`, any `TokenReader`, ids in memory, or the
 * path of a nanoGPT-style `.bin` token file) cut into contexts here, or ready-made contexts.
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

function isReader(x: unknown): x is TokenReader {
  return typeof x === 'object' && x !== null && !ArrayBuffer.isView(x) && typeof (x as TokenReader).read === 'function';
}

function isIndexed(x: unknown): x is IndexedContexts {
  return typeof x === 'object' && x !== null && typeof (x as IndexedContexts).context === 'function';
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

/**
 * Plans the contexts of a source: consecutive windows of `contextSize` tokens (`contextSize - 1`
 * stream tokens after a prepended BOS), from the start of the stream, in order.
 */
export function planContexts(source: TokenSource, options: ContextBatchOptions): ContextPlan {
  const { batchSize } = options;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  if (options.batches !== undefined && !(Number.isInteger(options.batches) && options.batches >= 1))
    throw new Error(`batches must be a positive integer, got ${options.batches}`);
  const limit = (available: number): number => Math.min(available, (options.batches ?? Infinity) * batchSize);

  if (isIndexed(source)) {
    const contextSize = source.contextSize;
    const available = source.contextsPerEpoch;
    return finish(
      {
        contextSize,
        prependBos: source.prependBos ?? false,
        available,
        contexts: limit(available),
        batchSize,
        description: options.description ?? source.description ?? 'contexts',
      },
      (j) => source.context(j),
    );
  }

  const { contextSize } = options;
  if (!(Number.isInteger(contextSize) && contextSize >= 2)) throw new Error(`contextSize must be an integer >= 2, got ${contextSize}`);
  const bos = options.bosTokenId ?? null;
  const prependBos = options.prependBos ?? bos !== null;
  if (prependBos && bos === null) throw new Error('prependBos needs a bosTokenId (the model has none)');
  const reader: TokenReader = typeof source === 'string' ? TokenFile.open(source) : isReader(source) ? source : arrayTokenReader(source);
  const span = prependBos ? contextSize - 1 : contextSize;
  const available = Math.floor(reader.length / span);
  if (available === 0) throw new Error(`the token stream holds ${reader.length} tokens, too few for one context of ${contextSize}`);
  const description =
    options.description ?? (typeof source === 'string' ? source : source instanceof TokenFile ? source.path : `${reader.length} tokens`);
  return finish({ contextSize, prependBos, available, contexts: limit(available), batchSize, description }, (j) => {
    const ids = reader.read(j * span, span);
    if (!prependBos) return ids;
    const out = new Int32Array(contextSize);
    out[0] = bos!;
    out.set(ids, 1);
    return out;
  });
}

function finish(plan: Omit<ContextPlan, 'batch'>, context: (j: number) => Int32Array): ContextPlan {
  return {
    ...plan,
    batch(first, rows) {
      const S = plan.contextSize;
      const ids = new Int32Array(rows * S);
      for (let r = 0; r < rows; r++) {
        const c = context(first + r);
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
  const corpus = splitCorpus(loadCorpus())[split];
  const ids = tokenizeDocuments(
    corpus.documents.map((d) => d.text),
    tokenizer,
    options.eosTokenId,
  );
  return { ids, description: `glassbox default corpus, ${split} split (moby-dick, sotu; ${corpus.documents.length} documents)` };
}

/** A UTF-8 text file tokenized in paragraphs (pieces of bounded size), concatenated, without BOS. */
export function textFileTokens(path: string, tokenizer: ModelTokenizer): { ids: Int32Array; description: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read the text file (${e instanceof Error ? e.message : String(e)})`);
  }
  return { ids: tokenizeDocuments(text.split(/(?<=\n\s*\n)/), tokenizer), description: path };
}
