/**
 * The Sae object and its forward pass with SAELens's hook points:
 *
 *   x -> hook_sae_input -> (normalise, - b_dec) -> hook_sae_acts_pre -> activation -> hook_sae_acts_post
 *     -> decode -> hook_sae_recons -> (de-normalise, + skip) -> [+ hook_sae_error] -> hook_sae_output
 *
 * Hook functions have the model's shape, `(x, ctx) => Tensor | void`, and are traced into one
 * compiled graph with the rest of the pass (inside a model's forward when the SAE is attached).
 */
import { ActivationCache, type HookContext, type HookFn } from '../model/hooked.js';
import { Tensor, jit, markGradTarget } from '../tensor/index.js';
import { dOutOf, makeSaeConfig, type SaeConfig, type SaeConfigInput } from './config.js';
import { checkParamShapes, processInput, trainingFacts } from './common.js';
import { stopGradient } from './ops.js';
import { getArchitecture } from './registry.js';
import type { SaeArchitecture, SaeInitOptions, SaeParams, SaeTrainingLoss, SaeTrainingOptions } from './types.js';

/** SAELens's hook points inside an SAE, in forward order. */
export const SAE_HOOK_NAMES = [
  'hook_sae_input',
  'hook_sae_acts_pre',
  'hook_sae_acts_post',
  'hook_sae_recons',
  'hook_sae_error',
  'hook_sae_output',
] as const;

/** One of SAELens's SAE hook points. */
export type SaeHookName = (typeof SAE_HOOK_NAMES)[number];

/**
 * A sparse autoencoder (or transcoder): its SAELens config, its parameters, and what came with it
 * from disk. Immutable: `withParams` / `withConfig` return new objects.
 */
export class Sae {
  readonly cfg: SaeConfig;
  readonly params: SaeParams;
  readonly architecture: SaeArchitecture;
  /** log10 of each feature's firing density [d_sae] (SAELens's sparsity.safetensors), when known. */
  readonly sparsity: Tensor | null;
  /** Tensors of the weights file the architecture does not use; written back on save. */
  readonly extraTensors: Readonly<Record<string, Tensor>>;

  /**
   * @param cfg the config (see `makeSaeConfig` for defaults)
   * @param params the parameters by SAELens name; shapes are checked against cfg
   * @param options.where names the source (a file) in errors
   */
  constructor(
    cfg: SaeConfig,
    params: SaeParams,
    options: { sparsity?: Tensor | null; extraTensors?: Record<string, Tensor>; where?: string } = {},
  ) {
    const where = options.where ?? 'Sae';
    this.architecture = getArchitecture(cfg.architecture, where);
    checkParamShapes(this.architecture, cfg, params, where);
    const sparsity = options.sparsity ?? null;
    if (sparsity && (sparsity.rank !== 1 || sparsity.shape[0] !== cfg.d_sae))
      throw new Error(`${where}: 'sparsity' has shape [${sparsity.shape}] but d_sae is ${cfg.d_sae}`);
    // Aliases (e.g. 'matryoshka-batchtopk') become the registered SAELens name.
    if (cfg.architecture !== this.architecture.name) cfg = { ...cfg, architecture: this.architecture.name };
    this.cfg = cfg;
    const used = Object.keys(this.architecture.paramShapes(cfg));
    this.params = Object.fromEntries(used.map((k) => [k, params[k]!]));
    const extra = { ...(options.extraTensors ?? {}) };
    for (const [k, t] of Object.entries(params)) if (!used.includes(k)) extra[k] = t;
    this.extraTensors = extra;
    this.sparsity = sparsity;
  }

  /**
   * A freshly initialised SAE (SAELens's initialisation; see `SaeInitOptions`). The config takes
   * `rescale_acts_by_decoder_norm` from the architecture's training defaults when it leaves it
   * out (TopK-family SAEs get true, as SAELens trains them); an architecture that selects the top
   * k features needs k.
   */
  static create(cfg: SaeConfigInput, options: SaeInitOptions = {}): Sae {
    const arch = getArchitecture(cfg.architecture, 'Sae.create');
    const training = trainingFacts(arch);
    const full = makeSaeConfig({ ...cfg, architecture: arch.name }, arch.transcoder);
    const rescale = training.defaults.rescale_acts_by_decoder_norm;
    if (rescale !== undefined && full.rescale_acts_by_decoder_norm === undefined) full.rescale_acts_by_decoder_norm = rescale;
    if (training.selectsTopK && full.k === undefined)
      throw new Error(`Sae.create: the ${full.architecture} architecture needs k (active features per example)`);
    return new Sae(full, arch.init(full, options));
  }

