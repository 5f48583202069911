/**
 * Loading a model without a file system (browsers): from files held in memory (a dropped
 * folder, the `File` API) or from a URL prefix (a static host, the Hugging Face Hub's
 * `resolve/main/` URLs) read with `fetch` and HTTP Range requests. The Node path is
 * pretrained.ts (directories, the Hub cache on disk).
 */
import type { Tensor } from '../tensor/index.js';
import { parseJsonObject as parseConfig } from '../io/json.js';
import { tokenizerFromFiles } from '../io/tokenizer.js';
import { fetchSafetensors, readSafetensorsBytes } from '../io/safetensors-bytes.js';
import { HookedTransformer } from './hooked.js';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

function shardNames(indexText: string, where: string): string[] {
  const index = parseConfig(indexText, where);
  const map = index.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${where}: no "weight_map" object`);
  const files = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || !file.endsWith('.safetensors'))
      throw new Error(`${where}: weight_map['${tensor}'] = ${JSON.stringify(file)} is not a .safetensors file in the same folder`);
    files.add(file);
  }
  return [...files].sort();
}

function build(
  configText: string,
  configWhere: string,
  weights: Map<string, Tensor>,
  readText: (name: string) => string | null,
  where: (name: string) => string,
): HookedTransformer {
  const model = HookedTransformer.fromHf(
    parseConfig(configText, configWhere),
    {
      has: (n) => weights.has(n),
      get: (n) => {
        const t = weights.get(n);
        if (!t) throw new Error(`${where('model.safetensors')}: no tensor '${n}'`);
        return t.cast('float32');
      },
    },
    configWhere,
  );
  if (readText('tokenizer.json') !== null) model.tokenizer = tokenizerFromFiles({ read: readText, where });
  return model;
}

/**
 * A model from its folder's files, by name (`config.json`, `model.safetensors` or the shards
 * `model.safetensors.index.json` names, `tokenizer.json`, ...), e.g. files dropped on a page.
 * `folder` names the folder in error messages.
 */
export function modelFromFiles(files: ReadonlyMap<string, Uint8Array>, folder = 'model'): HookedTransformer {
  const where = (name: string) => `${folder}/${name}`;
  const decoder = new TextDecoder();
  const readText = (name: string) => {
    const b = files.get(name);
    return b === undefined ? null : decoder.decode(b);
  };
  const config = readText('config.json');
  if (config === null) throw new Error(`${where('config.json')}: missing (a Hugging Face model folder needs config.json)`);
  const index = readText('model.safetensors.index.json');
  const shards = index !== null ? shardNames(index, where('model.safetensors.index.json')) : ['model.safetensors'];
  const weights = new Map<string, Tensor>();
  for (const shard of shards) {
    const bytes = files.get(shard);
    if (!bytes) throw new Error(`${where(shard)}: missing (glassbox reads safetensors weights)`);
    for (const [k, v] of readSafetensorsBytes(bytes, where(shard))) weights.set(k, v);
  }
  return build(config, where('config.json'), weights, readText, where);
}

/**
 * A model from a folder's files as `Blob`s (`File`s a user dropped on a page or picked with a
 * folder input), by name. Reads only the files `modelFromFiles` needs: config.json, the
 * tokenizer's files, the shard index, and the safetensors shards it names (or
 * model.safetensors); other files of the folder (other checkpoints, references) are not read.
 */
export async function modelFromBlobs(files: ReadonlyMap<string, Blob>, folder = 'model'): Promise<HookedTransformer> {
  const where = (name: string) => `${folder}/${name}`;
  const read = new Map<string, Uint8Array>();
  const readFile = async (name: string) => {
    const blob = files.get(name);
    if (!blob) return;
    try {
      read.set(name, new Uint8Array(await blob.arrayBuffer()));
    } catch (e) {
      throw new Error(`${where(name)}: could not be read (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
  };
  for (const name of ['config.json', 'model.safetensors.index.json', ...TOKENIZER_FILES]) await readFile(name);
  const index = read.get('model.safetensors.index.json');
  const shards = index ? shardNames(new TextDecoder().decode(index), where('model.safetensors.index.json')) : ['model.safetensors'];
  if (read.has('config.json')) for (const shard of shards) await readFile(shard);
  return modelFromFiles(read, folder);
}

/**
 * A model from a URL prefix ending in '/' (a static folder, or
 * `https://huggingface.co/<repo>/resolve/<revision>/`): config and tokenizer files with fetch,
 * weights with Range requests.
 */
export async function modelFromUrl(base: string, init: RequestInit = {}): Promise<HookedTransformer> {
  if (!base.endsWith('/')) throw new Error(`modelFromUrl: the URL prefix must end in '/', got '${base}'`);
  const where = (name: string) => `${base}${name}`;
  const getText = async (name: string): Promise<string | null> => {
    const res = await fetch(where(name), init);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`${where(name)}: HTTP ${res.status} ${res.statusText}`);
    return res.text();
  };
  const texts = new Map<string, string | null>();
  for (const name of ['config.json', 'model.safetensors.index.json', ...TOKENIZER_FILES]) texts.set(name, await getText(name));
  const config = texts.get('config.json');
  if (config == null) throw new Error(`${where('config.json')}: missing (a Hugging Face model folder needs config.json)`);
  const index = texts.get('model.safetensors.index.json');
  const shards = index != null ? shardNames(index, where('model.safetensors.index.json')) : ['model.safetensors'];
  const weights = new Map<string, Tensor>();
  for (const shard of shards) for (const [k, v] of await fetchSafetensors(where(shard), undefined, init)) weights.set(k, v);
  return build(config, where('config.json'), weights, (name) => texts.get(name) ?? null, where);
}
