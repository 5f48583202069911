/**
 * Token files: a tokenized corpus on disk, read at random offsets without loading it.
 *
 * The format is nanoGPT's: `NAME.bin` holds the token ids back to back as raw little-endian
 * uint16 (uint32 when the vocabulary has more than 65536 ids), and a sidecar `NAME.bin.json`
 * says how to read it:
 *
 * ```json
 * { "dtype": "uint16", "length": 1234567, "vocabSize": 4096, "eosTokenId": 4095, "source": { ... } }
 * ```
 *
 * `length` counts tokens (the .bin is length * 2 or length * 4 bytes); `eosTokenId` (optional) is
 * the id written after each document; `source` (optional) is any JSON recording where the tokens
 * came from (a corpus manifest, the tokenizer).
 */
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

/** How the ids are stored. */
export type TokenDtype = 'uint16' | 'uint32';

/** The sidecar `NAME.bin.json`. */
export interface TokenFileMeta {
  dtype: TokenDtype;
  /** Number of tokens. */
  length: number;
  /** Every id is below this. */
  vocabSize: number;
  /** The id that ends each document, when the file was written with one. */
  eosTokenId?: number;
  /** Where the tokens came from (any JSON). */
  source?: unknown;
}

/** What the writer is told: the dtype follows from the vocabulary size. */
export interface TokenFileOptions {
  vocabSize: number;
  eosTokenId?: number;
  source?: unknown;
}

const BYTES: Record<TokenDtype, number> = { uint16: 2, uint32: 4 };
const LITTLE_ENDIAN = endianness() === 'LE';
/** Tokens gathered before each write. */
const STAGE_TOKENS = 1 << 20;
/** Largest vocabulary a token file holds (ids are read into an Int32Array). */
const MAX_VOCAB = 2 ** 31;

