/**
 * The ONNX Runtime backend in a browser: onnxruntime-web's WebAssembly build (SIMD, and threads
 * where the page is cross-origin isolated), called synchronously.
 *
 * Why not `ort.InferenceSession`: its `run` returns a Promise, and glassbox's engine is
 * synchronous (eager ops, `dataSync()`). Under the Promise, onnxruntime-web's plain wasm build
 * (`ort-wasm-simd-threaded.{mjs,wasm}`, the one without JSEP/WebGPU) runs `_OrtRun` to
 * completion synchronously, so this file loads that Emscripten module itself and calls the same
 * exported C functions onnxruntime-web's own `wasm-core-impl` calls (create session, create
 * tensors, run, read outputs, release). The exports are those of the pinned onnxruntime-web
 * version (package.json); `initWasmRuntime` checks that each one it calls is there.
 *
 * WebGPU is not offered: onnxruntime-web's WebGPU build runs asynchronously (Asyncify / JSPI),
 * which a synchronous engine cannot wait for.
 *
 * Loading is async (`await initWasmRuntime(...)`, once, e.g. in a Web Worker before the model
 * loads); every run after that is synchronous. Threads: ORT's intra-op pool has `numThreads`
 * threads (pthreads in Web Workers over a SharedArrayBuffer), which needs `crossOriginIsolated`;
 * without it the runtime falls back to one thread and says so in `name` and `threadsNote`.
 */
import { allocate, type DType, type TypedArray } from '../dtype.js';
import { prepare, scaleShape, type FeedSlot, type Prepared } from '../onnx/lower.js';
import { sizeOf } from '../shape.js';
import type { Graph } from '../trace.js';
import { ortStats } from './ort.js';
import { isMarkedWeight } from '../weights.js';
import type { GraphRuntime } from './runtime.js';

/** The parts of onnxruntime-web's Emscripten module this file calls (wasm32: pointers are numbers). */
interface OrtWasmModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  stackSave(): number;
  stackRestore(stack: number): void;
  stackAlloc(size: number): number;
  UTF8ToString(ptr: number): string;
  _OrtInit(numThreads: number, loggingLevel: number): number;
  _OrtGetLastError(codePtr: number, messagePtr: number): number;
  _OrtCreateSessionOptions(
    graphOptimizationLevel: number,
    enableCpuMemArena: boolean,
    enableMemPattern: boolean,
    executionMode: number,
    enableProfiling: boolean,
    profileFilePrefix: number,
    logId: number,
    logSeverityLevel: number,
    logVerbosityLevel: number,
    optimizedModelFilePath: number,
  ): number;
  _OrtReleaseSessionOptions(handle: number): number;
  _OrtCreateSession(dataPtr: number, dataLength: number, optionsHandle: number): number;
  _OrtReleaseSession(handle: number): number;
  _OrtCreateTensor(dataType: number, dataPtr: number, dataLength: number, dimsPtr: number, dimsLength: number, location: number): number;
  _OrtGetTensorData(tensor: number, typePtr: number, dataPtrPtr: number, dimsPtrPtr: number, dimsLengthPtr: number): number;
  _OrtReleaseTensor(tensor: number): number;
  _OrtCreateRunOptions(logSeverityLevel: number, logVerbosityLevel: number, terminate: boolean, tag: number): number;
  _OrtRun(
    session: number,
    inputNamesPtr: number,
    inputsPtr: number,
    inputCount: number,
    outputNamesPtr: number,
    outputCount: number,
    outputsPtr: number,
    runOptions: number,
  ): number;
  _OrtFree(ptr: number): number;
}

const REQUIRED_EXPORTS = [
  '_malloc',
  '_free',
  'stackSave',
  'stackRestore',
  'stackAlloc',
  'UTF8ToString',
  '_OrtInit',
  '_OrtGetLastError',
  '_OrtCreateSessionOptions',
  '_OrtReleaseSessionOptions',
  '_OrtCreateSession',
  '_OrtReleaseSession',
  '_OrtCreateTensor',
  '_OrtGetTensorData',
  '_OrtReleaseTensor',
  '_OrtCreateRunOptions',
  '_OrtRun',
  '_OrtFree',
] as const;

