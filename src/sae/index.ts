/**
 * Sparse autoencoders and transcoders with SAELens's conventions: architectures by SAELens name
 * (standard, topk, batchtopk, jumprelu, gated, matryoshka_batchtopk, transcoders), SAELens's hook
 * points inside the SAE, splicing into a model's forward pass, training losses as pure functions
 * of the parameters, and SAELens's / Gemma Scope's files.
 */
export { Sae, runSae, SAE_HOOK_NAMES, type SaeHookName, type SaeHooks, type RunSaeOptions, type SaeRunResult } from './sae.js';
export {
  attachSae,
  checkSaeModel,
  modelKey,
  setFeature,
  zeroFeature,
  scaleFeature,
  addToFeature,
  type AttachSaeOptions,
  type HookNamed,
} from './attach.js';
export {
  makeSaeConfig,
  parseSaeConfig,
  configToJson,
  isTranscoderArchitecture,
  hookLayerOf,
  dOutOf,
  NORMALIZE_ACTIVATIONS,
  type SaeConfig,
  type SaeConfigInput,
  type NormalizeActivations,
} from './config.js';
export { registerArchitecture, getArchitecture, listArchitectures } from './registry.js';
export type {
  SaeArchitecture,
  SaeParams,
  SaeInitOptions,
  SaeTrainingOptions,
  SaeTrainingLoss,
  SaeTrainingFacts,
  SaeTrainingCoefficient,
  SaeDeadFeatureLoss,
  SaeDeadFeatureRun,
  SaeRunningThreshold,
} from './types.js';
export { standard, standardTrainingLoss, standardTraining, ghostGradsLoss } from './architectures/standard.js';
export { topk, topkFamilyLoss, topkTraining, TOPK_DEFAULTS } from './architectures/topk.js';
export {
  batchtopk,
  batchTopkLoss,
  updateTopkThreshold,
  minPositive,
  batchtopkTraining,
  topkThreshold,
  batchTopkInferenceForm,
} from './architectures/batchtopk.js';
export { jumprelu, jumpRelu, jumpReluLoss, jumpreluTraining } from './architectures/jumprelu.js';
export { gated, gatedLoss, gatePreActs } from './architectures/gated.js';
export { matryoshkaBatchtopk, matryoshkaLoss, matryoshkaWidthsOf } from './architectures/matryoshka-batchtopk.js';
export {
  makeTranscoder,
  transcoder,
  skipTranscoder,
  jumpreluTranscoder,
  jumpreluSkipTranscoder,
  type ArchitectureLoss,
} from './architectures/transcoder.js';
export { stopGradient, jumpReluSte, stepSte, rectangle } from './ops.js';
export {
  decoderRowNorms,
  mseLoss,
  meanL0,
  topkActivation,
  batchTopkActivation,
  auxKLoss,
  initBase,
  foldDecoderNormParams,
  trainingConfig,
  DEFAULT_TRAINING,
  defineTraining,
  trainingFacts,
} from './common.js';
export {
  foldDecoderNorm,
  foldActivationNormScalingFactor,
  estimateNormScalingFactor,
  toInferenceSae,
  normalizeDecoderRows,
  removeParallelGradient,
  geometricMedian,
  logFeatureDensity,
} from './transforms.js';
export {
  loadSae,
  saveSae,
  loadGemmaScopeSae,
  SAE_CFG_FILENAME,
  SAE_WEIGHTS_FILENAME,
  SPARSITY_FILENAME,
  type SaveSaeOptions,
  type GemmaScopeOptions,
} from './formats.js';
// The module's whole surface: the .npy / .npz reader.
export * from '../io/npz.js';
export {
  evaluateSae,
  formatEvalReport,
  runSaeOnBatch,
  saeOutputPoint,
  defaultContextSize,
  defaultPrependBos,
  type EvaluateSaeOptions,
  type SaeEvalReport,
  type SaeBatchActivations,
} from './evals.js';
export {
  FeatureCollector,
  collectFeatures,
  logitEffects,
  histogramEdges,
  saveFeatureStore,
  loadFeatureStore,
  featurePage,
  formatFeaturePage,
  FEATURES_JSON,
  FEATURES_TENSORS,
  type FeatureCollectorOptions,
  type CollectFeaturesOptions,
  type CollectionRunOptions,
  type FeatureStats,
  type FeatureStore,
  type FeatureStoreMeta,
  type FeaturePage,
  type PageContext,
  type PageToken,
  type LogitEffects,
  type HistogramBins,
} from './features/index.js';
export { FeatureStoreReader } from './features/index.js';
export { quantileGroups, type QuantileGroup, type FeatureSamples } from './features/index.js';
export { promptFeatureActs, topFeaturesPerToken, steerWithFeature, type TokenFeature, type FeatureSteerOptions } from './features/index.js';
export {
  planContexts,
  contextBatches,
  arrayTokenReader,
  specialTokenIds,
  defaultCorpusTokens,
  textFileTokens,
  tokenizeDocuments,
  tokenContexts,
  textFileContexts,
  defaultCorpusContexts,
  glassboxCacheDir,
  type TokenSource,
  type TokenReader,
  type IndexedContexts,
  type ContextPlan,
  type ContextBatch,
  type ContextBatchOptions,
  type ContextSource,
  type TokenContextOptions,
} from './contexts.js';
export * from './training/index.js';
export {
  SyntheticFeatures,
  featureRecovery,
  runSyntheticBenchmark,
  formatSyntheticResults,
  type SyntheticOptions,
  type FeatureRecovery,
  type SyntheticRun,
  type SyntheticResult,
  type SyntheticBenchmarkOptions,
} from './synthetic.js';
export type { TracingTranscoders, TracingActivation } from './clt/types.js';
export { transcodersFromSaes } from './clt/from-saes.js';
export * from './clt/transcoder.js';
export * from './clt/train.js';
export * from './clt/evaluate.js';
export * from './clt/formats.js';
export {
  loadPretrainedSae,
  loadLlamaScopeSae,
  resolveSae,
  findPretrainedSae,
  loadReleases,
  parseReleases,
  SAE_RELEASES_ENV,
  type SaeRelease,
  type SaeReleaseEntry,
  type PretrainedSae,
  type PretrainedSaeOptions,
  type ResolvedSae,
  type ReleasesOptions,
} from './pretrained.js';
export * from './explain/index.js';
export { exportNeuronpedia, type NeuronpediaExportOptions, type NeuronpediaExport } from './neuronpedia.js';
export {
  collectTranscoderFeatures,
  saveTranscoderFeatureStores,
  checkTranscoderStore,
  featureStoreDir,
  layerWeightsDigest,
  type CollectTranscoderFeaturesOptions,
} from './clt/features.js';