/** The dtype for a vocabulary: uint16 when every id fits (vocabSize <= 65536), else uint32. */
export function tokenDtypeFor(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

/** The sidecar path of a token file. */
export function tokenFileMetaPath(path: string): string {
  return `${path}.json`;
}

function checkOptions(path: string, meta: TokenFileOptions): void {
  if (!Number.isInteger(meta.vocabSize) || meta.vocabSize < 1 || meta.vocabSize > MAX_VOCAB)
    throw new RangeError(`${path}: vocabSize must be an integer from 1 to ${MAX_VOCAB}, got ${meta.vocabSize}`);
  if (meta.eosTokenId !== undefined && !(Number.isInteger(meta.eosTokenId) && meta.eosTokenId >= 0 && meta.eosTokenId < meta.vocabSize))
    throw new RangeError(`${path}: eosTokenId must be an id below vocabSize ${meta.vocabSize}, got ${meta.eosTokenId}`);
}

function tempPathFor(path: string): string {
  return join(dirname(resolve(path)), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes a token file and its sidecar from chunks of ids (arrays, typed arrays; sync or async),
 * streaming: only one staging buffer is held, never all the tokens. Atomic: both files are
 * written under temporary names, flushed, then renamed into place (the .bin first, then the
 * sidecar); on any error, an id outside 0..vocabSize-1 included, the temporary files are removed
 * and existing files are left as they were.
 */
export async function writeTokenFile(
  path: string,
  chunks: Iterable<ArrayLike<number>> | AsyncIterable<ArrayLike<number>>,
  meta: TokenFileOptions,
): Promise<{ length: number }> {
  checkOptions(path, meta);
  const dtype = tokenDtypeFor(meta.vocabSize);
  const { vocabSize } = meta;
  const stage = dtype === 'uint16' ? new Uint16Array(STAGE_TOKENS) : new Uint32Array(STAGE_TOKENS);
  const stageBytes = new Uint8Array(stage.buffer);
  const binTemp = tempPathFor(path);
  const metaPath = tokenFileMetaPath(path);
  const metaTemp = tempPathFor(metaPath);
  let fd = openSync(binTemp, 'wx', 0o644);
  let length = 0;
  let staged = 0;
  let position = 0;
  const flush = (): void => {
    if (staged === 0) return;
    let bytes = stageBytes.subarray(0, staged * BYTES[dtype]);
    if (!LITTLE_ENDIAN) {
      const swapped = Buffer.from(bytes);
      if (dtype === 'uint16') swapped.swap16();
      else swapped.swap32();
      bytes = swapped;
    }
    let done = 0;
    while (done < bytes.byteLength) {
      const n = writeSync(fd, bytes, done, bytes.byteLength - done, position);
      done += n;
      position += n;
    }
    staged = 0;
  };
  try {
    for await (const chunk of chunks) {
      const n = chunk.length;
      for (let i = 0; i < n; i++) {
        const id = chunk[i]!;
        if (!(Number.isInteger(id) && id >= 0 && id < vocabSize))
          throw new RangeError(`${path}: token ${length + i} is ${id}, not an id below vocabSize ${vocabSize}`);
        stage[staged++] = id;
        if (staged === STAGE_TOKENS) flush();
      }
      length += n;
    }
    flush();
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    const sidecar: TokenFileMeta = { dtype, length, vocabSize };
    if (meta.eosTokenId !== undefined) sidecar.eosTokenId = meta.eosTokenId;
    if (meta.source !== undefined) sidecar.source = meta.source;
    writeWhole(metaTemp, `${JSON.stringify(sidecar, null, 2)}\n`);
    renameSync(binTemp, path);
    renameSync(metaTemp, metaPath);
  } catch (e) {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    for (const p of [binTemp, metaTemp]) {
      try {
        unlinkSync(p);
      } catch {
        // never created, or already renamed
      }
    }
    throw e;
  }
  return { length };
}

function writeWhole(path: string, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  const fd = openSync(path, 'wx', 0o644);
  try {
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** What `tokenizeToFile` needs of a tokenizer: `encode`, and optionally a bulk `encodeMany`. */
export interface TextEncoder {
  /** The text's ids, without BOS. */
  encode(text: string): number[];
  /**
   * The ids of each text, as `encode` gives them: the bulk path (glassbox's `Tokenizer.encodeMany`
   * runs Hugging Face's Rust tokenizers on libuv's threads where they load). Used when present.
   */
  encodeMany?(texts: readonly string[]): Promise<number[][]>;
}

/** Documents per `encodeMany` call: enough to keep the Rust tokenizer's threads busy, few enough to stream. */
const ENCODE_MANY_DOCUMENTS = 256;

/**
 * Tokenizes each text and writes the ids to a token file, with `eosTokenId` after each document
 * when given. The tokenizer must return just the text's ids: with glassbox's `Tokenizer`, pass
 * `{ encode: (t) => tok.encode(t, { prependBos: false }), encodeMany: (ts) => tok.encodeMany(ts, { prependBos: false }) }`.
 * With `encodeMany`, documents are encoded 256 at a time (same ids, same file).
 */
export async function tokenizeToFile(
  tokenizer: TextEncoder,
  texts: Iterable<string> | AsyncIterable<string>,
  path: string,
  meta: TokenFileOptions,
): Promise<{ length: number; documents: number }> {
  let documents = 0;
  const eos = meta.eosTokenId;
  async function* encodedDocuments(): AsyncGenerator<number[]> {
    if (!tokenizer.encodeMany) {
      for await (const text of texts) yield tokenizer.encode(text);
      return;
    }
    let pending: string[] = [];
    const flush = async (): Promise<number[][]> => {
      const batch = pending;
      pending = [];
      const ids = await tokenizer.encodeMany!(batch);
      if (ids.length !== batch.length) throw new Error(`encodeMany returned ${ids.length} encodings for ${batch.length} texts`);
      return ids;
    };
    for await (const text of texts) {
      pending.push(text);
      if (pending.length >= ENCODE_MANY_DOCUMENTS) yield* await flush();
    }
    if (pending.length > 0) yield* await flush();
  }
  async function* chunks(): AsyncGenerator<ArrayLike<number>> {
    for await (const ids of encodedDocuments()) {
      documents++;
      yield ids;
      if (eos !== undefined) yield [eos];
    }
  }
  const { length } = await writeTokenFile(path, chunks(), meta);
  return { length, documents };
}

/** Reads and checks a token file's sidecar against the .bin's size; errors name the file and the problem. */
export function readTokenFileMeta(path: string, binBytes?: number): TokenFileMeta {
  const metaPath = tokenFileMetaPath(path);
  let text: string;
  try {
    text = readFileSync(metaPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `${metaPath}: missing (a token file ${path} needs its sidecar .bin.json saying dtype, length and vocabSize)`
        : `${metaPath}: cannot read (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${metaPath}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${metaPath}: expected a JSON object`);
  const m = parsed as Record<string, unknown>;
  if (m.dtype !== 'uint16' && m.dtype !== 'uint32')
    throw new Error(`${metaPath}: dtype must be "uint16" or "uint32", got ${JSON.stringify(m.dtype)}`);
  if (typeof m.length !== 'number' || !Number.isSafeInteger(m.length) || m.length < 0)
    throw new Error(`${metaPath}: length must be a non-negative integer, got ${JSON.stringify(m.length)}`);
  if (typeof m.vocabSize !== 'number' || !Number.isInteger(m.vocabSize) || m.vocabSize < 1 || m.vocabSize > MAX_VOCAB)
    throw new Error(`${metaPath}: vocabSize must be an integer from 1 to ${MAX_VOCAB}, got ${JSON.stringify(m.vocabSize)}`);
  if (m.dtype === 'uint16' && m.vocabSize > 65536)
    throw new Error(`${metaPath}: dtype uint16 cannot hold the ids of a vocabulary of ${m.vocabSize} (it needs uint32)`);
  if (
    m.eosTokenId !== undefined &&
    !(typeof m.eosTokenId === 'number' && Number.isInteger(m.eosTokenId) && m.eosTokenId >= 0 && m.eosTokenId < m.vocabSize)
  )
    throw new Error(`${metaPath}: eosTokenId must be an id below vocabSize ${m.vocabSize}, got ${JSON.stringify(m.eosTokenId)}`);
  const meta: TokenFileMeta = { dtype: m.dtype, length: m.length, vocabSize: m.vocabSize };
  if (m.eosTokenId !== undefined) meta.eosTokenId = m.eosTokenId as number;
  if (m.source !== undefined) meta.source = m.source;
  if (binBytes !== undefined && binBytes !== meta.length * BYTES[meta.dtype])
    throw new Error(
      `${path}: ${binBytes} bytes, but ${metaPath} says ${meta.length} ${meta.dtype} tokens (${meta.length * BYTES[meta.dtype]} bytes): the two files do not belong together, or one is truncated`,
    );
  return meta;
}

/**
 * A token file opened for random access: `read(start, count)` reads just those ids from disk
 * (`fs.readSync` at an offset), so a file of any size costs one file descriptor. Call `close()`
 * when done.
 */
export class TokenFile {
  /** Number of tokens. */
  readonly length: number;
  readonly vocabSize: number;
  readonly dtype: TokenDtype;
  /** The id written after each document, if the file has one. */
  readonly eosTokenId: number | undefined;
  /** The sidecar's `source` record, if any. */
  readonly source: unknown;
  readonly path: string;
  #fd: number;
  readonly #bytesPerToken: number;

  private constructor(path: string, fd: number, meta: TokenFileMeta) {
    this.path = path;
    this.#fd = fd;
    this.length = meta.length;
    this.vocabSize = meta.vocabSize;
    this.dtype = meta.dtype;
    this.eosTokenId = meta.eosTokenId;
    this.source = meta.source;
    this.#bytesPerToken = BYTES[meta.dtype];
  }

  /** Opens `NAME.bin` (with its sidecar `NAME.bin.json`), checking that the two agree. */
  static open(path: string): TokenFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Error(
        code === 'ENOENT' ? `${path}: token file missing` : `${path}: cannot open (${e instanceof Error ? e.message : String(e)})`,
      );
    }
    try {
      const meta = readTokenFileMeta(path, fstatSync(fd).size);
      return new TokenFile(path, fd, meta);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Ids `start .. start + count - 1`, as a new Int32Array. */
  read(start: number, count: number): Int32Array {
    if (this.#fd < 0) throw new Error(`${this.path}: read after close()`);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > this.length)
      throw new RangeError(`${this.path}: cannot read ${count} tokens at ${start} (the file has ${this.length})`);
    const out = new Int32Array(count);
    if (count === 0) return out;
    const byteCount = count * this.#bytesPerToken;
    // uint32 ids (< 2^31) read straight into the result; uint16 ids into a scratch buffer.
    const bytes = this.dtype === 'uint32' ? new Uint8Array(out.buffer) : new Uint8Array(byteCount);
    let done = 0;
    while (done < byteCount) {
      const n = readSync(this.#fd, bytes, done, byteCount - done, start * this.#bytesPerToken + done);
      if (n === 0)
        throw new Error(`${this.path}: ended early reading tokens ${start}..${start + count - 1} (truncated since it was opened?)`);
      done += n;
    }
    if (!LITTLE_ENDIAN) Buffer.from(bytes.buffer, bytes.byteOffset, byteCount)[this.dtype === 'uint16' ? 'swap16' : 'swap32']();
    if (this.dtype === 'uint16') out.set(new Uint16Array(bytes.buffer, bytes.byteOffset, count));
    return out;
  }

  /** Releases the file descriptor; later reads throw. Closing twice is harmless. */
  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
