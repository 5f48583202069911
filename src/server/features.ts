/**
 * Dictionaries (SAEs and transcoders) in the workbench: what `glassbox serve --sae DIR_OR_ID` attaches,
 * and the endpoints over them.
 *
 * - `GET  /api/saes`                        the attached dictionaries: hook, architecture, width, L0, evals
 * - `GET  /api/features/:sae/:feature`      a feature page: top contexts (per-token activations), sampled
 *                                           contexts grouped by activation quantile, histogram, density,
 *                                           logit effects, explanation
 * - `POST /api/features/:sae/steer`         `{ feature, prompt, scale?, ... }` -> unsteered and steered generations
 * - `POST /api/fires`                       `{ prompt, topK?, saes?, highlight? }` -> per token, its top features
 *
 * Pages are read from the feature store on disk one at a time (`FeatureStoreReader`: one
 * positioned read per tensor, no model run), the last `PAGE_CACHE` of them kept, so the server's
 * memory does not grow with the dictionary's width; steering and the features on a prompt run in
 * the model worker (feature-compute.ts), which holds a copy of each SAE.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { HookedTransformer } from '../model/hooked.js';
import { saeNamesModel } from '../sae/attach.js';
import { runSaeOnBatch } from '../sae/evals.js';
import { readExplanations } from '../sae/explain/explain.js';
import { LRUCache } from 'lru-cache';
import {
  FEATURES_JSON,
  FeatureStoreReader,
  quantileGroups,
  type FeaturePage,
  type FeatureStoreMeta,
  type PageContext,
} from '../sae/features/index.js';
import { loadSae, readJsonFile, SAE_CFG_FILENAME } from '../sae/formats.js';
import { resolveSae, type PretrainedSaeOptions } from '../sae/pretrained.js';
import { Sae } from '../sae/sae.js';
import { toInferenceSae } from '../sae/transforms.js';
import { tensor } from '../tensor/index.js';
import { HttpError } from './errors.js';
import type { FeatureLogitsRaw, FiresRaw } from './feature-compute.js';
import { generations, num, promptIds, samplingArgs, strTokens, tokenStr, type Ctx } from './handlers.js';
import {
  featureSchemas,
  type ContextGroup,
  type FeatureContext,
  type FeatureExplanation,
  type FeatureParams,
  type FeaturePageResult,
  type FeatureSteerBody,
  type FeatureSteerResult,
  type FiresBody,
  type FiresResult,
  type SaeInfo,
  type SaeList,
  type SaeParams,
} from './schemas.js';

/** A dictionary to attach: loaded, with its feature store (opened for page reads) when it has one. */
export interface SaeSource {
  sae: Sae;
  store: FeatureStoreReader | null;
  /** Where it came from (a directory), for errors and GET /api/saes. */
  source: string;
  /** Its id in URLs (default: the directory's name). */
  id?: string;
  /** Explanations by feature (default: those the store holds). */
  explanations?: Map<number, FeatureExplanation>;
  /** The directory's evals.json, when it has one. */
  evals?: Record<string, unknown> | null;
}

/** An attached dictionary, checked against the model. */
export interface AttachedSae {
  id: string;
  sae: Sae;
  store: FeatureStoreReader | null;
  /** The last pages read from the store, by feature. */
  pages: LRUCache<number, FeaturePage>;
  /** Mean features per counted token and never-firing features, over the store (null without one). */
  l0: number | null;
  deadFeatures: number | null;
  source: string;
  explanations: Map<number, FeatureExplanation>;
  evals: Record<string, unknown> | null;
}

/** Where a feature store may sit for an SAE directory: the directory itself, or its `features/`. */
const STORE_PLACES = ['.', 'features'];

/**
 * What `--sae ARG` names, loaded: a directory in SAELens layout (cfg.json +
 * sae_weights.safetensors), or a pretrained dictionary `RELEASE/SAE_ID` (downloaded through the
 * Hub client, see sae/pretrained.ts); with its feature store (features.json + features.safetensors,
 * in the directory or its `features/` subdirectory) and the store's explanations when it has one,
 * and its evals.json when present.
 */
