/**
 * The tuned lens in the workbench's API: POST /api/logit-lens with lens: 'tuned' gives the tuned
 * lens's top-k and tracked token (checked against `tunedLensLogits`, layer by layer), GET
 * /api/model says whether one is loaded, a server without one refuses lens: 'tuned' with a 400
 * saying how to get one, a lens for another model is refused by file and field when the server is
 * built, and `serve` finds a lens in the model folder's tuned-lens/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PRNG, randn, type Tensor } from '../src/index.js';
import { loadTunedLens, saveTunedLens, tunedLensLogits, type TunedLens } from '../src/analysis/index.js';
import { unembedSha256, unembedSha256Sync } from '../src/analysis/tuned-lens.js';
import { createServer } from '../src/server/app.js';
import { serve, TUNED_LENS_FOLDER, tunedLensBeside } from '../src/server/index.js';
import { tinyRandomModel } from './tiny-models.js';

const f32 = (t: Tensor) => t.cast('float32').dataSync() as Float32Array;

describe('server: the tuned lens', () => {
  const model = tinyRandomModel(4, { nLayers: 2, nCtx: 32 });
  const { dModel: d, nLayers: L, dVocab: V } = model.cfg;
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-tuned-lens-server-'));
  // Random translators, so the tuned lens differs from the logit lens at every layer.
  const rng = new PRNG(7);
  const lens: TunedLens = {
    dModel: d,
    nLayers: L,
    translators: Array.from({ length: L }, () => ({ W: randn([d, d], { rng }).mul(0.2), b: randn([d], { rng }).mul(0.2) })),
  };
  saveTunedLens(join(dir, 'lens'), lens);
  let withLens: FastifyInstance;
  let without: FastifyInstance;
  before(() => {
    withLens = createServer({ model, webRoot: null, tunedLensDir: join(dir, 'lens') });
    without = createServer({ model, webRoot: null });
  });
  after(async () => {
    await withLens.close();
    await without.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const prompt = [3, 9, 1, 14, 3, 9];

  it("lens: 'tuned' reads each layer through its translator; GET /api/model says a lens is loaded", async () => {
    const info = (await withLens.inject({ url: '/api/model' })).json() as { tunedLens: boolean };
    assert.equal(info.tunedLens, true);
    const r = await withLens.inject({ method: 'POST', url: '/api/logit-lens', payload: { prompt, topK: 3, track: 5, lens: 'tuned' } });
    assert.equal(r.statusCode, 200, r.body);
    const b = r.json() as {
      lens: string;
      labels: string[];
      top: { token: number; prob: number }[][][];
      tracked: { prob: number[][]; rank: number[][] };
    };
    assert.equal(b.lens, 'tuned');
    assert.deepEqual(b.labels, ['0_pre', '1_pre', 'final_post']);
    const names = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${L - 1}.hook_resid_post`];
    const { cache } = model.runWithCache([prompt], { names });
    let differs = false;
    const logit = (await withLens.inject({ method: 'POST', url: '/api/logit-lens', payload: { prompt, topK: 3 } })).json() as typeof b;
    assert.equal(logit.lens, 'logit');
    names.forEach((name, l) => {
      const probs = f32(tunedLensLogits(model, lens, l, cache.get(name).index([0])).softmax(-1)); // [pos, d_vocab]
      prompt.forEach((_, p) => {
        const row = probs.slice(p * V, (p + 1) * V);
        const order = Array.from(row.keys()).sort((x, y) => row[y]! - row[x]!);
        b.top[l]![p]!.forEach((t, j) => {
          assert.equal(t.token, order[j], `top[${l}][${p}][${j}]`);
          assert.ok(Math.abs(t.prob - row[order[j]!]!) < 1e-5, `prob[${l}][${p}][${j}]: ${t.prob} vs ${row[order[j]!]}`);
        });
        assert.ok(Math.abs(b.tracked.prob[l]![p]! - row[5]!) < 1e-5);
        assert.equal(b.tracked.rank[l]![p], 1 + row.filter((x) => x > row[5]!).length);
        if (l < L && Math.abs(logit.top[l]![p]![0]!.prob - b.top[l]![p]![0]!.prob) > 1e-3) differs = true;
      });
    });
    assert.ok(differs, 'the tuned lens differs from the logit lens');
    // The last row is the model's own output under both lenses.
    assert.deepEqual(
      b.top[L]!.map((ps) => ps.map((t) => t.token)),
      logit.top[L]!.map((ps) => ps.map((t) => t.token)),
    );
  });

  it("a server without a tuned lens refuses lens: 'tuned' with the way to get one", async () => {
    const info = (await without.inject({ url: '/api/model' })).json() as { tunedLens: boolean };
    assert.equal(info.tunedLens, false);
    const r = await without.inject({ method: 'POST', url: '/api/logit-lens', payload: { prompt, lens: 'tuned' } });
    assert.equal(r.statusCode, 400);
    assert.match(r.body, /needs a tuned lens, and none is loaded: start the server with --tuned-lens DIR/);
    const bad = await without.inject({ method: 'POST', url: '/api/logit-lens', payload: { prompt, lens: 'tunde' } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /lens/);
  });

  it('a lens for another model is refused by file and field; serve finds the model folder’s tuned-lens/', () => {
    const other = tinyRandomModel(4, { nLayers: 3, nCtx: 32 });
    assert.throws(
      () => createServer({ model: other, webRoot: null, tunedLensDir: join(dir, 'lens') }),
      /lens\/config\.json: num_hidden_layers is 2, the model has 3 layers/,
    );
    assert.throws(() => createServer({ model, webRoot: null, tunedLensDir: join(dir, 'nope') }), /nope\/config\.json: no such file/);
    const modelDir = join(dir, 'model');
    assert.equal(tunedLensBeside(modelDir), undefined);
    saveTunedLens(join(modelDir, TUNED_LENS_FOLDER), lens);
    assert.equal(tunedLensBeside(modelDir), join(modelDir, TUNED_LENS_FOLDER));
    writeFileSync(join(modelDir, TUNED_LENS_FOLDER, 'config.json'), '{"d_model": "x"}');
    assert.throws(() => createServer({ model, webRoot: null, tunedLensDir: tunedLensBeside(modelDir)! }), /config\.json: d_model is "x"/);
  });

  it("serve(MODEL_DIR) loads the folder's tuned-lens/ and says so; tunedLensDir: false loads none", async () => {
    const modelDir = join(dir, 'served');
    model.save(modelDir);
    saveTunedLens(join(modelDir, TUNED_LENS_FOLDER), lens);
    for (const off of [false, true]) {
      const lines: string[] = [];
      const running = await serve({
        model: modelDir,
        port: 0,
        webRoot: null,
        print: { log: (l) => lines.push(l), warn: () => {} },
        ...(off ? { tunedLensDir: false as const } : {}),
      });
      try {
        const info = (await (await fetch(`${running.url}api/model`)).json()) as { tunedLens: boolean };
        assert.equal(info.tunedLens, !off);
        assert.equal(
          lines.some((l) => l.includes(`tuned lens from ${join(modelDir, TUNED_LENS_FOLDER)}`)),
          !off,
        );
      } finally {
        await running.close();
      }
    }
  });

  it('a lens that records its model’s unembedding is refused for same-shaped other weights, in Node and (same digest) in the page', async () => {
    const signed = join(dir, 'signed');
    saveTunedLens(signed, lens, { model });
    assert.equal(loadTunedLens(signed, model).translators.length, L);
    const twin = tinyRandomModel(5, { nLayers: 2, nCtx: 32 }); // same shapes, other weights
    assert.throws(
      () => loadTunedLens(signed, twin),
      /signed\/config\.json: unembed_sha256 is [0-9a-f]{12}…, the model's unembedding hashes to [0-9a-f]{12}…: the lens was trained on other weights/,
    );
    assert.throws(() => createServer({ model: twin, webRoot: null, tunedLensDir: signed }), /trained on other weights/);
    // The static page checks with the Web Crypto API: the same digest.
    assert.equal(await unembedSha256(model), unembedSha256Sync(model));
    assert.notEqual(unembedSha256Sync(twin), unembedSha256Sync(model));
  });
});
