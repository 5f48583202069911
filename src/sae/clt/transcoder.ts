/**
 * Cross-layer transcoders (CLT; Ameisen et al. 2025, "Circuit Tracing") and sets of per-layer
 * transcoders (PLT), as one class over one parameter layout.
 *
 * Layer l's features read `inputHook(l)` (x_l [..., d_in]) and fire as
 *   a_l = act(x_l W_enc_l + b_enc_l)                           [..., widths[l]]
 * with act one of ReLU, JumpReLU (ReLU(pre) * (pre > threshold_l)) or TopK (the k largest
 * pre-activations per token and layer, ReLU'd). Target layer t's MLP output is reconstructed as
 *   y_t = sum_{s <= t} a_s W_dec_{s->t} + b_dec_t (+ x_t W_skip_t^T)   [..., d_out]
 * where a CLT sums over every source s <= t and a PLT over s = t only.
 *
 * Parameters (`CltParams`, the names they have on disk):
 * - `W_enc.{l}` [d_in, widths[l]], `b_enc.{l}` [widths[l]], `threshold.{l}` [widths[l]] (JumpReLU);
 * - `W_dec.{s}` [widths[s], n_targets(s), d_out]: source s's decoders, target t at index t - s
 *   (n_targets(s) = n_layers - s for a CLT, 1 for a PLT);
 * - `b_dec.{t}` [d_out]; `W_skip.{l}` [d_out, d_in] when `skip`.
 *
 * Every function here is written with the engine's tensor ops, so it traces into jit graphs and
 * has gradients (the trainer and the replacement model use the same code).
 */
import { PRNG, randn, scalar, tensor, zeros, type Tensor } from '../../tensor/index.js';
import type { TracingActivation, TracingTranscoders } from './types.js';

/** A transcoder set's parameters by name (see the file comment). */
export type CltParams = Record<string, Tensor>;

/** The config of a `CrossLayerTranscoder` (cfg.json's fields, SAELens-style snake case). */
export interface CltConfig {
  /** Layers covered (0..n_layers-1). */
  n_layers: number;
  d_in: number;
  d_out: number;
  /** Features per layer [n_layers]. */
  widths: number[];
  activation: TracingActivation;
  /** TopK: features kept per token and layer. */
  k?: number;
  /** True: features of layer s write to every layer t >= s. False: to t = s only (a PLT set). */
  cross_layer: boolean;
  /** A linear skip path per layer (W_skip.{l} [d_out, d_in]). */
  skip: boolean;
  /** The hook point each layer's encoder reads [n_layers], e.g. 'blocks.0.ln2.hook_normalized'. */
  hook_names_in: string[];
  /** The hook point each layer's decoders write [n_layers], e.g. 'blocks.0.hook_mlp_out'. */
  hook_names_out: string[];
  model_name?: string | null;
  dataset_path?: string | null;
  context_size?: number | null;
  prepend_bos?: boolean;
}

/** Source layer s's number of target layers: n_layers - s for a CLT, 1 for a PLT. */
export function targetCount(cfg: Pick<CltConfig, 'n_layers' | 'cross_layer'>, source: number): number {
  return cfg.cross_layer ? cfg.n_layers - source : 1;
}

/** Each parameter's expected shape, by name. */
export function cltParamShapes(cfg: CltConfig): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (let l = 0; l < cfg.n_layers; l++) {
    const w = cfg.widths[l]!;
    shapes[`W_enc.${l}`] = [cfg.d_in, w];
    shapes[`b_enc.${l}`] = [w];
    if (cfg.activation === 'jumprelu') shapes[`threshold.${l}`] = [w];
    shapes[`W_dec.${l}`] = [w, targetCount(cfg, l), cfg.d_out];
    shapes[`b_dec.${l}`] = [cfg.d_out];
    if (cfg.skip) shapes[`W_skip.${l}`] = [cfg.d_out, cfg.d_in];
  }
  return shapes;
}

/** Pre-activations of layer l's features: x [..., d_in] -> [..., widths[l]]. */
export function cltPreActs(params: CltParams, layer: number, x: Tensor): Tensor {
  return x.matmul(params[`W_enc.${layer}`]!).add(params[`b_enc.${layer}`]!);
}

