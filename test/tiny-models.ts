/**
 * Tiny random models for tests: every weight random (N(0, 0.3) added to a fresh init, so biases
 * and norm weights are not trivial), small enough for fast tests.
 */
import { HookedTransformer, PRNG, initParams, mapTensors, randn, type ModelConfig, type ModelParams } from '../src/index.js';
import type { PatchingProblem } from '../src/analysis/patching.js';

/** The tiny model's vocabulary size. */
export const TINY_VOCAB = 23;
const V = TINY_VOCAB;

/**
 * The tiny models' config: 2 layers, LayerNorm, d_model 16, 4 heads of 4, d_mlp 32, learned
 * positions, context 16, GELU, every bias, untied unembedding; `over` changes any field (the
 * sliding-window list follows nLayers).
 */
export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  const cfg: ModelConfig = {
    family: 'glassbox',
    nLayers: 2,
    dModel: 16,
    nHeads: 4,
    nKVHeads: 4,
    dHead: 4,
    dMlp: 32,
    dVocab: V,
    nCtx: 16,
    norm: 'layernorm',
    normEps: 1e-5,
    normWeightOffset: 0,
    positional: 'learned',
    rotaryDim: 0,
    ropeTheta: 10000,
    parallelResidual: false,
    act: 'gelu_new',
    gatedMlp: false,
    attnScale: 0.5,
    attnSoftcap: null,
    finalSoftcap: null,
    embedScale: 1,
    postNorms: false,
    qkNorm: false,
    attnBias: true,
    attnOutBias: true,
    mlpBias: true,
    unembedBias: true,
    tiedEmbeddings: false,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
    slidingWindow: [],
    ...over,
  };
  return { ...cfg, slidingWindow: over.slidingWindow ?? new Array<null>(cfg.nLayers).fill(null) };
}

/**
 * A fresh init of `cfg` with N(0, scale^2) noise added to every tensor (biases and norm weights
 * included, so none is trivially 0 or 1), from a PRNG seeded with `seed`.
 */
export function randomWeights(cfg: ModelConfig, seed: number, scale = 0.3): ModelParams {
  const rng = new PRNG(seed);
  return mapTensors(initParams(cfg, { seed }), (t) =>
    randn([...t.shape], { rng })
      .mul(scale)
      .add(t),
  ) as ModelParams;
}

/** A tiny model (tinyConfig with `over`) with random weights (`randomWeights`). */
export function tinyRandomModel(seed: number, over: Partial<ModelConfig> = {}, scale = 0.3): HookedTransformer {
  const cfg = tinyConfig(over);
  return new HookedTransformer(cfg, randomWeights(cfg, seed, scale));
}

/** A patching problem on a two-row batch of the tiny vocabulary (the analysis tests share it). */
export const TINY_PATCHING_PROBLEM: PatchingProblem = {
  clean: [
    [1, 5, 7, 2, 9, 4],
    [3, 8, 6, 11, 0, 4],
  ],
  corrupted: [
    [1, 5, 12, 2, 10, 4],
    [3, 8, 2, 11, 1, 4],
  ],
  answer: [3, 7],
  wrong: [6, 10],
};

/**
 * The analysis tests' model (attribution, path patching): tinyConfig with 2 heads of 8, a
 * vocabulary of 13, context 8 and no unembedding bias (`over` changes any field), every weight
 * perturbed by N(0, scale^2) (`randomWeights`).
 */
export function analysisModel(over: Partial<ModelConfig>, seed: number, scale = 0.2): HookedTransformer {
  const cfg = tinyConfig({
    nHeads: 2,
    nKVHeads: 2,
    dHead: 8,
    dVocab: 13,
    nCtx: 8,
    attnScale: 1 / Math.sqrt(8),
    unembedBias: false,
    ...over,
  });
  return new HookedTransformer(cfg, randomWeights(cfg, seed, scale));
}
