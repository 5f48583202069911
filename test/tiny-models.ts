/**
 * Tiny random models for tests: every weight random (N(0, 0.3) added to a fresh init, so biases
 * and norm weights are not trivial), small enough for fast tests.
 */
import { HookedTransformer, PRNG, initParams, mapTensors, randn, type ModelConfig, type ModelParams } from '../src/index.js';

/** The tiny model's vocabulary size. */
export const TINY_VOCAB = 23;
const V = TINY_VOCAB;

/** A 2-layer LayerNorm model (d_model 16, 4 heads, learned positions, context 16) with random weights. */
export function tinyRandomModel(seed: number): HookedTransformer {
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
    slidingWindow: [null, null],
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
  };
  const rng = new PRNG(seed);
  const params = mapTensors(initParams(cfg, { seed }), (t) =>
    randn([...t.shape], { rng })
      .mul(0.3)
      .add(t),
  ) as ModelParams;
  return new HookedTransformer(cfg, params);
}
