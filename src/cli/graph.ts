/**
 * `glassbox graph MODEL [PROMPT] --transcoders DIR --out graph.json`: the attribution graph of a
 * prompt (src/circuits), pruned, written as the JSON Neuronpedia's and circuit-tracer's viewers
 * load; `--save-graph DIR` also keeps the unpruned graph (safetensors + JSON). Prints the logits
 * traced, the graph's size and its replacement / completeness scores.
 */
import type { Command } from 'commander';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModel } from '../model/pretrained.js';
import { attribute } from '../circuits/attribute.js';
import { graphScores, nodeLayout, pruneGraph } from '../circuits/graph.js';
import { saveGraph } from '../circuits/graph-io.js';
import { graphToJson } from '../circuits/graph-json-export.js';
import { loadTracingTranscoders } from '../circuits/load-transcoders.js';
import { intFlag, MODEL_SPEC_HELP, numFlag } from './flags.js';
import { parseTokenIds } from './tokens.js';

interface GraphFlags {
  transcoders: string;
  out: string;
  tokens?: string;
  nodeThreshold: string;
  edgeThreshold: string;
  maxFeatureNodes?: string;
  maxNLogits: string;
  desiredLogitProb: string;
  saveGraph?: string;
  slug?: string;
}

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description('attribution graph of a prompt over transcoder features, written as graph JSON for the viewers')
    .argument('<model>', MODEL_SPEC_HELP)
    .argument('[prompt]', 'the prompt text (needs the model to ship tokenizer.json)')
    .requiredOption(
      '--transcoders <dir>',
      'a cross-layer transcoder directory (glassbox clt train) or one transcoder per layer (SAELens layout sub-directories)',
    )
    .requiredOption('--out <file>', 'the graph JSON to write')
    .option('--tokens <ids>', 'the prompt as comma-separated token ids instead of text')
    .option('--node-threshold <x>', 'keep the nodes holding this share of the influence', '0.8')
    .option('--edge-threshold <x>', 'keep the edges holding this share of the influence', '0.98')
    .option('--max-feature-nodes <n>', 'most feature nodes (the most influential; default all)')
    .option('--max-n-logits <n>', 'most logit nodes', '10')
    .option('--desired-logit-prob <x>', 'logit nodes until their probabilities reach this', '0.95')
    .option('--save-graph <dir>', 'also write the unpruned graph (graph.safetensors + graph.json)')
    .option('--slug <name>', "the graph's name in the JSON (default: the output file's stem)")
    .action(async (spec: string, text: string | undefined, f: GraphFlags) => {
      const nodeThreshold = numFlag('node-threshold', f.nodeThreshold, 0, 1);
      const edgeThreshold = numFlag('edge-threshold', f.edgeThreshold, 0, 1);
      const maxFeatureNodes = intFlag('max-feature-nodes', f.maxFeatureNodes, 0);
      const maxNLogits = intFlag('max-n-logits', f.maxNLogits, 1);
      const desiredLogitProb = numFlag('desired-logit-prob', f.desiredLogitProb, 0, 1);
      const transcoders = loadTracingTranscoders(f.transcoders);
      const model = await loadModel(spec);
      let ids: number[];
      if (f.tokens !== undefined) ids = parseTokenIds(f.tokens, '--tokens');
      else if (text !== undefined) ids = model.toTokens(text)[0]!;
      else throw new Error('give a prompt as text or with --tokens');
      if (ids.length === 0) throw new Error('the prompt is empty');
      const t0 = performance.now();
      let last = 0;
      const g = attribute(model, ids, transcoders, {
        maxNLogits,
        desiredLogitProb,
        ...(maxFeatureNodes !== undefined ? { maxFeatureNodes } : {}),
        model: spec,
        scan: f.transcoders,
        onProgress: (p) => {
          const now = performance.now();
          if (p.phase === 'done' || now - last > 1000) {
            last = now;
            process.stderr.write(`\r${p.phase} ${p.done}/${p.total} rows`);
          }
        },
      });
      process.stderr.write('\n');
      if (text !== undefined && f.tokens === undefined) g.inputString = text;
      const seconds = (performance.now() - t0) / 1000;
      const pruned = pruneGraph(g, { nodeThreshold, edgeThreshold });
      const full = graphScores(g);
      const kept = graphScores(g, pruned);
      const tok = model.tokenizer;
      const json = graphToJson(g, pruned, {
        slug: f.slug ?? f.out.replace(/^.*[\\/]/, '').replace(/\.json$/, ''),
        scan: f.transcoders,
        ...(tok ? { promptTokens: tok.toStrTokens(ids), tokenString: (id: number) => tok.decode([id]) } : {}),
        nodeThreshold,
        edgeThreshold,
        scores: {
          replacement: full.replacement,
          completeness: full.completeness,
          pruned_replacement: kept.replacement,
          pruned_completeness: kept.completeness,
        },
      });
      writeFileAtomic(f.out, JSON.stringify(json) + '\n');
      if (f.saveGraph) saveGraph(g, f.saveGraph);
      const L = nodeLayout(g);
      console.log(`prompt       ${ids.length} tokens`);
      console.log(`features     ${g.activationValues.length} active, ${L.nFeatures} nodes`);
      for (let i = 0; i < L.nLogits; i++) {
        const id = g.logitTokens[i]!;
        console.log(
          `logit ${String(i + 1).padStart(2)}     ${g.logitProbabilities[i]!.toFixed(4)}  ${id}${tok ? `  ${JSON.stringify(tok.decode([id]))}` : ''}`,
        );
      }
      console.log(`graph        ${L.n} nodes; pruned: ${json.nodes.length} nodes, ${json.links.length} links`);
      console.log(
        `scores       replacement ${full.replacement.toFixed(3)}, completeness ${full.completeness.toFixed(3)} (pruned: ${kept.replacement.toFixed(3)}, ${kept.completeness.toFixed(3)})`,
      );
      console.log(`time         ${seconds.toFixed(2)} s`);
      console.log(`wrote ${f.out}${f.saveGraph ? ` and ${f.saveGraph}` : ''}`);
    });
}
