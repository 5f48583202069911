/**
 * A tiny transformer with hand-set weights whose every component's job is known, for checking
 * that the analysis methods find what is there (the tests use it; it also makes a small demo).
 *
 * Vocabulary of 10 tokens (0 is BOS), context 20, d_model 50 split into four one-hot subspaces:
 *   dims  0..9   token identity (W_E)        dims 10..29  position (W_pos)
 *   dims 30..39  "previous token" (written by L0H0)    dims 40..49  output (read by W_U: dim 40+t is token t's logit)
 * RMSNorm (weights 1), 2 layers of 2 heads (d_head 32), ReLU MLPs of 4 neurons.
 *
 * - L0H0, previous-token head: attends from position i to i-1 and writes that token into dims 30..39.
 * - L0H1, duplicate-token head: attends to earlier positions with the same token; W_O = 0, so it
 *   writes nothing.
 * - L0 MLP neuron 0: always on (bias 1), writes the output direction of token 9.
 * - L1H0, induction head: queries with the current token, keys on the previous-token subspace, so
 *   it attends to the position after an earlier occurrence of the current token, and copies that
 *   position's token into the output subspace (gain 10): it predicts the token that followed last time.
 * - L1H1: attends to position 0 (BOS) and copies it into the output subspace (token 0's logit).
 * - L1 MLP: all weights zero (dead).
 */
import { tensor, type Tensor } from '../tensor/index.js';
import { HookedTransformer } from '../model/hooked.js';
import type { ModelConfig } from '../model/config.js';
import type { ModelParams } from '../model/forward.js';

const V = 10;
const CTX = 20;
const D = 50;
const DH = 32;
const TOK = 0;
const POS = 10;
const PREV = 30;
const OUT = 40;

function mat(rows: number, cols: number, entries: readonly (readonly [number, number, number])[]): Tensor {
  const m = new Float32Array(rows * cols);
  for (const [r, c, v] of entries) m[r * cols + c] = v;
  return tensor(m, [rows, cols]);
}

/** Column `head * DH + dim` of a [d_model, n_heads * d_head] matrix. */
const hc = (head: number, dim: number) => head * DH + dim;

export function inductionCircuitModel(): HookedTransformer {
  const cfg: ModelConfig = {
    family: 'glassbox',
    nLayers: 2,
    dModel: D,
    nHeads: 2,
    nKVHeads: 2,
    dHead: DH,
    dMlp: 4,
    dVocab: V,
    nCtx: CTX,
    norm: 'rmsnorm',
    normEps: 1e-6,
    normWeightOffset: 0,
    positional: 'learned',
    rotaryDim: 0,
    ropeTheta: 0,
    parallelResidual: false,
    act: 'relu',
    gatedMlp: false,
    attnScale: 1 / Math.sqrt(DH),
    attnSoftcap: null,
    finalSoftcap: null,
    slidingWindow: [null, null],
    embedScale: 1,
    postNorms: false,
    qkNorm: false,
    attnBias: false,
    attnOutBias: false,
    mlpBias: true,
    unembedBias: false,
    tiedEmbeddings: false,
    bosTokenId: 0,
    eosTokenId: null,
    padTokenId: null,
  };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  // After RMSNorm, a residual of two one-hots (layer 0) is scaled by 5; of four (layer 1), by sqrt(12.5).
  const s0 = 5;
  const s1 = Math.sqrt(12.5);
  const ones = (n: number) => tensor(new Float32Array(n).fill(1), [n]);
  const norm = () => ({ w: ones(D) });

  const layer0 = {
    W_Q: mat(D, 2 * DH, [
      ...range(CTX).map((i) => [POS + i, hc(0, i), 2] as const), // L0H0: query = own position
      ...range(V).map((t) => [TOK + t, hc(1, t), 2] as const), // L0H1: own token ...
      ...range(CTX).map((i) => [POS + i, hc(1, V + i), -Math.sqrt(8)] as const), // ... minus own position
    ]),
    W_K: mat(D, 2 * DH, [
      ...range(CTX - 1).map((j) => [POS + j, hc(0, j + 1), 2] as const), // L0H0: key = position + 1
      ...range(V).map((t) => [TOK + t, hc(1, t), 2] as const),
      ...range(CTX).map((i) => [POS + i, hc(1, V + i), Math.sqrt(8)] as const),
    ]),
    W_V: mat(D, 2 * DH, [
      ...range(V).map((t) => [TOK + t, hc(0, t), 1 / s0] as const),
      ...range(V).map((t) => [TOK + t, hc(1, t), 1 / s0] as const),
    ]),
    W_O: mat(
      2 * DH,
      D,
      range(V).map((t) => [hc(0, t), PREV + t, 1] as const),
    ), // L0H1 writes nothing
  };
  const layer1 = {
    W_Q: mat(D, 2 * DH, [
      ...range(V).map((t) => [TOK + t, hc(0, t), 3] as const), // L1H0: query = own token
      ...range(CTX).map((i) => [POS + i, hc(1, 0), 3] as const), // L1H1: constant query
    ]),
    W_K: mat(D, 2 * DH, [
      ...range(V).map((t) => [PREV + t, hc(0, t), 3] as const), // L1H0: key = previous token
      [POS + 0, hc(1, 0), 3] as const, // L1H1: key = "is position 0"
    ]),
    W_V: mat(D, 2 * DH, [
      ...range(V).map((t) => [TOK + t, hc(0, t), 1 / s1] as const),
      ...range(V).map((t) => [TOK + t, hc(1, t), 1 / s1] as const),
    ]),
    W_O: mat(2 * DH, D, [
      ...range(V).map((t) => [hc(0, t), OUT + t, 10] as const),
      ...range(V).map((t) => [hc(1, t), OUT + t, 1] as const),
    ]),
  };
  const zeros = (n: number) => tensor(new Float32Array(n), [n]);
  const params: ModelParams = {
    embed: {
      W_E: mat(
        V,
        D,
        range(V).map((t) => [t, TOK + t, 1] as const),
      ),
    },
    pos_embed: {
      W_pos: mat(
        CTX,
        D,
        range(CTX).map((p) => [p, POS + p, 1] as const),
      ),
    },
    blocks: [
      {
        ln1: norm(),
        ln2: norm(),
        attn: layer0,
        mlp: { W_in: mat(D, 4, []), b_in: tensor([1, 0, 0, 0]), W_out: mat(4, D, [[0, OUT + 9, 1]]), b_out: zeros(D) },
      },
      {
        ln1: norm(),
        ln2: norm(),
        attn: layer1,
        mlp: { W_in: mat(D, 4, []), b_in: zeros(4), W_out: mat(4, D, []), b_out: zeros(D) },
      },
    ],
    ln_final: norm(),
    unembed: {
      W_U: mat(
        D,
        V,
        range(V).map((t) => [OUT + t, t, 1] as const),
      ),
    },
  };
  return new HookedTransformer(cfg, params);
}
