/**
 * Stored forms: a concrete tensor whose values are held in another form than a plain array of its
 * dtype, and decoded where they are used.
 *
 * Two forms exist, and combine:
 * - 16-bit floats: a float32 tensor held as IEEE half-precision bits (2 bytes a value), optionally
 *   with a power-of-two multiplier per stored row. Half bits with such multipliers hold every
 *   bfloat16 value of a row exactly when the row's values span at most about 32 binades (see
 *   `bfloat16ToScaledFloat16`), which is how bfloat16 checkpoints keep 2 bytes a weight:
 *   onnxruntime-node cannot feed bfloat16 tensors, and ONNX Runtime's CPU MatMul has no 16-bit
 *   kernel, but its Cast from float16 is exact and fast.
 * - Transposed views: a 2-D tensor that is the transpose of the stored array (an eager
 *   `transpose()` of a large matrix shares its storage instead of copying it).
 *
 * Inside jit the stored array itself is fed to ONNX Runtime, and the graph decodes it (Cast,
 * Mul by the multipliers, Transpose; ONNX Runtime folds a Transpose into the MatMul that reads
 * it). Outside, anything that needs the values (`dataSync`, eager ops) decodes them in JS:
 * transposed float32 views keep what they decoded, 16-bit forms decode on every use (keeping the
 * float32 values would undo the saving).
 */
import type { TypedArray } from './dtype.js';

/** @internal How a concrete tensor's values are held. */
export interface StoredForm {
  /** 'plain': `data` holds values of the tensor's dtype; 'float16': half bits of a float32 tensor. */
  readonly format: 'plain' | 'float16';
  readonly data: TypedArray | Uint16Array;
  /** The shape of `data`: the tensor's own shape, or its transpose for a transposed view. */
  readonly shape: readonly number[];
  /** The tensor is the 2-D transpose of `data`. */
  readonly transposed: boolean;
  /**
   * 'float16' only: power-of-two multipliers, one per stored row (length shape[0], applied as
   * [rows, 1]), or null for none.
   */
  readonly scale: Float32Array | null;
}

let halfTable: Float32Array | null = null;

/** float32 value of every half-precision bit pattern (256 KB, built on first use). */
export function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}

/** Widens bfloat16 bits into `dst` (float32 bits) from element `at`: the one conversion pass of a read. */
export function widenBfloat16Into(src: Uint16Array, dst: Uint32Array, at: number): void {
  const n = src.length;
  if (src.byteOffset % 4 !== 0) {
    for (let i = 0; i < n; i++) dst[at + i] = src[i]! << 16;
    return;
  }
  // Two values per 32-bit load (little-endian: the first value is the low half).
  const pairs = new Uint32Array(src.buffer, src.byteOffset, n >> 1);
  const m = pairs.length;
  let j = at;
  for (let i = 0; i < m; i++) {
    const w = pairs[i]!;
    dst[j++] = w << 16;
    dst[j++] = w & 0xffff0000;
  }
  if (n & 1) dst[j] = src[n - 1]! << 16;
}

/** Widens half-precision bits into `dst` from element `at` (exact, by table). */
export function widenFloat16Into(src: Uint16Array, dst: Float32Array, at: number): void {
  const t = float16Table();
  const n = src.length;
  for (let i = 0; i < n; i++) dst[at + i] = t[src[i]!]!;
}

/**
 * Rewrites bfloat16 bits, in place, as half-precision bits times a power of two per row: row r of
 * the [rows, cols] array holds `half(bits) * scale[r]`, exactly the bfloat16 values. Returns the
 * multipliers, or null (and leaves `bits` unchanged) when some row cannot be held exactly: an
 * infinity or NaN, or values spanning more binades than half precision holds (more than 39
 * between the largest exponent and the lowest set bit; weights rarely span more than 30).
 */
