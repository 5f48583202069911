/**
 * Pretrained dictionaries by name: `loadSae('gemma-scope-2b-pt-res-canonical',
 * 'layer_12/width_16k/canonical')` or `--sae RELEASE/SAE_ID` on the command line.
 *
 * Names resolve through releases files in SAELens's `pretrained_saes.yaml` format: a YAML map from
 * release name to
 *
 *   repo_id: org/name            the Hugging Face repository
 *   model: gemma-2-2b            the model the SAEs were trained on (recorded as cfg.model_name)
 *   conversion_func: gemma_2     how the files are laid out (below); null or absent: SAELens layout
 *   config_overrides: {...}      cfg.json fields set on every SAE of the release (optional)
 *   saes:
 *     - id: layer_12/width_16k/canonical     the name users ask for
 *       path: layer_12/width_16k/average_l0_82   the folder in the repository
 *       l0: 82                   (optional) neuronpedia: gemma-2-2b/12-gemmascope-res-16k
 *       norm_scaling_factor: 1.5 (optional) SAELens's input scale for expected_average_only_in
 *
 * (SAELens's older files wrap the map in `SAE_LOOKUP:`; both read.) The layouts read:
 * - `null` / `sae_lens`: `{path}/cfg.json`, `{path}/sae_weights.safetensors` and, when the repo has
 *   it, `{path}/sparsity.safetensors`;
 * - `gemma_2` (Gemma Scope): `{path}/params.npz`, a JumpReLU SAE (see `loadGemmaScopeSae`);
 * - `llama_scope`: `{path}/hyperparams.json` and `{path}/checkpoints/final.safetensors`
 *   (encoder.weight [d_sae, d_in], encoder.bias [d_sae], decoder.weight [d_in, d_sae],
 *   decoder.bias [d_in]): a JumpReLU SAE with one threshold for every feature, whose input is
 *   scaled by sqrt(d_in) / dataset_average_activation_norm.in.
 *
 * Where releases come from, later ones replacing earlier ones of the same name: the releases
 * glassbox ships (`BUILTIN_RELEASES_YAML`: GPT-2 small, Gemma Scope and Llama Scope residual
 * SAEs), then each file in $GLASSBOX_SAE_RELEASES (separated like PATH), then `releasesFiles`.
 *
 * Files download through the Hub client (src/io/hub): the shared Hugging Face cache, revision,
 * token, offline mode (HF_HUB_OFFLINE) and resumed downloads all work as for models.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { checkRepoPath } from '../io/hub/cache.js';
import { downloadModel, type DownloadOptions } from '../io/hub/download.js';
import { validateRepoId } from '../io/hub/env.js';
import { HubError } from '../io/hub/errors.js';
import { loadSafetensors, nearestNames } from '../io/safetensors.js';
import { full } from '../tensor/index.js';
import { configToJson, hookLayerOf, makeSaeConfig, parseSaeConfig } from './config.js';
import { loadGemmaScopeSae, loadSae, readJsonFile, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, SPARSITY_FILENAME } from './formats.js';
import { BUILTIN_RELEASES_YAML } from './pretrained-saes.js';
import { Sae } from './sae.js';

/** The environment variable naming extra releases files (separated like PATH). */
export const SAE_RELEASES_ENV = 'GLASSBOX_SAE_RELEASES';
/** How errors name the releases glassbox ships. */
export const BUILTIN_RELEASES_NAME = "glassbox's built-in releases (src/sae/pretrained-saes.ts)";

/** The conversion_func values glassbox reads (null is SAELens's layout). */
export const SUPPORTED_CONVERSIONS = ['sae_lens', 'gemma_2', 'llama_scope'] as const;

/** One SAE of a release. */
export interface SaeReleaseEntry {
  id: string;
  /** Its folder in the repository. */
  path: string;
  l0: number | null;
  /** Its Neuronpedia id ('model/source'), when it has one. */
  neuronpedia: string | null;
  norm_scaling_factor: number | null;
}

/** One release: a repository of SAEs. */
export interface SaeRelease {
  name: string;
  repo_id: string;
  model: string | null;
  /** null: SAELens's layout. */
  conversion_func: string | null;
  config_overrides: Record<string, unknown>;
  saes: SaeReleaseEntry[];
  /** The releases file it came from. */
  file: string;
}

