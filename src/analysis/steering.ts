/**
 * Activation steering by adding a vector to the residual stream while the model generates.
 *
 * The vector is a difference of means, as in contrastive activation addition (CAA; Rimsky et al.
 * 2023, "Steering Llama 2 via Contrastive Activation Addition"): the mean activation at one hook
 * point over a set of "positive" prompts minus the mean over "negative" prompts, taken at the
 * last token (CAA reads the answer-letter token) or averaged over positions. Activation Addition
 * (ActAdd; Turner et al. 2023, "Steering Language Models With Activation Engineering") is the
 * one-pair case (e.g. "Love" - "Hate"). During generation `scale * vector` is added at that hook
 * point, through `generate`'s hooks, at every position (CAA adds it to every position after the
 * prompt's start), only at the prompt's positions, only at generated tokens, or at chosen
 * positions (ActAdd adds at the first few positions).
 */
import { Tensor, tensor } from '../tensor/index.js';
import { suggest, type GenerateOptions, type HookedTransformer, type TokenInput } from '../model/hooked.js';
import { checkLayer, promptTokens, tokenRows, type PromptInput } from './common.js';
import { bucketedCache, padRows, type ShapeBuckets } from './buckets.js';

/** A residual-stream hook of a layer ('resid_pre', 'resid_mid', 'resid_post'), or any full hook name. */
export type SteeringHook = 'resid_pre' | 'resid_mid' | 'resid_post' | (string & {});

/** The full hook name for `layer` and `hook` ('resid_pre' -> 'blocks.{layer}.hook_resid_pre'). */
export function steeringHookName(model: HookedTransformer, layer: number, hook: SteeringHook = 'resid_pre'): string {
  const name = hook.includes('.') || hook.startsWith('hook_') ? hook : `blocks.${layer}.hook_${hook}`;
  if (!model.hookNames.includes(name)) throw new Error(`unknown hook point '${name}'${suggest(name, model.hookNames)}`);
  return name;
}

/**
 * Prompts as a list of token rows: each string tokenized on its own (with BOS, so the strings
 * may tokenize to different lengths), token rows as they are. `attentionMask`-free: rows of
 * different lengths are run in separate batches.
 */
export function promptList(model: HookedTransformer, prompts: PromptInput): number[][] {
  if (typeof prompts === 'string') return model.toTokens(prompts);
  if (Array.isArray(prompts) && typeof prompts[0] === 'string') return model.toTokens(prompts as readonly string[]);
  if (prompts instanceof Tensor) return tokenRows(promptTokens(model, prompts));
  const rows = (Array.isArray(prompts[0]) ? prompts : [prompts]) as readonly (readonly number[])[];
  if (rows.length === 0 || rows.some((r) => r.length === 0)) throw new Error('prompts: empty prompt');
  return rows.map((r) => [...r]);
}

/**
 * Runs `rows` through `runWithCache` for `name`, grouping rows of equal length into one batch,
 * and returns each row's activation [pos, ...] in the order given. With `buckets` rows run padded
 * (see buckets.ts): grouped by padded length, so rows of many lengths share compiled sessions.
 */
export function rowActivations(
  model: HookedTransformer,
  rows: readonly (readonly number[])[],
  name: string,
  buckets?: ShapeBuckets,
): Tensor[] {
  if (buckets) {
    const cache = bucketedCache(model, rows, [name], buckets);
    return rows.map((_, i) => cache.get(i, name));
  }
  const out: Tensor[] = new Array<Tensor>(rows.length);
  const byLen = new Map<number, number[]>();
  rows.forEach((r, i) => byLen.set(r.length, [...(byLen.get(r.length) ?? []), i]));
  for (const [len, idx] of byLen) {
    const toks = tensor(
      idx.flatMap((i) => rows[i]!),
      [idx.length, len],
      'int64',
    );
    const act = model.runWithCache(toks, { names: [name] }).cache.get(name);
    idx.forEach((i, j) => (out[i] = act.index([j])));
  }
  return out;
}

export interface SteeringVectorOptions {
  /** Layer whose hook is read. */
  layer: number;
  /** 'resid_pre' (default), 'resid_mid', 'resid_post', or a full hook name. */
  hook?: SteeringHook;
  /** 'last' (default): the activation at each prompt's last token; 'mean': averaged over its positions. */
  position?: 'last' | 'mean';
  /** Run the prompts padded to these buckets (see buckets.ts): the same vector, fewer compiled sessions. */
  buckets?: ShapeBuckets;
}

