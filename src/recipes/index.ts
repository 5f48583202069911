/**
 * Recipes: whole jobs built from the layers below, above all of them and beside the command line.
 * The default model's training run, the toy models of the interpretability literature (grokking,
 * induction heads, superposition) and byte-level BPE training.
 */
export { buildDefaultModel, defaultModelConfig, withSyntheticRows } from './default-model.js';
export { trainBpe, saveTokenizerJson, type TokenizerJson, type TrainBpeOptions } from './bpe.js';
export {
  trainGrokking,
  grokkingConfig,
  modularAdditionData,
  fourierAnalysis,
  writeGrokkingReport,
  type GrokkingOptions,
  type GrokkingResult,
} from './toys/grokking.js';
export { trainInduction, inductionConfig, writeInductionReport, type InductionOptions, type InductionResult } from './toys/induction.js';
export {
  trainSuperposition,
  sweepSparsity,
  analyzeSuperposition,
  writeSuperpositionReport,
  type SuperpositionOptions,
  type SuperpositionResult,
  type SweepOptions,
  type SweepResult,
} from './toys/superposition.js';
