/**
 * The model worker: a thread that owns the server's copy of the model and runs every model
 * computation (compute.ts), so the HTTP thread never blocks on ONNX Runtime. Started by
 * `ModelWorker` (model-worker.ts) with the model's config and weights in `workerData`.
 *
 * Work is a queue of tasks run one step at a time, round robin: a request is one step, a job one
 * step per forward pass. Between steps the thread turns its event loop, so a cancellation or a
 * new request posted meanwhile is seen after the current step, never after the whole job. A job
 * whose step runs long (a graph's attribution) asks `shouldStop()` as it goes, which reads the
 * messages waiting at that moment, so a cancellation lands inside the step too. Every
 * compiled ONNX Runtime session lives in this thread, under the budgets the server was given.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { HookedTransformer } from '../model/hooked.js';
import { memoryConfig, shapeBuckets } from '../analysis/index.js';
import { ortConfig, ortStats, sessionArenaBytes, sessionCacheSize } from '../tensor/backends/ort.js';
import { asUserError, describeError } from './errors.js';
import { MODEL_CALLS, patchingSweep, type Computation, type Computer } from './compute.js';
import { featureFires, featureLogits, featureSteer, installSaes } from './feature-compute.js';
import { graphJob, interveneRun, type JobControl } from './graph-compute.js';
import { loadTracingTranscoders } from '../circuits/load-transcoders.js';
import { loadTunedLens } from '../analysis/tuned-lens.js';
import { unpackModel, type ToMain, type ToWorker, type WorkerInit } from './worker-protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;

function post(m: ToMain): void {
  port.postMessage(m);
}

let computer: Computer;
try {
  ortConfig.maxArenaBytes = init.settings.sessionBudgetBytes;
  ortConfig.maxSessions = init.settings.maxSessions;
  memoryConfig.memoryBudgetBytes = init.settings.passBudgetBytes;
  const { cfg, params } = unpackModel(init.model);
  const model = new HookedTransformer(cfg, params);
  computer = {
    model,
    buckets: shapeBuckets({ maxLength: init.settings.maxTokens }),
    passBudgetBytes: init.settings.passBudgetBytes,
    ...(init.settings.transcodersDir !== undefined ? { transcoders: loadTracingTranscoders(init.settings.transcodersDir) } : {}),
    ...(init.settings.tunedLensDir !== undefined ? { tunedLens: loadTunedLens(init.settings.tunedLensDir, model) } : {}),
  };
  installSaes(init.saes);
} catch (e) {
  post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
  throw e;
}

/** The computations a request may name, each run in one step. */
const CALLS: Record<string, Computation> = {
  ...MODEL_CALLS,
  fires: featureFires,
  featureSteer,
  featureLogits,
  intervene: interveneRun,
};
/** The computations a job may name, each a generator run one step per pass. */
const JOBS: Record<string, (c: Computer, args: never, control: JobControl) => Generator<unknown, unknown, void>> = {
  patching: patchingSweep,
  graph: graphJob,
};

interface Task {
  id: string;
  steps: Iterator<unknown, unknown, void>;
}

const queue: Task[] = [];
let scheduled = false;
/** The task whose step is running, and whether a cancellation for it arrived during the step. */
let running: { id: string; cancelled: boolean } | null = null;

/** For a job's `shouldStop`: handles the messages waiting now (a cancel among them), then answers. */
function cancelRequested(id: string): boolean {
  for (let r = receiveMessageOnPort(port); r; r = receiveMessageOnPort(port)) handle(r.message as ToWorker);
  return running?.id === id && running.cancelled;
}

function schedule(): void {
  if (scheduled || queue.length === 0) return;
  scheduled = true;
  setImmediate(step);
}

/** Runs one step of the task at the head of the queue, then lets messages in before the next. */
function step(): void {
  scheduled = false;
  const task = queue.shift();
  if (!task) return;
  let message: ToMain;
  running = { id: task.id, cancelled: false };
  try {
    const r = task.steps.next();
    if (r.done) message = { type: 'result', id: task.id, value: r.value };
    else {
      message = { type: 'step', id: task.id, value: r.value };
      queue.push(task);
    }
  } catch (e) {
    message = { type: 'error', id: task.id, error: describeError(asUserError(e), 0) };
  }
  // A cancelled task's step that finished anyway is dropped (the HTTP side has settled it).
  if (running.cancelled && message.type === 'step') queue.splice(queue.indexOf(task), 1);
  running = null;
  // The stats first, so whoever sees the answer sees the sessions it compiled.
  const { compiles, runs, released } = ortStats;
  post({ type: 'stats', stats: { compiles, runs, released, sessions: sessionCacheSize(), arenaBytes: sessionArenaBytes() } });
  post(message);
  schedule();
}

function handle(m: ToWorker): void {
  switch (m.type) {
    case 'call': {
      const fn = CALLS[m.op];
      if (!fn) {
        post({ type: 'error', id: m.id, error: describeError(new Error(`internal: no computation '${m.op}'`), 0) });
        return;
      }
      // One step: the computation, done.
      let ran = false;
      const steps: Iterator<unknown, unknown, void> = {
        next: () => {
          if (ran) throw new Error('internal: a request was stepped twice');
          ran = true;
          return { done: true, value: fn(computer, m.args as never) };
        },
      };
      queue.push({ id: m.id, steps });
      break;
    }
    case 'job': {
      const fn = JOBS[m.op];
      if (!fn) {
        post({ type: 'error', id: m.id, error: describeError(new Error(`internal: no job '${m.op}'`), 0) });
        return;
      }
      const control: JobControl = {
        shouldStop: () => cancelRequested(m.id),
        report: (value) => post({ type: 'step', id: m.id, value }),
      };
      queue.push({ id: m.id, steps: fn(computer, m.args as never, control) });
      break;
    }
    case 'cancel': {
      // Between steps the task is queued (or already finished); during its own step, it is running.
      const i = queue.findIndex((t) => t.id === m.id);
      if (i >= 0) queue.splice(i, 1);
      if (running?.id === m.id) running.cancelled = true;
      break;
    }
  }
  schedule();
}

port.on('message', handle);

post({ type: 'ready' });
