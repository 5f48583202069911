/**
 * The transcoder feature stores behind the Graph view's node pane (src/server/graph-features.ts):
 * `serve --transcoders DIR` finds the per-layer stores `glassbox clt features` writes, says so in
 * GET /api/graphs, and serves one feature's page at GET /api/graph/features/:layer/:feature with
 * the numbers of the store computed in memory (within 1e-4); stores of other transcoders, or a
 * set with a layer missing, are refused when the server is built, naming the file and the field.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { PRNG, tensor } from '../src/index.js';
import { createServer } from '../src/server/app.js';
import { CrossLayerTranscoder, featurePage, saveClt, type CltConfig, type FeatureStore } from '../src/sae/index.js';
import { collectTranscoderFeatures, featureStoreDir, saveTranscoderFeatureStores } from '../src/sae/clt/features.js';
import type { FeaturePageResult, GraphList } from '../src/server/schemas.js';
import { tinyRandomModel, TINY_VOCAB } from './tiny-models.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOL = 1e-4;

function clt(seed: number): CrossLayerTranscoder {
  const cfg: CltConfig = {
    n_layers: 2,
    d_in: 16,
    d_out: 16,
    widths: [7, 7],
    activation: 'relu',
    cross_layer: true,
    skip: false,
    hook_names_in: ['blocks.0.ln2.hook_normalized', 'blocks.1.ln2.hook_normalized'],
    hook_names_out: ['blocks.0.hook_mlp_out', 'blocks.1.hook_mlp_out'],
  };
  const base = CrossLayerTranscoder.init(cfg, { seed, decoderNorm: 0.5 });
  const rng = new PRNG(seed + 3);
  const params = { ...base.params };
  for (let l = 0; l < 2; l++)
    params[`b_enc.${l}`] = tensor(
      Float32Array.from({ length: 7 }, () => rng.normal() * 0.5 - 0.3),
      [7],
    );
  return new CrossLayerTranscoder(cfg, params);
}

const model = tinyRandomModel(3);
const rng = new PRNG(5);
const ids = Int32Array.from({ length: 6 * 12 }, () => rng.int(TINY_VOCAB));

function buildStores(dir: string, tc: CrossLayerTranscoder): FeatureStore[] {
  const stores = collectTranscoderFeatures(model, tc, ids, {
    contextSize: 12,
    batchSize: 4,
    topK: 4,
    before: 3,
    after: 2,
    logitEffects: 5,
  });
  saveTranscoderFeatureStores(stores, dir);
  return stores;
}

describe('transcoder feature stores in the server', { timeout: 120_000 }, () => {
  let root: string;
  let dir: string;
  let app: FastifyInstance;
  let stores: FeatureStore[];

  before(async () => {
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    root = mkdtempSync(join(ROOT, '.tmp', 'graph-features-'));
    dir = join(root, 'clt');
    const tc = clt(1);
    saveClt(tc, dir);
    stores = buildStores(dir, tc);
    app = createServer({ model, webRoot: null, transcodersDir: dir });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('GET /api/graphs says there are feature stores', async () => {
    const list = (await app.inject({ url: '/api/graphs' })).json() as GraphList;
    assert.equal(list.featureStore, true);
    assert.equal(list.canCompute, true);
  });

  it("a feature's page has the numbers of the store computed in memory (within 1e-4)", async () => {
    let checked = 0;
    for (let l = 0; l < 2; l++)
      for (let f = 0; f < 7; f++) {
        const res = await app.inject({ url: `/api/graph/features/${l}/${f}` });
        assert.equal(res.statusCode, 200, res.body);
        const got = res.json() as FeaturePageResult;
        const want = featurePage(stores[l]!, f);
        assert.equal(got.feature, f);
        assert.equal(got.dSae, 7);
        assert.equal(got.hasStore, true);
        assert.equal(got.fireCount, want.fireCount);
        assert.ok(Math.abs(got.maxActivation! - want.maxActivation) <= TOL);
        assert.deepEqual(got.histogram!.counts, want.histogram.counts);
        // the top activations (the quantile groups of the sampled contexts follow them)
        const contexts = got.groups.filter((g) => g.label.startsWith('top activations')).flatMap((g) => g.contexts);
        assert.equal(contexts.length, want.contexts.length);
        contexts.forEach((c, i) => {
          const w = want.contexts[i]!;
          assert.equal(c.context, w.context);
          assert.deepEqual(
            c.tokens.map((t) => t.id),
            w.tokens.map((t) => t.id),
          );
          c.tokens.forEach((t, j) =>
            assert.ok(Math.abs(t.act! - w.tokens[j]!.act) <= TOL, `layer ${l} feature ${f} context ${i} token ${j}`),
          );
        });
        assert.match(got.logits!.path, l === 0 ? /sum_\{t=0\.\.1\} W_dec\[0->t\]/ : /W_dec\[1->1\]/);
        got.logits!.positive.forEach((t, j) => {
          assert.equal(t.id, want.logitEffects!.positive[j]!.id);
          assert.ok(Math.abs(t.value! - want.logitEffects!.positive[j]!.value) <= TOL);
        });
        got.logits!.negative.forEach((t, j) => assert.ok(Math.abs(t.value! - want.logitEffects!.negative[j]!.value) <= TOL));
        if (want.fireCount > 0) checked++;
      }
    assert.ok(checked >= 4, `${checked} features fired`);
  });

  it('answers a layer or feature out of range with a 404 naming the range, and a bad one with a 400', async () => {
    const layer = await app.inject({ url: '/api/graph/features/2/0' });
    assert.equal(layer.statusCode, 404);
    assert.match(layer.json().message, /no layer 2: the transcoders have layers 0\.\.1/);
    const feature = await app.inject({ url: '/api/graph/features/0/7' });
    assert.equal(feature.statusCode, 404);
    assert.match(feature.json().message, /feature 7 is out of range: layer 0 of the transcoders has 7 features \(0\.\.6\)/);
    assert.equal((await app.inject({ url: '/api/graph/features/0/-1' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/api/graph/features/x/1' })).statusCode, 400);
  });

  it('refuses stores of other transcoders, and a set with a layer missing, naming the file and the field', () => {
    const other = join(root, 'other');
    saveClt(clt(2), other);
    buildStores(other, clt(1));
    assert.throws(
      () => createServer({ model, webRoot: null, transcodersDir: other }),
      (e: Error) =>
        e.message.includes(join(featureStoreDir(other, 0), 'features.json')) &&
        /field 'transcoders\.weights_sha256'.*other transcoders/.test(e.message),
    );
    const partial = join(root, 'partial');
    const tc = clt(1);
    saveClt(tc, partial);
    buildStores(partial, tc);
    rmSync(featureStoreDir(partial, 1), { recursive: true });
    assert.throws(
      () => createServer({ model, webRoot: null, transcodersDir: partial }),
      (e: Error) => e.message.includes(join(featureStoreDir(partial, 1), 'features.json')) && /not found, but other layers/.test(e.message),
    );
  });

  it('without stores: featureStore false, and the endpoint is a 404 saying how to build them', async () => {
    const bare = join(root, 'bare');
    saveClt(clt(1), bare);
    const server = createServer({ model, webRoot: null, transcodersDir: bare });
    try {
      await server.ready();
      assert.equal(((await server.inject({ url: '/api/graphs' })).json() as GraphList).featureStore, false);
      const res = await server.inject({ url: '/api/graph/features/0/0' });
      assert.equal(res.statusCode, 404);
      assert.match(res.json().message, /glassbox clt features/);
    } finally {
      await server.close();
    }
  });
});
