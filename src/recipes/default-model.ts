/**
 * The default model: a small GPT-2-shaped transformer with rotary positions, trained by glassbox
 * on public-domain English (Moby Dick and the State of the Union addresses, from npm packages),
 * with a byte-level BPE tokenizer trained on the same text. Training starts with synthetic
 * copying sequences, which grow its induction heads, then reads the text with some of those
 * sequences mixed in. It ships in the repository (models/default) so that every example, test
 * and the workbench have a real language model with no network. `buildDefaultModel` reproduces
 * it: corpus -> tokenizer -> token files -> training -> evaluation -> model directory.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { concat, elementCount, type Tensor } from '../tensor/index.js';
import { inductionScores, previousTokenScores } from '../analysis/heads.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { gpt2Config } from '../model/families/gpt2.js';
import { HookedTransformer } from '../model/hooked.js';
import { initParams } from '../model/init.js';
import { saveModel } from '../model/save.js';
import type { ModelConfig } from '../model/config.js';
import { corpusManifest, loadCorpus, splitCorpus } from '../train/corpus.js';
import { saveTokenizerJson, trainBpe } from './bpe.js';
import { TokenFile, tokenizeToFile } from '../train/tokens.js';
import { rewriteRows, sequentialWindows, tokenWindows, withRepeatedSegments } from '../train/windows.js';
import { adamw, decayMatricesOnly } from '../train/optim.js';
import { cosineDecay, linearWarmup } from '../train/schedule.js';
import { train } from '../train/loop.js';
import { syntheticData, type DataSource, type TokenBatch } from '../train/data.js';
import { inductionBatch } from './toys/induction.js';
import { lmLoss, modelParams, trainableParams } from '../train/lm.js';
import { runFingerprint, withDefaults } from '../train/fingerprint.js';

export const END_OF_TEXT = '<|endoftext|>';

export interface DefaultModelOptions {
  /** Where the finished model goes (config.json, model.safetensors, tokenizer files, training.json). */
  outDir: string;
  /** Scratch space: tokenizer, token files, checkpoints, metrics (kept for resume). */
  workDir: string;
  vocabSize?: number;
  nLayers?: number;
  dModel?: number;
  nHeads?: number;
  nCtx?: number;
  /**
   * 'rotary' (default, the shipped model): the GPT-2 layout with rotary positions on every head
   * dimension (a GPT-NeoX / Pythia config with a sequential residual; saved in Hugging Face's
   * GPT-NeoX format). 'learned': GPT-2's learned absolute positions. On text alone, 2500 steps
   * reached 3.65 nats with rotary positions against 3.91 with learned ones; on the synthetic
   * stage, rotary positions formed induction heads by step 1000 and learned ones showed nothing by
   * step 500 (see the README).
   */
  positional?: 'learned' | 'rotary';
  steps?: number;
  batchSize?: number;
  lr?: number;
  /**
   * What `repeatFraction` of the text stage's windows end in (`withRepeatedSegments`), from step
   * 0: 'none' (default, the shipped model) nothing; 'random' a segment of random tokens followed
   * by the same segment, which only in-context copying can predict; 'text' a copy of the text just
   * before. From a random start, neither grew induction heads in up to 1400 steps (see the README).
   */
  repeats?: 'random' | 'text' | 'none';
  /** Fraction of the text windows that end in a repeat when `repeats` is not 'none' (default 0.5). */
  repeatFraction?: number;
  /**
   * Steps on short windows (64 tokens, 4x the batch: the same tokens per step) before `steps` at
   * the full context (default 0). The induction toy forms induction heads within 1500 steps on
   * sequences of 32 or 64 with 32 sequences per step, but not on 64 with 16 per step nor on 256
   * with 4 or 32 per step: how long the repeats are, and how many a step holds, decide whether
   * the circuit forms in time.
   */
  shortSteps?: number;
  /**
   * Steps on synthetic sequences before any text (default 1500, the shipped model): random token
   * ids ending in a random segment written twice (`inductionBatch`), 64 tokens long, batch x
   * nCtx / 64 of them per step, at the peak learning rate. Nothing but in-context copying lowers
   * the loss on these, so the whole gradient goes to the induction circuit: it forms around step
   * 800. On text its signal is a small part of the gradient, and in our runs text alone never grew
   * the circuit. The same stage after 2500 steps of text had not formed it by step 1560.
   */
  syntheticSteps?: number;
  /**
   * Fraction of the full-context stage's rows that are synthetic copying sequences (default 0.25):
   * nCtx / 64 of them end to end (`withSyntheticRows`). Without them the first 200 steps of text
   * after the synthetic stage wiped the induction heads out.
   */
  syntheticFraction?: number;
  seed?: number;
  resume?: boolean;
  progress?: boolean | 'auto';
  /** Validation windows evaluated during training (all of them at the end). */
  evalWindows?: number;
  log?: (line: string) => void;
}

