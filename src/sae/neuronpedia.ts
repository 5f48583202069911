/**
 * Export for Neuronpedia: a feature store (and its explanations.jsonl) written in the layout
 * Neuronpedia's bulk import reads, the one SAEDashboard's `neuronpedia_export.py` produces from
 * its batch files:
 *
 *   {out}/{modelId}/{sourceId}/          sourceId = `{layer}-{sourceSet}`, e.g. 1-glassbox-res-topk
 *     release.jsonl     one SourceRelease row (name, description, creator)
 *     model.jsonl       one Model row (id, layers, dimension, ...)
 *     sourceset.jsonl   one SourceSet row (modelId, name, releaseName, ...)
 *     source.jsonl      one Source row (id, setName, dataset, num_prompts, num_tokens_in_prompt, ...)
 *     features/batch-{i}.jsonl.gz      Feature rows: modelId, layer (= sourceId), index (string),
 *                                      maxActApprox, hookName, pos_str/pos_values, neg_str/neg_values,
 *                                      frac_nonzero, freq_hist_data_bar_heights/values, ...
 *     activations/batch-{i}.jsonl.gz   Activation rows: one per top context: tokens, values,
 *                                      maxValue, maxValueTokenIndex, minValue, index, layer, modelId
 *     explanations/batch-{i}.jsonl.gz  Explanation rows (when the store has explanations.jsonl):
 *                                      modelId, layer, index, description, explanationModelName,
 *                                      typeName, scores
 *
 * Rows are one JSON object per line; dates are ISO strings. Every file is written atomically;
 * `features` go in batches of `batchSize` (default 128) so an import can be resumed by file.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeFileAtomic } from '../io/atomic.js';
import { readExplanations } from './explain/explain.js';
import { featurePage } from './features/page.js';
import type { FeatureStore } from './features/store.js';

/** Options of `exportNeuronpedia`. */
export interface NeuronpediaExportOptions {
  /** Neuronpedia's model id (default: the store's model name). */
  modelId?: string;
  /** The source set name, e.g. 'glassbox-res-topk' (the part after the layer in a source id). */
  sourceSet: string;
  /** The layer in the source id (default: the layer of the SAE's hook point). */
  layer?: number;
  /** The release's name (default: `{modelId}-{sourceSet}`) and description. */
  releaseName?: string;
  description?: string;
  creatorName?: string;
  /**
   * Neuronpedia's user id for the rows' creatorId / authorId, which their database requires to
   * exist (default: $NEURONPEDIA_CREATOR_ID, else the default creator id SAEDashboard's exporter
   * falls back to).
   */
  creatorId?: string;
  /**
   * The explanation rows' typeName and, per row, the explainer model's name are references to
   * Neuronpedia's explanation types and explanation models: they must exist there (default type
   * 'glassbox-detection').
   */
  explanationType?: string;
  /** The dataset the contexts came from (default: the store's corpus description). */
  dataset?: string;
  /** Hugging Face repo and folder of the weights, when published. */
  hfRepoId?: string | null;
  hfFolderId?: string | null;
  /** Features per batch file (default 128). */
  batchSize?: number;
  /** Bins of the activation histogram sent (default: the store's). */
  createdAt?: Date;
}

/** The creator id Neuronpedia's bulk imports fall back to (as SAEDashboard's exporter does). */
export const DEFAULT_CREATOR_ID = 'clkht01d40000jv08hvalcvly';

/** What `exportNeuronpedia` wrote. */
export interface NeuronpediaExport {
  dir: string;
  sourceId: string;
  features: number;
  activations: number;
  explanations: number;
  files: string[];
}

/** A CUID-like id (25 characters, starting with 'c'), unique per row, deterministic per export. */
function idMaker(seed: string): () => string {
  let n = 0;
  let h = 0;
  for (const ch of seed) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  const prefix = `cgb${h.toString(36).padStart(7, '0').slice(0, 7)}`;
  return () => `${prefix}${(n++).toString(36).padStart(15, '0')}`;
}

