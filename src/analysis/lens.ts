/**
 * The logit lens (nostalgebraist, 2020): read the residual stream after every block through the
 * model's final norm and unembedding, as if the model stopped there.
 */
import { stack, type Tensor } from '../tensor/index.js';
import type { ActivationCache, HookedTransformer } from '../model/hooked.js';
import { applyFinalNorm, promptTokens, tokenRows, unembed, type PromptInput } from './common.js';
import { boxSlice, padRows, type ShapeBuckets } from './buckets.js';
import { hookName } from '../model/hook-names.js';
import { checkTunedLens, translate, type TunedLens } from './tuned-lens-core.js';

export interface AccumulatedResidOptions {
  /**
   * Take the streams up to the input of this layer: resid_pre of layers 0..layer-1 and of `layer`
   * itself, or, for `nLayers` (the default; -1 means the same), every resid_pre and then the final
   * resid_post. As TransformerLens's `layer`.
   */
  layer?: number;
  /** Also take resid_mid of every layer before `layer` (TransformerLens's `incl_mid`). */
  inclMid?: boolean;
  /** Same as `inclMid`. */
  incidentalMid?: boolean;
  /** Also take resid_mid of `layer` itself: the MLP's input (TransformerLens's `mlp_input`). */
  mlpInput?: boolean;
  /**
   * Apply the final norm (`ln_final`, with its weight and bias) to every entry, each with its own
   * statistics: the stack then unembeds to logits directly. As TransformerLens's `apply_ln=True`
   * with the default `layer` (for an earlier layer TransformerLens divides by that layer's cached
   * ln1 scale instead; a logit lens wants the final norm, so glassbox always applies ln_final).
   */
  applyLn?: boolean;
  /** One position (the pos axis is dropped) or a range of positions (default all). */
  pos?: number | { start?: number; end?: number };
}

/**
 * The accumulated residual stream, TransformerLens's `cache.accumulated_resid`: the residual
 * stream at the input of each layer, stacked: `resid` [components, batch, pos, d_model] (or
 * [components, batch, d_model] for a single `pos`), and `labels` ('0_pre', '0_mid', ...,
 * 'final_post'). `cache` must hold the hook_resid_pre (and hook_resid_mid, if asked for) of each
 * layer taken and, for the final entry, the last layer's hook_resid_post.
 */
export function accumulatedResid(
  model: HookedTransformer,
  cache: ActivationCache,
  options: AccumulatedResidOptions = {},
): { resid: Tensor; labels: string[] } {
  const n = model.cfg.nLayers;
  const layer = options.layer === undefined || options.layer === -1 ? n : options.layer;
  if (!Number.isInteger(layer) || layer < 0 || layer > n) throw new Error(`accumulatedResid: layer ${layer} is out of range (0..${n})`);
  const inclMid = options.inclMid ?? options.incidentalMid ?? false;
  const hasMid = (l: number) => model.hookNames.includes(hookName('resid_mid', l));
  const parts: Tensor[] = [];
  const labels: string[] = [];
  for (let l = 0; l <= layer; l++) {
    if (l === n) {
      parts.push(cache.get(hookName('resid_post', n - 1)));
      labels.push('final_post');
      continue;
    }
    parts.push(cache.get(hookName('resid_pre', l)));
    labels.push(`${l}_pre`);
    if (((inclMid && l < layer) || (options.mlpInput && l === layer)) && hasMid(l)) {
      parts.push(cache.get(hookName('resid_mid', l)));
      labels.push(`${l}_mid`);
    }
  }
  let resid = stack(parts, 0); // [components, batch, pos, d_model]
  const p = options.pos;
  if (typeof p === 'number') resid = resid.index([null, null, p]);
  else if (p) resid = resid.slice([null, null, p]);
  if (options.applyLn) resid = applyFinalNorm(model, resid);
  return { resid, labels };
}

/** One of the lens's top predictions. */
export interface LensPrediction {
  token: number;
  /** Softmax probability under the lens at that layer. */
  prob: number;
  /** The token's string, when the model has a tokenizer. */
  str?: string;
}