/**
 * Parses a releases file's text (SAELens's `pretrained_saes.yaml` format). Every problem is an
 * error naming `file`, the release and the field.
 */
export function parseReleases(text: string, file: string): Map<string, SaeRelease> {
  let raw: unknown;
  try {
    raw = loadYaml(text, { filename: file });
  } catch (e) {
    throw new Error(`${file}: not valid YAML (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`, { cause: e });
  }
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (raw === null || raw === undefined) return new Map();
  if (!isMap(raw)) throw new Error(`${file}: expected a map from release name to release, got ${describeYaml(raw)}`);
  if (isMap(raw.SAE_LOOKUP)) raw = raw.SAE_LOOKUP;
  const out = new Map<string, SaeRelease>();
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const bad = (field: string, problem: string): never => {
      throw new Error(`${file}: release '${name}': '${field}' ${problem}`);
    };
    if (!isMap(value)) throw new Error(`${file}: release '${name}' must be a map (repo_id, saes, ...), got ${describeYaml(value)}`);
    if (typeof value.repo_id !== 'string') bad('repo_id', `must be a string, got ${describeYaml(value.repo_id)}`);
    const repoId = value.repo_id as string;
    try {
      validateRepoId(repoId);
    } catch (e) {
      bad('repo_id', e instanceof Error ? e.message : String(e));
    }
    const conversion = value.conversion_func ?? null;
    if (conversion !== null && typeof conversion !== 'string')
      bad('conversion_func', `must be a string or null, got ${describeYaml(conversion)}`);
    const model = value.model ?? null;
    if (model !== null && typeof model !== 'string') bad('model', `must be a string, got ${describeYaml(model)}`);
    const overrides = value.config_overrides ?? {};
    if (!isMap(overrides)) bad('config_overrides', `must be a map of cfg.json fields, got ${describeYaml(overrides)}`);
    if (!Array.isArray(value.saes)) bad('saes', `must be a list of { id, path }, got ${describeYaml(value.saes)}`);
    const saes: SaeReleaseEntry[] = [];
    const seen = new Set<string>();
    (value.saes as unknown[]).forEach((s, i) => {
      if (!isMap(s)) bad(`saes[${i}]`, `must be a map { id, path }, got ${describeYaml(s)}`);
      const e = s as Record<string, unknown>;
      if (typeof e.id !== 'string' || e.id === '') bad(`saes[${i}].id`, `must be a non-empty string, got ${describeYaml(e.id)}`);
      if (typeof e.path !== 'string') bad(`saes[${i}].path`, `must be a string, got ${describeYaml(e.path)}`);
      checkRepoPath(e.path as string, `${file}: release '${name}': saes[${i}].path`);
      const num = (k: string): number | null => {
        const v = e[k] ?? null;
        if (v !== null && (typeof v !== 'number' || !Number.isFinite(v)))
          bad(`saes[${i}].${k}`, `must be a number, got ${describeYaml(v)}`);
        return v as number | null;
      };
      const np = e.neuronpedia ?? null;
      if (np !== null && typeof np !== 'string') bad(`saes[${i}].neuronpedia`, `must be a string, got ${describeYaml(np)}`);
      if (seen.has(e.id as string)) bad(`saes[${i}].id`, `repeats the id '${String(e.id)}'`);
      seen.add(e.id as string);
      saes.push({
        id: e.id as string,
        path: e.path as string,
        l0: num('l0'),
        neuronpedia: np as string | null,
        norm_scaling_factor: num('norm_scaling_factor'),
      });
    });
    out.set(name, {
      name,
      repo_id: repoId,
      model: model as string | null,
      conversion_func: conversion as string | null,
      config_overrides: overrides as Record<string, unknown>,
      saes,
      file,
    });
  }
  return out;
}

