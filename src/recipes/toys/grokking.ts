/**
 * Grokking modular addition (Power et al. 2022; Nanda et al. 2023, "Progress measures for
 * grokking via mechanistic interpretability"). A 1-layer transformer reads "a b =" and predicts
 * (a + b) mod p. With 30% of the pairs for training, AdamW and weight decay 1.0 on the full batch,
 * it first memorises the training set (train loss falls, test loss stays high), then, thousands of
 * steps later, generalises: it has learned to add with a few Fourier frequencies, rotating
 * cos/sin(w a), cos/sin(w b) into cos(w (a + b)). The embedding's norm concentrates on those
 * frequencies, which is what `fourierAnalysis` measures.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PRNG, permutation, tensor, type Tensor } from '../../tensor/index.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { lineChart, saveSvg } from '../../viz/charts.js';
import { HookedTransformer } from '../../model/hooked.js';
import { gpt2Config } from '../../model/families/gpt2.js';
import { initParams } from '../../model/init.js';
import type { ModelConfig } from '../../model/config.js';
import type { ModelParams } from '../../model/forward.js';
import { adamw } from '../../train/optim.js';
import { fixedData } from '../../train/data.js';
import { train, type TrainResult } from '../../train/loop.js';
import { lmLogits } from '../../train/lm.js';
import { runFingerprint, withDefaults } from '../../train/fingerprint.js';

export interface GrokkingOptions {
  /** The modulus (default 113, as the paper). */
  p?: number;
  /** Fraction of the p^2 pairs used for training (default 0.3). */
  trainFraction?: number;
  dModel?: number;
  nHeads?: number;
  dMlp?: number;
  /** Maximum steps (default 25000); the run stops early once test accuracy passes `stopAccuracy`. */
  steps?: number;
  lr?: number;
  weightDecay?: number;
  /**
   * Stop when test accuracy reaches this (default 0.995); null trains all `steps` (the cleanup phase
   * after generalisation, where weight decay removes the frequencies the algorithm does not use).
   */
  stopAccuracy?: number | null;
  evalEvery?: number;
  seed?: number;
  outDir?: string;
  resume?: boolean;
  progress?: boolean | 'auto';
}

/** The defaults of `GrokkingOptions` (the model's shape defaults live in `grokkingConfig`, whose result the fingerprint holds too). */
const GROKKING_DEFAULTS = {
  p: 113,
  trainFraction: 0.3,
  steps: 25000,
  lr: 1e-3,
  weightDecay: 1,
  stopAccuracy: 0.995,
  evalEvery: 100,
  seed: 0,
};

/**
 * The options outside the run's fingerprint (every other one is checked on resume): when to stop
 * (steps, stopAccuracy; evaluations only decide when), where, and what is shown. A resumed run may
 * go on for longer.
 */
export const GROKKING_NOT_FINGERPRINTED = [
  'steps',
  'stopAccuracy',
  'evalEvery',
  'outDir',
  'resume',
  'progress',
] as const satisfies readonly (keyof GrokkingOptions)[];

export interface GrokkingCurvePoint {
  step: number;
  trainLoss: number;
  testLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
}

export interface GrokkingResult {
  model: HookedTransformer;
  train: TrainResult<ModelParams>;
  curve: GrokkingCurvePoint[];
  final: GrokkingCurvePoint;
  /** First evaluated step with train accuracy >= 99%, and with test accuracy >= 99% (null if never). */
  memorisedAt: number | null;
  generalisedAt: number | null;
  fourier: FourierAnalysis;
}

/**
 * Nanda et al.'s model: one layer, d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm and
 * no biases (the paper freezes them at zero), context 3 ("a b ="), vocabulary p + 1 ("=" is p).
 */
export function grokkingConfig(o: GrokkingOptions = {}): ModelConfig {
  const p = o.p ?? 113;
  const d = o.dModel ?? 128;
  return {
    ...gpt2Config({
      nLayers: 1,
      dModel: d,
      nHeads: o.nHeads ?? 4,
      dVocab: p + 1,
      nCtx: 3,
      dMlp: o.dMlp ?? 4 * d,
      act: 'relu',
      tiedEmbeddings: false,
    }),
    norm: 'none',
    attnBias: false,
    attnOutBias: false,
    mlpBias: false,
  };
}

