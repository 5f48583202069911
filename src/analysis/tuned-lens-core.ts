/**
 * The tuned lens's parts that need no file system, so they also run in the static workbench's
 * Web Worker: the lens's types, its translators, the check against a model, and reading a lens
 * from its two files' contents (`config.json` and `params.safetensors`, the `tuned-lens` library's
 * layout) or from a URL prefix. Training, saving and loading from a directory are tuned-lens.ts.
 */
import type { Tensor } from '../tensor/index.js';
import { zeros } from '../tensor/index.js';
import type { HookedTransformer } from '../model/hooked.js';
import { parseJsonObject } from '../io/json.js';
import { readSafetensorsBytes } from '../io/safetensors-bytes.js';

/** One layer's translator: h [..., d_model] -> h + h @ W + b. */
export interface TunedLensTranslator {
  /** [d_model, d_model], applied as h @ W (the transpose of PyTorch's `nn.Linear.weight`). */
  W: Tensor;
  /** [d_model]. */
  b: Tensor;
}

/** A tuned lens: one translator per layer, read at `blocks.{l}.hook_resid_pre`. */
export interface TunedLens {
  dModel: number;
  nLayers: number;
  /** translators[l] reads blocks.{l}.hook_resid_pre; length n_layers. */
  translators: TunedLensTranslator[];
}

/** h + h @ W + b: [..., d_model] -> [..., d_model]. */
export function translate(t: TunedLensTranslator, h: Tensor): Tensor {
  return h.add(h.matmul(t.W).add(t.b));
}

/** Throws, naming `what`, unless the lens has the model's d_model and one translator per layer. */
export function checkTunedLens(model: Pick<HookedTransformer, 'cfg'>, lens: TunedLens, what: string): void {
  const { dModel: d, nLayers: n } = model.cfg;
  if (lens.dModel !== d || lens.nLayers !== n || lens.translators.length !== n)
    throw new Error(
      `${what}: the lens is for d_model ${lens.dModel} and ${lens.nLayers} layers (${lens.translators.length} translators), the model has d_model ${d} and ${n} layers`,
    );
}

/** The files of a tuned lens directory. */
export const TUNED_LENS_CONFIG = 'config.json';
export const TUNED_LENS_PARAMS = 'params.safetensors';

/**
 * What a lens's `unembed_sha256` (config.json) hashes: the model's unembedding W_U, as its shape
 * and float32 values. A lens is trained for one model's weights; same-shaped other weights (the
 * default model retrained, another checkpoint) would load and read silently wrong, so a lens that
 * records the hash is refused for a model whose W_U differs. (The tuned-lens library keeps an
 * `unembed_hash` for the same reason.)
 */
export function unembedDigestBytes(model: Pick<HookedTransformer, 'params'>): Uint8Array {
  const W = model.params.unembed.W_U;
  const values = W.cast('float32').dataSync() as Float32Array;
  const header = new TextEncoder().encode(`float32[${W.shape.join(',')}]\0`);
  const out = new Uint8Array(header.length + values.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), header.length);
  return out;
}

