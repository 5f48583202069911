/**
 * The one-hot setting the feature tests share (sae-features.test.ts, sae-explain.test.ts): a
 * 1-layer model whose token embeddings are one-hot (token t writes 1 into residual dimension t)
 * and whose position embedding writes (p + 1) / 64 into dimension `vocab`, and an SAE whose
 * feature i fires exactly on token i, with activation 0.5 + (p + 1) / 64 at position p. Every
 * number a feature page shows is then known by hand.
 */
import { HookedTransformer, tensor, type ModelConfig, type Tensor } from '../src/index.js';
import { Sae, makeSaeConfig } from '../src/sae/index.js';
import { randomWeights, tinyConfig } from './tiny-models.js';

/** The one-hot model's sizes: vocabulary (= SAE width), d_model (the vocabulary plus the position dimension and spare ones), context. */
export const ONE_HOT = { vocab: 12, dModel: 16, nCtx: 16 } as const;

/** A [rows, cols] float32 matrix with entries fill(r, c). */
export function matrix(rows: number, cols: number, fill: (r: number, c: number) => number): Tensor {
  const a = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) a[r * cols + c] = fill(r, c);
  return tensor(a, [rows, cols]);
}

/** The one-hot model (its other weights random from `seed`), with a tokenizer that spells token i as "t{i}". */
export function oneHotModel(seed: number): HookedTransformer {
  const { vocab: V, dModel: D, nCtx: S } = ONE_HOT;
  const cfg: ModelConfig = tinyConfig({ nLayers: 1, dModel: D, dVocab: V, nCtx: S });
  const random = randomWeights(cfg, seed, 0.5);
  const W_E = new Float32Array(V * D);
  for (let t = 0; t < V; t++) W_E[t * D + t] = 1;
  const W_pos = new Float32Array(S * D);
  for (let p = 0; p < S; p++) W_pos[p * D + V] = (p + 1) / 64;
  const model = new HookedTransformer(cfg, { ...random, embed: { W_E: tensor(W_E, [V, D]) }, pos_embed: { W_pos: tensor(W_pos, [S, D]) } });
  model.tokenizer = {
    encode: () => [],
    decode: (ids) => ids.map((i) => `t${i}`).join(''),
    toStrTokens: (ids) => ids.map((i) => `t${i}`),
  };
  return model;
}

/** Feature i fires exactly on token i: it reads dimension i plus the position dimension, minus 0.5. */
export function tokenSae(): Sae {
  const { vocab: V, dModel: D } = ONE_HOT;
  const cfg = makeSaeConfig({ architecture: 'standard', d_in: D, d_sae: V, hook_name: 'blocks.0.hook_resid_pre' });
  return new Sae(cfg, {
    W_enc: matrix(D, V, (r, c) => (r === c || r === V ? 1 : 0)),
    W_dec: matrix(V, D, (r, c) => (r === c ? 1 : 0)),
    b_enc: tensor(new Float32Array(V).fill(-0.5), [V]),
    b_dec: tensor(new Float32Array(D), [D]),
  });
}
