/**
 * Induction heads (Olsson et al. 2022): a 2-layer attention-only transformer trained on random
 * token sequences that end in a repeated segment. Predicting the repeat needs a circuit of
 * two heads: a layer-0 previous-token head writes "the token before me was A" into each
 * position, and a layer-1 induction head attends from the current token B to the position after
 * B's previous occurrence (via K-composition) and copies that token.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PRNG, tensor, type Tensor } from '../../tensor/index.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { heatmap, lineChart, saveSvg } from '../../viz/charts.js';
import { HookedTransformer } from '../../model/hooked.js';
import { inductionScores, previousTokenScores } from '../../analysis/heads.js';
import { gpt2Config } from '../../model/families/gpt2.js';
import { initParams } from '../../model/init.js';
import type { ModelConfig } from '../../model/config.js';
import { adamw } from '../../train/optim.js';
import { linearWarmup } from '../../train/schedule.js';
import { syntheticData } from '../../train/data.js';
import { train, type TrainResult } from '../../train/loop.js';
import { lmLoss, modelParams, trainableParams, type TrainableParams } from '../../train/lm.js';
import { runFingerprint, withDefaults } from '../../train/fingerprint.js';

export interface InductionOptions {
  /** Vocabulary of random tokens (default 64). */
  dVocab?: number;
  /** Length of the random segment that is then repeated (default 16: sequences of 32). */
  halfLength?: number;
  dModel?: number;
  nHeads?: number;
  steps?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  outDir?: string;
  resume?: boolean;
  progress?: boolean | 'auto';
}

/** The defaults of `InductionOptions`. */
const INDUCTION_DEFAULTS = { dVocab: 64, halfLength: 16, dModel: 64, nHeads: 4, steps: 2000, batchSize: 32, lr: 1e-3, seed: 0 };

/**
 * The options outside the run's fingerprint (every other one is checked on resume): how long to
 * train (the warm-up does not depend on it, so a resumed run may go on for longer), where, and what
 * is shown.
 */
export const INDUCTION_NOT_FINGERPRINTED = ['steps', 'outDir', 'resume', 'progress'] as const satisfies readonly (keyof InductionOptions)[];

export interface InductionResult {
  model: HookedTransformer;
  train: TrainResult<TrainableParams>;
  /** [layer][head] mean attention to the token after the current token's previous occurrence. */
  inductionScores: number[][];
  /** [layer][head] mean attention to the previous position. */
  previousTokenScores: number[][];
  /** Mean next-token loss predicting inside the first (random) half and the repeated half. */
  lossFirstHalf: number;
  lossRepeatedHalf: number;
}

/**
 * The toy's model config: GPT-2 layout with LayerNorm, attention only, and rotary positions:
 * relative positions make "attend to the previous token" easy to learn, as in the small
 * rotary models where induction heads were later studied (learned absolute positions also work,
 * but take many more steps).
 */
export function inductionConfig(o: InductionOptions = {}): ModelConfig {
  const half = o.halfLength ?? 16;
  const base = gpt2Config({ nLayers: 2, dModel: o.dModel ?? 64, nHeads: o.nHeads ?? 4, dVocab: o.dVocab ?? 64, nCtx: 2 * half });
  return { ...base, attnOnly: true, positional: 'rotary', rotaryDim: base.dHead, ropeTheta: 10000 };
}

/** [batch, 2 * half] int64: random tokens, then the same tokens again (the evaluation probe). */
export function repeatedTokens(rng: PRNG, batch: number, half: number, dVocab: number): Tensor {
  const rows: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const seg = Array.from({ length: half }, () => rng.int(dVocab));
    rows.push([...seg, ...seg]);
  }
  return tensor(rows, undefined, 'int64');
}

/**
 * Training sequences [batch, length] int64: random tokens ending in a random segment of length
 * n (length / 4 <= n <= length / 2) written twice. The repeat distance n varies from row to row, so
 * attending to a fixed offset (a positional shortcut) cannot solve the task; only induction can.
 */
export function inductionBatch(rng: PRNG, batch: number, length: number, dVocab: number): Tensor {
  const rows: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const n = Math.floor(length / 4) + rng.int(Math.floor(length / 4) + 1);
    const seg = Array.from({ length: n }, () => rng.int(dVocab));
    const prefix = Array.from({ length: length - 2 * n }, () => rng.int(dVocab));
    rows.push([...prefix, ...seg, ...seg]);
  }
  return tensor(rows, undefined, 'int64');
}

