/**
 * Feature pages for an SAE over a corpus (what Neuronpedia shows): for every feature its top-k
 * activating contexts (a window of tokens around the context's max-activating token, with the
 * feature's activation at each token), a histogram of its non-zero activations, its firing
 * density, and its logit effects (the decoder direction through the unembedding, with the final
 * norm's weight folded in: the tokens it promotes and suppresses most).
 *
 * - `collector.ts`: streams activations into per-feature top-k heaps, histograms and counts;
 * - `logit-effects.ts`: each feature's promoted and suppressed tokens;
 * - `store.ts`: `collectFeatures` (model + SAE over a corpus into a store), and the store on disk
 *   (safetensors + JSON);
 * - `page.ts`: one feature's page from a store, as data and as text.
 */
export {
  FeatureCollector,
  histogramEdges,
  type FeatureCollectorOptions,
  type FeatureSamples,
  type FeatureStats,
  type HistogramBins,
} from './collector.js';
export { logitEffects, type LogitEffects } from './logit-effects.js';
export {
  collectFeatures,
  saveFeatureStore,
  loadFeatureStore,
  FEATURES_JSON,
  FEATURES_TENSORS,
  type CollectFeaturesOptions,
  type CollectionRunOptions,
  type FeatureStore,
  type FeatureStoreMeta,
} from './store.js';
export {
  featurePage,
  formatFeaturePage,
  quantileGroups,
  type FeaturePage,
  type PageContext,
  type PageToken,
  type QuantileGroup,
} from './page.js';
export { promptFeatureActs, topFeaturesPerToken, steerWithFeature, type TokenFeature, type FeatureSteerOptions } from './prompt.js';
export { FeatureStoreReader } from './reader.js';
