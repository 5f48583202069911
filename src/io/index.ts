/** glassbox's file layer: safetensors files and checkpoints, atomic writes. */
export {
  SafetensorsFile,
  SafetensorsError,
  saveSafetensors,
  loadSafetensors,
  DEFAULT_MAX_HEADER_BYTES,
  type SafetensorsDType,
  type TensorInfo,
  type SafetensorsGap,
  type OpenOptions,
  type SaveOptions,
  type SaveFloatDType,
} from './safetensors.js';
export { Checkpoint, openCheckpoint, SINGLE_FILE, INDEX_FILE, type CheckpointOptions } from './checkpoint.js';
export { writeAtomic, writeFileAtomic, type WriteBytes } from './atomic.js';
