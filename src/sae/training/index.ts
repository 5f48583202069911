/**
 * SAE training with SAELens's conventions: the activation store (a model's activations at a hook
 * point, shuffled in a mixing buffer, resumable), activation caches on disk, the trainer, and the
 * schedules. (Token contexts are `../contexts.ts`, exported from the sae index.)
 */
export {
  ActivationStore,
  CachedActivationStore,
  activationStore,
  cacheActivations,
  readActivationManifest,
  ACTIVATION_MANIFEST,
  type ActivationBatch,
  type ActivationMetadata,
  type ActivationSource,
  type ActivationStoreOptions,
  type DatasetStoreOptions,
  type ActivationCacheManifest,
  type CacheActivationsOptions,
  type CachedStoreOptions,
} from './activation-store.js';
export { trainSae, type TrainSaeOptions, type TrainSaeResult } from './trainer.js';
export { saeLrSchedule, coefficientSchedule, type SaeLrScheduleOptions } from './schedules.js';