/** Trains the toy and measures its heads on fresh repeated sequences. */
export async function trainInduction(o: InductionOptions = {}): Promise<InductionResult> {
  const cfg = inductionConfig(o);
  const opts = withDefaults(INDUCTION_DEFAULTS, o);
  const half = opts.halfLength!;
  const steps = opts.steps!;
  const seed = opts.seed!;
  const batchSize = opts.batchSize!;
  const data = syntheticData((rng) => ({ tokens: inductionBatch(rng, batchSize, 2 * half, cfg.dVocab) }), { seed: seed + 1 });
  const result = await train({
    params: trainableParams(cfg, initParams(cfg, { seed })),
    loss: lmLoss(cfg),
    optimizer: adamw({ weightDecay: 0.01 }),
    data,
    steps,
    lr: linearWarmup(opts.lr!, 100),
    clipGradNorm: 1,
    outDir: o.outDir,
    resume: o.resume,
    config: { toy: 'induction', model: cfg, ...runFingerprint(opts, INDUCTION_NOT_FINGERPRINTED) },
    itemsPerBatch: batchSize * 2 * half,
    itemName: 'tokens',
    progress: o.progress ?? 'auto',
    logEvery: 10,
  });
  const model = new HookedTransformer(cfg, modelParams(cfg, result.params));
  const probe = repeatedTokens(new PRNG(seed + 12345), 64, half, cfg.dVocab);
  const scores = {
    inductionScores: inductionScores(model, { seqLen: half, batch: 64, seed: seed + 12345 }).scores.toArray() as number[][],
    previousTokenScores: previousTokenScores(model, probe).toArray() as number[][],
  };
  const perToken = model.loss(probe, { perToken: true }).mean(0).dataSync() as Float32Array; // [pos - 1]
  const mean = (a: Float32Array): number => a.reduce((s, v) => s + v, 0) / a.length;
  return {
    model,
    train: result,
    ...scores,
    // Position p predicts token p + 1: positions 0..half-2 predict inside the random half; half..2half-2 the repeat.
    lossFirstHalf: mean(perToken.subarray(0, half - 1)),
    lossRepeatedHalf: mean(perToken.subarray(half, 2 * half - 1)),
  };
}

/** Writes report.json, the loss curve and head-score heatmaps (SVG) to `dir`; returns the text summary. */
export async function writeInductionReport(r: InductionResult, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const heads = (m: number[][]) => m.map((row, l) => `  L${l}  ${row.map((v) => v.toFixed(2)).join('  ')}`).join('\n');
  const summary = [
    `induction scores (layer x head):\n${heads(r.inductionScores)}`,
    `previous-token scores (layer x head):\n${heads(r.previousTokenScores)}`,
    `loss in the random first half ${r.lossFirstHalf.toFixed(3)} nats, in the repeated half ${r.lossRepeatedHalf.toFixed(3)} nats`,
  ].join('\n');
  const labels = (m: number[][]) => ({ rowLabels: m.map((_, l) => `L${l}`), colLabels: m[0]!.map((_, h) => `H${h}`) });
  saveSvg(
    join(dir, 'induction-scores.svg'),
    await heatmap({ title: 'Induction score', values: r.inductionScores, ...labels(r.inductionScores) }),
  );
  saveSvg(
    join(dir, 'previous-token-scores.svg'),
    await heatmap({ title: 'Previous-token score', values: r.previousTokenScores, ...labels(r.previousTokenScores) }),
  );
  const points = r.train.history.filter((h) => h.kind === 'train').map((h) => [h.step as number, h.loss as number] as [number, number]);
  if (points.length > 1)
    saveSvg(
      join(dir, 'loss.svg'),
      await lineChart({ title: 'Training loss', xLabel: 'step', yLabel: 'loss (nats)', series: [{ name: 'train', points }] }),
    );
  const { model: _model, train: _train, ...scores } = r;
  writeFileAtomic(join(dir, 'report.json'), JSON.stringify({ config: r.model.cfg, steps: r.train.step, ...scores }, null, 2) + '\n');
  return summary;
}
