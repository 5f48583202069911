/**
 * Language-model training helpers: the next-token loss of a transformer as a function of its
 * parameters, and tied embeddings (GPT-2 ties W_U = W_E^T: the trainable tree then holds W_E
 * only, and the unembedding is rebuilt from it inside the loss so both uses get gradient).
 */
import type { Tensor } from '../tensor/index.js';
import type { ModelConfig } from '../model/config.js';
import { transformerForward, type HookPoints, type ModelParams } from '../model/forward.js';
import { forwardInputs, nextTokenLoss } from '../model/hooked.js';
import type { TokenBatch } from './data.js';

/** The trainable tree: a model's params, minus W_U when the embeddings are tied. */
export type TrainableParams = Omit<ModelParams, 'unembed'> & { unembed: Partial<ModelParams['unembed']> };

/** Drops the tied unembedding from the tree that the optimizer sees. */
export function trainableParams(cfg: ModelConfig, p: ModelParams): TrainableParams {
  if (!cfg.tiedEmbeddings) return p;
  const { W_U: _tied, ...rest } = p.unembed;
  return { ...p, unembed: rest };
}

/** The full model params from a trainable tree (W_U = W_E^T when tied). */
export function modelParams(cfg: ModelConfig, p: TrainableParams): ModelParams {
  if (!cfg.tiedEmbeddings) return p as ModelParams;
  return { ...p, unembed: { ...p.unembed, W_U: p.embed.W_E.transpose() } };
}

const noHooks = Object.assign((_: string, x: Tensor) => x, { active: () => false }) as HookPoints;

/**
 * Logits of a plain forward pass (no hooks) on [batch, pos] int64 tokens, as a function of the
 * parameters: for training and evaluation. Masks and positions are built once per shape.
 */
export function lmLogits(cfg: ModelConfig): (params: TrainableParams, tokens: Tensor) => Tensor {
  const inputsByShape = new Map<string, ReturnType<typeof forwardInputs>>();
  return (params, tokens) => {
    const key = tokens.shape.join('x');
    let inp = inputsByShape.get(key);
    if (!inp) {
      inp = forwardInputs(cfg, tokens, null);
      inputsByShape.set(key, inp);
    }
    return transformerForward(cfg, modelParams(cfg, params), { ...inp, tokens }, noHooks);
  };
}

/** Mean next-token cross-entropy over a batch of windows `tokens` [batch, pos] (every position predicts the next). */
export function lmLoss(cfg: ModelConfig): (params: TrainableParams, batch: TokenBatch) => Tensor {
  const logits = lmLogits(cfg);
  return (params, batch) => nextTokenLoss(logits(params, batch.tokens), batch.tokens, null, false);
}
