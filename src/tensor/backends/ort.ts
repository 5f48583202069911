/**
 * The ONNX Runtime backend (onnxruntime-node).
 *
 * onnxruntime-node's public `InferenceSession.run` returns a Promise, but the native call under it
 * is synchronous (the package's own backend wraps it in `setImmediate`). glassbox needs synchronous
 * execution (`dataSync()`, eager ops), so it loads the package's native binding module directly,
 * the same module the package's backend uses, and calls `run` on it. The version is pinned in
 * package.json; `ortAvailable()` reports whether the binding loaded and has the expected shape.
 *
 * Node's `module` is reached through `process.getBuiltinModule` rather than imported, so that this
 * file (and the engine that imports it) bundles for a browser, where `ortAvailable()` is false
 * and `./runtime.ts` runs graphs on onnxruntime-web instead.
 */
import { allocate, type DType, type TypedArray } from '../dtype.js';
import { prepare, scaleShape, type FeedSlot, type Prepared } from '../onnx/lower.js';
import { sizeOf } from '../shape.js';
import { nodeBuiltin } from '../node-builtin.js';
import { tuneMalloc } from './native.js';
import { physicalCoreCount } from './cpu.js';
import type { Graph } from '../trace.js';
import { OutOfMemoryError, formatBytes, ortAllocationBytes } from '../alloc-error.js';

interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(
    feeds: Record<string, unknown>,
    fetches: Record<string, unknown>,
    options: object,
  ): Record<string, { data: TypedArray; dims: number[]; type: string }>;
  endProfiling(): void;
  dispose(): void;
}

interface Binding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

let loaded: { binding: Binding; OrtTensor: new (type: string, data: TypedArray, dims: readonly number[]) => unknown } | null | undefined;
let loadError: string | null = null;

/** Node's `createRequire` for this module, or an error saying why there is none (a browser). */
function nodeRequire(): NodeJS.Require {
  const nodeModule = nodeBuiltin('node:module');
  if (!nodeModule) throw new Error('onnxruntime-node needs Node.js (20.16 or later); in a browser glassbox runs on onnxruntime-web');
  return nodeModule.createRequire(import.meta.url);
}

function load(): typeof loaded {
  if (loaded !== undefined) return loaded;
  try {
    const require = nodeRequire();
    const binding = require('onnxruntime-node/dist/binding.js') as Binding;
    const common = require('onnxruntime-common') as { Tensor: new (type: string, data: TypedArray, dims: readonly number[]) => unknown };
    if (typeof binding?.binding?.InferenceSession !== 'function' || typeof binding.initOrt !== 'function')
      throw new Error('onnxruntime-node binding does not have the expected shape (InferenceSession, initOrt); check the pinned version');
    binding.initOrt();
    // Results come back as new ArrayBuffers: keep their freed memory in the heap (native.ts says why).
    tuneMalloc();
    loaded = { binding, OrtTensor: common.Tensor };
  } catch (e) {
    loadError = e instanceof Error ? e.message : String(e);
    loaded = null;
  }
  return loaded;
}

/** Whether onnxruntime-node is installed and loadable. */
export function ortAvailable(): boolean {
  return load() !== null;
}

export function ortLoadError(): string | null {
  load();
  return loadError;
}

