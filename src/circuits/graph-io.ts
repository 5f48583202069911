/**
 * Saving and loading a Graph: a directory with `graph.safetensors` (the arrays) and `graph.json`
 * (the scalars and the counts the arrays must agree with). Each file is written atomically, the
 * JSON last, so a directory with a graph.json holds a whole graph; loading checks every array's
 * dtype and shape against it and refuses, naming the file and the field, what does not fit.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, type Tensor } from '../tensor/index.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { nodeLayout, type Graph } from './graph.js';

/** The graph.json format version this code writes and reads. */
export const GRAPH_FILE_VERSION = 1;

interface GraphFileJson {
  format: 'glassbox-attribution-graph';
  version: number;
  inputString: string;
  nLayers: number;
  model: string;
  scan: string;
  nPos: number;
  nActive: number;
  nSelected: number;
  nLogits: number;
}

/** Writes `g` into directory `dir` (created if missing). */
export function saveGraph(g: Graph, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const L = nodeLayout(g);
  const nActive = g.activationValues.length;
  saveSafetensors(join(dir, 'graph.safetensors'), {
    input_tokens: tensor(Int32Array.from(g.inputTokens), [L.nPos], 'int32'),
    active_features: tensor(g.activeFeatures, [nActive, 3], 'int32'),
    activation_values: tensor(g.activationValues, [nActive]),
    selected_features: tensor(g.selectedFeatures, [L.nFeatures], 'int32'),
    logit_tokens: tensor(Int32Array.from(g.logitTokens), [L.nLogits], 'int32'),
    logit_probabilities: tensor(g.logitProbabilities, [L.nLogits]),
    adjacency_matrix: tensor(g.adjacency, [L.n, L.n]),
    biases: tensor(g.biases, [L.n]),
    values: tensor(g.values, [L.n]),
  });
  const meta: GraphFileJson = {
    format: 'glassbox-attribution-graph',
    version: GRAPH_FILE_VERSION,
    inputString: g.inputString,
    nLayers: g.nLayers,
    model: g.model,
    scan: g.scan,
    nPos: L.nPos,
    nActive,
    nSelected: L.nFeatures,
    nLogits: L.nLogits,
  };
  writeFileAtomic(join(dir, 'graph.json'), JSON.stringify(meta, null, 2) + '\n');
}

/** Reads a graph written by `saveGraph`, checking every field. */
export function loadGraph(dir: string): Graph {
  const jsonPath = join(dir, 'graph.json');
  const stPath = join(dir, 'graph.safetensors');
  if (!existsSync(jsonPath)) throw new Error(`${jsonPath}: not found (a graph directory holds graph.json and graph.safetensors)`);
  let meta: GraphFileJson;
  try {
    meta = JSON.parse(readFileSync(jsonPath, 'utf8')) as GraphFileJson;
  } catch (e) {
    throw new Error(`${jsonPath}: not valid JSON (${(e as Error).message})`);
  }
  if (meta === null || typeof meta !== 'object' || meta.format !== 'glassbox-attribution-graph')
    throw new Error(`${jsonPath}: 'format' must be 'glassbox-attribution-graph'`);
  if (meta.version !== GRAPH_FILE_VERSION)
    throw new Error(`${jsonPath}: 'version' ${meta.version} is not supported (this glassbox reads ${GRAPH_FILE_VERSION})`);
  const count = (k: keyof GraphFileJson, min = 0): number => {
    const v = meta[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      throw new Error(`${jsonPath}: '${k}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const text = (k: keyof GraphFileJson): string => {
    const v = meta[k];
    if (typeof v !== 'string') throw new Error(`${jsonPath}: '${k}' must be a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const nLayers = count('nLayers', 1);
  const nPos = count('nPos', 1);
  const nActive = count('nActive');
  const nSelected = count('nSelected');
  const nLogits = count('nLogits', 1);
  if (nSelected > nActive) throw new Error(`${jsonPath}: 'nSelected' ${nSelected} exceeds 'nActive' ${nActive}`);
  const n = nSelected + nLayers * nPos + nPos + nLogits;
  const t = loadSafetensors(stPath);
  const get = (name: string, shape: number[], dtype: 'float32' | 'int32'): Tensor => {
    const x = t.get(name);
    if (!x) throw new Error(`${stPath}: no tensor '${name}'`);
    if (x.dtype !== dtype) throw new Error(`${stPath}: '${name}' has dtype ${x.dtype}, expected ${dtype}`);
    if (x.shape.length !== shape.length || x.shape.some((s, i) => s !== shape[i]))
      throw new Error(`${stPath}: '${name}' has shape [${x.shape}], expected [${shape}] (from ${jsonPath})`);
    return x;
  };
  const ints = (name: string, shape: number[]): Int32Array => Int32Array.from(get(name, shape, 'int32').dataSync() as Int32Array);
  const floats = (name: string, shape: number[]): Float32Array => {
    const v = Float32Array.from(get(name, shape, 'float32').dataSync() as Float32Array);
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new Error(`${stPath}: '${name}' holds ${v[bad]} at flat index ${bad}`);
    return v;
  };
  const activeFeatures = ints('active_features', [nActive, 3]);
  for (let i = 0; i < nActive; i++) {
    const [l, p, f] = [activeFeatures[3 * i]!, activeFeatures[3 * i + 1]!, activeFeatures[3 * i + 2]!];
    if (l < 0 || l >= nLayers || p < 0 || p >= nPos || f < 0)
      throw new Error(`${stPath}: 'active_features' row ${i} is (${l}, ${p}, ${f}), outside ${nLayers} layers x ${nPos} positions`);
  }
  const selectedFeatures = ints('selected_features', [nSelected]);
  selectedFeatures.forEach((a, i) => {
    if (a < 0 || a >= nActive || (i > 0 && a <= selectedFeatures[i - 1]!))
      throw new Error(`${stPath}: 'selected_features' must be increasing indices below ${nActive}; entry ${i} is ${a}`);
  });
  const logitProbabilities = floats('logit_probabilities', [nLogits]);
  return {
    inputTokens: Array.from(ints('input_tokens', [nPos])),
    inputString: text('inputString'),
    nLayers,
    activeFeatures,
    activationValues: floats('activation_values', [nActive]),
    selectedFeatures,
    logitTokens: Array.from(ints('logit_tokens', [nLogits])),
    logitProbabilities,
    adjacency: floats('adjacency_matrix', [n, n]),
    biases: floats('biases', [n]),
    values: floats('values', [n]),
    model: text('model'),
    scan: text('scan'),
  };
}