export async function resolveSaeSource(arg: string, options: PretrainedSaeOptions = {}): Promise<SaeSource> {
  const looksLikePath = existsSync(arg) || isAbsolute(arg) || arg.startsWith('.') || !arg.includes('/');
  let dir: string;
  let sae: Sae;
  if (looksLikePath) {
    dir = resolve(arg);
    if (!existsSync(dir)) throw new Error(`${arg}: not found (--sae takes an SAE directory: cfg.json + sae_weights.safetensors)`);
    if (!statSync(dir).isDirectory())
      throw new Error(`${arg}: not a directory (--sae takes an SAE directory: cfg.json + sae_weights.safetensors)`);
    if (!existsSync(join(dir, SAE_CFG_FILENAME)))
      throw new Error(
        `${join(arg, SAE_CFG_FILENAME)}: not found (--sae takes an SAE directory in SAELens layout: cfg.json + sae_weights.safetensors)`,
      );
    sae = loadSae(dir);
  } else {
    const got = await resolveSae(arg, options);
    dir = resolve(got.dir);
    sae = got.sae;
  }
  const storeDir = STORE_PLACES.map((p) => join(dir, p)).find((d) => existsSync(join(d, FEATURES_JSON)));
  const store = storeDir ? FeatureStoreReader.open(storeDir) : null;
  const explanations = storeDir ? readStoreExplanations(storeDir) : new Map<number, FeatureExplanation>();
  const evalsPath = join(dir, 'evals.json');
  let evals: Record<string, unknown> | null = null;
  if (existsSync(evalsPath)) {
    const raw = readJsonFile(evalsPath, { missing: 'not found', unreadable: 'cannot read the SAE evaluation' });
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new Error(`${evalsPath}: expected a JSON object (what \`glassbox sae eval --json\` writes)`);
    evals = raw as Record<string, unknown>;
  }
  return { sae, store, source: arg, explanations, evals };
}

/**
 * A store's explanations by feature, as the feature page shows them: what `glassbox sae explain`
 * wrote beside the store (explanations.jsonl, read and checked by `readExplanations`), with the
 * detection score's balanced accuracy.
 */
export function readStoreExplanations(storeDir: string): Map<number, FeatureExplanation> {
  const out = new Map<number, FeatureExplanation>();
  for (const [feature, e] of readExplanations(storeDir))
    out.set(feature, { text: e.explanation, score: e.score?.balanced_accuracy ?? null, model: e.explainer.model });
  return out;
}

/** The name's form for URLs: [A-Za-z0-9._-], at most 100 characters. */
function urlId(name: string): string {
  const id = name
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '')
    .slice(0, 100);
  return id || 'sae';
}

/**
 * Checks each dictionary against the model and gives it a unique id: its hook points exist, it
 * reads d_in and writes d_out values per token there (one forward pass of one token), its
 * model_name (when set) names this model, a batch-dependent one (batchtopk) is converted to its
 * per-token inference form, and its feature store was built for it (same width and hook).
 * Errors name the source.
 */
