/**
 * Reading many floating-point tensors on several threads. Most of the time of a large read is the
 * kernel handing the process fresh memory page by page as the arrays are first written (a 1B
 * model in float32 is 1.2 million 4 KB pages), and that work scales with threads. The main
 * thread and up to `threads - 1` workers (read-worker.ts) claim tensors from a shared counter,
 * each reading its tensors into arrays of its own; workers hand theirs over by transfer (no copy;
 * ONNX Runtime cannot read SharedArrayBuffers, so the arrays cannot be shared instead). The main
 * thread waits synchronously: loading stays a synchronous call.
 */
import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { readFloatTensor, type FloatTensorData, type FloatTensorPlace, type WeightDtype } from './float-read.js';

export interface ReadJob extends FloatTensorPlace {
  /** the file the tensor is in */
  path: string;
}

export interface ParallelOptions {
  /** Threads reading, the main thread included (default: the machine's available parallelism, at most 4). */
  threads?: number;
  /** Below this many bytes in all, read on the main thread only (default 64 MB: a worker takes a while to start). */
  minBytes?: number;
  /** @internal false: the main thread only collects (tests use it to make the workers read everything) */
  mainThreadReads?: boolean;
}

const DEFAULT_MIN_BYTES = 64 << 20;

/**
 * Reads every job, returning the arrays in job order. `fail(job, problem)` builds the error for a
 * job that cannot be read (the file ended, a worker stopped).
 */
export function readFloatTensorsParallel(
  jobs: readonly ReadJob[],
  weightDtype: WeightDtype,
  options: ParallelOptions,
  fail: (job: ReadJob, problem: string) => Error,
): FloatTensorData[] {
  const total = jobs.reduce((n, j) => n + j.byteLength, 0);
  const threads = Math.max(1, Math.floor(options.threads ?? Math.min(4, availableParallelism())));
  const nWorkers = total >= (options.minBytes ?? DEFAULT_MIN_BYTES) ? Math.min(threads - 1, jobs.length - 1) : 0;
  // control[0]: next job to claim; [1]: jobs finished by workers; [2 + w]: worker w has stopped.
  const control = new Int32Array(new SharedArrayBuffer(4 * (2 + Math.max(0, nWorkers))));
  const workers: { worker: Worker; port: MessagePort; flag: number }[] = [];
  for (let w = 0; w < nWorkers; w++) {
    const { port1, port2 } = new MessageChannel();
    const worker = startWorker({ jobs, control, port: port2, weightDtype, flag: 2 + w }, port2);
    if (worker) workers.push({ worker, port: port1, flag: 2 + w });
    else port1.close();
  }

  const out: (FloatTensorData | undefined)[] = new Array(jobs.length);
  const fds = new Map<string, number>();
  let mine = 0;
  try {
    for (; workers.length === 0 || options.mainThreadReads !== false;) {
      const i = Atomics.add(control, 0, 1);
      if (i >= jobs.length) break;
      const job = jobs[i]!;
      let fd = fds.get(job.path);
      if (fd === undefined) fds.set(job.path, (fd = openSync(job.path, 'r')));
      out[i] = readFloatTensor(fd, job, weightDtype, (got) =>
        fail(job, `the file ended after ${got} of the tensor's ${job.byteLength} bytes: it was truncated after it was opened`),
      );
      mine++;
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }

  // Collect what the workers read.
  let received = 0;
  let error: Error | null = null;
  const expected = jobs.length - mine;
  while (received < expected) {
    let m: { message: { i: number; data?: FloatTensorData; error?: string } } | undefined;
    for (const w of workers) if ((m = receiveMessageOnPort(w.port) as typeof m)) break;
    if (m) {
      const { i, data, error: problem } = m.message;
      if (problem !== undefined) error ??= fail(jobs[i]!, problem);
      else out[i] = data;
      received++;
      continue;
    }
    const done = Atomics.load(control, 1);
    if (done > received) continue; // posted, not yet in the port
    if (workers.every((w) => Atomics.load(control, w.flag) === 1) && Atomics.load(control, 1) === received) {
      const job = jobs.find((_, k) => out[k] === undefined)!;
      error ??= fail(job, 'a read worker stopped before reading it');
      break;
    }
    Atomics.wait(control, 1, done, 200);
  }
  for (const w of workers) {
    w.port.close();
    w.worker.unref();
  }
  if (error) throw error;
  return out as FloatTensorData[];
}

/**
 * Starts a read worker; null where workers cannot start. Under tsx (the sources run as .ts) the
 * worker registers tsx itself first: workers do not inherit the parent's --import hooks.
 */
function startWorker(data: object, port: MessagePort): Worker | null {
  const ts = import.meta.url.endsWith('.ts');
  const url = new URL(`./read-worker.${ts ? 'ts' : 'js'}`, import.meta.url);
  let worker: Worker;
  try {
    if (!ts) worker = new Worker(url, { workerData: data, transferList: [port] });
    else {
      const tsx = import.meta.resolve('tsx/esm/api');
      const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
      worker = new Worker(code, { eval: true, workerData: data, transferList: [port] });
    }
  } catch {
    return null;
  }
  // A worker that fails to start claims no job: the main thread reads them all.
  worker.on('error', () => {});
  return worker;
}
