/**
 * NumPy's `.npy` and `.npz` files, read without Python: the format Gemma Scope publishes its SAEs
 * in (`params.npz` holding `W_enc`, `W_dec`, `b_enc`, `b_dec`, `threshold`).
 *
 * - `.npz` is a zip archive with one `.npy` member per array (`np.savez` stores them; `np.savez_compressed`
 *   deflates them). The reader parses the end-of-central-directory record (zip64 too), the central
 *   directory and each member's local header, and reads only the members asked for, with positioned
 *   reads. Stored (method 0) and deflated (method 8, via node:zlib) members are supported; the CRC-32
 *   of every member read is checked.
 * - `.npy` is a magic string `\x93NUMPY`, a version (1.0, 2.0, 3.0), a little-endian header length
 *   (2 bytes in 1.0, 4 bytes after), a Python dict literal `{'descr': '<f4', 'fortran_order': False,
 *   'shape': (3, 4), }` and the raw array data.
 *
 * Every error is an `NpzError` naming the file, the member when there is one, and the problem.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { Tensor, float16ToFloat32, tensor, type DType, type TypedArray } from '../tensor/index.js';

/** An error about an .npy/.npz file: names the file, the archive member (if any) and the problem. */
export class NpzError extends Error {
  override readonly name = 'NpzError';
  /** The file, as the caller named it. */
  readonly file: string;
  /** The archive member (e.g. 'W_enc.npy'), if the problem is in one. */
  readonly entry: string | undefined;
  /** The problem, without the file and member prefix. */
  readonly problem: string;

  constructor(file: string, problem: string, entry?: string, options?: { cause?: unknown }) {
    super(`${file}: ${entry !== undefined ? `member '${entry}': ` : ''}${problem}`, options);
    this.file = file;
    this.entry = entry;
    this.problem = problem;
  }
}

/** What to do with an array stored in Fortran (column-major) order. */
export type FortranOrderPolicy = 'transpose' | 'error';

/** Options of `loadNpy` / `parseNpy`. */
export interface NpyReadOptions {
  /**
   * Arrays stored with `fortran_order: True`: 'transpose' (default) reorders the values into the
   * usual row-major layout (the result has the declared shape); 'error' refuses them.
   */
  fortranOrder?: FortranOrderPolicy;
}

/** Options of `loadNpz`. */
export interface NpzReadOptions extends NpyReadOptions {
  /** Check each member's CRC-32 (default true). */
  verifyCrc?: boolean;
}

/** The parsed header of an .npy array. */
export interface NpyHeader {
  /** Format version [major, minor]. */
  version: [number, number];
  /** The numpy type string, e.g. '<f4', '<f2', '|b1', '<i8'. */
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the array data from the start of the .npy bytes. */
  dataOffset: number;
}

/** One member of an .npz archive, as the central directory describes it. */
export interface NpzEntry {
  /** The member's file name, e.g. 'W_enc.npy'. */
  fileName: string;
  /** The array name: the file name without '.npy'. */
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  /** Offset of the member's local header in the archive. */
  localHeaderOffset: number;
}

// ------------------------------------------------------------------------------------ npy

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

interface NpyType {
  /** bytes per element */
  bytes: number;
  /** the tensor dtype the values become */
  dtype: DType;
  /** reads element i of a little-endian view */
  kind: 'f' | 'i' | 'u' | 'b';
}

/** The numpy element types read, by kind + size (byte order is handled separately). */
const NPY_TYPES: Record<string, NpyType> = {
  f2: { bytes: 2, dtype: 'float32', kind: 'f' },
  f4: { bytes: 4, dtype: 'float32', kind: 'f' },
  f8: { bytes: 8, dtype: 'float64', kind: 'f' },
  i1: { bytes: 1, dtype: 'int32', kind: 'i' },
  i2: { bytes: 2, dtype: 'int32', kind: 'i' },
  i4: { bytes: 4, dtype: 'int32', kind: 'i' },
  i8: { bytes: 8, dtype: 'int64', kind: 'i' },
  u1: { bytes: 1, dtype: 'int32', kind: 'u' },
  u2: { bytes: 2, dtype: 'int32', kind: 'u' },
  u4: { bytes: 4, dtype: 'int64', kind: 'u' },
  b1: { bytes: 1, dtype: 'bool', kind: 'b' },
};