/** Every pair (a, b) as tokens [a, b, p] and labels (a + b) mod p, split by a seeded shuffle. */
export function modularAdditionData(p: number, trainFraction: number, seed: number) {
  const pairs: [number, number][] = [];
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) pairs.push([a, b]);
  const shuffled = Array.from(permutation(pairs.length, new PRNG(seed)), (i) => pairs[i]!);
  const nTrain = Math.round(trainFraction * shuffled.length);
  const make = (list: [number, number][]) => ({
    tokens: tensor(
      list.map(([a, b]) => [a, b, p]),
      undefined,
      'int64',
    ),
    labels: tensor(
      list.map(([a, b]) => (a + b) % p),
      undefined,
      'int64',
    ),
  });
  return { train: make(shuffled.slice(0, nTrain)), test: make(shuffled.slice(nTrain)) };
}

/** Loss and accuracy of the answer at the "=" position (logits over the p residues only). */
function answerLossAndAccuracy(logits: Tensor, labels: Tensor, p: number): { loss: Tensor; correct: Tensor } {
  const n = logits.shape[0]!;
  const last = logits.slice([null, { start: 2, end: 3 }, { end: p }]).reshape([n, p]);
  const logp = last.logSoftmax(-1);
  const loss = logp
    .gatherElements(labels.reshape([n, 1]), 1)
    .neg()
    .mean();
  const correct = last.argmax(-1).eq(labels).cast('float32').mean();
  return { loss, correct };
}

export async function trainGrokking(given: GrokkingOptions = {}): Promise<GrokkingResult> {
  const cfg = grokkingConfig(given);
  const o = withDefaults({ ...GROKKING_DEFAULTS, dModel: cfg.dModel, nHeads: cfg.nHeads, dMlp: cfg.dMlp }, given);
  const p = o.p!;
  const seed = o.seed!;
  const data = modularAdditionData(p, o.trainFraction!, seed);
  const logits = lmLogits(cfg);
  const evaluate = (params: ModelParams): Record<string, number> => {
    const tr = answerLossAndAccuracy(logits(params, data.train.tokens), data.train.labels, p);
    const te = answerLossAndAccuracy(logits(params, data.test.tokens), data.test.labels, p);
    return {
      trainLoss: tr.loss.item() as number,
      testLoss: te.loss.item() as number,
      trainAccuracy: tr.correct.item() as number,
      testAccuracy: te.correct.item() as number,
    };
  };
  const steps = o.steps!;
  const result = await train({
    params: initParams(cfg, { seed, std: 0.8 / Math.sqrt(cfg.dModel) }), // TransformerLens initializer_range
    loss: (params: ModelParams, batch: typeof data.train) => {
      const r = answerLossAndAccuracy(logits(params, batch.tokens), batch.labels, p);
      return { loss: r.loss, metrics: { accuracy: r.correct } };
    },
    // The paper: AdamW, lr 1e-3, weight decay 1, betas (0.9, 0.98), full batch, linear warm-up over 10 steps.
    optimizer: adamw({ weightDecay: o.weightDecay!, beta2: 0.98 }),
    data: fixedData(data.train),
    steps,
    lr: (s) => o.lr! * Math.min(1, (s + 1) / 10),
    outDir: o.outDir,
    resume: o.resume,
    config: {
      toy: 'grokking',
      model: cfg,
      ...runFingerprint(o, GROKKING_NOT_FINGERPRINTED),
    },
    evalEvery: o.evalEvery!,
    evaluate,
    ...(o.stopAccuracy === null ? {} : { stopWhen: (ev: Record<string, number>) => ev.testAccuracy! >= o.stopAccuracy! }),
    logEvery: 10,
    progress: o.progress ?? 'auto',
  });
  const curve = result.history
    .filter((r) => r.kind === 'eval')
    .map((r) => ({
      step: r.step as number,
      trainLoss: r.trainLoss as number,
      testLoss: r.testLoss as number,
      trainAccuracy: r.trainAccuracy as number,
      testAccuracy: r.testAccuracy as number,
    }));
  const final = { step: result.step, ...(evaluate(result.params) as Omit<GrokkingCurvePoint, 'step'>) };
  return {
    model: new HookedTransformer(cfg, result.params),
    train: result,
    curve,
    final,
    memorisedAt: curve.find((c) => c.trainAccuracy >= 0.99)?.step ?? null,
    generalisedAt: curve.find((c) => c.testAccuracy >= 0.99)?.step ?? null,
    fourier: fourierAnalysis(result.params.embed.W_E, p),
  };
}