/**
 * The inference activation of layer l: pre [..., w] -> acts [..., w]. JumpReLU uses the threshold
 * as stored (ReLU(pre) * (pre > threshold)); TopK keeps the k largest per row, ReLU'd.
 */
export function cltActivate(cfg: Pick<CltConfig, 'activation' | 'k'>, params: CltParams, layer: number, pre: Tensor): Tensor {
  if (cfg.activation === 'relu') return pre.relu();
  if (cfg.activation === 'jumprelu') return pre.relu().mul(pre.gt(params[`threshold.${layer}`]!).cast(pre.dtype));
  return topkRows(pre, cfg.k!);
}

/** Keeps each row's k largest values (ReLU'd), zeros elsewhere: [..., w] -> [..., w]. */
export function topkRows(pre: Tensor, k: number): Tensor {
  const { values, indices } = pre.topk(k, -1);
  return scalar(0, pre.dtype)
    .expand(pre.shape)
    .scatter(indices, values.relu(), pre.rank - 1);
}

/** Source s's decoder into target t: W_dec.{s}[:, t - s, :] -> [widths[s], d_out]. */
export function cltDecoder(cfg: Pick<CltConfig, 'cross_layer'>, params: CltParams, source: number, target: number): Tensor {
  return params[`W_dec.${source}`]!.index([null, cfg.cross_layer ? target - source : 0]);
}

/** The sources that write target t: 0..t for a CLT, [t] for a PLT. */
export function sourcesOf(cfg: Pick<CltConfig, 'cross_layer'>, target: number): number[] {
  return cfg.cross_layer ? Array.from({ length: target + 1 }, (_, s) => s) : [target];
}

/**
 * Target t's reconstruction: sum_{s in sourcesOf(t)} acts[s] W_dec_{s->t} + b_dec_t, plus
 * skipInput W_skip_t^T when the set has a skip path and `skipInput` is given. acts[s] [..., widths[s]]
 * -> [..., d_out].
 */
export function cltDecode(cfg: CltConfig, params: CltParams, target: number, acts: readonly Tensor[], skipInput?: Tensor): Tensor {
  let out: Tensor | null = null;
  for (const s of sourcesOf(cfg, target)) {
    const a = acts[s];
    if (!a) throw new Error(`decode(${target}): the activations of source layer ${s} are missing (got ${acts.length} layers)`);
    const term = a.matmul(cltDecoder(cfg, params, s, target));
    out = out ? out.add(term) : term;
  }
  out = out!.add(params[`b_dec.${target}`]!);
  if (cfg.skip && skipInput) out = out.add(skipInput.matmul(params[`W_skip.${target}`]!.transpose()));
  return out;
}

/**
 * Each feature of source s's decoder norm over all its targets (the norm of the concatenation of
 * its decoder rows, Anthropic's ||W_dec_i||): W_dec.{s} [w, n_targets, d_out] -> [w].
 */
export function cltDecoderNorms(params: CltParams, source: number): Tensor {
  return params[`W_dec.${source}`]!.square().sum([1, 2]).sqrt();
}

/** Options of `initCltParams`. */
export interface CltInitOptions {
  seed?: number;
  /** Initial threshold of JumpReLU features (default 0.03, for inputs scaled to norm sqrt(d_in)). */
  threshold?: number;
  /** Initial norm of each feature's concatenated decoder rows (default 0.1). */
  decoderNorm?: number;
}

/**
 * Fresh parameters: W_enc ~ N(0, 1/d_in) (so pre-activations are ~N(0, 1) on inputs of norm
 * sqrt(d_in)), decoder rows random with the concatenated norm `decoderNorm`, biases zero,
 * thresholds `threshold`, skip paths zero.
 */
export function initCltParams(cfg: CltConfig, options: CltInitOptions = {}): CltParams {
  const rng = new PRNG(options.seed ?? 0);
  const p: CltParams = {};
  for (let l = 0; l < cfg.n_layers; l++) {
    const w = cfg.widths[l]!;
    p[`W_enc.${l}`] = randn([cfg.d_in, w], { rng }).mul(1 / Math.sqrt(cfg.d_in));
    p[`b_enc.${l}`] = zeros([w]);
    if (cfg.activation === 'jumprelu') p[`threshold.${l}`] = tensor(new Float32Array(w).fill(options.threshold ?? 0.03), [w]);
    const dec = randn([w, targetCount(cfg, l), cfg.d_out], { rng });
    const norms = dec.square().sum([1, 2], true).sqrt();
    p[`W_dec.${l}`] = dec.div(norms).mul(options.decoderNorm ?? 0.1);
    p[`b_dec.${l}`] = zeros([cfg.d_out]);
    if (cfg.skip) p[`W_skip.${l}`] = zeros([cfg.d_out, cfg.d_in]);
  }
  return p;
}