/** ONNX TensorProto element types (onnxruntime-web's `tensorDataTypeStringToEnum`). */
const ONNX_TYPE: Record<string, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };
/** onnxruntime-web's data location enum: 'cpu'. */
const LOCATION_CPU = 1;
/** ORT graph optimization levels. */
const OPT_BASIC = 1;
const OPT_ALL = 99;
/** ORT logging level 'error' (3): warnings about unused initializers are not the user's business. */
const LOG_ERROR = 3;

/**
 * Where the wasm runtime's time goes, summed over runs since the last reset (the browser
 * benchmark's profile): compiling sessions, copying feeds into the wasm heap (and how many bytes),
 * ORT's run itself, and copying outputs out.
 */
export const wasmStats = {
  compileMs: 0,
  feedMs: 0,
  feedBytes: 0,
  /** Feeds found already resident in the wasm heap (the model's frozen weights), and their bytes. */
  residentHits: 0,
  residentBytes: 0,
  runMs: 0,
  readMs: 0,
  reset(): void {
    this.compileMs = this.feedMs = this.feedBytes = this.residentHits = this.residentBytes = this.runMs = this.readMs = 0;
  },
};

/** Settings of the wasm runtime. */
export const wasmConfig = {
  /** Compiled sessions kept (least recently used are released): wasm memory is at most 4 GB. */
  maxSessions: 256,
  /**
   * Bytes of model weights (`markWeights`, src/tensor/weights.ts) kept inside compiled sessions
   * as initializers, over all sessions; least recently used sessions holding weights are released
   * to stay within it. A graph bakes its weights in only when they take at most a quarter of it,
   * so that sessions of a few shapes (a forward, a sweep's passes) fit together and alternating
   * between them does not recompile; a larger model's weights are fed on every run instead.
   * Baking them in saves their copy into the wasm heap per run, and lets ONNX Runtime fold what
   * depends on weights alone (transposes, 16-bit decodes) and pack matmul operands once, at
   * compile time; it costs a compile per model and graph shape, and the weights' bytes per
   * session.
   */
  maxResidentBytes: 2 ** 30,
};

export interface WasmRuntimeOptions {
  /**
   * URL of the folder holding onnxruntime-web's `ort-wasm-simd-threaded.mjs` and `.wasm` (copied
   * from node_modules/onnxruntime-web/dist by the static build), ending in '/'.
   */
  wasmBase: string;
  /** Intra-op threads; default: the browser's `hardwareConcurrency`, 1 when the page is not cross-origin isolated. */
  numThreads?: number;
}

interface Session {
  handle: number;
  /** Bytes of weights baked into the session as initializers (0: every input is fed). */
  residentBytes: number;
  /** UTF-8 copies of the model's input and output names in wasm memory (freed with the session). */
  inputNamePtrs: number[];
  outputNamePtrs: number[];
  /** What each fed input (`inputNamePtrs`) is fed. */
  slots: FeedSlot[];
}

/** A jitted graph's inputs that are marked weights, baked into its session instead of fed. */
interface Resident {
  /** Indices into the graph's `slots` / `inputNames`. */
  indices: Set<number>;
  /** Input name -> its raw bytes. */
  bytes: Map<string, Uint8Array>;
  total: number;
  /** Which tensors they are (identity), for the session key. */
  keySuffix: string;
}

/** The loaded runtime: what `initWasmRuntime` returns and installs. */
export interface WasmRuntime extends GraphRuntime {
  readonly threads: number;
  /** Why threads are off, when they are (e.g. the page is not cross-origin isolated); null when on. */
  readonly threadsNote: string | null;
  /** Releases every cached session. */
  clearSessions(): void;
  readonly sessionCount: number;
}

/**
 * Loads onnxruntime-web's wasm module from `options.wasmBase` and returns a synchronous graph
 * runtime over it (install it with `setGraphRuntime`).
 */