/** The defaults of `DefaultModelOptions` that shape the run. */
const DEFAULTS = {
  vocabSize: 4096,
  nLayers: 4,
  dModel: 192,
  nHeads: 6,
  nCtx: 256,
  positional: 'rotary',
  steps: 1000,
  batchSize: 16,
  lr: 2e-3,
  repeats: 'none',
  repeatFraction: 0.5,
  shortSteps: 0,
  syntheticSteps: 1500,
  syntheticFraction: 0.25,
  seed: 0,
} as const satisfies Partial<DefaultModelOptions>;

/**
 * The options outside the run's fingerprint (every other one is checked when a stage resumes):
 * where things go, the validation windows evaluated during training (they change no weight), and
 * what is shown. The step counts are in it: they shape the learning-rate schedules.
 */
export const DEFAULT_MODEL_NOT_FINGERPRINTED = [
  'outDir',
  'workDir',
  'resume',
  'progress',
  'evalWindows',
  'log',
] as const satisfies readonly (keyof DefaultModelOptions)[];

export interface DefaultModelReport {
  config: ModelConfig;
  parameters: number;
  corpus: ReturnType<typeof corpusManifest>;
  tokens: { train: number; validation: number };
  training: {
    steps: number;
    repeats: 'random' | 'text' | 'none';
    repeatFraction: number;
    /** Steps on windows of `shortLen` tokens (batch x nCtx / shortLen of them) before `steps` at the full context. */
    shortSteps: number;
    shortLen: number;
    /** Steps on synthetic copying sequences of `syntheticLen` tokens before any text. */
    syntheticSteps: number;
    syntheticLen: number;
    /** Fraction of the full-context stage's rows that are synthetic copying sequences. */
    syntheticFraction: number;
    batchSize: number;
    seqLen: number;
    tokensSeen: number;
    seconds: number;
    lr: number;
  };
  /** Mean next-token loss (nats) on every validation window. */
  validationLoss: number;
  /** Add-one-smoothed bigram model fitted on the training tokens, on the same validation targets. */
  bigramValidationLoss: number;
  unigramValidationLoss: number;
  /**
   * In-context copying of natural text: mean loss (nats) on validation segments of (context - 1) / 2 tokens the
   * first time they appear (`first`) and when the same segment follows again (`repeated`).
   */
  copying: { first: number; repeated: number };
  /** [layer][head] scores on repeated random tokens (induction) and on validation text (previous token). */
  inductionScores: number[][];
  previousTokenScores: number[][];
}

/** The default model's shape: 4 layers, d_model 192, 6 heads of 32, context 256, vocabulary 4096, rotary positions. */
export function defaultModelConfig(o: Partial<DefaultModelOptions> = {}, eot = (o.vocabSize ?? 4096) - 1): ModelConfig {
  const gpt2 = gpt2Config({
    nLayers: o.nLayers ?? 4,
    dModel: o.dModel ?? 192,
    nHeads: o.nHeads ?? 6,
    dVocab: o.vocabSize ?? 4096,
    nCtx: o.nCtx ?? 256,
    bosTokenId: eot,
    eosTokenId: eot,
  });
  if ((o.positional ?? 'rotary') === 'learned') return gpt2;
  return { ...gpt2, family: 'gpt_neox', positional: 'rotary', rotaryDim: gpt2.dHead, ropeTheta: 10000, parallelResidual: false };
}

