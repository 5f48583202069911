/**
 * HookedTransformer: a language model whose every activation has a TransformerLens hook name,
 * can be cached, replaced by a hook function, or marked for gradients. Each call traces the
 * forward pass (with the requested hooks) and runs it as one compiled ONNX Runtime session;
 * calls with the same structure (hooks, cached names, shapes) reuse the session.
 */
import { Trace, withTrace } from '../tensor/trace.js';
import { PRNG, Tensor, jit, markGradTarget, tensor, valueAndGrad, type GradTargets } from '../tensor/index.js';
import { ropeOf, type ModelConfig, type RopeId } from './config.js';
import { layerOf } from './hook-names.js';
import { HfConfigReader } from './hf-config.js';
import { ropeFrequencies } from './rope.js';
import { familyFor, type WeightReader } from './families/index.js';
import { processWeights, type ProcessOptions } from './process.js';
import { transformerForward, type ForwardInputs, type HookPoints, type ModelParams } from './forward.js';
import { saveModel, type SaveModelOptions } from './save.js';

/** Context passed to hook functions. */
export interface HookContext {
  /** The hook point's name, e.g. 'blocks.3.attn.hook_pattern'. */
  name: string;
  /** The layer index, or null for hooks outside the blocks. */
  layer: number | null;
  /**
   * Marks the value as a gradient target under this hook's name: inside `valueAndGrad`, its
   * gradient is returned with the others (see `gradientsAt` for the common case).
   */
  markGrad(x: Tensor): Tensor;
}

/** A hook: receives the activation (a traced tensor) and returns the value that flows on. */
export type HookFn = (x: Tensor, ctx: HookContext) => Tensor | void;

/** Which hook points to select: a list of names, a regex, or a predicate. */
export type NameFilter = readonly string[] | RegExp | ((name: string) => boolean);

/** Token input: [batch, pos] ids as a tensor, nested arrays, or one row. */
export type TokenInput = Tensor | readonly (readonly number[])[] | readonly number[];

export interface RunOptions {
  /** [batch, pos] 1 for real tokens, 0 for padding (left or right). */
  attentionMask?: Tensor | readonly (readonly number[])[];
}

/** Hook functions to apply: [name or filter, fn] pairs, in order. */
export type HookList = readonly (readonly [string | NameFilter, HookFn])[];

/**
 * What one hooked run does at the hook points: TransformerLens's `hooks()` context for one call.
 * Every verb (`forward`, `runWithCache`, `runWithHooks`, `gradientsAt`) and every analysis is
 * this one run with some of these fields set.
 */
export interface HookedRunSpec extends RunOptions {
  /** Hook functions, applied in the order given; a returned tensor replaces the activation. */
  hooks?: HookList;
  /** Hook points whose values (after the hooks ran) are returned in `cache`. */
  cache?: NameFilter;
}

/** A forward+backward hooked run: the gradient of a scalar metric of the logits. */
export interface HookedGradSpec<T> extends HookedRunSpec {
  /** Logits [batch, pos, d_vocab] -> a scalar tensor, written with tensor ops (it is traced). */
  metric: (logits: Tensor) => Tensor;
  /** Hook points whose gradients are returned: each value (after the hooks ran) and its gradient. */
  grads?: NameFilter;
  /**
   * Runs inside the compiled graph on the gradient targets, so only what it returns is read back
   * (default: the targets themselves).
   */
  reduce?: (targets: GradTargets) => T;
}

/** Cached activations by hook name, each with its batch dimension first. */
export class ActivationCache {
  constructor(private readonly acts: Record<string, Tensor>) {}
  get(name: string): Tensor {
    const t = this.acts[name];
    if (!t) throw new Error(`ActivationCache: '${name}' is not in the cache${suggest(name, Object.keys(this.acts))}`);
    return t;
  }
  has(name: string): boolean {
    return name in this.acts;
  }
  keys(): string[] {
    return Object.keys(this.acts);
  }
  entries(): [string, Tensor][] {
    return Object.entries(this.acts);
  }
  toObject(): Record<string, Tensor> {
    return { ...this.acts };
  }
}

/** What the model needs from a tokenizer (src/io/tokenizer.ts provides it). */
export interface ModelTokenizer {
  encode(text: string, options?: { prependBos?: boolean }): number[];
  decode(ids: readonly number[]): string;
  /** Each id's own string. */
  toStrTokens(ids: readonly number[]): string[];
}

export class HookedTransformer {
  /** Every hook point name, in forward order. */
  readonly hookNames: readonly string[];
  private readonly hookSet: ReadonlySet<string>;
  /** The tokenizer, when the model was loaded with one (tokenizer.json). */
  tokenizer: ModelTokenizer | null = null;

