/**
 * The dictionary endpoints of the HTTP API (src/server/features.ts): GET /api/saes, the feature
 * page, steering along one feature and the features firing on a prompt give the library's numbers
 * (featurePage, promptFeatureActs / topFeaturesPerToken, steerWithFeature) on a tiny model with a
 * random SAE whose feature store and explanations were written to a temporary directory; bad ids,
 * out-of-range features and SAEs that do not fit the model are refused naming the problem.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PRNG, tensor } from '../src/index.js';
import {
  Sae,
  collectFeatures,
  featurePage,
  logitEffects,
  promptFeatureActs,
  saveFeatureStore,
  saveSae,
  steerWithFeature,
  topFeaturesPerToken,
} from '../src/sae/index.js';
import { createServer } from '../src/server/app.js';
import { resolveSaeSource } from '../src/server/index.js';
import { NO_SAMPLES_NOTE } from '../src/server/features.js';
import type { FeaturePageResult, FeatureSteerResult, FiresResult, SaeList } from '../src/server/schemas.js';
import { tinyModel } from './server-helpers.js';

const D_SAE = 48;
const HOOK = 'blocks.1.hook_resid_pre';
const PROMPT = 'the cat sat on the mat and the dog';

/** A random standard SAE at HOOK whose encoder bias makes about half its features fire. */
function randomSae(over: { d_in?: number; hook_name?: string; model_name?: string } = {}): Sae {
  const sae = Sae.create({ architecture: 'standard', d_in: over.d_in ?? 32, d_sae: D_SAE, hook_name: over.hook_name ?? HOOK }, { seed: 3 });
  const withName = over.model_name ? sae.withConfig({ model_name: over.model_name }) : sae;
  return withName.withParams({ ...withName.params, b_enc: tensor(new Float32Array(D_SAE).fill(0.05), [D_SAE]) });
}

