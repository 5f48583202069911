/**
 * Generation: continuing prompts token by token, greedy or sampled, with or without a KV cache,
 * with hooks applied at every step. `HookedTransformer.generate` calls `generate` here.
 */
import { PRNG, Tensor, jit, tensor } from '../tensor/index.js';
import type { ForwardInputs, ModelParams } from './forward.js';
import type { HookList, HookedTransformer } from './hooked.js';
import type { RopeId } from './config.js';
import {
  checkContext,
  checkVocab,
  longestRow,
  crossesLongRope,
  decodeInputs,
  forwardInputs,
  maskTensor,
  oneHotSlot,
  refuseRouterTies,
  toTokens,
  type RunOptions,
  type TokenInput,
} from './inputs.js';

export interface GenerateOptions extends RunOptions {
  /** Default 10. */
  maxNewTokens?: number;
  /** 0 (default) picks the most likely token; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
  topK?: number;
  /** Nucleus sampling: the smallest set of tokens whose probability reaches topP. */
  topP?: number;
  /** Seed of the sampling generator (default 0). */
  seed?: number;
  /** Stop a row at its end-of-sequence token (default true); finished rows are filled with the pad token. */
  stopAtEos?: boolean;
  eosTokenId?: number;
  hooks?: HookList;
  /** Default true. */
  useKvCache?: boolean;
  /**
   * Slots of the KV cache (or, without it, the fixed length of every step's sequence): at least
   * the prompt's columns plus `maxNewTokens` (the default). Unused slots are masked, so a larger
   * cache changes nothing but the shapes: calls with other prompt lengths or `maxNewTokens`
   * given the same `cacheLength` share compiled sessions.
   */
  cacheLength?: number;
}

/** Generation settings. */
export const generateConfig = {
  /**
   * Keep the decoding step's trace and run it again at every step when no hooks are given
   * (jit's `reuseTrace`); false traces every step again (as before; for comparisons).
   */
  reuseStepTrace: true,
};

/** A decoding step's inputs as jit arguments: the maps of `ForwardInputs` as entry lists. */
type StepInputs = Omit<ForwardInputs, 'tokens' | 'masks' | 'rotary'> & {
  masks: [number | null, Tensor][];
  rotary?: [RopeId, { cos: Tensor; sin: Tensor }][];
};

/**
 * Continues each prompt by up to `maxNewTokens` tokens. Greedy at temperature 0; otherwise
 * samples (top-k, top-p) from a seeded generator. Batched prompts must be left-padded (pass the
 * attentionMask). With the KV cache (default) decoding runs one fixed-shape graph for every
 * step; without it, every step re-reads the whole (fixed-length, padded) sequence.
 */