  /** Input width d_in. */
  get dIn(): number {
    return this.cfg.d_in;
  }
  /** Dictionary size d_sae. */
  get dSae(): number {
    return this.cfg.d_sae;
  }
  /** Output width: d_out for transcoders, else d_in. */
  get dOut(): number {
    return dOutOf(this.cfg);
  }
  /** Whether the decoder writes to another hook point (cfg.hook_name_out). */
  get isTranscoder(): boolean {
    return this.architecture.transcoder;
  }

  /** The same SAE with other parameters (e.g. after training); shapes are checked. */
  withParams(params: SaeParams): Sae {
    return new Sae(this.cfg, params, { sparsity: this.sparsity, extraTensors: { ...this.extraTensors } });
  }

  /** The same parameters under a changed config (e.g. a hook_name). */
  withConfig(patch: Partial<SaeConfig>): Sae {
    return new Sae({ ...this.cfg, ...patch }, this.params, { sparsity: this.sparsity, extraTensors: { ...this.extraTensors } });
  }

  /** The same SAE with a sparsity vector (log10 feature density [d_sae]). */
  withSparsity(sparsity: Tensor | null): Sae {
    return new Sae(this.cfg, this.params, { sparsity, extraTensors: { ...this.extraTensors } });
  }

  /** Feature activations: [..., d_in] (or [..., n_heads, d_head] for hook_z SAEs) -> [..., d_sae]. */
  encode(x: Tensor): Tensor {
    return jit((xx: Tensor) => {
      const { flat } = inputLayout(this, xx);
      return encodeStage(this, flat, passThrough).acts;
    })(x);
  }

  /** The reconstruction from feature activations: [..., d_sae] -> [..., d_out] (no skip connection; `forward` adds it). */
  decode(acts: Tensor): Tensor {
    if (acts.shape[acts.rank - 1] !== this.dSae)
      throw new Error(`Sae.decode: expected [..., ${this.dSae}] activations, got [${acts.shape}]`);
    return jit((a: Tensor) => {
      const { restore } = normalisationOf(this, a);
      return restore(this.architecture.decode(this.params, a, this.cfg));
    })(acts);
  }

  /** encode then decode (plus the skip connection of skip transcoders): [..., d_in] -> [..., d_out]. */
  forward(x: Tensor): Tensor {
    return runSae(this, x).output;
  }

  /** The training options this SAE's config implies (k, rescaling, b_dec subtraction, normalisation, widths). */
  trainingOptions(): SaeTrainingOptions {
    const c = this.cfg;
    const o: SaeTrainingOptions = {
      applyBDecToInput: c.apply_b_dec_to_input && !this.isTranscoder,
      normalizeActivations: c.normalize_activations,
      normScalingFactor: c.norm_scaling_factor ?? null,
    };
    if (c.k !== undefined) o.k = c.k;
    if (c.rescale_acts_by_decoder_norm !== undefined) o.rescaleActsByDecoderNorm = c.rescale_acts_by_decoder_norm;
    if (c.matryoshka_widths !== undefined) o.matryoshkaWidths = c.matryoshka_widths;
    return o;
  }

  /**
   * The architecture's training loss at `params` (a pure function of them: differentiate it with
   * `valueAndGrad`, or hand `(p, batch) => sae.trainingLoss(p, batch.x, ...)` to `train`), with
   * this SAE's config filling the structural options. `x` is [..., d_in].
   */
  trainingLoss(params: SaeParams, x: Tensor, options: SaeTrainingOptions = {}): SaeTrainingLoss {
    return this.architecture.trainingLoss(params, x, { ...this.trainingOptions(), ...options });
  }

  /** E.g. 'Sae(jumprelu, d_in 2304, d_sae 16384, hook blocks.12.hook_resid_post)'. */
  toString(): string {
    return `Sae(${this.cfg.architecture}, d_in ${this.dIn}, d_sae ${this.dSae}${this.isTranscoder ? `, d_out ${this.dOut}` : ''}, hook ${this.cfg.hook_name ?? 'none'})`;
  }
}

// ---------------------------------------------------------------------------------------------
// The forward pass with hook points

/** Hook functions by SAE hook point name ('hook_sae_acts_post', or with the SAE's hook_name as prefix). */
export type SaeHooks = readonly (readonly [string, HookFn])[];

