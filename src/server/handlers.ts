/**
 * The API's endpoints: validated request bodies in, plain JSON out. Each function checks the
 * request against the model (token ids, lengths, layers, heads, positions), tokenizes text, has
 * the model worker run the computation (compute.ts) and turns its numbers into the endpoint's
 * JSON; the routes (app.ts) only wire them to URLs. Numbers are rounded to 6 significant digits
 * (`num`); NaN and infinities become null.
 */
import type { ModelConfig } from '../model/config.js';
import type { ModelTokenizer } from '../model/hooked.js';
import { HttpError } from './errors.js';
import type { ModelWorker } from './model-worker.js';
import type { AttentionRaw, DlaRaw, ForwardRaw, HeadsRaw, LensRaw, Sampling, SteerRaw } from './compute.js';
import type {
  AttentionBody,
  AttentionResult,
  DlaBody,
  DlaResult,
  ForwardBody,
  ForwardResult,
  Generation,
  Grid,
  HeadsBody,
  HeadsResult,
  LogitLensBody,
  LogitLensResult,
  ModelInfo,
  Prompt,
  ServerLimits,
  SteerBody,
  SteerResult,
  TokenizeBody,
  TokenizeResult,
  TokenProb,
  TokenRef,
} from './schemas.js';

/** What the HTTP thread knows of the model: its config, hook names and tokenizer (the weights are the worker's). */
export interface ModelView {
  cfg: ModelConfig;
  hookNames: readonly string[];
  tokenizer: ModelTokenizer | null;
}

export interface Ctx {
  model: ModelView;
  modelName: string;
  limits: ServerLimits;
  worker: ModelWorker;
  /** Whether the worker has a tuned lens (its `Computer.tunedLens`). */
  tunedLens?: boolean;
}

/** A float rounded to 6 significant digits; null for NaN and infinities (JSON has neither). */
export function num(x: number): number | null {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : null;
}

export function tokenStr(model: ModelView, id: number): string | null {
  return model.tokenizer ? model.tokenizer.toStrTokens([id])[0]! : null;
}

export function strTokens(model: ModelView, ids: readonly number[]): string[] | null {
  return model.tokenizer ? model.tokenizer.toStrTokens(ids) : null;
}

function checkVocab(model: ModelView, ids: readonly number[], what: string): void {
  const V = model.cfg.dVocab;
  const bad = ids.find((t) => t >= V);
  if (bad !== undefined) throw new HttpError(400, `${what}: token id ${bad} is outside the vocabulary (0..${V - 1})`);
}

/**
 * A prompt as token ids: text is tokenized (BOS prepended unless `prependBos` is false), ids are
 * checked against the vocabulary. More than `maxTokens` tokens is a 413 naming the limit.
 */
export function promptIds(ctx: Ctx, prompt: Prompt, prependBos = true, what = 'prompt'): number[] {
  const { model, limits } = ctx;
  let ids: number[];
  if (typeof prompt === 'string') {
    if (!model.tokenizer) throw new HttpError(400, `${what}: this model has no tokenizer; send the prompt as token ids`);
    ids = model.tokenizer.encode(prompt, { prependBos });
    if (ids.length === 0) throw new HttpError(400, `${what} is empty`);
  } else {
    ids = prompt;
    checkVocab(model, ids, what);
  }
  if (ids.length > limits.maxTokens)
    throw new HttpError(413, `${what} is ${ids.length} tokens long; the limit is ${limits.maxTokens} tokens`);
  return ids;
}

/** A token given as its id or as a text that is exactly one token. */
export function tokenId(ctx: Ctx, ref: TokenRef, what: string): number {
  const { model } = ctx;
  if (typeof ref === 'number') {
    checkVocab(model, [ref], what);
    return ref;
  }
  if (!model.tokenizer) throw new HttpError(400, `${what}: this model has no tokenizer; give the token's id`);
  const ids = model.tokenizer.encode(ref, { prependBos: false });
  if (ids.length !== 1)
    throw new HttpError(
      400,
      `${what}: ${JSON.stringify(ref)} is ${ids.length} tokens (${ids.join(', ')}), not one; give one token or its id`,
    );
  return ids[0]!;
}

