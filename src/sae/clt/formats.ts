/**
 * Transcoder sets on disk.
 *
 * glassbox's own layout, SAELens-style, a directory of:
 * - `cfg.json`: `{ "architecture": "clt", ...CltConfig, "dtype": "float32" }` (written last, so a
 *   directory with a cfg.json is complete);
 * - `sae_weights.safetensors`: the parameters by the names of transcoder.ts (`W_enc.{l}`
 *   [d_in, widths[l]], `W_dec.{s}` [widths[s], n_targets(s), d_out], ...);
 * - `sparsity.safetensors` (optional): `sparsity.{l}` [widths[l]], log10 firing densities.
 *
 * circuit-tracer's transcoder sets (its `configs/*.yaml`): a YAML file naming the model, the
 * input and output hooks as TransformerLens suffixes (`ln2.hook_normalized`, `hook_resid_mid`;
 * `hook_mlp_out` or circuit-tracer's `mlp.hook_out`), and per layer `{ id, layer, filepath }`
 * where each file is either
 * - Gemma Scope's `params.npz` (a JumpReLU transcoder): W_enc [d_in, w], W_dec [w, d_out],
 *   b_enc [w], b_dec [d_out], threshold [w]; or
 * - circuit-tracer's ReLU safetensors: W_enc stored [w, d_in] and W_dec stored [d_out, w]
 *   (transposed on load, as circuit-tracer's `load_relu_transcoder` does), b_enc [w],
 *   b_dec [d_out], optional W_skip [d_out, d_in] (applied as x W_skip^T); `log_thresholds` is
 *   refused (that loader has no thresholds).
 * The set loads as a per-layer `CrossLayerTranscoder` (cross_layer false).
 *
 * Every field and tensor is checked on load; errors name the file, the field and the problem.
 * Writes are atomic per file.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { load as loadYaml } from 'js-yaml';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { zeros, type Tensor } from '../../tensor/index.js';
import { hookName } from '../../model/hook-names.js';
import { loadNpz } from '../../io/npz.js';
import { readSavedDir, requireFile } from '../formats.js';
import { CrossLayerTranscoder, checkCltConfig, type CltConfig, type CltParams } from './transcoder.js';
import type { TracingActivation } from './types.js';

/** cfg.json's name. */
export const CLT_CFG_FILENAME = 'cfg.json';
/** The weights' file name (SAELens's). */
export const CLT_WEIGHTS_FILENAME = 'sae_weights.safetensors';
/** Per-layer log10 firing densities. */
export const CLT_SPARSITY_FILENAME = 'sparsity.safetensors';
/** cfg.json's `architecture` for a transcoder set saved by `saveClt`. */
export const CLT_ARCHITECTURE = 'clt';

/**
 * Saves `clt` into `dir` (created): weights, sparsity when known, then cfg.json; each file atomic.
 */
export function saveClt(clt: CrossLayerTranscoder, dir: string): void {
  mkdirSync(dir, { recursive: true });
  saveSafetensors(join(dir, CLT_WEIGHTS_FILENAME), clt.params, { dtype: 'float32' });
  if (clt.sparsity) saveSafetensors(join(dir, CLT_SPARSITY_FILENAME), Object.fromEntries(clt.sparsity.map((t, l) => [`sparsity.${l}`, t])));
  const cfg = { architecture: CLT_ARCHITECTURE, ...clt.cfg, dtype: 'float32' };
  writeFileAtomic(join(dir, CLT_CFG_FILENAME), `${JSON.stringify(cfg, null, 2)}\n`);
}

const KNOWN_FIELDS = new Set([
  'architecture',
  'dtype',
  'n_layers',
  'd_in',
  'd_out',
  'widths',
  'activation',
  'k',
  'cross_layer',
  'skip',
  'hook_names_in',
  'hook_names_out',
  'model_name',
  'dataset_path',
  'context_size',
  'prepend_bos',
]);

