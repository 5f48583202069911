/**
 * `glassbox sae ...`: sparse autoencoders on a model.
 *
 * - `sae eval --model M --sae DIR [--tokens N] [--json FILE]`: sparsity, reconstruction and CE /
 *   KL recovered (src/sae/evals.ts), printed as a table and optionally written as JSON.
 * - `sae features --model M --sae DIR --out DIR [--tokens N] [--top-k 20]`: builds a feature store
 *   (top contexts, histograms, densities, logit effects; src/sae/features.ts) and prints a summary.
 * - `sae show --features DIR --feature I [--json]`: one feature's page from a store.
 * - `sae train` (src/cli/sae-train.ts).
 *
 * Tokens come from the default model's corpus (its validation split, text the default model did
 * not train on) tokenized with the model's tokenizer, or from `--text FILE` or `--token-file
 * FILE.bin` (a nanoGPT-style token file with its .bin.json sidecar).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { stderrBar } from '../io/progress.js';
import { CHECKPOINT_JSON } from '../sae/features/checkpoint.js';
import type { HookedTransformer } from '../model/hooked.js';
import { loadModel } from '../model/pretrained.js';
import { defaultContextSize, evaluateSae, formatEvalReport } from '../sae/evals.js';
import {
  collectFeatures,
  featurePage,
  formatFeaturePage,
  loadFeatureStore,
  saveFeatureStore,
  type CollectionRunOptions,
  type FeatureStore,
} from '../sae/features/index.js';
import { defaultCorpusTokens, textFileTokens, type TokenSource } from '../sae/contexts.js';
import { checkSaeModel } from '../sae/attach.js';
import { resolveSae, SAE_RELEASES_ENV } from '../sae/pretrained.js';
import { readExplanations } from '../sae/explain/explain.js';
import type { Sae } from '../sae/sae.js';
import { TokenFile } from '../train/tokens.js';
import { registerSaeTrain } from './sae-train.js';
import { registerSaeExplain } from './sae-explain.js';
import { intFlag, MODEL_SPEC_HELP, numFlag } from './flags.js';
import { writeJson } from './output.js';

/** The corpus flags of a run over a model's activations (`sae eval`, `sae features`, `clt features`). */
export interface CorpusFlags {
  model: string;
  tokens: string;
  batchSize: string;
  contextSize?: string;
  text?: string;
  tokenFile?: string;
  includeSpecial?: boolean;
}

/**
 * Declares the `CorpusFlags` on `c`: --model, then whatever `between` adds (the dictionary's flags),
 * then --tokens (default `defaults.tokens`), --batch-size, --context-size (help `defaults.contextSize`),
 * --text, --token-file, --include-special.
 */
export const addCorpusFlags = (
  c: Command,
  defaults: { tokens: string; contextSize: string },
  between: (c: Command) => Command = (x) => x,
): Command =>
  between(c.option('--model <model>', MODEL_SPEC_HELP, 'default'))
    .option('--tokens <n>', 'tokens to run through the model', defaults.tokens)
    .option('--batch-size <n>', 'contexts per forward pass', '8')
    .option('--context-size <n>', defaults.contextSize)
    .option('--text <file>', 'tokens from a UTF-8 text file (tokenized with the model)')
    .option('--token-file <file>', 'tokens from a token file NAME.bin (with NAME.bin.json)')
    .option('--include-special', 'count BOS / EOS / padding positions too');

/** Flags shared by `eval` and `features`. */
interface RunFlags extends CorpusFlags {
  sae: string;
  allowModelMismatch?: boolean;
  releases?: string;
}

/** The flags of a feature collection (`sae features`, `clt features`): what is kept per feature, checkpoints, progress. */
export interface CollectionFlags {
  topK: string;
  before: string;
  after: string;
  logitTokens: string;
  samples: string;
  sampleSeed: string;
  checkpointEvery: string;
  resume?: boolean;
  progress: boolean;
}

