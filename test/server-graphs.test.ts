/**
 * The graph endpoints of the server: graph files opened with `graphFiles` (serve --graph) are
 * listed and served as written; a bad file is refused when the server is built, naming the file,
 * the field and the problem; computing a graph or intervening without transcoders is refused
 * with a message saying so, after the body's schema is checked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../src/server/app.js';
import { serve } from '../src/server/index.js';
import { checkGraphFile, GraphStore } from '../src/server/graphs.js';
import { tinyRandomModel } from './tiny-models.js';
import { handGraph, writeGraph } from './graph-fixture.js';
import { randomPltSaes } from './circuits-helpers.js';
import { saveSae } from '../src/sae/formats.js';
import { attribute, graphToJson, intervene, pruneGraph } from '../src/circuits/index.js';
import { loadTracingTranscoders } from '../src/circuits/load-transcoders.js';
import type { Tensor } from '../src/tensor/index.js';
import type { GraphFile, GraphList, InterveneResult, TokenProb } from '../src/server/schemas.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

describe('graph endpoints', () => {
  let dir: string;
  let app: FastifyInstance;
  let file: string;

  before(async () => {
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(ROOT, '.tmp', 'graphs-'));
    file = writeGraph(dir, 'hand.json', handGraph());
    app = createServer({ model: tinyRandomModel(1), webRoot: null, graphFiles: [file] });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the graph files under their slugs and serves each as written', async () => {
    const g = handGraph();
    const list = await app.inject({ method: 'GET', url: '/api/graphs' });
    assert.equal(list.statusCode, 200);
    assert.deepEqual(list.json(), {
      graphs: [{ id: 'hand-induction', prompt: 'A B A', promptTokens: g.metadata.prompt_tokens, nodes: 14, links: 18, source: 'file' }],
      canCompute: false,
      featureStore: false,
    });
    const res = await app.inject({ method: 'GET', url: '/api/graphs/hand-induction' });
    assert.equal(res.statusCode, 200);
    const got = res.json() as ReturnType<typeof handGraph>;
    assert.deepEqual(got.metadata, g.metadata);
    assert.deepEqual(got.links, g.links);
    assert.deepEqual(
      got.nodes.map((n) => [n.node_id, n.layer, n.ctx_idx, n.feature, n.feature_type, n.activation, n.influence, n.clerp]),
      g.nodes.map((n) => [n.node_id, n.layer, n.ctx_idx, n.feature, n.feature_type, n.activation ?? null, n.influence ?? null, n.clerp]),
    );
    assert.equal(got.nodes.find((n) => n.node_id === '5_11_3')!.token_prob, 0.625);
    assert.equal(got.nodes.find((n) => n.node_id === '5_11_3')!.is_target_logit, true);
  });

  it('answers an unknown graph with a 404 naming the graphs it has, and a bad id with a 400', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/graphs/nope' });
    assert.equal(res.statusCode, 404);
    assert.match(res.json().message, /no graph 'nope'; this server has 'hand-induction'/);
    const bad = await app.inject({ method: 'GET', url: '/api/graphs/..%2Fetc' });
    assert.equal(bad.statusCode, 400);
  });

  it('refuses to compute a graph or intervene without transcoders, after checking the body', async () => {
    const graph = await app.inject({ method: 'POST', url: '/api/graph', payload: { prompt: [1, 2, 3] } });
    assert.equal(graph.statusCode, 400);
    assert.match(graph.json().message, /no transcoders/);
    const schema = await app.inject({ method: 'POST', url: '/api/graph', payload: { prompt: [1, 2], nodeThreshold: 2 } });
    assert.equal(schema.statusCode, 400);
    assert.match(schema.json().message, /nodeThreshold/);
    const unknown = await app.inject({ method: 'POST', url: '/api/graph', payload: { prompt: [1], extra: 1 } });
    assert.equal(unknown.statusCode, 400);
    const iv = await app.inject({
      method: 'POST',
      url: '/api/graph/intervene',
      payload: { prompt: [1, 2], features: [{ layer: 0, feature: 3, pos: [1], scale: 0 }] },
    });
    assert.equal(iv.statusCode, 400);
    assert.match(iv.json().message, /no transcoders/);
    const noFeatures = await app.inject({ method: 'POST', url: '/api/graph/intervene', payload: { prompt: [1, 2], features: [] } });
    assert.equal(noFeatures.statusCode, 400);
    assert.match(noFeatures.json().message, /features/);
  });

  it('refuses a bad graph file, naming the file, the field and the problem', () => {
    const cases: [string, (g: ReturnType<typeof handGraph>) => unknown, RegExp][] = [
      ['not an object', () => [], /\(top level\): expected a JSON object/],
      ['no metadata', (g) => ({ ...g, metadata: undefined }), /metadata: expected an object/],
      [
        'no prompt tokens',
        (g) => ({ ...g, metadata: { ...g.metadata, prompt_tokens: [] } }),
        /metadata\.prompt_tokens: expected a non-empty list/,
      ],
      [
        'a token not a string',
        (g) => ({ ...g, metadata: { ...g.metadata, prompt_tokens: ['a', 3] } }),
        /metadata\.prompt_tokens\[1\]: expected a string/,
      ],
      [
        'a duplicate node id',
        (g) => ({ ...g, nodes: [...g.nodes, g.nodes[4]] }),
        /nodes\[14\]\.node_id: '0_5_1' is the id of an earlier node too/,
      ],
      [
        'a position past the prompt',
        (g) => ({ ...g, nodes: g.nodes.map((n, i) => (i === 6 ? { ...n, ctx_idx: 4 } : n)) }),
        /nodes\[6\]\.ctx_idx: expected a position in 0\.\.3 \(the prompt has 4 tokens\), got 4/,
      ],
      [
        'a bad layer',
        (g) => ({ ...g, nodes: g.nodes.map((n, i) => (i === 5 ? { ...n, layer: 'x' } : n)) }),
        /nodes\[5\]\.layer: expected 'E' or a layer number, got 'x'/,
      ],
      [
        'a NaN-like activation',
        (g) => ({ ...g, nodes: g.nodes.map((n, i) => (i === 5 ? { ...n, activation: 'NaN' } : n)) }),
        /nodes\[5\]\.activation: expected a finite number or null/,
      ],
      [
        'a dangling link',
        (g) => ({ ...g, links: [...g.links, { source: '0_5_1', target: '9_9_9', weight: 1 }] }),
        /links\[18\]\.target: expected the node_id of a node of this file, got '9_9_9'/,
      ],
      [
        'a weight that is not a number',
        (g) => ({ ...g, links: g.links.map((l, i) => (i === 2 ? { ...l, weight: null } : l)) }),
        /links\[2\]\.weight: expected a finite number, got null/,
      ],
    ];
    for (const [what, mutate, re] of cases)
      assert.throws(
        () => checkGraphFile(mutate(handGraph()), 'g.json'),
        (e: Error) => e.message.startsWith('g.json: ') && re.test(e.message),
        what,
      );
    // Integer layers (as older files write them) are read as strings.
    const g = handGraph();
    const numeric = checkGraphFile({ ...g, nodes: g.nodes.map((n) => (n.layer === 'E' ? n : { ...n, layer: Number(n.layer) })) }, 'g.json');
    assert.deepEqual(
      numeric.nodes.map((n) => n.layer),
      g.nodes.map((n) => n.layer),
    );
  });

  it('refuses unreadable files, non-JSON and two files with one id when the server is built', () => {
    const notJson = join(dir, 'bad.json');
    writeFileSync(notJson, '{"metadata": ');
    assert.throws(() => new GraphStore([notJson]), new RegExp(`^Error: ${notJson.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not JSON`));
    assert.throws(() => new GraphStore([join(dir, 'missing.json')]), /missing\.json: cannot read the graph file/);
    const copy = writeGraph(dir, 'copy.json', handGraph());
    assert.throws(() => new GraphStore([file, copy]), /copy\.json: its graph id 'hand-induction' is that of .*hand\.json too/);
    // Without a usable slug the file name is the id.
    const g = handGraph();
    const noSlug = writeGraph(dir, 'other_graph.json', { ...g, metadata: { ...g.metadata, slug: 'has spaces' } });
    assert.deepEqual(
      new GraphStore([noSlug]).list().map((s) => s.id),
      ['other_graph'],
    );
    assert.throws(() => createServer({ model: tinyRandomModel(1), webRoot: null, graphFiles: [notJson] }), /bad\.json: not JSON/);
  });
});

describe('computing graphs and intervening (serve --transcoders)', { timeout: 120_000 }, () => {
  let dir: string;
  let app: FastifyInstance;
  const model = tinyRandomModel(3);
  const TOKENS = [1, 5, 7, 2, 9, 4];

  before(async () => {
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(ROOT, '.tmp', 'graph-tc-'));
    randomPltSaes(model, 11).forEach((sae, l) => saveSae(sae, join(dir, `layer_${l}`)));
    app = createServer({ model, webRoot: null, transcodersDir: dir });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Polls a job until it is no longer running. */
  async function finished(jobId: string): Promise<{ status: string; result?: unknown; error?: unknown }> {
    for (let i = 0; i < 1200; i++) {
      const r = (await app.inject({ url: `/api/jobs/${jobId}` })).json() as { status: string; result?: unknown };
      if (r.status !== 'running') return r;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`job ${jobId} still running after 60 s`);
  }

  it('POST /api/graph computes the graph attribute + pruneGraph + graphToJson compute for the same input', async () => {
    const start = await app.inject({
      method: 'POST',
      url: '/api/graph',
      payload: { prompt: TOKENS, nodeThreshold: 0.8, edgeThreshold: 0.98 },
    });
    assert.equal(start.statusCode, 202, start.body);
    const { jobId, total } = start.json() as { jobId: string; total: number };
    assert.equal(total, 3);
    const job = await finished(jobId);
    assert.equal(job.status, 'done', JSON.stringify(job));
    const summary = job.result as { id: string; nodes: number; links: number; source: string };
    assert.equal(summary.id, jobId);
    assert.equal(summary.source, 'computed');
    const served = (await app.inject({ url: `/api/graphs/${jobId}` })).json() as GraphFile;

    const g = attribute(model, TOKENS, loadTracingTranscoders(dir));
    const want = graphToJson(g, pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 }), {});
    assert.equal(summary.nodes, want.nodes.length);
    assert.equal(summary.links, want.links.length);
    assert.deepEqual(
      served.nodes.map((n) => n.node_id),
      want.nodes.map((n) => n.node_id),
    );
    const key = (l: { source: string; target: string }) => `${l.source}>${l.target}`;
    assert.deepEqual(served.links.map(key), want.links.map(key));
    served.links.forEach((l, i) => assert.ok(Math.abs(l.weight - want.links[i]!.weight) <= 1e-5 * (1 + Math.abs(l.weight)), key(l)));
    // The logit nodes: the same tokens and probabilities.
    const logits = (ns: { feature_type: string; feature: number | null; token_prob?: number }[]) =>
      ns.filter((n) => n.feature_type === 'logit').map((n) => [n.feature, Number(n.token_prob!.toFixed(5))]);
    assert.deepEqual(logits(served.nodes), logits(want.nodes));
    const list = (await app.inject({ url: '/api/graphs' })).json() as GraphList;
    assert.equal(list.canCompute, true);
    assert.ok(list.graphs.some((s) => s.id === jobId && s.source === 'computed'));
  });

  it('POST /api/graph/intervene returns the top logits before and after, as intervene() computes them', async () => {
    const g = attribute(model, TOKENS, loadTracingTranscoders(dir));
    // The most active feature at the last position.
    const nActive = g.activationValues.length;
    let best = -1;
    for (let a = 0; a < nActive; a++)
      if (g.activeFeatures[3 * a + 1] === TOKENS.length - 1 && (best < 0 || g.activationValues[a]! > g.activationValues[best]!)) best = a;
    assert.ok(best >= 0, 'a feature is active at the last position');
    const f = { layer: g.activeFeatures[3 * best]!, pos: g.activeFeatures[3 * best + 1]!, feature: g.activeFeatures[3 * best + 2]! };
    const res = await app.inject({
      method: 'POST',
      url: '/api/graph/intervene',
      payload: { prompt: TOKENS, features: [{ layer: f.layer, feature: f.feature, pos: [f.pos], scale: 0 }], topK: 5 },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as InterveneResult;
    const r = intervene(model, TOKENS, loadTracingTranscoders(dir), [
      { layer: f.layer, feature: f.feature, positions: [f.pos], op: 'zero' },
    ]);
    const top = (logits: Tensor) => {
      const p = logits
        .index([0, TOKENS.length - 1])
        .softmax(-1)
        .dataSync() as Float32Array;
      return [...p.keys()]
        .sort((a, b) => p[b]! - p[a]!)
        .slice(0, 5)
        .map((t) => [t, Number(p[t]!.toPrecision(6))]);
    };
    const near = (got: TokenProb[], want: number[][]) => {
      assert.deepEqual(
        got.map((t) => t.token),
        want.map((w) => w[0]),
      );
      got.forEach((t, i) => assert.ok(Math.abs(t.prob! - want[i]![1]!) < 1e-5, `${t.prob} vs ${want[i]![1]}`));
    };
    near(body.before, top(r.cleanLogits));
    near(body.after, top(r.logits));
    assert.notDeepEqual(body.before, body.after);
    const bad = await app.inject({
      method: 'POST',
      url: '/api/graph/intervene',
      payload: { prompt: TOKENS, features: [{ layer: 0, feature: 0, pos: [6] }] },
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /features\[0\]\.pos: 6 is outside the prompt's 6 positions/);
  });

  it('refuses a transcoder directory that does not exist when the server is built', () => {
    assert.throws(() => createServer({ model, webRoot: null, transcodersDir: join(dir, 'nope') }), /nope: not a directory/);
  });

  it("checks the transcoders' cfg.json files against the model when built, and their weights (in the worker) before it is ready", async () => {
    const bad = mkdtempSync(join(ROOT, '.tmp', 'graph-tc-bad-'));
    let broken: FastifyInstance | null = null;
    try {
      cpSync(dir, bad, { recursive: true });
      // A model one layer deeper than the transcoders: refused from the configs alone.
      const deeper = tinyRandomModel(3, { nLayers: model.cfg.nLayers + 1 });
      assert.throws(
        () => createServer({ model: deeper, webRoot: null, transcodersDir: bad }),
        new RegExp(`the transcoders cover ${model.cfg.nLayers} layers, the model has ${model.cfg.nLayers + 1}`),
      );
      // A weight file cut short: the configs pass, the worker's load is refused before the server is ready.
      const weights = join(bad, 'layer_0', 'sae_weights.safetensors');
      writeFileSync(weights, readFileSync(weights).subarray(0, 40));
      broken = createServer({ model, webRoot: null, transcodersDir: bad });
      await assert.rejects(async () => broken!.ready(), /layer_0\/sae_weights\.safetensors/);
      // serve() does not listen then, and stops the server it built.
      await assert.rejects(serve({ model, webRoot: null, transcodersDir: bad, port: 0, print: null }), /layer_0\/sae_weights\.safetensors/);
    } finally {
      await broken?.close().catch(() => {});
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