/** Session options applied to every compiled model. */
export const ortConfig = {
  /**
   * Intra-op threads. 0: one per physical core this process may use, counted from Linux's
   * topology files (`physicalCoreCount()` in cpu.ts; ORT's own count gave one thread on 2-core
   * virtual machines), or ORT's own choice where that count is unknown.
   */
  intraOpNumThreads: 0,
  /**
   * Whether idle intra-op threads spin-wait for more work (ORT's default) instead of sleeping.
   * Off: every session has its own thread pool, and spinning workers of one session (an eager op
   * just run) take the cores that the next session's run needs; on 2 cores that measured 86 ms
   * against 57 ms for a jitted GPT-2 block forward+backward, with no loss when nothing competes.
   * Measured again with sessions really on 2 threads (a jitted block forward then an eager
   * [128,768]@[768,3072] matmul, in turn, on the shared machine at load 5): 28-33 ms off, 52-62 ms
   * on with `session.force_spinning_stop`, 76-99 ms on. On a quiet machine spinning saves the wake-up
   * of the worker (one matmul alone: 2.1 ms against 2.6 ms at best).
   */
  allowSpinning: false,
  /**
   * ORT's memory pattern: after a session's first run, every later run allocates one block
   * planned for all its intermediate values. Off: that block came on top of the arena chunks the
   * first run had left, so a session's arena settled at twice its peak (integrated gradients over
   * 128 stacked rows of the default model: 297 MB of arena without the pattern, 589 MB with
   * it). The default model's forward passes (1 and 32 rows) and 256-point integrated gradients
   * ran no slower without it, within the noise of a shared 2-core machine.
   */
  memPattern: false,
  /** Maximum number of compiled sessions kept (least recently used are released). */
  maxSessions: 512,
  /**
   * Most memory the kept sessions' ORT arenas may hold together; past it the least recently used
   * sessions that hold arena memory are released (never the one that just ran). Each session has
   * a CPU memory arena of its own, which keeps the peak of its runs until the session is released
   * (a forward+backward pass over 256 stacked rows of the default model left 720 MB behind, with
   * ORT's memory pattern on), so a sweep compiling one large session per prompt length or chunk
   * size would otherwise keep one such arena per shape. A session's arena is measured as the
   * process's RSS growth over its first runs, less the outputs (`sessionArenaBytes`). Released
   * arenas go back to the C allocator, which returns most but not all of it to the system: 16
   * jitted graphs over 8 MB arrays grew RSS by 297 MB under a 64 MB cap, by 890 MB without one.
   * Turning the arena off instead (`sessionOptions: { enableCpuMemArena: false }`) returns the
   * memory after every run, but made chunked gradient sweeps 2 to 5 times slower (every run
   * faults its memory in afresh).
   */
  maxArenaBytes: 1024 * 2 ** 20,
  /** Write each newly compiled model here (for debugging with Netron or onnx.checker). */
  dumpDir: null as string | null,
  /**
   * Extra ONNX Runtime session options merged into every new session, e.g.
   * `{ enableProfiling: true, profileFilePrefix: 'ort' }` (profiles are written when sessions are
   * released with `clearSessionCache()`). An `extra` given here replaces the one that sets
   * `allowSpinning`.
   */
  sessionOptions: {} as Record<string, unknown>,
};

/** Compile counters the tests read (a recompile is a cache miss). */
export const ortStats = {
  compiles: 0,
  cacheHits: 0,
  runs: 0,
  /** Sessions released to stay within `maxSessions` and `maxArenaBytes`. */
  released: 0,
};

interface CacheEntry {
  session: NativeSession;
  inputNames: string[];
  outputNames: string[];
  /**
   * What the compiled model reads from the graph's inputs (dead inputs are dropped). Reused only
   * on eager-key hits: one-node graphs of one op read their inputs the same way.
   */
  slots: FeedSlot[];
  /** Runs whose RSS growth was measured (the first `MEASURED_RUNS`), and the growth they left. */
  measuredRuns: number;
  arenaBytes: number;
}

const cache = new Map<string, CacheEntry>();
/** The key of the last hit: it is already the most recently used entry. */
let lastHitKey: string | undefined;
let arenaTotal = 0;
/** The arena grows on the first run (and again on the second, when ORT allocates its memory pattern, if on). */
const MEASURED_RUNS = 2;

function release(key: string): void {
  const e = cache.get(key)!;
  if (ortConfig.sessionOptions.enableProfiling) e.session.endProfiling();
  e.session.dispose();
  cache.delete(key);
  if (key === lastHitKey) lastHitKey = undefined;
  arenaTotal -= e.arenaBytes;
}

/** Releases least recently used sessions holding arena memory until the total fits (`keep` stays). */
function trimArenas(keep: CacheEntry): void {
  if (arenaTotal <= ortConfig.maxArenaBytes) return;
  for (const [key, e] of cache) {
    if (arenaTotal <= ortConfig.maxArenaBytes) break;
    if (e === keep || e.arenaBytes === 0) continue;
    release(key);
    ortStats.released++;
  }
}

