/**
 * `glassbox clt train MODEL --out DIR`: trains a cross-layer transcoder (or, with --per-layer, a
 * set of per-layer transcoders) on every MLP of a model (`trainClt`), then evaluates it
 * (`evaluateClt`: per-layer FVU and L0, CE-loss recovered with every MLP replaced) and writes
 * DIR/eval.json. `glassbox clt eval DIR` evaluates a saved set. `glassbox clt features DIR` builds
 * a feature store per layer (DIR/features/layer-l) for the Graph view's node pane.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { writeJson } from './output.js';
import { loadModel } from '../model/pretrained.js';
import type { HookedTransformer } from '../model/hooked.js';
import { trainClt } from '../sae/clt/train.js';
import { evaluateClt, formatCltEval, type CltEvalReport } from '../sae/clt/evaluate.js';
import { loadClt } from '../sae/clt/formats.js';
import { activationStore } from '../sae/training/activation-store.js';
import { defaultCorpusContexts } from '../sae/contexts.js';
import type { TracingTranscoders } from '../sae/clt/types.js';
import { intFlag, MODEL_SPEC_HELP, numFlag, oneOfFlag } from './flags.js';
import { checkTracingPair } from '../circuits/replacement.js';
import { loadTracingTranscoders } from '../circuits/load-transcoders.js';
import { collectTranscoderFeatures, featureStoreDir, saveTranscoderFeatureStores } from '../sae/clt/features.js';
import {
  addCollectionFlags,
  addCorpusFlags,
  collectionCheckpointOf,
  collectionOptionsOf,
  collectionProgress,
  corpusFor,
  formatStoreSummary,
  type CollectionFlags,
  type CorpusFlags,
} from './sae.js';
import { activationRunOptionsOf, addActivationRunFlags, untilSigint, type ActivationRunFlags } from './run-flags.js';

interface CltTrainFlags extends ActivationRunFlags {
  out: string;
  width: string;
  activation: string;
  k: string;
  perLayer?: boolean;
  skip?: boolean;
  steps: string;
  batchSize: string;
  sparsityCoefficient?: string;
  sparsityWarmUpSteps: string;
  tanhScale: string;
  evalRows: string;
}

/**
 * Evaluation rows: `n` contexts of the default corpus's validation split (held out from training)
 * for dataset 'default'; otherwise contexts of the dataset far past those the run trained on (the
 * store's contexts cycle, so with a small dataset they may overlap the training data).
 */
function evalRows(model: HookedTransformer, dataset: string, contextSize: number | undefined, n: number): number[][] {
  const size = contextSize ?? Math.min(128, model.cfg.nCtx);
  if ((dataset === 'default' || dataset === 'glassbox/default') && model.tokenizer) {
    const bos = model.cfg.bosTokenId;
    const contexts = defaultCorpusContexts(model.tokenizer, {
      contextSize: size,
      prependBos: bos !== null,
      bosTokenId: bos,
      shuffle: true,
      seed: 12345,
      eosTokenId: model.cfg.eosTokenId,
      vocabSize: model.cfg.dVocab,
      split: 'validation',
    });
    return Array.from({ length: n }, (_, i) => Array.from(contexts.context(i)));
  }
  const contexts = activationStore(model, { dataset, contextSize: size, hookName: model.hookNames[0]!, seed: 12345 }).contexts;
  return Array.from({ length: n }, (_, i) => Array.from(contexts.context(1_000_000 + i)));
}

function printReport(where: string, r: CltEvalReport): void {
  process.stdout.write(`${where}\n${formatCltEval(r)}\n`);
}

