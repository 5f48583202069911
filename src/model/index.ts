/** The hooked transformer: load a model, read and change any activation. */
export * from './browser-safe.js';
export {
  loadFromDirectory,
  loadModel,
  fromPretrained,
  setLoadDefaults,
  DEFAULT_MODEL_DIR,
  DEFAULT_MODEL_NAMES,
  type LoadOptions,
} from './pretrained.js';
export { saveModel, gpt2Incompatibility, gptNeoxIncompatibility, type SaveModelOptions } from './save.js';