/** Declares the `CollectionFlags` on `c`; `checkpoint` names where the collection state goes. */
export const addCollectionFlags = (c: Command, checkpoint: string): Command =>
  c
    .option('--top-k <n>', 'contexts kept per feature', '20')
    .option('--before <n>', 'tokens shown before the max-activating token', '10')
    .option('--after <n>', 'tokens shown after it', '5')
    .option('--logit-tokens <n>', 'top and bottom logit-effect tokens per feature (0: none)', '10')
    .option('--samples <n>', "firing tokens sampled per feature, for the feature page's quantile groups (0: none)", '32')
    .option('--sample-seed <n>', 'seed of the samples', '0')
    .option('--checkpoint-every <n>', `write the collection state to ${checkpoint} every n batches (0: never)`, '50')
    .option('--resume', `continue a stopped run from ${checkpoint} (same flags)`)
    .option('--no-progress', 'no progress bar');

/**
 * The checkpoint options of a collection whose state goes to `dir`: a checkpoint every `every`
 * batches (0: none, unless resuming). `--resume` needs a checkpoint in `dir`, else it is refused.
 */
export function collectionCheckpointOf(
  dir: string,
  every: number,
  resume: boolean | undefined,
): Pick<CollectionRunOptions, 'checkpoint' | 'resume'> {
  if (resume && !existsSync(join(dir, CHECKPOINT_JSON))) throw new Error(`--resume: ${dir} holds no checkpoint to continue`);
  return {
    ...(every > 0 || resume ? { checkpoint: { dir, everyBatches: every > 0 ? every : Number.MAX_SAFE_INTEGER } } : {}),
    ...(resume ? { resume: true } : {}),
  };
}

/** The collector's settings from `CollectionFlags`, each checked by name. */
export function collectionOptionsOf(f: CollectionFlags): {
  topK: number;
  before: number;
  after: number;
  logitEffects: number;
  samples: number;
  sampleSeed: number;
  every: number;
} {
  return {
    topK: intFlag('top-k', f.topK)!,
    before: intFlag('before', f.before, 0)!,
    after: intFlag('after', f.after, 0)!,
    logitEffects: intFlag('logit-tokens', f.logitTokens, 0)!,
    samples: intFlag('samples', f.samples, 0)!,
    sampleSeed: intFlag('sample-seed', f.sampleSeed, 0)!,
    every: intFlag('checkpoint-every', f.checkpointEvery, 0)!,
  };
}

const addRunFlags = (c: Command, tokens: string): Command =>
  addCorpusFlags(c, { tokens, contextSize: "tokens per context, BOS included (default: the SAE's context_size, else 128)" }, (x) =>
    x
      .requiredOption(
        '--sae <dir|release/id>',
        'the SAE: a directory in SAELens layout (cfg.json + sae_weights.safetensors), or RELEASE/SAE_ID',
      )
      .option(
        '--releases <file>',
        `a releases file (SAELens's pretrained_saes.yaml format) besides the built-in ones and $${SAE_RELEASES_ENV}`,
      ),
  ).option('--allow-model-mismatch', "use the SAE although its cfg.json's model_name names another model");

/** The token source the flags name, and its description. */
export function corpusFor(
  model: HookedTransformer,
  o: { text?: string; tokenFile?: string },
): { source: TokenSource; description: string } {
  if (o.text !== undefined && o.tokenFile !== undefined) throw new Error('give --text or --token-file, not both');
  if (o.tokenFile !== undefined) {
    const file = TokenFile.open(o.tokenFile);
    if (file.vocabSize > model.cfg.dVocab)
      throw new Error(
        `${o.tokenFile}: its vocabulary has ${file.vocabSize} ids, the model's ${model.cfg.dVocab} (tokenized for another model?)`,
      );
    return { source: file, description: o.tokenFile };
  }
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw new Error('the model has no tokenizer: give the tokens with --token-file');
  const t = o.text !== undefined ? textFileTokens(o.text, tokenizer) : defaultCorpusTokens(tokenizer, { eosTokenId: model.cfg.eosTokenId });
  return { source: t.ids, description: t.description };
}

