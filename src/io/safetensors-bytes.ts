/**
 * safetensors without a file system (browsers): parse a file held in memory (a dropped `File`,
 * a downloaded buffer), or read one over HTTP with Range requests, fetching only the header and
 * the tensors asked for. Floats stored as float16/bfloat16 widen to float32 as on Node
 * (src/io/safetensors.ts, which reads files by descriptor and stays the Node path).
 *
 * Every problem is refused with the file (`where`), the tensor and what is wrong.
 */
import { Tensor, float16ToFloat32, bfloat16ToFloat32, type DType } from '../tensor/index.js';

type Code = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'BOOL';
const SPECS: Record<Code, { bytes: number; dtype: DType }> = {
  F32: { bytes: 4, dtype: 'float32' },
  F16: { bytes: 2, dtype: 'float32' },
  BF16: { bytes: 2, dtype: 'float32' },
  F64: { bytes: 8, dtype: 'float64' },
  I64: { bytes: 8, dtype: 'int64' },
  I32: { bytes: 4, dtype: 'int32' },
  BOOL: { bytes: 1, dtype: 'bool' },
};

/** Largest header accepted (as src/io/safetensors.ts). */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  code: Code;
  shape: readonly number[];
  /** Byte offsets into the data section (after the 8-byte length and the header). */
  begin: number;
  end: number;
}

/** A parsed header: the tensors, and where the data section starts in the file. */
export interface SafetensorsLayout {
  where: string;
  dataStart: number;
  entries: Map<string, SafetensorsEntry>;
}

/** Reads the header length from the file's first 8 bytes (little-endian u64). */
export function headerLength(first8: Uint8Array, where: string): number {
  if (first8.byteLength < 8) throw new Error(`${where}: not a safetensors file (shorter than its 8-byte header length)`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_HEADER_BYTES))
    throw new Error(`${where}: not a safetensors file (its first 8 bytes give a header of ${n} bytes; expected 2 to ${MAX_HEADER_BYTES})`);
  return Number(n);
}

/** Parses and checks the JSON header (`header` = its bytes), given the file's total size. */
export function parseLayout(header: Uint8Array, fileSize: number, where: string): SafetensorsLayout {
  const dataStart = 8 + header.byteLength;
  if (dataStart > fileSize) throw new Error(`${where}: truncated (the header says ${header.byteLength} bytes, the file has ${fileSize})`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(header));
  } catch (e) {
    throw new Error(`${where}: the header is not valid UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${where}: the header is not a JSON object`);
  const dataSize = fileSize - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const fail = (problem: string) => new Error(`${where}: tensor '${name}': ${problem}`);
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw fail('its header entry is not a JSON object');
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in SPECS))
      throw fail(`unsupported dtype ${JSON.stringify(dtype)} (the browser reader takes ${Object.keys(SPECS).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0))
      throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0) ||
      offsets[0] > offsets[1]
    )
      throw fail(`data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] with 0 <= begin <= end`);
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) throw fail(`data_offsets [${begin}, ${end}] run past the data section (${dataSize} bytes): the file is truncated`);
    const code = dtype as Code;
    const needed = (shape as number[]).reduce((a, d) => a * d, 1) * SPECS[code].bytes;
    if (needed !== end - begin)
      throw fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${code}[${shape.join(', ')}] needs ${needed}`);
    entries.set(name, { name, code, shape: [...(shape as number[])], begin, end });
  }
  return { where, dataStart, entries };
}

/** The tensor stored in `bytes` (exactly the entry's data, any alignment), widened as on Node. */
export function decodeTensor(entry: SafetensorsEntry, bytes: Uint8Array): Tensor {
  // A copy: aligned for the typed array, and independent of the (possibly large) source buffer.
  const own = bytes.slice();
  const n = own.byteLength / SPECS[entry.code].bytes;
  const shape = [...entry.shape];
  switch (entry.code) {
    case 'F32':
      return Tensor._concrete(shape, 'float32', new Float32Array(own.buffer, 0, n));
    case 'F16':
      return Tensor._concrete(shape, 'float32', float16ToFloat32(new Uint16Array(own.buffer, 0, n)));
    case 'BF16':
      return Tensor._concrete(shape, 'float32', bfloat16ToFloat32(new Uint16Array(own.buffer, 0, n)));
    case 'F64':
      return Tensor._concrete(shape, 'float64', new Float64Array(own.buffer, 0, n));
    case 'I64':
      return Tensor._concrete(shape, 'int64', new BigInt64Array(own.buffer, 0, n));
    case 'I32':
      return Tensor._concrete(shape, 'int32', new Int32Array(own.buffer, 0, n));
    case 'BOOL':
      return Tensor._concrete(shape, 'bool', own);
  }
}

/** Every tensor of a safetensors file held in memory. */
export function readSafetensorsBytes(file: Uint8Array, where: string): Map<string, Tensor> {
  const layout = parseLayout(file.subarray(8, 8 + headerLength(file, where)), file.byteLength, where);
  const out = new Map<string, Tensor>();
  for (const e of layout.entries.values())
    out.set(e.name, decodeTensor(e, file.subarray(layout.dataStart + e.begin, layout.dataStart + e.end)));
  return out;
}

/** Fetches bytes [start, end) of `url` with a Range request; refuses a server that ignores Range. */
async function fetchRange(url: string, start: number, end: number, init: RequestInit): Promise<{ bytes: Uint8Array; size: number }> {
  const res = await fetch(url, {
    ...init,
    headers: { ...(init.headers as Record<string, string> | undefined), Range: `bytes=${start}-${end - 1}` },
  });
  if (res.status !== 206) {
    throw new Error(
      res.status === 200
        ? `${url}: the server ignored the Range request (answered 200 with the whole file); glassbox reads safetensors in ranges`
        : `${url}: HTTP ${res.status} ${res.statusText}`,
    );
  }
  const total = /\/(\d+)$/.exec(res.headers.get('Content-Range') ?? '');
  if (!total) throw new Error(`${url}: the range answer has no Content-Range total size`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.byteLength !== end - start) throw new Error(`${url}: asked for ${end - start} bytes at ${start}, got ${bytes.byteLength}`);
  return { bytes, size: Number(total[1]) };
}

/**
 * Reads tensors of a safetensors file over HTTP with Range requests: the header first, then the
 * data of the tensors named (default all) in one request spanning them.
 */
export async function fetchSafetensors(url: string, names?: readonly string[], init: RequestInit = {}): Promise<Map<string, Tensor>> {
  const first = await fetchRange(url, 0, 8, init);
  const n = headerLength(first.bytes, url);
  const header = await fetchRange(url, 8, 8 + n, init);
  const layout = parseLayout(header.bytes, first.size, url);
  const wanted = names ?? [...layout.entries.keys()];
  const entries = wanted.map((name) => {
    const e = layout.entries.get(name);
    if (!e) throw new Error(`${url}: no tensor '${name}'`);
    return e;
  });
  const out = new Map<string, Tensor>();
  const nonEmpty = entries.filter((e) => e.end > e.begin);
  if (nonEmpty.length > 0) {
    const lo = Math.min(...nonEmpty.map((e) => e.begin));
    const hi = Math.max(...nonEmpty.map((e) => e.end));
    const { bytes } = await fetchRange(url, layout.dataStart + lo, layout.dataStart + hi, init);
    for (const e of entries) out.set(e.name, decodeTensor(e, bytes.subarray(e.begin - lo, e.end - lo)));
  }
  for (const e of entries) if (!out.has(e.name)) out.set(e.name, decodeTensor(e, new Uint8Array(0)));
  return out;
}
