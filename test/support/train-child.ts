/**
 * A small training run for the resume test: a 2-layer GPT-2 on synthetic sequences, checkpointing
 * every 3 steps. Usage: train-child.ts OUT_DIR STEPS DELAY_MS [--resume]. Writes OUT_DIR/final.safetensors.
 */
import { join } from 'node:path';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { gpt2Config, initParams } from '../../src/model/index.js';
import { tensor } from '../../src/tensor/index.js';
import { adamw } from '../../src/train/optim.js';
import { cosineDecay } from '../../src/train/schedule.js';
import { lmLoss, trainableParams } from '../../src/train/lm.js';
import { namedLeaves } from '../../src/train/tree.js';
import { syntheticData } from '../../src/train/data.js';
import { train } from '../../src/train/loop.js';

const [outDir, stepsArg, delayArg, flag] = process.argv.slice(2);
const steps = Number(stepsArg);
const delayMs = Number(delayArg);
const cfg = gpt2Config({ nLayers: 2, dModel: 16, nHeads: 2, dVocab: 11, nCtx: 8 });
const params = trainableParams(cfg, initParams(cfg, { seed: 3 }));
// Sequences that count up modulo 11 from a random start: learnable, so the loss falls.
const data = syntheticData(
  (rng) => {
    const rows: number[][] = [];
    for (let r = 0; r < 4; r++) {
      const start = rng.int(11);
      rows.push(Array.from({ length: 8 }, (_, i) => (start + i) % 11));
    }
    return { tokens: tensor(rows, undefined, 'int64') };
  },
  { seed: 7 },
);
const sleep = new Int32Array(new SharedArrayBuffer(4));
const result = await train({
  params,
  loss: lmLoss(cfg),
  optimizer: adamw({ weightDecay: 0.1 }),
  data,
  steps,
  lr: cosineDecay({ lr: 3e-2, totalSteps: steps, warmupSteps: 3 }),
  clipGradNorm: 1,
  outDir,
  checkpointEvery: 3,
  resume: flag === '--resume',
  config: { cfg, batch: 4 },
  progress: false,
  onLog: () => {
    if (delayMs > 0) Atomics.wait(sleep, 0, 0, delayMs);
  },
});
saveSafetensors(join(outDir!, 'final.safetensors'), Object.fromEntries(namedLeaves(result.params)));
process.stdout.write(JSON.stringify({ startStep: result.startStep, step: result.step, loss: result.lastLoss }) + '\n');