export async function initWasmRuntime(options: WasmRuntimeOptions): Promise<WasmRuntime> {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const hardware = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  let threads = options.numThreads ?? (isolated ? Math.max(1, Math.min(hardware, 16)) : 1);
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`initWasmRuntime: numThreads must be a positive integer, got ${String(options.numThreads)}`);
  let threadsNote: string | null = null;
  if (threads > 1 && !isolated) {
    threadsNote = `asked for ${threads} threads, but the page is not cross-origin isolated (COOP/COEP headers), so WebAssembly threads are off: running on 1 thread`;
    threads = 1;
  } else if (!isolated) {
    threadsNote = 'the page is not cross-origin isolated (COOP/COEP headers), so WebAssembly threads are off: running on 1 thread';
  }
  if (!options.wasmBase.endsWith('/')) throw new Error(`initWasmRuntime: wasmBase must end in '/', got '${options.wasmBase}'`);
  const mjsUrl = `${options.wasmBase}ort-wasm-simd-threaded.mjs`;
  let factory: (config: object) => Promise<OrtWasmModule>;
  try {
    factory = ((await import(/* @vite-ignore */ mjsUrl)) as { default: typeof factory }).default;
  } catch (e) {
    throw new Error(
      `initWasmRuntime: could not load onnxruntime-web's wasm module from ${mjsUrl}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const wasm = await factory({ numThreads: threads, locateFile: (file: string) => `${options.wasmBase}${file}` });
  const missing = REQUIRED_EXPORTS.filter((k) => typeof (wasm as unknown as Record<string, unknown>)[k] !== 'function');
  if (missing.length > 0)
    throw new Error(
      `initWasmRuntime: ${mjsUrl} lacks ${missing.join(', ')}; is it onnxruntime-web's plain wasm build at the pinned version?`,
    );
  if (wasm._OrtInit(threads, LOG_ERROR) !== 0) lastError(wasm, 'could not initialize ONNX Runtime');
  return makeRuntime(wasm, threads, threadsNote);
}

function lastError(wasm: OrtWasmModule, what: string): never {
  const stack = wasm.stackSave();
  try {
    const p = wasm.stackAlloc(8);
    wasm._OrtGetLastError(p, p + 4);
    const code = new Int32Array(wasm.HEAPU8.buffer, p, 2);
    const message = code[1] ? wasm.UTF8ToString(code[1]) : '';
    throw new Error(`onnxruntime-web: ${what} (error ${code[0]}: ${message})`);
  } finally {
    wasm.stackRestore(stack);
  }
}

