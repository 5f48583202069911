/**
 * The flags the training commands share, declared and checked in one place:
 * - every training run (`glassbox train ...`, `clt train`, `sae train`): --seed, --lr, --resume
 *   and the run directory --out (`runOptionsOf`);
 * - the runs over a model's activations (`clt train`, `sae train`): the activation store's flags,
 *   the learning-rate warm-up and decay, --seed, --resume and --no-progress
 *   (`addActivationRunFlags`, `activationRunOptionsOf`);
 * - Ctrl-C during such a run: checkpoint and stop (`untilSigint`).
 */
import type { Command } from 'commander';
import { intFlag, numFlag } from './flags.js';

/** The flags of every training run, as commander hands them over. */
export interface RunFlags {
  out: string;
  seed?: string;
  lr?: string;
  resume?: boolean;
}

/** The run options of `f`, checked: seed (an integer >= 0), lr (a number >= 0), outDir, resume. */
export function runOptionsOf(f: RunFlags): {
  seed: number | undefined;
  lr: number | undefined;
  outDir: string;
  resume: boolean | undefined;
} {
  return { seed: intFlag('seed', f.seed, 0), lr: numFlag('lr', f.lr, 0), outDir: f.out, resume: f.resume };
}

/** The flags of a training run over a model's activations, as commander hands them over. */
export interface ActivationRunFlags extends RunFlags {
  dataset: string;
  contextSize?: string;
  storeBatchSizePrompts: string;
  nBatchesInBuffer: string;
  lr: string;
  lrWarmUpSteps: string;
  lrDecaySteps: string;
  seed: string;
  progress: boolean;
}

/**
 * Declares on `cmd` the activation store's flags (--dataset, --context-size, and the batch sizes
 * with the command's defaults), then --lr (default `defaults.lr`) with its warm-up and decay,
 * --seed, --resume and --no-progress.
 */
export function addActivationRunFlags(
  cmd: Command,
  defaults: { lr: string; storeBatchSizePrompts: string; nBatchesInBuffer: string },
): Command {
  return cmd
    .option('--dataset <src>', "'default' (the default model's corpus), a token file NAME.bin or a text file", 'default')
    .option('--context-size <n>', 'tokens per context (default min(128, the model context))')
    .option('--store-batch-size-prompts <n>', 'contexts per forward pass', defaults.storeBatchSizePrompts)
    .option('--n-batches-in-buffer <n>', 'shuffle buffer size, in forward passes', defaults.nBatchesInBuffer)
    .option('--lr <rate>', 'learning rate', defaults.lr)
    .option('--lr-warm-up-steps <n>', 'linear warm-up steps', '0')
    .option('--lr-decay-steps <n>', 'linear decay over the last n steps', '0')
    .option('--seed <n>', 'random seed', '0')
    .option('--resume', 'continue from the newest checkpoint in --out')
    .option('--no-progress', 'no progress display');
}

/** The options of `f`, checked: the activation store's (`store`) and the training run's (`run`). */
export function activationRunOptionsOf(f: ActivationRunFlags): {
  store: { dataset: string; contextSize: number | undefined; storeBatchSizePrompts: number; nBatchesInBuffer: number };
  run: { seed: number; lr: number; lrWarmUpSteps: number; lrDecaySteps: number; outDir: string; resume: boolean; progress: 'auto' | false };
} {
  const store = {
    dataset: f.dataset,
    contextSize: intFlag('context-size', f.contextSize, 2),
    storeBatchSizePrompts: intFlag('store-batch-size-prompts', f.storeBatchSizePrompts),
    nBatchesInBuffer: intFlag('n-batches-in-buffer', f.nBatchesInBuffer),
  };
  const { seed, lr, outDir } = runOptionsOf(f);
  const progress: 'auto' | false = f.progress ? 'auto' : false;
  const run = {
    // Both flags have defaults, so both are given.
    seed: seed!,
    lr: lr!,
    lrWarmUpSteps: intFlag('lr-warm-up-steps', f.lrWarmUpSteps, 0),
    lrDecaySteps: intFlag('lr-decay-steps', f.lrDecaySteps, 0),
    outDir,
    resume: Boolean(f.resume),
    progress,
  };
  return { store, run };
}

/**
 * Runs `run` with a signal that Ctrl-C aborts (the training loops checkpoint and return
 * `interrupted`; `--resume` continues), saying so on stderr; the handler is removed when the run ends.
 */
export async function untilSigint<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = (): void => {
    process.stderr.write('\ninterrupted: checkpointing...\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