/**
 * Refuses a config that cannot describe a transcoder set: each problem names `where` and the field.
 */
export function checkCltConfig(cfg: CltConfig, where: string): void {
  const bad = (field: string, problem: string): never => {
    throw new Error(`${where}: field '${field}' ${problem}`);
  };
  const posInt = (field: keyof CltConfig): void => {
    const v = cfg[field];
    if (!(typeof v === 'number' && Number.isInteger(v) && v > 0)) bad(field, `must be a positive integer, got ${JSON.stringify(v)}`);
  };
  posInt('n_layers');
  posInt('d_in');
  posInt('d_out');
  if (!Array.isArray(cfg.widths) || cfg.widths.length !== cfg.n_layers)
    bad('widths', `must list one width per layer (${cfg.n_layers}), got ${JSON.stringify(cfg.widths)}`);
  cfg.widths.forEach((w, l) => {
    if (!(Number.isInteger(w) && w > 0)) bad('widths', `entry ${l} must be a positive integer, got ${JSON.stringify(w)}`);
  });
  if (!['relu', 'jumprelu', 'topk'].includes(cfg.activation as string))
    bad('activation', `must be 'relu', 'jumprelu' or 'topk', got ${JSON.stringify(cfg.activation)}`);
  if (cfg.activation === 'topk') {
    const minW = Math.min(...cfg.widths);
    if (!(Number.isInteger(cfg.k) && cfg.k! >= 1 && cfg.k! <= minW))
      bad('k', `must be an integer in 1..${minW} (the narrowest layer) for activation 'topk', got ${JSON.stringify(cfg.k)}`);
  }
  if (typeof cfg.cross_layer !== 'boolean') bad('cross_layer', `must be true or false, got ${JSON.stringify(cfg.cross_layer)}`);
  if (typeof cfg.skip !== 'boolean') bad('skip', `must be true or false, got ${JSON.stringify(cfg.skip)}`);
  for (const field of ['hook_names_in', 'hook_names_out'] as const) {
    const v = cfg[field];
    if (!Array.isArray(v) || v.length !== cfg.n_layers || v.some((h) => typeof h !== 'string' || h === ''))
      bad(field, `must list one hook point name per layer (${cfg.n_layers}), got ${JSON.stringify(v)}`);
  }
}

/**
 * A cross-layer transcoder, or a set of per-layer transcoders (`cfg.cross_layer` false), over
 * one parameter layout (see the file comment). Implements `TracingTranscoders`.
 */
export class CrossLayerTranscoder implements TracingTranscoders {
  readonly cfg: CltConfig;
  readonly params: CltParams;
  /** log10 firing density per layer [widths[l]], when known (training or loading). */
  readonly sparsity: readonly Tensor[] | null;