/** Builds the default model from scratch (or resumes it from `workDir`). */
export async function buildDefaultModel(o: DefaultModelOptions): Promise<DefaultModelReport> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const vocabSize = o.vocabSize ?? 4096;
  mkdirSync(o.workDir, { recursive: true });
  const corpus = loadCorpus();
  const split = splitCorpus(corpus);
  const manifest = corpusManifest(corpus);

  // 1. Tokenizer (byte-level BPE on the training split), reused when the corpus is unchanged.
  const tokDir = join(o.workDir, 'tokenizer');
  const stamp = JSON.stringify({ sha: manifest.splits.train.sha256, vocabSize });
  const stampFile = join(tokDir, 'trained-on.json');
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    log(`training a byte-level BPE tokenizer (vocabulary ${vocabSize}) on ${manifest.splits.train.bytes.toLocaleString('en-US')} bytes`);
    mkdirSync(tokDir, { recursive: true });
    saveTokenizerJson(
      join(tokDir, 'tokenizer.json'),
      trainBpe(
        split.train.documents.map((d) => d.text),
        { vocabSize, specialTokens: [END_OF_TEXT] },
      ),
    );
    writeTokenizerConfig(tokDir, o.nCtx ?? 256);
    writeFileAtomic(stampFile, stamp);
  }
  const tokenizer = loadTokenizer(tokDir);
  const eot = tokenizer.tokenToId(END_OF_TEXT)!;

  // 2. Token files, one document after another with <|endoftext|> between them.
  const files: Record<'train' | 'validation', string> = {
    train: join(o.workDir, 'train.bin'),
    validation: join(o.workDir, 'validation.bin'),
  };
  for (const part of ['train', 'validation'] as const) {
    const metaFile = `${files[part]}.json`;
    const sha = manifest.splits[part].sha256;
    if (existsSync(metaFile) && (JSON.parse(readFileSync(metaFile, 'utf8')) as { source?: { sha256?: string } }).source?.sha256 === sha)
      continue;
    log(`tokenizing the ${part} split`);
    await tokenizeToFile(
      { encode: (t) => tokenizer.encode(t, { prependBos: false }), encodeMany: (ts) => tokenizer.encodeMany(ts, { prependBos: false }) },
      split[part].documents.map((d) => d.text),
      files[part],
      { vocabSize, eosTokenId: eot, source: { corpus: 'glassbox default', split: part, sha256: sha } },
    );
  }
  const trainFile = TokenFile.open(files.train);
  const valFile = TokenFile.open(files.validation);

  // 3. Train.
  const cfg = defaultModelConfig(o, eot);
  const opts = withDefaults<DefaultModelOptions>(DEFAULTS, o);
  const seqLen = cfg.nCtx - 1;
  const steps = opts.steps!;
  const batchSize = opts.batchSize!;
  const lr = opts.lr!;
  const seed = opts.seed!;
  const repeats = opts.repeats!;
  const repeatFraction = opts.repeatFraction!;
  const shortSteps = opts.shortSteps!;
  const shortLen = 64;
  const syntheticSteps = opts.syntheticSteps!;
  const syntheticLen = 64;
  const syntheticFraction = opts.syntheticFraction!;
  const loss = lmLoss(cfg);
  const evalWindows = sequentialWindows(valFile, seqLen, o.evalWindows ?? 16);
  const meanLoss = (params: Parameters<typeof loss>[0], windows: Tensor[]): number =>
    windows.reduce((s, w) => s + (loss(params, { tokens: w }).item() as number), 0) / windows.length;
  log(
    `training ${cfg.nLayers} layers x d_model ${cfg.dModel} on ${trainFile.length.toLocaleString('en-US')} tokens: ${steps} steps of ${batchSize} x ${cfg.nCtx}` +
      (syntheticFraction > 0 ? `, ${Math.round(100 * syntheticFraction)}% of the rows synthetic copying sequences` : '') +
      (repeats !== 'none' ? `, ${Math.round(100 * repeatFraction)}% of the windows ending in a repeated ${repeats} segment` : ''),
  );
  const withRepeats = (windows: DataSource<TokenBatch>, seedOffset: number) =>
    repeats !== 'none' && repeatFraction > 0
      ? withRepeatedSegments(windows, {
          fraction: repeatFraction,
          seed: seed + seedOffset,
          ...(repeats === 'random' ? { randomVocab: eot } : {}),
        })
      : windows;
  const optimizer = adamw({ weightDecay: 0.1, beta2: 0.99, decayMask: decayMatricesOnly });
  const tokensPerStep = batchSize * cfg.nCtx;
  const rowsOf = (len: number): number => Math.max(1, Math.round(tokensPerStep / len));
  // Each stage has its own run directory; the config saved with its checkpoints (and checked on
  // resume) holds every stage's settings, the model's config and the training split's digest.
  const config = { model: cfg, trainSplitSha256: manifest.splits.train.sha256, ...runFingerprint(opts, DEFAULT_MODEL_NOT_FINGERPRINTED) };
  let params = trainableParams(cfg, initParams(cfg, { seed }));
  let seconds = 0;
  /** A stage before the full context: its own run directory, the peak learning rate after a warm-up. */
  const earlyStage = async (name: string, len: number, data: DataSource<TokenBatch>, stageSteps: number): Promise<void> => {
    const r = await train({
      params,
      loss,
      optimizer,
      data,
      steps: stageSteps,
      lr: linearWarmup(lr, Math.min(200, Math.floor(stageSteps / 5))),
      clipGradNorm: 1,
      outDir: join(o.workDir, `run-${name}`),
      resume: o.resume,
      checkpointEvery: Math.max(50, Math.floor(stageSteps / 10)),
      config: { stage: name, len, ...config },
      itemsPerBatch: tokensPerStep,
      itemName: 'tokens',
      logEvery: 10,
      progress: o.progress ?? 'auto',
    });
    params = r.params;
    seconds += r.elapsed;
  };
  // 3a. Synthetic copying sequences first (see DefaultModelOptions.syntheticSteps): the induction heads.
  if (syntheticSteps > 0) {
    log(`first ${syntheticSteps} steps on synthetic copying sequences of ${syntheticLen} tokens`);
    const rows = rowsOf(syntheticLen);
    const data = syntheticData((rng) => ({ tokens: inductionBatch(rng, rows, syntheticLen, eot) }), { seed: seed + 7 });
    await earlyStage('synthetic', syntheticLen, data, syntheticSteps);
  }
  // 3b. Optionally, short windows of text (see DefaultModelOptions.shortSteps).
  if (shortSteps > 0) {
    log(`then ${shortSteps} steps on windows of ${shortLen} tokens`);
    const data = withRepeats(tokenWindows(trainFile, { seqLen: shortLen - 1, batchSize: rowsOf(shortLen), seed: seed + 5 }), 6);
    await earlyStage('short', shortLen, data, shortSteps);
  }
  // 3c. Text at the full context, with synthetic rows mixed in to keep the induction heads in use.
  let data = withRepeats(tokenWindows(trainFile, { seqLen, batchSize, seed }), 3);
  if (syntheticFraction > 0)
    data = withSyntheticRows(data, { fraction: syntheticFraction, segment: syntheticLen, vocab: eot, seed: seed + 11 });
  const result = await train({
    params,
    loss,
    optimizer,
    data,
    steps,
    lr: cosineDecay({
      lr,
      totalSteps: steps,
      warmupSteps: Math.min(shortSteps + syntheticSteps > 0 ? 50 : 200, Math.floor(steps / 10)),
      finalLr: lr / 10,
    }),
    clipGradNorm: 1,
    outDir: join(o.workDir, 'run'),
    resume: o.resume,
    checkpointEvery: Math.max(50, Math.floor(steps / 20)),
    config,
    evalEvery: Math.max(100, Math.floor(steps / 10)),
    evaluate: (p) => ({ validationLoss: meanLoss(p, evalWindows) }),
    itemsPerBatch: tokensPerStep,
    itemName: 'tokens',
    logEvery: 10,
    progress: o.progress ?? 'auto',
  });
  seconds += result.elapsed;
  const finalParams = result.params;
  const model = new HookedTransformer(cfg, modelParams(cfg, finalParams));
  model.tokenizer = tokenizer;

  // 4. Evaluate: validation loss on every window, n-gram baselines, head scores.
  log('evaluating');
  const allWindows = sequentialWindows(valFile, seqLen);
  const validationLoss = meanLoss(finalParams, allWindows);
  const baselines = ngramBaselines(trainFile, allWindows, vocabSize);
  const heads = headScores(model, allWindows.slice(0, 8), seed);
  const report: DefaultModelReport = {
    config: cfg,
    parameters: elementCount(finalParams),
    corpus: manifest,
    tokens: { train: trainFile.length, validation: valFile.length },
    training: {
      steps,
      repeats,
      repeatFraction,
      shortSteps,
      shortLen,
      syntheticSteps,
      syntheticLen,
      syntheticFraction,
      batchSize,
      seqLen: cfg.nCtx,
      tokensSeen: (shortSteps + syntheticSteps + steps) * tokensPerStep,
      seconds,
      lr,
    },
    validationLoss,
    bigramValidationLoss: baselines.bigram,
    unigramValidationLoss: baselines.unigram,
    copying: copyingLosses(model, valFile),
    ...heads,
  };

  // 5. The model directory: Hugging Face GPT-2 format, float16, with its tokenizer and report.
  mkdirSync(o.outDir, { recursive: true });
  saveModel(o.outDir, model, { dtype: 'float16', tokenizer: join(tokDir, 'tokenizer.json') });
  writeTokenizerConfig(o.outDir, cfg.nCtx);
  writeFileAtomic(join(o.outDir, 'training.json'), JSON.stringify(report, null, 2) + '\n');
  trainFile.close();
  valFile.close();
  return report;
}

