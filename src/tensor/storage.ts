import { bfloat16ToFloat32, float16ToFloat32, fromNumbers, isDType, type StorageDType, type TypedArray } from './dtype.js';
import { fmtShape, sizeOf } from './shape.js';
import { Tensor } from './tensor.js';

const BYTES: Record<StorageDType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, bool: 1, float16: 2, bfloat16: 2 };

/**
 * A tensor from little-endian raw bytes in a storage dtype (as in safetensors). float16 and
 * bfloat16 are widened to float32. The bytes are copied, unless `take` is set: then the tensor
 * may keep the caller's buffer (when it is aligned), which the caller must not change afterwards.
 */
export function fromStorage(bytes: Uint8Array, dtype: StorageDType, shape: readonly number[], options: { take?: boolean } = {}): Tensor {
  const n = sizeOf(shape);
  if (!(dtype in BYTES)) throw new Error(`fromStorage: unknown storage dtype '${String(dtype)}'`);
  if (bytes.byteLength !== n * BYTES[dtype])
    throw new Error(`fromStorage: ${bytes.byteLength} bytes do not hold ${dtype}${fmtShape(shape)} (${n * BYTES[dtype]} bytes)`);
  // Typed-array views need an offset aligned to the element size; otherwise (or without `take`) copy.
  const src = options.take && bytes.byteOffset % BYTES[dtype] === 0 ? bytes : bytes.slice();
  const view = <T>(C: new (b: ArrayBufferLike, off: number, len: number) => T): T => new C(src.buffer, src.byteOffset, n);
  let data: TypedArray;
  switch (dtype) {
    case 'float16':
      return Tensor._concrete(shape, 'float32', float16ToFloat32(view(Uint16Array)));
    case 'bfloat16':
      return Tensor._concrete(shape, 'float32', bfloat16ToFloat32(view(Uint16Array)));
    case 'float32':
      data = view(Float32Array);
      break;
    case 'float64':
      data = view(Float64Array);
      break;
    case 'int32':
      data = view(Int32Array);
      break;
    case 'int64':
      data = view(BigInt64Array);
      break;
    case 'bool':
      data = fromNumbers('bool', view(Uint8Array));
      break;
  }
  if (!isDType(dtype)) throw new Error('unreachable');
  return Tensor._concrete(shape, dtype, data);
}