function lookup(key: string): CacheEntry | undefined {
  const hit = cache.get(key);
  if (hit) {
    // Most recently used goes last. A repeated call (the common case: an eager op in a loop) is
    // already last; moving it again cost a Map delete and insert per call (9% of an eager
    // [256,256] add's CPU profile).
    if (key !== lastHitKey) {
      cache.delete(key);
      cache.set(key, hit);
      lastHitKey = key;
    }
    ortStats.cacheHits++;
  }
  return hit;
}

function compile(key: string, p: Prepared): CacheEntry {
  const { build, inputNames, hasFloat64, hasHalfFeeds, slots } = p;
  const ort = load();
  if (!ort) throw new Error(`ONNX Runtime is not available (${loadError}); use setBackend('js') to run on the JS reference kernels`);
  const { bytes, outputNames } = build();
  if (ortConfig.dumpDir) dumpModel(bytes);
  const session = new ort.binding.binding.InferenceSession();
  try {
    session.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
      executionProviders: ['cpu'],
      // ORT's extended fusions (e.g. MatMul+Transpose -> FusedMatMul) only have float32 kernels.
      graphOptimizationLevel: hasFloat64 ? 'basic' : 'all',
      // The memory pattern lays every temporary of a run out in one block planned from the first
      // run; with weights widened in the graph that block holds several of them at once (on a
      // 1B model, a GB more than allocating each as it comes).
      enableMemPattern: hasHalfFeeds ? false : ortConfig.memPattern,
      ...intraOpThreads(),
      extra: {
        session: { intra_op: { allow_spinning: ortConfig.allowSpinning ? '1' : '0' } },
        // Blocks of a 16-bit weight are Slices of it, widened one at a time; this fusion would
        // turn them into one Split that copies the whole weight at once.
        ...(hasHalfFeeds ? { optimization: { disable_specified_optimizers: 'GatherSliceToSplitFusion' } } : {}),
      },
      ...ortConfig.sessionOptions,
    });
  } catch (e) {
    throw new Error(`ONNX Runtime rejected a lowered graph: ${e instanceof Error ? e.message : String(e)}`);
  }
  ortStats.compiles++;
  const entry: CacheEntry = { session, inputNames, outputNames, slots, measuredRuns: 0, arenaBytes: 0 };
  cache.set(key, entry);
  lastHitKey = key; // the new entry is the most recently used
  while (cache.size > ortConfig.maxSessions) {
    release(cache.keys().next().value as string);
    ortStats.released++;
  }
  return entry;
}

/** The intra-op thread option of a new session (see `ortConfig.intraOpNumThreads`). */
function intraOpThreads(): { intraOpNumThreads?: number } {
  const n = ortConfig.intraOpNumThreads > 0 ? ortConfig.intraOpNumThreads : physicalCoreCount();
  return n ? { intraOpNumThreads: n } : {};
}

let dumpCount = 0;
function dumpModel(bytes: Uint8Array): void {
  const require = nodeRequire();
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  fs.mkdirSync(ortConfig.dumpDir!, { recursive: true });
  // Written beside and renamed into place, so a reader never sees half a model (io's atomic writes sit above this layer).
  const file = path.join(ortConfig.dumpDir!, `model-${process.pid}-${dumpCount++}.onnx`);
  fs.writeFileSync(`${file}.tmp`, bytes);
  fs.renameSync(`${file}.tmp`, file);
}

/** Releases every cached session. */
export function clearSessionCache(): void {
  for (const key of [...cache.keys()]) release(key);
}

export function sessionCacheSize(): number {
  return cache.size;
}

/**
 * The memory the kept sessions' ORT arenas hold, as measured: each session's RSS growth over its
 * first runs, less what the runs returned (see `ortConfig.maxArenaBytes`).
 */
export function sessionArenaBytes(): number {
  return arenaTotal;
}

/**
 * A graph's structural key and feed slots from its own earlier prepare (jit's kept traces run the
 * same graph again): runGraphOrt fills an empty one, and with a filled one skips prepare on a hit.
 */
export interface KnownLowering {
  key?: string;
  slots?: FeedSlot[];
}

/**
 * Compiles (or reuses) the graph's session and runs it on the graph's feeds. `cacheKey`, when
 * given, must identify the graph's structure (eager calls pass op, attributes, dtypes and shapes);
 * a hit then skips building the structural key. `known` (jit's kept traces) does the same for a
 * graph run before.
 */
