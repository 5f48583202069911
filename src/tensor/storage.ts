import { bfloat16ToFloat32, float16ToFloat32, fromNumbers, isDType, type StorageDType, type TypedArray } from './dtype.js';
import { fmtShape, sizeOf } from './shape.js';
import { Tensor } from './tensor.js';

const BYTES: Record<StorageDType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, bool: 1, float16: 2, bfloat16: 2 };

/**
 * A tensor from little-endian raw bytes in a storage dtype (as in safetensors). float16 and
 * bfloat16 are widened to float32; the bytes are copied.
 */
export function fromStorage(bytes: Uint8Array, dtype: StorageDType, shape: readonly number[]): Tensor {
  const n = sizeOf(shape);
  if (!(dtype in BYTES)) throw new Error(`fromStorage: unknown storage dtype '${String(dtype)}'`);
  if (bytes.byteLength !== n * BYTES[dtype])
    throw new Error(`fromStorage: ${bytes.byteLength} bytes do not hold ${dtype}${fmtShape(shape)} (${n * BYTES[dtype]} bytes)`);
  const copy = bytes.slice().buffer;
  let data: TypedArray;
  switch (dtype) {
    case 'float16':
      return Tensor._concrete(shape, 'float32', float16ToFloat32(new Uint16Array(copy)));
    case 'bfloat16':
      return Tensor._concrete(shape, 'float32', bfloat16ToFloat32(new Uint16Array(copy)));
    case 'float32':
      data = new Float32Array(copy);
      break;
    case 'float64':
      data = new Float64Array(copy);
      break;
    case 'int32':
      data = new Int32Array(copy);
      break;
    case 'int64':
      data = new BigInt64Array(copy);
      break;
    case 'bool':
      data = fromNumbers('bool', new Uint8Array(copy));
      break;
  }
  if (!isDType(dtype)) throw new Error('unreachable');
  return Tensor._concrete(shape, dtype, data);
}
