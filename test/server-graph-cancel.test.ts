/**
 * Cancelling a graph job (POST /api/graph, then DELETE /api/jobs/:id) while its attribution runs
 * in the model worker: the cancellation lands inside the attribution step (the job reached phase
 * 1, the clean run, and never phase 2; the worker ran far fewer passes than the rows), the job
 * ends 'cancelled', no graph is kept, and the worker answers the next request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../src/server/app.js';
import { tinyRandomModel } from './tiny-models.js';
import { randomPltSaes } from './circuits-helpers.js';
import { saveSae } from '../src/sae/formats.js';
import type { GraphList } from '../src/server/schemas.js';
import { prepareReplacement } from '../src/circuits/replacement.js';
import { loadTracingTranscoders } from '../src/circuits/load-transcoders.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

describe('cancelling a graph job mid-attribution', { timeout: 300_000 }, () => {
  let dir: string;
  let app: FastifyInstance;
  // A long prompt and wide transcoders: about a thousand feature rows, one per backward pass
  // (passBudgetBytes 1), so attribution is many steps of work after its clean run.
  const model = tinyRandomModel(3, { nCtx: 48 });
  const PROMPT = Array.from({ length: 48 }, (_, i) => (i * 7 + 3) % model.cfg.dVocab);

  before(async () => {
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(ROOT, '.tmp', 'graph-cancel-'));
    randomPltSaes(model, 11, { width: 48 }).forEach((sae, l) => saveSae(sae, join(dir, `layer_${l}`)));
    const ctx = prepareReplacement(model, PROMPT, loadTracingTranscoders(dir));
    for (const a of ctx.acts) for (const v of a.dataSync() as Float32Array) if (v !== 0) rows++;
    app = createServer({ model, webRoot: null, transcodersDir: dir, passBudgetBytes: 1 });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The rows a whole attribution computes: one per active feature (plus the logits). */
  let rows = 0;

  /** Polls a job until `until` holds of it (bounded). */
  async function poll(jobId: string, until: (j: { status: string; done: number }) => boolean) {
    for (let i = 0; i < 6000; i++) {
      const j = (await app.inject({ url: `/api/jobs/${jobId}` })).json() as { status: string; done: number; total: number };
      if (until(j)) return j;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`job ${jobId}: the awaited state never came`);
  }

  it('DELETE during attribution: cancelled after phase 1, nothing kept, the worker free again', async () => {
    const start = await app.inject({ method: 'POST', url: '/api/graph', payload: { prompt: PROMPT } });
    assert.equal(start.statusCode, 202, start.body);
    const { jobId, total } = start.json() as { jobId: string; total: number };
    assert.equal(total, 3);
    // Phase 1 (the clean run) is reported from inside the attribution step: rows are being computed.
    const running = await poll(jobId, (j) => j.status !== 'running' || j.done >= 1);
    assert.deepEqual([running.status, running.done], ['running', 1], 'the job is inside its attribution');
    const del = await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}` });
    assert.equal(del.statusCode, 200, del.body);
    const ended = await poll(jobId, (j) => j.status !== 'running');
    assert.equal(ended.status, 'cancelled');
    assert.equal(ended.done, 1, 'attribution (phase 2) never finished');
    // Nothing half-written: no computed graph is listed or served.
    const list = (await app.inject({ url: '/api/graphs' })).json() as GraphList;
    assert.deepEqual(
      list.graphs.filter((g) => g.source === 'computed'),
      [],
    );
    assert.equal((await app.inject({ url: `/api/graphs/${jobId}` })).statusCode, 404);
    // The worker stopped the attribution and answers the next request.
    const iv = await app.inject({
      method: 'POST',
      url: '/api/graph/intervene',
      payload: { prompt: PROMPT.slice(0, 6), features: [{ layer: 0, feature: 0, scale: 0 }], topK: 3 },
    });
    assert.equal(iv.statusCode, 200, iv.body);
    // Every row is at least one ONNX Runtime run; the worker (one step at a time, so the
    // intervention ran after the attribution step ended) made far fewer: it stopped mid-way.
    const { runs } = (await app.inject({ url: '/api/stats' })).json() as { runs: number };
    assert.ok(runs < rows / 2, `${runs} runs for ${rows} rows`);
    // A new job runs to the end after the cancelled one.
    const again = await app.inject({ method: 'POST', url: '/api/graph', payload: { prompt: PROMPT.slice(0, 6) } });
    assert.equal(again.statusCode, 202, again.body);
    const done = await poll((again.json() as { jobId: string }).jobId, (j) => j.status !== 'running');
    assert.equal(done.status, 'done');
    assert.equal(done.done, 3);
  });
});
