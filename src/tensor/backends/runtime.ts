/**
 * Which ONNX Runtime executes compiled graphs for the `ort` backend. In Node it is
 * onnxruntime-node's native binding (`./ort.ts`); a browser installs the onnxruntime-web
 * WebAssembly runtime (`./ort-wasm.ts`) with `setGraphRuntime`. trace.ts (eager ops) and jit.ts
 * (compiled graphs) call through here, so the engine above does not know which one runs.
 */
import type { TypedArray } from '../dtype.js';
import type { Graph } from '../trace.js';
import { ortAvailable, runGraphOrt, type KnownLowering } from './ort.js';

/** One way to run a traced graph as an ONNX model. Runs are synchronous (eager ops and `dataSync()` need it). */
export interface GraphRuntime {
  /** What runs the graphs, as shown to users, e.g. 'onnxruntime-node (cpu)' or 'onnxruntime-web (wasm, 4 threads)'. */
  readonly name: string;
  available(): boolean;
  /**
   * Runs `graph` and returns its outputs' values; `cacheKey` (eager ops) identifies its structure,
   * `known` (a kept jit trace's) its lowering when already computed (a runtime may ignore it).
   */
  run(graph: Graph, cacheKey?: string, known?: KnownLowering): TypedArray[];
}

const nodeRuntime: GraphRuntime = { name: 'onnxruntime-node (cpu)', available: ortAvailable, run: runGraphOrt };
let current: GraphRuntime = nodeRuntime;

/** Installs the runtime the `ort` backend uses (null: back to onnxruntime-node). */
export function setGraphRuntime(runtime: GraphRuntime | null): void {
  current = runtime ?? nodeRuntime;
}

export function getGraphRuntime(): GraphRuntime {
  return current;
}

export function runtimeAvailable(): boolean {
  return current.available();
}

export function runGraphOnRuntime(graph: Graph, cacheKey?: string, known?: KnownLowering): TypedArray[] {
  return current.run(graph, cacheKey, known);
}