export function runGraphOrt(graph: Graph, cacheKey?: string, known?: KnownLowering): TypedArray[] {
  let entry: CacheEntry | undefined;
  // Which of this graph's inputs feed the model. The structural key does not say which graph
  // input is which (f(a, b) = a.exp() and g(a, b) = b.exp() share one model), so on a structural
  // hit the mapping must come from this graph's own prepare, not from the cached entry.
  let slots: FeedSlot[] | undefined;
  if (known?.key !== undefined) {
    entry = lookup(known.key);
    slots = known.slots;
  } else if (cacheKey !== undefined) {
    entry = lookup(cacheKey);
    slots = entry?.slots;
  }
  if (!entry) {
    const p = prepare(graph);
    const key = cacheKey ?? p.key;
    entry = (cacheKey === undefined ? lookup(key) : undefined) ?? compile(key, p);
    slots = p.slots;
    if (known && cacheKey === undefined) {
      known.key = p.key;
      known.slots = p.slots;
    }
  }
  const ort = load()!;
  const feeds: Record<string, unknown> = {};
  slots!.forEach(({ input, part }, k) => {
    const t = graph.feeds[input]!;
    const f = t._stored;
    let value: unknown;
    if (part === 'values') value = new ort.OrtTensor(t.dtype, t._storage(), t.shape);
    else if (!f) throw new Error('internal: a graph compiled for a stored feed was fed a plain tensor');
    else if (part === 'stored') value = new ort.OrtTensor(f.format === 'float16' ? 'float16' : t.dtype, f.data as TypedArray, f.shape);
    else value = new ort.OrtTensor('float32', f.scale!, scaleShape(f));
    feeds[entry.inputNames[k]!] = value;
  });
  // ORT allocates the outputs (from its arena) and the binding copies each into a new JS array.
  // Passing preallocated JS buffers as fetches does not save that copy: onnxruntime-node 1.23
  // still copies a preallocated output into a new array, and ORT writing into fresh JS memory is
  // slower still (eager add of [256,256] measured 250 us per call that way, 85 us this way).
  const fetches: Record<string, null> = {};
  for (const n of entry.outputNames) fetches[n] = null;
  ortStats.runs++;
  // The first runs of a session measure what its arena keeps (reading RSS costs about 20 us).
  const measure = entry.measuredRuns < MEASURED_RUNS;
  const rssBefore = measure ? process.memoryUsage.rss() : 0;
  let results: ReturnType<NativeSession['run']>;
  try {
    // ORT's own log line for a failed run repeats the error thrown here (severity 4: fatal only).
    results = entry.session.run(feeds, fetches, { logSeverityLevel: 4 });
  } catch (e) {
    const bytes = ortAllocationBytes(e);
    if (bytes !== null)
      throw new OutOfMemoryError(
        `ONNX Runtime could not allocate ${bytes >= 0 ? `a buffer of ${formatBytes(bytes)}` : 'memory'} for this run; ` +
          'run less at once (a smaller batch or shorter sequences)',
        bytes >= 0 ? bytes : null,
        { cause: e },
      );
    throw new Error(`ONNX Runtime failed to run a compiled graph: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (measure) {
    let outBytes = 0;
    for (const n of entry.outputNames) outBytes += results[n]?.data.byteLength ?? 0;
    const grown = Math.max(0, process.memoryUsage.rss() - rssBefore - outBytes);
    entry.measuredRuns++;
    entry.arenaBytes += grown;
    arenaTotal += grown;
    trimArenas(entry);
  }
  return entry.outputNames.map((n, k) => {
    const o = graph.outputs[k]!;
    const r = results[n]!;
    // ORT's computed shape must be the declared one, so a lowering bug cannot hide behind a
    // result of the right size (or a zero-size result).
    if (r.dims.length !== o.shape.length || r.dims.some((d, i) => d !== o.shape[i]))
      throw new Error(`internal: ONNX Runtime computed shape [${r.dims}] for an output declared [${o.shape}]`);
    return normalize(o.dtype, r.data, sizeOf(o.shape));
  });
}

function normalize(dtype: DType, data: TypedArray, size: number): TypedArray {
  if (size === 0) return allocate(dtype, 0);
  if (data.length !== size) throw new Error(`internal: ORT returned ${data.length} elements, expected ${size}`);
  return data;
}
