/**
 * The part of the model layer that needs no file system (no Node built-in is reachable from
 * here): the hooked transformer, hook names, weight processing, initialisation, configs and
 * families. `model/index.ts` adds loading from directories and saving; the browser entry
 * (src/browser.ts) re-exports this file as it is.
 */
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
export { FAMILIES, familyFor, type Family, type WeightReader } from './families/index.js';
export type { SkippedTensors } from './families/types.js';
export type { ModelConfig, Activation } from './config.js';
export type { ModelParams, BlockParams, AttnParams, MlpParams, NormParams } from './forward.js';
