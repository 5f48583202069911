/**
 * safetensors: the tensor file format of Hugging Face checkpoints, and the one glassbox writes.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (optionally padded with
 * spaces), then the data section. The header maps each tensor name to its dtype, shape and
 * `data_offsets` [begin, end) within the data section; `__metadata__` is an optional string map.
 *
 * The reader never loads a whole file: it reads the header with positioned reads, validates it
 * completely, and reads a tensor's bytes only when asked for that tensor. Every error names the
 * file, the tensor (when there is one) and the problem.
 *
 * A tensor's bytes go straight into the array the tensor keeps, in one pass: float32 and the
 * other plain dtypes by positioned reads into it; float16 and bfloat16, widened to float32, by
 * positioned reads into a small reused buffer that is widened chunk by chunk into the tensor's
 * array (no whole-tensor or whole-file copies: on machines where first touching memory is slow,
 * every fresh byte counts). With `weightDtype: 'stored'` they stay 2 bytes a value instead.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { endianness } from 'node:os';
import { Tensor, fromStorage, tensor, type DType, type StorageDType } from '../tensor/index.js';
import { float32ToBfloat16, float32ToFloat16 } from '../tensor/dtype.js';
import { fmtShape } from '../tensor/shape.js';
import { nearestNames } from './names.js';

export { nearestNames };
import { floatTensor, readExactly, readFloatTensor, type FloatTensorPlace, type WeightDtype } from './float-read.js';
import { writeAtomic, type WriteBytes } from './atomic.js';

/** The safetensors dtypes glassbox reads. */
export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

interface DTypeSpec {
  /** bytes per element */
  bytes: number;
  /** the name used in messages (numpy style) */
  name: string;
  /** the dtype of the tensor `read` returns */
  tensor: DType;
}

const SPECS: Record<SafetensorsDType, DTypeSpec> = {
  F32: { bytes: 4, name: 'float32', tensor: 'float32' },
  F16: { bytes: 2, name: 'float16', tensor: 'float32' },
  BF16: { bytes: 2, name: 'bfloat16', tensor: 'float32' },
  F64: { bytes: 8, name: 'float64', tensor: 'float64' },
  I64: { bytes: 8, name: 'int64', tensor: 'int64' },
  I32: { bytes: 4, name: 'int32', tensor: 'int32' },
  I16: { bytes: 2, name: 'int16', tensor: 'int32' },
  I8: { bytes: 1, name: 'int8', tensor: 'int32' },
  U8: { bytes: 1, name: 'uint8', tensor: 'int32' },
  BOOL: { bytes: 1, name: 'bool', tensor: 'bool' },
};
const DTYPE_LIST = Object.keys(SPECS).join(', ');

function isSafetensorsDType(x: unknown): x is SafetensorsDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(SPECS, x);
}

/** The header limit of the reference (Rust) implementation. */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

export type { WeightDtype } from './float-read.js';

export interface ReadOptions {
  /**
   * 'float32' (default): F16 and BF16 widen to float32 (4 bytes a value). 'stored': they stay 2
   * bytes a value, as a float32 tensor held in 16-bit form (`tensor.storage.dtype` is
   * 'float16') that graphs widen where they use it (see src/tensor/stored.ts). F16 keeps its
   * bits; BF16 rows are rewritten exactly as float16 times a power of two per row (onnxruntime-node
   * cannot feed bfloat16), and a tensor with a row that cannot be (values spanning more than 39
   * binades, infinities, NaN) is widened to float32 instead. Values are the same either way.
   */
  weightDtype?: WeightDtype;
}

/** An error about a safetensors file (or checkpoint index), naming the file and, when there is one, the tensor. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  /** The file the problem is in, as the caller named it. */
  readonly file: string;
  /** The tensor the problem concerns, if any. */
  readonly tensor: string | undefined;
  /** The problem, without the file and tensor prefix. */
  readonly problem: string;

  constructor(file: string, problem: string, tensor?: string, options?: { cause?: unknown }) {
    super(`${file}: ${tensor !== undefined ? `tensor '${tensor}': ` : ''}${problem}`, options);
    this.file = file;
    this.tensor = tensor;
    this.problem = problem;
  }
}

