/**
 * `glassbox tuned-lens train [model] --out DIR`: trains a tuned lens (src/analysis/tuned-lens.ts,
 * Belrose et al. 2023) on a model, writes it in the tuned-lens library's layout (`config.json`,
 * `params.safetensors`) with `training.json` (the settings and the held-out KL per layer against
 * the logit lens), and prints that comparison. `glassbox serve` loads a lens found in the model
 * folder's `tuned-lens/` (or given with `--tuned-lens DIR`) for the Logit lens view.
 *
 * 1. Tokens: the default model's corpus (training rows from its train split, held-out rows from
 *    its validation split), or a `--text` / `--token-file` stream (training rows first, the
 *    held-out rows after them). Each row is `--context-size` tokens, starting with BOS when the
 *    model has one (as the workbench's prompts do).
 * 2. Training: `trainTunedLens`, `--batch-size` random rows per step; with `--out` as its run
 *    directory (metrics.jsonl, checkpoints/), so `--resume` continues a stopped run.
 * 3. Evaluation: `compareLenses` on the held-out rows; the lens and training.json are written
 *    atomically, the lens files before training.json.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { writeJson } from './output.js';
import { loadModel } from '../model/pretrained.js';
import type { HookedTransformer } from '../model/hooked.js';
import { compareLenses, saveTunedLens, trainTunedLens } from '../analysis/tuned-lens.js';
import { arrayTokenReader, defaultCorpusTokens, type TokenReader } from '../sae/contexts.js';
import { corpusFor } from './sae.js';
import { intFlag, MODEL_SPEC_HELP, numFlag } from './flags.js';

interface TrainFlags {
  out: string;
  steps: string;
  batchSize: string;
  contextSize: string;
  contexts: string;
  heldOut: string;
  lr: string;
  weightDecay: string;
  seed: string;
  text?: string;
  tokenFile?: string;
  resume?: boolean;
  progress: boolean;
}

function asReader(source: unknown): TokenReader {
  const r = source as TokenReader;
  if (typeof r.read === 'function' && typeof r.length === 'number') return r;
  return arrayTokenReader(source as ArrayLike<number>);
}

/** `count` rows of `size` tokens from `reader` at row offset `first`, each starting with `bos` when given. */
function tokenRows(reader: TokenReader, first: number, count: number, size: number, bos: number | null, what: string): number[][] {
  const body = bos === null ? size : size - 1;
  const need = (first + count) * body;
  if (need > reader.length)
    throw new Error(
      `${what}: ${first + count} rows of ${size} tokens need ${need} tokens, it has ${reader.length} (fewer --contexts or --held-out)`,
    );
  return Array.from({ length: count }, (_, i) => {
    const ids = Array.from(reader.read((first + i) * body, body));
    return bos === null ? ids : [bos, ...ids];
  });
}

/** Training and held-out rows, and a description of where they come from. */
function lensRows(
  model: HookedTransformer,
  f: TrainFlags,
  n: { train: number; heldOut: number; size: number },
): { train: number[][]; heldOut: number[][]; description: string } {
  const bos = model.cfg.bosTokenId ?? null;
  if (f.text === undefined && f.tokenFile === undefined) {
    const tok = model.tokenizer;
    if (!tok) throw new Error('the model has no tokenizer: give the tokens with --token-file');
    const eosTokenId = model.cfg.eosTokenId;
    const train = defaultCorpusTokens(tok, { eosTokenId, split: 'train' });
    const held = defaultCorpusTokens(tok, { eosTokenId, split: 'validation' });
    return {
      train: tokenRows(arrayTokenReader(train.ids), 0, n.train, n.size, bos, train.description),
      heldOut: tokenRows(arrayTokenReader(held.ids), 0, n.heldOut, n.size, bos, held.description),
      description: `${train.description} (held out: the validation split)`,
    };
  }
  const { source, description } = corpusFor(model, f);
  const reader = asReader(source);
  return {
    train: tokenRows(reader, 0, n.train, n.size, bos, description),
    heldOut: tokenRows(reader, n.train, n.heldOut, n.size, bos, description),
    description: `${description} (held out: the ${n.heldOut} rows after the training rows)`,
  };
}

