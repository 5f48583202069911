/** Training: optimizers, schedules, data sources, the training loop and checkpoints. */
export {
  sgd,
  adam,
  adamw,
  clipByGlobalNorm,
  globalNorm,
  decayMatricesOnly,
  type Optimizer,
  type OptState,
  type DecayMask,
} from './optim.js';
export { constant, linearWarmup, cosineDecay, linearDecay, type Schedule, type DecayOptions } from './schedule.js';
export { syntheticData, fixedData, type DataSource, type TokenBatch } from './data.js';
export { tokenWindows, sequentialWindows, epochPlan, epochWindowCount, type TokenWindowOptions } from './windows.js';
export { train, TRAIN_NOT_FINGERPRINTED, type TrainOptions, type TrainResult, type LossFn } from './loop.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  latestCheckpoint,
  listCheckpoints,
  verifyCheckpoint,
  CorruptCheckpointError,
  type CheckpointState,
  type CheckpointContents,
  type CheckpointFile,
} from './checkpoint.js';
export { runFingerprint, withDefaults, treeDigest, tensorDigest, scheduleDigest, fingerprintDiff } from './fingerprint.js';
export { namedLeaves, mapLeaves, fromNamedLeaves } from './tree.js';
export { lmLoss, lmLogits, trainableParams, modelParams, type TrainableParams } from './lm.js';
export { TokenFile, writeTokenFile, tokenizeToFile, readTokenFileMeta, type TokenFileMeta } from './tokens.js';
export {
  loadCorpus,
  splitCorpus,
  corpusManifest,
  CORPUS_SOURCES,
  type Corpus,
  type CorpusDocument,
  type CorpusManifest,
} from './corpus.js';