/**
 * The difference-of-means steering vector [d_model] (CAA, Rimsky et al. 2023): mean over the
 * positive prompts of the activation at `blocks.{layer}.hook_{hook}` (at the last token, or
 * averaged over each prompt's positions) minus the same mean over the negative prompts. Every
 * prompt weighs the same whatever its length. Strings are tokenized with BOS, one at a time.
 */
export function steeringVector(
  model: HookedTransformer,
  positive: PromptInput,
  negative: PromptInput,
  options: SteeringVectorOptions,
): Tensor {
  checkLayer(model, options.layer, 'steeringVector');
  const name = steeringHookName(model, options.layer, options.hook);
  const position = options.position ?? 'last';
  if (position !== 'last' && position !== 'mean')
    throw new Error(`steeringVector: position must be 'last' or 'mean', got '${String(position)}'`);
  const meanOf = (prompts: PromptInput, what: string): Tensor => {
    const rows = promptList(model, prompts);
    if (rows.length === 0) throw new Error(`steeringVector: no ${what} prompts`);
    const acts = rowActivations(model, rows, name, options.buckets).map((a) => (position === 'last' ? a.index([-1]) : a.mean(0)));
    return acts
      .reduce((x, y) => x.add(y))
      .div(acts.length)
      .cast('float32');
  };
  return meanOf(positive, 'positive').sub(meanOf(negative, 'negative'));
}

/** Where the vector is added: every position, the prompt's, the generated tokens', or these (0-based, counted from the first prompt column). */
export type SteeringPositions = 'all' | 'prompt' | 'generated' | readonly number[];

export interface SteerOptions {
  /** Layer of the hook the vector is added at. */
  layer: number;
  /** 'resid_pre' (default), 'resid_mid', 'resid_post', or a full hook name. */
  hook?: SteeringHook;
  /** Multiplier of the vector (default 1). */
  scale?: number;
  /** Default 'all'. */
  positions?: SteeringPositions;
}

/**
 * Generation options (as `generate`, left-padded batches with their attentionMask) plus where the
 * vector goes. Hooks and the KV cache are the steering's to set.
 */
export interface GenerateSteeredOptions extends SteerOptions, Omit<GenerateOptions, 'hooks' | 'useKvCache'> {}

/**
 * The steering vector as `[d_model]` float32, checked against the model.
 */
function vectorTensor(model: HookedTransformer, vector: Tensor | readonly number[], what: string): Tensor {
  const v = vector instanceof Tensor ? vector.cast('float32') : tensor([...vector]);
  if (v.rank !== 1 || v.shape[0] !== model.cfg.dModel)
    throw new Error(`${what}: the steering vector has shape [${v.shape}], the model needs [${model.cfg.dModel}]`);
  return v;
}

/**
 * Hooks that add `scale * vector` at a residual hook for a forward pass over `seqLen` positions
 * (the columns of the prompt, then generated tokens from column `promptLen`): for `runWithHooks`
 * or `generate`. Only 'all' works with any sequence length (and so with a KV cache).
 */
export function steeringHooks(
  model: HookedTransformer,
  vector: Tensor | readonly number[],
  options: SteerOptions & { promptLen?: number; seqLen?: number },
): [string, (x: Tensor) => Tensor][] {
  checkLayer(model, options.layer, 'steeringHooks');
  const name = steeringHookName(model, options.layer, options.hook);
  const v = vectorTensor(model, vector, 'steeringHooks').mul(options.scale ?? 1); // [d_model]
  const positions = options.positions ?? 'all';
  if (positions === 'all') return [[name, (x) => x.add(v)]];
  const { promptLen, seqLen } = options;
  if (promptLen === undefined || seqLen === undefined)
    throw new Error(`steeringHooks: positions '${String(positions)}' need promptLen and seqLen`);
  const m = new Float32Array(seqLen);
  for (let p = 0; p < seqLen; p++) {
    if (positions === 'prompt') m[p] = p < promptLen ? 1 : 0;
    else if (positions === 'generated') m[p] = p >= promptLen ? 1 : 0;
  }
  if (Array.isArray(positions))
    for (const p of positions as readonly number[]) {
      if (!Number.isInteger(p) || p < 0 || p >= seqLen) throw new Error(`steeringHooks: position ${p} is out of range (0..${seqLen - 1})`);
      m[p] = 1;
    }
  else if (positions !== 'prompt' && positions !== 'generated')
    throw new Error(`steeringHooks: positions must be 'all', 'prompt', 'generated' or a list of positions, got '${String(positions)}'`);
  const add = tensor(m, [seqLen, 1]).mul(v); // [seqLen, d_model]
  return [
    [
      name,
      (x) => {
        if (x.shape[1] !== seqLen) throw new Error(`steering hook: expected ${seqLen} positions, got ${x.shape[1]}`);
        return x.add(add);
      },
    ],
  ];
}