export function generate(
  model: HookedTransformer,
  input: TokenInput,
  options: GenerateOptions = {},
): { tokens: number[][]; newTokens: number[][] } {
  const tokens = toTokens(input);
  const [b, s] = tokens.shape as [number, number];
  const maxNew = options.maxNewTokens ?? 10;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${maxNew}`);
  // The last column generated, and the slots of the cache.
  const end = s + maxNew;
  const L = options.cacheLength ?? end;
  if (!Number.isSafeInteger(L) || L < end)
    throw new Error(`generate: cacheLength ${L} is shorter than the ${s} prompt columns plus ${maxNew} new tokens`);
  checkVocab(tokens, model.cfg.dVocab);
  const mask = maskTensor(options.attentionMask, tokens);
  // Positions count real tokens (left padding takes none), so the longest row's real prompt decides.
  const longest = longestRow(tokens, mask);
  checkContext(
    model.cfg,
    longest + maxNew,
    options.allowLongContext ?? model.allowLongContext,
    `generate: ${longest} prompt + ${maxNew} new tokens (${longest + maxNew} positions)`,
  );
  const valid: boolean[] = mask
    ? Array.from(mask.cast('int32').dataSync() as Int32Array, (v) => v !== 0)
    : new Array<boolean>(b * s).fill(true);
  for (let r = 0; r < b; r++)
    for (let c = 1; c < s; c++)
      if (!valid[r * s + c] && valid[r * s + c - 1])
        throw new Error('generate: pad batched prompts on the left (row ' + r + ' has padding after a real token)');
  const hooks = model.hookMap(options.hooks ?? []);
  const rng = new PRNG(options.seed ?? 0);
  const eos = options.eosTokenId ?? model.cfg.eosTokenId;
  const stopAtEos = (options.stopAtEos ?? true) && eos !== null;
  const fill = model.cfg.padTokenId ?? eos ?? 0;
  const rows = (tokens.toArray() as bigint[][]).map((r) => r.map(Number));
  const out: number[][] = rows.map(() => []);
  const done = new Array<boolean>(b).fill(false);
  const spec = { cache: new Set<string>(), hooks, marks: new Set<string>() };
  const pick = (logits: Float32Array, row: number): number =>
    sampleToken(logits.subarray(row * model.cfg.dVocab, (row + 1) * model.cfg.dVocab), options, rng);
  const accept = (next: number[]): void => {
    next.forEach((t, r) => {
      out[r]!.push(done[r] ? fill : t);
      if (stopAtEos && t === eos) done[r] = true;
    });
  };
  if (maxNew === 0) return { tokens: rows, newTokens: out };

  if (options.useKvCache === false) {
    // Fixed length L, right-padded with masked slots: one graph for every step.
    const call = jit((params: ModelParams, toks: Tensor, fwd: Omit<ForwardInputs, 'tokens'>) =>
      model.traced(params, { ...fwd, tokens: toks }, model.hookPoints(spec, {})),
    );
    for (let t = s; t < end && !done.every(Boolean); t++) {
      const ids = new Float64Array(b * L);
      const m = new Float64Array(b * L);
      for (let r = 0; r < b; r++)
        for (let c = 0; c < t; c++) {
          ids[r * L + c] = c < s ? rows[r]![c]! : out[r]![c - s]!;
          m[r * L + c] = c < s ? (valid[r * s + c] ? 1 : 0) : 1;
        }
      const toks = tensor(ids, [b, L], 'int64');
      const { logits, routerTies } = call(model.params, toks, forwardInputs(model.cfg, toks, tensor(m, [b, L], 'int64'))) as {
        logits: Tensor;
        routerTies?: Tensor[];
      };
      // Positions after t are masked placeholders, and finished rows' tokens are discarded.
      refuseRouterTies(routerTies, (r, c) => m[r * L + c] === 1 && c < t && !done[r]);
      const last = logits.index([null, t - 1]).dataSync() as Float32Array;
      accept(rows.map((_, r) => pick(last, r)));
    }
  } else {
    // The whole sequence so far in one pass: its last logits, and its keys and values padded to L slots.
    // `real` says which (row, pos) are real tokens (for the mixture-of-experts tie check).
    const prefill = (toks: Tensor, m: Tensor | null, real: (row: number, pos: number) => boolean) => {
      const n = toks.shape[1]!;
      const r = jit((params: ModelParams, t: Tensor, fwd: Omit<ForwardInputs, 'tokens'>) => {
        const presentKv = { k: [] as Tensor[], v: [] as Tensor[] };
        const { logits, routerTies } = model.traced(params, { ...fwd, tokens: t, presentKv }, model.hookPoints(spec, {}));
        return { last: logits.index([null, n - 1]), k: presentKv.k, v: presentKv.v, routerTies };
      })(model.params, toks, forwardInputs(model.cfg, toks, m));
      refuseRouterTies(r.routerTies, real);
      const padTo = (x: Tensor) =>
        x.pad([
          [0, 0],
          [0, L - n],
        ]);
      return { last: r.last, kv: { k: r.k.map(padTo), v: r.v.map(padTo) } };
    };
    const first = prefill(tokens, mask, (r, c) => valid[r * s + c]!);
    let kv = first.kv;
    accept(rows.map((_, r) => pick(first.last.dataSync() as Float32Array, r)));
    // Every step has one structure (fixed L), so without hooks its trace is kept and run again
    // (jit's reuseTrace): the step reads nothing but its arguments. A hook is a JS function that
    // may read state of its own at every step, so with hooks each step traces again.
    const step = jit(
      (params: ModelParams, tok: Tensor, fwd: StepInputs) => {
        const presentKv = { k: [] as Tensor[], v: [] as Tensor[] };
        const inputs: ForwardInputs = {
          ...fwd,
          masks: new Map(fwd.masks),
          rotary: fwd.rotary && new Map(fwd.rotary),
          tokens: tok,
          presentKv,
        };
        const { logits, routerTies } = model.traced(params, inputs, model.hookPoints(spec, {}));
        return { last: logits.index([null, 0]), k: presentKv.k, v: presentKv.v, routerTies };
      },
      { reuseTrace: generateConfig.reuseStepTrace && hooks.size === 0 },
    );
    const promptLen = rows.map((_, r) => valid.slice(r * s, (r + 1) * s).filter(Boolean).length);
    for (let t = s; t < end - 1 && !done.every(Boolean); t++) {
      const positions = promptLen.map((n) => n + (t - s));
      let last: Tensor;
      if (model.cfg.ropeRefreshCache && crossesLongRope(model.cfg, positions)) {
        // Phi-3: the first step past LongRoPE's pre-training context recomputes the cache, so
        // every key is rotated with the long factors (what transformers' Phi3ForCausalLM intends
        // by dropping its cache there; transformers 5.18 then feeds only the newest token, which
        // loses the context, so only its uncached generation can be matched, and this equals it).
        const seq = rows.map((row, r) => [...row, ...out[r]!.slice(0, t - s + 1)]);
        const m = rows.map((row, r) => [...row.map((_, c) => (valid[r * s + c] ? 1 : 0)), ...Array<number>(t - s + 1).fill(1)]);
        const r = prefill(tensor(seq.flat(), [b, t + 1], 'int64'), tensor(m.flat(), [b, t + 1], 'int64'), (row, c) => m[row]![c] === 1);
        ({ last, kv } = r);
      } else {
        const tok = tensor(
          out.map((o) => o[t - s]!),
          [b, 1],
          'int64',
        );
        const fwd = decodeInputs(model.cfg, t, L, s, valid, positions);
        // Maps as entry lists: jit compares argument structures, and a Map is not a plain pytree.
        const r = step(model.params, tok, {
          ...fwd,
          masks: [...fwd.masks],
          rotary: fwd.rotary && [...fwd.rotary],
          kvCache: { ...kv, write: oneHotSlot(t, L) },
        });
        refuseRouterTies(r.routerTies, (row) => !done[row]);
        kv = { k: r.k, v: r.v };
        last = r.last;
      }
      accept(rows.map((_, row) => pick(last.dataSync() as Float32Array, row)));
    }
  }
  return { tokens: rows.map((r, i) => [...r, ...out[i]!]), newTokens: out };
}

/** Picks the next token from one row of logits. */
export function sampleToken(logits: Float32Array, o: { temperature?: number; topK?: number; topP?: number }, rng: PRNG): number {
  const temp = o.temperature ?? 0;
  if (temp <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
  if (o.topK !== undefined && o.topK > 0) order = order.slice(0, o.topK);
  const max = logits[order[0]!]!;
  let probs = order.map((i) => Math.exp((logits[i]! - max) / temp));
  let total = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length && acc < o.topP * total) acc += probs[keep++]!;
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, order.length);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng.uniform() * total;
  for (let i = 0; i < order.length; i++) {
    u -= probs[i]!;
    if (u <= 0) return order[i]!;
  }
  return order[order.length - 1]!;
}