  /**
   * Checks the config and every parameter's presence, shape and dtype (float32); errors name
   * `where` (the file), the parameter and the problem.
   */
  constructor(cfg: CltConfig, params: CltParams, options: { where?: string; sparsity?: readonly Tensor[] | null } = {}) {
    const where = options.where ?? 'CrossLayerTranscoder';
    checkCltConfig(cfg, where);
    const shapes = cltParamShapes(cfg);
    for (const [name, shape] of Object.entries(shapes)) {
      const t = params[name];
      if (!t) throw new Error(`${where}: parameter '${name}' is missing (expected shape [${shape.join(', ')}])`);
      if (t.dtype !== 'float32') throw new Error(`${where}: parameter '${name}' has dtype ${t.dtype}, expected float32`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
        throw new Error(`${where}: parameter '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    const extra = Object.keys(params).filter((n) => !(n in shapes));
    if (extra.length) throw new Error(`${where}: unexpected parameter(s) ${extra.map((n) => `'${n}'`).join(', ')} for this config`);
    this.cfg = cfg;
    this.params = params;
    this.sparsity = options.sparsity ?? null;
  }

  /** A fresh transcoder set of `cfg` (see `initCltParams`). */
  static init(cfg: CltConfig, options: CltInitOptions = {}): CrossLayerTranscoder {
    return new CrossLayerTranscoder(cfg, initCltParams(cfg, options));
  }

  get nLayers(): number {
    return this.cfg.n_layers;
  }
  get dIn(): number {
    return this.cfg.d_in;
  }
  get dOut(): number {
    return this.cfg.d_out;
  }
  get widths(): readonly number[] {
    return this.cfg.widths;
  }
  get activation(): TracingActivation {
    return this.cfg.activation;
  }
  get k(): number | undefined {
    return this.cfg.k;
  }
  get crossLayer(): boolean {
    return this.cfg.cross_layer;
  }

  #layer(layer: number, what: string): number {
    if (!(Number.isInteger(layer) && layer >= 0 && layer < this.cfg.n_layers))
      throw new Error(`${what}: layer ${layer} is outside 0..${this.cfg.n_layers - 1}`);
    return layer;
  }

  inputHook(layer: number): string {
    return this.cfg.hook_names_in[this.#layer(layer, 'inputHook')]!;
  }
  outputHook(layer: number): string {
    return this.cfg.hook_names_out[this.#layer(layer, 'outputHook')]!;
  }
  wEnc(layer: number): Tensor {
    return this.params[`W_enc.${this.#layer(layer, 'wEnc')}`]!;
  }
  bEnc(layer: number): Tensor {
    return this.params[`b_enc.${this.#layer(layer, 'bEnc')}`]!;
  }
  threshold(layer: number): Tensor | null {
    return this.params[`threshold.${this.#layer(layer, 'threshold')}`] ?? null;
  }
  wDec(source: number, target: number): Tensor {
    this.#layer(source, 'wDec');
    this.#layer(target, 'wDec');
    if (this.cfg.cross_layer ? target < source : target !== source)
      throw new Error(
        `wDec(${source}, ${target}): ${this.cfg.cross_layer ? 'a CLT feature writes only to layers at or after its own' : 'a per-layer transcoder writes only its own layer'}`,
      );
    return cltDecoder(this.cfg, this.params, source, target);
  }
  bDec(target: number): Tensor {
    return this.params[`b_dec.${this.#layer(target, 'bDec')}`]!;
  }
  wSkip(layer: number): Tensor | null {
    return this.params[`W_skip.${this.#layer(layer, 'wSkip')}`] ?? null;
  }
  /** Pre-activations of layer l: x [..., d_in] -> [..., widths[l]]. */
  preActs(layer: number, x: Tensor): Tensor {
    this.#layer(layer, 'preActs');
    if (x.shape[x.rank - 1] !== this.cfg.d_in)
      throw new Error(`encode(${layer}): the input's last axis is ${x.shape[x.rank - 1]}, expected d_in ${this.cfg.d_in}`);
    return cltPreActs(this.params, layer, x);
  }
  encode(layer: number, x: Tensor): Tensor {
    return cltActivate(this.cfg, this.params, layer, this.preActs(layer, x));
  }
  decode(target: number, acts: readonly Tensor[], skipInput?: Tensor): Tensor {
    this.#layer(target, 'decode');
    return cltDecode(this.cfg, this.params, target, acts, skipInput);
  }
  /**
   * Every layer's reconstruction from every layer's input: inputs[l] [..., d_in] ->
   * { acts[l] [..., widths[l]], outputs[t] [..., d_out] }.
   */
  forward(inputs: readonly Tensor[]): { acts: Tensor[]; outputs: Tensor[] } {
    if (inputs.length !== this.cfg.n_layers)
      throw new Error(`forward: got ${inputs.length} inputs, expected one per layer (${this.cfg.n_layers})`);
    const acts = inputs.map((x, l) => this.encode(l, x));
    const outputs = inputs.map((x, t) => this.decode(t, acts, x));
    return { acts, outputs };
  }
  toString(): string {
    const c = this.cfg;
    return `${c.cross_layer ? 'CLT' : 'PLT set'}(${c.n_layers} layers, ${c.activation}, widths ${c.widths.join('/')}, ${c.d_in} -> ${c.d_out})`;
  }
}
