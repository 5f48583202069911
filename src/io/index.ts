/** glassbox's file layer: safetensors files and checkpoints, atomic writes, Hugging Face Hub downloads, tokenizers. */
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
  type ReadOptions,
  type WeightDtype,
} from './safetensors.js';
export { Checkpoint, openCheckpoint, SINGLE_FILE, INDEX_FILE, type CheckpointOptions } from './checkpoint.js';
export {
  writeAtomic,
  writeFileAtomic,
  copyFileAtomic,
  sha256File,
  removeStaleTemps,
  type WriteBytes,
  type WriteAtomicOptions,
} from './atomic.js';
export {
  downloadModel,
  resolveModelId,
  validateRepoId,
  repoFolderName,
  hubCacheDir,
  hfHome,
  hubToken,
  HubError,
  DEFAULT_ENDPOINT,
  type DownloadOptions,
  type DownloadProgress,
  type HubErrorKind,
} from './hub/index.js';
export {
  Tokenizer,
  loadTokenizer,
  tokenizerFromFiles,
  type TextFileSource,
  type TokenizerOptions,
  type EncodeOptions,
  type EncodeBatchOptions,
  type EncodedBatch,
  type DecodeOptions,
  type PaddingSide,
} from './tokenizer.js';
export { type EncodeManyOptions, type TokenizerEngine } from './tokenizer.js';
export { rustTokenizersUnavailable } from './rust-tokenizers.js';
// The module's whole surface: the .npy / .npz reader.
export * from './npz.js';
