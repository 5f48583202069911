/**
 * HookedTransformer: a language model whose every activation has a TransformerLens hook name,
 * can be cached, replaced by a hook function, or marked for gradients. Each call traces the
 * forward pass (with the requested hooks) and runs it as one compiled ONNX Runtime session;
 * calls with the same structure (hooks, cached names, shapes) reuse the session.
 */
import { Trace, withTrace } from '../tensor/trace.js';
import { PRNG, Tensor, jit, markGradTarget, tensor, valueAndGrad, type GradTargets } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
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
  static async fromPretrained(
    spec: string,
    options: { offline?: boolean; token?: string; weightDtype?: 'float32' | 'stored' } = {},
  ): Promise<HookedTransformer> {
    const { loadModel } = await import('./pretrained.js');
    return loadModel(spec, options);
  }

  /** Builds the model from a parsed HF config.json and a weight reader. */
  static fromHf(hfConfig: Record<string, unknown>, weights: WeightReader, file = 'config.json'): HookedTransformer {
    const family = familyFor(hfConfig.model_type, file);
    const cfg = family.config(hfConfig, file);
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

  /** Logits [batch, pos, d_vocab]. */
  forward(input: TokenInput, options: RunOptions = {}): Tensor {
    return this.run(input, options, { cache: new Set(), hooks: new Map() }).logits;
  }

  /**
   * Logits and the activations at the selected hook points. Without `names`, every hook point
   * except `attn.hook_result` (per-head outputs, [batch, pos, n_heads, d_model]: n_heads times
   * the memory of hook_attn_out, so TransformerLens also computes it only when asked).
   */
  runWithCache(input: TokenInput, options: RunOptions & { names?: NameFilter } = {}): { logits: Tensor; cache: ActivationCache } {
    const names = options.names === undefined ? this.hookNames.filter((n) => !n.endsWith('attn.hook_result')) : this.select(options.names);
    const { logits, cache } = this.run(input, options, { cache: new Set(names), hooks: new Map() });
    return { logits, cache: new ActivationCache(cache) };
  }

  /**
   * Logits with hook functions applied: `hooks` lists [name or filter, fn] pairs; a hook's return
   * value replaces the activation (returning nothing keeps it).
   */
  runWithHooks(input: TokenInput, options: RunOptions & { hooks: readonly (readonly [string | NameFilter, HookFn])[] }): Tensor {
    return this.run(input, options, { cache: new Set(), hooks: this.hookMap(options.hooks) }).logits;
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
    const selected = new Set(this.select(names));
    const tokens = toTokens(input);
    const fwd = this.prepare(tokens, options);
    const run = jit((params: ModelParams, toks: Tensor) => {
      const [value, , targets] = valueAndGrad((pp: ModelParams) => {
        const hp = this.hookPoints({ cache: new Set(), hooks: new Map(), marks: selected }, {});
        return metric(transformerForward(this.cfg, pp, { ...fwd, tokens: toks }, hp));
      })(params);
      return { value, targets };
    });
    return run(this.params, tokens) as { value: Tensor; targets: GradTargets };
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
        transformerForward(this.cfg, params, { ...fwd, tokens: toks }, this.hookPoints(spec, {})),
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
        const logits = call(this.params, toks, forwardInputs(this.cfg, toks, tensor(m, [b, L], 'int64')));
        const last = logits.index([null, t - 1]).dataSync() as Float32Array;
        accept(rows.map((_, r) => pick(last, r)));
      }
    } else {
      const prefill = jit((params: ModelParams, toks: Tensor, fwd: Omit<ForwardInputs, 'tokens'>) => {
        const presentKv = { k: [] as Tensor[], v: [] as Tensor[] };
        const logits = transformerForward(this.cfg, params, { ...fwd, tokens: toks, presentKv }, this.hookPoints(spec, {}));
        return { last: logits.index([null, s - 1]), k: presentKv.k, v: presentKv.v };
      });
      const first = prefill(this.params, tokens, forwardInputs(this.cfg, tokens, mask));
      const padTo = (t: Tensor) =>
        t.pad([
          [0, 0],
          [0, L - s],
        ]);
      let kv = { k: first.k.map(padTo), v: first.v.map(padTo) };
      accept(rows.map((_, r) => pick(first.last.dataSync() as Float32Array, r)));
      const step = jit((params: ModelParams, tok: Tensor, fwd: Omit<ForwardInputs, 'tokens'>) => {
        const presentKv = { k: [] as Tensor[], v: [] as Tensor[] };
        const logits = transformerForward(this.cfg, params, { ...fwd, tokens: tok, presentKv }, this.hookPoints(spec, {}));
        return { last: logits.index([null, 0]), k: presentKv.k, v: presentKv.v };
      });
      const promptLen = rows.map((_, r) => valid.slice(r * s, (r + 1) * s).filter(Boolean).length);
      for (let t = s; t < L - 1 && !done.every(Boolean); t++) {
        const tok = tensor(
          out.map((o) => o[t - s]!),
          [b, 1],
          'int64',
        );
        const fwd = decodeInputs(
          this.cfg,
          t,
          L,
          s,
          valid,
          promptLen.map((n) => n + (t - s)),
        );
        const r = step(this.params, tok, { ...fwd, kvCache: { ...kv, write: oneHotSlot(t, L) } });
        kv = { k: r.k, v: r.v };
        accept(rows.map((_, row) => pick(r.last.dataSync() as Float32Array, row)));
      }
    }
    return { tokens: rows.map((r, i) => [...r, ...out[i]!]), newTokens: out };
  }

  private run(
    input: TokenInput,
    options: RunOptions,
    spec: { cache: Set<string>; hooks: Map<string, HookFn[]> },
  ): { logits: Tensor; cache: Record<string, Tensor> } {
    const tokens = toTokens(input);
    const fwd = this.prepare(tokens, options);
    const call = jit((params: ModelParams, toks: Tensor) => {
      const cache: Record<string, Tensor> = {};
      const hp = this.hookPoints({ ...spec, marks: new Set() }, cache);
      const logits = transformerForward(this.cfg, params, { ...fwd, tokens: toks }, hp);
      return { logits, cache };
    });
    return call(this.params, tokens) as { logits: Tensor; cache: Record<string, Tensor> };
  }

  private hookPoints(
    spec: { cache: Set<string>; hooks: Map<string, HookFn[]>; marks: Set<string> },
    cache: Record<string, Tensor>,
  ): HookPoints {
    const hp = ((name: string, x: Tensor): Tensor => {
      const fns = spec.hooks.get(name);
      if (fns) {
        const layer = /^blocks\.(\d+)\./.exec(name);
        const ctx: HookContext = { name, layer: layer ? Number(layer[1]) : null, markGrad: (t) => markGradTarget(name, t) };
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

  private hookMap(hooks: readonly (readonly [string | NameFilter, HookFn])[]): Map<string, HookFn[]> {
    const m = new Map<string, HookFn[]>();
    for (const [sel, fn] of hooks) {
      const names = typeof sel === 'string' ? [this.checkName(sel)] : this.select(sel);
      if (names.length === 0) throw new Error(`runWithHooks: ${String(sel)} matches no hook point`);
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
  hooks?: readonly (readonly [string | NameFilter, HookFn])[];
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
  return out;
}

/** cos/sin tables [b, s, 1, rotary_dim] for the given positions (GPT-NeoX "rotate half" layout). */
function rotaryTables(cfg: ModelConfig, pos: Float64Array, b: number, s: number): { cos: Tensor; sin: Tensor } {
  const rd = cfg.rotaryDim;
  const cos = new Float32Array(b * s * rd);
  const sin = new Float32Array(b * s * rd);
  for (let i = 0; i < b * s; i++)
    for (let j = 0; j < rd / 2; j++) {
      // HF computes inv_freq in float32, then position * inv_freq in float32.
      const invFreq = Math.fround(1 / Math.pow(cfg.ropeTheta, (2 * j) / rd));
      const angle = Math.fround(pos[i]! * invFreq);
      cos[i * rd + j] = cos[i * rd + j + rd / 2] = Math.cos(angle);
      sin[i * rd + j] = sin[i * rd + j + rd / 2] = Math.sin(angle);
    }
  return { cos: tensor(cos, [b, s, 1, rd]), sin: tensor(sin, [b, s, 1, rd]) };
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
    if (!cfg.attnOnly && !b.mlp) throw new Error(`${file}: block ${l} has no MLP weights`);
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
