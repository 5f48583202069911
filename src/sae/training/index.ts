/**
 * SAE training with SAELens's conventions: the activation store (a model's activations at a hook
 * point, shuffled in a mixing buffer, resumable), activation caches on disk, the trainer, and the
 * schedules. (Token contexts are `../contexts.ts`, exported from the sae index.)
 */
export {
  ActivationStore,
  activationStore,
  type ActivationBatch,
  type ActivationMetadata,
  type ActivationSource,
  type ActivationStoreOptions,
  type DatasetStoreOptions,
} from './activation-store.js';
export {
  CachedActivationStore,
  cacheActivations,
  readActivationManifest,
  ACTIVATION_MANIFEST,
  type ActivationCacheManifest,
  type CacheActivationsOptions,
  type CachedStoreOptions,
} from './activation-cache.js';
export { trainSae, type TrainSaeOptions, type TrainSaeResult } from './trainer.js';
export { saeLrSchedule, coefficientSchedule, type SaeLrScheduleOptions } from './schedules.js';