export function checkLayer(ctx: Ctx, layer: number, what = 'layer'): void {
  const L = ctx.model.cfg.nLayers;
  if (layer >= L) throw new HttpError(400, `${what} ${layer} is out of range: the model has ${L} layers (0..${L - 1})`);
}

export function checkHead(ctx: Ctx, head: number): void {
  const H = ctx.model.cfg.nHeads;
  if (head >= H) throw new HttpError(400, `head ${head} is out of range: the model has ${H} heads per layer (0..${H - 1})`);
}

/** A position (negative counts from the end) within a prompt of `n` tokens. */
export function checkPos(pos: number, n: number): number {
  const p = pos < 0 ? pos + n : pos;
  if (p < 0 || p >= n) throw new HttpError(400, `pos ${pos} is out of range for a prompt of ${n} tokens (${-n}..${n - 1})`);
  return p;
}

function topKOf(ctx: Ctx, k: number | undefined): number {
  return Math.min(k ?? 5, ctx.model.cfg.dVocab);
}

/** A row-major array of the given shape as nested arrays of rounded numbers. */
export function grid(data: ArrayLike<number>, shape: readonly [number, number]): Grid;
export function grid(data: ArrayLike<number>, shape: readonly [number, number, number]): Grid[];
export function grid(data: ArrayLike<number>, shape: readonly number[]): unknown[] {
  return nested(data, shape, 0);
}

function nested(data: ArrayLike<number>, shape: readonly number[], offset: number): unknown[] {
  const [n, ...rest] = shape;
  if (rest.length === 0) return Array.from({ length: n! }, (_, i) => num(data[offset + i]!));
  const stride = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n! }, (_, i) => nested(data, rest, offset + i * stride));
}

/**
 * GET /api/model: `{ name, family, nLayers, dModel, nHeads, nKVHeads, dHead, dMlp, dVocab, nCtx,
 * positional, norm, act, attnOnly, hasTokenizer, bosTokenId, eosTokenId, padTokenId, hookNames,
 * limits }`.
 */
export function modelInfo(ctx: Ctx): ModelInfo {
  const { cfg } = ctx.model;
  return {
    name: ctx.modelName,
    family: cfg.family,
    nLayers: cfg.nLayers,
    dModel: cfg.dModel,
    nHeads: cfg.nHeads,
    nKVHeads: cfg.nKVHeads,
    dHead: cfg.dHead,
    dMlp: cfg.dMlp,
    dVocab: cfg.dVocab,
    nCtx: cfg.nCtx,
    positional: cfg.positional,
    norm: cfg.norm,
    act: cfg.act,
    attnOnly: cfg.attnOnly ?? false,
    hasTokenizer: ctx.model.tokenizer !== null,
    bosTokenId: cfg.bosTokenId,
    eosTokenId: cfg.eosTokenId,
    padTokenId: cfg.padTokenId,
    hookNames: [...ctx.model.hookNames],
    limits: { ...ctx.limits },
    tunedLens: ctx.tunedLens === true,
  };
}

/** POST /api/tokenize `{ prompt, prependBos? }` -> `{ tokens: number[], strTokens: string[] | null }`. */
export function tokenize(ctx: Ctx, body: TokenizeBody): TokenizeResult {
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  return { tokens, strTokens: strTokens(ctx.model, tokens) };
}

/**
 * POST /api/forward `{ prompt, prependBos?, topK? = 5 }` -> `{ tokens, strTokens, top }`:
 * top[pos] is the model's `topK` most likely next tokens after position pos, `{ token, str, prob }`,
 * most likely first.
 */