/** Registers `glassbox clt train` and `glassbox clt eval`. */
export function registerClt(program: Command): Command {
  const clt = program.command('clt').description('cross-layer transcoders: train, evaluate, build feature stores (circuit tracing)');
  const train = clt
    .command('train')
    .description('train a cross-layer transcoder on every MLP of MODEL, then evaluate it (DIR/eval.json)')
    .argument('[model]', MODEL_SPEC_HELP, 'default')
    .requiredOption('--out <dir>', 'run directory: cfg.json + sae_weights.safetensors, metrics.jsonl, checkpoints/, eval.json')
    .option('--width <n>', 'features per layer', '512')
    .option('--activation <name>', 'jumprelu, relu or topk', 'jumprelu')
    .option('--k <n>', 'topk: features per token and layer', '16')
    .option('--per-layer', 'per-layer transcoders (each layer writes only its own MLP output) instead of a CLT')
    .option('--skip', 'add a linear skip path per layer')
    .option('--steps <n>', 'training steps', '2000')
    .option('--batch-size <n>', 'activations per step', '1024')
    .option('--sparsity-coefficient <c>', 'sparsity coefficient (default 1 for jumprelu, 1e-3 for relu)')
    .option('--sparsity-warm-up-steps <n>', 'linear warm-up of the sparsity coefficient', '0')
    .option('--tanh-scale <c>', 'jumprelu: c in tanh(c * a * ||W_dec||)', '4')
    .option('--eval-rows <n>', 'contexts the final evaluation runs on', '32');
  addActivationRunFlags(train, { lr: '2e-4', storeBatchSizePrompts: '16', nBatchesInBuffer: '8' });
  train.action(async (model: string, f: CltTrainFlags) => {
    const activation = oneOfFlag('activation', f.activation, ['jumprelu', 'relu', 'topk'] as const);
    const m = await loadModel(model);
    const { store, run } = activationRunOptionsOf(f);
    // Ctrl-C checkpoints and stops; `--resume` continues.
    const r = await untilSigint((signal) =>
      trainClt(m, {
        signal,
        ...store,
        dSae: intFlag('width', f.width)!,
        activation,
        k: activation === 'topk' ? intFlag('k', f.k) : undefined,
        crossLayer: !f.perLayer,
        skip: Boolean(f.skip),
        totalTrainingSteps: intFlag('steps', f.steps)!,
        trainBatchSizeTokens: intFlag('batch-size', f.batchSize)!,
        sparsityCoefficient: numFlag('sparsity-coefficient', f.sparsityCoefficient, 0),
        sparsityWarmUpSteps: intFlag('sparsity-warm-up-steps', f.sparsityWarmUpSteps, 0),
        tanhScale: numFlag('tanh-scale', f.tanhScale, 0),
        ...run,
        modelName: model,
      }),
    );
    if (r.interrupted) {
      process.stdout.write(
        `interrupted at step ${r.step}: checkpointed in ${join(f.out, 'checkpoints')}; run again with --resume to continue\n`,
      );
      return;
    }
    process.stdout.write(`trained ${r.clt} for ${r.step} steps in ${r.elapsed.toFixed(0)} s\n`);
    const report = evaluateClt(m, r.clt, evalRows(m, f.dataset, store.contextSize, intFlag('eval-rows', f.evalRows)!));
    writeJson(join(f.out, 'eval.json'), { ...report, trainSeconds: r.elapsed, steps: r.step });
    printReport(`evaluation (${join(f.out, 'eval.json')}):`, report);
  });
  clt
    .command('eval')
    .description('evaluate a saved transcoder set: per-layer FVU and L0, CE-loss recovered with every MLP replaced')
    .argument('<dir>', 'a directory written by `glassbox clt train`')
    .option('--model <model>', MODEL_SPEC_HELP, 'default')
    .option('--dataset <src>', "'default', a token file NAME.bin or a text file", 'default')
    .option('--context-size <n>', 'tokens per context')
    .option('--eval-rows <n>', 'contexts to evaluate on', '32')
    .action(async (dir: string, f: { model: string; dataset: string; contextSize?: string; evalRows: string }) => {
      const m = await loadModel(f.model);
      const set: TracingTranscoders = loadClt(dir);
      const rows = evalRows(m, f.dataset, intFlag('context-size', f.contextSize, 2), intFlag('eval-rows', f.evalRows)!);
      printReport(`${dir}:`, evaluateClt(m, set, rows));
    });
  const features = clt
    .command('features')
    .description(
      "build a feature store per layer of a transcoder set (DIR/features/layer-L): every feature's top contexts, histogram, density, logit effects",
    )
    .argument('<dir>', 'transcoders: a CLT directory (`glassbox clt train`) or one per-layer transcoder sub-directory per layer');
  addCorpusFlags(features, { tokens: '65536', contextSize: "tokens per context, BOS included (default 128, at most the model's context)" });
  addCollectionFlags(features, 'DIR/features/.checkpoint').action(async (dir: string, f: CltFeaturesFlags) => {
    const tokens = intFlag('tokens', f.tokens)!;
    const batchSize = intFlag('batch-size', f.batchSize)!;
    const requested = intFlag('context-size', f.contextSize, 2);
    const { every, ...collector } = collectionOptionsOf(f);
    const set = loadTracingTranscoders(dir);
    const model = await loadModel(f.model);
    checkTracingPair(model, set);
    const contextSize = Math.min(requested ?? 128, model.cfg.nCtx);
    if (requested !== undefined && contextSize < requested)
      throw new Error(`--context-size ${requested} exceeds the model's context of ${model.cfg.nCtx}`);
    const { source, description } = corpusFor(model, f);
    const checkpoint = collectionCheckpointOf(join(dir, 'features', '.checkpoint'), every, f.resume);
    const t0 = performance.now();
    const { onBatch, stop } = await collectionProgress(f.progress, batchSize * contextSize);
    const stores = collectTranscoderFeatures(model, set, source, {
      batches: Math.max(1, Math.ceil(tokens / (batchSize * contextSize))),
      batchSize,
      contextSize,
      excludeSpecial: !f.includeSpecial,
      ...collector,
      modelName: f.model,
      transcodersPath: dir,
      description,
      onBatch,
      ...checkpoint,
    });
    stop();
    saveTranscoderFeatureStores(stores, dir);
    stores.forEach((s, l) => console.log(`layer ${l}: ${formatStoreSummary(s, featureStoreDir(dir, l))}\n`));
    console.log(`${((performance.now() - t0) / 1000).toFixed(1)}s`);
  });
  return clt;
}

type CltFeaturesFlags = CollectionFlags & CorpusFlags;
