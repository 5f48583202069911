/**
 * A tiny training run shared by the training fault tests and their child process: a 2-layer
 * GPT-2 (d_model 16) on sequences that count up modulo 11, AdamW with a cosine schedule,
 * checkpointing every `checkpointEvery` steps. Deterministic: two runs with the same options end
 * with the same bytes.
 */
import { gpt2Config, initParams } from '../../src/model/index.js';
import { tensor } from '../../src/tensor/index.js';
import { adamw } from '../../src/train/optim.js';
import { cosineDecay } from '../../src/train/schedule.js';
import { lmLoss, trainableParams } from '../../src/train/lm.js';
import { syntheticData } from '../../src/train/data.js';
import { train, type TrainResult } from '../../src/train/loop.js';
import type { TrainableParams } from '../../src/train/lm.js';

export interface TinyRunOptions {
  outDir?: string;
  steps?: number;
  checkpointEvery?: number;
  keepCheckpoints?: number;
  resume?: boolean;
  lr?: number;
  clipGradNorm?: number;
  seed?: number;
  onWarning?: (message: string) => void;
}

export async function tinyRun(o: TinyRunOptions = {}): Promise<TrainResult<TrainableParams>> {
  const steps = o.steps ?? 6;
  const cfg = gpt2Config({ nLayers: 2, dModel: 16, nHeads: 2, dVocab: 11, nCtx: 8 });
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
  return train({
    params: trainableParams(cfg, initParams(cfg, { seed: o.seed ?? 3 })),
    loss: lmLoss(cfg),
    optimizer: adamw({ weightDecay: 0.1 }),
    data,
    steps,
    lr: cosineDecay({ lr: o.lr ?? 3e-2, totalSteps: 12, warmupSteps: 2 }),
    clipGradNorm: o.clipGradNorm ?? 1,
    ...(o.outDir !== undefined ? { outDir: o.outDir } : {}),
    checkpointEvery: o.checkpointEvery ?? 2,
    keepCheckpoints: o.keepCheckpoints ?? 2,
    resume: o.resume ?? false,
    config: { cfg, batch: 4, dataSeed: 7 },
    progress: false,
    ...(o.onWarning ? { onWarning: o.onWarning } : {}),
  });
}