const jsonl = (rows: readonly object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');

/**
 * Writes the store in `storeDir` (already loaded as `store`) for Neuronpedia's import (see the
 * file's doc). Dead features (never fired) are left out, as SAEDashboard skips them.
 */
export function exportNeuronpedia(
  store: FeatureStore,
  storeDir: string,
  outDir: string,
  options: NeuronpediaExportOptions,
): NeuronpediaExport {
  const meta = store.meta;
  const modelId = options.modelId ?? meta.model.name;
  if (!modelId || !/^[A-Za-z0-9._-]+$/.test(modelId))
    throw new Error(
      `${join(storeDir, 'features.json')}: model name ${JSON.stringify(modelId)} is not a Neuronpedia model id; give one (--model-id)`,
    );
  if (!/^[A-Za-z0-9._-]+$/.test(options.sourceSet))
    throw new Error(`source set ${JSON.stringify(options.sourceSet)}: use letters, digits, '.', '_', '-'`);
  const hook = meta.sae.hook_name;
  const layer = options.layer ?? (hook ? Number(/^blocks\.(\d+)\./.exec(hook)?.[1] ?? NaN) : NaN);
  if (!Number.isInteger(layer))
    throw new Error(`${join(storeDir, 'features.json')}: the SAE's hook point ${JSON.stringify(hook)} names no layer; give one (--layer)`);
  const sourceId = `${layer}-${options.sourceSet}`;
  const dir = join(outDir, modelId, sourceId);
  const created = (options.createdAt ?? new Date()).toISOString();
  const creatorId = options.creatorId ?? (process.env.NEURONPEDIA_CREATOR_ID || DEFAULT_CREATOR_ID);
  const creatorName = options.creatorName ?? 'glassbox';
  const releaseName = options.releaseName ?? `${modelId}-${options.sourceSet}`;
  const description = options.description ?? `${meta.sae.architecture} SAE on ${hook}, d_sae ${meta.sae.d_sae}, exported by glassbox`;
  const files: string[] = [];
  const write = (rel: string, text: string, gz = false): void => {
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileAtomic(path, gz ? gzipSync(Buffer.from(text)) : text);
    files.push(rel);
  };

  write(
    'release.jsonl',
    jsonl([
      {
        name: releaseName,
        description,
        descriptionShort: description,
        creatorName,
        creatorNameShort: creatorName,
        creatorId,
        visibility: 'PUBLIC',
        isNewUi: false,
        featured: false,
        urls: [],
        defaultUmapSourceIds: [],
        createdAt: created,
      },
    ]),
  );
  write(
    'model.jsonl',
    jsonl([
      {
        id: modelId,
        instruct: modelId.endsWith('-it'),
        displayNameShort: modelId,
        displayName: modelId,
        creatorId,
        tlensId: null,
        dimension: meta.model.d_model,
        visibility: 'PUBLIC',
        inferenceEnabled: false,
        layers: meta.model.n_layers,
        neuronsPerLayer: 0,
        owner: '',
        createdAt: created,
        updatedAt: created,
      },
    ]),
  );
  write(
    'sourceset.jsonl',
    jsonl([
      {
        modelId,
        name: options.sourceSet,
        creatorId,
        creatorName,
        hasDashboards: true,
        visibility: 'PUBLIC',
        description,
        type: 'sae',
        releaseName,
        urls: [],
        defaultRange: 1,
        defaultShowBreaks: true,
        showDfa: false,
        showCorrelated: false,
        showHeadAttribution: false,
        showUmap: false,
        createdAt: created,
      },
    ]),
  );
  write(
    'source.jsonl',
    jsonl([
      {
        id: sourceId,
        modelId,
        setName: options.sourceSet,
        creatorId,
        hasDashboards: true,
        inferenceEnabled: false,
        inferenceHosts: [],
        saelensConfig: null,
        saelensRelease: null,
        saelensSaeId: null,
        hfRepoId: options.hfRepoId ?? null,
        hfFolderId: options.hfFolderId ?? null,
        visibility: 'PUBLIC',
        hasUmap: false,
        hasUmapLogSparsity: false,
        hasUmapClusters: false,
        num_prompts: meta.corpus.contexts,
        num_tokens_in_prompt: meta.corpus.context_size,
        dataset: options.dataset ?? meta.corpus.description,
        notes: null,
        createdAt: created,
      },
    ]),
  );

  const explanations = readExplanations(storeDir);
  const nextId = idMaker(`${modelId}/${sourceId}`);
  const live = Array.from({ length: meta.sae.d_sae }, (_, i) => i).filter((i) => store.stats.fireCount[i]! > 0);
  const batchSize = options.batchSize ?? 128;
  let nActs = 0;
  let nExpl = 0;
  for (let b = 0; b * batchSize < live.length; b++) {
    const features: object[] = [];
    const acts: object[] = [];
    const expl: object[] = [];
    for (const i of live.slice(b * batchSize, (b + 1) * batchSize)) {
      const page = featurePage(store, i);
      const str = (x: { id: number; str: string | null }): string => x.str ?? `<#${x.id}>`;
      const nonZero = page.histogram.counts.map((c, k) => [c, k] as const).filter(([c]) => c > 0);
      features.push({
        modelId,
        layer: sourceId,
        index: String(i),
        creatorId,
        createdAt: created,
        maxActApprox: page.maxActivation,
        hasVector: false,
        vector: [],
        vectorLabel: null,
        vectorDefaultSteerStrength: 10,
        hookName: hook,
        topkCosSimIndices: [],
        topkCosSimValues: [],
        neuron_alignment_indices: [],
        neuron_alignment_values: [],
        neuron_alignment_l1: [],
        correlated_neurons_indices: [],
        correlated_neurons_pearson: [],
        correlated_neurons_l1: [],
        correlated_features_indices: [],
        correlated_features_pearson: [],
        correlated_features_l1: [],
        neg_str: page.logitEffects?.negative.map(str) ?? [],
        neg_values: page.logitEffects?.negative.map((x) => x.value) ?? [],
        pos_str: page.logitEffects?.positive.map(str) ?? [],
        pos_values: page.logitEffects?.positive.map((x) => x.value) ?? [],
        frac_nonzero: page.density,
        // bar centres (geometric, the bins are log-spaced) and counts of the non-empty bins
        freq_hist_data_bar_values: nonZero.map(([, k]) => Math.sqrt(page.histogram.edges[k]! * page.histogram.edges[k + 1]!)),
        freq_hist_data_bar_heights: nonZero.map(([c]) => c),
        logits_hist_data_bar_heights: [],
        logits_hist_data_bar_values: [],
        decoder_weights_dist: [],
        sourceSetName: options.sourceSet,
      });
      for (const c of page.contexts) {
        const values = c.tokens.map((t) => t.act);
        acts.push({
          id: nextId(),
          tokens: c.tokens.map(str),
          index: String(i),
          layer: sourceId,
          modelId,
          maxValue: c.activation,
          maxValueTokenIndex: c.maxIndex,
          minValue: Math.min(...values),
          values,
          creatorId,
          dataSource: null,
          dataIndex: String(c.context),
          dfaValues: [],
          dfaTargetIndex: null,
          dfaMaxValue: null,
          createdAt: created,
          lossValues: [],
          logitContributions: null,
          binMin: null,
          binMax: null,
          binContains: null,
          qualifyingTokenIndex: c.maxIndex,
        });
        nActs++;
      }
      const e = explanations.get(i);
      if (e) {
        expl.push({
          id: nextId(),
          modelId,
          layer: sourceId,
          index: String(i),
          description: e.explanation,
          authorId: creatorId,
          typeName: options.explanationType ?? 'glassbox-detection',
          explanationModelName: e.explainer.model,
          scores: e.score ? [{ type: 'detection-balanced-accuracy', value: e.score.balanced_accuracy }] : [],
          createdAt: e.created_at,
        });
        nExpl++;
      }
    }
    write(`features/batch-${b}.jsonl.gz`, jsonl(features), true);
    write(`activations/batch-${b}.jsonl.gz`, jsonl(acts), true);
    if (expl.length) write(`explanations/batch-${b}.jsonl.gz`, jsonl(expl), true);
  }
  return { dir, sourceId, features: live.length, activations: nActs, explanations: nExpl, files };
}
