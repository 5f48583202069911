/**
 * Direct logit attribution: split the final residual stream into the pieces each component
 * wrote, and project each through the final norm (with its scale frozen at the value the real
 * run used, as TransformerLens does) and the unembedding onto a logit direction. Because the
 * frozen norm is linear, the pieces add up exactly to the logit (difference) of the real run.
 */
import { concat, tensor, type Tensor } from '../tensor/index.js';
import type { ActivationCache, HookedTransformer, RunOptions } from '../model/hooked.js';
import { finalNormWeight, normPos, perRow, promptTokens, uncap, type PromptInput, type TokenChoice } from './common.js';
import { hookName } from '../model/hook-names.js';
import { boxSlice } from './buckets.js';

/**
 * The residual direction of a token (its column of W_U), or of the difference of two tokens:
 * [d_model] for single ids, [batch, d_model] for one id per row. TransformerLens's
 * `tokens_to_residual_directions` (glassbox keeps the final norm's weight out of W_U; see
 * `logitAttrs`, which applies it).
 */
export function logitDirection(model: HookedTransformer, answer: TokenChoice, wrong?: TokenChoice): Tensor {
  const cols = (choice: TokenChoice, what: string) => {
    const ids = perRow(model, choice, typeof choice === 'number' ? 1 : choice.length, what);
    return model.params.unembed.W_U.gather(tensor(ids, [ids.length], 'int64'), 1).transpose(); // [rows, d_model]
  };
  let dir = cols(answer, 'logitDirection answer');
  if (wrong !== undefined) {
    const w = cols(wrong, 'logitDirection wrong');
    if (w.shape[0] !== dir.shape[0] && w.shape[0] !== 1 && dir.shape[0] !== 1)
      throw new Error(`logitDirection: ${dir.shape[0]} answers but ${w.shape[0]} wrong tokens`);
    dir = dir.sub(w);
  }
  return typeof answer === 'number' && (wrong === undefined || typeof wrong === 'number') ? dir.index([0]) : dir;
}

/**
 * The hook points `residualStack` and `directLogitAttribution` read from the cache.
 */
export function dlaHookNames(model: HookedTransformer): string[] {
  const { cfg } = model;
  const names = ['hook_embed'];
  if (model.hookNames.includes('hook_pos_embed')) names.push('hook_pos_embed');
  for (let l = 0; l < cfg.nLayers; l++) {
    names.push(cfg.postNorms ? hookName('attn_out', l) : hookName('z', l));
    if (model.hookNames.includes(hookName('mlp_out', l))) names.push(hookName('mlp_out', l));
  }
  if (model.hookNames.includes('ln_final.hook_scale')) names.push('ln_final.hook_scale');
  return names;
}

/**
 * The final residual stream (the last block's hook_resid_post) split into what each component
 * wrote: `stack` [components, batch, pos, d_model] (or [components, batch, d_model] at one
 * `pos`), whose sum over components is the residual stream, and `labels`:
 * 'embed', 'pos_embed' (learned positions only), then per layer l each head 'L{l}H{h}' (from the
 * cached hook_z and that head's rows of W_O, as TransformerLens's `stack_head_results`), the
 * attention output bias 'L{l}.b_O' (if any) and 'L{l}.mlp_out' (the MLP's output, its bias
 * included). With norms after attention (Gemma 2) the heads do not add up to the attention output,
 * so each layer gives one 'L{l}.attn_out' instead.
 */
export function residualStack(
  model: HookedTransformer,
  cache: ActivationCache,
  options: { pos?: number } = {},
): { stack: Tensor; labels: string[] } {
  const { cfg, params } = model;
  refuseNormAfterAdd(cfg, 'residualStack');
  const at = (t: Tensor) => (options.pos === undefined ? t : t.index([null, normPos(options.pos, t.shape[1]!)]));
  const parts: Tensor[] = [];
  const labels: string[] = [];
  const add = (t: Tensor, label: string) => {
    parts.push(t.unsqueeze(0));
    labels.push(label);
  };
  const embed = at(cache.get('hook_embed'));
  add(embed, 'embed');
  if (model.hookNames.includes('hook_pos_embed')) add(at(cache.get('hook_pos_embed')), 'pos_embed');
  for (let l = 0; l < cfg.nLayers; l++) {
    const blk = params.blocks[l]!;
    if (cfg.postNorms) add(at(cache.get(hookName('attn_out', l))), `L${l}.attn_out`);
    else {
      const z = at(cache.get(hookName('z', l))); // [batch, (pos,) n_heads, d_head]
      const wO = blk.attn.W_O.reshape([cfg.nHeads, cfg.dHead, cfg.dModel]);
      const perHead = z.unsqueeze(-2).matmul(wO).squeeze(-2); // [batch, (pos,) n_heads, d_model]
      const r = perHead.rank;
      parts.push(perHead.permute([r - 2, ...Array.from({ length: r - 2 }, (_, i) => i), r - 1]));
      for (let h = 0; h < cfg.nHeads; h++) labels.push(`L${l}H${h}`);
      if (blk.attn.b_O) add(blk.attn.b_O.expand(embed.shape), `L${l}.b_O`);
    }
    const mlpOut = hookName('mlp_out', l);
    if (model.hookNames.includes(mlpOut)) add(at(cache.get(mlpOut)), `L${l}.mlp_out`);
  }
  return { stack: concat(parts, 0), labels };
}

