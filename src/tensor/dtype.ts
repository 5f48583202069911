/**
 * Data types. Compute dtypes are float32, float64, int32, int64 and bool; float16 and bfloat16
 * exist only as storage formats and are widened to float32 when read (see `fromStorage`).
 */
export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'bool';
export type StorageDType = DType | 'float16' | 'bfloat16';

/** The typed array that backs each dtype (int64 is `BigInt64Array`, as ONNX Runtime expects). */
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface DTypeStorageMap {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  int64: BigInt64Array;
  bool: Uint8Array;
}

export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int64', 'bool'];

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64';
}

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

export function allocate(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'int64':
      return new BigInt64Array(size);
    case 'bool':
      return new Uint8Array(size);
  }
}

/** Copies plain numbers (or bigints) into the storage of `dtype`, rounding/truncating as a cast would. */
export function fromNumbers(dtype: DType, values: ArrayLike<number | bigint | boolean>): TypedArray {
  const n = values.length;
  const out = allocate(dtype, n);
  if (dtype === 'int64') {
    const o = out as BigInt64Array;
    for (let i = 0; i < n; i++) o[i] = toInt64(values[i]!, i);
  } else if (dtype === 'bool') {
    for (let i = 0; i < n; i++) out[i] = values[i] ? 1 : 0;
  } else if (dtype === 'int32') {
    for (let i = 0; i < n; i++) {
      const v = Math.trunc(Number(values[i]));
      // Typed arrays wrap or zero what they cannot hold; a wrong id is worse than an error.
      if (!(v >= -(2 ** 31) && v < 2 ** 31)) throw new RangeError(`int32: value ${String(values[i])} at index ${i} cannot be represented`);
      out[i] = v;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = Number(values[i]);
  }
  return out;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A value as int64 (numbers truncated toward zero); throws where int64 would wrap or has no value (NaN, ±Infinity). */
function toInt64(v: number | bigint | boolean, i: number): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else {
    const x = Math.trunc(Number(v));
    if (!Number.isFinite(x)) throw new RangeError(`int64: value ${String(v)} at index ${i} cannot be represented`);
    b = BigInt(x);
  }
  if (b < INT64_MIN || b > INT64_MAX) throw new RangeError(`int64: value ${String(v)} at index ${i} is outside the int64 range`);
  return b;
}

/** A numeric view for the JS kernels: int64 becomes float64 (exact below 2^53), others as they are. */
export function toNumeric(data: TypedArray): Float32Array | Float64Array | Int32Array | Uint8Array {
  if (data instanceof BigInt64Array) {
    const out = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
    return out;
  }
  return data;
}

/** Result dtype of a binary arithmetic op: the wider of the two; bool promotes to the other side. */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  const rank: Record<DType, number> = { bool: 0, int32: 1, int64: 2, float32: 3, float64: 4 };
  return rank[a] >= rank[b] ? a : b;
}

/** Widens IEEE half-precision bits to float32. */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** Widens bfloat16 bits (the top half of a float32) to float32. */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const wide = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) wide[i] = bits[i]! << 16;
  return new Float32Array(wide.buffer);
}

/** Rounds float32 values to IEEE half-precision bits (round to nearest even). */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    let exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    if (exp >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (exp <= 0) {
      if (exp < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - exp;
      let half = mant >> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (exp << 10) | (mant >> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    out[i] = sign | half;
    exp = 0;
  }
  return out;
}

/** Rounds float32 values to bfloat16 bits (round to nearest even). */
export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = u[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) {
      out[i] = (x >>> 16) | 0x40;
      continue;
    }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
