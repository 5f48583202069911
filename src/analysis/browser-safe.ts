/**
 * The analyses that need no file system or training loop (no Node built-in is reachable from
 * here): everything of `analysis/index.ts` but the tuned lens and probes, which train and save.
 * The browser entry (src/browser.ts) re-exports this file as it is.
 */
export {
  promptTokens,
  tokenRows,
  toSingleToken,
  logitDiffMetric,
  rowLogitDiffs,
  metricValue,
  applyFinalNorm,
  unembed,
  uncap,
  type PromptInput,
  type TokenChoice,
  type Metric,
} from './common.js';
export { accumulatedResid, logitLens, type AccumulatedResidOptions, type LensPrediction, type LogitLensResult } from './lens.js';
export { logitDirection, residualStack, logitAttrs, directLogitAttribution, dlaHookNames, type DlaOptions, type DlaResult } from './dla.js';
export {
  attentionPattern,
  headScores,
  previousTokenScores,
  duplicateTokenScores,
  inductionScores,
  repeatedRandomTokens,
  type HeadKind,
  type HeadScores,
  type RepeatedTokensOptions,
} from './heads.js';
export {
  ablate,
  ablationHooks,
  ablationSources,
  ablationSite,
  ablationSweep,
  headAblationSweep,
  neuronAblationSweep,
  type AblationTarget,
  type AblationKind,
  type AblationOptions,
  type AblateResult,
} from './ablation.js';
export {
  activationPatching,
  preparePatching,
  patchResidPre,
  patchAttnOut,
  patchMlpOut,
  patchHeadOut,
  patchHeadPattern,
  type PatchingProblem,
  type PatchingOptions,
  type PreparedPatching,
} from './patching.js';
export {
  runPatches,
  patchPasses,
  patchHooks,
  patchedLogits,
  sliceEvaluator,
  defaultMaxBatch,
  type Patch,
  type PatchSite,
  type PatchSource,
  type BatchOptions,
  type ChunkEvaluator,
  type PatchPass,
} from './batched.js';
export {
  shapeBuckets,
  padRows,
  boxSlice,
  rowSlice,
  positionAxes,
  bucketedCache,
  type ShapeBuckets,
  type ShapeBucketOptions,
} from './buckets.js';
export {
  memoryConfig,
  bucketAtLeast,
  forwardBytesPerRow,
  backwardBytesPerRow,
  memoryBudget,
  rowsPerPass,
  planChunks,
  forwardPlan,
  backwardPlan,
  type MemoryOptions,
  type ChunkPlan,
} from './memory.js';
export { inductionCircuitModel } from './known-circuits.js';
export {
  steeringVector,
  steeringHooks,
  steeringHookName,
  generateSteered,
  compareSteering,
  type SteeringHook,
  type SteeringPositions,
  type SteeringVectorOptions,
  type SteerOptions,
  type GenerateSteeredOptions,
  type SteeringComparison,
} from './steering.js';
export {
  attributionPatching,
  compareAttributionPatching,
  pearsonCorrelation,
  logitDiffTensorMetric,
  problemTensorMetric,
  weightedCopiesMetric,
  repeatRows,
  type TensorMetric,
  type AttributionPatchingResult,
  type AttributionPatchingOptions,
  type AttributionKind,
  type AttributionComparison,
} from './attribution.js';
export {
  integratedGradients,
  integrationPoints,
  pathIntegratedGradients,
  inputHook,
  type IntegrationRule,
  type IgBaseline,
  type IntegratedGradientsOptions,
  type IntegratedGradientsResult,
} from './integrated-gradients.js';
export {
  edgeAttributionPatching,
  eapGraph,
  eapCircuit,
  eapNodeGradients,
  normVjp,
  type EapGraph,
  type EapOptions,
  type EapEdge,
  type EapResult,
  type EapCircuit,
} from './eap.js';
export { pathPatching, pathPatchingSweep, type PathComponent, type PathReceiver, type PathPatchingOptions } from './path-patching.js';
