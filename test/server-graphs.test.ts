/**
 * The graph endpoints of the server: graph files opened with `graphFiles` (serve --graph) are
 * listed and served as written; a bad file is refused when the server is built, naming the file,
 * the field and the problem; computing a graph or intervening without transcoders is refused
 * with a message saying so, after the body's schema is checked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../src/server/app.js';
import { checkGraphFile, GraphStore } from '../src/server/graphs.js';
import { tinyRandomModel } from './tiny-models.js';
import { handGraph, writeGraph } from './graph-fixture.js';

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