  constructor(
    readonly cfg: ModelConfig,
    public params: ModelParams,
  ) {
    this.hookNames = discoverHookNames(cfg, params);
    this.hookSet = new Set(this.hookNames);
  }

  /**
   * Loads a model: 'default' (the small model shipped with glassbox), a Hugging Face-format
   * directory, or a hub id (`org/name[@revision]`, downloaded into the shared Hugging Face cache).
   * See `loadModel` in pretrained.ts.
   */
  static async fromPretrained(spec: string, options: { offline?: boolean; token?: string } = {}): Promise<HookedTransformer> {
    const { loadModel } = await import('./pretrained.js');
    return loadModel(spec, options);
  }

  /** Builds the model from a parsed HF config.json and a weight reader. */
  static fromHf(hfConfig: Record<string, unknown>, weights: WeightReader, file = 'config.json'): HookedTransformer {
    const reader = new HfConfigReader(hfConfig, file);
    const family = familyFor(reader.modelType, file);
    const cfg = family.config(reader);
    reader.finish();
    const params = family.weights(cfg, weights);
    validateParams(cfg, params, file);
    return new HookedTransformer(cfg, params);
  }

  /**
   * A copy with TransformerLens's weight processing applied (fold LayerNorm, centre writing
   * weights, centre unembed, fold value biases; each can be switched off). Off by default
   * everywhere else, so outputs match Hugging Face.
   */
  /**
   * Writes the model to `dir` so `fromPretrained(dir)` loads it: Hugging Face GPT-2 format when
   * the architecture fits (Hugging Face loads it too), glassbox's own format otherwise.
   */
  save(dir: string, options: SaveModelOptions = {}): 'hf' | 'glassbox' {
    return saveModel(dir, this, options);
  }

  processWeights(options: ProcessOptions = {}): HookedTransformer {
    return new HookedTransformer(this.cfg, processWeights(this.cfg, this.params, options));
  }

  /** Token ids of each text (BOS prepended unless `prependBos: false`), like TransformerLens's to_tokens. */
  toTokens(text: string | readonly string[], options: { prependBos?: boolean } = {}): number[][] {
    const tok = this.requireTokenizer('toTokens');
    return (typeof text === 'string' ? [text] : text).map((t) => tok.encode(t, { prependBos: options.prependBos ?? true }));
  }

  /** The string of each token of `input` (text is tokenized first). */
  toStrTokens(input: string | readonly number[], options: { prependBos?: boolean } = {}): string[] {
    const tok = this.requireTokenizer('toStrTokens');
    return tok.toStrTokens(typeof input === 'string' ? tok.encode(input, { prependBos: options.prependBos ?? true }) : input);
  }

  /** Decodes token ids to text. */
  toString(ids?: readonly number[]): string {
    if (ids === undefined) return `HookedTransformer(${this.cfg.family}, ${this.cfg.nLayers} layers, d_model ${this.cfg.dModel})`;
    return this.requireTokenizer('toString').decode(ids);
  }

  private requireTokenizer(what: string): ModelTokenizer {
    if (!this.tokenizer) throw new Error(`${what}: this model has no tokenizer (load a directory or hub model that has tokenizer.json)`);
    return this.tokenizer;
  }

