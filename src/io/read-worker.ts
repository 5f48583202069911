/**
 * A read worker (see `readTensorsParallel` in parallel-read.ts): claims jobs from the shared
 * counter, reads each tensor into arrays of its own (first touching their memory on this thread,
 * which is most of the cost of a large read), and hands the arrays to the main thread by transfer.
 */
import { closeSync, openSync } from 'node:fs';
import { workerData, type MessagePort } from 'node:worker_threads';
import { readFloatTensor, type FloatTensorPlace, type WeightDtype } from './float-read.js';

interface Job extends FloatTensorPlace {
  path: string;
}

const { jobs, control, port, weightDtype, flag } = workerData as {
  jobs: Job[];
  control: Int32Array;
  port: MessagePort;
  weightDtype: WeightDtype;
  /** the control slot this worker sets when it stops */
  flag: number;
};

const fds = new Map<string, number>();
try {
  for (;;) {
    const i = Atomics.add(control, 0, 1);
    if (i >= jobs.length) break;
    const job = jobs[i]!;
    try {
      let fd = fds.get(job.path);
      if (fd === undefined) fds.set(job.path, (fd = openSync(job.path, 'r')));
      const data = readFloatTensor(
        fd,
        job,
        weightDtype,
        (got) => new Error(`the file ended after ${got} of the tensor's ${job.byteLength} bytes`),
      );
      const buffers = 'values' in data ? [data.values.buffer] : [data.bits.buffer, ...(data.scale ? [data.scale.buffer] : [])];
      port.postMessage({ i, data }, buffers as ArrayBuffer[]);
    } catch (e) {
      port.postMessage({ i, error: e instanceof Error ? e.message : String(e) });
    }
    Atomics.add(control, 1, 1);
    Atomics.notify(control, 1);
  }
} finally {
  for (const fd of fds.values()) closeSync(fd);
  port.close();
  Atomics.store(control, flag, 1);
  Atomics.notify(control, 1);
}