/** Parses the header of .npy `bytes`; `fail` builds the error for a problem. */
export function parseNpyHeader(bytes: Uint8Array, fail: (problem: string) => Error): NpyHeader {
  if (bytes.length < 10) throw fail(`truncated .npy data: ${bytes.length} bytes, fewer than the 10-byte preamble`);
  for (let i = 0; i < NPY_MAGIC.length; i++)
    if (bytes[i] !== NPY_MAGIC[i])
      throw fail(`not .npy data: bad magic ${hexBytes(bytes.subarray(0, 6))} (expected 93 4e 55 4d 50 59, '\\x93NUMPY')`);
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3) throw fail(`unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are read)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw fail('truncated .npy data: the header length is cut off');
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  const dataOffset = start + headerLen;
  if (dataOffset > bytes.length)
    throw fail(`truncated .npy data: the header claims ${headerLen} bytes but only ${bytes.length - start} follow the preamble`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, dataOffset));
  let dict: Record<string, PyValue>;
  try {
    const parsed = parsePyLiteral(text.trim());
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the header is not a dict');
    dict = parsed as Record<string, PyValue>;
  } catch (e) {
    throw fail(`cannot parse the .npy header ${JSON.stringify(text.trim())}: ${(e as Error).message}`);
  }
  const descr = dict.descr;
  if (typeof descr !== 'string')
    throw fail(`the .npy header's 'descr' is ${JSON.stringify(descr)}; only simple (non-structured) dtypes such as '<f4' are read`);
  const fortran = dict.fortran_order;
  if (typeof fortran !== 'boolean') throw fail(`the .npy header's 'fortran_order' is ${JSON.stringify(fortran)}, expected True or False`);
  const shape = dict.shape;
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0))
    throw fail(`the .npy header's 'shape' is ${JSON.stringify(shape)}, expected a tuple of non-negative integers`);
  return { version: [major, minor], descr, fortranOrder: fortran, shape: shape as number[], dataOffset };
}

/**
 * Reads one .npy array from its bytes. float16 widens to float32; int8/int16/uint8/uint16 to
 * int32; uint32 to int64; bool stays bool. `where` names the source in errors (a file, or
 * 'archive.npz' + member).
 */
export function parseNpy(bytes: Uint8Array, where: { file: string; entry?: string }, options: NpyReadOptions = {}): Tensor {
  const fail = (problem: string): NpzError => new NpzError(where.file, problem, where.entry);
  const h = parseNpyHeader(bytes, fail);
  const order = h.descr[0]!;
  const code = '<>|='.includes(order) ? h.descr.slice(1) : h.descr;
  const type = NPY_TYPES[code];
  if (!type)
    throw fail(
      `unsupported dtype '${h.descr}' (read: ${Object.keys(NPY_TYPES)
        .map((c) => `<${c}`)
        .join(', ')}; '>' big-endian also read)`,
    );
  const bigEndian = order === '>' && type.bytes > 1;
  const count = h.shape.reduce((a, b) => a * b, 1);
  const need = count * type.bytes;
  const available = bytes.length - h.dataOffset;
  if (available < need)
    throw fail(
      `truncated array data: shape (${h.shape.join(', ')}) of '${h.descr}' needs ${need} bytes, but only ${available} are present`,
    );
  // Copy into an aligned buffer (the data may start at any offset), swapping bytes if big-endian.
  const raw = new Uint8Array(need);
  raw.set(bytes.subarray(h.dataOffset, h.dataOffset + need));
  if (bigEndian)
    for (let i = 0; i < need; i += type.bytes)
      for (let a = i, b = i + type.bytes - 1; a < b; a++, b--) [raw[a], raw[b]] = [raw[b]!, raw[a]!];
  const values = decodeValues(raw.buffer, code, count);
  if (h.fortranOrder) {
    if ((options.fortranOrder ?? 'transpose') === 'error')
      throw fail(
        `the array is stored in Fortran (column-major) order (fortran_order: True); save it with C order, or read with fortranOrder: 'transpose'`,
      );
    if (h.shape.length > 1) {
      // Column-major data of shape S is row-major data of reversed(S); reversing the axes gives S.
      return tensor(values, [...h.shape].reverse(), type.dtype).permute();
    }
  }
  return tensor(values, h.shape, type.dtype);
}

function decodeValues(buf: ArrayBuffer, code: string, count: number): TypedArray {
  switch (code) {
    case 'f2':
      return float16ToFloat32(new Uint16Array(buf, 0, count));
    case 'f4':
      return new Float32Array(buf, 0, count);
    case 'f8':
      return new Float64Array(buf, 0, count);
    case 'i1':
      return Int32Array.from(new Int8Array(buf, 0, count));
    case 'i2':
      return Int32Array.from(new Int16Array(buf, 0, count));
    case 'i4':
      return new Int32Array(buf, 0, count);
    case 'i8':
      return new BigInt64Array(buf, 0, count);
    case 'u1':
      return Int32Array.from(new Uint8Array(buf, 0, count));
    case 'u2':
      return Int32Array.from(new Uint16Array(buf, 0, count));
    case 'u4':
      return BigInt64Array.from(new Uint32Array(buf, 0, count), (v) => BigInt(v));
    default: // b1
      return Uint8Array.from(new Uint8Array(buf, 0, count), (v) => (v !== 0 ? 1 : 0));
  }
}