/** What the header says about one tensor. */
export interface TensorInfo {
  /** The dtype on disk. */
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Bytes on disk. */
  readonly byteLength: number;
  /** The dtype of the Tensor `read` returns (F16/BF16 widen to float32; I16/I8/U8 to int32). */
  readonly tensorDtype: DType;
}

/** A byte range of the data section that no tensor covers (offsets relative to the data section). */
export interface SafetensorsGap {
  readonly start: number;
  readonly end: number;
  /** The tensor just before the gap (undefined for a gap at the very start). */
  readonly after: string | undefined;
}

export interface OpenOptions {
  /** Reject headers longer than this (default 100 MB, as the Rust implementation does). */
  maxHeaderBytes?: number;
  /**
   * Reject files whose data section has bytes no tensor covers (between tensors or at the end),
   * as the Rust implementation does. Off by default: such files are readable, and `gaps` lists
   * the holes.
   */
  strict?: boolean;
}

interface Entry extends TensorInfo {
  readonly name: string;
  /** offsets within the data section */
  readonly begin: number;
  readonly end: number;
}

/** @internal a parsed, validated header */
export interface ParsedHeader {
  readonly file: string;
  readonly fileSize: number;
  readonly headerLength: number;
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly entries: ReadonlyMap<string, Entry>;
  readonly sortedNames: readonly string[];
  readonly gaps: readonly SafetensorsGap[];
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function printablePrefix(bytes: Uint8Array): string {
  const text = Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return JSON.stringify(text);
}

function notSafetensorsHint(first8: Uint8Array): string {
  const text = Buffer.from(first8).toString('latin1');
  if (text.startsWith('version ')) return ' It looks like a Git LFS pointer, not the file itself: fetch it with `git lfs pull`.';
  if (text.startsWith('<') || text.startsWith('{'))
    return ` It starts with ${printablePrefix(first8)}: an HTML page or JSON, not safetensors.`;
  if (first8[0] === 0x80 || text.startsWith('PK')) return ' It looks like a PyTorch pickle/zip checkpoint, not safetensors.';
  return ` It starts with ${printablePrefix(first8)}.`;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Reads and validates the header of an open file. Throws `SafetensorsError` on any problem. */
function parseHeader(fd: number, file: string, options: OpenOptions): ParsedHeader {
  const fail = (problem: string, tensorName?: string): SafetensorsError => new SafetensorsError(file, problem, tensorName);
  const maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw fail(`the file is ${fileSize} bytes, too short for safetensors (which starts with an 8-byte header length)`);

  const first8 = new Uint8Array(8);
  readExactly(fd, first8, 0, () => fail('the file ended while reading the header length'));
  const n = Buffer.from(first8.buffer).readBigUInt64LE(0);
  if (n > BigInt(maxHeader))
    throw fail(
      `header length ${n} exceeds the ${maxHeader}-byte limit: the file is corrupt or not safetensors.${notSafetensorsHint(first8)}`,
    );
  const headerLength = Number(n);
  if (headerLength > fileSize - 8)
    throw fail(
      `header length ${headerLength} runs past the end of the file (${fileSize} bytes, so at most ${fileSize - 8} are left for the header): ` +
        `the file is truncated or not safetensors`,
    );
  if (headerLength < 2) throw fail(`header length is ${headerLength}: too short to hold a JSON object`);

  const raw = new Uint8Array(headerLength);
  readExactly(fd, raw, 8, (got) => fail(`the file ended after ${got} of the header's ${headerLength} bytes`));
  if (raw[0] !== 0x7b)
    throw fail(`the header does not start with '{' (it starts with ${printablePrefix(raw.subarray(0, 8))}): not safetensors`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw fail('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw fail(`the header is not valid JSON (${errorText(e)})`);
  }
  if (!isPlainObject(header)) throw fail('the header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const entries = new Map<string, Entry>();
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (value === null) continue;
      if (!isPlainObject(value)) throw fail('__metadata__ is not a JSON object (it must map strings to strings)');
      for (const [k, v] of Object.entries(value))
        if (typeof v !== 'string') throw fail(`__metadata__ must map strings to strings, but '${k}' holds ${JSON.stringify(v)}`);
      metadata = value as Record<string, string>;
      continue;
    }
    entries.set(name, parseEntry(name, value, dataSize, fail));
  }

  const gaps = checkLayout(entries, dataSize, fail);
  if (options.strict && gaps.length > 0) {
    const g = gaps[0]!;
    throw fail(
      `bytes [${g.start}, ${g.end}) of the data section belong to no tensor` +
        (g.after === undefined ? '' : ` (after '${g.after}')`) +
        (gaps.length > 1 ? ` (and ${gaps.length - 1} more gaps)` : '') +
        ` (strict mode)`,
    );
  }
  const sortedNames = [...entries.keys()].sort();
  return Object.freeze({ file, fileSize, headerLength, dataStart, metadata: Object.freeze({ ...metadata }), entries, sortedNames, gaps });
}

function parseEntry(name: string, value: unknown, dataSize: number, fail: (problem: string, tensor?: string) => SafetensorsError): Entry {
  if (!isPlainObject(value)) throw fail(`its header entry is not a JSON object (it is ${JSON.stringify(value)})`, name);
  const { dtype, shape, data_offsets: offsets } = value;
  if (dtype === undefined) throw fail('its header entry has no dtype', name);
  if (!isSafetensorsDType(dtype)) throw fail(`unknown or unsupported dtype ${JSON.stringify(dtype)} (glassbox reads ${DTYPE_LIST})`, name);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0))
    throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
  const dims = shape as number[];
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
    (offsets[0] as number) > (offsets[1] as number)
  )
    throw fail(`data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] of non-negative integers with begin <= end`, name);
  const [begin, end] = offsets as [number, number];
  if (end > dataSize)
    throw fail(
      `data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes): the file is truncated or the offsets are wrong`,
      name,
    );
  const spec = SPECS[dtype];
  let elements = 1;
  for (const d of dims) elements *= d;
  const needed = elements * spec.bytes;
  if (!Number.isSafeInteger(needed)) throw fail(`shape ${fmtShape(dims)} is too large`, name);
  if (needed !== end - begin)
    throw fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${spec.name}${fmtShape(dims)} needs ${needed}`, name);
  return Object.freeze({ name, dtype, shape: Object.freeze([...dims]), byteLength: needed, tensorDtype: spec.tensor, begin, end });
}

/** Rejects overlapping tensors; returns the gaps (including trailing bytes after the last tensor). */
function checkLayout(
  entries: ReadonlyMap<string, Entry>,
  dataSize: number,
  fail: (problem: string, tensor?: string) => SafetensorsError,
): SafetensorsGap[] {
  // Empty tensors occupy no bytes and cannot overlap anything; their offsets were range-checked.
  const spans = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  const gaps: SafetensorsGap[] = [];
  let cursor = 0;
  let last: Entry | undefined;
  for (const e of spans) {
    if (last !== undefined && e.begin < cursor)
      throw fail(`tensors '${last.name}' [${last.begin}, ${last.end}] and '${e.name}' [${e.begin}, ${e.end}] overlap`);
    if (e.begin > cursor) gaps.push({ start: cursor, end: e.begin, after: last?.name });
    cursor = e.end;
    last = e;
  }
  if (cursor < dataSize) gaps.push({ start: cursor, end: dataSize, after: last?.name });
  return gaps;
}

/** @internal the "no such tensor" problem text, with the nearest names */
export function unknownTensorProblem(name: string, names: readonly string[], where: string): string {
  if (names.length === 0) return `not in ${where} (it holds no tensors)`;
  const near = nearestNames(name, names);
  return `not in ${where} (${names.length} tensors; nearest: ${near.map((n) => `'${n}'`).join(', ')})`;
}

/**
 * A safetensors file opened for reading. `open` reads and validates only the header; `read`
 * reads one tensor's bytes. Close it when done (the file descriptor stays open until then).
 */
export class SafetensorsFile {
  /** The path, as given to `open`. */
  readonly path: string;
  /** The `__metadata__` string map (empty when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Bytes of the data section no tensor covers (empty for files written by safetensors itself). */
  readonly gaps: readonly SafetensorsGap[];
  /** Size of the whole file in bytes. */
  readonly fileSize: number;
  /** Length of the JSON header in bytes (padding included). */
  readonly headerLength: number;
  readonly #h: ParsedHeader;
  #fd: number | null;
  #closed = false;

  private constructor(h: ParsedHeader, fd: number | null) {
    this.#h = h;
    this.#fd = fd;
    this.path = h.file;
    this.metadata = h.metadata;
    this.gaps = h.gaps;
    this.fileSize = h.fileSize;
    this.headerLength = h.headerLength;
  }

  /** Opens `path` and validates its header. Throws `SafetensorsError` naming the file and the problem. */
  static open(path: string, options: OpenOptions = {}): SafetensorsFile {
    const fd = openForReading(path);
    try {
      return new SafetensorsFile(parseHeader(fd, path, options), fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** @internal reads and validates the header, then closes the file */
  static _parse(path: string, options: OpenOptions = {}): ParsedHeader {
    const fd = openForReading(path);
    try {
      return parseHeader(fd, path, options);
    } finally {
      closeSync(fd);
    }
  }

  /** @internal a file whose header was parsed already; the descriptor is opened on the first read */
  static _deferred(header: ParsedHeader): SafetensorsFile {
    return new SafetensorsFile(header, null);
  }

  /** Tensor names, sorted. */
  keys(): string[] {
    return [...this.#h.sortedNames];
  }

  has(name: string): boolean {
    return this.#h.entries.has(name);
  }

  /** Number of tensors. */
  get size(): number {
    return this.#h.entries.size;
  }

  /** dtype, shape and byte length of a tensor, from the header (no data is read). */
  info(name: string): TensorInfo {
    const e = this.#entry(name);
    return { dtype: e.dtype, shape: e.shape, byteLength: e.byteLength, tensorDtype: e.tensorDtype };
  }

  /** The raw little-endian bytes of a tensor, as stored (a fresh array the caller owns). */
  readBytes(name: string): Uint8Array {
    const e = this.#entry(name);
    const fd = this.#descriptor(name);
    const out = new Uint8Array(e.byteLength);
    readExactly(fd, out, this.#h.dataStart + e.begin, this.#short(name));
    return out;
  }

  /**
   * `byteLength` raw bytes of a tensor starting `byteOffset` bytes into it (one positioned read:
   * a row of a row-major tensor without reading the rest). The range must lie inside the tensor.
   */
  readBytesAt(name: string, byteOffset: number, byteLength: number): Uint8Array {
    const e = this.#entry(name);
    if (!(
      Number.isSafeInteger(byteOffset) &&
      Number.isSafeInteger(byteLength) &&
      byteOffset >= 0 &&
      byteLength >= 0 &&
      byteOffset + byteLength <= e.byteLength
    ))
      throw new SafetensorsError(
        this.path,
        `bytes ${byteOffset}..${byteOffset + byteLength} are outside the tensor's ${e.byteLength} bytes`,
        name,
      );
    const fd = this.#descriptor(name);
    const out = new Uint8Array(byteLength);
    readExactly(fd, out, this.#h.dataStart + e.begin + byteOffset, this.#short(name));
    return out;
  }

  /** @internal where a floating-point tensor lies in the file (null for other dtypes) */
  _place(name: string): FloatTensorPlace | null {
    const e = this.#entry(name);
    if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16') return null;
    return { dtype: e.dtype, shape: e.shape, position: this.#h.dataStart + e.begin, byteLength: e.byteLength };
  }

  /** @internal the error for a file that ends `got` bytes into tensor `name` */
  #short(name: string): (got: number) => SafetensorsError {
    const e = this.#entry(name);
    const at = this.#h.dataStart + e.begin;
    return (got) =>
      new SafetensorsError(
        this.path,
        `the file ended after ${got} of the tensor's ${e.byteLength} bytes (at byte ${at + got}): it was truncated after it was opened`,
        name,
      );
  }

  /**
   * Reads one tensor. F16 and BF16 widen to float32 (or stay 2 bytes a value with
   * `weightDtype: 'stored'`, see `ReadOptions`); I16, I8 and U8 widen to int32; F32, F64, I32,
   * I64 and BOOL keep their dtype.
   */
  read(name: string, options: ReadOptions = {}): Tensor {
    if (!LITTLE_ENDIAN_HOST) throw new SafetensorsError(this.path, 'reading tensors needs a little-endian host', name);
    const e = this.#entry(name);
    const n = e.byteLength / SPECS[e.dtype].bytes;
    const place = this._place(name);
    if (place) {
      const weightDtype = options.weightDtype ?? 'float32';
      if (weightDtype !== 'float32' && weightDtype !== 'stored')
        throw new SafetensorsError(this.path, `weightDtype must be 'float32' or 'stored', got ${JSON.stringify(weightDtype)}`, name);
      return floatTensor(e.shape, readFloatTensor(this.#descriptor(name), place, weightDtype, this.#short(name)));
    }
    const bytes = this.readBytes(name);
    switch (e.dtype) {
      case 'I16':
        return tensor(new Int16Array(bytes.buffer, 0, n), e.shape, 'int32');
      case 'I8':
        return tensor(new Int8Array(bytes.buffer, 0, n), e.shape, 'int32');
      case 'U8':
        return tensor(bytes, e.shape, 'int32');
      default:
        // readBytes returns a fresh buffer for this tensor alone, so the tensor may keep it.
        return fromStorage(bytes, STORAGE[e.dtype], e.shape, { take: true });
    }
  }

  /** Closes the file descriptor. `keys`, `info` and `metadata` keep working; reads throw. */
  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
    this.#closed = true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #entry(name: string): Entry {
    const e = this.#h.entries.get(name);
    if (e === undefined) throw new SafetensorsError(this.path, unknownTensorProblem(name, this.#h.sortedNames, 'this file'), name);
    return e;
  }

  #descriptor(name: string): number {
    if (this.#closed) throw new SafetensorsError(this.path, 'cannot read: the file was closed', name);
    if (this.#fd === null) {
      const fd = openForReading(this.path);
      const size = fstatSync(fd).size;
      if (size !== this.#h.fileSize) {
        closeSync(fd);
        throw new SafetensorsError(
          this.path,
          `the file changed since its header was read (${this.#h.fileSize} bytes then, ${size} now)`,
          name,
        );
      }
      this.#fd = fd;
    }
    return this.#fd;
  }
}

const STORAGE: Record<Exclude<SafetensorsDType, 'I16' | 'I8' | 'U8'>, StorageDType> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  BOOL: 'bool',
};

function openForReading(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new SafetensorsError(path, `cannot open the file (${errorText(e)})`, undefined, { cause: e });
  }
}

