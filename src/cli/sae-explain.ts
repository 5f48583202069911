/**
 * `glassbox sae explain` and `glassbox sae export-neuronpedia`.
 *
 * - `sae explain --features DIR --api-base URL --model NAME [--api-key-env OPENAI_API_KEY]`:
 *   explains each feature of a store from its top contexts over an OpenAI-compatible
 *   chat-completions endpoint and scores the explanation by detection; writes
 *   DIR/explanations.jsonl, resuming past features already there. The key is read from the
 *   environment variable named by --api-key-env and is never printed or stored. Scoring needs
 *   contexts where a feature does not fire, checked by running the model (--subject-model,
 *   default the store's model) and the SAE (--sae, default the store's SAE path); --score-contexts
 *   0 turns scoring off.
 * - `sae export-neuronpedia --features DIR --out DIR --source-set NAME`: the store and its
 *   explanations in Neuronpedia's bulk-import layout (src/sae/neuronpedia.ts).
 */
import type { Command } from 'commander';
import { loadModel } from '../model/pretrained.js';
import { explainFeatures, type TextContext } from '../sae/explain/explain.js';
import { nonActivatingPool } from '../sae/explain/pool.js';
import { loadFeatureStore } from '../sae/features/store.js';
import { exportNeuronpedia } from '../sae/neuronpedia.js';
import { resolveSae } from '../sae/pretrained.js';
import { intFlag, numFlag } from './flags.js';