/** tokenizer_config.json naming <|endoftext|> as BOS, EOS and unknown token, as GPT-2's does. */
function writeTokenizerConfig(dir: string, nCtx: number): void {
  writeFileAtomic(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify(
      {
        tokenizer_class: 'GPT2Tokenizer',
        bos_token: END_OF_TEXT,
        eos_token: END_OF_TEXT,
        unk_token: END_OF_TEXT,
        add_prefix_space: false,
        model_max_length: nCtx,
      },
      null,
      2,
    ) + '\n',
  );
}

/**
 * Unigram and bigram cross-entropy (nats) on the validation windows' next-token targets, with
 * counts from the whole training file and add-one smoothing: the baselines the model must beat.
 */
export function ngramBaselines(trainFile: TokenFile, windows: Tensor[], vocabSize: number): { unigram: number; bigram: number } {
  const uni = new Float64Array(vocabSize);
  const bi = new Map<number, number>();
  const chunk = 1 << 20;
  let prev = -1;
  for (let start = 0; start < trainFile.length; start += chunk) {
    const ids = trainFile.read(start, Math.min(chunk, trainFile.length - start));
    for (const id of ids) {
      uni[id]!++;
      if (prev >= 0) bi.set(prev * vocabSize + id, (bi.get(prev * vocabSize + id) ?? 0) + 1);
      prev = id;
    }
  }
  const total = trainFile.length;
  let nllUni = 0;
  let nllBi = 0;
  let n = 0;
  for (const w of windows) {
    const ids = Array.from(w.dataSync() as BigInt64Array, Number);
    for (let i = 0; i + 1 < ids.length; i++) {
      const a = ids[i]!;
      const b = ids[i + 1]!;
      nllUni -= Math.log((uni[b]! + 1) / (total + vocabSize));
      nllBi -= Math.log(((bi.get(a * vocabSize + b) ?? 0) + 1) / (uni[a]! + vocabSize));
      n++;
    }
  }
  return { unigram: nllUni / n, bigram: nllBi / n };
}

