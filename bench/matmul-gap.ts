/**
 * One MatMul node from onnxruntime-node, for bench/matmul-gap.sh (which runs it next to Python).
 *
 *   node --import tsx bench/matmul-gap.ts DIR M K N default|tuned feed|init
 *
 * Times DIR/matmul_feed.onnx or DIR/matmul_init.onnx (written by bench/matmul-gap.py) through the
 * package's public API (`InferenceSession.create`, `await session.run(feeds)`), with the session
 * options Python uses: 2 intra-op threads, 1 inter-op thread, ORT's defaults otherwise. `tuned`
 * first applies glassbox's allocator setting (src/tensor/backends/native.ts); `default` leaves the
 * process as Node starts it. The setting is process-wide and cannot be undone, and glibc's own
 * thresholds move with what the process did before, hence one process per mode and model. Prints one JSON object: median ms, GFLOP/s, CPU ms and minor page faults per run.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { mallocConfig, tuneMalloc } from '../src/tensor/backends/native.js';

const REPS = Number(process.env.REPS ?? 60);
const WARMUP = Number(process.env.WARMUP ?? 100);
const THREADS = 2;

interface OrtTensor {
  readonly dims: readonly number[];
}
interface OrtSession {
  inputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
}
interface Ort {
  InferenceSession: { create(path: string, options: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

function randomArray(n: number, scale: number, seed: number): Float32Array {
  // A small LCG: reproducible inputs without pulling in glassbox's engine.
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return a;
}

async function timeModel(ort: Ort, path: string, m: number, k: number, n: number) {
  const session = await ort.InferenceSession.create(path, {
    executionProviders: ['cpu'],
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
  });
  const feeds: Record<string, OrtTensor> = { A: new ort.Tensor('float32', randomArray(m * k, 1, 1), [m, k]) };
  if (session.inputNames.includes('B')) feeds.B = new ort.Tensor('float32', randomArray(k * n, 0.02, 2), [k, n]);
  const first = await session.run(feeds);
  if (first.Y?.dims.join(',') !== `${m},${n}`) throw new Error(`${path}: output Y has shape [${first.Y?.dims}], expected [${m},${n}]`);
  for (let i = 1; i < WARMUP; i++) await session.run(feeds);
  const faults0 = process.resourceUsage().minorPageFault;
  const cpu0 = process.cpuUsage();
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  const faults = process.resourceUsage().minorPageFault - faults0;
  times.sort((x, y) => x - y);
  const ms = times[times.length >> 1]!;
  return {
    ms,
    min_ms: times[0]!,
    gflops: (2 * m * k * n) / ms / 1e6,
    cpu_ms_per_run: (cpu.user + cpu.system) / 1000 / REPS,
    faults_per_run: faults / REPS,
  };
}

async function main(): Promise<void> {
  const [dir, ms, ks, ns, mode, kind] = process.argv.slice(2);
  const [m, k, n] = [ms, ks, ns].map(Number) as [number, number, number];
  if (!dir || !(m > 0 && k > 0 && n > 0) || (mode !== 'default' && mode !== 'tuned') || (kind !== 'feed' && kind !== 'init'))
    throw new Error('usage: node --import tsx bench/matmul-gap.ts DIR M K N default|tuned feed|init');
  let malloc: unknown = 'untouched';
  if (mode === 'tuned') {
    const t = tuneMalloc();
    if (!t.applied) throw new Error(`bench/matmul-gap.ts: the allocator setting was not applied: ${t.reason}`);
    malloc = { mmapThresholdBytes: mallocConfig.mmapThresholdBytes, trimThresholdBytes: mallocConfig.trimThresholdBytes };
  }
  const require = createRequire(import.meta.url);
  const ort = require('onnxruntime-node') as Ort;
  const version = (require('onnxruntime-node/package.json') as { version: string }).version;
  const res = {
    runtime: `onnxruntime-node ${version}`,
    mode,
    kind,
    malloc,
    ...(await timeModel(ort, join(dir, `matmul_${kind}.onnx`), m, k, n)),
  };
  console.log(JSON.stringify(res));
}

await main();