/** '0-9,12,40-41' -> [0..9, 12, 40, 41]. */
function featureList(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new Error(`--only ${JSON.stringify(spec)}: expected indices and ranges like 0-9,12`);
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a) throw new Error(`--only: range ${part.trim()} runs backwards`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

interface ExplainFlags {
  features: string;
  apiBase: string;
  model: string;
  apiKeyEnv: string;
  only?: string;
  concurrency: string;
  explainContexts: string;
  scoreContexts: string;
  poolSize: string;
  timeout: string;
  retries: string;
  overwrite?: boolean;
  subjectModel?: string;
  sae?: string;
  releases?: string;
}

/** Adds `explain` and `export-neuronpedia` to the `sae` command group. */
export function registerSaeExplain(sae: Command): void {
  sae
    .command('explain')
    .description('explain features with an OpenAI-compatible chat model and score the explanations by detection')
    .requiredOption('--features <dir>', 'a store written by `glassbox sae features`; explanations.jsonl is written there')
    .requiredOption(
      '--api-base <url>',
      'the chat-completions API base, e.g. http://localhost:11434/v1 (Ollama) or https://api.openai.com/v1',
    )
    .requiredOption('--model <name>', 'the chat model, e.g. gpt-4o-mini or llama3.1')
    .option('--api-key-env <name>', 'environment variable holding the API key (unset: no key is sent)', 'OPENAI_API_KEY')
    .option('--only <list>', 'features to explain, e.g. 0-99,120 (default: every feature that fired)')
    .option('--concurrency <n>', 'features in flight at once', '4')
    .option('--explain-contexts <n>', 'top contexts shown to the explainer', '10')
    .option('--score-contexts <n>', 'held-out activating contexts (and as many non-activating) for detection; 0: no scoring', '5')
    .option('--pool-size <n>', 'candidate non-activating contexts, checked with the model', '64')
    .option('--timeout <s>', 'seconds per request', '120')
    .option('--retries <n>', 'retries per request on 429, 5xx, timeouts and malformed replies', '5')
    .option('--overwrite', 'explain again features already in explanations.jsonl')
    .option('--subject-model <model>', "the model the store was built on (default: the store's)")
    .option('--sae <dir|release/id>', "the SAE the store was built from (default: the store's)")
    .option('--releases <file>', 'a releases file for --sae RELEASE/SAE_ID')
    .action(async (f: ExplainFlags) => {
      const concurrency = intFlag('concurrency', f.concurrency);
      const explainContexts = intFlag('explain-contexts', f.explainContexts);
      const scoreContexts = intFlag('score-contexts', f.scoreContexts, 0);
      const poolSize = intFlag('pool-size', f.poolSize);
      const timeoutMs = numFlag('timeout', f.timeout, 0.001) * 1000;
      const retries = intFlag('retries', f.retries, 0);
      const store = loadFeatureStore(f.features);
      const apiKey = process.env[f.apiKeyEnv] ?? null;
      let nonActivating: ((feature: number, count: number) => TextContext[]) | undefined;
      if (scoreContexts > 0) {
        const saeArg = f.sae ?? store.meta.sae.path;
        if (!saeArg) throw new Error(`${f.features}: the store does not say which SAE built it; give --sae (or --score-contexts 0)`);
        const { sae } = await resolveSae(saeArg, f.releases !== undefined ? { releasesFiles: [f.releases] } : {});
        const model = await loadModel(f.subjectModel ?? store.meta.model.name ?? 'default');
        const pool = nonActivatingPool(model, sae, store, { size: poolSize });
        nonActivating = pool.pick;
        console.error(`non-activating pool: ${pool.windows.length} contexts checked with the model`);
      }
      const t0 = performance.now();
      const result = await explainFeatures(store, f.features, {
        apiBase: f.apiBase,
        model: f.model,
        apiKey,
        timeoutMs,
        retries,
        concurrency,
        explainContexts,
        scoreContexts,
        ...(nonActivating ? { nonActivating } : {}),
        ...(f.only !== undefined ? { features: featureList(f.only) } : {}),
        overwrite: f.overwrite === true,
        onProgress: (p) => {
          if (process.stderr.isTTY) process.stderr.write(`\rexplained ${p.done}/${p.total} (failed ${p.failed})`);
          else if (p.done === p.total || p.done % Math.max(10, Math.ceil(p.total / 100)) === 0)
            console.error(`explained ${p.done}/${p.total} (failed ${p.failed})`);
        },
        onRetry: (r) => console.error(`\nfeature ${r.feature}: retry ${r.attempt} in ${(r.waitMs / 1000).toFixed(1)}s (${r.reason})`),
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      const scored = result.explained.filter((e) => e.score !== null);
      const mean = scored.length ? scored.reduce((s, e) => s + e.score!.balanced_accuracy, 0) / scored.length : null;
      console.log(
        `${result.file}: ${result.explained.length} explained, ${result.skipped} already there, ${result.failed.length} failed` +
          (mean !== null ? `; mean detection balanced accuracy ${mean.toFixed(3)} over ${scored.length}` : '') +
          ` (${((performance.now() - t0) / 1000).toFixed(1)}s)`,
      );
      for (const x of result.failed.slice(0, 10)) console.error(`  feature ${x.feature}: ${x.error}`);
      if (result.failed.length > 0) {
        console.error(`${result.failed.length} feature(s) failed; run the same command again to retry them`);
        process.exitCode = 1;
      }
    });

  sae
    .command('export-neuronpedia')
    .description("write a feature store and its explanations in Neuronpedia's bulk-import layout")
    .requiredOption('--features <dir>', 'a store written by `glassbox sae features`')
    .requiredOption('--out <dir>', 'export directory ({out}/{model}/{layer}-{source-set}/...)')
    .requiredOption('--source-set <name>', "the source set's name, e.g. glassbox-res-topk")
    .option('--model-id <id>', "Neuronpedia's model id (default: the store's model name)")
    .option('--layer <n>', "the layer in the source id (default: the SAE's hook point's)")
    .option('--release <name>', 'the release name')
    .option('--description <text>', 'the release and source set description')
    .option('--creator <name>', 'creator name')
    .option(
      '--creator-id <id>',
      "Neuronpedia's user id for the rows (default: $NEURONPEDIA_CREATOR_ID, else Neuronpedia's default creator)",
    )
    .option('--explanation-type <name>', "the explanations' type name in Neuronpedia (must exist there)", 'glassbox-detection')
    .option('--hf-repo <id>', 'Hugging Face repo of the weights, when published')
    .option('--hf-folder <path>', 'their folder in that repo')
    .action(
      (f: {
        features: string;
        out: string;
        sourceSet: string;
        modelId?: string;
        layer?: string;
        release?: string;
        description?: string;
        creator?: string;
        creatorId?: string;
        explanationType: string;
        hfRepo?: string;
        hfFolder?: string;
      }) => {
        const store = loadFeatureStore(f.features);
        const r = exportNeuronpedia(store, f.features, f.out, {
          sourceSet: f.sourceSet,
          ...(f.modelId !== undefined ? { modelId: f.modelId } : {}),
          ...(f.layer !== undefined ? { layer: intFlag('layer', f.layer, 0) } : {}),
          ...(f.release !== undefined ? { releaseName: f.release } : {}),
          ...(f.description !== undefined ? { description: f.description } : {}),
          ...(f.creator !== undefined ? { creatorName: f.creator } : {}),
          ...(f.creatorId !== undefined ? { creatorId: f.creatorId } : {}),
          explanationType: f.explanationType,
          hfRepoId: f.hfRepo ?? null,
          hfFolderId: f.hfFolder ?? null,
        });
        console.log(
          `wrote ${r.dir}: ${r.features} features, ${r.activations} activation contexts, ${r.explanations} explanations (${r.files.length} files)`,
        );
      },
    );
}
