/**
 * An SAE's configuration: SAELens's `cfg.json`, field for field (snake_case, as on disk), so a
 * config written by SAELens loads here and one written here loads in SAELens. Fields glassbox does
 * not know are kept and written back unchanged.
 *
 * SAELens 6 moved the model-side fields (`model_name`, `hook_name`, `context_size`, ...) into a
 * nested `metadata` object; earlier versions keep them at the top level. Both load; saving writes
 * them at the top level and, when the file had a `metadata` object, updates it too.
 */
import { layerOf } from '../model/hook-names.js';

/** How the SAE normalises its input (SAELens's `normalize_activations`). */
export type NormalizeActivations = 'none' | 'expected_average_only_in' | 'constant_norm_rescale' | 'layer_norm';

/** The normalize_activations values SAELens knows. */
export const NORMALIZE_ACTIVATIONS: readonly NormalizeActivations[] = [
  'none',
  'expected_average_only_in',
  'constant_norm_rescale',
  'layer_norm',
];

/** SAELens's cfg.json. Unknown fields are allowed and preserved. */
export interface SaeConfig {
  /** The registry name: 'standard', 'topk', 'batchtopk', 'jumprelu', 'gated', 'matryoshka_batchtopk', 'transcoder', ... */
  architecture: string;
  /** Input width (the activation's last dimension). */
  d_in: number;
  /** Dictionary size (number of features). */
  d_sae: number;
  /** Storage dtype of the weights on disk ('float32', 'float16', 'bfloat16', 'float64'); computation is float32. */
  dtype: string;
  /** Kept for SAELens; glassbox runs where ONNX Runtime runs. */
  device: string;
  /** Subtract b_dec from the input before encoding (SAELens default true; false for transcoders and Gemma Scope). */
  apply_b_dec_to_input: boolean;
  normalize_activations: NormalizeActivations;
  /** 'hook_z': the input is [..., n_heads, d_head] and is flattened to d_in = n_heads * d_head. */
  reshape_activations: 'none' | 'hook_z';
  /** The model hook point the SAE reads (and, for SAEs, replaces), e.g. 'blocks.3.hook_resid_pre'. */
  hook_name: string | null;
  /** The layer of hook_name. */
  hook_layer: number | null;
  /** For per-head SAEs: the head index at hook_name ([..., n_heads, d_head]), else null. */
  hook_head_index: number | null;
  model_name: string | null;
  context_size: number | null;
  prepend_bos: boolean;
  dataset_path: string | null;
  /** TopK / BatchTopK: active features per example (BatchTopK: on average over the batch). */
  k?: number;
  /** TopK family: the pre-activations are multiplied by the decoder row norms before top-k (and the acts divided before decoding). */
  rescale_acts_by_decoder_norm?: boolean;
  /** Transcoders: output width (W_dec [d_sae, d_out], b_dec [d_out]). */
  d_out?: number;
  /** Transcoders: the hook point the output replaces, e.g. 'blocks.3.hook_mlp_out'. */
  hook_name_out?: string | null;
  hook_layer_out?: number | null;
  hook_head_index_out?: number | null;
  /** Matryoshka: the nested prefix widths, strictly increasing, ending at d_sae. */
  matryoshka_widths?: number[];
  /**
   * expected_average_only_in's input scale (inputs are multiplied by it, outputs divided), when
   * known. glassbox's field (SAELens keeps it in its release directory); `foldActivationNormScalingFactor` removes it.
   */
  norm_scaling_factor?: number | null;
  [field: string]: unknown;
}

/** The fields of a new config beyond those `makeSaeConfig` fills in. */
export type SaeConfigInput = Partial<SaeConfig> & Pick<SaeConfig, 'architecture' | 'd_in' | 'd_sae'>;

/**
 * Whether an architecture's name says it is a transcoder (its decoder writes to another hook
 * point; no b_dec subtraction from the input): the SAELens convention, for configs read before
 * their architecture is looked up (`parseSaeConfig`). A registered architecture's own
 * `transcoder` flag is what the rest of glassbox asks.
 */
export function isTranscoderArchitecture(name: string): boolean {
  return name.endsWith('transcoder');
}

/** The layer in a TransformerLens hook name ('blocks.3.hook_resid_pre' -> 3), or null (also for no name). */
export function hookLayerOf(hookName: string | null | undefined): number | null {
  return hookName ? layerOf(hookName) : null;
}

/**
 * A complete config from the fields given, with SAELens's defaults for the rest. `transcoder`
 * (default: by the name, `isTranscoderArchitecture`) adds d_out and the output hook fields and
 * turns off the b_dec subtraction by default.
 */
