/**
 * Shared pieces of the analysis toolkit: prompt input, per-row token choices, metrics over
 * logits, and the model's final norm and unembedding applied outside the forward pass.
 */
import { Tensor, tensor } from '../tensor/index.js';
import type { HookedTransformer, TokenInput } from '../model/hooked.js';

/**
 * A prompt: token ids ([batch, pos] tensor, nested arrays, or one row of ids) or text (one
 * string or one per row), tokenized with BOS prepended like TransformerLens's `to_tokens`.
 */
export type PromptInput = TokenInput | string | readonly string[];

/** One token id for every row of the batch, or one per row. */
export type TokenChoice = number | readonly number[];

/**
 * A metric of a run: maps logits [batch, pos, d_vocab] to a number. A tensor result is read as a
 * number (its mean, when it has more than one element).
 */
export type Metric = (logits: Tensor) => number | Tensor;

/** [batch, pos] int64 token ids of any prompt input. */
export function promptTokens(model: HookedTransformer, input: PromptInput): Tensor {
  if (typeof input === 'string' || (Array.isArray(input) && typeof input[0] === 'string')) {
    const rows = model.toTokens(input as string | readonly string[]);
    const s = rows[0]!.length;
    if (rows.some((r) => r.length !== s)) throw new Error('prompts tokenize to different lengths; pass token ids with padding instead');
    return tensor(rows.flat(), [rows.length, s], 'int64');
  }
  if (input instanceof Tensor) {
    if (input.rank !== 2) throw new Error(`tokens must be [batch, pos], got shape [${input.shape}]`);
    return input.cast('int64');
  }
  const rows = (Array.isArray(input[0]) ? input : [input]) as readonly (readonly number[])[];
  const s = rows[0]?.length ?? 0;
  if (s === 0) throw new Error('tokens: empty prompt');
  if (rows.some((r) => r.length !== s)) throw new Error('tokens: rows have different lengths');
  return tensor(rows.flat(), [rows.length, s], 'int64');
}

/** An attention mask ([batch, pos] tensor or nested arrays) as a float32 [batch, pos] tensor of 0/1. */
export function maskFloat(mask: Tensor | readonly (readonly number[])[]): Tensor {
  if (mask instanceof Tensor) return mask.cast('float32');
  return tensor(mask.flat(), [mask.length, mask[0]?.length ?? 0], 'float32');
}

/** Token ids as plain rows of numbers. */
export function tokenRows(tokens: Tensor): number[][] {
  const [b, s] = tokens.shape as [number, number];
  const d = tokens.cast('int64').dataSync() as BigInt64Array;
  return Array.from({ length: b }, (_, r) => Array.from(d.subarray(r * s, (r + 1) * s), Number));
}

/** A token choice expanded to one id per row (checked against the vocabulary). */
export function perRow(model: HookedTransformer, choice: TokenChoice, batch: number, what: string): number[] {
  const ids = typeof choice === 'number' ? new Array<number>(batch).fill(choice) : [...choice];
  if (ids.length !== batch) throw new Error(`${what}: ${ids.length} token ids for a batch of ${batch}`);
  for (const t of ids)
    if (!Number.isInteger(t) || t < 0 || t >= model.cfg.dVocab)
      throw new Error(`${what}: token id ${t} is outside the vocabulary (0..${model.cfg.dVocab - 1})`);
  return ids;
}

/**
 * The id of a text that is exactly one token (no BOS), like TransformerLens's `to_single_token`.
 */
export function toSingleToken(model: HookedTransformer, text: string): number {
  const ids = model.toTokens(text, { prependBos: false })[0]!;
  if (ids.length !== 1) throw new Error(`toSingleToken: '${text}' is ${ids.length} tokens, not one`);
  return ids[0]!;
}

/** A position index (negative counts from the end) checked against a length. */
export function normPos(pos: number, n: number, what = 'pos'): number {
  const p = pos < 0 ? pos + n : pos;
  if (!Number.isInteger(pos) || p < 0 || p >= n) throw new Error(`${what} ${pos} is out of range for ${n} positions`);
  return p;
}

/** A metric's value as a number. */
export function metricValue(metric: Metric, logits: Tensor): number {
  const v = metric(logits);
  if (typeof v === 'number') return v;
  return v.size === 1 ? v.item() : v.cast('float32').mean().item();
}