/**
 * Logit attributions of a residual stack, TransformerLens's `cache.logit_attrs`: each component
 * [components, batch, (pos,) d_model] is centred (LayerNorm models), divided by the final norm's
 * scale cached from the real run (`ln_final.hook_scale` [batch, pos, 1]), multiplied by the final
 * norm's weight (TransformerLens assumes it folded into W_U; glassbox applies it, so the answer is
 * the same with or without `processWeights`) and dotted with `direction` ([d_model], or
 * [batch, d_model] per row): [components, batch, (pos)]. `pos` says which position a stack
 * without a pos axis was taken at.
 */
export function logitAttrs(
  model: HookedTransformer,
  cache: ActivationCache,
  stack: Tensor,
  direction: Tensor,
  options: { pos?: number } = {},
): Tensor {
  const { cfg } = model;
  refuseNormAfterAdd(cfg, 'logitAttrs');
  const perPos = stack.rank === 4;
  let x = stack;
  if (cfg.norm === 'layernorm') x = x.sub(x.mean(-1, true));
  if (cfg.norm !== 'none') {
    let scale = cache.get('ln_final.hook_scale'); // [batch, pos, 1]
    if (!perPos) {
      if (options.pos === undefined) throw new Error('logitAttrs: a stack without a pos axis needs the `pos` it was taken at');
      scale = scale.index([null, normPos(options.pos, scale.shape[1]!)]); // [batch, 1]
    }
    x = x.div(scale);
  }
  let dir = direction;
  const w = finalNormWeight(model);
  if (w) dir = dir.mul(w);
  if (dir.rank === 2 && perPos) dir = dir.unsqueeze(1); // [batch, 1, d_model]
  return x.mul(dir).sum(-1);
}

/** Direct attribution needs an additive residual stream, which norms after each residual add (OPT-350m) break. */
function refuseNormAfterAdd(cfg: HookedTransformer['cfg'], what: string): void {
  if (cfg.normAfterAdd)
    throw new Error(
      `${what}: ${cfg.family} with norms after the residual add (OPT-350m) renormalises the residual stream in every block, so it is not a sum of component outputs`,
    );
}

export interface DlaOptions extends RunOptions {
  /** The token whose logit is attributed: one for every row, or one per row. */
  answer: TokenChoice;
  /** If given, attribute logit(answer) - logit(wrong). */
  wrong?: TokenChoice;
  /** The position read (default -1, the last). */
  pos?: number;
}

export interface DlaResult {
  /** Component labels (see `residualStack`), then 'bias': the final norm's bias and b_U. */
  labels: string[];
  /** [components, batch]: each component's direct contribution to the logit (difference). */
  attributions: Tensor;
  /** Each component's attribution averaged over the batch (in `labels` order). */
  values: number[];
  /** [batch]: the attributions summed over components. */
  total: Tensor;
  /**
   * [batch]: the logit (difference) of the real run, read from its logits (before the final
   * soft-cap when the model has one, since attributions are linear and the cap is not). Equals
   * `total` up to float rounding.
   */
  logitDiff: Tensor;
}

/**
 * Direct logit attribution of `answer` (minus `wrong`) at `pos`: runs the model once with a
 * cache and decomposes the logit (difference) into embed, pos_embed, every attention head, every
 * attention output bias, every MLP output and the remaining bias terms (final norm bias, b_U),
 * each projected through the final norm's cached scale and W_U (see `residualStack` and
 * `logitAttrs`). The attributions sum to the logit (difference) of the real run.
 */
export function directLogitAttribution(model: HookedTransformer, input: PromptInput, options: DlaOptions): DlaResult {
  const tokens = promptTokens(model, input);
  const [b, s] = tokens.shape as [number, number];
  const pos = normPos(options.pos ?? -1, s);
  const answers = perRow(model, options.answer, b, 'directLogitAttribution answer');
  const wrongs = options.wrong === undefined ? null : perRow(model, options.wrong, b, 'directLogitAttribution wrong');
  const run = model.runWithCache(tokens, {
    names: dlaHookNames(model),
    ...(options.attentionMask ? { attentionMask: options.attentionMask } : {}),
  });
  const { stack, labels } = residualStack(model, run.cache, { pos });
  const dir = logitDirection(model, answers, wrongs ?? undefined); // [batch, d_model]
  const attrs = logitAttrs(model, run.cache, stack, dir, { pos }); // [components, batch]
  // Bias terms after the norm: ln_final.b . W_U[:, answer - wrong] + b_U[answer] - b_U[wrong].
  const bias = new Float32Array(b);
  const lnB = model.params.ln_final.b;
  const bU = model.params.unembed.b_U?.dataSync() as Float32Array | undefined;
  const lnTerm = lnB ? (dir.mul(lnB).sum(-1).dataSync() as Float32Array) : null;
  for (let r = 0; r < b; r++) {
    bias[r] = (lnTerm ? lnTerm[r]! : 0) + (bU ? bU[answers[r]!]! - (wrongs ? bU[wrongs[r]!]! : 0) : 0);
  }
  const attributions = concat([attrs, tensor(bias, [1, b])], 0);
  const total = attributions.sum(0);
  // The logits at pos, copied in JS: an eager index would compile one session per position.
  const lastLogits = uncap(
    model,
    boxSlice(run.logits, [
      [0, b],
      [pos, pos + 1],
    ]),
  ); // [batch, 1, d_vocab]
  const lv = lastLogits.dataSync() as Float32Array;
  const v = model.cfg.dVocab;
  const diff = Float32Array.from({ length: b }, (_, r) => lv[r * v + answers[r]!]! - (wrongs ? lv[r * v + wrongs[r]!]! : 0));
  const mean = attributions.mean(1).dataSync() as Float32Array;
  return { labels: [...labels, 'bias'], attributions, values: Array.from(mean), total, logitDiff: tensor(diff, [b]) };
}