export function bfloat16ToScaledFloat16(bits: Uint16Array, rows: number, cols: number): Float32Array | null {
  const shift = new Int32Array(rows);
  // Pass 1: per row, the shift k that puts the largest value at the top of half precision, and a
  // check that the smallest set bit then stays at or above half precision's 2^-24.
  for (let r = 0; r < rows; r++) {
    const start = r * cols;
    let maxA = 0;
    let minA = 0x7fff;
    for (let i = start; i < start + cols; i++) {
      const a = bits[i]! & 0x7fff;
      if (a > maxA) maxA = a;
      if (a !== 0 && a < minA) minA = a;
    }
    if (maxA === 0) continue; // all zeros: k = 0
    const maxE = maxA >> 7;
    if (maxE === 0xff) return null; // infinity or NaN
    const k = 142 - Math.max(maxE, 1); // top exponent (maxE - 127) + k = 15
    // Lowest set bit of a value with biased exponent e is at least e - 134 (subnormals: 1 - 134).
    if (Math.max(minA >> 7, 1) - 134 + k < -24 && !rowFits(bits, start, cols, maxE, k)) return null;
    shift[r] = k;
  }
  // Pass 2: rewrite.
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const k = shift[r]!;
    scale[r] = 2 ** -k;
    const adj = (k - 112) << 10; // half biased exponent = e + k - 112
    for (let i = r * cols; i < (r + 1) * cols; i++) {
      const b = bits[i]!;
      const a = b & 0x7fff;
      if (a === 0) continue; // signed zero: the same bits in both formats
      const e = a >> 7;
      if (e !== 0 && e + k - 112 >= 1) bits[i] = (b & 0x8000) | ((a << 3) + adj);
      else bits[i] = (b & 0x8000) | halfBits(a, k);
    }
  }
  return scale;
}

/** The exact check for one row, when the quick bound fails: every value's lowest set bit, scaled, is >= 2^-24. */
function rowFits(bits: Uint16Array, start: number, cols: number, maxE: number, k: number): boolean {
  if (maxE - 127 + k > 15) return false;
  for (let i = start; i < start + cols; i++) {
    const a = bits[i]! & 0x7fff;
    if (a === 0) continue;
    const e = a >> 7;
    const sig = e === 0 ? a & 0x7f : (a & 0x7f) | 0x80;
    const lsb = (e === 0 ? -133 : e - 134) + (31 - Math.clz32(sig & -sig));
    if (lsb + k < -24) return false;
  }
  return true;
}

/**
 * Half-precision bits (without sign) of bfloat16 magnitude bits `a` times 2^k, for the values the
 * quick rewrite does not cover (half subnormals, bfloat16 subnormals). Exact when pass 1 accepted
 * the row.
 */
function halfBits(a: number, k: number): number {
  const e = a >> 7;
  const sig = e === 0 ? a & 0x7f : (a & 0x7f) | 0x80;
  const q = (e === 0 ? -133 : e - 134) + k; // value * 2^k = sig * 2^q
  const top = q + 31 - Math.clz32(sig);
  if (top < -14) return sig * 2 ** (q + 24); // subnormal: the field counts units of 2^-24
  return ((top + 15) << 10) | (sig * 2 ** (q - top + 10) - 1024);
}

/** Transposes a [rows, cols] array into `dst` ([cols, rows]), in cache-sized tiles. */
export function transpose2d(src: TypedArray, rows: number, cols: number, dst: TypedArray): void {
  const T = 32;
  const s = src as Float64Array; // one element type per call; the casts only quiet the checker
  const d = dst as Float64Array;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(r0 + T, rows);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(c0 + T, cols);
      for (let r = r0; r < r1; r++) {
        let at = r * cols + c0;
        for (let c = c0; c < c1; c++) d[c * rows + r] = s[at++]!;
      }
    }
  }
}

/** The values a stored form stands for, as a fresh array of `alloc`'s type. */
export function decodeStored(form: StoredForm, alloc: (n: number) => TypedArray): TypedArray {
  const n = form.data.length;
  let values: TypedArray;
  if (form.format === 'float16') {
    const bits = form.data as Uint16Array;
    const out = new Float32Array(n);
    widenFloat16Into(bits, out, 0);
    if (form.scale) {
      const rows = form.scale.length;
      const cols = rows === 0 ? 0 : n / rows;
      for (let r = 0; r < rows; r++) {
        const s = form.scale[r]!;
        if (s !== 1) for (let i = r * cols; i < (r + 1) * cols; i++) out[i] = out[i]! * s;
      }
    }
    values = out;
  } else values = form.data as TypedArray;
  if (!form.transposed) return values === form.data ? values.slice() : values;
  const [rows, cols] = form.shape as [number, number];
  const out = alloc(n);
  transpose2d(values, rows, cols, out);
  return out;
}