export interface FourierAnalysis {
  /** Squared norm of W_E (rows 0..p-1) in each frequency k = 1..(p-1)/2 (cos and sin together), and the constant. */
  frequencyNorms: { k: number; norm2: number }[];
  constantNorm2: number;
  /** Frequencies by decreasing norm until they hold `fraction` of the total. */
  keyFrequencies: number[];
  fraction: number;
}

/**
 * The embedding in the Fourier basis over Z_p (Nanda et al. section 4.1): rows of W_E [p, d] are
 * projected onto the orthonormal basis 1/sqrt(p), sqrt(2/p) cos(2 pi k x / p), sqrt(2/p) sin(...),
 * and each frequency's share of the squared norm is measured.
 */
export function fourierAnalysis(W_E: Tensor, p: number, fraction = 0.9): FourierAnalysis {
  const d = W_E.shape[1]!;
  const w = W_E.slice([{ end: p }]).dataSync() as Float32Array;
  const project = (f: (x: number) => number): number => {
    let total = 0;
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let x = 0; x < p; x++) s += f(x) * w[x * d + j]!;
      total += s * s;
    }
    return total;
  };
  const constantNorm2 = project(() => 1 / Math.sqrt(p));
  const frequencyNorms: { k: number; norm2: number }[] = [];
  const c = Math.sqrt(2 / p);
  for (let k = 1; k <= (p - 1) / 2; k++) {
    const norm2 = project((x) => c * Math.cos((2 * Math.PI * k * x) / p)) + project((x) => c * Math.sin((2 * Math.PI * k * x) / p));
    frequencyNorms.push({ k, norm2 });
  }
  const total = frequencyNorms.reduce((s, f) => s + f.norm2, 0) + constantNorm2;
  const sorted = [...frequencyNorms].sort((a, b) => b.norm2 - a.norm2);
  const keyFrequencies: number[] = [];
  let acc = 0;
  for (const f of sorted) {
    if (acc >= fraction * total) break;
    keyFrequencies.push(f.k);
    acc += f.norm2;
  }
  return { frequencyNorms, constantNorm2, keyFrequencies, fraction };
}

/** Writes report.json, the loss and accuracy curves and the embedding's Fourier spectrum (SVG) to `dir`; returns the text summary. */
export async function writeGrokkingReport(r: GrokkingResult, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const f = r.fourier;
  const summary = [
    `final (step ${r.final.step}): train loss ${r.final.trainLoss.toExponential(2)}, test loss ${r.final.testLoss.toExponential(2)}, train accuracy ${(100 * r.final.trainAccuracy).toFixed(1)}%, test accuracy ${(100 * r.final.testAccuracy).toFixed(1)}%`,
    `memorised (train accuracy >= 99%) at step ${r.memorisedAt ?? 'never'}; generalised (test accuracy >= 99%) at step ${r.generalisedAt ?? 'never'}`,
    `embedding Fourier spectrum: ${f.keyFrequencies.length} of ${f.frequencyNorms.length} frequencies carry ${100 * f.fraction}% of the norm: k = ${f.keyFrequencies.join(', ')}`,
  ].join('\n');
  const pts = (key: keyof GrokkingCurvePoint) => r.curve.map((c) => [c.step, Math.max(1e-12, c[key])] as [number, number]);
  if (r.curve.length > 1) {
    saveSvg(
      join(dir, 'loss.svg'),
      await lineChart({
        title: 'Grokking: train and test loss',
        xLabel: 'step',
        yLabel: 'cross-entropy (nats)',
        logY: true,
        series: [
          { name: 'train', points: pts('trainLoss') },
          { name: 'test', points: pts('testLoss') },
        ],
      }),
    );
    saveSvg(
      join(dir, 'accuracy.svg'),
      await lineChart({
        title: 'Grokking: train and test accuracy',
        xLabel: 'step',
        yLabel: 'accuracy',
        series: [
          { name: 'train', points: pts('trainAccuracy') },
          { name: 'test', points: pts('testAccuracy') },
        ],
      }),
    );
  }
  saveSvg(
    join(dir, 'embedding-fourier.svg'),
    await lineChart({
      title: 'Embedding norm per Fourier frequency',
      xLabel: 'frequency k',
      yLabel: 'squared norm',
      series: [{ name: 'W_E', points: f.frequencyNorms.map((x) => [x.k, x.norm2] as [number, number]) }],
    }),
  );
  const { model: _model, train: _train, ...rest } = r;
  writeFileAtomic(join(dir, 'report.json'), JSON.stringify({ config: r.model.cfg, ...rest }, null, 2) + '\n');
  return summary;
}