/** Loads the model, the SAE, the tokens, and turns --tokens into batches. */
async function prepare(f: RunFlags): Promise<{
  model: HookedTransformer;
  sae: Sae;
  source: TokenSource;
  description: string;
  batchSize: number;
  contextSize: number;
  batches: number;
}> {
  const tokens = intFlag('tokens', f.tokens);
  const batchSize = intFlag('batch-size', f.batchSize);
  const requested = f.contextSize !== undefined ? intFlag('context-size', f.contextSize, 2) : undefined;
  if (f.text !== undefined && f.tokenFile !== undefined) throw new Error('give --text or --token-file, not both');
  const { sae } = await resolveSae(f.sae, f.releases !== undefined ? { releasesFiles: [f.releases] } : {});
  const kwargs = (sae.cfg as { model_from_pretrained_kwargs?: Record<string, unknown> }).model_from_pretrained_kwargs;
  if (kwargs && Object.keys(kwargs).length > 0)
    // SAELens loads the model with these TransformerLens options (gpt2-small-res-jb: center_writing_weights); glassbox loads it as on the Hub
    console.error(
      `warning: ${f.sae} was trained on the model loaded with ${JSON.stringify(kwargs)} (TransformerLens options); ${f.model} is loaded as on the Hub, so its activations may differ from the SAE's training data`,
    );
  if (!sae.cfg.hook_name) throw new Error(`${f.sae}: the SAE's cfg.json names no hook_name`);
  const model = await loadModel(f.model);
  checkSaeModel(model, sae, { allowModelMismatch: f.allowModelMismatch === true });
  const contextSize = defaultContextSize(model, sae, requested);
  if (requested !== undefined && contextSize < requested)
    throw new Error(`--context-size ${requested} exceeds the model's context of ${model.cfg.nCtx}`);
  const { source, description } = corpusFor(model, f);
  return { model, sae, source, description, batchSize, contextSize, batches: Math.max(1, Math.ceil(tokens / (batchSize * contextSize))) };
}

const seconds = (t0: number): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`;

/**
 * The progress bar of a feature collection (on stderr, when it is a terminal and `progress` is
 * set): `onBatch` for the collector (a resumed run starts the bar where the checkpoint stood, and
 * the rate counts only the batches run now), `stop` when done.
 */
export async function collectionProgress(
  progress: boolean,
  tokensPerBatch: number,
): Promise<{ onBatch: (done: number, total: number) => void; stop: () => void }> {
  const bar =
    progress && process.stderr.isTTY
      ? await stderrBar('features [{bar}] {percentage}% | batch {value}/{total} | {rate} tokens/s | ETA {eta_formatted}', 5)
      : null;
  const t0 = performance.now();
  let started = false;
  let firstDone = 0;
  const onBatch = (done: number, total: number) => {
    if (!bar) return;
    if (!started) {
      started = true;
      firstDone = done;
      bar.start(total, done, { rate: '-' });
      return;
    }
    const secs = (performance.now() - t0) / 1000;
    bar.update(done, { rate: (((done - firstDone) * tokensPerBatch) / Math.max(secs, 1e-9)).toFixed(0) });
  };
  return { onBatch, stop: () => bar?.stop() };
}

/** A summary of a feature store (what `glassbox sae features` prints). */
export function formatStoreSummary(store: FeatureStore, dir: string): string {
  const m = store.meta;
  const d = m.sae.d_sae;
  const density = Array.from(store.density);
  const dead = density.filter((_x, i) => store.stats.fireCount[i] === 0).length;
  const dense = density.filter((x) => x > 0.1).length;
  const live = density.filter((x) => x > 0).sort((a, b) => a - b);
  const q = (p: number): string => (live.length ? live[Math.min(live.length - 1, Math.floor(p * live.length))]!.toExponential(2) : 'n/a');
  const lines = [
    `wrote ${dir}: ${d} features over ${m.corpus.tokens_counted} tokens (${m.corpus.contexts} contexts of ${m.corpus.context_size}), top ${m.top_k} contexts each`,
    `  corpus          ${m.corpus.description}`,
    `  dead features   ${dead} (${((100 * dead) / d).toFixed(1)}%)`,
    `  dense features  ${dense} (density > 0.1)`,
    `  density         live features: 10th percentile ${q(0.1)}, median ${q(0.5)}, 90th percentile ${q(0.9)}`,
    `  logit effects   ${'path' in m.logit_effects ? m.logit_effects.path : `none: ${m.logit_effects.reason}`}`,
  ];
  const order = density
    .map((x, i) => [x, i] as const)
    .filter(([x]) => x > 0)
    .sort((a, b) => b[0] - a[0])
    .slice(0, 5);
  if (order.length) lines.push('  most frequent features:');
  for (const [x, i] of order) {
    const page = featurePage(store, i);
    const top = page.contexts[0];
    const t = top ? top.tokens[top.maxIndex]! : null;
    const tok = t ? (t.str !== null ? JSON.stringify(t.str) : `#${t.id}`) : '';
    lines.push(`    ${String(i).padStart(6)}  density ${x.toExponential(2)}  max ${page.maxActivation.toFixed(3)} on ${tok}`);
  }
  return lines.join('\n');
}