export async function forward(ctx: Ctx, body: ForwardBody): Promise<ForwardResult> {
  const { model } = ctx;
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  const k = topKOf(ctx, body.topK);
  const r = await ctx.worker.call<ForwardRaw>('forward', { tokens, topK: k });
  const top: TokenProb[][] = tokens.map((_, p) =>
    Array.from({ length: k }, (_, j) => {
      const token = r.ids[p * k + j]!;
      return { token, str: tokenStr(model, token), prob: num(r.probs[p * k + j]!) };
    }),
  );
  return { tokens, strTokens: strTokens(model, tokens), top, tokenProbs: r.tokenProbs.map(num) };
}

/**
 * POST /api/attention `{ prompt, prependBos?, layer, head? }` -> `{ layer, heads, tokens,
 * strTokens, pattern }`: pattern[i][q][k] is the attention of head heads[i] (every head of the
 * layer, or just `head`) from query position q to key position k.
 */
export async function attention(ctx: Ctx, body: AttentionBody): Promise<AttentionResult> {
  const { model } = ctx;
  checkLayer(ctx, body.layer);
  if (body.head !== undefined) checkHead(ctx, body.head);
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  const s = tokens.length;
  const r = await ctx.worker.call<AttentionRaw>('attention', {
    tokens,
    layer: body.layer,
    ...(body.head !== undefined ? { head: body.head } : {}),
  });
  return {
    layer: body.layer,
    heads: r.heads,
    tokens,
    strTokens: strTokens(model, tokens),
    pattern: grid(r.pattern, [r.heads.length, s, s]),
  };
}

/** Why `lens: 'tuned'` is refused when no tuned lens is loaded (also the workbench's reason). */
export const NO_TUNED_LENS =
  "lens: 'tuned' needs a tuned lens, and none is loaded: start the server with --tuned-lens DIR (or put one in the model folder's tuned-lens/; `glassbox tuned-lens train` makes one)";

/**
 * POST /api/logit-lens `{ prompt, prependBos?, topK? = 5, track?, lens? = 'logit' }` -> `{ lens,
 * labels, tokens, strTokens, top, tracked? }`: labels[i] names the residual stream read ('0_pre' =
 * the embeddings, ..., 'final_post' = the model's output); top[i][pos] is its `topK` next-token
 * predictions `{ token, str, prob }`. `lens: 'tuned'` reads each stream through the loaded tuned
 * lens's translator first (a 400 when none is loaded).
 */
export async function logitLensGrid(ctx: Ctx, body: LogitLensBody): Promise<LogitLensResult> {
  const { model } = ctx;
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  const k = topKOf(ctx, body.topK);
  const s = tokens.length;
  const track = body.track !== undefined ? tokenId(ctx, body.track, 'track') : undefined;
  const lens = body.lens ?? 'logit';
  if (lens === 'tuned' && !ctx.tunedLens) throw new HttpError(400, NO_TUNED_LENS);
  const r = await ctx.worker.call<LensRaw>('logitLens', {
    tokens,
    topK: k,
    ...(track !== undefined ? { track } : {}),
    ...(lens === 'tuned' ? { tuned: true } : {}),
  });
  const top: TokenProb[][][] = r.labels.map((_, l) =>
    tokens.map((_, p) =>
      Array.from({ length: k }, (_, j) => {
        const i = (l * s + p) * k + j;
        const token = r.ids[i]!;
        return { token, str: tokenStr(model, token), prob: num(r.probs[i]!) };
      }),
    ),
  );
  const L = r.labels.length;
  const tracked =
    track !== undefined
      ? { token: track, str: tokenStr(model, track), prob: grid(r.trackProbs!, [L, s]), rank: grid(r.trackRanks!, [L, s]) }
      : undefined;
  return { lens, labels: r.labels, tokens, strTokens: strTokens(model, tokens), top, ...(tracked ? { tracked } : {}) };
}