/**
 * Mean loss on 16 validation segments of (context - 1) / 2 tokens (127 for the shipped model's
 * 256), first as they appear and then repeated right after themselves (BOS + s + s), so the rows
 * fill the context without running past it: a model that copies in context predicts the repeat.
 */
function copyingLosses(model: HookedTransformer, valFile: TokenFile): { first: number; repeated: number } {
  const n = Math.floor((model.cfg.nCtx - 1) / 2);
  const rows = Array.from({ length: 16 }, (_, i) => {
    const s = Array.from(valFile.read(i * 4 * n, n));
    return [model.cfg.bosTokenId!, ...s, ...s];
  });
  const perToken = model.loss(rows, { perToken: true }).cast('float32').mean(0).dataSync() as Float32Array;
  // perToken[t] is the loss predicting token t + 1: t + 1 in 1..n is the first copy, n+1..2n the repeat.
  const mean = (a: Float32Array) => a.reduce((x, y) => x + y, 0) / a.length;
  return { first: mean(perToken.subarray(0, n)), repeated: mean(perToken.subarray(n, 2 * n)) };
}

/**
 * Induction scores on repeated random tokens (as TransformerLens and Olsson et al. measure them)
 * and previous-token scores on real text, per layer and head.
 */
function headScores(
  model: HookedTransformer,
  textWindows: Tensor[],
  seed: number,
): { inductionScores: number[][]; previousTokenScores: number[][] } {
  const induction = inductionScores(model, { batch: 8, seed: seed + 99 }).scores;
  const text = concat(textWindows, 0);
  const previous = previousTokenScores(model, text);
  return { inductionScores: induction.toArray() as number[][], previousTokenScores: previous.toArray() as number[][] };
}

/**
 * Replaces a `fraction` of each batch's rows [batch, L] by synthetic copying sequences: L / segment
 * `inductionBatch` rows of `segment` tokens (ids below `vocab`) written end to end, so the
 * repeats sit at the distances the synthetic stage trained on.
 */
export function withSyntheticRows(
  source: DataSource<TokenBatch>,
  o: { fraction: number; segment: number; vocab: number; seed?: number },
): DataSource<TokenBatch> {
  if (!(o.fraction >= 0 && o.fraction <= 1)) throw new Error(`withSyntheticRows: fraction must be in [0, 1], got ${o.fraction}`);
  return rewriteRows(source, o.seed ?? 0, (out, b, L, rng) => {
    if (L % o.segment !== 0) throw new Error(`withSyntheticRows: row length ${L} is not a multiple of the segment ${o.segment}`);
    for (let r = 0; r < b; r++) {
      if (rng.uniform() >= o.fraction) continue;
      out.set(inductionBatch(rng, L / o.segment, o.segment, o.vocab).dataSync() as BigInt64Array, r * L);
    }
  });
}
