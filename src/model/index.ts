/** The hooked transformer: load a model, read and change any activation. */
export {
  HookedTransformer,
  ActivationCache,
  type HookFn,
  type HookContext,
  type NameFilter,
  type TokenInput,
  type RunOptions,
  type GenerateOptions,
  type ModelTokenizer,
} from './hooked.js';
export {
  loadFromDirectory,
  loadModel,
  fromPretrained,
  setLoadDefaults,
  DEFAULT_MODEL_DIR,
  DEFAULT_MODEL_NAMES,
  type LoadOptions,
} from './pretrained.js';
export type { WeightCheckOptions } from './checkpoint-use.js';
export { processWeights, foldLayerNorm, centerWritingWeights, centerUnembed, foldValueBiases, type ProcessOptions } from './process.js';
export { initParams } from './init.js';
export {
  hookName,
  expertHookName,
  layerOf,
  type BlockHookKind,
  type ModelHookKind,
  type NormHookKind,
  type BlockNorm,
} from './hook-names.js';
export { gpt2Config, type Gpt2Dims } from './families/gpt2.js';
export { saveModel, gpt2Incompatibility, gptNeoxIncompatibility, type SaveModelOptions } from './save.js';
export { FAMILIES, familyFor, type Family, type WeightReader } from './families/index.js';
export type { SkippedTensors } from './families/types.js';
export type { ModelConfig, Activation } from './config.js';
export type { ModelParams, BlockParams, AttnParams, MlpParams, NormParams } from './forward.js';
