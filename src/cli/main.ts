#!/usr/bin/env node
/**
 * The `glassbox` command. Every error ends the process with a one-line message and exit code 1.
 * CLI parsing: commander (well kept, typed, generates help).
 */
import { Command } from 'commander';
import { saveSafetensors } from '../io/index.js';
import { elementCount, tensor, type Tensor } from '../tensor/index.js';
import { loadModel, setLoadDefaults } from '../model/pretrained.js';
import { suggest } from '../model/hooked.js';
import { oneOfFlag } from './flags.js';
import { registerTrain } from './train.js';
import { registerServe } from './serve.js';
import { registerAnalysis } from './analysis.js';
import { registerSae } from './sae.js';
import { parseTokenIds, readTokensJson } from './tokens.js';
import { registerGraph } from './graph.js';
import { registerClt } from './clt.js';
import { registerTunedLens } from './tuned-lens.js';

function fail(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`glassbox: ${msg.split('\n')[0]}\n`);
  process.exit(1);
}

export function buildProgram(): Command {
  const program = new Command('glassbox')
    .description('Mechanistic interpretability for TypeScript')
    .showHelpAfterError()
    .option(
      '--weight-dtype <dtype>',
      "how float16/bfloat16 checkpoints are held: 'float32' (widened as read) or 'stored' (2 bytes a weight, widened inside each pass: half the memory, same results)",
    )
    .option('--check-finite', 'refuse a model whose weights hold NaN or an infinity, naming the first such tensor')
    .option('--allow-long-context', 'run rotary and ALiBi models past their context (max_position_embeddings), which is refused otherwise')
    .hook('preAction', () => {
      const o = program.opts<{ weightDtype?: string; checkFinite?: boolean; allowLongContext?: boolean }>();
      setLoadDefaults({ checkFinite: o.checkFinite === true, allowLongContext: o.allowLongContext === true });
      if (o.weightDtype !== undefined)
        setLoadDefaults({ weightDtype: oneOfFlag('weight-dtype', o.weightDtype, ['float32', 'stored'] as const) });
    });

  program
    .command('inspect')
    .description('family, dimensions, parameter count and hook names of a model')
    .argument('<model>', 'a Hugging Face model directory or hub id (org/name[@revision])')
    .action(async (spec: string) => {
      const model = await loadModel(spec);
      const c = model.cfg;
      console.log(`family       ${c.family}`);
      console.log(`layers       ${c.nLayers}`);
      console.log(`d_model      ${c.dModel}`);
      console.log(`heads        ${c.nHeads} (key/value heads ${c.nKVHeads}), d_head ${c.dHead}`);
      console.log(`d_mlp        ${c.dMlp}${c.gatedMlp ? ' (gated)' : ''}, activation ${c.act}`);
      if (c.moe) console.log(`experts      ${c.moe.nExperts} (d_mlp each), ${c.moe.topK} per token`);
      console.log(`vocab        ${c.dVocab}`);
      console.log(`context      ${c.nCtx}`);
      console.log(
        `norm         ${c.norm}, positions ${c.positional}${c.positional === 'rotary' ? ` (rotary dim ${c.rotaryDim}, theta ${c.ropeTheta}${c.ropeScaling ? `, ${c.ropeScaling.type} scaling` : ''}${c.localRope ? `; local layers theta ${c.localRope.theta}` : ''})` : ''}`,
      );
      // A tied unembedding is the embedding matrix itself: count it once.
      const tied = c.tiedEmbeddings ? model.params.unembed.W_U.size : 0;
      console.log(`parameters   ${(elementCount(model.params) - tied).toLocaleString('en-US')}`);
      console.log(`hook points  ${model.hookNames.length}`);
      for (const n of model.hookNames) console.log(`  ${n}`);
    });

  program
    .command('run')
    .description('top-10 next tokens, with probabilities, after the last position')
    .argument('<model>', 'a Hugging Face model directory or hub id')
    .argument('[text]', 'the prompt (needs the model to ship tokenizer.json)')
    .option('--tokens <ids>', 'the prompt as comma-separated token ids instead of text')
    .option('-k, --top <k>', 'how many tokens to show', '10')
    .action(async (spec: string, text: string | undefined, opts: { tokens?: string; top: string }) => {
      const model = await loadModel(spec);
      let ids: number[];
      if (opts.tokens !== undefined) {
        ids = parseTokenIds(opts.tokens, '--tokens');
      } else if (text !== undefined) ids = model.toTokens(text)[0]!;
      else throw new Error('give a prompt as text or with --tokens');
      if (ids.length === 0) throw new Error('the prompt is empty');
      const k = Number(opts.top);
      if (!Number.isInteger(k) || k < 1) throw new Error(`--top must be a positive integer, got '${opts.top}'`);
      const logits = model.forward([ids]);
      const probs = logits.index([0, -1]).softmax(-1);
      const { values, indices } = probs.topk(Math.min(k, model.cfg.dVocab));
      const p = values.dataSync() as Float32Array;
      const idx = indices.dataSync() as BigInt64Array;
      for (let i = 0; i < p.length; i++) {
        const id = Number(idx[i]);
        const str = model.tokenizer ? JSON.stringify(model.tokenizer.decode([id])) : '';
        console.log(`${String(i + 1).padStart(2)}  ${p[i]!.toFixed(4)}  ${String(id).padStart(6)}  ${str}`);
      }
    });

  program
    .command('cache')
    .description('run the model and save logits and cached activations to a safetensors file')
    .argument('<model>', 'a Hugging Face model directory or hub id')
    .requiredOption('--tokens-json <file>', 'JSON {"tokens": [[ids...]], "attention_mask": [[0/1...]] | null}')
    .requiredOption('--out <file>', 'output .safetensors file (written atomically)')
    .option('--names <regex>', 'only hook points whose name matches')
    .option('--process', "apply TransformerLens's weight processing (fold LN, centre weights, fold value biases)")
    .action(async (spec: string, opts: { tokensJson: string; out: string; names?: string; process?: boolean }) => {
      const { tokens, mask } = readTokensJson(opts.tokensJson);
      let filter: RegExp | undefined;
      if (opts.names !== undefined) {
        try {
          filter = new RegExp(opts.names);
        } catch (e) {
          throw new Error(`--names: invalid regular expression (${e instanceof Error ? e.message : String(e)})`);
        }
      }
      let model = await loadModel(spec);
      if (opts.process) model = model.processWeights();
      const names = filter ? model.hookNames.filter((n) => filter!.test(n)) : [...model.hookNames];
      if (filter && names.length === 0)
        throw new Error(`--names: /${opts.names}/ matches no hook point${suggest(opts.names!, model.hookNames)}`);
      const { logits, cache } = model.runWithCache(tokens, { names, ...(mask ? { attentionMask: mask } : {}) });
      const out: Record<string, Tensor> = { logits, ...cache.toObject() };
      if (mask) out.attention_mask = tensor(mask.flat(), [mask.length, mask[0]!.length], 'int64');
      saveSafetensors(opts.out, out);
      console.log(`wrote ${Object.keys(out).length} tensors to ${opts.out}`);
    });

  registerTrain(program);
  registerServe(program);
  registerAnalysis(program);
  registerSae(program);
  registerGraph(program);
  registerClt(program);
  registerTunedLens(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    fail(e);
  }
}

await main(process.argv);