  /**
   * The one hooked run under every verb: a forward pass (one compiled session) with `spec.hooks`
   * applied, returning the logits [batch, pos, d_vocab] and the activations at `spec.cache`. With
   * a `metric` it is a forward+backward pass instead, returning the metric's value, the gradient
   * targets at `spec.grads` (passed through `reduce` inside the graph) and the cache, no logits.
   * Calls of the same structure (hooks, names, shapes) reuse the compiled session.
   */
  hooked<T = GradTargets>(input: TokenInput, spec: HookedGradSpec<T>): { value: Tensor; grads: T; cache: ActivationCache };
  hooked(input: TokenInput, spec?: HookedRunSpec): { logits: Tensor; cache: ActivationCache };
  hooked<T>(
    input: TokenInput,
    spec: HookedRunSpec | HookedGradSpec<T> = {},
  ): { logits: Tensor; cache: ActivationCache } | { value: Tensor; grads: T; cache: ActivationCache } {
    const tokens = toTokens(input);
    const fwd = this.prepare(tokens, spec);
    const points = {
      hooks: this.hookMap(spec.hooks ?? []),
      cache: new Set(spec.cache === undefined ? [] : this.select(spec.cache)),
      marks: new Set<string>(),
    };
    const real = realTokens(tokens, maskTensor(spec.attentionMask, tokens));
    if (!('metric' in spec) || spec.metric === undefined) {
      if ('grads' in spec && spec.grads !== undefined) throw new Error('hooked: `grads` needs a `metric` to differentiate');
      const call = jit((params: ModelParams, toks: Tensor) => {
        const cache: Record<string, Tensor> = {};
        const { logits, routerTies } = this.traced(params, { ...fwd, tokens: toks }, this.hookPoints(points, cache));
        return { logits, cache, routerTies };
      });
      const out = call(this.params, tokens) as { logits: Tensor; cache: Record<string, Tensor>; routerTies?: Tensor[] };
      refuseRouterTies(out.routerTies, real);
      return { logits: out.logits, cache: new ActivationCache(out.cache) };
    }
    const { metric } = spec;
    for (const n of spec.grads === undefined ? [] : this.select(spec.grads)) points.marks.add(n);
    const reduce = spec.reduce ?? ((t: GradTargets) => t as unknown as T);
    const call = jit((params: ModelParams, toks: Tensor) => {
      let routerTies: Tensor[] | undefined;
      const cache: Record<string, Tensor> = {};
      const [value, , targets] = valueAndGrad((pp: ModelParams) => {
        const out = this.traced(pp, { ...fwd, tokens: toks }, this.hookPoints(points, cache));
        routerTies = out.routerTies;
        const v = metric(out.logits);
        if (v.size !== 1) throw new Error(`hooked: the metric must return a scalar, got shape [${v.shape}]`);
        return v.reshape([]);
      })(params);
      return { value, grads: reduce(targets as GradTargets), cache, routerTies };
    });
    const out = call(this.params, tokens) as { value: Tensor; grads: T; cache: Record<string, Tensor>; routerTies?: Tensor[] };
    refuseRouterTies(out.routerTies, real);
    return { value: out.value, grads: out.grads, cache: new ActivationCache(out.cache) };
  }

  /** Logits [batch, pos, d_vocab]. */
  forward(input: TokenInput, options: RunOptions = {}): Tensor {
    return this.hooked(input, options).logits;
  }

  /**
   * Logits and the activations at the selected hook points. Without `names`, every hook point
   * except `attn.hook_result` (per-head outputs, [batch, pos, n_heads, d_model]: n_heads times
   * the memory of hook_attn_out, so TransformerLens also computes it only when asked) and a
   * mixture of experts' per-expert `mlp.experts.E.*` (n_experts times an MLP's activations).
   */
  runWithCache(input: TokenInput, options: RunOptions & { names?: NameFilter } = {}): { logits: Tensor; cache: ActivationCache } {
    const { names, ...run } = options;
    const cache = names ?? ((n: string) => !n.endsWith('attn.hook_result') && !n.includes('.mlp.experts.'));
    return this.hooked(input, { ...run, cache });
  }

  /**
   * Logits with hook functions applied: `hooks` lists [name or filter, fn] pairs; a hook's return
   * value replaces the activation (returning nothing keeps it).
   */
  runWithHooks(input: TokenInput, options: RunOptions & { hooks: HookList }): Tensor {
    return this.hooked(input, options).logits;
  }

  /**
   * Mean next-token cross-entropy (masked where the attention mask is 0), or per token
   * [batch, pos - 1] with `perToken`.
   */
  loss(input: TokenInput, options: RunOptions & { perToken?: boolean } = {}): Tensor {
    const tokens = toTokens(input);
    const logits = this.forward(tokens, options);
    return nextTokenLoss(logits, tokens, maskTensor(options.attentionMask, tokens), options.perToken ?? false);
  }

  /**
   * Value and gradient of `metric(logits)` with respect to the activations at the selected hook
   * points (for attribution patching), computed in one forward+backward session.
   */
  gradientsAt(
    input: TokenInput,
    names: NameFilter,
    metric: (logits: Tensor) => Tensor,
    options: RunOptions = {},
  ): { value: Tensor; targets: GradTargets } {
    const { value, grads } = this.hooked(input, { ...options, grads: names, metric });
    return { value, targets: grads };
  }

