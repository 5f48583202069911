/**
 * `glassbox sae train`: trains an SAE (or transcoder) on a model's activations, with SAELens's
 * options (flag names are SAELens's config fields in kebab-case), and writes the run directory:
 * the SAE in SAELens's layout (cfg.json, sae_weights.safetensors, sparsity.safetensors),
 * training.json, metrics.jsonl and checkpoints/ (`--resume` continues).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadModel } from '../model/pretrained.js';
import { getArchitecture, listArchitectures } from '../sae/registry.js';
import { trainingFacts } from '../sae/common.js';
import type { SaeArchitecture } from '../sae/types.js';
import { activationStore, type ActivationSource } from '../sae/training/activation-store.js';
import { ACTIVATION_MANIFEST, CachedActivationStore, cacheActivations } from '../sae/training/activation-cache.js';
import { trainSae } from '../sae/training/trainer.js';
import { intFlag, MODEL_SPEC_HELP, numFlag, oneOfFlag } from './flags.js';
import { activationRunOptionsOf, addActivationRunFlags, untilSigint, type ActivationRunFlags } from './run-flags.js';

/** The flags, as commander hands them over (strings until checked). */
interface SaeTrainFlags extends ActivationRunFlags {
  model: string;
  hook: string;
  hookOut?: string;
  arch: string;
  width?: string;
  expansionFactor?: string;
  k?: string;
  matryoshkaWidths?: string;
  tokens: string;
  out: string;
  batchSize: string;
  lrScheduler: string;
  lrEnd?: string;
  adamBeta1: string;
  adamBeta2: string;
  l1Coefficient?: string;
  l1WarmUpSteps: string;
  l0Coefficient?: string;
  l0WarmUpSteps: string;
  auxLossCoefficient?: string;
  deadFeatureWindow: string;
  featureSamplingWindow: string;
  normalizeActivations: string;
  bDecInitMethod: string;
  excludeSpecialTokens?: boolean;
  prependBos: boolean;
  nEvalBatches: string;
  evalEvery?: string;
  checkpointEvery?: string;
  cacheActivations?: string;
}