/** Reads a whole .npy file. */
export function loadNpy(path: string, options: NpyReadOptions = {}): Tensor {
  const fd = openOrFail(path);
  try {
    const size = fstatSync(fd).size;
    return parseNpy(readAt(fd, 0, size, path), { file: path }, options);
  } finally {
    closeSync(fd);
  }
}

// ------------------------------------------------------------------------------------ Python literals

type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

/** Parses the subset of Python literals .npy headers use: dicts, tuples, lists, strings, ints, True/False/None. */
function parsePyLiteral(src: string): PyValue {
  let i = 0;
  const ws = (): void => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const value = (): PyValue => {
    ws();
    const c = src[i];
    if (c === undefined) throw new Error('unexpected end');
    if (c === '{') {
      i++;
      const out: Record<string, PyValue> = {};
      for (;;) {
        ws();
        if (src[i] === '}') {
          i++;
          return out;
        }
        const k = value();
        if (typeof k !== 'string') throw new Error(`dict key ${JSON.stringify(k)} is not a string`);
        ws();
        if (src[i] !== ':') throw new Error(`expected ':' at offset ${i}`);
        i++;
        out[k] = value();
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== '}') throw new Error(`expected ',' or '}' at offset ${i}`);
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const out: PyValue[] = [];
      for (;;) {
        ws();
        if (src[i] === close) {
          i++;
          return out;
        }
        out.push(value());
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== close) throw new Error(`expected ',' or '${close}' at offset ${i}`);
      }
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) throw new Error('unterminated string');
      const s = src.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+L?)/.exec(src.slice(i));
    if (!m) throw new Error(`unexpected ${JSON.stringify(src.slice(i, i + 10))} at offset ${i}`);
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number.parseInt(m[0], 10);
  };
  const v = value();
  ws();
  if (i !== src.length) throw new Error(`trailing text ${JSON.stringify(src.slice(i, i + 10))}`);
  return v;
}

// ------------------------------------------------------------------------------------ zip

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const MAX_IO = 1 << 30;