/** Adds the `sae` command group (eval, features, show, train) to the program; returns the group. */
export function registerSae(program: Command): Command {
  const sae = program.command('sae').description('sparse autoencoders and transcoders: train, evaluate, browse features');

  addRunFlags(sae.command('eval').description('L0, dead/dense features, explained variance, MSE, cosine, CE and KL recovered'), '16384')
    .option('--dense-threshold <f>', 'features firing on more than this fraction of tokens count as dense', '0.1')
    .option('--json <file>', 'also write the report as JSON')
    .action(async (f: RunFlags & { denseThreshold: string; json?: string }) => {
      const denseThreshold = numFlag('dense-threshold', f.denseThreshold, 0, 1);
      const p = await prepare(f);
      const t0 = performance.now();
      const report = evaluateSae(p.model, p.sae, p.source, {
        batches: p.batches,
        batchSize: p.batchSize,
        contextSize: p.contextSize,
        excludeSpecial: !f.includeSpecial,
        denseThreshold,
        description: p.description,
        allowModelMismatch: f.allowModelMismatch === true,
      });
      console.log(formatEvalReport(report));
      console.log(`\nevaluated ${report.data.tokens} tokens in ${seconds(t0)}`);
      writeJson(f.json, report);
    });

  const features = addRunFlags(
    sae.command('features').description("build a feature store: every feature's top contexts, histogram, density, logit effects"),
    '65536',
  ).requiredOption('--out <dir>', 'store directory (features.json + features.safetensors)');
  addCollectionFlags(features, 'OUT/.checkpoint').action(async (f: RunFlags & CollectionFlags & { out: string }) => {
    const { topK, before, after, logitEffects: logits, samples, sampleSeed, every } = collectionOptionsOf(f);
    const p = await prepare(f);
    const t0 = performance.now();
    const checkpoint = collectionCheckpointOf(join(f.out, '.checkpoint'), every, f.resume);
    const { onBatch, stop } = await collectionProgress(f.progress, p.batchSize * p.contextSize);
    const store = collectFeatures(p.model, p.sae, p.source, {
      batches: p.batches,
      batchSize: p.batchSize,
      contextSize: p.contextSize,
      excludeSpecial: !f.includeSpecial,
      topK,
      before,
      after,
      logitEffects: logits,
      samples,
      sampleSeed,
      modelName: f.model,
      saePath: f.sae,
      description: p.description,
      allowModelMismatch: f.allowModelMismatch === true,
      onBatch,
      ...checkpoint,
    });
    stop();
    saveFeatureStore(store, f.out);
    console.log(formatStoreSummary(store, f.out));
    console.log(`\n${seconds(t0)}`);
  });

  sae
    .command('show')
    .description('print one feature page from a feature store')
    .requiredOption('--features <dir>', 'a store written by `glassbox sae features`')
    .requiredOption('--feature <i>', 'the feature index')
    .option('--contexts <n>', 'top contexts to show (default all)')
    .option('--json', 'print the page as JSON')
    .action((f: { features: string; feature: string; contexts?: string; json?: boolean }) => {
      const index = intFlag('feature', f.feature, 0);
      const store = loadFeatureStore(f.features);
      const page = featurePage(store, index);
      const explanation = readExplanations(f.features).get(index) ?? null;
      if (f.json) console.log(JSON.stringify(explanation ? { ...page, explanation } : page, null, 2));
      else {
        console.log(formatFeaturePage(page, f.contexts !== undefined ? { contexts: intFlag('contexts', f.contexts) } : {}));
        if (explanation) {
          const score = explanation.score ? `detection ${explanation.score.balanced_accuracy.toFixed(2)}` : 'not scored';
          console.log(`\nexplanation ${JSON.stringify(explanation.explanation)} (${explanation.explainer.model}, ${score})`);
        }
      }
    });

  registerSaeTrain(sae);
  registerSaeExplain(sae);
  return sae;
}
