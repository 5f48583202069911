/**
 * `glassbox train ...`: the toy models (induction heads, grokking, superposition) and the default
 * text model. Every run writes its directory (metrics.jsonl, checkpoints, report.json, SVG plots)
 * and resumes with --resume.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { trainInduction, writeInductionReport } from '../recipes/toys/induction.js';
import { trainGrokking, writeGrokkingReport } from '../recipes/toys/grokking.js';
import { sweepSparsity, writeSuperpositionReport } from '../recipes/toys/superposition.js';
import { buildDefaultModel } from '../recipes/default-model.js';
import { intFlag, numFlag, oneOfFlag } from './flags.js';
import { runOptionsOf, type RunFlags } from './run-flags.js';

interface Common extends RunFlags {
  steps?: string;
}

/** A toy command's run options: --steps and the flags of every run. */
function toyRunOptions(o: Common): { steps: number | undefined } & ReturnType<typeof runOptionsOf> {
  return { steps: intFlag('steps', o.steps), ...runOptionsOf(o) };
}

/** Prints the toy's report (written with `plots` beside report.json), saves its model in OUT/model and says so. */
async function finishToy(report: Promise<string>, model: { save(dir: string): void }, out: string, plots: string): Promise<void> {
  console.log(await report);
  model.save(join(out, 'model'));
  console.log(`wrote ${out}/report.json, ${plots} and the model in ${out}/model`);
}

export function registerTrain(program: Command): void {
  const train = program
    .command('train')
    .description('train a toy model or the default text model (resumable; writes metrics, checkpoints, report and plots)');
  const common = (c: Command, out: string) =>
    c
      .option('--out <dir>', 'run directory', out)
      .option('--steps <n>', 'optimizer steps')
      .option('--seed <n>', 'random seed', '0')
      .option('--lr <rate>', 'learning rate')
      .option('--resume', 'continue from the newest checkpoint in --out');

  common(
    train.command('induction').description('2-layer attention-only transformer on repeated random tokens (Olsson et al. 2022)'),
    'runs/induction',
  ).action(async (o: Common) => {
    const r = await trainInduction(toyRunOptions(o));
    await finishToy(writeInductionReport(r, o.out), r.model, o.out, 'induction-scores.svg, previous-token-scores.svg, loss.svg');
  });

  common(
    train.command('grokking').description('1-layer transformer on modular addition until it generalises (Nanda et al. 2023)'),
    'runs/grokking',
  )
    .option('--p <n>', 'the modulus', '113')
    .option('--train-fraction <f>', 'fraction of pairs used for training', '0.3')
    .option('--weight-decay <w>', 'AdamW weight decay', '1')
    .option('--stop-accuracy <f>', "stop once test accuracy reaches this; 'none' trains every step (the cleanup phase)", '0.995')
    .action(async (o: Common & { p: string; trainFraction: string; weightDecay: string; stopAccuracy: string }) => {
      const r = await trainGrokking({
        p: intFlag('p', o.p, 2),
        trainFraction: numFlag('train-fraction', o.trainFraction, 0.01, 0.99),
        weightDecay: numFlag('weight-decay', o.weightDecay, 0),
        stopAccuracy: o.stopAccuracy === 'none' ? null : numFlag('stop-accuracy', o.stopAccuracy, 0, 1),
        ...toyRunOptions(o),
      });
      await finishToy(writeGrokkingReport(r, o.out), r.model, o.out, 'loss.svg, accuracy.svg, embedding-fourier.svg');
    });

  common(
    train.command('superposition').description('toy models of superposition: n features in m dimensions (Elhage et al. 2022)'),
    'runs/superposition',
  )
    .option('--features <n>', 'n: features', '5')
    .option('--hidden <m>', 'm: hidden dimensions', '2')
    .option('--sparsity <list>', 'comma-separated sparsities S (probability a feature is absent)', '0,0.7,0.9,0.99')
    .option('--importance-decay <r>', 'importance of feature i is r^i', '0.7')
    .action(async (o: Common & { features: string; hidden: string; sparsity: string; importanceDecay: string }) => {
      const sparsities = o.sparsity.split(',').map((s) => numFlag('sparsity', s.trim(), 0, 0.999)!);
      const r = await sweepSparsity({
        sparsities,
        nFeatures: intFlag('features', o.features),
        nHidden: intFlag('hidden', o.hidden),
        importanceDecay: numFlag('importance-decay', o.importanceDecay, 0, 1),
        ...toyRunOptions(o),
      });
      const { files } = await writeSuperpositionReport(r.models, o.out);
      console.log(`wrote ${files.length} files to ${o.out}`);
    });

  train
    .command('default')
    .description('the default text model: corpus, BPE tokenizer, token files, training, evaluation')
    .option('--out <dir>', 'model directory to write', 'models/default')
    .option('--work <dir>', 'scratch directory (tokenizer, token files, checkpoints); default <out>.work')
    .option('--steps <n>', 'optimizer steps on text at the full context', '1000')
    .option('--seed <n>', 'random seed', '0')
    .option('--lr <rate>', 'peak learning rate', '2e-3')
    .option(
      '--positional <kind>',
      "positions: 'rotary' (the GPT-2 layout with rotary positions, as GPT-NeoX) or 'learned' (GPT-2)",
      'rotary',
    )
    .option(
      '--repeats <kind>',
      "what some text-stage windows end in, from step 0: 'none', 'random' (random tokens, then the same again) or 'text' (a copy of the text before)",
      'none',
    )
    .option('--repeat-fraction <f>', 'fraction of the text windows that end in a repeat (with --repeats)', '0.5')
    .option('--short-steps <n>', 'first train this many steps on 64-token windows', '0')
    .option(
      '--synthetic-steps <n>',
      'before any text, train this many steps on 64-token sequences of random tokens ending in a repeated segment',
      '1500',
    )
    .option('--synthetic-fraction <f>', 'fraction of the text-stage rows that are such sequences instead of text', '0.25')
    .option('--resume', 'continue from the newest checkpoint in the work directory')
    .action(
      async (o: {
        out: string;
        work?: string;
        steps: string;
        seed: string;
        lr: string;
        positional: string;
        repeats: string;
        repeatFraction: string;
        shortSteps: string;
        syntheticSteps: string;
        syntheticFraction: string;
        resume?: boolean;
      }) => {
        const report = await buildDefaultModel({
          outDir: o.out,
          workDir: o.work ?? `${o.out}.work`,
          steps: intFlag('steps', o.steps),
          seed: intFlag('seed', o.seed, 0),
          lr: numFlag('lr', o.lr, 0),
          positional: oneOfFlag('positional', o.positional, ['learned', 'rotary'] as const),
          repeats: oneOfFlag('repeats', o.repeats, ['random', 'text', 'none'] as const),
          repeatFraction: numFlag('repeat-fraction', o.repeatFraction, 0, 1),
          shortSteps: intFlag('short-steps', o.shortSteps, 0),
          syntheticSteps: intFlag('synthetic-steps', o.syntheticSteps, 0),
          syntheticFraction: numFlag('synthetic-fraction', o.syntheticFraction, 0, 1),
          resume: o.resume,
        });
        console.log(`validation loss ${report.validationLoss.toFixed(3)} nats (bigram baseline ${report.bigramValidationLoss.toFixed(3)})`);
        console.log(`wrote ${o.out} (report in ${o.out}/training.json)`);
      },
    );
}