export interface LogitLensResult {
  /** Per layer: '0_pre' (the embeddings), '1_pre' (after block 0), ..., 'final_post' (after the last block). */
  labels: string[];
  /** The prompt's token ids. */
  tokens: number[];
  /** The prompt's token strings, when the model has a tokenizer. */
  strTokens: string[] | null;
  /** top[layer][pos]: the `topK` most likely next tokens, most likely first. */
  top: LensPrediction[][][];
  /** The lens's logits [n_layers + 1, pos, d_vocab]; the last layer's are the model's logits. */
  logits: Tensor;
}

/**
 * The logit lens of one prompt: at each layer (the embeddings, then after each block) and each
 * position, the final norm (recomputed for that residual, as `accumulatedResid` with `applyLn`)
 * and the unembedding (W_U, b_U, and the final soft-cap if the model has one) give a next-token
 * distribution; returns its `topK` tokens (default 5) and their probabilities. The last layer's
 * lens is the model's real output. With `buckets` the prompt runs padded to a bucket length (see
 * buckets.ts), so prompts of many lengths share compiled sessions; the result is the same. With
 * `tunedLens`, each layer's residual first goes through that layer's translator (Belrose et al.
 * 2023; the last, 'final_post', has none): the tuned lens, shaped the same.
 */
export function logitLens(
  model: HookedTransformer,
  input: PromptInput,
  options: { topK?: number; buckets?: ShapeBuckets; tunedLens?: TunedLens } = {},
): LogitLensResult {
  if (options.tunedLens) checkTunedLens(model, options.tunedLens, 'tunedLens');
  const tokens = promptTokens(model, input);
  if (tokens.shape[0] !== 1) throw new Error(`logitLens: takes one prompt, got a batch of ${tokens.shape[0]}`);
  const topK = Math.min(options.topK ?? 5, model.cfg.dVocab);
  const n = model.cfg.nLayers;
  const names = [...Array.from({ length: n }, (_, l) => hookName('resid_pre', l)), hookName('resid_post', n - 1)];
  const row = tokenRows(tokens)[0]!;
  const s = row.length;
  // Padded: the lens runs over every padded position, and the real ones are read.
  const padded = options.buckets ? padRows([row], options.buckets.length(s)) : null;
  const { cache } = padded
    ? model.runWithCache(padded.tokens, { names, attentionMask: padded.attentionMask })
    : model.runWithCache(tokens, { names });
  const width = padded ? padded.tokens.shape[1]! : s;
  const tuned = options.tunedLens;
  const { resid, labels } = accumulatedResid(model, cache, { applyLn: !tuned });
  const read = tuned
    ? // Translator l on resid_pre l, then the final norm, each layer with its own statistics.
      applyFinalNorm(
        model,
        stack(
          labels.map((_, l) => (l < n ? translate(tuned.translators[l]!, resid.index([l, 0])) : resid.index([l, 0]))),
          0,
        ),
      )
    : resid.index([null, 0]);
  const all = unembed(model, read); // [layers, pos, d_vocab]
  const { values, indices } = all.softmax(-1).topk(topK, -1);
  const probs = values.dataSync() as Float32Array;
  const ids = indices.dataSync() as BigInt64Array;
  const tok = model.tokenizer;
  const top = labels.map((_, l) =>
    Array.from({ length: s }, (_, p) =>
      Array.from({ length: topK }, (_, j) => {
        const i = (l * width + p) * topK + j;
        const token = Number(ids[i]);
        return tok ? { token, prob: probs[i]!, str: tok.toStrTokens([token])[0]! } : { token, prob: probs[i]! };
      }),
    ),
  );
  const logits = padded
    ? boxSlice(all, [
        [0, labels.length],
        [0, s],
      ])
    : all;
  return { labels, tokens: row, strTokens: tok ? tok.toStrTokens(row) : null, top, logits };
}
