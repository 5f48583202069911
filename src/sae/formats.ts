/**
 * SAEs on disk.
 *
 * SAELens's layout, a directory of:
 * - `cfg.json`: the config (see config.ts; unknown fields are kept),
 * - `sae_weights.safetensors`: the parameters by SAELens name (W_enc [d_in, d_sae], b_enc [d_sae],
 *   W_dec [d_sae, d_out], b_dec [d_out], threshold [d_sae], ...), stored in cfg.dtype,
 * - `sparsity.safetensors` (optional): `sparsity` [d_sae], log10 of each feature's firing density.
 *
 * Gemma Scope's `params.npz` (W_enc, W_dec, b_enc, b_dec, threshold: a JumpReLU SAE).
 *
 * Writes are atomic per file. Errors name the file and the problem.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, saveSafetensors, type SaveFloatDType } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { entryExists, fsProblem, refuseNonFile } from '../io/fs-check.js';
import { Tensor } from '../tensor/index.js';
import { configToJson, hookLayerOf, makeSaeConfig, parseSaeConfig, type SaeConfig } from './config.js';
import { loadNpz, NpzError, type NpzReadOptions } from '../io/npz.js';
import { getArchitecture } from './registry.js';
import { refuseNonFiniteParams } from './common.js';
import { Sae } from './sae.js';
import type { SaeParams } from './types.js';
import { hookName } from '../model/hook-names.js';
import { loadPretrainedSae, type PretrainedSaeOptions } from './pretrained.js';

/** SAELens's config file name. */
export const SAE_CFG_FILENAME = 'cfg.json';
/** SAELens's weights file name. */
export const SAE_WEIGHTS_FILENAME = 'sae_weights.safetensors';
/** SAELens's feature-density file name (`sparsity` [d_sae], log10 density). */
export const SPARSITY_FILENAME = 'sparsity.safetensors';

/** The float dtypes cfg.json's `dtype` may name (with or without 'torch.'). */
const SAVE_DTYPES: Record<string, SaveFloatDType> = { float32: 'float32', float16: 'float16', bfloat16: 'bfloat16', float64: 'float64' };

/** Float tensors as float32 (the dtype SAEs compute in); others unchanged. */
function asFloat32(t: Tensor): Tensor {
  return t.dtype === 'float64' ? t.cast('float32') : t;
}

/**
 * Loads an SAE saved in SAELens's layout from `dir` (cfg.json, sae_weights.safetensors and, when
 * present, sparsity.safetensors). The architecture must be registered (the error lists those that
 * are); every parameter's shape is checked against d_in / d_sae (/ d_out). Weights stored as
 * float16 / bfloat16 / float64 compute as float32; cfg.dtype is kept for saving.
 */
export function loadSae(dir: string): Sae;
/**
 * A pretrained SAE by release name and SAE id (`loadSae('gpt2-small-res-jb',
 * 'blocks.8.hook_resid_pre')`), resolved through the releases files and downloaded from the Hub
 * (see pretrained.ts, `loadPretrainedSae`).
 */