export function attachSaes(
  model: HookedTransformer,
  modelName: string,
  sources: readonly SaeSource[],
  options: { allowModelMismatch?: boolean } = {},
): AttachedSae[] {
  const used = new Set<string>();
  return sources.map((s) => {
    const where = s.source;
    let sae = s.sae;
    if (!sae.cfg.hook_name) throw new Error(`${where}: the SAE's cfg.json names no hook_name, so it cannot be attached to the model`);
    const saeModel = sae.cfg.model_name;
    if (saeModel && !options.allowModelMismatch && !saeNamesModel(sae, [modelName, model.cfg.family]))
      throw new Error(
        `${where}: the SAE was trained on '${saeModel}' (cfg.json model_name), not on the served model '${modelName}' (${model.cfg.family}); ` +
          'serve that model, or pass --allow-model-mismatch if the names differ but the model is the same',
      );
    if (sae.architecture.batchDependent) sae = toInferenceSae(sae);
    try {
      const row = model.cfg.bosTokenId ?? 0;
      runSaeOnBatch(model, sae, tensor([[row]], [1, 1], 'int64'));
    } catch (e) {
      throw new Error(`${where}: the SAE does not fit the model: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const store = s.store;
    if (store) {
      const m = store.meta.sae;
      if (m.d_sae !== sae.dSae || (m.hook_name !== null && m.hook_name !== sae.cfg.hook_name))
        throw new Error(
          `${where}: its feature store was built for another dictionary (d_sae ${m.d_sae} at ${m.hook_name ?? 'no hook'}; the SAE has d_sae ${sae.dSae} at ${sae.cfg.hook_name})`,
        );
    }
    let id = urlId(s.id ?? basename(resolve(where)));
    for (let n = 2; used.has(id); n++) id = `${urlId(s.id ?? basename(resolve(where)))}-${n}`;
    used.add(id);
    return {
      id,
      sae,
      store,
      pages: new LRUCache<number, FeaturePage>({ max: PAGE_CACHE }),
      ...storeSummary(store),
      source: where,
      explanations: s.explanations ?? new Map(),
      evals: s.evals ?? null,
    };
  });
}

/**
 * Feature pages kept in memory per dictionary. A page is tens of kB as JS objects (the top-k and
 * sampled windows, about 50 contexts of 16 tokens by default), so 64 of them stay a few MB.
 */
const PAGE_CACHE = 64;

/** L0 and dead features over a store: one read of its firing counts, at attach time. */
function storeSummary(store: FeatureStoreReader | null): { l0: number | null; deadFeatures: number | null } {
  if (!store) return { l0: null, deadFeatures: null };
  const fires = store.fireCounts();
  let total = 0;
  let dead = 0;
  for (let f = 0; f < fires.length; f++) {
    total += fires[f]!;
    if (fires[f] === 0) dead++;
  }
  const tokens = store.meta.corpus.tokens_counted;
  return { l0: tokens > 0 ? num(total / tokens) : null, deadFeatures: dead };
}

/** GET /api/saes. */
export function listSaes(saes: readonly AttachedSae[]): SaeList {
  return {
    saes: saes.map((a): SaeInfo => {
      const { sae, store, l0 } = a;
      const dead = a.deadFeatures;
      return {
        id: a.id,
        source: a.source,
        architecture: sae.cfg.architecture,
        transcoder: sae.isTranscoder,
        hookName: sae.cfg.hook_name!,
        hookNameOut: sae.isTranscoder ? (sae.cfg.hook_name_out ?? null) : null,
        hookHeadIndex: sae.cfg.hook_head_index ?? null,
        dIn: sae.dIn,
        dSae: sae.dSae,
        dOut: sae.dOut,
        modelName: sae.cfg.model_name,
        l0,
        deadFeatures: dead,
        store: store
          ? {
              tokens: store.meta.corpus.tokens_counted,
              contexts: store.meta.corpus.contexts,
              contextSize: store.meta.corpus.context_size,
              topK: store.meta.top_k,
              description: store.meta.corpus.description,
            }
          : null,
        evals: a.evals,
      };
    }),
  };
}

function saeByIdIn(saes: readonly AttachedSae[], id: string): { a: AttachedSae; index: number } {
  const index = saes.findIndex((s) => s.id === id);
  if (index < 0)
    throw new HttpError(
      404,
      saes.length === 0
        ? `no dictionary '${id}': none is attached (start the server with --sae DIR)`
        : `no dictionary '${id}'; attached: ${saes.map((s) => s.id).join(', ')}`,
    );
  return { a: saes[index]!, index };
}

function checkFeature(a: AttachedSae, feature: number): void {
  if (!(Number.isSafeInteger(feature) && feature >= 0 && feature < a.sae.dSae))
    throw new HttpError(400, `feature ${feature} is out of range: '${a.id}' has ${a.sae.dSae} features (0..${a.sae.dSae - 1})`);
}

/** Quantile groups the sampled contexts are split into (Neuronpedia shows its interval groups below the top activations). */
const QUANTILE_GROUPS = 4;

/** What a page says when its store has no samples to group by quantile. */
export const NO_SAMPLES_NOTE =
  'This feature store was written before glassbox kept activation samples, so only the top activations are shown; rebuild it with `glassbox sae features` to see contexts grouped by activation quantile.';

/**
 * The page's context groups: the top activations (the store's top-k contexts), then the sampled
 * firing tokens split by activation quantile, the top quantile first (`quantileGroups`).
 */
function groupContexts(page: FeaturePage, context: (c: PageContext) => FeatureContext): ContextGroup[] {
  const groups: ContextGroup[] = [];
  if (page.contexts.length > 0) {
    const top = page.contexts.map(context);
    groups.push({
      label: `top activations (max ${page.maxActivation.toFixed(3)})`,
      min: num(page.contexts.at(-1)!.activation),
      max: num(page.maxActivation),
      contexts: top,
    });
  }
  if (page.samples)
    for (const g of quantileGroups(page.samples, QUANTILE_GROUPS)) {
      const pct = (q: number) => `${Math.round(q * 100)}%`;
      groups.push({
        label: `quantile ${pct(g.fromQuantile)}–${pct(g.toQuantile)} of firing tokens: activation ${g.min.toFixed(3)} to ${g.max.toFixed(3)}`,
        min: num(g.min),
        max: num(g.max),
        contexts: g.contexts.map(context),
      });
    }
  return groups;
}

/**
 * A feature's page from a store (`FeatureStoreReader.page`), as the API returns it: token strings
 * filled from the model where the store has none, numbers made JSON-safe, the top contexts and the
 * sampled ones grouped by activation quantile. Also the Graph view's transcoder feature pages
 * (graph-features.ts).
 */
export function storePageResult(
  ctx: Ctx,
  page: FeaturePage,
  meta: FeatureStoreMeta,
  head: { sae: string; feature: number; dSae: number; explanation: FeatureExplanation | null },
): FeaturePageResult {
  const context = (c: PageContext): FeatureContext => ({
    activation: num(c.activation),
    context: c.context,
    position: c.position,
    maxIndex: c.maxIndex,
    tokens: c.tokens.map((t) => ({ id: t.id, str: t.str ?? tokenStr(ctx.model, t.id), act: num(t.act) })),
  });
  const logitsReason = 'reason' in meta.logit_effects ? meta.logit_effects.reason : null;
  const side = (xs: { id: number; str: string | null; value: number }[]) =>
    xs.map((x) => ({ id: x.id, str: x.str ?? tokenStr(ctx.model, x.id), value: num(x.value) }));
  return {
    ...head,
    hasStore: true,
    density: num(page.density),
    fireCount: page.fireCount,
    maxActivation: num(page.maxActivation),
    meanActivation: page.meanActivation === null ? null : num(page.meanActivation),
    histogram: { edges: page.histogram.edges.map(num), counts: page.histogram.counts },
    groups: groupContexts(page, context),
    groupsNote: page.samples ? null : NO_SAMPLES_NOTE,
    logits:
      page.logitEffects && 'path' in meta.logit_effects
        ? { path: meta.logit_effects.path, positive: side(page.logitEffects.positive), negative: side(page.logitEffects.negative) }
        : null,
    logitsReason,
  };
}

/** A store's page of `feature`, read from disk unless one of the last pages read. */
function storePage(a: AttachedSae, store: FeatureStoreReader, feature: number): FeaturePage {
  let page = a.pages.get(feature);
  if (!page) {
    page = store.page(feature);
    a.pages.set(feature, page);
  }
  return page;
}

/** GET /api/features/:sae/:feature. */
export async function featurePageOf(ctx: Ctx, saes: readonly AttachedSae[], params: FeatureParams): Promise<FeaturePageResult> {
  const { a, index } = saeByIdIn(saes, params.sae);
  const feature = Number(params.feature);
  checkFeature(a, feature);
  const explanation = a.explanations.get(feature) ?? null;
  const store = a.store;
  if (store) return storePageResult(ctx, storePage(a, store, feature), store.meta, { sae: a.id, feature, dSae: a.sae.dSae, explanation });
  // No store: the logit effects are the only thing the model alone tells.
  const r = await ctx.worker.call<FeatureLogitsRaw>('featureLogits', { sae: index, feature });
  const side = (ids: number[], values: number[]) => ids.map((id, j) => ({ id, str: tokenStr(ctx.model, id), value: num(values[j]!) }));
  return {
    sae: a.id,
    feature,
    dSae: a.sae.dSae,
    hasStore: false,
    density: null,
    fireCount: null,
    maxActivation: null,
    meanActivation: null,
    histogram: null,
    groups: [],
    groupsNote: null,
    logits: 'reason' in r ? null : { path: r.path, positive: side(r.posIds, r.posValues), negative: side(r.negIds, r.negValues) },
    logitsReason: 'reason' in r ? r.reason : null,
    explanation,
  };
}

/** POST /api/features/:sae/steer. */
export async function featureSteerOf(
  ctx: Ctx,
  saes: readonly AttachedSae[],
  id: string,
  body: FeatureSteerBody,
): Promise<FeatureSteerResult> {
  const { a, index } = saeByIdIn(saes, id);
  checkFeature(a, body.feature);
  const prompt = promptIds(ctx, body.prompt, body.prependBos);
  const sampling = samplingArgs(ctx, prompt, body);
  const scale = body.scale ?? 1;
  const r = await ctx.worker.call<{ unsteered: number[]; steered: number[] }>('featureSteer', {
    sae: index,
    feature: body.feature,
    prompt,
    scale,
    ...sampling,
  });
  return { sae: a.id, feature: body.feature, scale, ...generations(ctx.model, prompt, r) };
}

/** POST /api/fires. */
export async function firesOf(ctx: Ctx, saes: readonly AttachedSae[], body: FiresBody): Promise<FiresResult> {
  if (saes.length === 0) throw new HttpError(400, 'no dictionary is attached: start the server with --sae DIR');
  const chosen = (body.saes ?? saes.map((s) => s.id)).map((id) => saeByIdIn(saes, id));
  let highlight: { sae: number; feature: number } | undefined;
  if (body.highlight) {
    const h = saeByIdIn(saes, body.highlight.sae);
    checkFeature(h.a, body.highlight.feature);
    highlight = { sae: h.index, feature: body.highlight.feature };
  }
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  const r = await ctx.worker.call<FiresRaw>('fires', {
    tokens,
    saes: chosen.map((c) => c.index),
    topK: body.topK ?? 5,
    ...(highlight ? { highlight } : {}),
  });
  return {
    tokens,
    strTokens: strTokens(ctx.model, tokens),
    saes: chosen.map((c, i) => ({
      id: c.a.id,
      top: r.top[i]!.map((row) => row.features.map((feature, j) => ({ feature, act: num(row.acts[j]!) }))),
    })),
    highlight:
      body.highlight && r.highlight ? { sae: body.highlight.sae, feature: body.highlight.feature, acts: r.highlight.map(num) } : null,
  };
}

/** Adds the dictionary endpoints to the server. */
export function registerFeatureRoutes(app: FastifyInstance, ctx: Ctx, saes: readonly AttachedSae[]): void {
  const s = featureSchemas(ctx.limits);
  // The stores stay open for page reads while the server runs.
  app.addHook('onClose', async () => {
    for (const a of saes) a.store?.close();
  });
  app.get('/api/saes', async () => listSaes(saes));
  app.get<{ Params: FeatureParams }>('/api/features/:sae/:feature', { schema: { params: s.featureParams } }, async (req) =>
    featurePageOf(ctx, saes, req.params),
  );
  app.post<{ Params: SaeParams; Body: FeatureSteerBody }>(
    '/api/features/:sae/steer',
    { schema: { params: s.saeParams, body: s.featureSteer } },
    async (req) => featureSteerOf(ctx, saes, req.params.sae, req.body),
  );
  app.post<{ Body: FiresBody }>('/api/fires', { schema: { body: s.fires } }, async (req) => firesOf(ctx, saes, req.body));
}
