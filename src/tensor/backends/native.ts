/**
 * glassbox's native helper (native/glassbox_native.c, built at install by native/build.mjs): sets
 * glibc's thresholds for large blocks so that the memory of freed results is reused rather than
 * given back to the system and faulted in afresh by the next result.
 *
 * The evidence (bench/matmul-gap.sh, bench/README.md): onnxruntime-node copies every result into a
 * new ArrayBuffer; V8 frees those in batches at garbage collection and glibc unmaps or trims them,
 * so every result of a run faulted all its pages in again (384 faults for one [128,3072] float32
 * result, measured with `process.resourceUsage().minorPageFault`). On this project's virtual
 * machines a fault costs several microseconds, which made one MatMul [128,768]@[768,3072] run
 * three to four times slower from Node than the same model from Python, whose arrays reuse freed
 * heap memory. ONNX Runtime's own kernels are the same in both (the profiles show its AVX-512
 * SGEMM kernel in both).
 *
 * The thresholds are process-wide and set once, when the ONNX Runtime backend first loads. Turn it
 * off with `mallocConfig.tune = false` before the first op, or GLASSBOX_NATIVE=skip at install.
 * The helper is optional: where it was not built (no C compiler at install), the first load writes
 * one line to stderr saying so, and everything runs as before.
 */
import { nodeBuiltin } from '../node-builtin.js';

export const mallocConfig = {
  /** Whether to set the thresholds when the ONNX Runtime backend loads. */
  tune: true,
  /**
   * Blocks up to this size come from the heap rather than from mmap (glibc's M_MMAP_THRESHOLD).
   * 32 MiB is where glibc's own adaptive threshold stops, which is what a Python process ends up
   * with; it holds GPT-2's [128,50257] float32 logits (25.7 MB).
   */
  mmapThresholdBytes: 32 * 2 ** 20,
  /**
   * Free memory at the top of the heap up to this size is kept rather than given back
   * (M_TRIM_THRESHOLD): what V8 frees in one garbage collection of results must fit under it.
   */
  trimThresholdBytes: 128 * 2 ** 20,
};

export interface MallocTuning {
  /** Whether glibc's thresholds were set. */
  applied: boolean;
  /** Why not, when not (not Linux/glibc, the helper not built, turned off, or glibc refused). */
  reason: string | null;
  mmapThresholdBytes: number | null;
  trimThresholdBytes: number | null;
}

let state: MallocTuning | undefined;

/** The native module's path: native/build/ at the package root (three levels above this file, in src/ and in dist/). */
export function nativeModulePath(): string {
  const path = nodeBuiltin('node:path');
  const url = nodeBuiltin('node:url');
  if (!path || !url) return '(no native helper outside Node.js)';
  return path.join(path.dirname(url.fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', 'glassbox_native.node');
}

/**
 * Sets glibc's large-block thresholds once per process (later calls return the first outcome),
 * loading the helper from `modulePath` (the built one by default).
 * Never throws: where it cannot apply, glassbox runs exactly as before, and the outcome says why.
 */
export function tuneMalloc(modulePath: string = nativeModulePath()): MallocTuning {
  if (state) return state;
  const refuse = (reason: string): MallocTuning => (state = { applied: false, reason, mmapThresholdBytes: null, trimThresholdBytes: null });
  // The helper is optional (a machine without a C compiler installs without it): its absence is
  // noted once per process on stderr, not an error, so a slow run has a visible reason.
  const absent = (reason: string): MallocTuning => {
    process.stderr.write(`glassbox: running without the native allocator helper: ${reason}; large results are slower (bench/README.md)\n`);
    return refuse(reason);
  };
  if (!mallocConfig.tune) return refuse('mallocConfig.tune is false');
  if (process.platform !== 'linux') return refuse(`not needed on ${process.platform} (it tunes glibc's allocator)`);
  const path = modulePath;
  let mod: { setMallocThresholds?: unknown };
  try {
    const nodeModule = nodeBuiltin('node:module');
    if (!nodeModule) return refuse('not running in Node.js');
    mod = nodeModule.createRequire(import.meta.url)(path) as { setMallocThresholds?: unknown };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return absent(`native helper ${path} not loaded (${msg}); build it with \`npm run build:native\` (needs a C compiler)`);
  }
  if (typeof mod.setMallocThresholds !== 'function') return absent(`native helper ${path} has no setMallocThresholds function; rebuild it`);
  const { mmapThresholdBytes: mmap, trimThresholdBytes: trim } = mallocConfig;
  let ok: unknown;
  try {
    ok = (mod.setMallocThresholds as (m: number, t: number) => unknown)(mmap, trim);
  } catch (e) {
    return absent(`setMallocThresholds(${mmap}, ${trim}) refused: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (ok !== true) return absent(`glibc absentd M_MMAP_THRESHOLD=${mmap} or M_TRIM_THRESHOLD=${trim}`);
  return (state = { applied: true, reason: null, mmapThresholdBytes: mmap, trimThresholdBytes: trim });
}

/** What `tuneMalloc()` did (null before the ONNX Runtime backend first loaded). */
export function mallocTuning(): MallocTuning | null {
  return state ?? null;
}