function allocString(wasm: OrtWasmModule, s: string): number {
  const bytes = new TextEncoder().encode(s);
  const ptr = wasm._malloc(bytes.length + 1);
  wasm.HEAPU8.set(bytes, ptr);
  wasm.HEAPU8[ptr + bytes.length] = 0;
  return ptr;
}

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function makeRuntime(wasm: OrtWasmModule, threads: number, threadsNote: string | null): WasmRuntime {
  const sessions = new Map<string, Session>();
  let residentTotal = 0;
  const runOptions = wasm._OrtCreateRunOptions(LOG_ERROR, 0, false, 0);
  if (runOptions === 0) lastError(wasm, 'could not create run options');

  function compile(key: string, p: Prepared, resident: Resident | null): Session {
    const t0 = performance.now();
    try {
      return compileSession(key, p, resident);
    } finally {
      wasmStats.compileMs += performance.now() - t0;
    }
  }

  function compileSession(key: string, p: Prepared, resident: Resident | null): Session {
    const { bytes, outputNames } = p.build(resident?.bytes);
    const options = wasm._OrtCreateSessionOptions(
      p.hasFloat64 ? OPT_BASIC : OPT_ALL,
      true,
      !p.hasHalfFeeds,
      0,
      false,
      0,
      0,
      LOG_ERROR,
      0,
      0,
    );
    if (options === 0) lastError(wasm, 'could not create session options');
    const modelPtr = wasm._malloc(bytes.byteLength);
    let handle = 0;
    try {
      wasm.HEAPU8.set(bytes, modelPtr);
      handle = wasm._OrtCreateSession(modelPtr, bytes.byteLength, options) as unknown as number;
      if (typeof handle !== 'number')
        throw new Error(
          'onnxruntime-web: _OrtCreateSession returned a Promise; this wasm build is asynchronous (JSEP/WebGPU), use the plain one',
        );
      if (handle === 0) lastError(wasm, 'rejected a lowered graph');
    } finally {
      wasm._free(modelPtr);
      wasm._OrtReleaseSessionOptions(options);
    }
    ortStats.compiles++;
    const fed = resident ? p.slots.map((_, i) => i).filter((i) => !resident.indices.has(i)) : p.slots.map((_, i) => i);
    const session: Session = {
      handle,
      residentBytes: resident?.total ?? 0,
      inputNamePtrs: fed.map((i) => allocString(wasm, p.inputNames[i]!)),
      outputNamePtrs: outputNames.map((n) => allocString(wasm, n)),
      slots: fed.map((i) => p.slots[i]!),
    };
    sessions.set(key, session);
    residentTotal += session.residentBytes;
    return session;
  }

  function release(key: string): void {
    const s = sessions.get(key)!;
    residentTotal -= s.residentBytes;
    wasm._OrtReleaseSession(s.handle);
    for (const ptr of [...s.inputNamePtrs, ...s.outputNamePtrs]) wasm._free(ptr);
    sessions.delete(key);
  }

  function feedValue(graph: Graph, slot: FeedSlot): { type: string; data: TypedArray; dims: readonly number[] } {
    const t = graph.feeds[slot.input]!;
    const f = t._stored;
    if (slot.part === 'values') return { type: t.dtype, data: t._storage(), dims: t.shape };
    if (!f) throw new Error('internal: a graph compiled for a stored feed was fed a plain tensor');
    if (slot.part === 'stored') return { type: f.format === 'float16' ? 'float16' : t.dtype, data: f.data as TypedArray, dims: f.shape };
    return { type: 'float32', data: f.scale!, dims: scaleShape(f) };
  }

  /**
   * The marked weights among a jitted graph's inputs, to bake into its session; null when there
   * are none, or when they take more than a quarter of `maxResidentBytes`.
   */
  function residentInputs(graph: Graph, p: Prepared): Resident | null {
    const r: Resident = { indices: new Set(), bytes: new Map(), total: 0, keySuffix: '' };
    const ids: string[] = [];
    p.slots.forEach((slot, i) => {
      const t = graph.feeds[slot.input]!;
      if (!isMarkedWeight(t)) return;
      const b = bytesOf(feedValue(graph, slot).data);
      r.indices.add(i);
      r.bytes.set(p.inputNames[i]!, b);
      r.total += b.byteLength;
      ids.push(`${i}=${t.id}`);
    });
    if (r.indices.size === 0 || r.total > wasmConfig.maxResidentBytes / 4) return null;
    r.keySuffix = `;resident(${ids.join(',')})`;
    return r;
  }

  /** Releases least recently used sessions holding weights until `incoming` more bytes fit. */
  function makeRoomForResident(incoming: number): void {
    for (const [key, s] of sessions) {
      if (residentTotal + incoming <= wasmConfig.maxResidentBytes) return;
      if (s.residentBytes > 0) release(key);
    }
  }

  function run(graph: Graph, cacheKey?: string): TypedArray[] {
    // Eager calls pass a key that names the structure; jitted graphs are keyed by their lowering.
    let session = cacheKey !== undefined ? sessions.get(cacheKey) : undefined;
    // Which of this graph's inputs feed the model. The structural key does not say which graph
    // input is which, so on a structural hit the mapping comes from this graph's own lowering.
    let slots = session?.slots;
    if (!session) {
      const p = prepare(graph);
      // Jitted graphs (no structural key) bake in the model's weights; eager ops feed everything.
      const resident = cacheKey === undefined ? residentInputs(graph, p) : null;
      const key = (cacheKey ?? p.key) + (resident?.keySuffix ?? '');
      session = sessions.get(key);
      if (session) {
        ortStats.cacheHits++;
        sessions.delete(key);
        sessions.set(key, session);
      } else {
        if (resident) makeRoomForResident(resident.total);
        session = compile(key, p, resident);
        while (sessions.size > wasmConfig.maxSessions) release(sessions.keys().next().value as string);
      }
      // This graph's own mapping (equal keys do not say which graph input feeds which slot).
      slots = resident ? p.slots.filter((_, i) => !resident.indices.has(i)) : p.slots;
      if (resident) {
        wasmStats.residentHits += resident.indices.size;
        wasmStats.residentBytes += resident.total;
      }
    } else {
      ortStats.cacheHits++;
      sessions.delete(cacheKey!);
      sessions.set(cacheKey!, session);
    }
    const inputCount = session.inputNamePtrs.length;
    const outputCount = session.outputNamePtrs.length;
    const dataPtrs: number[] = [];
    const inputTensors: number[] = [];
    const outputTensors: number[] = [];
    const stack = wasm.stackSave();
    let t0 = performance.now();
    try {
      for (const slot of slots!) {
        const { type, data, dims } = feedValue(graph, slot);
        const enumType = ONNX_TYPE[type];
        if (enumType === undefined) throw new Error(`onnxruntime-web backend: no ONNX type for dtype ${type}`);
        const bytes = bytesOf(data);
        // ORT reads a tensor of zero bytes from a null pointer without touching it.
        const ptr = bytes.byteLength > 0 ? wasm._malloc(bytes.byteLength) : 0;
        if (ptr) dataPtrs.push(ptr);
        wasm.HEAPU8.set(bytes, ptr);
        const dimsPtr = wasm.stackAlloc(4 * Math.max(1, dims.length));
        new Int32Array(wasm.HEAPU8.buffer, dimsPtr, dims.length).set(dims);
        const tensor = wasm._OrtCreateTensor(enumType, ptr, bytes.byteLength, dimsPtr, dims.length, LOCATION_CPU);
        if (tensor === 0) lastError(wasm, 'could not create an input tensor');
        inputTensors.push(tensor);
        wasmStats.feedBytes += bytes.byteLength;
      }
      const inNames = wasm.stackAlloc(4 * Math.max(1, inputCount));
      const inValues = wasm.stackAlloc(4 * Math.max(1, inputCount));
      const outNames = wasm.stackAlloc(4 * Math.max(1, outputCount));
      const outValues = wasm.stackAlloc(4 * Math.max(1, outputCount));
      const heap32 = (ptr: number, n: number) => new Int32Array(wasm.HEAPU8.buffer, ptr, n);
      heap32(inNames, inputCount).set(session.inputNamePtrs);
      heap32(inValues, inputCount).set(inputTensors);
      heap32(outNames, outputCount).set(session.outputNamePtrs);
      heap32(outValues, outputCount).fill(0);
      ortStats.runs++;
      wasmStats.feedMs += performance.now() - t0;
      t0 = performance.now();
      const code = wasm._OrtRun(session.handle, inNames, inValues, inputCount, outNames, outputCount, outValues, runOptions);
      if (typeof code !== 'number') throw new Error('onnxruntime-web: _OrtRun returned a Promise; this wasm build is asynchronous');
      if (code !== 0) lastError(wasm, 'failed to run a compiled graph');
      outputTensors.push(...heap32(outValues, outputCount));
      wasmStats.runMs += performance.now() - t0;
      t0 = performance.now();
      const meta = wasm.stackAlloc(16);
      const outs = graph.outputs.map((o, k) => {
        if (wasm._OrtGetTensorData(outputTensors[k]!, meta, meta + 4, meta + 8, meta + 12) !== 0)
          lastError(wasm, 'could not read an output');
        const [, dataPtr, dimsPtr, rank] = heap32(meta, 4) as unknown as [number, number, number, number];
        const dims = Array.from(heap32(dimsPtr, rank));
        wasm._OrtFree(dimsPtr);
        // ORT's computed shape must be the declared one, so a lowering bug cannot hide behind a
        // result of the right size.
        if (dims.length !== o.shape.length || dims.some((d, i) => d !== o.shape[i]))
          throw new Error(`internal: ONNX Runtime computed shape [${dims}] for an output declared [${o.shape}]`);
        return copyOut(wasm, o.dtype, dataPtr, sizeOf(o.shape));
      });
      wasmStats.readMs += performance.now() - t0;
      return outs;
    } finally {
      wasm.stackRestore(stack);
      for (const t of inputTensors) wasm._OrtReleaseTensor(t);
      for (const t of outputTensors) if (t) wasm._OrtReleaseTensor(t);
      for (const ptr of dataPtrs) wasm._free(ptr);
    }
  }

  const name = `onnxruntime-web (wasm SIMD, ${threads} thread${threads === 1 ? '' : 's'})`;
  return {
    name,
    threads,
    threadsNote,
    available: () => true,
    run,
    clearSessions: () => {
      for (const key of [...sessions.keys()]) release(key);
    },
    get sessionCount() {
      return sessions.size;
    },
  };
}

/** Copies `size` values of `dtype` out of wasm memory (which the next run may reuse or grow). */
function copyOut(wasm: OrtWasmModule, dtype: DType, ptr: number, size: number): TypedArray {
  const out = allocate(dtype, size);
  if (size > 0) bytesOf(out).set(wasm.HEAPU8.subarray(ptr, ptr + out.byteLength));
  return out;
}