export function makeSaeConfig(input: SaeConfigInput, transcoder = isTranscoderArchitecture(input.architecture)): SaeConfig {
  const hookName = input.hook_name ?? null;
  const cfg: SaeConfig = {
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: !transcoder,
    normalize_activations: 'none',
    reshape_activations: hookName?.endsWith('hook_z') ? 'hook_z' : 'none',
    hook_layer: hookLayerOf(hookName),
    hook_head_index: null,
    model_name: null,
    context_size: null,
    prepend_bos: true,
    dataset_path: null,
    ...input,
    hook_name: hookName,
  };
  if (transcoder) {
    cfg.d_out ??= cfg.d_in;
    cfg.hook_name_out ??= null;
    cfg.hook_layer_out ??= hookLayerOf(cfg.hook_name_out);
    cfg.hook_head_index_out ??= null;
  }
  return cfg;
}

/** Output width: d_out for transcoders, else d_in. */
export function dOutOf(cfg: SaeConfig): number {
  return cfg.d_out ?? cfg.d_in;
}

/** Old SAELens key names, renamed on load (SAELens's handle_pre_6_0_config). */
const RENAMED: Record<string, string> = {
  hook_point: 'hook_name',
  hook_point_layer: 'hook_layer',
  hook_point_head_index: 'hook_head_index',
  activation_fn: 'activation_fn_str',
};

/** The model-side fields of a config: where the SAE reads and what it was trained on. */
const MODEL_FIELDS = ['model_name', 'hook_name', 'hook_layer', 'hook_head_index', 'context_size', 'prepend_bos', 'dataset_path'] as const;
/** A transcoder's output hook point. */
const OUTPUT_HOOK_FIELDS = ['hook_name_out', 'hook_layer_out', 'hook_head_index_out'] as const;
/** Fields SAELens 6 keeps under `metadata`. */
const METADATA_FIELDS = [...MODEL_FIELDS, ...OUTPUT_HOOK_FIELDS] as const;

/**
 * Reads a parsed cfg.json (any SAELens version) into a SaeConfig. `file` names the source in
 * errors. The architecture is not checked against the registry here (see `loadSae`).
 * 1. old key names renamed (SAELens < 6), and the model-side fields taken from `metadata`
 *    (SAELens 6) where the top level lacks them;
 * 2. the architecture: SAELens < 6's TopK ('standard' with activation_fn_str 'topk') becomes
 *    'topk', its k taken from activation_fn_kwargs;
 * 3. normalize_activations (a boolean in old files) and reshape_activations;
 * 4. every known field checked and defaulted; unknown fields kept as they are.
 */
