/**
 * Optional weight processing, as TransformerLens does by default (here off by default, so that
 * outputs match Hugging Face). Each transform maps (config, params) to new params and leaves
 * the model's function unchanged (up to float error), except that hook values inside the
 * residual stream move by design: centring removes the mean of every vector written to it.
 */
import { zeros, type Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { BlockParams, ModelParams, NormParams } from './forward.js';

const col = (v: Tensor): Tensor => v.reshape([-1, 1]);

/** Effective norm weight (Gemma stores w - 1). */
function normWeight(cfg: ModelConfig, n: NormParams): Tensor | undefined {
  return n.w && cfg.normWeightOffset ? n.w.add(cfg.normWeightOffset) : n.w;
}

/** Folds a norm's weight and bias into the matrix that reads its output: W [..., d, out], b [out]. */
function foldInto(
  w: Tensor | undefined,
  b: Tensor | undefined,
  W: Tensor,
  bias: Tensor | undefined,
  centre: boolean,
): { W: Tensor; b: Tensor | undefined } {
  let outB = bias;
  if (b) outB = (bias ?? zeros([W.shape[1]!])).add(b.matmul(W));
  let outW = w ? col(w).mul(W) : W;
  // LayerNorm output has zero mean over d_model, so the mean row of W contributes nothing.
  if (centre) outW = outW.sub(outW.mean(-2, true));
  return { W: outW, b: outB };
}

/**
 * Folds each norm's weight (and bias) into the weights that read it: ln1 into W_Q/W_K/W_V, ln2
 * into W_in/W_gate (a mixture of experts: into the router and every expert's W_in/W_gate),
 * ln_final into W_U. Norms become weightless (LNPre / RMSPre). For LayerNorm models the reading
 * weights are also centred over d_model, as TransformerLens does. Norms after attention and the
 * MLP (Gemma 2, OLMo 2) feed the residual stream, not a matrix, and stay as they are.
 */
export function foldLayerNorm(cfg: ModelConfig, p: ModelParams): ModelParams {
  refuseNormAfterAdd(cfg, 'foldLn');
  const centre = cfg.norm === 'layernorm';
  const blocks = p.blocks.map((blk, l): BlockParams => {
    // OLMo 2 has no norms before attention and the MLP: nothing to fold there.
    const [ln1, ln2]: NormParams[] = cfg.preNorms === false ? [{}, {}] : [blk.ln1, blk.ln2];
    const w1 = normWeight(cfg, ln1);
    const q = foldInto(w1, ln1.b, blk.attn.W_Q, blk.attn.b_Q, centre);
    const k = foldInto(w1, ln1.b, blk.attn.W_K, blk.attn.b_K, centre);
    const v = foldInto(w1, ln1.b, blk.attn.W_V, blk.attn.b_V, centre);
    const w2 = normWeight(cfg, ln2);
    const mIn = blk.mlp && foldInto(w2, ln2.b, blk.mlp.W_in, blk.mlp.b_in, centre);
    const mGate = blk.mlp?.W_gate ? foldInto(w2, ln2.b, blk.mlp.W_gate, blk.mlp.b_gate, centre) : undefined;
    // Mixture of experts (Mixtral): the router and the experts have no biases to take a LayerNorm's.
    if (blk.moe && ln2.b)
      throw new Error(`processWeights: block ${l}: cannot fold a LayerNorm bias into a mixture of experts (which has no biases)`);
    const fold = (W: Tensor) => foldInto(w2, undefined, W, undefined, centre).W;
    return {
      ...blk,
      ln1: {},
      ln2: {},
      attn: { ...blk.attn, W_Q: q.W, b_Q: q.b, W_K: k.W, b_K: k.b, W_V: v.W, b_V: v.b },
      ...(blk.mlp && mIn ? { mlp: { ...blk.mlp, W_in: mIn.W, b_in: mIn.b, ...(mGate ? { W_gate: mGate.W, b_gate: mGate.b } : {}) } } : {}),
      ...(blk.moe ? { moe: { ...blk.moe, W_router: fold(blk.moe.W_router), W_gate: fold(blk.moe.W_gate), W_in: fold(blk.moe.W_in) } } : {}),
    };
  });
  const u = foldInto(normWeight(cfg, p.ln_final), p.ln_final.b, p.unembed.W_U, p.unembed.b_U, centre);
  return { ...p, blocks, ln_final: {}, unembed: { W_U: u.W, b_U: u.b } };
}

/**
 * Subtracts the mean over d_model from every weight that writes to the residual stream (W_E,
 * W_pos, W_O, b_O, W_out, b_out; every expert's W_out, whose weighted sum is then centred too). Only meaningful before a LayerNorm, which removes that mean
 * anyway; a no-op for RMSNorm models, as in TransformerLens.
 */
export function centerWritingWeights(cfg: ModelConfig, p: ModelParams): ModelParams {
  refuseNormAfterAdd(cfg, 'centerWritingWeights');
  if (cfg.norm !== 'layernorm') return p;
  const c = (t: Tensor | undefined): Tensor | undefined => t && t.sub(t.mean(-1, true));
  return {
    ...p,
    // With BLOOM's embedding LayerNorm, W_E is read by that norm (which removes the mean anyway).
    embed: { ...p.embed, W_E: c(p.embed.W_E)! },
    ...(p.pos_embed ? { pos_embed: { W_pos: c(p.pos_embed.W_pos)! } } : {}),
    blocks: p.blocks.map((blk) => ({
      ...blk,
      attn: { ...blk.attn, W_O: c(blk.attn.W_O)!, b_O: c(blk.attn.b_O) },
      ...(blk.mlp ? { mlp: { ...blk.mlp, W_out: c(blk.mlp.W_out)!, b_out: c(blk.mlp.b_out) } } : {}),
      ...(blk.moe ? { moe: { ...blk.moe, W_out: c(blk.moe.W_out)! } } : {}),
    })),
  };
}

/**
 * Subtracts the mean over the vocabulary from W_U and b_U: logits shift by a constant per
 * position, so softmax and log-probabilities are unchanged. Skipped with final soft-capping
 * (Gemma 2), where a shift changes the capped logits.
 */
export function centerUnembed(cfg: ModelConfig, p: ModelParams): ModelParams {
  if (cfg.finalSoftcap !== null) return p;
  const { W_U, b_U } = p.unembed;
  return { ...p, unembed: { W_U: W_U.sub(W_U.mean(-1, true)), b_U: b_U && b_U.sub(b_U.mean()) } };
}

/**
 * Moves the value biases into the output bias: attention patterns sum to 1, so each head adds
 * b_V @ W_O whatever it attends to. With grouped-query attention each key/value head's bias is
 * shared by its group of query heads.
 */
export function foldValueBiases(cfg: ModelConfig, p: ModelParams): ModelParams {
  const g = cfg.nHeads / cfg.nKVHeads;
  return {
    ...p,
    blocks: p.blocks.map((blk) => {
      const { b_V, W_O, b_O } = blk.attn;
      if (!b_V) return blk;
      const perHead = b_V
        .reshape([cfg.nKVHeads, 1, cfg.dHead])
        .expand([cfg.nKVHeads, g, cfg.dHead])
        .reshape([cfg.nHeads * cfg.dHead]);
      const moved = perHead.matmul(W_O);
      return { ...blk, attn: { ...blk.attn, b_V: zeros(b_V.shape), b_O: b_O ? b_O.add(moved) : moved } };
    }),
  };
}

/**
 * With norms after the residual add (OPT-350m) the norms' outputs are the residual stream itself
 * and the embeddings reach the first attention un-normalised: neither folding nor centring keeps
 * the function.
 */
function refuseNormAfterAdd(cfg: ModelConfig, what: string): void {
  if (cfg.normAfterAdd)
    throw new Error(
      `processWeights: ${what} is not possible for a model whose norms act after the residual add (${cfg.family}, e.g. OPT-350m): ` +
        `their outputs are the residual stream; pass { foldLn: false, centerWritingWeights: false }`,
    );
}

export interface ProcessOptions {
  foldLn?: boolean;
  centerWritingWeights?: boolean;
  centerUnembed?: boolean;
  foldValueBiases?: boolean;
}

/** All four transforms (each can be switched off), in TransformerLens's order. */
export function processWeights(cfg: ModelConfig, p: ModelParams, o: ProcessOptions = {}): ModelParams {
  let out = p;
  if (o.foldLn ?? true) out = foldLayerNorm(cfg, out);
  if (o.centerWritingWeights ?? true) out = centerWritingWeights(cfg, out);
  if (o.centerUnembed ?? true) out = centerUnembed(cfg, out);
  if (o.foldValueBiases ?? true) out = foldValueBiases(cfg, out);
  return out;
}