/** Adds `glassbox tuned-lens train`. */
export function registerTunedLens(program: Command): void {
  const cmd = program.command('tuned-lens').description('tuned lenses (Belrose et al. 2023): one affine translator per layer');
  cmd
    .command('train')
    .description('train a tuned lens on a model; writes it (tuned-lens layout) and training.json with its KL per layer vs the logit lens')
    .argument('[model]', MODEL_SPEC_HELP, 'default')
    .requiredOption('--out <dir>', "where the lens goes (put it in the model folder's tuned-lens/ for `glassbox serve` to find it)")
    .option('--steps <n>', 'optimizer steps', '250')
    .option('--batch-size <n>', 'rows per step', '8')
    .option('--context-size <n>', "tokens per row, BOS included (default min(128, the model's context))")
    .option('--contexts <n>', 'training rows', '512')
    .option('--held-out <n>', 'held-out rows for the KL comparison', '64')
    .option('--lr <rate>', 'Adam learning rate', '1e-3')
    .option('--weight-decay <w>', 'AdamW weight decay (0: Adam)', '0')
    .option('--seed <n>', 'seed of the row sampler', '0')
    .option('--text <file>', 'tokens from a UTF-8 text file instead of the default corpus')
    .option('--token-file <file>', 'tokens from a token file NAME.bin (with NAME.bin.json)')
    .option('--resume', 'continue the run in --out from its newest checkpoint')
    .option('--no-progress', 'no progress bar')
    .action(async (spec: string, f: TrainFlags & { contextSize?: string }) => {
      const steps = intFlag('steps', f.steps);
      const batchSize = intFlag('batch-size', f.batchSize);
      const contexts = intFlag('contexts', f.contexts);
      const heldOut = intFlag('held-out', f.heldOut);
      const lr = numFlag('lr', f.lr, 0);
      const weightDecay = numFlag('weight-decay', f.weightDecay, 0);
      const seed = intFlag('seed', f.seed, 0);
      if (batchSize > contexts) throw new Error(`--batch-size ${batchSize} exceeds --contexts ${contexts}`);
      const model = await loadModel(spec);
      const size = f.contextSize !== undefined ? intFlag('context-size', f.contextSize, 2) : Math.min(128, model.cfg.nCtx);
      if (size > model.cfg.nCtx) throw new Error(`--context-size ${size} exceeds the model's context of ${model.cfg.nCtx}`);
      const rows = lensRows(model, f, { train: contexts, heldOut, size });
      const t0 = performance.now();
      const { lens, lastLoss } = await trainTunedLens(model, rows.train, {
        steps,
        batchSize,
        lr,
        ...(weightDecay > 0 ? { weightDecay } : {}),
        seed,
        outDir: f.out,
        ...(f.resume ? { resume: true } : {}),
        progress: f.progress ? 'auto' : false,
      });
      const seconds = (performance.now() - t0) / 1000;
      const kl = compareLenses(model, rows.heldOut, lens);
      saveTunedLens(f.out, lens, { baseModel: spec, model });
      const record = {
        model: spec,
        tokens: rows.description,
        settings: {
          steps,
          batchSize,
          contextSize: size,
          contexts,
          heldOut,
          lr,
          weightDecay,
          seed,
          optimizer: weightDecay > 0 ? 'adamw' : 'adam',
        },
        lastLoss,
        seconds: Number(seconds.toFixed(1)),
        heldOutKl: kl.labels.map((label, i) => ({ label, logitLens: kl.logitLens[i]!, tunedLens: kl.tunedLens![i]! })),
      };
      writeJson(join(f.out, 'training.json'), record);
      console.log(
        `wrote ${f.out}: a tuned lens for ${model.cfg.nLayers} layers (d_model ${model.cfg.dModel}), ${steps} steps in ${seconds.toFixed(1)}s`,
      );
      console.log(`held-out KL to the final distribution (nats), ${heldOut} rows of ${size} tokens:`);
      kl.labels.forEach((l, i) =>
        console.log(`  ${l.padEnd(10)} logit ${kl.logitLens[i]!.toFixed(3)}  tuned ${kl.tunedLens![i]!.toFixed(3)}`),
      );
    });
}