/** cfg.json's contents as a CltConfig, every field checked (errors name `file` and the field). */
export function parseCltConfig(raw: unknown, file: string): CltConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: the config must be a JSON object`);
  const r = raw as Record<string, unknown>;
  if (r.architecture !== CLT_ARCHITECTURE)
    throw new Error(
      `${file}: field 'architecture' must be '${CLT_ARCHITECTURE}', got ${JSON.stringify(r.architecture)}${typeof r.architecture === 'string' ? ' (an SAE or single transcoder loads with loadSae)' : ''}`,
    );
  if (r.dtype !== undefined && !['float32', 'torch.float32', 'float16', 'bfloat16', 'float64'].includes(r.dtype as string))
    throw new Error(`${file}: field 'dtype' must name a float dtype, got ${JSON.stringify(r.dtype)}`);
  const unknown = Object.keys(r).filter((k) => !KNOWN_FIELDS.has(k));
  if (unknown.length) throw new Error(`${file}: unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}`);
  for (const field of ['model_name', 'dataset_path'] as const)
    if (r[field] !== undefined && r[field] !== null && typeof r[field] !== 'string')
      throw new Error(`${file}: field '${field}' must be a string or null, got ${JSON.stringify(r[field])}`);
  if (r.context_size !== undefined && r.context_size !== null && !(Number.isInteger(r.context_size) && (r.context_size as number) > 0))
    throw new Error(`${file}: field 'context_size' must be a positive integer or null, got ${JSON.stringify(r.context_size)}`);
  if (r.prepend_bos !== undefined && typeof r.prepend_bos !== 'boolean')
    throw new Error(`${file}: field 'prepend_bos' must be true or false, got ${JSON.stringify(r.prepend_bos)}`);
  if (r.activation !== 'topk' && r.k !== undefined)
    throw new Error(`${file}: field 'k' is set but activation is ${JSON.stringify(r.activation)}, not 'topk'`);
  const { architecture: _a, dtype: _d, ...cfg } = r;
  return cfg as unknown as CltConfig;
}

/**
 * Loads a set saved by `saveClt`: cfg.json (every field checked), the weights (each present, of
 * its shape, no others), and sparsity.safetensors when present. Half-precision weights widen to
 * float32.
 */
export function loadClt(dir: string): CrossLayerTranscoder {
  const { cfgPath, weightsPath, raw } = readSavedDir(
    dir,
    { cfg: CLT_CFG_FILENAME, weights: CLT_WEIGHTS_FILENAME },
    'a transcoder set directory',
  );
  const cfg = parseCltConfig(raw, cfgPath);
  requireFile(weightsPath, `the weights of the transcoder set in ${dir}`);
  const params: CltParams = {};
  for (const [k, t] of loadSafetensors(weightsPath)) params[k] = t.dtype === 'float32' ? t : t.cast('float32');
  // The config is checked first, naming cfg.json; then the tensors, naming the weights file.
  checkCltConfig(cfg, cfgPath);
  let sparsity: Tensor[] | null = null;
  const sparsityPath = join(dir, CLT_SPARSITY_FILENAME);
  if (existsSync(sparsityPath)) {
    const s = loadSafetensors(sparsityPath);
    sparsity = cfg.widths.map((w, l) => {
      const t = s.get(`sparsity.${l}`);
      if (!t) throw new Error(`${sparsityPath}: no tensor named 'sparsity.${l}'`);
      if (t.rank !== 1 || t.shape[0] !== w)
        throw new Error(`${sparsityPath}: 'sparsity.${l}' has shape [${t.shape.join(', ')}], expected [${w}]`);
      return t.cast('float32');
    });
  }
  return new CrossLayerTranscoder(cfg, params, { where: `${weightsPath} (with ${cfgPath})`, sparsity });
}

/** One per-layer transcoder as loaded from a file: W_enc [d_in, w], W_dec [w, d_out], ... */
export interface SingleTranscoderParams {
  activation: TracingActivation;
  W_enc: Tensor;
  b_enc: Tensor;
  W_dec: Tensor;
  b_dec: Tensor;
  threshold: Tensor | null;
  W_skip: Tensor | null;
}

function checkShape(file: string, name: string, t: Tensor, shape: readonly number[], what: string): void {
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new Error(`${file}: '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] (${what})`);
}