/** The members of an .npz (zip) archive, from its central directory. */
export function listNpz(path: string): NpzEntry[] {
  const fd = openOrFail(path);
  try {
    return readCentralDirectory(fd, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the arrays of an .npz archive by name (the member name without '.npy'): all of them, or
 * only `names` (a name that is missing is an error listing the ones present).
 */
export function loadNpz(path: string, names?: readonly string[], options: NpzReadOptions = {}): Map<string, Tensor> {
  const fd = openOrFail(path);
  try {
    const entries = readCentralDirectory(fd, path);
    const byName = new Map(entries.map((e) => [e.name, e]));
    const wanted = names ?? entries.map((e) => e.name);
    const out = new Map<string, Tensor>();
    for (const name of wanted) {
      const e = byName.get(name);
      if (!e)
        throw new NpzError(path, `no array named '${name}' (the archive holds: ${entries.map((x) => x.name).join(', ') || 'nothing'})`);
      out.set(name, parseNpy(readMember(fd, path, e, options.verifyCrc ?? true), { file: path, entry: e.fileName }, options));
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function readCentralDirectory(fd: number, path: string): NpzEntry[] {
  const fail = (problem: string): NpzError => new NpzError(path, problem);
  const size = fstatSync(fd).size;
  if (size < 22) throw fail(`not a zip archive (.npz): the file has ${size} bytes, fewer than an empty archive's 22 (truncated?)`);
  // The end-of-central-directory record sits in the last 22 + (up to 65535 comment) bytes.
  const tailLen = Math.min(size, 22 + 0xffff);
  const tail = readAt(fd, size - tailLen, tailLen, path);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let p = tailLen - 22; p >= 0; p--)
    if (tv.getUint32(p, true) === SIG_EOCD && p + 22 + tv.getUint16(p + 20, true) <= tailLen) {
      eocd = p;
      break;
    }
  if (eocd < 0)
    throw fail(
      'not a zip archive (.npz): no end-of-central-directory record (the file is truncated, or is not an .npz; an .npy file loads with loadNpy)',
    );
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // zip64: a locator just before the record points at the zip64 end-of-central-directory record.
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== SIG_EOCD64_LOCATOR) throw fail('zip64 archive without its zip64 locator (truncated?)');
    const rec64At = Number(tv.getBigUint64(loc + 8, true));
    if (rec64At + 56 > size) throw fail('zip64 end-of-central-directory record lies past the end of the file (truncated?)');
    const rec = readAt(fd, rec64At, 56, path);
    const rv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    if (rv.getUint32(0, true) !== SIG_EOCD64) throw fail('bad zip64 end-of-central-directory record');
    count = Number(rv.getBigUint64(32, true));
    cdSize = Number(rv.getBigUint64(40, true));
    cdOffset = Number(rv.getBigUint64(48, true));
  }
  if (cdOffset + cdSize > size)
    throw fail(`the central directory (${cdSize} bytes at offset ${cdOffset}) lies past the end of the ${size}-byte file (truncated?)`);
  const cd = readAt(fd, cdOffset, cdSize, path);
  const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const entries: NpzEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cdSize || cv.getUint32(p, true) !== SIG_CENTRAL) throw fail(`central directory entry ${n} is malformed`);
    const flags = cv.getUint16(p + 8, true);
    const method = cv.getUint16(p + 10, true);
    const crc32 = cv.getUint32(p + 16, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let uncompressedSize = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) throw fail(`central directory entry ${n} runs past the directory`);
    const fileName = new TextDecoder(flags & 0x800 ? 'utf-8' : 'latin1').decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: the 64-bit values of the fields stored as 0xffffffff, in order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true);
      const len = cv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const next = (): number => {
          if (q + 8 > e + 4 + len) throw fail(`member '${fileName}': its zip64 extra field is too short`);
          const v = Number(cv.getBigUint64(q, true));
          q += 8;
          return v;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
      }
      e += 4 + len;
    }
    if (flags & 0x1) throw new NpzError(path, 'the member is encrypted', fileName);
    entries.push({
      fileName,
      name: fileName.endsWith('.npy') ? fileName.slice(0, -4) : fileName,
      method,
      compressedSize,
      uncompressedSize,
      crc32,
      localHeaderOffset,
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

function readMember(fd: number, path: string, e: NpzEntry, verifyCrc: boolean): Uint8Array {
  const fail = (problem: string): NpzError => new NpzError(path, problem, e.fileName);
  const size = fstatSync(fd).size;
  if (e.localHeaderOffset + 30 > size) throw fail('its local header lies past the end of the file (truncated?)');
  const lh = readAt(fd, e.localHeaderOffset, 30, path);
  const lv = new DataView(lh.buffer, lh.byteOffset, lh.byteLength);
  if (lv.getUint32(0, true) !== SIG_LOCAL) throw fail(`bad local header signature at offset ${e.localHeaderOffset}`);
  // The local header's name and extra lengths can differ from the central directory's.
  const dataStart = e.localHeaderOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
  if (dataStart + e.compressedSize > size)
    throw fail(
      `its ${e.compressedSize} bytes of data at offset ${dataStart} run past the end of the ${size}-byte file (the archive is truncated)`,
    );
  const stored = readAt(fd, dataStart, e.compressedSize, path);
  let data: Uint8Array;
  if (e.method === 0) data = stored;
  else if (e.method === 8) {
    try {
      const out = inflateRawSync(stored);
      data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (err) {
      throw new NpzError(path, `cannot inflate the deflated data (${(err as Error).message})`, e.fileName, { cause: err });
    }
  } else throw fail(`unsupported compression method ${e.method} (stored (0) and deflate (8) are read)`);
  if (data.length !== e.uncompressedSize)
    throw fail(`holds ${data.length} bytes after decompression, but the directory says ${e.uncompressedSize}`);
  if (verifyCrc) {
    const crc = crc32(data);
    if (crc !== e.crc32)
      throw fail(
        `CRC-32 mismatch (computed ${crc.toString(16).padStart(8, '0')}, stored ${e.crc32.toString(16).padStart(8, '0')}): the data is corrupt`,
      );
  }
  return data;
}

// ------------------------------------------------------------------------------------ helpers

let CRC_TABLE: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3, as zip uses). */
export function crc32(bytes: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  const t = CRC_TABLE;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function openOrFail(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new NpzError(path, `cannot open the file (${(e as Error).message})`, undefined, { cause: e });
  }
}

/** Reads exactly `length` bytes at `position`. */
function readAt(fd: number, position: number, length: number, path: string): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, Math.min(length - done, MAX_IO), position + done);
    if (n === 0) throw new NpzError(path, `unexpected end of file reading ${length} bytes at offset ${position} (truncated?)`);
    done += n;
  }
  return buf;
}

function hexBytes(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}