/**
 * Per row, logits[row, pos, answer] - logits[row, pos, wrong] (or the answer's logit alone when
 * `wrong` is absent), read from logits [batch, pos, d_vocab].
 */
export function rowLogitDiffs(logits: Tensor, answers: readonly number[], wrongs: readonly number[] | null, pos = -1): number[] {
  const [b, s, v] = logits.shape as [number, number, number];
  const p = normPos(pos, s);
  const data = logits.cast('float32').dataSync() as Float32Array;
  return Array.from({ length: b }, (_, r) => {
    const row = (r * s + p) * v;
    const a = data[row + answers[r % answers.length]!]!;
    return wrongs ? a - data[row + wrongs[r % wrongs.length]!]! : a;
  });
}

/**
 * A metric: the mean over the batch of logit(answer) - logit(wrong) at `pos` (default the last
 * position), or the mean logit of `answer` when `wrong` is not given.
 */
export function logitDiffMetric(answer: TokenChoice, wrong?: TokenChoice, pos = -1): Metric {
  return (logits) => {
    const b = logits.shape[0]!;
    const a = typeof answer === 'number' ? [answer] : answer;
    const w = wrong === undefined ? null : typeof wrong === 'number' ? [wrong] : wrong;
    if (a.length !== 1 && a.length !== b) throw new Error(`logitDiffMetric: ${a.length} answers for a batch of ${b}`);
    const d = rowLogitDiffs(logits, a, w, pos);
    return d.reduce((x, y) => x + y, 0) / b;
  };
}

/** The final norm's effective weight (Gemma's stored w - 1 offset added back), if any. */
export function finalNormWeight(model: HookedTransformer): Tensor | null {
  const w = model.params.ln_final.w;
  if (!w) return null;
  return model.cfg.normWeightOffset ? w.add(model.cfg.normWeightOffset) : w;
}

/**
 * `ln_final` as the model applies it, recomputing the statistics of each vector:
 * [..., d_model] -> [..., d_model] (TransformerLens's `model.ln_final(x)`).
 */
export function applyFinalNorm(model: HookedTransformer, x: Tensor): Tensor {
  const { cfg } = model;
  if (cfg.normAfterAdd) return x; // OPT-350m: no final norm (each block ends with one)
  const w = finalNormWeight(model);
  if (cfg.norm === 'layernorm') return x.layerNorm(w, model.params.ln_final.b ?? null, cfg.normEps);
  if (cfg.norm === 'rmsnorm') return x.rmsNorm(w, cfg.normEps);
  return x;
}

/**
 * The unembedding: x @ W_U + b_U, then the final soft-cap when the model has one (Gemma 2):
 * [..., d_model] -> [..., d_vocab].
 */
export function unembed(model: HookedTransformer, x: Tensor, options: { softcap?: boolean } = {}): Tensor {
  let logits = x.matmul(model.params.unembed.W_U);
  if (model.params.unembed.b_U) logits = logits.add(model.params.unembed.b_U);
  const cap = model.cfg.finalSoftcap;
  if (cap !== null && (options.softcap ?? true)) logits = logits.div(cap).tanh().mul(cap);
  return logits;
}

/** Undoes the final soft-cap (cap * atanh(logits / cap)); the identity without one. */
export function uncap(model: HookedTransformer, logits: Tensor): Tensor {
  const cap = model.cfg.finalSoftcap;
  if (cap === null) return logits;
  const y = logits.div(cap);
  // atanh(y) = 0.5 * log((1 + y) / (1 - y))
  return y
    .add(1)
    .div(y.neg().add(1))
    .log()
    .mul(0.5 * cap);
}

/** Checks a layer index. */
export function checkLayer(model: HookedTransformer, layer: number, what: string): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= model.cfg.nLayers)
    throw new Error(`${what}: layer ${layer} is out of range (the model has ${model.cfg.nLayers} layers)`);
}

/** Checks a head index. */
export function checkHead(model: HookedTransformer, head: number, what: string): void {
  if (!Number.isInteger(head) || head < 0 || head >= model.cfg.nHeads)
    throw new Error(`${what}: head ${head} is out of range (the model has ${model.cfg.nHeads} heads per layer)`);
}