/** Opens a safetensors file, reads every tensor (or only `names`) and closes it. */
export function loadSafetensors(path: string, names?: readonly string[], options: OpenOptions = {}): Map<string, Tensor> {
  const f = SafetensorsFile.open(path, options);
  try {
    const out = new Map<string, Tensor>();
    for (const name of names ?? f.keys()) out.set(name, f.read(name));
    return out;
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

/** Storage dtype for floating-point tensors when saving. */
export type SaveFloatDType = 'float32' | 'float64' | 'float16' | 'bfloat16';

export interface SaveOptions {
  /** The `__metadata__` string map. */
  metadata?: Record<string, string>;
  /**
   * Store every floating-point tensor (float32 and float64) in this dtype: 'float16' and
   * 'bfloat16' round to nearest even. Integer and bool tensors are stored as they are. By
   * default each tensor keeps its own dtype.
   */
  dtype?: SaveFloatDType;
  /** Also compute the SHA-256 of the file as written; `saveSafetensors` then returns it (hex). */
  sha256?: boolean;
}

const SAVE_CODE: Record<SaveFloatDType, SafetensorsDType> = { float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16' };
const NATIVE_CODE: Record<DType, SafetensorsDType> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64', bool: 'BOOL' };
/** Elements converted per step when a tensor is narrowed or widened on the way out. */
const CONVERT_CHUNK = 1 << 20;

function byteView(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Streams a tensor's values, converted to the storage dtype `code`, through `write`. */
function writeTensorData(t: Tensor, code: SafetensorsDType, write: WriteBytes): number {
  const data = t.dataSync();
  if (data.length !== t.size)
    throw new Error(`its storage holds ${data.length} values, but its shape ${fmtShape(t.shape)} needs ${t.size}`);
  if (code === NATIVE_CODE[t.dtype]) {
    write(byteView(data));
    return data.byteLength;
  }
  // Only floating-point tensors are converted (see storageCode).
  const src = data as Float32Array | Float64Array;
  let written = 0;
  for (let i = 0; i < src.length; i += CONVERT_CHUNK) {
    const part = src.subarray(i, Math.min(src.length, i + CONVERT_CHUNK));
    let out: ArrayBufferView;
    if (code === 'F64') out = new Float64Array(part);
    else {
      const f32 = part instanceof Float32Array ? part : new Float32Array(part);
      out = code === 'F32' ? f32 : code === 'F16' ? float32ToFloat16(f32) : float32ToBfloat16(f32);
    }
    write(byteView(out));
    written += out.byteLength;
  }
  return written;
}

function storageCode(t: Tensor, options: SaveOptions): SafetensorsDType {
  if (options.dtype !== undefined && (t.dtype === 'float32' || t.dtype === 'float64')) return SAVE_CODE[options.dtype];
  return NATIVE_CODE[t.dtype];
}

/** Sort by the UTF-8 bytes of the name, as the Rust implementation does. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Writes tensors to a safetensors file, atomically: everything goes to a temporary file in the
 * same directory, which is flushed and renamed over `path` only when complete. On any error the
 * temporary file is removed and `path` is left as it was.
 *
 * The header lists tensors by name; the data section orders them by element size (largest first)
 * and then name, as the Rust implementation does, so every tensor starts at an offset aligned to
 * its element size. The header is padded with spaces to a multiple of 8 bytes. Returns the file's
 * SHA-256 (hex) when `options.sha256`, else undefined.
 */
export function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor> | ReadonlyMap<string, Tensor>,
  options: SaveOptions = {},
): string | undefined {
  const fail = (problem: string, name?: string, cause?: unknown): SafetensorsError =>
    new SafetensorsError(path, problem, name, cause === undefined ? undefined : { cause });
  if (!LITTLE_ENDIAN_HOST) throw fail('writing safetensors needs a little-endian host');
  if (options.dtype !== undefined && !Object.prototype.hasOwnProperty.call(SAVE_CODE, options.dtype))
    throw fail(`cannot save: dtype ${JSON.stringify(options.dtype)} is not one of ${Object.keys(SAVE_CODE).join(', ')}`);
  const metadata = options.metadata ?? {};
  for (const [k, v] of Object.entries(metadata))
    if (typeof v !== 'string') throw fail(`cannot save: metadata must map strings to strings, but '${k}' holds ${typeof v}`);

  const list = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)) as [string, unknown][];
  interface Planned {
    name: string;
    t: Tensor;
    code: SafetensorsDType;
    byteLength: number;
    begin: number;
  }
  const planned: Planned[] = [];
  for (const [name, t] of list) {
    if (name === '__metadata__') throw fail("cannot save a tensor named '__metadata__' (the name is reserved for the metadata map)");
    if (!(t instanceof Tensor)) throw fail(`cannot save: the value is not a Tensor (${t === null ? 'null' : typeof t})`, name);
    if (t.isTracer)
      throw fail("cannot save a tracer (inside jit/grad a tensor has no values); save the traced function's result instead", name);
    const code = storageCode(t, options);
    planned.push({ name, t, code, byteLength: t.size * SPECS[code].bytes, begin: 0 });
  }

  // Data layout: widest element first, then by name (aligned like the Rust implementation).
  const layout = [...planned].sort((a, b) => SPECS[b.code].bytes - SPECS[a.code].bytes || compareUtf8(a.name, b.name));
  let offset = 0;
  for (const p of layout) {
    p.begin = offset;
    offset += p.byteLength;
  }
  // Header: metadata first, then tensors sorted by name. Built by hand so that integer-like
  // names keep this order (a JS object would move them to the front).
  const parts: string[] = [];
  const metaKeys = Object.keys(metadata).sort(compareUtf8);
  if (metaKeys.length > 0)
    parts.push(`"__metadata__":{${metaKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  for (const p of [...planned].sort((a, b) => compareUtf8(a.name, b.name)))
    parts.push(
      `${JSON.stringify(p.name)}:{"dtype":"${p.code}","shape":${JSON.stringify(p.t.shape)},"data_offsets":[${p.begin},${p.begin + p.byteLength}]}`,
    );
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);

  try {
    return writeAtomic(
      path,
      (write) => {
        write(header);
        for (const p of layout) {
          let n: number;
          try {
            n = writeTensorData(p.t, p.code, write);
          } catch (e) {
            if (e instanceof SafetensorsError) throw e;
            throw fail(`cannot write its values (${errorText(e)}); the destination was left unchanged`, p.name, e);
          }
          if (n !== p.byteLength) throw fail(`wrote ${n} bytes but the header promised ${p.byteLength}`, p.name);
        }
      },
      { sha256: options.sha256 === true },
    );
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw fail(`cannot write the file (${errorText(e)}); the destination was left unchanged`, undefined, e);
  }
}
