/**
 * The engine's op tests (the same files Node runs) bundled for a browser page, with `node:test`
 * and `node:assert/strict` replaced by small shims and `src/index.ts` by the browser entry.
 * `window.glassboxOpTests(wasmBase)` installs the onnxruntime-web runtime and runs them all:
 * every ONNX lowering is checked against the JS reference kernels in the page.
 */
import { ortStats, useWasmRuntime } from '../../src/browser.js';
import { runAll, type TestResult } from './shim-test.js';
import '../elementwise.test.js';
import '../reduce.test.js';
import '../linalg.test.js';
import '../indexing.test.js';
import '../nn.test.js';
import '../tensor.test.js';
import '../jit.test.js';
import '../grad.test.js';

interface OpTestReport {
  runtime: string;
  threads: number;
  threadsNote: string | null;
  crossOriginIsolated: boolean;
  results: TestResult[];
  /** Graphs compiled and runs made on onnxruntime-web (the lowerings really ran there). */
  compiles: number;
  runs: number;
}

(globalThis as unknown as { glassboxOpTests: (wasmBase: string) => Promise<OpTestReport> }).glassboxOpTests = async (wasmBase) => {
  const runtime = await useWasmRuntime({ wasmBase });
  const results = await runAll();
  return {
    runtime: runtime.name,
    threads: runtime.threads,
    threadsNote: runtime.threadsNote,
    crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
    results,
    compiles: ortStats.compiles,
    runs: ortStats.runs,
  };
};
