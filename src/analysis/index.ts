/**
 * The analysis toolkit: logit lens, direct logit attribution, attention head detectors,
 * ablations and activation patching, over a HookedTransformer. TransformerLens's names and
 * semantics where it has them.
 */
export * from './browser-safe.js';
export {
  initTunedLens,
  translate as tunedLensTranslate,
  tunedLensLogits,
  trainTunedLens,
  compareLenses,
  tunedLens,
  saveTunedLens,
  loadTunedLens,
  type TunedLens,
  type TunedLensTranslator,
  type LensTokenData,
  type TrainTunedLensOptions,
  type LensKlResult,
} from './tuned-lens.js';
export {
  trainProbe,
  probePredict,
  probeActivations,
  type ProbeKind,
  type TrainProbeOptions,
  type ProbeResult,
  type ProbeActivationsOptions,
  type ProbeActivations,
} from './probes.js';