/**
 * Gemma Scope's transcoder `params.npz`: W_enc [d_in, w], W_dec [w, d_out], b_enc [w],
 * b_dec [d_out], threshold [w] (JumpReLU).
 */
export function loadGemmaScopeTranscoder(file: string): SingleTranscoderParams {
  const a = loadNpz(file, ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold']);
  const get = (n: string): Tensor => a.get(n)!.cast('float32');
  const W_enc = get('W_enc');
  if (W_enc.rank !== 2) throw new Error(`${file}: 'W_enc' has shape [${W_enc.shape.join(', ')}], expected a matrix [d_in, d_sae]`);
  const [dIn, w] = W_enc.shape as [number, number];
  const W_dec = get('W_dec');
  if (W_dec.rank !== 2 || W_dec.shape[0] !== w)
    throw new Error(`${file}: 'W_dec' has shape [${W_dec.shape.join(', ')}], expected [${w}, d_out] (d_sae ${w} from W_enc)`);
  const dOut = W_dec.shape[1]!;
  const out = { W_enc, W_dec, b_enc: get('b_enc'), b_dec: get('b_dec'), threshold: get('threshold') };
  checkShape(file, 'b_enc', out.b_enc, [w], `d_sae ${w} from W_enc [d_in ${dIn}, d_sae]`);
  checkShape(file, 'b_dec', out.b_dec, [dOut], `d_out ${dOut} from W_dec`);
  checkShape(file, 'threshold', out.threshold, [w], `d_sae ${w} from W_enc`);
  return { activation: 'jumprelu', ...out, W_skip: null };
}

/**
 * circuit-tracer's ReLU transcoder safetensors: W_enc stored [w, d_in] and W_dec stored
 * [d_out, w] (both transposed here), b_enc [w], b_dec [d_out], optional W_skip [d_out, d_in].
 */
export function loadReluTranscoder(file: string): SingleTranscoderParams {
  const t = loadSafetensors(file);
  const names = [...t.keys()];
  if (t.has('log_thresholds') || t.has('threshold'))
    throw new Error(
      `${file}: holds '${t.has('threshold') ? 'threshold' : 'log_thresholds'}', but circuit-tracer's ReLU layout has no thresholds`,
    );
  const get = (n: string): Tensor => {
    const v = t.get(n);
    if (!v) throw new Error(`${file}: no tensor named '${n}' (present: ${names.join(', ') || 'none'})`);
    return v.cast('float32');
  };
  const encStored = get('W_enc');
  if (encStored.rank !== 2) throw new Error(`${file}: 'W_enc' has shape [${encStored.shape.join(', ')}], expected [d_sae, d_in]`);
  const [w, dIn] = encStored.shape as [number, number];
  const decStored = get('W_dec');
  if (decStored.rank !== 2 || decStored.shape[1] !== w)
    throw new Error(
      `${file}: 'W_dec' has shape [${decStored.shape.join(', ')}], expected [d_out, ${w}] (d_sae ${w} from W_enc [d_sae, d_in])`,
    );
  const dOut = decStored.shape[0]!;
  const b_enc = get('b_enc');
  const b_dec = get('b_dec');
  checkShape(file, 'b_enc', b_enc, [w], `d_sae ${w} from W_enc`);
  checkShape(file, 'b_dec', b_dec, [dOut], `d_out ${dOut} from W_dec`);
  let W_skip: Tensor | null = null;
  if (t.has('W_skip')) {
    W_skip = get('W_skip');
    checkShape(file, 'W_skip', W_skip, [dOut, dIn], 'd_out x d_in');
  }
  const extra = names.filter((n) => !['W_enc', 'W_dec', 'b_enc', 'b_dec', 'W_skip'].includes(n));
  if (extra.length) throw new Error(`${file}: unexpected tensor(s) ${extra.map((n) => `'${n}'`).join(', ')} in a ReLU transcoder`);
  return {
    activation: 'relu',
    W_enc: encStored.transpose().cast('float32'),
    W_dec: decStored.transpose().cast('float32'),
    b_enc,
    b_dec,
    threshold: null,
    W_skip,
  };
}

/**
 * Per-layer transcoders as one set (cross_layer false): layer l's parameters from `layers[l]`; all
 * of one activation and the same widths in and out; a layer without a skip path gets zeros when
 * another has one. `hooksIn` / `hooksOut` name each layer's hooks; errors name `where[l]`.
 */
export function perLayerSet(
  layers: readonly SingleTranscoderParams[],
  hooksIn: readonly string[],
  hooksOut: readonly string[],
  where: readonly string[],
  meta: { model_name?: string | null } = {},
): CrossLayerTranscoder {
  const first = layers[0]!;
  const dIn = first.W_enc.shape[0]!;
  const dOut = first.W_dec.shape[1]!;
  const skip = layers.some((t) => t.W_skip);
  layers.forEach((t, l) => {
    if (t.activation !== first.activation)
      throw new Error(
        `${where[l]}: a ${t.activation} transcoder in a set of ${first.activation} ones (${where[0]}); one set has one activation`,
      );
    if (t.W_enc.shape[0] !== dIn) throw new Error(`${where[l]}: d_in is ${t.W_enc.shape[0]}, but ${where[0]} has ${dIn}`);
    if (t.W_dec.shape[1] !== dOut) throw new Error(`${where[l]}: d_out is ${t.W_dec.shape[1]}, but ${where[0]} has ${dOut}`);
  });
  const cfg: CltConfig = {
    n_layers: layers.length,
    d_in: dIn,
    d_out: dOut,
    widths: layers.map((t) => t.W_enc.shape[1]!),
    activation: first.activation,
    cross_layer: false,
    skip,
    hook_names_in: [...hooksIn],
    hook_names_out: [...hooksOut],
    model_name: meta.model_name ?? null,
  };
  const params: CltParams = {};
  layers.forEach((t, l) => {
    const w = t.W_enc.shape[1]!;
    params[`W_enc.${l}`] = t.W_enc;
    params[`b_enc.${l}`] = t.b_enc;
    if (t.threshold) params[`threshold.${l}`] = t.threshold;
    params[`W_dec.${l}`] = t.W_dec.reshape([w, 1, dOut]);
    params[`b_dec.${l}`] = t.b_dec;
    if (skip) params[`W_skip.${l}`] = t.W_skip ?? zeros([dOut, dIn]);
  });
  return new CrossLayerTranscoder(cfg, params, { where: where.join(', ') });
}

/** A TransformerLens hook suffix from circuit-tracer's config as the full hook name of layer l. */
export function layerHook(suffix: string, layer: number): string {
  if (suffix === 'mlp.hook_out' || suffix === 'hook_mlp_out') return hookName('mlp_out', layer);
  return `blocks.${layer}.${suffix}`;
}

/** The YAML text of `file`, parsed (js-yaml, as the SAE releases files are). */
function parseYaml(text: string, file: string): unknown {
  try {
    return loadYaml(text);
  } catch (e) {
    throw new Error(`${file}: not valid YAML (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`, { cause: e });
  }
}

/** Options of `loadTranscoderSetYaml`. */
export interface TranscoderYamlOptions {
  /** Hook names to check the config's hooks against (a model's `hookNames`): a hook the model lacks is refused. */
  hookNames?: readonly string[];
}

/**
 * A circuit-tracer transcoder set from its YAML config (see the file comment). Relative file
 * paths resolve against the YAML's directory; `hf://` paths are refused (download the files and
 * list local paths: glassbox reads only what is on disk here). The layers must be 0..n-1, each
 * once. Files ending in .npz load as Gemma Scope transcoders, .safetensors as ReLU transcoders.
 */
export function loadTranscoderSetYaml(file: string, options: TranscoderYamlOptions = {}): CrossLayerTranscoder {
  if (!existsSync(file)) throw new Error(`${file}: not found (a circuit-tracer transcoder config, YAML)`);
  const raw = parseYaml(readFileSync(file, 'utf8'), file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: the config must be a YAML mapping`);
  const r = raw as Record<string, unknown>;
  for (const field of ['feature_input_hook', 'feature_output_hook'])
    if (typeof r[field] !== 'string' || r[field] === '')
      throw new Error(
        `${file}: field '${field}' must be a hook name suffix such as 'ln2.hook_normalized', got ${JSON.stringify(r[field])}`,
      );
  if (r.model_name !== undefined && typeof r.model_name !== 'string')
    throw new Error(`${file}: field 'model_name' must be a string, got ${JSON.stringify(r.model_name)}`);
  if (!Array.isArray(r.transcoders) || r.transcoders.length === 0)
    throw new Error(`${file}: field 'transcoders' must be a non-empty list of { id, layer, filepath }`);
  const entries = (r.transcoders as unknown[]).map((e, i) => {
    const at = `${file}: transcoders[${i}]`;
    if (typeof e !== 'object' || e === null) throw new Error(`${at} must be a mapping { id, layer, filepath }`);
    const t = e as Record<string, unknown>;
    if (!(Number.isInteger(t.layer) && (t.layer as number) >= 0))
      throw new Error(`${at}: field 'layer' must be an integer >= 0, got ${JSON.stringify(t.layer)}`);
    if (typeof t.filepath !== 'string' || t.filepath === '')
      throw new Error(`${at}: field 'filepath' must be a path, got ${JSON.stringify(t.filepath)}`);
    if (t.id !== undefined && typeof t.id !== 'string') throw new Error(`${at}: field 'id' must be a string, got ${JSON.stringify(t.id)}`);
    if (t.filepath.startsWith('hf://'))
      throw new Error(`${at}: field 'filepath' is a Hub URI (${t.filepath}); download the file and list its local path`);
    return { layer: t.layer as number, path: isAbsolute(t.filepath) ? t.filepath : resolve(dirname(file), t.filepath), at };
  });
  entries.sort((a, b) => a.layer - b.layer);
  entries.forEach((e, i) => {
    if (e.layer !== i)
      throw new Error(
        `${e.at}: field 'layer' is ${e.layer}, but the layers must be 0..${entries.length - 1}, each once (${entries[i - 1]?.layer === e.layer ? `layer ${e.layer} is listed twice` : `layer ${i} is missing`})`,
      );
  });
  const layers = entries.map((e) => {
    if (!existsSync(e.path)) throw new Error(`${e.at}: field 'filepath': ${e.path} not found`);
    if (e.path.endsWith('.npz')) return loadGemmaScopeTranscoder(e.path);
    if (e.path.endsWith('.safetensors')) return loadReluTranscoder(e.path);
    throw new Error(`${e.at}: field 'filepath': ${e.path} is neither a Gemma Scope params.npz nor a ReLU .safetensors`);
  });
  const hooksIn = entries.map((e) => layerHook(r.feature_input_hook as string, e.layer));
  const hooksOut = entries.map((e) => layerHook(r.feature_output_hook as string, e.layer));
  if (options.hookNames)
    for (const [field, hooks] of [
      ['feature_input_hook', hooksIn],
      ['feature_output_hook', hooksOut],
    ] as const)
      for (const h of hooks)
        if (!options.hookNames.includes(h))
          throw new Error(`${file}: field '${field}' gives '${h}', which is not a hook point of the model`);
  return perLayerSet(
    layers,
    hooksIn,
    hooksOut,
    entries.map((e) => e.path),
    { model_name: (r.model_name as string | undefined) ?? null },
  );
}