/** Adds `train` to the `glassbox sae` command. */
export function registerSaeTrain(sae: Command): void {
  const train = sae
    .command('train')
    .description("train a sparse autoencoder or transcoder on a model's activations (SAELens's recipe; resumable)")
    .requiredOption('--hook <name>', 'hook point the SAE reads, e.g. blocks.1.hook_resid_post')
    .requiredOption('--out <dir>', 'run directory: the SAE (SAELens layout), training.json, metrics.jsonl, checkpoints/')
    .option('--model <model>', MODEL_SPEC_HELP, 'default')
    .option('--hook-out <name>', 'transcoders: hook point the decoder writes, e.g. blocks.1.hook_mlp_out')
    .option('--arch <name>', `architecture (${listArchitectures().join(', ')})`, 'topk')
    .option('--width <n>', 'd_sae: number of features (default d_in * --expansion-factor)')
    .option('--expansion-factor <n>', 'd_sae / d_in when --width is not given', '16')
    .option('--k <n>', 'TopK family: active features per token', '32')
    .option('--matryoshka-widths <list>', 'matryoshka_batchtopk: comma-separated nested widths (default d_sae/16, d_sae/4, d_sae)')
    .option('--tokens <n>', 'training tokens (SAELens training_tokens)', '2000000')
    .option('--batch-size <n>', 'activations per step (train_batch_size_tokens)', '4096')
    .option('--lr-scheduler <name>', 'constant or cosineannealing', 'constant')
    .option('--lr-end <rate>', 'final rate of decay / cosine (default lr / 10)')
    .option('--adam-beta1 <b>', 'Adam beta1', '0.9')
    .option('--adam-beta2 <b>', 'Adam beta2', '0.999')
    .option('--l1-coefficient <c>', 'standard / gated / transcoder: L1 coefficient (default 1)')
    .option('--l1-warm-up-steps <n>', 'L1 coefficient warm-up steps', '0')
    .option('--l0-coefficient <c>', 'JumpReLU: L0 coefficient (default 1)')
    .option('--l0-warm-up-steps <n>', 'L0 coefficient warm-up steps', '0')
    .option('--aux-loss-coefficient <c>', 'TopK family: AuxK coefficient (default 1)')
    .option('--dead-feature-window <n>', 'steps without firing after which a feature is dead', '1000')
    .option('--feature-sampling-window <n>', 'steps per feature-density window', '2000')
    .option('--normalize-activations <mode>', 'none or expected_average_only_in', 'none')
    .option('--b-dec-init-method <m>', 'zeros, mean or geometric_median', 'zeros')
    .option('--exclude-special-tokens', 'leave out activations at BOS / EOS / padding tokens')
    .option('--no-prepend-bos', 'do not start each context with the BOS token')
    .option('--n-eval-batches <n>', 'held-out batches per evaluation (0: none)', '10')
    .option('--eval-every <n>', 'evaluate every n steps (default a tenth of the run)')
    .option('--checkpoint-every <n>', 'checkpoint every n steps (default a tenth of the run)')
    .option(
      '--cache-activations <dir>',
      'write the activations to this directory first (or reuse a finished cache there) and train from it',
    );
  addActivationRunFlags(train, { lr: '3e-4', storeBatchSizePrompts: '32', nBatchesInBuffer: '20' });
  train.action(async (f: SaeTrainFlags) => {
    const arch = f.arch;
    let architecture: SaeArchitecture;
    try {
      architecture = getArchitecture(arch);
    } catch {
      throw new Error(`--arch: unknown architecture '${arch}' (known: ${listArchitectures().join(', ')})`);
    }
    const training = trainingFacts(architecture);
    const transcoder = architecture.transcoder;
    if (transcoder && !f.hookOut) throw new Error(`--arch ${arch} is a transcoder: give --hook-out (the hook point it writes)`);
    if (!transcoder && f.hookOut) throw new Error(`--hook-out applies to transcoders; --arch ${arch} is not one`);
    const tokens = intFlag('tokens', f.tokens)!;
    const batchSize = intFlag('batch-size', f.batchSize)!;
    const { store: storeOptions, run } = activationRunOptionsOf(f);
    const seed = run.seed;
    const normalizeActivations = oneOfFlag('normalize-activations', f.normalizeActivations, ['none', 'expected_average_only_in'] as const);
    const bDecInitMethod = oneOfFlag('b-dec-init-method', f.bDecInitMethod, ['zeros', 'mean', 'geometric_median'] as const);
    const lrScheduler = oneOfFlag('lr-scheduler', f.lrScheduler, ['constant', 'cosineannealing'] as const);

    const cacheDir = f.cacheActivations;
    const cached = cacheDir !== undefined && existsSync(join(cacheDir, ACTIVATION_MANIFEST));
    let store: ActivationSource;
    if (cached) {
      store = new CachedActivationStore(cacheDir, { trainBatchSizeTokens: batchSize, seed });
      if (store.metadata.hook_name !== f.hook)
        throw new Error(`${cacheDir}: the cached activations are of '${store.metadata.hook_name}', not --hook '${f.hook}'`);
      process.stderr.write(`training from the activation cache in ${cacheDir}\n`);
    } else {
      const model = await loadModel(f.model);
      const live = activationStore(model, {
        hookName: f.hook,
        hookNameOut: f.hookOut ?? null,
        ...storeOptions,
        prependBos: f.prependBos,
        trainBatchSizeTokens: batchSize,
        excludeSpecialTokens: f.excludeSpecialTokens ?? false,
        seed,
        modelName: f.model,
      });
      if (cacheDir !== undefined) {
        process.stderr.write(`caching ${tokens.toLocaleString('en-US')} activations of ${f.hook} in ${cacheDir}\n`);
        cacheActivations(live, cacheDir, {
          totalTokens: tokens,
          onShard: (n, total) => process.stderr.write(`  ${n.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}\n`),
        });
        store = new CachedActivationStore(cacheDir, { trainBatchSizeTokens: batchSize, seed });
      } else store = live;
    }
    const dIn = store.dIn;
    const width = intFlag('width', f.width) ?? dIn * intFlag('expansion-factor', f.expansionFactor)!;
    // Config fields the architecture needs beyond the width and k (the matryoshka widths), the flags first.
    const suggested = training.suggestedConfig?.(width) ?? {};
    const matryoshka =
      suggested.matryoshka_widths && f.matryoshkaWidths
        ? f.matryoshkaWidths.split(',').map((w) => intFlag('matryoshka-widths', w.trim())!)
        : undefined;
    const r = await untilSigint((signal) =>
      trainSae({
        cfg: {
          ...suggested,
          architecture: arch,
          d_sae: width,
          ...(training.selectsTopK ? { k: intFlag('k', f.k) } : {}),
          ...(matryoshka ? { matryoshka_widths: matryoshka } : {}),
        },
        signal,
        store,
        totalTrainingTokens: tokens,
        ...run,
        lrScheduler,
        lrEnd: numFlag('lr-end', f.lrEnd, 0),
        adamBeta1: numFlag('adam-beta1', f.adamBeta1, 0, 0.999999),
        adamBeta2: numFlag('adam-beta2', f.adamBeta2, 0, 0.999999),
        l1Coefficient: numFlag('l1-coefficient', f.l1Coefficient, 0),
        l1WarmUpSteps: intFlag('l1-warm-up-steps', f.l1WarmUpSteps, 0),
        l0Coefficient: numFlag('l0-coefficient', f.l0Coefficient, 0),
        l0WarmUpSteps: intFlag('l0-warm-up-steps', f.l0WarmUpSteps, 0),
        auxLossCoefficient: numFlag('aux-loss-coefficient', f.auxLossCoefficient, 0),
        deadFeatureWindow: intFlag('dead-feature-window', f.deadFeatureWindow),
        featureSamplingWindow: intFlag('feature-sampling-window', f.featureSamplingWindow),
        normalizeActivations,
        bDecInitMethod,
        nEvalBatches: intFlag('n-eval-batches', f.nEvalBatches, 0),
        evalEvery: intFlag('eval-every', f.evalEvery),
        checkpointEvery: intFlag('checkpoint-every', f.checkpointEvery),
      }),
    );
    const ev = r.evals;
    if (r.interrupted) {
      console.log(
        `interrupted after ${r.step} steps (${r.tokens.toLocaleString('en-US')} tokens): continue with --resume (checkpoints in ${join(f.out, 'checkpoints')})`,
      );
      return;
    }
    console.log(`trained ${r.sae} for ${r.step} steps (${r.tokens.toLocaleString('en-US')} tokens) in ${r.elapsed.toFixed(0)} s`);
    if (ev)
      console.log(
        `held-out: explained variance ${ev['reconstruction_quality/explained_variance']!.toFixed(4)}, L0 ${ev['sparsity/l0']!.toFixed(2)}, MSE ${ev['reconstruction_quality/mse']!.toExponential(3)}`,
      );
    let dead = 0;
    for (const v of r.sparsity.dataSync() as Float32Array) if (v <= -8) dead++;
    console.log(`dead features (density < 1e-8 in the last window): ${dead} of ${r.sae.dSae}`);
    console.log(`wrote ${f.out}: cfg.json, sae_weights.safetensors, sparsity.safetensors, training.json, metrics.jsonl`);
  });
}