/**
 * POST /api/dla `{ prompt, prependBos?, answer, wrong?, pos? = -1 }` (answer and wrong: a
 * one-token text or a token id) -> `{ tokens, strTokens, pos, answer: { token, str }, wrong,
 * components: [{ label, value }], heads, total, logitDiff }`: each component's direct
 * contribution to logit(answer) - logit(wrong) at pos (labels as `residualStack`: 'embed',
 * 'pos_embed', 'L{l}H{h}', 'L{l}.b_O', 'L{l}.mlp_out', 'bias'); heads[l][h] is the L{l}H{h}
 * values as a grid (null where the model has no per-head split); total is their sum and
 * logitDiff the real run's logit (difference), equal up to rounding.
 */
export async function dla(ctx: Ctx, body: DlaBody): Promise<DlaResult> {
  const { model } = ctx;
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  const pos = checkPos(body.pos ?? -1, tokens.length);
  const answer = tokenId(ctx, body.answer, 'answer');
  const wrong = body.wrong === undefined ? undefined : tokenId(ctx, body.wrong, 'wrong');
  const r = await ctx.worker.call<DlaRaw>('dla', { tokens, answer, ...(wrong !== undefined ? { wrong } : {}), pos });
  const { nLayers: L, nHeads: H } = model.cfg;
  const byLabel = new Map(r.labels.map((l, i) => [l, r.values[i]!]));
  const heads = byLabel.has('L0H0')
    ? Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => num(byLabel.get(`L${l}H${h}`) ?? NaN)))
    : null;
  return {
    tokens,
    strTokens: strTokens(model, tokens),
    pos,
    answer: { token: answer, str: tokenStr(model, answer) },
    wrong: wrong === undefined ? null : { token: wrong, str: tokenStr(model, wrong) },
    components: r.labels.map((label, i) => ({ label, value: num(r.values[i]!) })),
    heads,
    total: num(r.total),
    logitDiff: num(r.logitDiff),
  };
}

/**
 * POST /api/heads `{ prompt?, prependBos?, seqLen?, batch? = 4, seed? = 0 }` -> `{ nLayers,
 * nHeads, previousToken, duplicateToken, induction, scoredOn, repeated: { seqLen, batch, seed,
 * tokens } }`: [layer][head] scores in [0, 1] (null where nothing was scored, e.g. a prompt
 * without repeated tokens for duplicateToken). Induction is scored on `batch` rows of
 * `seqLen` random tokens written twice (after BOS); previous- and duplicate-token scores on the
 * prompt, or on those rows when no prompt is given (`scoredOn` says which).
 */
export async function heads(ctx: Ctx, body: HeadsBody): Promise<HeadsResult> {
  const { model, limits } = ctx;
  const { cfg } = model;
  const bos = cfg.bosTokenId !== null ? 1 : 0;
  const room = Math.floor((limits.maxTokens - bos) / 2);
  if (room < 1) throw new HttpError(400, `the token limit of ${limits.maxTokens} is too short for repeated random tokens`);
  const seqLen = body.seqLen ?? Math.min(50, room);
  if (seqLen > room)
    throw new HttpError(
      413,
      `seqLen ${seqLen} gives ${2 * seqLen + bos} tokens; the limit is ${limits.maxTokens} tokens (seqLen at most ${room})`,
    );
  const batch = body.batch ?? 4;
  const seed = body.seed ?? 0;
  const prompt = body.prompt === undefined ? null : promptIds(ctx, body.prompt, body.prependBos);
  const r = await ctx.worker.call<HeadsRaw>('heads', { prompt, seqLen, batch, seed });
  const g = (v: number[]) => grid(v, [cfg.nLayers, cfg.nHeads]);
  return {
    nLayers: cfg.nLayers,
    nHeads: cfg.nHeads,
    previousToken: g(r.previousToken),
    duplicateToken: g(r.duplicateToken),
    induction: g(r.induction),
    scoredOn: prompt ? 'prompt' : 'repeated',
    ...(prompt ? { tokens: prompt, strTokens: strTokens(model, prompt) } : {}),
    repeated: { seqLen, batch, seed, tokens: r.tokens },
  };
}