function describeYaml(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Options naming releases files. */
export interface ReleasesOptions {
  /** Releases files read after the built-in ones and $GLASSBOX_SAE_RELEASES (later files win). */
  releasesFiles?: readonly string[];
}

/** The releases files in force, built-in first: [name, text]. */
function releaseSources(options: ReleasesOptions): string[] {
  const fromEnv = (process.env[SAE_RELEASES_ENV] ?? '').split(delimiter).filter((p) => p !== '');
  return [...fromEnv, ...(options.releasesFiles ?? [])];
}

/**
 * Every release in force: the built-in ones, then those of each file in $GLASSBOX_SAE_RELEASES,
 * then `options.releasesFiles`; a release named again replaces the earlier one whole.
 */
export function loadReleases(options: ReleasesOptions = {}): Map<string, SaeRelease> {
  const all = parseReleases(BUILTIN_RELEASES_YAML, BUILTIN_RELEASES_NAME);
  for (const file of releaseSources(options)) {
    if (!existsSync(file)) throw new Error(`${file}: releases file not found (named by ${describeOrigin(file, options)})`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`${file}: cannot read the releases file (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
    for (const [name, r] of parseReleases(text, file)) all.set(name, r);
  }
  return all;
}

function describeOrigin(file: string, options: ReleasesOptions): string {
  return options.releasesFiles?.includes(file) ? 'the releases option' : `$${SAE_RELEASES_ENV}`;
}

/** The files the releases came from, for errors. */
function sourcesText(options: ReleasesOptions): string {
  return [BUILTIN_RELEASES_NAME, ...releaseSources(options)].join(', ');
}

/**
 * The release and SAE entry `release` / `saeId` name. An unknown name is an error naming the
 * releases files searched and the closest names.
 */
export function findPretrainedSae(
  release: string,
  saeId: string,
  options: ReleasesOptions = {},
): { release: SaeRelease; entry: SaeReleaseEntry } {
  const all = loadReleases(options);
  const r = all.get(release);
  if (!r) {
    const near = nearestNames(release, all.keys());
    throw new Error(
      `${sourcesText(options)}: no release '${release}' (nearest: ${near.map((n) => `'${n}'`).join(', ')}); add your own with a releases file ($${SAE_RELEASES_ENV} or --releases)`,
    );
  }
  const entry = r.saes.find((s) => s.id === saeId);
  if (!entry) {
    const near = nearestNames(
      saeId,
      r.saes.map((s) => s.id),
    );
    throw new Error(
      `${r.file}: release '${release}' has no SAE '${saeId}' (${r.saes.length} SAEs; nearest: ${near.map((n) => `'${n}'`).join(', ')})`,
    );
  }
  return { release: r, entry };
}

/** Options of `loadPretrainedSae` / `resolveSae`: releases files and the Hub client's options. */
export interface PretrainedSaeOptions
  extends
    ReleasesOptions,
    Pick<
      DownloadOptions,
      'revision' | 'token' | 'cacheDir' | 'endpoint' | 'offline' | 'refresh' | 'onProgress' | 'progressBar' | 'retries' | 'signal'
    > {}

/** A pretrained SAE, loaded, with where it came from. */
export interface PretrainedSae {
  sae: Sae;
  /** The SAE's folder in the downloaded snapshot. */
  dir: string;
  release: SaeRelease;
  entry: SaeReleaseEntry;
}

/**
 * Downloads (or finds in the Hub cache) and loads one SAE of a release:
 * 1. find the release and the SAE entry (`findPretrainedSae`);
 * 2. download the files its conversion_func reads, into the shared Hugging Face cache;
 * 3. read them into an Sae (cfg.model_name from the release's `model` when the files do not say);
 * 4. apply the release's config_overrides and the entry's norm_scaling_factor.
 */
export async function loadPretrainedSae(release: string, saeId: string, options: PretrainedSaeOptions = {}): Promise<PretrainedSae> {
  const { release: r, entry } = findPretrainedSae(release, saeId, options);
  const conversion = r.conversion_func ?? 'sae_lens';
  if (!(SUPPORTED_CONVERSIONS as readonly string[]).includes(conversion))
    throw new Error(
      `${r.file}: release '${r.name}': conversion_func '${conversion}' is not supported (glassbox reads: null (SAELens layout), ${SUPPORTED_CONVERSIONS.slice(1).join(', ')})`,
    );
  const where = `${r.name}/${entry.id}`;
  const { releasesFiles: _files, ...hub } = options;
  const download = (files: string[]): Promise<string> => downloadModel(r.repo_id, { ...hub, files });
  const p = entry.path;
  let sae: Sae;
  let snapshot: string;
  if (conversion === 'sae_lens') {
    snapshot = await download([`${p}/${SAE_CFG_FILENAME}`, `${p}/${SAE_WEIGHTS_FILENAME}`]);
    try {
      await download([`${p}/${SPARSITY_FILENAME}`]);
    } catch (e) {
      // sparsity.safetensors is optional: absent from the repo, or (offline) never downloaded
      if (!(e instanceof HubError && (e.kind === 'entry-not-found' || e.kind === 'offline'))) throw e;
    }
    sae = loadSae(join(snapshot, p));
  } else if (conversion === 'gemma_2') {
    if (/(^|\/)embedding(\/|$)/.test(p))
      throw new Error(
        `${r.file}: release '${r.name}': SAE '${entry.id}' is a Gemma Scope embedding SAE, which needs a sqrt(d_model) rescaling glassbox does not do`,
      );
    snapshot = await download([`${p}/params.npz`]);
    sae = loadGemmaScopeSae(join(snapshot, p, 'params.npz'), { config: gemmaScopeHook(r.repo_id, p) });
  } else {
    snapshot = await download([`${p}/hyperparams.json`, `${p}/checkpoints/final.safetensors`]);
    sae = loadLlamaScopeSae(join(snapshot, p));
  }
  let patch: Record<string, unknown> = {};
  if (r.model !== null && !sae.cfg.model_name) patch.model_name = r.model;
  patch = { ...patch, ...r.config_overrides };
  if (
    entry.norm_scaling_factor !== null &&
    sae.cfg.normalize_activations === 'expected_average_only_in' &&
    typeof sae.cfg.norm_scaling_factor !== 'number'
  )
    patch.norm_scaling_factor = entry.norm_scaling_factor;
  if (Object.keys(patch).length > 0) {
    const cfg = parseSaeConfig({ ...configToJson(sae.cfg), ...patch }, `${where} (with ${r.file}'s config_overrides)`);
    sae = sae.withConfig(cfg);
  }
  return { sae, dir: join(snapshot, p), release: r, entry };
}

/** Gemma Scope's hook point from its repository name (gemma-scope-2b-pt-res / -mlp / -att) and the layer in the path. */
function gemmaScopeHook(repoId: string, path: string): Record<string, unknown> {
  const layer = /layer_(\d+)/.exec(path);
  const site = /-(res|mlp|att)(?:-|$)/.exec(repoId.split('/').pop() ?? '');
  if (!layer || !site) return {};
  const L = Number(layer[1]);
  const hook =
    site[1] === 'res' ? `blocks.${L}.hook_resid_post` : site[1] === 'mlp' ? `blocks.${L}.hook_mlp_out` : `blocks.${L}.attn.hook_z`;
  return { hook_name: hook, hook_layer: L, ...(site[1] === 'att' ? { reshape_activations: 'hook_z' } : {}) };
}

/**
 * Reads a Llama Scope SAE folder (`hyperparams.json`, `checkpoints/final.safetensors`) as a
 * JumpReLU SAE: W_enc = encoder.weight^T [d_in, d_sae], W_dec = decoder.weight^T [d_sae, d_in],
 * one threshold (jump_relu_threshold) for every feature, compared with the pre-activations of the
 * normalised input as Llama Scope computes them: input scaled by norm_scaling_factor =
 * sqrt(d_in) / dataset_average_activation_norm.in (expected_average_only_in).
 */
export function loadLlamaScopeSae(dir: string): Sae {
  const hpPath = join(dir, 'hyperparams.json');
  const wPath = join(dir, 'checkpoints', 'final.safetensors');
  const hp = readJsonFile(hpPath, {
    missing: 'not found (a Llama Scope SAE folder holds hyperparams.json)',
    unreadable: 'cannot read the hyperparameters',
  });
  if (hp === null || typeof hp !== 'object' || Array.isArray(hp)) throw new Error(`${hpPath}: expected a JSON object`);
  const h = hp as Record<string, unknown>;
  const int = (k: string): number => {
    const v = h[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new Error(`${hpPath}: '${k}' must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (v: unknown, k: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${hpPath}: '${k}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const dIn = int('d_model');
  const dSae = int('d_sae');
  const threshold = num(h.jump_relu_threshold, 'jump_relu_threshold');
  const norms = h.dataset_average_activation_norm as Record<string, unknown> | undefined;
  const normIn = num(norms?.in, 'dataset_average_activation_norm.in');
  if (normIn <= 0) throw new Error(`${hpPath}: 'dataset_average_activation_norm.in' must be positive, got ${normIn}`);
  if (typeof h.hook_point_in !== 'string')
    throw new Error(`${hpPath}: 'hook_point_in' must be a hook name, got ${JSON.stringify(h.hook_point_in)}`);
  if (!existsSync(wPath) || !statSync(wPath).isFile())
    throw new Error(`${wPath}: not found (the weights of the Llama Scope SAE in ${dir})`);
  const t = loadSafetensors(wPath);
  const get = (name: string, shape: number[]) => {
    const x = t.get(name);
    if (!x) throw new Error(`${wPath}: tensor '${name}' is missing (present: ${[...t.keys()].join(', ') || 'none'})`);
    if (x.shape.length !== shape.length || x.shape.some((d, i) => d !== shape[i]))
      throw new Error(`${wPath}: tensor '${name}' has shape [${x.shape.join(', ')}], but ${hpPath} implies [${shape.join(', ')}]`);
    return x.cast('float32');
  };
  const cfg = makeSaeConfig({
    architecture: 'jumprelu',
    d_in: dIn,
    d_sae: dSae,
    hook_name: h.hook_point_in,
    hook_layer: hookLayerOf(h.hook_point_in),
    apply_b_dec_to_input: false,
    normalize_activations: 'expected_average_only_in',
    norm_scaling_factor: Math.sqrt(dIn) / normIn,
    dtype: 'bfloat16',
    context_size: 1024,
    prepend_bos: true,
    dataset_path: 'cerebras/SlimPajama-627B',
  });
  const params = {
    W_enc: get('encoder.weight', [dSae, dIn]).transpose(),
    b_enc: get('encoder.bias', [dSae]),
    W_dec: get('decoder.weight', [dIn, dSae]).transpose(),
    b_dec: get('decoder.bias', [dIn]),
    threshold: full([dSae], threshold),
  };
  return new Sae(cfg, params, { where: `${wPath} (with ${hpPath})` });
}

/** What `resolveSae` found: the SAE, the folder holding its files, and the release when named by one. */
export interface ResolvedSae {
  sae: Sae;
  /** The local folder of the SAE's files (the argument, or the downloaded snapshot's folder). */
  dir: string;
  /** Set when `arg` named a release. */
  pretrained: { release: SaeRelease; entry: SaeReleaseEntry } | null;
}

/**
 * An SAE from a command-line style argument: a local directory in SAELens layout (or holding a
 * Gemma Scope params.npz), else `RELEASE/SAE_ID` (split at the first '/': release names hold no
 * '/', SAE ids may: `gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical`).
 */
export async function resolveSae(arg: string, options: PretrainedSaeOptions = {}): Promise<ResolvedSae> {
  if (existsSync(arg) && statSync(arg).isDirectory()) {
    const sae = existsSync(join(arg, SAE_CFG_FILENAME)) || !existsSync(join(arg, 'params.npz')) ? loadSae(arg) : loadGemmaScopeSae(arg);
    return { sae, dir: arg, pretrained: null };
  }
  // a path (absolute, relative with '.', or an existing file): loadSae names the missing file
  if (isAbsolute(arg) || arg.startsWith('.') || arg.startsWith('~') || existsSync(arg))
    return { sae: loadSae(arg), dir: arg, pretrained: null };
  const slash = arg.indexOf('/');
  if (slash <= 0 || slash === arg.length - 1)
    throw new Error(
      `${arg}: not a directory, and not a pretrained SAE name RELEASE/SAE_ID (e.g. gpt2-small-res-jb/blocks.8.hook_resid_pre)`,
    );
  const release = arg.slice(0, slash);
  if (!loadReleases(options).has(release)) {
    try {
      findPretrainedSae(release, arg.slice(slash + 1), options);
    } catch (e) {
      // a mistyped directory reads as an unknown release: say both
      throw new Error(`${arg}: no such directory, and not a known release: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  const got = await loadPretrainedSae(release, arg.slice(slash + 1), options);
  return { sae: got.sae, dir: got.dir, pretrained: { release: got.release, entry: got.entry } };
}