  /**
   * Continues each prompt by up to `maxNewTokens` tokens. Greedy at temperature 0; otherwise
   * samples (top-k, top-p) from a seeded generator. Batched prompts must be left-padded (pass the
   * attentionMask). With the KV cache (default) decoding runs one fixed-shape graph for every
   * step; without it, every step re-reads the whole (fixed-length, padded) sequence.
   */
  generate(input: TokenInput, options: GenerateOptions = {}): { tokens: number[][]; newTokens: number[][] } {
    const tokens = toTokens(input);
    const [b, s] = tokens.shape as [number, number];
    const maxNew = options.maxNewTokens ?? 10;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${maxNew}`);
    const L = s + maxNew;
    if (this.cfg.positional === 'learned' && L > this.cfg.nCtx)
      throw new Error(`generate: ${s} prompt + ${maxNew} new tokens exceed the context of ${this.cfg.nCtx}`);
    checkVocab(tokens, this.cfg.dVocab);
    const mask = maskTensor(options.attentionMask, tokens);
    const valid: boolean[] = mask
      ? Array.from(mask.cast('int32').dataSync() as Int32Array, (v) => v !== 0)
      : new Array<boolean>(b * s).fill(true);
    for (let r = 0; r < b; r++)
      for (let c = 1; c < s; c++)
        if (!valid[r * s + c] && valid[r * s + c - 1])
          throw new Error('generate: pad batched prompts on the left (row ' + r + ' has padding after a real token)');
    const hooks = this.hookMap(options.hooks ?? []);
    const rng = new PRNG(options.seed ?? 0);
    const eos = options.eosTokenId ?? this.cfg.eosTokenId;
    const stopAtEos = (options.stopAtEos ?? true) && eos !== null;
    const fill = this.cfg.padTokenId ?? eos ?? 0;
    const rows = (tokens.toArray() as bigint[][]).map((r) => r.map(Number));
    const out: number[][] = rows.map(() => []);
    const done = new Array<boolean>(b).fill(false);
    const spec = { cache: new Set<string>(), hooks, marks: new Set<string>() };
    const pick = (logits: Float32Array, row: number): number =>
      sampleToken(logits.subarray(row * this.cfg.dVocab, (row + 1) * this.cfg.dVocab), options, rng);
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
        this.traced(params, { ...fwd, tokens: toks }, this.hookPoints(spec, {})),
      );
      for (let t = s; t < L && !done.every(Boolean); t++) {
        const ids = new Float64Array(b * L);
        const m = new Float64Array(b * L);
        for (let r = 0; r < b; r++)
          for (let c = 0; c < t; c++) {
            ids[r * L + c] = c < s ? rows[r]![c]! : out[r]![c - s]!;
            m[r * L + c] = c < s ? (valid[r * s + c] ? 1 : 0) : 1;
          }
        const toks = tensor(ids, [b, L], 'int64');
        const { logits, routerTies } = call(this.params, toks, forwardInputs(this.cfg, toks, tensor(m, [b, L], 'int64'))) as {
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
          const { logits, routerTies } = this.traced(params, { ...fwd, tokens: t, presentKv }, this.hookPoints(spec, {}));
          return { last: logits.index([null, n - 1]), k: presentKv.k, v: presentKv.v, routerTies };
        })(this.params, toks, forwardInputs(this.cfg, toks, m));
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
      const step = jit((params: ModelParams, tok: Tensor, fwd: Omit<ForwardInputs, 'tokens'>) => {
        const presentKv = { k: [] as Tensor[], v: [] as Tensor[] };
        const { logits, routerTies } = this.traced(params, { ...fwd, tokens: tok, presentKv }, this.hookPoints(spec, {}));
        return { last: logits.index([null, 0]), k: presentKv.k, v: presentKv.v, routerTies };
      });
      const promptLen = rows.map((_, r) => valid.slice(r * s, (r + 1) * s).filter(Boolean).length);
      for (let t = s; t < L - 1 && !done.every(Boolean); t++) {
        const positions = promptLen.map((n) => n + (t - s));
        let last: Tensor;
        if (this.cfg.ropeRefreshCache && crossesLongRope(this.cfg, positions)) {
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
          const fwd = decodeInputs(this.cfg, t, L, s, valid, positions);
          const r = step(this.params, tok, { ...fwd, kvCache: { ...kv, write: oneHotSlot(t, L) } });
          refuseRouterTies(r.routerTies, (row) => !done[row]);
          kv = { k: r.k, v: r.v };
          last = r.last;
        }
        accept(rows.map((_, row) => pick(last.dataSync() as Float32Array, row)));
      }
    }
    return { tokens: rows.map((r, i) => [...r, ...out[i]!]), newTokens: out };
  }

  /**
   * The forward pass inside a traced function, with a mixture of experts' router-tie flags
   * (`refuseRouterTies` reads them from the session's outputs).
   */
  private traced(params: ModelParams, inp: ForwardInputs, hp: HookPoints): { logits: Tensor; routerTies?: Tensor[] } {
    const routerTies = this.cfg.moe ? ([] as Tensor[]) : undefined;
    const logits = transformerForward(this.cfg, params, routerTies ? { ...inp, routerTies } : inp, hp);
    return routerTies ? { logits, routerTies } : { logits };
  }

  private hookPoints(
    spec: { cache: Set<string>; hooks: Map<string, HookFn[]>; marks: Set<string> },
    cache: Record<string, Tensor>,
  ): HookPoints {
    const hp = ((name: string, x: Tensor): Tensor => {
      const fns = spec.hooks.get(name);
      if (fns) {
        const ctx: HookContext = { name, layer: layerOf(name), markGrad: (t) => markGradTarget(name, t) };
        for (const fn of fns) {
          const y = fn(x, ctx);
          if (y instanceof Tensor) {
            if (y.shape.length !== x.shape.length || y.shape.some((d, i) => d !== x.shape[i]))
              throw new Error(`hook on '${name}' returned shape [${y.shape}], expected [${x.shape}]`);
            x = y.dtype === x.dtype ? y : y.cast(x.dtype);
          }
        }
      }
      if (spec.marks.has(name)) x = markGradTarget(name, x);
      if (spec.cache.has(name)) cache[name] = x;
      return x;
    }) as HookPoints;
    hp.active = (name) => spec.cache.has(name) || spec.hooks.has(name) || spec.marks.has(name);
    return hp;
  }

  /** Concrete per-call inputs: positions, attention masks, rotary tables. */
  private prepare(tokens: Tensor, options: RunOptions): Omit<ForwardInputs, 'tokens'> {
    checkVocab(tokens, this.cfg.dVocab);
    return forwardInputs(this.cfg, tokens, maskTensor(options.attentionMask, tokens));
  }

  private select(filter: NameFilter | undefined): string[] {
    if (filter === undefined) return [...this.hookNames];
    if (Array.isArray(filter)) {
      for (const n of filter as readonly string[]) this.checkName(n);
      return [...(filter as readonly string[])];
    }
    if (filter instanceof RegExp) return this.hookNames.filter((n) => filter.test(n));
    return this.hookNames.filter(filter as (n: string) => boolean);
  }

  private hookMap(hooks: HookList): Map<string, HookFn[]> {
    const m = new Map<string, HookFn[]>();
    for (const [sel, fn] of hooks) {
      const names = typeof sel === 'string' ? [this.checkName(sel)] : this.select(sel);
      if (names.length === 0) throw new Error(`hooks: ${String(sel)} matches no hook point`);
      for (const n of names) m.set(n, [...(m.get(n) ?? []), fn]);
    }
    return m;
  }

  private checkName(name: string): string {
    if (!this.hookSet.has(name)) throw new Error(`unknown hook point '${name}'${suggest(name, this.hookNames)}`);
    return name;
  }
}

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

/** Whether a decoding step at these positions is the first past LongRoPE's pre-training context. */
function crossesLongRope(cfg: ModelConfig, positions: readonly number[]): boolean {
  const rope = cfg.ropeScaling;
  return rope?.type === 'longrope' && Math.max(...positions) === rope.originalMaxPositions;
}

/** [1, L, 1, 1] float: 1 at `slot`. */
function oneHotSlot(slot: number, L: number): Tensor {
  const w = new Float32Array(L);
  w[slot] = 1;
  return tensor(w, [1, L, 1, 1]);
}

/** Inputs of one decoding step at cache slot t: position ids, masks over the L slots, rotary tables. */
function decodeInputs(
  cfg: ModelConfig,
  t: number,
  L: number,
  s: number,
  validPrompt: boolean[],
  positions: number[],
): Omit<ForwardInputs, 'tokens'> {
  const b = positions.length;
  const masks = new Map<number | null, Tensor>();
  for (const w of new Set(cfg.slidingWindow)) {
    const m = new Uint8Array(b * L);
    for (let r = 0; r < b; r++)
      for (let j = 0; j <= t; j++) m[r * L + j] = (j >= s || validPrompt[r * s + j]) && (w === null || t - j < w) ? 1 : 0;
    masks.set(w, tensor(m, [b, 1, 1, L], 'bool'));
  }
  const out: Omit<ForwardInputs, 'tokens'> = { positions: tensor(positions, [b, 1], 'int64'), masks };
  if (cfg.positional === 'rotary') out.rotary = rotaryTables(cfg, Float64Array.from(positions), b, 1);
  if (cfg.positional === 'alibi') {
    // Key positions of the L slots: prompt slots count the real tokens before them, then one per generated token.
    const keyPos = new Float64Array(b * L);
    for (let r = 0; r < b; r++) {
      let p = 0;
      for (let j = 0; j < L; j++) {
        keyPos[r * L + j] = p;
        if (j >= s || validPrompt[r * s + j]) p++;
      }
    }
    out.alibi = alibiDistances(keyPos, Float64Array.from(positions), b, 1, L);
  }
  return out;
}

/** Traces the forward pass on a 1x1 input (no arithmetic) to list every hook point. */
function discoverHookNames(cfg: ModelConfig, params: ModelParams): string[] {
  const names: string[] = [];
  const hp = ((name: string, x: Tensor) => {
    names.push(name);
    return x;
  }) as HookPoints;
  hp.active = () => true;
  const tokens = tensor([[0]], undefined, 'int64');
  const trace = new Trace();
  try {
    withTrace(trace, () =>
      transformerForward(
        cfg,
        params,
        { ...forwardInputs(cfg, tokens, null), tokens: trace.argument({ shape: [1, 1], dtype: 'int64' }) },
        hp,
      ),
    );
  } finally {
    trace.active = false;
  }
  return names;
}

function checkVocab(tokens: Tensor, dVocab: number): void {
  const ids = tokens.dataSync() as BigInt64Array;
  for (let i = 0; i < ids.length; i++)
    if (ids[i]! < 0n || ids[i]! >= BigInt(dVocab))
      throw new Error(`token id ${ids[i]} at position ${i} is outside the vocabulary (0..${dVocab - 1})`);
}

/** Positions (from the mask, so left padding starts real tokens at 0), masks and rotary tables. */
export function forwardInputs(cfg: ModelConfig, tokens: Tensor, mask: Tensor | null): Omit<ForwardInputs, 'tokens'> {
  const [b, s] = tokens.shape as [number, number];
  const valid = mask ? Array.from(mask.cast('int32').dataSync() as Int32Array, (v) => v !== 0) : new Array<boolean>(b * s).fill(true);
  const pos = new Float64Array(b * s);
  for (let r = 0; r < b; r++) {
    let p = 0;
    for (let c = 0; c < s; c++) {
      pos[r * s + c] = valid[r * s + c] ? p : Math.max(0, p - 1);
      if (valid[r * s + c]) p++;
    }
  }
  if (cfg.positional === 'learned' && pos.some((p) => p >= cfg.nCtx))
    throw new Error(`input of ${s} positions exceeds the model's context of ${cfg.nCtx}`);
  const masks = new Map<number | null, Tensor>();
  for (const w of new Set(cfg.slidingWindow)) {
    const m = new Uint8Array(b * s * s);
    for (let r = 0; r < b; r++)
      for (let q = 0; q < s; q++)
        for (let k = 0; k <= q; k++) {
          const inWindow = w === null || q - k < w;
          // A padded query attends to itself so no row is fully masked (its output is unused).
          const ok = (valid[r * s + k]! && inWindow) || (k === q && !valid[r * s + q]);
          m[(r * s + q) * s + k] = ok ? 1 : 0;
        }
    masks.set(w, tensor(m, [b, 1, s, s], 'bool'));
  }
  const out: Omit<ForwardInputs, 'tokens'> = { positions: tensor(pos, [b, s], 'int64'), masks };
  if (cfg.positional === 'rotary') out.rotary = rotaryTables(cfg, pos, b, s);
  if (cfg.positional === 'alibi') out.alibi = alibiDistances(pos, pos, b, s, s);
  return out;
}

/**
 * ALiBi's input [b, 1, q, k]: key position minus query position, clamped at 0 (keys after the
 * query are masked anyway). Positions come from the attention mask, so left padding does not
 * move them. BLOOM adds slope * key position, which differs by slope * query position, a
 * constant per query row that softmax cancels; the relative form is TransformerLens's, so
 * hook_attn_scores matches it.
 */
function alibiDistances(keyPos: Float64Array, queryPos: Float64Array, b: number, q: number, k: number): Tensor {
  const d = new Float32Array(b * q * k);
  for (let r = 0; r < b; r++)
    for (let i = 0; i < q; i++) for (let j = 0; j < k; j++) d[(r * q + i) * k + j] = Math.min(0, keyPos[r * k + j]! - queryPos[r * q + i]!);
  return tensor(d, [b, 1, q, k]);
}

/**
 * cos/sin tables [b, s, 1, rotary_dim] for the given positions, one per RoPE the layers use, with
 * the config's RoPE scaling. Dynamic scaling and LongRoPE depend on the longest position of the
 * whole batch, as transformers' `max(position_ids) + 1`. Frequency j sits at dims j and
 * j + rotary_dim/2 (GPT-NeoX "rotate half" layout), or at dims 2j and 2j+1 (GPT-J's adjacent pairs).
 */
function rotaryTables(cfg: ModelConfig, pos: Float64Array, b: number, s: number): Map<RopeId, { cos: Tensor; sin: Tensor }> {
  const rd = cfg.rotaryDim;
  let maxPos = 0;
  for (const p of pos) maxPos = Math.max(maxPos, p);
  const tables = new Map<RopeId, { cos: Tensor; sin: Tensor }>();
  const pairs = cfg.rotaryAdjacentPairs ?? false;
  for (const id of new Set<RopeId>(cfg.layerRope ?? ['global'])) {
    const { invFreq, attentionScaling } = ropeFrequencies(ropeOf(cfg, id), rd, maxPos + 1);
    const scale = Math.fround(attentionScaling);
    const cos = new Float32Array(b * s * rd);
    const sin = new Float32Array(b * s * rd);
    for (let i = 0; i < b * s; i++)
      for (let j = 0; j < rd / 2; j++) {
        // HF computes position * inv_freq in float32, then cos and sin, then scales them in float32.
        const angle = Math.fround(pos[i]! * invFreq[j]!);
        const [d1, d2] = pairs ? [2 * j, 2 * j + 1] : [j, j + rd / 2];
        cos[i * rd + d1] = cos[i * rd + d2] = Math.fround(Math.fround(Math.cos(angle)) * scale);
        sin[i * rd + d1] = sin[i * rd + d2] = Math.fround(Math.fround(Math.sin(angle)) * scale);
      }
    tables.set(id, { cos: tensor(cos, [b, s, 1, rd]), sin: tensor(sin, [b, s, 1, rd]) });
  }
  return tables;
}

/** Whether (row, pos) is a real token under the attention mask (all are without one). */
function realTokens(tokens: Tensor, mask: Tensor | null): (row: number, pos: number) => boolean {
  if (!mask) return () => true;
  const s = tokens.shape[1]!;
  const m = mask.cast('int32').dataSync() as Int32Array;
  return (r, c) => m[r * s + c] !== 0;
}

/**
 * Refuses a mixture-of-experts pass in which a real token's router probabilities tie at the
 * top-k boundary (`routerTies`, one bool [batch, pos] per layer; see `moe` in forward.ts):
 * transformers picks among tied experts by torch.topk's sort order, which glassbox does not
 * reproduce, so its output for that token would not be transformers'.
 */
function refuseRouterTies(ties: Tensor[] | undefined, real: (row: number, pos: number) => boolean): void {
  ties?.forEach((t, l) => {
    const s = t.shape[1]!;
    const v = t.dataSync() as Uint8Array;
    for (let i = 0; i < v.length; i++) {
      const [r, c] = [Math.floor(i / s), i % s];
      if (v[i] && real(r, c))
        throw new Error(
          `mixture of experts: at layer ${l}, batch row ${r}, position ${c} the router gives the k-th and (k+1)-th experts ` +
            "the same probability; transformers breaks such ties by the order of torch.topk's sort, which glassbox does not " +
            'reproduce, so it refuses rather than route differently (a hook on mlp.hook_expert_indices that sets other experts there is accepted)',
        );
    }
  });
}

/** Checks every weight's shape against the config; the error names the weight and both shapes. */
export function validateParams(cfg: ModelConfig, p: ModelParams, file: string): void {
  const { dModel: d, nHeads: nH, nKVHeads: nKV, dHead: dh, dMlp, dVocab } = cfg;
  const check = (name: string, t: Tensor | undefined, shape: number[]): void => {
    if (!t) return;
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i]))
      throw new Error(
        `${file}: weight '${name}' has shape [${t.shape}] but the config implies [${shape}] (d_model ${d}, heads ${nH}/${nKV}x${dh}, d_mlp ${dMlp}, vocab ${dVocab})`,
      );
  };
  check('embed.W_E', p.embed.W_E, [dVocab, d]);
  if (cfg.postEmbedNorm && !p.embed.ln) throw new Error(`${file}: the config has an embedding norm, but there are no weights for it`);
  check('embed.ln.w', p.embed.ln?.w, [d]);
  check('embed.ln.b', p.embed.ln?.b, [d]);
  if (p.pos_embed) check('pos_embed.W_pos', p.pos_embed.W_pos, [cfg.nCtx, d]);
  if (p.blocks.length !== cfg.nLayers) throw new Error(`${file}: ${p.blocks.length} blocks of weights for ${cfg.nLayers} layers`);
  p.blocks.forEach((b, l) => {
    const at = (n: string) => `blocks.${l}.${n}`;
    for (const [n, norm] of [
      ['ln1', b.ln1],
      ['ln2', b.ln2],
      ['ln1_post', b.ln1_post],
      ['ln2_post', b.ln2_post],
    ] as const) {
      check(at(`${n}.w`), norm?.w, [d]);
      check(at(`${n}.b`), norm?.b, [d]);
    }
    check(at('attn.W_Q'), b.attn.W_Q, [d, nH * dh]);
    check(at('attn.W_K'), b.attn.W_K, [d, nKV * dh]);
    check(at('attn.W_V'), b.attn.W_V, [d, nKV * dh]);
    check(at('attn.W_O'), b.attn.W_O, [nH * dh, d]);
    check(at('attn.b_Q'), b.attn.b_Q, [nH * dh]);
    check(at('attn.b_K'), b.attn.b_K, [nKV * dh]);
    check(at('attn.b_V'), b.attn.b_V, [nKV * dh]);
    check(at('attn.b_O'), b.attn.b_O, [d]);
    if (cfg.qkNorm && !(b.attn.q_norm && b.attn.k_norm)) throw new Error(`${file}: block ${l} has no q/k norm weights`);
    // Per head [d_head] (Qwen3, Phi), a row per head [heads, d_head] (StableLM), or all heads together (OLMo 2).
    for (const [n, t, heads] of [
      ['q_norm', b.attn.q_norm, nH],
      ['q_norm_b', b.attn.q_norm_b, nH],
      ['k_norm', b.attn.k_norm, nKV],
      ['k_norm_b', b.attn.k_norm_b, nKV],
    ] as const)
      check(at(`attn.${n}`), t, cfg.qkNormAllHeads ? [heads * dh] : t?.rank === 2 ? [heads, dh] : [dh]);
    if (cfg.moe) {
      const E = cfg.moe.nExperts;
      if (!b.moe) throw new Error(`${file}: block ${l} has no mixture-of-experts weights`);
      check(at('moe.W_router'), b.moe.W_router, [d, E]);
      check(at('moe.W_gate'), b.moe.W_gate, [E, d, dMlp]);
      check(at('moe.W_in'), b.moe.W_in, [E, d, dMlp]);
      check(at('moe.W_out'), b.moe.W_out, [E, dMlp, d]);
    } else if (!cfg.attnOnly && !b.mlp) throw new Error(`${file}: block ${l} has no MLP weights`);
    check(at('mlp.W_in'), b.mlp?.W_in, [d, dMlp]);
    check(at('mlp.W_gate'), b.mlp?.W_gate, [d, dMlp]);
    check(at('mlp.W_out'), b.mlp?.W_out, [dMlp, d]);
    check(at('mlp.b_in'), b.mlp?.b_in, [dMlp]);
    check(at('mlp.b_out'), b.mlp?.b_out, [d]);
  });
  check('ln_final.w', p.ln_final.w, [d]);
  check('unembed.W_U', p.unembed.W_U, [d, dVocab]);
}

