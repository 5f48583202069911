/**
 * Reading one floating-point tensor (F32, F16, BF16) of a safetensors file into the array it will
 * keep, in one pass: the reader's fast path, shared by the main thread and the read workers
 * (read-worker.ts). Depends only on node:fs and the 16-bit conversions, so a worker loads little.
 */
import { readSync } from 'node:fs';
import { Tensor, fromStorage } from '../tensor/index.js';
import { bfloat16ToScaledFloat16, widenBfloat16Into, widenFloat16Into } from '../tensor/stored.js';

/** How `read` returns float16 and bfloat16 tensors. */
export type WeightDtype = 'float32' | 'stored';

/** Where a tensor lies: its dtype on disk, shape, and absolute byte range in the file. */
export interface FloatTensorPlace {
  dtype: 'F32' | 'F16' | 'BF16';
  shape: readonly number[];
  /** absolute position of the first byte in the file */
  position: number;
  byteLength: number;
}

/** A read tensor's arrays: float32 values, or 16-bit bits with their row multipliers (see stored.ts). */
export type FloatTensorData = { values: Float32Array } | { bits: Uint16Array; scale: Float32Array | null };

/** Largest single read (Node caps one read/write at 2 GiB - 1). */
const MAX_IO = 1 << 30;

/** Bytes of the reused buffer that 16-bit floats are read through on their way to float32. */
let chunkBytes = 1 << 20;
let scratch: ArrayBuffer | null = null;

/** @internal sets the chunk size of widening reads (tests use tiny chunks to cross boundaries) */
export function _setReadChunkBytes(n: number): void {
  if (!Number.isInteger(n) || n < 2 || n % 2 !== 0) throw new Error(`read chunk must be a positive even number of bytes, got ${n}`);
  chunkBytes = n;
  scratch = null;
}

/** Reads exactly `buf.byteLength` bytes at `position`; `onShort` builds the error when the file ends first. */
export function readExactly(fd: number, buf: Uint8Array, position: number, onShort: (got: number) => Error): void {
  let done = 0;
  while (done < buf.byteLength) {
    const n = readSync(fd, buf, done, Math.min(buf.byteLength - done, MAX_IO), position + done);
    if (n === 0) throw onShort(done);
    done += n;
  }
}

/**
 * Reads a floating-point tensor with positioned reads. F32, and F16/BF16 kept at 2 bytes
 * ('stored'), go straight into their arrays; F16/BF16 widened to float32 go through a reused
 * chunk buffer and are widened into the float32 array chunk by chunk. `onShort(got)` builds the
 * error for a file that ends `got` bytes into the tensor.
 */
export function readFloatTensor(
  fd: number,
  t: FloatTensorPlace,
  weightDtype: WeightDtype,
  onShort: (got: number) => Error,
): FloatTensorData {
  const n = t.byteLength / (t.dtype === 'F32' ? 4 : 2);
  if (t.dtype === 'F32') {
    const values = new Float32Array(n);
    readExactly(fd, new Uint8Array(values.buffer), t.position, onShort);
    return { values };
  }
  if (weightDtype === 'float32') {
    const values = new Float32Array(n);
    const wide = new Uint32Array(values.buffer);
    if (scratch === null) scratch = new ArrayBuffer(chunkBytes);
    for (let off = 0; off < t.byteLength; off += chunkBytes) {
      const buf = new Uint8Array(scratch, 0, Math.min(chunkBytes, t.byteLength - off));
      readExactly(fd, buf, t.position + off, (got) => onShort(off + got));
      const bits = new Uint16Array(scratch, 0, buf.byteLength / 2);
      if (t.dtype === 'BF16') widenBfloat16Into(bits, wide, off / 2);
      else widenFloat16Into(bits, values, off / 2);
    }
    return { values };
  }
  const bits = new Uint16Array(n);
  readExactly(fd, new Uint8Array(bits.buffer), t.position, onShort);
  if (t.dtype === 'F16' || n === 0) return { bits, scale: null };
  const [rows, cols] = t.shape.length === 2 ? [t.shape[0]!, t.shape[1]!] : [1, n];
  const scale = bfloat16ToScaledFloat16(bits, rows, cols);
  if (scale) return { bits, scale };
  // Rows that half precision cannot hold (see bfloat16ToScaledFloat16): widen instead.
  const values = new Float32Array(n);
  widenBfloat16Into(bits, new Uint32Array(values.buffer), 0);
  return { values };
}

/** The tensor over a read's arrays (no copy). */
export function floatTensor(shape: readonly number[], data: FloatTensorData): Tensor {
  if ('values' in data) return fromStorage(new Uint8Array(data.values.buffer), 'float32', shape, { take: true });
  return Tensor._fromStored(shape, 'float32', { format: 'float16', data: data.bits, shape, transposed: false, scale: data.scale });
}
