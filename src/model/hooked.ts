/**
 * HookedTransformer: a language model whose every activation has a TransformerLens hook name,
 * can be cached, replaced by a hook function, or marked for gradients. Each call traces the
 * forward pass (with the requested hooks) and runs it as one compiled ONNX Runtime session;
 * calls with the same structure (hooks, cached names, shapes) reuse the session.
 */
import { Trace, withTrace } from '../tensor/trace.js';
import {
  OutOfMemoryError,
  Tensor,
  jit,
  markGradTarget,
  markWeights,
  namedLeaves,
  tensor,
  valueAndGrad,
  type GradTargets,
} from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import { didYouMean } from '../io/names.js';
import { layerOf } from './hook-names.js';
import { HfConfigReader } from './hf-config.js';
import { familyFor, type WeightReader } from './families/index.js';
import { processWeights, type ProcessOptions } from './process.js';
import { transformerForward, type ForwardInputs, type HookPoints, type ModelParams } from './forward.js';
import type { SaveModelOptions } from './save.js';
import { generate, type GenerateOptions } from './generate.js';
import {
  checkContext,
  checkVocab,
  forwardInputs,
  longestRow,
  maskTensor,
  realTokens,
  refuseRouterTies,
  toTokens,
  type RunOptions,
  type TokenInput,
} from './inputs.js';
import { validateParams } from './validate.js';
import { layerField, refuseMissingLayers, refuseUnused, trackingReader, type WeightCheckOptions } from './checkpoint-use.js';

export { forwardInputs, type RunOptions, type TokenInput } from './inputs.js';
export { validateParams } from './validate.js';
export { sampleToken, type GenerateOptions } from './generate.js';

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

/**
 * Reading and writing model directories: pretrained.ts and save.ts register themselves here when
 * imported (glassbox's Node entries import both), so that this file, and a browser bundle that
 * imports it, reach no file-system code.
 */
const modelFiles: {
  load?: (spec: string, options: { offline?: boolean; token?: string; weightDtype?: 'float32' | 'stored' }) => Promise<HookedTransformer>;
  save?: (dir: string, model: HookedTransformer, options: SaveModelOptions) => 'hf' | 'glassbox';
} = {};