function toTokens(input: TokenInput): Tensor {
  if (input instanceof Tensor) {
    if (input.rank !== 2) throw new Error(`tokens must be [batch, pos], got shape [${input.shape}]`);
    return input.dtype === 'int64' ? input : input.cast('int64');
  }
  const rows = (Array.isArray(input[0]) ? input : [input]) as readonly (readonly number[])[];
  const s = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== s)) throw new Error('tokens: rows have different lengths; pad them and pass an attentionMask');
  return tensor(rows.flat(), [rows.length, s], 'int64');
}

function maskTensor(mask: RunOptions['attentionMask'], tokens: Tensor): Tensor | null {
  if (!mask) return null;
  const m = mask instanceof Tensor ? mask : tensor((mask as number[][]).flat(), [mask.length, (mask[0] as number[]).length], 'int64');
  if (m.shape.length !== 2 || m.shape[0] !== tokens.shape[0] || m.shape[1] !== tokens.shape[1])
    throw new Error(`attentionMask has shape [${m.shape}], tokens have [${tokens.shape}]`);
  return m;
}

/** Next-token cross-entropy: mean over real tokens, or [batch, pos - 1] per token (0 where masked). */
export function nextTokenLoss(logits: Tensor, tokens: Tensor, mask: Tensor | null, perToken: boolean): Tensor {
  const [b, s] = tokens.shape as [number, number];
  const logp = logits.slice([null, { end: s - 1 }]).logSoftmax(-1);
  const target = tokens.slice([null, { start: 1 }]).reshape([b, s - 1, 1]);
  let nll = logp
    .gatherElements(target, 2)
    .reshape([b, s - 1])
    .neg();
  if (!mask) return perToken ? nll : nll.mean();
  const m = mask
    .slice([null, { start: 1 }])
    .cast('float32')
    .mul(mask.slice([null, { end: s - 1 }]).cast('float32'));
  nll = nll.mul(m);
  return perToken ? nll : nll.sum().div(m.sum());
}

/** ' (did you mean ...?)' with the closest names by edit distance. */
export function suggest(name: string, candidates: readonly string[]): string {
  const dist = (a: string, b: string): number => {
    const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diag = prev[0]!;
      prev[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const tmp = prev[j]!;
        prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
        diag = tmp;
      }
    }
    return prev[b.length]!;
  };
  const best = [...candidates].sort((x, y) => dist(name, x) - dist(name, y)).slice(0, 3);
  return best.length ? ` (did you mean ${best.map((b) => `'${b}'`).join(', ')}?)` : '';
}