export function loadSae(release: string, saeId: string, options?: PretrainedSaeOptions): Promise<Sae>;
export function loadSae(dir: string, saeId?: string, options?: PretrainedSaeOptions): Sae | Promise<Sae> {
  if (saeId !== undefined) return loadPretrainedSae(dir, saeId, options).then((p) => p.sae);
  const { cfgPath, weightsPath, raw } = readSavedDir(
    dir,
    { cfg: SAE_CFG_FILENAME, weights: SAE_WEIGHTS_FILENAME },
    'an SAELens SAE directory',
  );
  const cfg = parseSaeConfig(raw, cfgPath);
  const arch = getArchitecture(cfg.architecture, cfgPath);
  requireFile(weightsPath, `the weights of the SAE in ${dir}`);
  const tensors = loadSafetensors(weightsPath);
  const params: SaeParams = {};
  for (const [k, t] of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64')
      throw new Error(
        `${weightsPath}: tensor '${k}' is ${t.dtype}; glassbox reads SAE weights stored as floating point (cfg.json dtype ${cfg.dtype})`,
      );
    params[k] = asFloat32(t);
  }
  // SAELens < 6 trained JumpReLU thresholds as log_threshold.
  if (!params.threshold && params.log_threshold && 'threshold' in arch.paramShapes(cfg)) {
    params.threshold = params.log_threshold.exp();
    delete params.log_threshold;
  }
  let sparsity: Tensor | null = null;
  const sparsityPath = join(dir, SPARSITY_FILENAME);
  if (existsSync(sparsityPath)) {
    const s = loadSafetensors(sparsityPath);
    const t = s.get('sparsity');
    if (!t) throw new Error(`${sparsityPath}: no tensor named 'sparsity' (present: ${[...s.keys()].join(', ') || 'none'})`);
    if (t.rank !== 1 || t.shape[0] !== cfg.d_sae)
      throw new Error(`${sparsityPath}: 'sparsity' has shape [${t.shape.join(', ')}] but d_sae is ${cfg.d_sae} (${cfgPath})`);
    sparsity = asFloat32(t);
  }
  const sae = new Sae(cfg, params, { sparsity, where: `${weightsPath} (with ${cfgPath})` });
  refuseNonFiniteParams(sae.params, weightsPath);
  return sae;
}

/** Options of `saveSae`. */
export interface SaveSaeOptions {
  /** Storage dtype of the weights (default: cfg.dtype when it names a float dtype, else float32). */
  dtype?: SaveFloatDType;
}

/**
 * Saves `sae` to `dir` in SAELens's layout (creating the directory): sae_weights.safetensors (its
 * parameters and any extra tensors it was loaded with), sparsity.safetensors when it has a
 * sparsity vector, then cfg.json. Each file is written atomically.
 */
export function saveSae(sae: Sae, dir: string, options: SaveSaeOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const dtype = options.dtype ?? SAVE_DTYPES[sae.cfg.dtype.replace(/^torch\./, '')] ?? 'float32';
  saveSafetensors(join(dir, SAE_WEIGHTS_FILENAME), { ...sae.extraTensors, ...sae.params }, { dtype });
  if (sae.sparsity) saveSafetensors(join(dir, SPARSITY_FILENAME), { sparsity: sae.sparsity });
  const cfg: SaeConfig = { ...sae.cfg, dtype: options.dtype ?? sae.cfg.dtype };
  writeFileAtomic(join(dir, SAE_CFG_FILENAME), `${JSON.stringify(configToJson(cfg), null, 2)}\n`);
}

/** Options of `loadGemmaScopeSae`. */
export interface GemmaScopeOptions extends NpzReadOptions {
  /** Overrides of the config inferred from the path (hook_name, model_name, ...). */
  config?: Partial<SaeConfig>;
}

/**
 * Loads a Gemma Scope SAE from its `params.npz` (or a directory holding one) as a JumpReLU SAE:
 * W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], threshold [d_sae];
 * apply_b_dec_to_input false. The hook point and model come from the path when it follows Gemma
 * Scope's layout (`gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82/params.npz`: res ->
 * blocks.12.hook_resid_post, mlp -> hook_mlp_out, att -> attn.hook_z; `transcoders` -> a
 * jumprelu_transcoder from ln2.hook_normalized to hook_mlp_out); `options.config` overrides.
 */