/**
 * POST /api/steer `{ positive: Prompt[], negative: Prompt[], layer, hook? = 'resid_pre',
 * position? = 'last', positions? = 'all', scale? = 1, prompt, prependBos?, maxNewTokens? = 20,
 * temperature? = 0, topK?, topP?, seed? = 0 }` -> `{ hook, layer, scale, vectorNorm, prompt:
 * { tokens, text }, unsteered: { tokens, text }, steered: { tokens, text } }`: the
 * difference-of-means vector (positive minus negative activations at the hook, at each prompt's
 * last token or averaged over positions) times `scale`, added at the hook while generating
 * (`positions`); both continuations use the same sampling settings and seed. `text` is null
 * without a tokenizer. The hook must be a residual-stream hook (resid_pre, resid_mid,
 * resid_post, attn_out, mlp_out, hook_embed, hook_pos_embed).
 */
export async function steer(ctx: Ctx, body: SteerBody): Promise<SteerResult> {
  checkLayer(ctx, body.layer);
  const positive = body.positive.map((p, i) => promptIds(ctx, p, body.prependBos, `positive[${i}]`));
  const negative = body.negative.map((p, i) => promptIds(ctx, p, body.prependBos, `negative[${i}]`));
  const prompt = promptIds(ctx, body.prompt, body.prependBos);
  const sampling = samplingArgs(ctx, prompt, body);
  const scale = body.scale ?? 1;
  const r = await ctx.worker.call<SteerRaw>('steer', {
    positive,
    negative,
    layer: body.layer,
    hook: body.hook ?? 'resid_pre',
    position: body.position ?? 'last',
    positions: body.positions ?? 'all',
    scale,
    prompt,
    ...sampling,
  });
  return { hook: r.hook, layer: body.layer, scale, vectorNorm: num(r.vectorNorm), ...generations(ctx.model, prompt, r) };
}

/**
 * A steering request's generation settings with their defaults (maxNewTokens 20, or the server's
 * limit when lower; temperature 0; seed 0; topK and topP only when given). Refused (400) when the
 * prompt and the new tokens would not fit a learned-position model's context.
 */
export function samplingArgs(ctx: Ctx, prompt: readonly number[], body: Partial<Sampling>): Sampling {
  const { cfg } = ctx.model;
  const maxNewTokens = body.maxNewTokens ?? Math.min(20, ctx.limits.maxNewTokens);
  if (cfg.positional === 'learned' && prompt.length + maxNewTokens > cfg.nCtx)
    throw new HttpError(
      400,
      `the prompt (${prompt.length} tokens) and maxNewTokens (${maxNewTokens}) exceed the model's context of ${cfg.nCtx} tokens`,
    );
  return {
    maxNewTokens,
    temperature: body.temperature ?? 0,
    seed: body.seed ?? 0,
    ...(body.topK !== undefined ? { topK: body.topK } : {}),
    ...(body.topP !== undefined ? { topP: body.topP } : {}),
  };
}

/** The prompt and its two continuations as `{ tokens, text }` (text null without a tokenizer). */
export function generations(
  model: ModelView,
  prompt: number[],
  r: { unsteered: number[]; steered: number[] },
): { prompt: Generation; unsteered: Generation; steered: Generation } {
  const text = (ids: number[]) => (model.tokenizer ? model.tokenizer.decode(ids) : null);
  return {
    prompt: { tokens: prompt, text: text(prompt) },
    unsteered: { tokens: r.unsteered, text: text(r.unsteered) },
    steered: { tokens: r.steered, text: text(r.steered) },
  };
}