/** Options of `runSae`. */
export interface RunSaeOptions {
  /** [name, fn] pairs: the value a hook returns replaces the activation (returning nothing keeps it). */
  hooks?: SaeHooks;
  /** Hook points to cache: true for all, or a list of names. */
  cache?: boolean | readonly string[];
  /** Hook points to mark as gradient targets (under `<hook_name>.<point>` inside `valueAndGrad` / `gradientsAt`). */
  markGrad?: readonly string[];
  /**
   * Add the SAE's error (target - clean reconstruction, computed without the hooks) to the
   * output, as SAELens's use_error_term: without hooks the output is exactly the input; with
   * hooks it is the input plus the change they cause. Gradients flow through the SAE's
   * reconstruction and the error hook, not around the SAE (as in SAELens).
   */
  useErrorTerm?: boolean;
  /** Transcoders with useErrorTerm: the true output activation [..., d_out] the error is measured against. */
  target?: Tensor;
}

/** What a run returns: the output [..., d_out] and the cached hook points (bare names, e.g. 'hook_sae_acts_post'). */
export interface SaeRunResult {
  output: Tensor;
  cache: ActivationCache;
}

/**
 * Runs the SAE on `x` [..., d_in] with hooks, caching and the error term, as one compiled graph
 * (inlined when called inside another trace, e.g. from a model hook).
 */
export function runSae(sae: Sae, x: Tensor, options: RunSaeOptions = {}): SaeRunResult {
  const spec = runSpec(sae, options);
  const result = jit((xx: Tensor, target: Tensor | null) => saeForward(sae, xx, target, spec))(x, options.target ?? null) as {
    output: Tensor;
    cache: Record<string, Tensor>;
  };
  return { output: result.output, cache: new ActivationCache(result.cache) };
}

/** @internal the resolved hooks, cache and marks of a run */
export interface SaeRunSpec {
  hooks: Map<SaeHookName, HookFn[]>;
  cache: Set<SaeHookName>;
  marks: Set<SaeHookName>;
  useErrorTerm: boolean;
  /** Prefix of the names hooks see in ctx.name and marks are made under ('' standalone). */
  prefix: string;
}

/** @internal resolves hook names (bare or prefixed with the SAE's hook_name) */
export function runSpec(sae: Sae, options: RunSaeOptions, prefix = ''): SaeRunSpec {
  const resolve = (name: string): SaeHookName => {
    const bare = sae.cfg.hook_name && name.startsWith(`${sae.cfg.hook_name}.`) ? name.slice(sae.cfg.hook_name.length + 1) : name;
    if (!(SAE_HOOK_NAMES as readonly string[]).includes(bare))
      throw new Error(`unknown SAE hook point '${name}' (the SAE's hook points: ${SAE_HOOK_NAMES.join(', ')})`);
    return bare as SaeHookName;
  };
  const hooks = new Map<SaeHookName, HookFn[]>();
  for (const [name, fn] of options.hooks ?? []) {
    const n = resolve(name);
    hooks.set(n, [...(hooks.get(n) ?? []), fn]);
  }
  const cache = new Set<SaeHookName>(options.cache === true ? SAE_HOOK_NAMES : (options.cache || []).map(resolve));
  const marks = new Set<SaeHookName>((options.markGrad ?? []).map(resolve));
  if (options.useErrorTerm && sae.architecture.batchDependent)
    throw new Error(`${sae}: a ${sae.cfg.architecture} SAE mixes the examples of a batch; convert it with toInferenceSae first`);
  return { hooks, cache, marks, useErrorTerm: !!options.useErrorTerm, prefix };
}

type Point = (name: SaeHookName, x: Tensor) => Tensor;
const passThrough: Point = (_n, x) => x;

/** The SAE's input as [..., d_in] (hook_z: [..., n_heads, d_head] flattened) and the inverse for the output. */
function inputLayout(sae: Sae, x: Tensor): { flat: Tensor; unflatten: (out: Tensor) => Tensor } {
  const d = sae.dIn;
  if (x.shape[x.rank - 1] === d) return { flat: x, unflatten: (o) => o };
  const hookZ = sae.cfg.reshape_activations === 'hook_z' || !!sae.cfg.hook_name?.endsWith('hook_z');
  if (hookZ && x.rank >= 2 && x.shape[x.rank - 1]! * x.shape[x.rank - 2]! === d) {
    const lead = x.shape.slice(0, -2);
    const heads = x.shape.slice(-2);
    return {
      flat: x.reshape([...lead, d]),
      unflatten: (o) => (o.shape[o.rank - 1] === d ? o.reshape([...o.shape.slice(0, -1), ...heads]) : o),
    };
  }
  throw new Error(
    `${sae}: expected input [..., ${d}]${hookZ ? ` or [..., n_heads, d_head] with n_heads * d_head = ${d}` : ''}, got [${x.shape}]`,
  );
}

