/**
 * Analysis commands: `lens`, `dla`, `heads`, `patch`, `steer`. Each prints a readable table and
 * can write the numbers as JSON (--json FILE); `patch` and `heads` can also write SVG heatmaps.
 */
import type { Command } from 'commander';
import { writeJson } from './output.js';
import { loadModel } from '../model/pretrained.js';
import type { HookedTransformer } from '../model/hooked.js';
import { heatmap, saveSvg } from '../viz/charts.js';
import {
  compareSteering,
  directLogitAttribution,
  duplicateTokenScores,
  inductionScores,
  logitLens,
  patchHeadOut,
  patchResidPre,
  previousTokenScores,
  steeringVector,
  toSingleToken,
} from '../analysis/index.js';
import { intFlag, MODEL_SPEC_HELP } from './flags.js';

function tokenArg(model: HookedTransformer, s: string, flag: string): number {
  if (/^#\d+$/.test(s)) return Number(s.slice(1)); // '#123': a token id
  try {
    return toSingleToken(model, s);
  } catch {
    throw new Error(`${flag}: '${s}' is not a single token (give a word with its leading space, e.g. ' Mary', or an id as #123)`);
  }
}

const fmtMatrix = (m: number[][], rowLabel: (i: number) => string) =>
  m
    .map((row, i) => `  ${rowLabel(i).padEnd(6)} ${row.map((v) => (Number.isNaN(v) ? '   - ' : v.toFixed(2).padStart(5))).join(' ')}`)
    .join('\n');

export function registerAnalysis(program: Command): void {
  program
    .command('lens')
    .description('logit lens: the top next token after each layer, at each position')
    .argument('<model>', MODEL_SPEC_HELP)
    .argument('<text>', 'the prompt')
    .option('--json <file>', 'also write the grid as JSON')
    .action(async (spec: string, text: string, o: { json?: string }) => {
      const model = await loadModel(spec);
      const lens = logitLens(model, text, { topK: 3 });
      const strs = lens.strTokens ?? lens.tokens.map(String);
      console.log(`${''.padEnd(11)} ${strs.map((s) => JSON.stringify(s).slice(0, 10).padEnd(11)).join(' ')}`);
      lens.top.forEach((row, l) =>
        console.log(
          `${lens.labels[l]!.padEnd(11)} ${row
            .map((p) =>
              JSON.stringify(p[0]!.str ?? p[0]!.token)
                .slice(0, 10)
                .padEnd(11),
            )
            .join(' ')}`,
        ),
      );
      writeJson(o.json, { labels: lens.labels, tokens: lens.tokens, strTokens: lens.strTokens, top: lens.top });
    });

  program
    .command('dla')
    .description('direct logit attribution: what each head, MLP and embedding writes to a logit (difference)')
    .argument('<model>', MODEL_SPEC_HELP)
    .argument('<text>', 'the prompt')
    .requiredOption('--answer <token>', "the token whose logit is explained (a single token, e.g. ' the', or an id as #123)")
    .option('--wrong <token>', 'explain logit(answer) - logit(wrong) instead')
    .option('--top <n>', 'components to show', '10')
    .option('--json <file>', 'also write every component as JSON')
    .action(async (spec: string, text: string, o: { answer: string; wrong?: string; top: string; json?: string }) => {
      const model = await loadModel(spec);
      const answer = tokenArg(model, o.answer, '--answer');
      const wrong = o.wrong === undefined ? undefined : tokenArg(model, o.wrong, '--wrong');
      const r = directLogitAttribution(model, text, { answer, ...(wrong !== undefined ? { wrong } : {}) });
      const rows = r.labels.map((label, i) => ({ label, value: r.values[i]! }));
      const total = rows.reduce((s, x) => s + x.value, 0);
      console.log(`total ${total.toFixed(3)} (${wrong === undefined ? 'logit' : 'logit difference'}); largest components:`);
      for (const x of [...rows].sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, intFlag('top', o.top, 1)))
        console.log(`  ${x.label.padEnd(12)} ${x.value.toFixed(3).padStart(8)}`);
      writeJson(o.json, { answer, wrong: wrong ?? null, total, components: rows });
    });

  program
    .command('heads')
    .description('previous-token, duplicate-token and induction scores of every head')
    .argument('<model>', MODEL_SPEC_HELP)
    .option('--text <text>', 'text for the previous/duplicate-token scores (default: repeated random tokens)')
    .option('--seed <n>', 'seed of the random tokens', '0')
    .option('--seq-len <n>', 'length of the random sequence that is repeated (default 50, or what fits the context twice)')
    .option('--json <file>', 'also write the scores as JSON')
    .option('--svg <prefix>', 'also write heatmaps PREFIX-induction.svg etc.')
    .action(async (spec: string, o: { text?: string; seed: string; seqLen?: string; json?: string; svg?: string }) => {
      const model = await loadModel(spec);
      const ind = inductionScores(model, {
        seed: intFlag('seed', o.seed, 0),
        batch: 4,
        ...(o.seqLen === undefined ? {} : { seqLen: intFlag('seq-len', o.seqLen, 1) }),
      });
      const input = o.text ?? ind.tokens;
      const scores = {
        induction: ind.scores.toArray() as number[][],
        previousToken: previousTokenScores(model, input).toArray() as number[][],
        duplicateToken: duplicateTokenScores(model, input).toArray() as number[][],
      };
      for (const [kind, m] of Object.entries(scores)) console.log(`${kind} (layer x head):\n${fmtMatrix(m, (l) => `L${l}`)}`);
      writeJson(o.json, scores);
      if (o.svg)
        for (const [kind, m] of Object.entries(scores))
          saveSvg(
            `${o.svg}-${kind}.svg`,
            await heatmap({
              title: `${kind} score`,
              values: m,
              rowLabels: m.map((_, l) => `L${l}`),
              colLabels: m[0]!.map((_, h) => `H${h}`),
            }),
          );
    });

  program
    .command('patch')
    .description('activation patching: residual stream (layer x position) and every head, clean = 1, corrupted = 0')
    .argument('<model>', MODEL_SPEC_HELP)
    .requiredOption('--clean <text>', 'the clean prompt')
    .requiredOption('--corrupted <text>', 'the corrupted prompt (same number of tokens)')
    .requiredOption('--answer <token>', 'the clean answer token')
    .requiredOption('--wrong <token>', 'the corrupted answer token')
    .option('--json <file>', 'also write both grids as JSON')
    .option('--svg <prefix>', 'also write heatmaps PREFIX-resid.svg and PREFIX-heads.svg')
    .action(async (spec: string, o: { clean: string; corrupted: string; answer: string; wrong: string; json?: string; svg?: string }) => {
      const model = await loadModel(spec);
      const problem = {
        clean: o.clean,
        corrupted: o.corrupted,
        answer: tokenArg(model, o.answer, '--answer'),
        wrong: tokenArg(model, o.wrong, '--wrong'),
      };
      const a = model.toTokens(o.clean)[0]!.length;
      const b = model.toTokens(o.corrupted)[0]!.length;
      if (a !== b) throw new Error(`--clean is ${a} tokens and --corrupted is ${b}; patching needs prompts of the same length`);
      const resid = patchResidPre(model, problem).toArray() as number[][];
      const heads = patchHeadOut(model, problem).toArray() as number[][];
      const strs = model.toStrTokens(o.clean);
      console.log(
        `residual stream (resid_pre), layer x position:\n  ${''.padEnd(6)} ${strs.map((s) => JSON.stringify(s).slice(0, 5).padStart(5)).join(' ')}`,
      );
      console.log(fmtMatrix(resid, (l) => `L${l}`));
      console.log(`head outputs, layer x head:\n${fmtMatrix(heads, (l) => `L${l}`)}`);
      writeJson(o.json, { tokens: strs, residPre: resid, headOut: heads });
      if (o.svg) {
        saveSvg(
          `${o.svg}-resid.svg`,
          await heatmap({
            title: 'Patching resid_pre (clean = 1)',
            values: resid,
            rowLabels: resid.map((_, l) => `L${l}`),
            colLabels: strs.map((s, i) => `${i}:${s}`),
            diverging: true,
          }),
        );
        saveSvg(
          `${o.svg}-heads.svg`,
          await heatmap({
            title: 'Patching head outputs (clean = 1)',
            values: heads,
            rowLabels: heads.map((_, l) => `L${l}`),
            colLabels: heads[0]!.map((_, h) => `H${h}`),
            diverging: true,
          }),
        );
      }
    });

  program
    .command('steer')
    .description('contrastive activation addition: steer generation with mean(positive) - mean(negative) at a layer')
    .argument('<model>', MODEL_SPEC_HELP)
    .argument('<prompt>', 'the prompt to continue')
    .requiredOption('--positive <text...>', 'prompts of the direction to add')
    .requiredOption('--negative <text...>', 'prompts of the direction to subtract')
    .option('--layer <n>', 'layer (resid_pre)', '2')
    .option('--scale <x>', 'multiplier of the vector', '2')
    .option('--position <p>', "each prompt's activation: 'mean' over its positions or its 'last' token", 'mean')
    .option('--tokens <n>', 'tokens to generate', '20')
    .option('--json <file>', 'also write both continuations as JSON')
    .action(
      async (
        spec: string,
        prompt: string,
        o: { positive: string[]; negative: string[]; layer: string; scale: string; position: string; tokens: string; json?: string },
      ) => {
        const model = await loadModel(spec);
        const layer = intFlag('layer', o.layer, 0);
        if (layer >= model.cfg.nLayers) throw new Error(`--layer must be below ${model.cfg.nLayers}, got ${layer}`);
        const scale = Number(o.scale);
        if (!Number.isFinite(scale)) throw new Error(`--scale must be a number, got '${o.scale}'`);
        if (o.position !== 'mean' && o.position !== 'last') throw new Error(`--position must be 'mean' or 'last', got '${o.position}'`);
        const vector = steeringVector(model, o.positive, o.negative, { layer, position: o.position });
        const [r] = compareSteering(model, [prompt], vector, { layer, scale, maxNewTokens: intFlag('tokens', o.tokens, 1) });
        console.log(`unsteered: ${JSON.stringify(r!.unsteeredText)}`);
        console.log(`steered:   ${JSON.stringify(r!.steeredText)}`);
        writeJson(o.json, r);
      },
    );
}