export function parseSaeConfig(raw: unknown, file: string): SaeConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`${file}: expected a JSON object, got ${describe(raw)}`);
  const src: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) src[RENAMED[k] ?? k] = v;
  const meta =
    src.metadata && typeof src.metadata === 'object' && !Array.isArray(src.metadata) ? (src.metadata as Record<string, unknown>) : {};
  for (const f of METADATA_FIELDS) if (src[f] === undefined && meta[f] !== undefined) src[f] = meta[f];

  const int = (name: string, v: unknown, min: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      throw new Error(`${file}: '${name}' must be an integer >= ${min}, got ${describe(v)}`);
    return v;
  };
  const intOrNull = (name: string, v: unknown): number | null => (v === undefined || v === null ? null : int(name, v, 0));
  const strOrNull = (name: string, v: unknown): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw new Error(`${file}: '${name}' must be a string, got ${describe(v)}`);
    return v;
  };

  const archField = src.architecture ?? 'standard';
  if (typeof archField !== 'string') throw new Error(`${file}: 'architecture' must be a string, got ${describe(archField)}`);
  let architecture: string = archField;
  // SAELens < 6 wrote TopK SAEs as architecture 'standard' with activation_fn_str 'topk'.
  const kwargs = src.activation_fn_kwargs as Record<string, unknown> | undefined;
  if (architecture === 'standard' && src.activation_fn_str === 'topk') {
    architecture = 'topk';
    if (src.k === undefined && kwargs && kwargs.k !== undefined) src.k = kwargs.k;
  }
  if (architecture === 'topk' && src.k === undefined && kwargs && kwargs.k !== undefined) src.k = kwargs.k;

  let norm = src.normalize_activations;
  if (typeof norm === 'boolean') norm = norm ? 'expected_average_only_in' : 'none';
  if (norm === undefined || norm === null) norm = 'none';
  if (!NORMALIZE_ACTIVATIONS.includes(norm as NormalizeActivations))
    throw new Error(`${file}: 'normalize_activations' is ${describe(norm)}; expected one of ${NORMALIZE_ACTIVATIONS.join(', ')}`);

  const transcoder = isTranscoderArchitecture(architecture);
  const hookName = strOrNull('hook_name', src.hook_name);
  const reshape = src.reshape_activations ?? (hookName?.endsWith('hook_z') ? 'hook_z' : 'none');
  if (reshape !== 'none' && reshape !== 'hook_z')
    throw new Error(`${file}: 'reshape_activations' is ${describe(reshape)}; expected 'none' or 'hook_z'`);

  const cfg: SaeConfig = {
    ...src,
    architecture,
    d_in: int('d_in', src.d_in, 1),
    d_sae: int('d_sae', src.d_sae, 1),
    dtype: floatDtype(src.dtype, file),
    device: typeof src.device === 'string' ? src.device : 'cpu',
    apply_b_dec_to_input: typeof src.apply_b_dec_to_input === 'boolean' ? src.apply_b_dec_to_input : !transcoder,
    normalize_activations: norm as NormalizeActivations,
    reshape_activations: reshape,
    hook_name: hookName,
    hook_layer: intOrNull('hook_layer', src.hook_layer) ?? hookLayerOf(hookName),
    hook_head_index: intOrNull('hook_head_index', src.hook_head_index),
    model_name: strOrNull('model_name', src.model_name),
    context_size: intOrNull('context_size', src.context_size),
    prepend_bos: typeof src.prepend_bos === 'boolean' ? src.prepend_bos : true,
    dataset_path: strOrNull('dataset_path', src.dataset_path),
  };
  if (src.k !== undefined && src.k !== null) {
    if (typeof src.k !== 'number' || !(src.k > 0)) throw new Error(`${file}: 'k' must be a positive number, got ${describe(src.k)}`);
    cfg.k = src.k;
  }
  if (transcoder || src.d_out !== undefined) {
    cfg.d_out = src.d_out === undefined ? cfg.d_in : int('d_out', src.d_out, 1);
    cfg.hook_name_out = strOrNull('hook_name_out', src.hook_name_out);
    cfg.hook_layer_out = intOrNull('hook_layer_out', src.hook_layer_out) ?? hookLayerOf(cfg.hook_name_out);
    cfg.hook_head_index_out = intOrNull('hook_head_index_out', src.hook_head_index_out);
  }
  if (src.matryoshka_widths !== undefined) {
    const w = src.matryoshka_widths;
    if (!Array.isArray(w) || w.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 1))
      throw new Error(`${file}: 'matryoshka_widths' must be a list of positive integers, got ${describe(w)}`);
    cfg.matryoshka_widths = w as number[];
  }
  if (src.norm_scaling_factor !== undefined && src.norm_scaling_factor !== null && typeof src.norm_scaling_factor !== 'number')
    throw new Error(`${file}: 'norm_scaling_factor' must be a number or null, got ${describe(src.norm_scaling_factor)}`);
  return cfg;
}

/**
 * The cfg.json object for a config: the known fields first (SAELens's order), then every other
 * field as it was. A nested `metadata` object (SAELens 6) is updated to agree with the top level.
 */
export function configToJson(cfg: SaeConfig): Record<string, unknown> {
  const known = [
    'architecture',
    'd_in',
    'd_sae',
    'dtype',
    'device',
    'apply_b_dec_to_input',
    'normalize_activations',
    'reshape_activations',
    ...MODEL_FIELDS,
    'k',
    'rescale_acts_by_decoder_norm',
    'd_out',
    ...OUTPUT_HOOK_FIELDS,
    'matryoshka_widths',
    'norm_scaling_factor',
  ];
  const out: Record<string, unknown> = {};
  for (const k of known) if (cfg[k] !== undefined) out[k] = cfg[k];
  for (const [k, v] of Object.entries(cfg)) if (!(k in out) && v !== undefined) out[k] = v;
  const meta = cfg.metadata;
  if (meta && typeof meta === 'object' && !Array.isArray(meta)) {
    const m = { ...(meta as Record<string, unknown>) };
    for (const f of METADATA_FIELDS) if (f in m || (cfg[f] !== undefined && cfg[f] !== null)) m[f] = cfg[f] ?? null;
    out.metadata = m;
  }
  return out;
}

/** The float dtypes cfg.json's `dtype` may name (with or without 'torch.'); SAEs compute in float32. */
export const SAE_DTYPES = ['float32', 'float16', 'bfloat16', 'float64'] as const;

/** cfg.json's dtype: absent or null means float32; anything but a float dtype is refused. */
function floatDtype(v: unknown, file: string): string {
  if (v === undefined || v === null) return 'float32';
  if (typeof v !== 'string' || !(SAE_DTYPES as readonly string[]).includes(v.replace(/^torch\./, '')))
    throw new Error(
      `${file}: 'dtype' is ${describe(v)}; glassbox runs SAEs stored as ${SAE_DTYPES.join(', ')} (quantized weights such as int8 are not implemented)`,
    );
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  return JSON.stringify(v) ?? String(v);
}
