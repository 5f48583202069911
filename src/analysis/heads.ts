/**
 * Attention head detectors: how much each head attends where a previous-token, duplicate-token
 * or induction head would (Olsson et al. 2022, "In-context learning and induction heads";
 * TransformerLens's head detector), scored from the cached attention patterns.
 */
import { PRNG, tensor, type Tensor } from '../tensor/index.js';
import type { HookedTransformer, RunOptions } from '../model/hooked.js';
import { checkHead, checkLayer, promptTokens, tokenRows, type PromptInput } from './common.js';
import { bucketedCache, type ShapeBuckets } from './buckets.js';
import { hookName } from '../model/hook-names.js';

/**
 * The attention pattern of one head: [batch, query_pos, key_pos], each row a distribution over
 * the keys (the cached `blocks.{layer}.attn.hook_pattern` [batch, head, q, k] at `head`).
 */
export function attentionPattern(
  model: HookedTransformer,
  input: PromptInput,
  layer: number,
  head: number,
  options: RunOptions = {},
): Tensor {
  checkLayer(model, layer, 'attentionPattern');
  checkHead(model, head, 'attentionPattern');
  const name = hookName('pattern', layer);
  const { cache } = model.runWithCache(promptTokens(model, input), { ...options, names: [name] });
  return cache.get(name).index([null, head]);
}

/** Which keys a query position should attend to for a kind of head (empty: the query is not scored). */
type TargetRule = (tokens: readonly number[], q: number) => number[];

const RULES = {
  /** The previous position. */
  previousToken: (_t, q) => (q >= 1 ? [q - 1] : []),
  /** Earlier positions holding the same token. */
  duplicateToken: (t, q) => {
    const out: number[] = [];
    for (let j = 0; j < q; j++) if (t[j] === t[q]) out.push(j);
    return out;
  },
  /** The positions just after earlier occurrences of the same token. */
  induction: (t, q) => {
    const out: number[] = [];
    for (let j = 0; j < q; j++) if (t[j] === t[q]) out.push(j + 1);
    return out;
  },
} satisfies Record<string, TargetRule>;

export type HeadKind = keyof typeof RULES;

/** Per kind, [n_layers, n_heads] scores in [0, 1]. */
export type HeadScores = Record<HeadKind, Tensor>;

/**
 * Each row's attention patterns, one [head, q, k] array per layer: from one run of `rows` (all
 * of one length), or with `buckets` from padded runs (see buckets.ts), equal up to rounding.
 */
function rowPatterns(model: HookedTransformer, rows: readonly (readonly number[])[], buckets?: ShapeBuckets): Float32Array[][] {
  const { nLayers: L, nHeads: H } = model.cfg;
  const names = Array.from({ length: L }, (_, l) => hookName('pattern', l));
  if (buckets) {
    const cache = bucketedCache(model, rows, names, buckets);
    return rows.map((_, r) => names.map((n) => cache.get(r, n).cast('float32').dataSync() as Float32Array));
  }
  const s = rows[0]!.length;
  const { cache } = model.runWithCache(tensor(rows.flat(), [rows.length, s], 'int64'), { names });
  const all = names.map((n) => cache.get(n).cast('float32').dataSync() as Float32Array); // [batch, head, q, k]
  return rows.map((_, r) => all.map((p) => p.subarray(r * H * s * s, (r + 1) * H * s * s)));
}

/**
 * Scores every head for each kind from one cached run on `input` (no padding): the attention a
 * query puts on its targets, averaged over the queries that have targets (all rows, all
 * positions). Targets: previousToken, position q - 1; duplicateToken, earlier positions with the
 * same token; induction, the positions just after earlier occurrences of the same token. A kind
 * with no scored query gives NaN. Returns [n_layers, n_heads] per kind. With `buckets` the rows
 * run padded (see buckets.ts), so inputs of many shapes share compiled sessions; the scores are
 * the same.
 */
export function headScores(
  model: HookedTransformer,
  input: PromptInput,
  kinds: readonly HeadKind[] = ['previousToken', 'duplicateToken', 'induction'],
  options: { buckets?: ShapeBuckets } = {},
): Partial<HeadScores> {
  const tokens = promptTokens(model, input);
  const rows = tokenRows(tokens);
  const [b, s] = tokens.shape as [number, number];
  const { nLayers: L, nHeads: H } = model.cfg;
  const patterns = rowPatterns(model, rows, options.buckets); // [row][layer]: [head, q, k]
  const out: Partial<HeadScores> = {};
  for (const kind of kinds) {
    const rule: TargetRule = RULES[kind];
    const targets = rows.map((r) => Array.from({ length: s }, (_, q) => rule(r, q)));
    const scores = new Float32Array(L * H);
    let count = 0;
    for (let r = 0; r < b; r++) for (let q = 0; q < s; q++) if (targets[r]![q]!.length) count++;
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++) {
        let sum = 0;
        for (let r = 0; r < b; r++)
          for (let q = 0; q < s; q++) {
            const base = (h * s + q) * s;
            for (const k of targets[r]![q]!) sum += patterns[r]![l]![base + k]!;
          }
        scores[l * H + h] = count ? sum / count : NaN;
      }
    out[kind] = tensor(scores, [L, H]);
  }
  return out;
}