/**
 * `model.generate` with `scale * vector` ([d_model]) added at `blocks.{layer}.hook_{hook}` (ActAdd /
 * CAA). With positions 'all' decoding uses the KV cache; other positions run each step over the
 * whole fixed-length sequence (`useKvCache: false`) so the added vector can depend on the
 * position. With scale 0 the result is `generate`'s.
 */
export function generateSteered(
  model: HookedTransformer,
  prompt: PromptInput,
  vector: Tensor | readonly number[],
  options: GenerateSteeredOptions,
): { tokens: number[][]; newTokens: number[][]; text?: string[] } {
  const tokens = promptTokens(model, prompt);
  const s = tokens.shape[1]!;
  const maxNew = options.maxNewTokens ?? 10;
  const positions = options.positions ?? 'all';
  const hooks = steeringHooks(model, vector, { ...options, promptLen: s, seqLen: options.cacheLength ?? s + maxNew });
  const out = model.generate(tokens, {
    ...generateOptions(options),
    hooks,
    ...(positions === 'all' ? {} : { useKvCache: false }),
  });
  return model.tokenizer ? { ...out, text: out.tokens.map((r) => model.tokenizer!.decode(r)) } : out;
}

/** The generation options of steered generation (everything but where the vector goes). */
function generateOptions(o: GenerateSteeredOptions): Omit<GenerateOptions, 'hooks' | 'useKvCache'> {
  const { layer: _layer, hook: _hook, scale: _scale, positions: _positions, ...rest } = o;
  return rest;
}

/**
 * One prompt row as generation input: as it is, or with `buckets` left-padded to a bucket length
 * with its attention mask, and the KV cache sized to a bucket, so that prompts of many lengths
 * and `maxNewTokens` share compiled sessions (the continuation is the same).
 */
function generationInput(
  row: readonly number[],
  maxNew: number,
  buckets: ShapeBuckets | undefined,
): { tokens: TokenInput; attentionMask?: Tensor; cacheLength?: number } {
  if (!buckets) return { tokens: [[...row]] };
  const S = buckets.length(row.length);
  const { tokens, attentionMask } = padRows([row], S, 1, { side: 'left' });
  return { tokens, attentionMask, cacheLength: buckets.length(S + maxNew) };
}

/** One prompt's steered and unsteered continuations. */
export interface SteeringComparison {
  /** The prompt's token ids. */
  prompt: number[];
  /** Generated token ids without steering. */
  unsteered: number[];
  /** Generated token ids with `scale * vector` added. */
  steered: number[];
  /** Decoded prompt and continuations (without the prompt), when the model has a tokenizer. */
  promptText?: string;
  unsteeredText?: string;
  steeredText?: string;
}

/**
 * Side by side, for each prompt (strings tokenized one at a time, so lengths may differ), the
 * continuation without steering and with it; both use the same sampling settings and seed. With
 * `buckets` each prompt runs left-padded to a bucket length and the KV cache has a bucket's
 * length (see buckets.ts): the same continuations, from a bounded number of compiled sessions.
 */
export function compareSteering(
  model: HookedTransformer,
  prompts: PromptInput,
  vector: Tensor | readonly number[],
  options: GenerateSteeredOptions & { buckets?: ShapeBuckets },
): SteeringComparison[] {
  const tok = model.tokenizer;
  const { buckets, ...opts } = options;
  return promptList(model, prompts).map((row) => {
    const { tokens, ...input } = generationInput(row, opts.maxNewTokens ?? 10, buckets);
    const plain = model.generate(tokens, { ...generateOptions(opts), ...input }).newTokens[0]!;
    const steered = generateSteered(model, tokens, vector, { ...opts, ...input }).newTokens[0]!;
    const r: SteeringComparison = { prompt: row, unsteered: plain, steered };
    if (tok) {
      r.promptText = tok.decode(row);
      r.unsteeredText = tok.decode(plain);
      r.steeredText = tok.decode(steered);
    }
    return r;
  });
}