/** Called by pretrained.ts (`load`) and save.ts (`save`). */
export function _registerModelFiles(files: typeof modelFiles): void {
  Object.assign(modelFiles, files);
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
  /**
   * What the model was loaded as ('default', a hub id, a directory's name), or null. An SAE whose
   * cfg.json names another model (`model_name`) is refused by `attachSae`.
   */
  name: string | null = null;
  /**
   * Whether runs may go past the context (`cfg.nCtx`) where the positions allow it (rotary,
   * ALiBi); each run's `allowLongContext` overrides it. Default false: such runs are refused.
   */
  allowLongContext = false;

  constructor(
    readonly cfg: ModelConfig,
    public params: ModelParams,
  ) {
    this.hookNames = discoverHookNames(cfg, params);
    this.hookSet = new Set(this.hookNames);
    // The weights the model is built over are read by every run: a runtime may keep them resident
    // (src/tensor/weights.ts). Tensors put into `params` later are fed as they are.
    markWeights(namedLeaves(params).map(([, t]) => t));
  }

  /**
   * Loads a model: 'default' (the small model shipped with glassbox), a Hugging Face-format
   * directory, or a hub id (`org/name[@revision]`, downloaded into the shared Hugging Face cache).
   * See `loadModel` in pretrained.ts.
   */
  static async fromPretrained(
    spec: string,
    options: { offline?: boolean; token?: string; weightDtype?: 'float32' | 'stored' } & WeightCheckOptions & {
        allowLongContext?: boolean;
      } = {},
  ): Promise<HookedTransformer> {
    if (!modelFiles.load)
      throw new Error(
        `fromPretrained('${spec}'): loading from a directory or the Hub needs Node.js and glassbox's model files (import from 'glassbox' or 'glassbox/model'); in a browser build the model with HookedTransformer.fromHf`,
      );
    return modelFiles.load(spec, options);
  }

  /**
   * Builds the model from a parsed HF config.json and a weight reader. When the reader lists its
   * tensors (`names`), they must be used exactly: a config asking for more layers than the
   * checkpoint holds is refused before any weight is read, and tensors the family neither read nor
   * declared skipped are refused after. `checkFinite` refuses weights holding NaN or infinities.
   */
  static fromHf(
    hfConfig: Record<string, unknown>,
    weights: WeightReader,
    file = 'config.json',
    options: WeightCheckOptions = {},
  ): HookedTransformer {
    const reader = new HfConfigReader(hfConfig, file);
    const family = familyFor(reader.modelType, file);
    const cfg = family.config(reader);
    reader.finish();
    const skipped = family.skipped?.(cfg) ?? [];
    const names = weights.names?.();
    const source = weights.source ?? 'the checkpoint';
    const field = layerField(hfConfig);
    if (names) refuseMissingLayers(cfg, names, skipped, source, file, field);
    const { reader: tracked, used } = trackingReader(weights, options);
    let params: ModelParams;
    try {
      params = family.weights(cfg, tracked);
    } catch (e) {
      // A family's own shape checks name the weight; say which checkpoint and config they concern.
      if (!(e instanceof Error) || e instanceof TypeError || e instanceof RangeError || e.message.includes(source)) throw e;
      throw new Error(`${source}: ${e.message} (as ${file} describes the model)`, { cause: e });
    }
    if (names) refuseUnused(cfg, names, used, skipped, source, file, field);
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
    if (!modelFiles.save)
      throw new Error(
        `save('${dir}'): writing a model directory needs Node.js and glassbox's model files (import from 'glassbox' or 'glassbox/model')`,
      );
    return modelFiles.save(dir, this, options);
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
      cache: new Set(spec.cache === undefined ? [] : this.select(spec.cache, 'cache (names)')),
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
      const out = sizedRun(tokens, points.cache.size, () => call(this.params, tokens)) as {
        logits: Tensor;
        cache: Record<string, Tensor>;
        routerTies?: Tensor[];
      };
      refuseRouterTies(out.routerTies, real);
      return { logits: out.logits, cache: new ActivationCache(out.cache) };
    }
    const { metric } = spec;
    for (const n of spec.grads === undefined ? [] : this.select(spec.grads, 'grads')) points.marks.add(n);
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
    const out = sizedRun(tokens, points.cache.size + points.marks.size, () => call(this.params, tokens)) as {
      value: Tensor;
      grads: T;
      cache: Record<string, Tensor>;
      routerTies?: Tensor[];
    };
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
   * Continues each prompt by up to `maxNewTokens` tokens (see generate.ts): greedy at temperature
   * 0, else seeded sampling (top-k, top-p); batched prompts left-padded with an attentionMask.
   */
  generate(input: TokenInput, options: GenerateOptions = {}): { tokens: number[][]; newTokens: number[][] } {
    const tokens = toTokens(input);
    return sizedRun(tokens, 0, () => generate(this, tokens, options), `generating ${options.maxNewTokens ?? 10} tokens after`);
  }

  /**
   * The forward pass inside a traced function, with a mixture of experts' router-tie flags
   * (`refuseRouterTies` reads them from the session's outputs).
   */
  /** @internal (generation builds its own traced runs from these) */
  traced(params: ModelParams, inp: ForwardInputs, hp: HookPoints): { logits: Tensor; routerTies?: Tensor[] } {
    const routerTies = this.cfg.moe ? ([] as Tensor[]) : undefined;
    const logits = transformerForward(this.cfg, params, routerTies ? { ...inp, routerTies } : inp, hp);
    return routerTies ? { logits, routerTies } : { logits };
  }

  /** @internal (generation builds its own traced runs from these) */
  hookPoints(spec: { cache: Set<string>; hooks: Map<string, HookFn[]>; marks: Set<string> }, cache: Record<string, Tensor>): HookPoints {
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
    const mask = maskTensor(options.attentionMask, tokens);
    checkContext(this.cfg, longestRow(tokens, mask), options.allowLongContext ?? this.allowLongContext);
    return forwardInputs(this.cfg, tokens, mask);
  }

  /**
   * The hook points `filter` names. A list names them one by one (each must exist; an empty list is
   * none); a pattern or predicate that matches no point is refused, with the nearest names, since
   * it is a typo or another model's name and would otherwise cache or hook nothing in silence.
   */
  private select(filter: NameFilter | undefined, what = 'names'): string[] {
    if (filter === undefined) return [...this.hookNames];
    if (Array.isArray(filter)) {
      for (const n of filter as readonly string[]) this.checkName(n);
      return [...(filter as readonly string[])];
    }
    const names =
      filter instanceof RegExp ? this.hookNames.filter((n) => filter.test(n)) : this.hookNames.filter(filter as (n: string) => boolean);
    if (names.length === 0)
      throw new Error(
        filter instanceof RegExp
          ? `${what}: ${String(filter)} matches no hook point${suggest(filter.source, this.hookNames)}`
          : `${what}: the filter function matches no hook point (model.hookNames lists them, e.g. '${this.hookNames[0]}')`,
      );
    return names;
  }

  /** @internal (generation builds its own traced runs from these) */
  hookMap(hooks: HookList): Map<string, HookFn[]> {
    const m = new Map<string, HookFn[]>();
    for (const [sel, fn] of hooks) {
      const names = typeof sel === 'string' ? [this.checkName(sel)] : this.select(sel, 'hooks');
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

/**
 * Runs `f`, turning ONNX Runtime's allocation failure into an error that says how large the run
 * was and what to reduce.
 */
function sizedRun<T>(tokens: Tensor, points: number, f: () => T, what = 'a run of'): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof OutOfMemoryError)) throw e;
    const [b, s] = tokens.shape as [number, number];
    throw new OutOfMemoryError(
      `${what} ${b} x ${s} tokens${points > 0 ? ` with ${points} hook point${points === 1 ? '' : 's'} cached or marked` : ''}: ${e.message}` +
        `${points > 0 ? ', or fewer hook points' : ''}; the sweeps (patching, ablation, attribution) size their passes by ` +
        'memoryBudgetBytes (or GLASSBOX_MEMORY_BUDGET), which a smaller value lowers',
      e.bytes,
      { cause: e },
    );
  }
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

/** ' (did you mean ...?)' with the closest names (io/names.ts). */
export function suggest(name: string, candidates: readonly string[]): string {
  return didYouMean(name, candidates);
}