export function loadGemmaScopeSae(path: string, options: GemmaScopeOptions = {}): Sae {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'params.npz') : path;
  const names = ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'];
  const arrays = loadNpz(file, names, options);
  const params: SaeParams = {};
  for (const n of names) params[n] = arrays.get(n)!.cast('float32');
  const W_enc = params.W_enc!;
  const W_dec = params.W_dec!;
  if (W_enc.rank !== 2 || W_dec.rank !== 2)
    throw new NpzError(file, `W_enc [${W_enc.shape}] and W_dec [${W_dec.shape}] must be matrices [d_in, d_sae] and [d_sae, d_out]`);
  const inferred = gemmaScopeConfigFromPath(file);
  const transcoder = inferred.architecture === 'jumprelu_transcoder' || W_dec.shape[1] !== W_enc.shape[0];
  const cfg = makeSaeConfig({
    architecture: transcoder ? 'jumprelu_transcoder' : 'jumprelu',
    d_in: W_enc.shape[0]!,
    d_sae: W_enc.shape[1]!,
    ...(transcoder ? { d_out: W_dec.shape[1]! } : {}),
    apply_b_dec_to_input: false,
    normalize_activations: 'none',
    context_size: 1024,
    dataset_path: 'monology/pile-uncopyrighted',
    ...inferred,
    ...(transcoder ? { architecture: 'jumprelu_transcoder' } : {}),
    ...options.config,
  });
  refuseNonFiniteParams(params, file);
  return new Sae(cfg, params, { where: file });
}

/** What a Gemma Scope path says about the SAE: hook point(s), layer, model. */
function gemmaScopeConfigFromPath(file: string): Partial<SaeConfig> {
  const out: Partial<SaeConfig> = {};
  const layer = /layer_(\d+)/.exec(file);
  const release = /gemma-scope-(2b|9b|27b)-(pt|it)-(res|mlp|att|transcoders)/.exec(file);
  if (release) out.model_name = `gemma-2-${release[1]}${release[2] === 'it' ? '-it' : ''}`;
  if (layer) {
    const L = Number(layer[1]);
    const site = release?.[3] ?? 'res';
    if (site === 'transcoders') {
      out.architecture = 'jumprelu_transcoder';
      out.hook_name = `blocks.${L}.ln2.hook_normalized`;
      out.hook_name_out = hookName('mlp_out', L);
      out.hook_layer_out = L;
    } else {
      out.hook_name = site === 'mlp' ? hookName('mlp_out', L) : site === 'att' ? hookName('z', L) : hookName('resid_post', L);
      if (site === 'att') out.reshape_activations = 'hook_z';
    }
    out.hook_layer = hookLayerOf(out.hook_name);
  }
  return out;
}

/**
 * @internal The parsed JSON file at `path`, for the directories sae reads (an SAE, a feature
 * store, an activation cache): a missing file is the error `<path>: <missing>`, one that cannot be
 * read or parsed `<path>: <unreadable> (<why>)`.
 */
export function readJsonFile(path: string, errors: { missing: string; unreadable: string }): unknown {
  // A link loop or a dangling link is there, but unreadable: say so rather than "missing".
  if (!entryExists(path)) throw new Error(`${path}: ${errors.missing}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: ${fsProblem(e)}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: ${errors.unreadable} (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}

/**
 * @internal A saved directory's config and tensors file (an SAE's cfg.json and
 * sae_weights.safetensors, a transcoder set's): their paths and the parsed config
 * (`readJsonFile`). `kind` names the directory in the error of a missing config ("an SAELens SAE
 * directory holds cfg.json and ...").
 */
export function readSavedDir(
  dir: string,
  files: { cfg: string; weights: string },
  kind: string,
): { cfgPath: string; weightsPath: string; raw: unknown } {
  const cfgPath = join(dir, files.cfg);
  const raw = readJsonFile(cfgPath, {
    missing: `not found (${kind} holds ${files.cfg} and ${files.weights})`,
    unreadable: 'cannot read the config',
  });
  return { cfgPath, weightsPath: join(dir, files.weights), raw };
}

/** @internal Refuses a file that is not there (`what` says whose it is: "the weights of the SAE in DIR") or is not a plain file. */
export function requireFile(path: string, what: string): void {
  if (!entryExists(path)) throw new Error(`${path}: not found (${what})`);
  refuseNonFile(path);
}