function normalisationOf(sae: Sae, x: Tensor): { restore: (out: Tensor) => Tensor } {
  if (sae.cfg.normalize_activations === 'constant_norm_rescale' || sae.cfg.normalize_activations === 'layer_norm')
    throw new Error(
      `${sae}: decode on its own cannot undo '${sae.cfg.normalize_activations}' (it depends on the input); use forward or runSae`,
    );
  return processInput(x, sae.params, { ...sae.cfg, apply_b_dec_to_input: false }, sae.isTranscoder);
}

/** Input -> feature activations, through the hook points on the way. */
function encodeStage(sae: Sae, x: Tensor, point: Point): { acts: Tensor; restore: (out: Tensor) => Tensor } {
  const input = point('hook_sae_input', x);
  const { saeIn, restore } = processInput(input, sae.params, sae.cfg, sae.isTranscoder);
  const hiddenPre = point('hook_sae_acts_pre', sae.architecture.hiddenPre(sae.params, saeIn, sae.cfg));
  const acts = point('hook_sae_acts_post', sae.architecture.activate(sae.params, hiddenPre, saeIn, sae.cfg));
  return { acts, restore };
}

/** Input -> output before the error term: encode, decode (hook_sae_recons), de-normalise, skip connection. */
function reconstruction(sae: Sae, x: Tensor, point: Point): Tensor {
  const { acts, restore } = encodeStage(sae, x, point);
  let out = restore(point('hook_sae_recons', sae.architecture.decode(sae.params, acts, sae.cfg)));
  if (sae.params.W_skip) out = out.add(x.matmul(sae.params.W_skip.transpose()));
  return out;
}

/** @internal the traced forward pass: output and cached values */
export function saeForward(
  sae: Sae,
  x: Tensor,
  target: Tensor | null,
  spec: SaeRunSpec,
): { output: Tensor; cache: Record<string, Tensor> } {
  const { flat, unflatten } = inputLayout(sae, x);
  const cache: Record<string, Tensor> = {};
  const hooksOf = (name: SaeHookName, v: Tensor): Tensor => {
    const fns = spec.hooks.get(name);
    if (!fns) return v;
    const full = spec.prefix + name;
    const ctx: HookContext = { name: full, layer: sae.cfg.hook_layer ?? null, markGrad: (t) => markGradTarget(full, t) };
    for (const fn of fns) {
      const y = fn(v, ctx);
      if (y instanceof Tensor) {
        if (y.rank !== v.rank || y.shape.some((d, i) => d !== v.shape[i]))
          throw new Error(`hook on '${full}' returned shape [${y.shape}], expected [${v.shape}]`);
        v = y.dtype === v.dtype ? y : y.cast(v.dtype);
      }
    }
    return v;
  };
  const record = (name: SaeHookName, v: Tensor): Tensor => {
    if (spec.marks.has(name)) v = markGradTarget(spec.prefix + name, v);
    if (spec.cache.has(name)) cache[name] = v;
    return v;
  };
  const point: Point = (name, v) => record(name, hooksOf(name, v));

  const hooked = reconstruction(sae, flat, point);
  let output = hooked;
  if (spec.useErrorTerm) {
    let truth = flat;
    if (sae.isTranscoder) {
      if (!target) throw new Error(`${sae}: useErrorTerm on a transcoder needs options.target (the output activation [..., ${sae.dOut}])`);
      truth = target;
    }
    if (truth.shape.length !== hooked.shape.length || truth.shape.some((d, i) => d !== hooked.shape[i]))
      throw new Error(`${sae}: the error term's target has shape [${truth.shape}], the reconstruction [${hooked.shape}]`);
    const pathHooked = (['hook_sae_input', 'hook_sae_acts_pre', 'hook_sae_acts_post', 'hook_sae_recons'] as const).some((n) =>
      spec.hooks.has(n),
    );
    // The clean reconstruction runs without hooks (SAELens's _disable_hooks); with none on the path it is the same value.
    const clean = pathHooked ? reconstruction(sae, flat, passThrough) : hooked;
    const error = stopGradient(truth.sub(clean));
    const hookedError = hooksOf('hook_sae_error', error);
    const markedError = record('hook_sae_error', hookedError);
    if (hookedError === error) {
      // truth + (hooked - clean) is exactly `truth` when nothing on the path is hooked; the gradient
      // terms add 0 in value and route gradients through the reconstruction and the error.
      output = stopGradient(truth.add(hooked.sub(clean)))
        .add(hooked.sub(stopGradient(hooked)))
        .add(markedError.sub(stopGradient(markedError)));
    } else output = hooked.add(markedError);
  }
  output = point('hook_sae_output', output);
  return { output: unflatten(output), cache };
}
