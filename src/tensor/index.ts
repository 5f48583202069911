/**
 * glassbox's array engine: Tensor, the op set, eager execution, jit and grad on ONNX Runtime,
 * with a JS reference backend.
 */
import './ops/elementwise.js';
import './ops/reduce.js';
import './ops/linalg.js';
import './ops/indexing.js';
import './ops/nn.js';

export { Tensor, tensor, scalar, zeros, ones, full, zerosLike, arange, randn, rand, where, concat, stack, einsum } from './tensor.js';
export type { TensorLike, SliceSpec, NestedArray } from './tensor.js';
export { jit, type Jitted, type JitStats } from './jit.js';
export { grad, valueAndGrad, markGradTarget, type GradOptions, type GradTargets } from './grad.js';
export { PRNG, seed, permutation } from './prng.js';
export { flatten, mapTensors, namedLeaves, elementCount, type PyTree } from './pytree.js';
export { fromStorage } from './storage.js';
export type { DType, StorageDType, TypedArray } from './dtype.js';
export { float16ToFloat32, bfloat16ToFloat32, float32ToFloat16, float32ToBfloat16 } from './dtype.js';
export { listOps, getOp, defineOp, type OpDef, type Meta } from './op.js';
export { eagerConfig, stats as engineStats } from './trace.js';
export { ortConfig, ortStats, ortAvailable, clearSessionCache, sessionCacheSize, sessionArenaBytes } from './backends/ort.js';
export { mallocConfig, mallocTuning, type MallocTuning } from './backends/native.js';
export { setBackend, getBackend } from './backend.js';
export { OutOfMemoryError, formatBytes } from './alloc-error.js';
export { markWeights, isMarkedWeight } from './weights.js';
