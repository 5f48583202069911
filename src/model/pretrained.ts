/**
 * Loading a HookedTransformer from a Hugging Face-format directory (config.json, model.safetensors
 * or a sharded index) or, through the Hub cache, from a model id.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { downloadModel, loadTokenizer, openCheckpoint, resolveModelId, type WeightDtype } from '../io/index.js';
import { checkModelFiles, entryExists } from '../io/fs-check.js';
import type { Tensor } from '../tensor/index.js';
import { HookedTransformer, _registerModelFiles } from './hooked.js';
import { floatWeight, type WeightCheckOptions } from './checkpoint-use.js';
// Whatever reads models from disk in Node can write them too (model.save registers in save.ts).
import './save.js';

export interface LoadOptions extends WeightCheckOptions {
  /**
   * How float16 and bfloat16 checkpoints are held: 'float32' (default) widens every weight to
   * float32 as it is read; 'stored' keeps them at 2 bytes a weight, and the compiled graphs widen
   * each weight where they use it (the results are the same: widening is exact). Half the memory,
   * some time per forward pass; eager use of a weight (`dataSync`, eager ops) widens it each
   * time. float32 checkpoints are float32 either way. See README, "Real size".
   */
  weightDtype?: WeightDtype;
  /**
   * Threads reading the checkpoint, the main thread included (default: available parallelism,
   * at most 4; 1 reads on the main thread only). Checkpoints under 64 MB are read on one thread.
   */
  threads?: number;
  /**
   * Let runs go past the model's context (`nCtx`, max_position_embeddings) where its positions
   * allow it (rotary, ALiBi): sets `model.allowLongContext`. Off by default, so such runs are
   * refused. The CLI's `--allow-long-context`.
   */
  allowLongContext?: boolean;
}

const loadDefaults: LoadOptions = {};

/** Sets the options `loadModel` uses where its caller gives none (the CLI's --weight-dtype, --check-finite, --allow-long-context). */
export function setLoadDefaults(options: LoadOptions): void {
  Object.assign(loadDefaults, options);
}

/**
 * Loads a model from a local directory in Hugging Face format. Each weight is read with
 * positioned reads straight into the array it keeps (16-bit weights widened on the way, in one
 * pass); the transposes families apply ([out, in] -> [in, out]) and tied unembeddings are views
 * of that array, not copies.
 */
export function loadFromDirectory(dir: string, options: LoadOptions = {}): HookedTransformer {
  const opts = { ...loadDefaults, ...options };
  const weightDtype = opts.weightDtype ?? 'float32';
  if (weightDtype !== 'float32' && weightDtype !== 'stored')
    throw new Error(`weightDtype must be 'float32' or 'stored', got ${JSON.stringify(weightDtype)}`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory`);
  checkModelFiles(dir);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${configPath}: missing (a Hugging Face model directory needs config.json)`);
  let hf: Record<string, unknown>;
  try {
    hf = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${configPath}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const ckpt = openCheckpoint(dir);
  let model: HookedTransformer;
  try {
    // Every tensor at once, on several threads (most of a large load is first touching fresh
    // memory), but only at the first weight the family reads: a config refused by its fields or
    // asking for layers the file lacks costs no read.
    let tensors: Map<string, Tensor> | null = null;
    const readAll = (): Map<string, Tensor> =>
      (tensors ??= ckpt.readTensors(ckpt.keys(), { weightDtype, ...(opts.threads !== undefined ? { threads: opts.threads } : {}) }));
    const weights = {
      has: (n: string) => ckpt.has(n),
      get: (n: string) => floatWeight(readAll().get(n) ?? ckpt.read(n), `${ckpt.path}: tensor '${n}'`),
      names: () => ckpt.keys(),
      source: ckpt.path,
    };
    model = HookedTransformer.fromHf(hf, weights, configPath, opts);
  } finally {
    ckpt.close();
  }
  if (entryExists(join(dir, 'tokenizer.json'))) model.tokenizer = loadTokenizer(dir);
  model.name = basename(resolve(dir));
  model.allowLongContext = opts.allowLongContext ?? false;
  return model;
}

/** Where the default model ships: `models/default` at the package root (from src/ or dist/ alike). */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/default', import.meta.url));

/** The names that open the default model. */
export const DEFAULT_MODEL_NAMES: readonly string[] = ['default', 'glassbox/default'];

/**
 * A model by name: 'default' (the small model that ships with glassbox, no network needed), a
 * local Hugging Face-format directory, or a hub id `org/name[@revision]` downloaded into (or read
 * from) the Hugging Face cache.
 */
export async function loadModel(
  spec: string,
  options: { offline?: boolean; token?: string } & LoadOptions = {},
): Promise<HookedTransformer> {
  const { offline, token, ...load } = options;
  if (DEFAULT_MODEL_NAMES.includes(spec) && !existsSync(spec)) {
    if (!existsSync(join(DEFAULT_MODEL_DIR, 'config.json')))
      throw new Error(
        `${DEFAULT_MODEL_DIR}: the default model is missing from this installation; rebuild it with \`glassbox train default --out ${DEFAULT_MODEL_DIR}\``,
      );
    const model = loadFromDirectory(DEFAULT_MODEL_DIR, load);
    model.name = 'default';
    return model;
  }
  if (existsSync(spec)) return loadFromDirectory(spec, load);
  // Paths (./x, /x, ../x, x/y/z) that do not exist are reported as such, not looked up on the Hub.
  if (/^[./~]/.test(spec) || spec.split('/').length > 2)
    throw new Error(`${spec}: no such directory (a hub id looks like org/name[@revision])`);
  const { repoId, revision } = resolveModelId(spec);
  const dir = await downloadModel(repoId, {
    revision,
    ...(offline !== undefined ? { offline } : {}),
    ...(token !== undefined ? { token } : {}),
  });
  const model = loadFromDirectory(dir, load);
  model.name = repoId;
  return model;
}

/** `HookedTransformer.fromPretrained`-style entry point: 'default', a directory or a hub id. */
export const fromPretrained = loadModel;

_registerModelFiles({ load: loadModel });
