/**
 * What the HTTP thread and the model worker say to each other, and how a model crosses between
 * them: its config as it is, its weights as one copy of each tensor's storage, transferred (not
 * copied again) to the worker.
 */
import type { ModelConfig } from '../model/config.js';
import type { ModelParams } from '../model/forward.js';
import { Tensor } from '../tensor/index.js';
import type { DType, TypedArray } from '../tensor/dtype.js';
import type { ErrorBody } from './schemas.js';
import type { PackedSae } from './feature-compute.js';

/** The worker's budgets and limits. */
export interface WorkerSettings {
  /** Longest prompt (the largest length bucket). */
  maxTokens: number;
  /** Most memory the compiled sessions' ONNX Runtime arenas may keep together (`ortConfig.maxArenaBytes`). */
  sessionBudgetBytes: number;
  /** Most compiled sessions kept (`ortConfig.maxSessions`). */
  maxSessions: number;
  /** Estimated bytes of one pass of a sweep (`memoryConfig.memoryBudgetBytes`). */
  passBudgetBytes: number;
  /** A transcoder directory (serve --transcoders) the worker loads for graphs and interventions. */
  transcodersDir?: string;
  /** A tuned lens directory (serve --tuned-lens) the worker loads for POST /api/logit-lens's lens: 'tuned'. */
  tunedLensDir?: string;
}

/** A tensor leaf of the packed weights: its storage travels in `buffers`. */
interface PackedTensor {
  $tensor: number;
  shape: number[];
  dtype: DType;
}

export interface PackedModel {
  cfg: ModelConfig;
  /** The params tree with each tensor replaced by a `PackedTensor`. */
  tree: unknown;
  buffers: TypedArray[];
}

export interface WorkerInit {
  model: PackedModel;
  settings: WorkerSettings;
  /** The attached dictionaries (feature-compute.ts), in the server's order. */
  saes?: PackedSae[];
}

export type ToWorker =
  | { type: 'call'; id: string; op: string; args: unknown }
  | { type: 'job'; id: string; op: string; args: unknown }
  | { type: 'cancel'; id: string };

/** The worker's compiled sessions after its latest step. */
export interface WorkerStats {
  /** Sessions compiled, run, and released (to stay within the budgets) since the worker started. */
  compiles: number;
  runs: number;
  released: number;
  /** Sessions kept now, and the memory their arenas were measured to hold. */
  sessions: number;
  arenaBytes: number;
}

export type ToMain =
  | { type: 'ready' }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: string; value: unknown }
  | { type: 'step'; id: string; value: unknown }
  | { type: 'error'; id: string; error: ErrorBody };

/**
 * The model's config and a copy of its weights, with the list of buffers to transfer. The copy
 * is the worker's own: the caller's model is left as it was.
 */
export function packModel(cfg: ModelConfig, params: ModelParams): { packed: PackedModel; transfer: ArrayBuffer[] } {
  const buffers: TypedArray[] = [];
  const walk = (x: unknown): unknown => {
    if (x instanceof Tensor) {
      if (x.isTracer) throw new Error('packModel: the model holds a tracer, not a weight');
      buffers.push(x._storage().slice() as TypedArray);
      return { $tensor: buffers.length - 1, shape: [...x.shape], dtype: x.dtype } satisfies PackedTensor;
    }
    if (Array.isArray(x)) return x.map(walk);
    if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, walk(v)]));
    return x;
  };
  const tree = walk(params);
  return { packed: { cfg, tree, buffers }, transfer: buffers.map((b) => b.buffer as ArrayBuffer) };
}

/** The config and weights of a packed model, the weights wrapping the transferred storage. */
export function unpackModel(p: PackedModel): { cfg: ModelConfig; params: ModelParams } {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x !== null && typeof x === 'object') {
      if ('$tensor' in x) {
        const t = x as PackedTensor;
        return Tensor._concrete(t.shape, t.dtype, p.buffers[t.$tensor]!);
      }
      return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, walk(v)]));
    }
    return x;
  };
  return { cfg: p.cfg, params: walk(p.tree) as ModelParams };
}