/** SHA-256 (hex) of `unembedDigestBytes`, with the Web Crypto API (browsers and Node alike). */
export async function unembedSha256(model: Pick<HookedTransformer, 'params'>): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', unembedDigestBytes(model));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A lens from its config (the parsed `config.json`) and its tensors (`params.safetensors`:
 * `{l}.weight` [d_model, d_model] as PyTorch's out x in, `{l}.bias` [d_model]), checked against
 * `model`; every error names the file (`where`) and the field or tensor that does not fit. With
 * `unembedSha256` (the model's, see `unembedDigestBytes`), a config that records another is refused.
 */
export function tunedLensFromParts(
  cfg: Record<string, unknown>,
  tensors: ReadonlyMap<string, Tensor>,
  model: Pick<HookedTransformer, 'cfg'>,
  where: { config: string; params: string },
  unembedSha256?: string,
): TunedLens {
  const { dModel: d, nLayers: n } = model.cfg;
  const cfgPath = where.config;
  const paramsPath = where.params;
  const recorded = cfg.unembed_sha256;
  if (recorded !== undefined && recorded !== null && typeof recorded !== 'string')
    throw new Error(`${cfgPath}: unembed_sha256 is ${JSON.stringify(recorded)}, expected a hex SHA-256 string`);
  if (typeof recorded === 'string' && unembedSha256 !== undefined && recorded !== unembedSha256)
    throw new Error(
      `${cfgPath}: unembed_sha256 is ${recorded.slice(0, 12)}…, the model's unembedding hashes to ${unembedSha256.slice(0, 12)}…: the lens was trained on other weights (train one for this model with \`glassbox tuned-lens train\`)`,
    );
  if (cfg.lens_type !== undefined && cfg.lens_type !== 'linear_tuned_lens')
    throw new Error(`${cfgPath}: lens_type '${String(cfg.lens_type)}' is not a linear tuned lens`);
  if (cfg.d_model !== d) throw new Error(`${cfgPath}: d_model is ${JSON.stringify(cfg.d_model)}, the model has d_model ${d}`);
  if (cfg.num_hidden_layers !== n)
    throw new Error(`${cfgPath}: num_hidden_layers is ${JSON.stringify(cfg.num_hidden_layers)}, the model has ${n} layers`);
  if (cfg.bias !== undefined && typeof cfg.bias !== 'boolean')
    throw new Error(`${cfgPath}: bias is ${JSON.stringify(cfg.bias)}, expected true or false`);
  const bias = cfg.bias !== false;
  const get = (name: string, shape: number[]): Tensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${paramsPath}: tensor '${name}' is missing (expected ${n} translators for d_model ${d})`);
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i]))
      throw new Error(`${paramsPath}: tensor '${name}' has shape [${t.shape}], expected [${shape}] (d_model ${d})`);
    return t.cast('float32');
  };
  const extra = [...tensors.keys()].filter((k) => {
    const m = /^(\d+)\.(weight|bias)$/.exec(k);
    return !m || Number(m[1]) >= n || (!bias && m[2] === 'bias');
  });
  if (extra.length)
    throw new Error(
      `${paramsPath}: unexpected tensors ${extra.map((k) => `'${k}'`).join(', ')} for a model of ${n} layers${bias ? '' : ' (config.json says bias: false)'}`,
    );
  return {
    dModel: d,
    nLayers: n,
    translators: Array.from({ length: n }, (_, l) => ({
      W: get(`${l}.weight`, [d, d]).transpose(),
      b: bias ? get(`${l}.bias`, [d]) : zeros([d]),
    })),
  };
}

/**
 * The lens under a URL prefix (`base` ends with '/'; e.g. the model folder's `tuned-lens/`), read
 * with `fetch`, checked against `model`; null when `base` has no `config.json` (a 404), or when
 * the lens records its model's unembedding and the page has no Web Crypto to check it.
 */
export async function fetchTunedLens(
  base: string,
  model: Pick<HookedTransformer, 'cfg' | 'params'>,
  init: RequestInit = {},
): Promise<TunedLens | null> {
  const where = { config: `${base}${TUNED_LENS_CONFIG}`, params: `${base}${TUNED_LENS_PARAMS}` };
  const cfgRes = await fetch(where.config, init);
  if (cfgRes.status === 404) return null;
  if (!cfgRes.ok) throw new Error(`${where.config}: HTTP ${cfgRes.status}`);
  const cfg = parseJsonObject(await cfgRes.text(), where.config);
  const paramsRes = await fetch(where.params, init);
  if (!paramsRes.ok) throw new Error(`${where.params}: HTTP ${paramsRes.status}`);
  const tensors = readSafetensorsBytes(new Uint8Array(await paramsRes.arrayBuffer()), where.params);
  // Web Crypto exists only in secure contexts (https, localhost): elsewhere a lens that records its
  // model cannot be checked, so it is not loaded (the Logit lens view says no tuned lens is loaded).
  if (typeof cfg.unembed_sha256 === 'string' && !globalThis.crypto?.subtle) return null;
  const digest = typeof cfg.unembed_sha256 === 'string' ? await unembedSha256(model) : undefined;
  return tunedLensFromParts(cfg, tensors, model, where, digest);
}