/** Previous-token score of every head on `input`: [n_layers, n_heads] (see `headScores`). */
export function previousTokenScores(model: HookedTransformer, input: PromptInput): Tensor {
  return headScores(model, input, ['previousToken']).previousToken!;
}

/** Duplicate-token score of every head on `input`: [n_layers, n_heads] (see `headScores`). */
export function duplicateTokenScores(model: HookedTransformer, input: PromptInput): Tensor {
  return headScores(model, input, ['duplicateToken']).duplicateToken!;
}

export interface RepeatedTokensOptions {
  /** Length of the random sequence r (default 50, or what fits the context twice). */
  seqLen?: number;
  /** Rows (default 4). */
  batch?: number;
  seed?: number;
  /** Start each row with the model's BOS token (default true when the model has one). */
  prependBos?: boolean;
}

/**
 * Rows [BOS, r, r] of a random token sequence r repeated once, the input of the induction test
 * (Olsson et al.; TransformerLens's `generate_repeated_tokens`). r's tokens are drawn uniformly
 * from the vocabulary without the BOS/EOS/pad ids, and distinct within a row when the vocabulary
 * allows, so that every position of the second copy has exactly one earlier occurrence.
 */
export function repeatedRandomTokens(model: HookedTransformer, options: RepeatedTokensOptions = {}): number[][] {
  const { cfg } = model;
  const bos = cfg.bosTokenId;
  const prepend = (options.prependBos ?? true) && bos !== null;
  // Past the context only where the model allows it (see RunOptions.allowLongContext).
  const long = cfg.positional !== 'learned' && (model.allowLongContext || cfg.ropeScaling?.type === 'dynamic');
  const room = long ? Infinity : Math.floor((cfg.nCtx - (prepend ? 1 : 0)) / 2);
  const seqLen = options.seqLen ?? Math.min(50, room);
  if (!Number.isInteger(seqLen) || seqLen < 1 || seqLen > room)
    throw new Error(
      `repeatedRandomTokens: seqLen ${seqLen} does not fit the context of ${cfg.nCtx} twice (at most ${room}` +
        `${prepend ? ' with BOS' : ''}${cfg.positional === 'learned' ? '' : '; allowLongContext or --allow-long-context lifts the limit'})`,
    );
  const special = new Set([cfg.bosTokenId, cfg.eosTokenId, cfg.padTokenId].filter((t): t is number => t !== null));
  const pool = Array.from({ length: cfg.dVocab }, (_, i) => i).filter((i) => !special.has(i));
  if (pool.length === 0) throw new Error('repeatedRandomTokens: no ordinary tokens in the vocabulary');
  const rng = new PRNG(options.seed ?? 0);
  return Array.from({ length: options.batch ?? 4 }, () => {
    let r: number[];
    if (seqLen <= pool.length) {
      // A partial Fisher-Yates shuffle: seqLen distinct tokens.
      const p = pool.slice();
      for (let i = 0; i < seqLen; i++) {
        const j = i + rng.int(p.length - i);
        [p[i], p[j]] = [p[j]!, p[i]!];
      }
      r = p.slice(0, seqLen);
    } else r = Array.from({ length: seqLen }, () => pool[rng.int(pool.length)]!);
    return [...(prepend ? [bos!] : []), ...r, ...r];
  });
}

/**
 * Induction score of every head, as Olsson et al. and TransformerLens measure it: on repeated
 * random sequences [BOS, r, r] (see `repeatedRandomTokens`), the mean attention from each
 * position of the second copy to the position just after the same token's occurrence in the
 * first copy. Returns `scores` [n_layers, n_heads] and the `tokens` used. With `buckets` the rows
 * run padded (see buckets.ts), so calls with other lengths and batches share compiled sessions;
 * the scores are the same.
 */
export function inductionScores(
  model: HookedTransformer,
  options: RepeatedTokensOptions & { buckets?: ShapeBuckets } = {},
): { scores: Tensor; tokens: number[][] } {
  const tokens = repeatedRandomTokens(model, options);
  const offset = tokens[0]!.length % 2; // 1 with BOS
  const n = (tokens[0]!.length - offset) / 2;
  const { nLayers: L, nHeads: H } = model.cfg;
  const s = tokens[0]!.length;
  const patterns = rowPatterns(model, tokens, options.buckets); // [row][layer]: [head, q, k]
  const scores = new Float32Array(L * H);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      let sum = 0;
      for (let r = 0; r < tokens.length; r++) {
        const p = patterns[r]![l]!;
        for (let t = 0; t < n; t++) {
          const q = offset + n + t; // r[t] in the second copy
          const k = offset + t + 1; // after r[t] in the first copy
          sum += p[(h * s + q) * s + k]!;
        }
      }
      scores[l * H + h] = sum / (tokens.length * n);
    }
  }
  return { scores: tensor(scores, [L, H]), tokens };
}
