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
 * It then marks the heap's next `mallocConfig.hugePageHeapBytes` for transparent huge pages, so that
 * the heap's growth over a process's first large results faults 2 MiB at a time, not 4 KiB
 * (bench/README.md, "the eager matmul's last 1.8 ms").
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
  /**
   * Address space at the top of the heap marked once for transparent huge pages, when the
   * thresholds are set (0: none; must be below `trimThresholdBytes`, which keeps it in the heap).
   * The heap grows over a process's first hundred or so large results (V8 frees them only at
   * garbage collection), and each new 4 KiB page was a fault: 180-190 per eager
   * [128,768]@[768,3072] over its first 30 calls, as long as the product itself; in marked memory
   * the kernel faults 2 MiB at a time (about 1 fault per call). Nothing is touched in advance:
   * only the memory results are written into becomes resident. Needs the kernel's transparent
   * huge pages in `madvise` or `always` mode (/sys/kernel/mm/transparent_hugepage/enabled).
   */
  hugePageHeapBytes: 96 * 2 ** 20,
};

export interface MallocTuning {
  /** Whether glibc's thresholds were set. */
  applied: boolean;
  /** Why not, when not (not Linux/glibc, the helper not built, turned off, or glibc refused). */
  reason: string | null;
  mmapThresholdBytes: number | null;
  trimThresholdBytes: number | null;
  /** Heap bytes marked for transparent huge pages (`mallocConfig.hugePageHeapBytes`); 0 where none, null where nothing was set. */
  hugePageHeapBytes: number | null;
  /** Why no heap was marked for huge pages, where none was (null when marked, or when nothing was set). */
  hugePageReason: string | null;
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
  const refuse = (reason: string): MallocTuning =>
    (state = { applied: false, reason, mmapThresholdBytes: null, trimThresholdBytes: null, hugePageHeapBytes: null, hugePageReason: null });
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
  if (ok !== true) return absent(`glibc refused M_MMAP_THRESHOLD=${mmap} or M_TRIM_THRESHOLD=${trim}`);
  const huge = reserveHugeHeap(mod as { reserveHugeHeap?: unknown });
  return (state = {
    applied: true,
    reason: null,
    mmapThresholdBytes: mmap,
    trimThresholdBytes: trim,
    hugePageHeapBytes: huge.bytes,
    hugePageReason: huge.reason,
  });
}

/** The kernel's transparent huge page mode (the bracketed word of its setting), or null where unknown. */
export function transparentHugePageMode(): string | null {
  const fs = nodeBuiltin('node:fs');
  if (!fs) return null;
  try {
    return /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Marks `mallocConfig.hugePageHeapBytes` of heap for huge pages (see there); never throws. */
function reserveHugeHeap(mod: { reserveHugeHeap?: unknown }): { bytes: number; reason: string | null } {
  const { hugePageHeapBytes: bytes, trimThresholdBytes: trim } = mallocConfig;
  if (bytes === 0) return { bytes: 0, reason: 'mallocConfig.hugePageHeapBytes is 0' };
  if (!(Number.isSafeInteger(bytes) && bytes > 0 && bytes < trim))
    return { bytes: 0, reason: `mallocConfig.hugePageHeapBytes ${bytes} is not a byte count below trimThresholdBytes (${trim})` };
  const mode = transparentHugePageMode();
  if (mode !== 'madvise' && mode !== 'always')
    return {
      bytes: 0,
      reason: `the kernel's transparent huge pages are ${mode ?? 'unknown (no /sys/kernel/mm/transparent_hugepage/enabled)'}`,
    };
  if (typeof mod.reserveHugeHeap !== 'function')
    return { bytes: 0, reason: 'the native helper has no reserveHugeHeap function; rebuild it' };
  try {
    const marked = (mod.reserveHugeHeap as (b: number) => unknown)(bytes);
    if (typeof marked !== 'number') return { bytes: 0, reason: `reserveHugeHeap returned ${typeof marked}; rebuild the helper` };
    return { bytes: marked, reason: marked > 0 ? null : 'the heap did not grow in one piece (nothing marked)' };
  } catch (e) {
    return { bytes: 0, reason: `reserveHugeHeap(${bytes}) refused: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** What `tuneMalloc()` did (null before the ONNX Runtime backend first loaded). */
export function mallocTuning(): MallocTuning | null {
  return state ?? null;
}