/** |a - b| within 1e-4 of the larger magnitude (the API rounds to 6 significant digits). */
function close(a: number | null, b: number, what: string): void {
  assert.ok(a !== null, `${what}: null`);
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

describe('dictionary endpoints', { timeout: 120_000 }, () => {
  const model = tinyModel();
  const sae = randomSae();
  let dir: string;
  let app: FastifyInstance;
  let store: ReturnType<typeof collectFeatures>;
  let explained = -1;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gb-featsrv-'));
    const saeDir = join(dir, 'my-sae');
    saveSae(sae, saeDir);
    const rng = new PRNG(5);
    const ids = Int32Array.from({ length: 24 * 16 }, () => rng.int(290));
    store = collectFeatures(model, sae, ids, { contextSize: 16, batchSize: 4, topK: 6, before: 4, after: 2, logitEffects: 5 });
    saveFeatureStore(store, join(saeDir, 'features'));
    explained = Array.from(store.stats.fireCount).findIndex((c) => c > 0);
    // What `glassbox sae explain` writes beside the store (src/sae/explain): one JSON object a line.
    writeFileSync(
      join(saeDir, 'features', 'explanations.jsonl'),
      JSON.stringify({
        feature: explained,
        explanation: 'fires on everything',
        score: {
          method: 'detection',
          balanced_accuracy: 0.75,
          true_positives: 3,
          false_negatives: 1,
          true_negatives: 3,
          false_positives: 1,
        },
        explainer: { model: 'stub', api_base: 'http://127.0.0.1:1/v1' },
        created_at: '2026-12-07T00:00:00.000Z',
      }) + '\n',
    );
    app = createServer({ model, modelName: 'tiny', webRoot: null, saes: [await resolveSaeSource(saeDir)] });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async <T>(url: string) => {
    const r = await app.inject({ method: 'GET', url });
    return { status: r.statusCode, body: r.json() as T };
  };
  const post = async <T>(url: string, payload: unknown) => {
    const r = await app.inject({ method: 'POST', url, payload: payload as object });
    return { status: r.statusCode, body: r.json() as T };
  };

  it('GET /api/saes lists the SAE: hook, architecture, width, L0 over its store', async () => {
    const r = await get<SaeList>('/api/saes');
    assert.equal(r.status, 200);
    assert.equal(r.body.saes.length, 1);
    const s = r.body.saes[0]!;
    assert.equal(s.id, 'my-sae');
    assert.equal(s.hookName, HOOK);
    assert.equal(s.architecture, 'standard');
    assert.equal(s.dSae, D_SAE);
    assert.equal(s.dIn, 32);
    const l0 = Array.from(store.stats.fireCount).reduce((a, b) => a + b, 0) / store.stats.tokens;
    close(s.l0, l0, 'l0');
    assert.equal(s.deadFeatures, Array.from(store.stats.fireCount).filter((c) => c === 0).length);
    assert.equal(s.store?.topK, 6);
  });

  it('GET /api/features/:sae/:feature is the store page: contexts with every activation, histogram, logits, explanation', async () => {
    for (const f of [explained, D_SAE - 1]) {
      const r = await get<FeaturePageResult>(`/api/features/my-sae/${f}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const page = featurePage(store, f);
      const p = r.body;
      assert.equal(p.hasStore, true);
      close(p.density, page.density, 'density');
      assert.equal(p.fireCount, page.fireCount);
      close(p.maxActivation, page.maxActivation, 'max');
      assert.deepEqual(p.histogram?.counts, page.histogram.counts);
      // The first group is the top-k; the rest, the sample by quantile, top quantile first (together: the sample, largest first).
      assert.equal(p.groupsNote, null);
      const [top, ...quantiles] = p.groups;
      const sampled = quantiles.flatMap((g) => g.contexts);
      assert.equal(sampled.length, page.samples!.length);
      assert.ok(page.samples!.length > 0);
      sampled.forEach((c, i) => {
        close(c.activation, page.samples![i]!.activation, `sample ${i}`);
        assert.equal(c.context, page.samples![i]!.context);
        assert.equal(c.position, page.samples![i]!.position);
      });
      const contexts = top!.contexts;
      assert.equal(contexts.length, page.contexts.length);
      contexts.forEach((c, i) => {
        const want = page.contexts[i]!;
        close(c.activation, want.activation, `context ${i}`);
        assert.equal(c.maxIndex, want.maxIndex);
        assert.deepEqual(
          c.tokens.map((t) => t.id),
          want.tokens.map((t) => t.id),
        );
        c.tokens.forEach((t, j) => close(t.act, want.tokens[j]!.act, `context ${i} token ${j}`));
      });
      // Every group's contexts lie in its range.
      for (const g of p.groups)
        for (const c of g.contexts)
          assert.ok(c.activation! >= g.min! - 1e-6 && c.activation! <= g.max! + 1e-6, `${c.activation} in ${g.label}`);
      assert.deepEqual(
        p.logits?.positive.map((x) => x.id),
        page.logitEffects!.positive.map((x) => x.id),
      );
      p.logits!.negative.forEach((x, j) => close(x.value, page.logitEffects!.negative[j]!.value, `negative logit ${j}`));
      if (f === explained) assert.deepEqual(p.explanation, { text: 'fires on everything', score: 0.75, model: 'stub' });
      else assert.equal(p.explanation, null);
    }
  });

  it('serves a store written before samples: the top activations only, and a note that says why', async () => {
    const old = mkdtempSync(join(tmpdir(), 'gb-featsrv-'));
    try {
      const saeDir = join(old, 'old-sae');
      saveSae(sae, saeDir);
      const rng = new PRNG(5);
      const ids = Int32Array.from({ length: 24 * 16 }, () => rng.int(290));
      const features = join(saeDir, 'features');
      saveFeatureStore(
        collectFeatures(model, sae, ids, { contextSize: 16, batchSize: 4, topK: 6, before: 4, after: 2, samples: 0 }),
        features,
      );
      // Such a store's features.json has no 'samples' field at all.
      const jsonPath = join(features, 'features.json');
      const meta = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
      delete meta.samples;
      writeFileSync(jsonPath, JSON.stringify(meta));
      const oldApp = createServer({ model, modelName: 'tiny', webRoot: null, saes: [await resolveSaeSource(saeDir)] });
      try {
        const r = await oldApp.inject({ method: 'GET', url: `/api/features/old-sae/${explained}` });
        assert.equal(r.statusCode, 200, r.body);
        const p = r.json() as FeaturePageResult;
        assert.equal(p.groupsNote, NO_SAMPLES_NOTE);
        assert.equal(p.groups.length, 1);
        assert.equal(p.groups[0]!.contexts.length, featurePage(store, explained).contexts.length);
      } finally {
        await oldApp.close();
      }
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });

  it('POST /api/fires: per token the top features with their activations, and a highlighted feature everywhere', async () => {
    const r = await post<FiresResult>('/api/fires', { prompt: PROMPT, topK: 3, highlight: { sae: 'my-sae', feature: explained } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const tokens = model.tokenizer!.encode(PROMPT, { prependBos: true });
    assert.deepEqual(r.body.tokens, tokens);
    const acts = promptFeatureActs(model, sae, tokens);
    const top = topFeaturesPerToken(acts, D_SAE, 3);
    const got = r.body.saes[0]!.top;
    assert.equal(got.length, tokens.length);
    got.forEach((row, p) => {
      assert.deepEqual(
        row.map((x) => x.feature),
        top[p]!.map((x) => x.feature),
        `features at ${p}`,
      );
      row.forEach((x, j) => close(x.act, top[p]![j]!.act, `act at ${p}`));
    });
    r.body.highlight!.acts.forEach((a, p) => close(a, acts[p * D_SAE + explained]!, `highlight at ${p}`));
  });

  it('POST /api/features/:sae/steer: unsteered and steered generations as the library makes them', async () => {
    const body = { feature: explained, prompt: PROMPT, scale: 200, maxNewTokens: 6 };
    const r = await post<FeatureSteerResult>('/api/features/my-sae/steer', body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const tokens = model.tokenizer!.encode(PROMPT, { prependBos: true });
    const want = steerWithFeature(model, sae, explained, tokens, { scale: 200, maxNewTokens: 6 });
    assert.deepEqual(r.body.unsteered.tokens, want.unsteered);
    assert.deepEqual(r.body.steered.tokens, want.steered);
    assert.notDeepEqual(want.steered, want.unsteered, 'a scale of 200 changes the continuation');
    const zero = await post<FeatureSteerResult>('/api/features/my-sae/steer', { ...body, scale: 0 });
    assert.deepEqual(zero.body.steered.tokens, zero.body.unsteered.tokens);
  });

  it('refuses unknown dictionaries and features out of range, naming them', async () => {
    const a = await get<{ message: string }>('/api/features/nope/1');
    assert.equal(a.status, 404);
    assert.match(a.body.message, /no dictionary 'nope'; attached: my-sae/);
    const b = await get<{ message: string }>(`/api/features/my-sae/${D_SAE}`);
    assert.equal(b.status, 400);
    assert.match(b.body.message, /feature 48 is out of range: 'my-sae' has 48 features \(0\.\.47\)/);
    const c = await get<{ message: string }>('/api/features/my-sae/-1');
    assert.equal(c.status, 400);
    const d = await post<{ message: string }>('/api/features/my-sae/steer', { feature: 99, prompt: PROMPT });
    assert.equal(d.status, 400);
    assert.match(d.body.message, /feature 99 is out of range/);
    const e = await post<{ message: string }>('/api/fires', { prompt: PROMPT, highlight: { sae: 'my-sae', feature: 1000 } });
    assert.equal(e.status, 400);
    const f = await post<{ message: string }>('/api/fires', { prompt: PROMPT, saes: ['other'] });
    assert.equal(f.status, 404);
    assert.match(f.body.message, /no dictionary 'other'/);
  });
});

describe('a transcoder without a feature store', { timeout: 60_000 }, () => {
  const model = tinyModel();
  const base = Sae.create(
    {
      architecture: 'transcoder',
      d_in: 32,
      d_sae: 16,
      d_out: 32,
      hook_name: 'blocks.0.ln2.hook_normalized',
      hook_name_out: 'blocks.0.hook_mlp_out',
    },
    { seed: 2 },
  );
  const tc = base.withParams({ ...base.params, b_enc: tensor(new Float32Array(16).fill(0.05), [16]) });
  let dir: string;
  let app: FastifyInstance;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gb-featsrv-'));
    saveSae(tc, join(dir, 'tc'));
    app = createServer({ model, modelName: 'tiny', webRoot: null, saes: [await resolveSaeSource(join(dir, 'tc'))] });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is listed as a transcoder; its page has the logit effects only; fires and steering are the library's", async () => {
    const list = (await app.inject({ method: 'GET', url: '/api/saes' })).json() as SaeList;
    assert.equal(list.saes[0]!.transcoder, true);
    assert.equal(list.saes[0]!.hookNameOut, 'blocks.0.hook_mlp_out');
    assert.equal(list.saes[0]!.l0, null);
    const page = (await app.inject({ method: 'GET', url: '/api/features/tc/3' })).json() as FeaturePageResult;
    assert.equal(page.hasStore, false);
    assert.deepEqual(page.groups, []);
    assert.equal(page.logits?.path, 'W_dec @ diag(ln_final.w) @ W_U');
    const effects = logitEffects(model, tc, 10);
    assert.ok(!('reason' in effects));
    assert.deepEqual(
      page.logits!.positive.map((t) => t.id),
      Array.from(effects.posIds.subarray(30, 40)),
    );
    page.logits!.positive.forEach((t, j) => close(t.value, effects.posValues[30 + j]!, `logit ${j}`));
    const tokens = model.tokenizer!.encode(PROMPT, { prependBos: true });
    const fires = (await app.inject({ method: 'POST', url: '/api/fires', payload: { prompt: PROMPT, topK: 2 } })).json() as FiresResult;
    const top = topFeaturesPerToken(promptFeatureActs(model, tc, tokens), 16, 2);
    fires.saes[0]!.top.forEach((row, p) => {
      assert.deepEqual(
        row.map((x) => x.feature),
        top[p]!.map((x) => x.feature),
      );
      row.forEach((x, j) => close(x.act, top[p]![j]!.act, `act at ${p}`));
    });
    const steer = (
      await app.inject({
        method: 'POST',
        url: '/api/features/tc/steer',
        payload: { feature: 3, prompt: PROMPT, scale: 50, maxNewTokens: 5 },
      })
    ).json() as FeatureSteerResult;
    const want = steerWithFeature(model, tc, 3, tokens, { scale: 50, maxNewTokens: 5 });
    assert.deepEqual(steer.steered.tokens, want.steered);
    assert.deepEqual(steer.unsteered.tokens, want.unsteered);
  });
});

describe('attaching dictionaries', { timeout: 60_000 }, () => {
  const model = tinyModel();
  const attach = async (s: Sae, name: string, extra: (d: string) => void = () => {}): Promise<string | null> => {
    const dir = mkdtempSync(join(tmpdir(), 'gb-featsrv-'));
    const saeDir = join(dir, name);
    try {
      saveSae(s, saeDir);
      extra(saeDir);
      const app = createServer({ model, modelName: 'tiny', webRoot: null, saes: [await resolveSaeSource(saeDir)] });
      void app.close();
      return null;
    } catch (e) {
      return (e as Error).message;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('refuses an SAE at a hook the model lacks, of the wrong width, or trained on another model, naming the directory', async () => {
    assert.match(
      (await attach(randomSae({ hook_name: 'blocks.7.hook_resid_pre' }), 'far')) ?? '',
      /far: the SAE does not fit the model: .*blocks\.7\.hook_resid_pre/,
    );
    assert.match((await attach(randomSae({ d_in: 16 }), 'narrow')) ?? '', /narrow: the SAE does not fit the model: .*16/);
    assert.match((await attach(randomSae({ model_name: 'gemma-2-2b' }), 'gemma')) ?? '', /gemma: the SAE was trained on 'gemma-2-2b'/);
    assert.equal(await attach(randomSae({ model_name: 'gpt2' }), 'ok'), null, 'model_name gpt2 names the tiny gpt2 family');
  });

  it('refuses a directory without cfg.json and a feature store built for another SAE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gb-featsrv-'));
    try {
      await assert.rejects(resolveSaeSource(dir), /cfg\.json: not found/);
      await assert.rejects(resolveSaeSource(join(dir, 'missing')), /missing: not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const other = randomSae();
    const narrow = Sae.create({ architecture: 'standard', d_in: 32, d_sae: 8, hook_name: HOOK }, { seed: 1 });
    const msg = await attach(other, 'mismatch', (d) => {
      const ids = Int32Array.from({ length: 64 }, (_, i) => i % 200);
      saveFeatureStore(collectFeatures(model, narrow, ids, { contextSize: 16, batchSize: 2, topK: 2 }), d);
    });
    assert.match(msg ?? '', /mismatch: its feature store was built for another dictionary \(d_sae 8/);
  });

  it('without a dictionary, /api/saes is empty and /api/fires says how to attach one', async () => {
    const app = createServer({ model, webRoot: null });
    try {
      const r = await app.inject({ method: 'GET', url: '/api/saes' });
      assert.deepEqual(r.json(), { saes: [] });
      const f = await app.inject({ method: 'POST', url: '/api/fires', payload: { prompt: PROMPT } });
      assert.equal(f.statusCode, 400);
      assert.match((f.json() as { message: string }).message, /--sae DIR/);
    } finally {
      await app.close();
    }
  });
});
