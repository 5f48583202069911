/**
 * glassbox for browsers (`glassbox/browser`): the engine (src/tensor) with its ONNX Runtime
 * graphs on onnxruntime-web's WebAssembly build instead of onnxruntime-node. Nothing reachable
 * from this file imports a Node built-in; test/browser-entry.test.ts bundles it for the browser
 * and fails if one does.
 *
 * Start with `await useWasmRuntime({ wasmBase })` (once, e.g. in a Web Worker), then use the
 * engine as in Node. Without it the `ort` backend is unavailable and every op runs on the JS
 * reference kernels.
 */
import { initWasmRuntime, type WasmRuntime, type WasmRuntimeOptions } from './tensor/backends/ort-wasm.js';
import { setGraphRuntime } from './tensor/backends/runtime.js';

export * from './tensor/index.js';
export { initWasmRuntime, wasmConfig, wasmStats, type WasmRuntime, type WasmRuntimeOptions } from './tensor/backends/ort-wasm.js';
export { setGraphRuntime, getGraphRuntime, type GraphRuntime } from './tensor/backends/runtime.js';

/**
 * Loads onnxruntime-web's wasm module (threads when the page is cross-origin isolated) and makes
 * it the `ort` backend's runtime. Returns it: `name` says what runs, `threadsNote` why threads
 * are off when they are.
 */
export async function useWasmRuntime(options: WasmRuntimeOptions): Promise<WasmRuntime> {
  const runtime = await initWasmRuntime(options);
  setGraphRuntime(runtime);
  return runtime;
}

// The model and the analyses that need no file system (the Node entries add directories, the Hub
// cache, saving, training and the tuned lens), and what a page loads a model from: files or URLs.
export * from './model/browser-safe.js';
export * from './analysis/browser-safe.js';
export { modelFromFiles, modelFromBlobs, modelFromUrl } from './model/from-files.js';
export { Tokenizer, tokenizerFromFiles, type TextFileSource, type TokenizerOptions } from './io/tokenizer.js';
export { readSafetensorsBytes, fetchSafetensors } from './io/safetensors-bytes.js';
