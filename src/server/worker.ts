/**
 * The model worker: a thread that owns the server's copy of the model and runs every model
 * computation (compute.ts), so the HTTP thread never blocks on ONNX Runtime. Started by
 * `ModelWorker` (model-worker.ts) with the model's config and weights in `workerData`.
 *
 * Work is a queue of tasks run one step at a time, round robin: a request is one step, a job one
 * step per forward pass. Between steps the thread turns its event loop, so a cancellation or a
 * new request posted meanwhile is seen after the current step, never after the whole job. Every
 * compiled ONNX Runtime session lives in this thread, under the budgets the server was given.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HookedTransformer } from '../model/hooked.js';
import { memoryConfig, shapeBuckets } from '../analysis/index.js';
import { ortConfig, ortStats, sessionArenaBytes, sessionCacheSize } from '../tensor/backends/ort.js';
import { asUserError, describeError } from './errors.js';
import { attentionPatterns, dlaValues, forwardTop, headDetectors, lens, patchingSweep, steerRun, type Computer } from './compute.js';
import { featureFires, featureLogits, featureSteer, installSaes } from './feature-compute.js';
import { graphJob, interveneRun } from './graph-compute.js';
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
const CALLS: Record<string, (c: Computer, args: never) => unknown> = {
  forward: forwardTop,
  attention: attentionPatterns,
  logitLens: lens,
  dla: dlaValues,
  heads: headDetectors,
  steer: steerRun,
  fires: featureFires,
  featureSteer,
  featureLogits,
  intervene: interveneRun,
};
/** The computations a job may name, each a generator run one step per pass. */
const JOBS: Record<string, (c: Computer, args: never) => Generator<unknown, unknown, void>> = {
  patching: patchingSweep,
  graph: graphJob,
};

interface Task {
  id: string;
  steps: Iterator<unknown, unknown, void>;
}

const queue: Task[] = [];
let scheduled = false;

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
  // The stats first, so whoever sees the answer sees the sessions it compiled.
  const { compiles, runs, released } = ortStats;
  post({ type: 'stats', stats: { compiles, runs, released, sessions: sessionCacheSize(), arenaBytes: sessionArenaBytes() } });
  post(message);
  schedule();
}

port.on('message', (m: ToWorker) => {
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
      queue.push({ id: m.id, steps: fn(computer, m.args as never) });
      break;
    }
    case 'cancel': {
      // Messages arrive between steps, so the task is queued (or already finished).
      const i = queue.findIndex((t) => t.id === m.id);
      if (i >= 0) queue.splice(i, 1);
      break;
    }
  }
  schedule();
});

post({ type: 'ready' });
