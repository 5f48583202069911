/**
 * The Graph view in a real browser, against the real `glassbox serve --graph FILE.json` (the
 * CLI, in its own process, on the default model) with a graph file written by hand
 * (test/graph-fixture.ts): the layout (one node per JSON node, rows by layer with embeddings at
 * the bottom and logits at the top, columns by position), hover and click showing exactly the
 * JSON's links of a node, pins and supernodes written to the URL and restored from it in a new
 * page, and an intervention refused as the server words it (this server has no transcoders).
 * With transcoders (and their feature stores, `glassbox clt features`): a prompt traced into the
 * graph the library computes, an intervention from the pane, and a feature node's pane showing
 * the numbers GET /api/graph/features serves (contexts, histogram, logit effects, within 1e-4).
 * Screenshots go to test-artifacts/screenshots (or $E2E_SCREENSHOTS).
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH); without it these tests fail.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildWeb, CHROMIUM_PATH, launchChromium, openPage, ROOT, screenshot, until, WEB_DIST, type TrackedPage } from './e2e/harness.js';
import { bigGraph, handGraph, writeGraph } from './graph-fixture.js';
import { randomPltSaes } from './circuits-helpers.js';
import { loadModel } from '../src/model/index.js';
import { saveSae } from '../src/sae/formats.js';
import { attribute, graphToJson, intervene, pruneGraph } from '../src/circuits/index.js';
import { loadTracingTranscoders } from '../src/circuits/load-transcoders.js';
import { collectTranscoderFeatures, saveTranscoderFeatureStores } from '../src/sae/clt/features.js';
import type { FeaturePageResult } from '../src/server/schemas.js';

const GRAPH = handGraph();
const SLUG = GRAPH.metadata.slug;
const BIG = bigGraph();

/** `glassbox serve default --graph FILE --port 0` in its own process; resolves with its URL. */
async function serveCli(...flags: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'serve', 'default', '--port', '0', '--web', WEB_DIST, ...flags],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const stop = () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(kill);
        done();
      });
      child.kill('SIGTERM');
    });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the server printed no URL in 60 s:\n${stderr}`)), 60_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (code ${code}) before listening:\n${stderr}`));
      });
    });
    return { url, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

const text = async (page: Page, testId: string) => ((await page.getByTestId(testId).first().textContent()) ?? '').trim();

test('Chromium is installed for the browser tests', () => {
  assert.ok(
    existsSync(CHROMIUM_PATH),
    `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install chromium\` (or set CHROMIUM_PATH)`,
  );
});

describe('Graph view in a browser', { timeout: 180_000 }, () => {
  let dir: string;
  let server: { url: string; stop(): Promise<void> };
  let browser: Browser;
  let context: BrowserContext;
  const pages: TrackedPage[] = [];

  before(async () => {
    browser = await launchChromium();
    buildWeb();
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(ROOT, '.tmp', 'e2e-graph-'));
    server = await serveCli('--graph', writeGraph(dir, 'hand.json', GRAPH), '--graph', writeGraph(dir, 'big.json', BIG));
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(hash: string): Promise<Page> {
    const tracked = await openPage(context, new URL(hash, server.url).toString());
    pages.push(tracked);
    await tracked.page.locator('[data-testid="graph-explorer"][data-ready="true"]').waitFor();
    return tracked.page;
  }

  async function done(allowed: RegExp[] = []): Promise<void> {
    const errors = pages.flatMap((p) => p.errors).filter((e) => !allowed.some((re) => re.test(e)));
    for (const p of pages.splice(0)) await p.page.close();
    assert.deepEqual(errors, [], 'the pages logged errors');
  }

  const node = (page: Page, id: string) => page.locator(`[data-testid="graph-node"][data-node-id="${id}"]`);
  /** The links of the JSON into or out of `id`, as `source>target:weight`, sorted. */
  const jsonLinks = (id: string) =>
    GRAPH.links
      .filter((l) => l.source === id || l.target === id)
      .map((l) => `${l.source}>${l.target}:${l.weight}`)
      .sort();

  it('lays the graph out by layer (embeddings at the bottom, logits on top) and position', async () => {
    const page = await open(`#/graph?slug=${SLUG}`);
    assert.equal(await text(page, 'graph-node-count'), String(GRAPH.nodes.length));
    assert.equal(await text(page, 'graph-link-count'), String(GRAPH.links.length));
    const drawn = await page.getByTestId('graph-node').evaluateAll((els) =>
      els.map((e) => ({
        id: e.getAttribute('data-node-id')!,
        layer: e.getAttribute('data-layer')!,
        ctx: Number(e.getAttribute('data-ctx')),
        x: Number(e.getAttribute('data-x')),
        y: Number(e.getAttribute('data-y')),
      })),
    );
    assert.deepEqual(drawn.map((d) => d.id).sort(), GRAPH.nodes.map((n) => n.node_id).sort());
    const byId = new Map(drawn.map((d) => [d.id, d]));
    for (const n of GRAPH.nodes) {
      assert.equal(byId.get(n.node_id)!.layer, n.layer, n.node_id);
      assert.equal(byId.get(n.node_id)!.ctx, n.ctx_idx, n.node_id);
    }
    // Rows: one y per row; embeddings lowest on screen (largest y), then layers 0..3, logits on top.
    const rowOf = (n: (typeof GRAPH.nodes)[number]) => (n.layer === 'E' ? -1 : n.feature_type === 'logit' ? 99 : Number(n.layer));
    const rowY = new Map<number, number>();
    for (const n of GRAPH.nodes) {
      const y = byId.get(n.node_id)!.y;
      const r = rowOf(n);
      if (rowY.has(r)) assert.equal(y, rowY.get(r), `${n.node_id} is in the row of layer ${n.layer}`);
      rowY.set(r, y);
    }
    const rows = [...rowY.keys()].sort((a, b) => a - b);
    assert.deepEqual(rows, [-1, 0, 1, 2, 3, 99]);
    for (let i = 1; i < rows.length; i++)
      assert.ok(rowY.get(rows[i]!)! < rowY.get(rows[i - 1]!)!, `row ${rows[i]} is above row ${rows[i - 1]}`);
    // Columns: every node of position p left of every node of position p + 1.
    for (const a of GRAPH.nodes)
      for (const b of GRAPH.nodes)
        if (a.ctx_idx < b.ctx_idx) assert.ok(byId.get(a.node_id)!.x < byId.get(b.node_id)!.x, `${a.node_id} left of ${b.node_id}`);
    // Two features in one cell sit side by side, the more influential first.
    assert.ok(byId.get('3_1_3')!.x < byId.get('3_8_3')!.x);
    const tokens = await page.getByTestId('graph-token').allTextContents();
    assert.deepEqual(tokens, ['<bos>', 'A', '·B', '·A']);
    await screenshot(page, 'graph');
    await done();
  });

  it('hover shows a node’s links and click opens its pane with the JSON’s incoming and outgoing links', async () => {
    const page = await open(`#/graph?slug=${SLUG}`);
    await node(page, '2_4_3').hover();
    await page.getByTestId('graph-hover').waitFor();
    assert.equal(await page.getByTestId('graph-hover').getAttribute('data-node-id'), '2_4_3');
    assert.equal(await text(page, 'graph-hover-counts'), '3 in · 2 out');
    const focus = await page
      .getByTestId('graph-focus-link')
      .evaluateAll((els) =>
        els.map((e) => `${e.getAttribute('data-source')}>${e.getAttribute('data-target')}:${e.getAttribute('data-weight')}`),
      );
    assert.deepEqual(focus.sort(), jsonLinks('2_4_3'));

    await node(page, '1_2_3').click();
    await until('the clicked node in the URL', () => page.url().includes('clickedId=1_2_3'));
    const pane = page.getByTestId('graph-node-pane');
    await pane.waitFor();
    assert.equal(await text(page, 'graph-pane-id'), '1_2_3');
    assert.equal(await text(page, 'graph-pane-layer'), '1');
    assert.equal(await text(page, 'graph-pane-pos'), '3');
    assert.equal(await text(page, 'graph-pane-feature'), '2');
    assert.equal(await text(page, 'graph-pane-activation'), '3.0000');
    assert.equal(await text(page, 'graph-pane-influence'), '0.6000');
    const rows = async (testId: string) =>
      page
        .getByTestId(testId)
        .locator('[data-testid="graph-edge-row"]')
        .evaluateAll((els) => els.map((e) => [e.getAttribute('data-node-id'), Number(e.getAttribute('data-weight'))]));
    // Largest |weight| first.
    assert.deepEqual(await rows('graph-incoming'), [
      ['0_5_1', 2.0],
      ['0_7_3', 0.5],
    ]);
    assert.deepEqual(await rows('graph-outgoing'), [['2_4_3', 1.75]]);
    // Following a link selects its other end.
    await page.getByTestId('graph-outgoing').locator('[data-testid="graph-edge-row"]').first().click();
    await until('the followed node in the URL', () => page.url().includes('clickedId=2_4_3'));
    assert.deepEqual(await rows('graph-incoming'), [
      ['1_2_3', 1.75],
      ['1_9_2', 1.0],
      ['1_-1_3', -0.25],
    ]);
    await done();
  });

  it('pins nodes and groups them into a supernode, in the URL, and a new page restores it all', async () => {
    const page = await open(`#/graph?slug=${SLUG}`);
    for (const id of ['1_2_3', '2_4_3', '3_1_3']) {
      await node(page, id).click();
      await until(`${id} in the pane`, async () => (await text(page, 'graph-pane-id')) === id);
      await page.getByTestId('graph-pin').click();
      await until(`${id} pinned`, () => decodeURIComponent(page.url()).includes(id) && page.url().includes('pinnedIds='));
    }
    await page.locator('[data-testid="graph-pinned-check"][data-node-id="1_2_3"]').check();
    await page.locator('[data-testid="graph-pinned-check"][data-node-id="2_4_3"]').check();
    await page.getByTestId('graph-supernode-label').fill('induction');
    await page.getByTestId('graph-group').click();
    await until('the supernode in the URL', () => page.url().includes('supernodes='));
    const params = new URLSearchParams(new URL(page.url()).hash.split('?')[1]);
    assert.equal(params.get('pinnedIds'), '1_2_3,2_4_3,3_1_3');
    assert.deepEqual(JSON.parse(params.get('supernodes')!), [['induction', '1_2_3', '2_4_3']]);
    // supernode -> 3_1_3 carries 2_4_3 -> 3_1_3; the link inside the supernode is not shown.
    const subLinks = async (p: Page) =>
      p
        .getByTestId('graph-sub-link')
        .evaluateAll((els) =>
          els.map((e) => `${e.getAttribute('data-source')}>${e.getAttribute('data-target')}:${e.getAttribute('data-weight')}`),
        );
    assert.deepEqual(await subLinks(page), ['supernode:0>3_1_3:2.5']);

    // A richer state, from a link alone.
    const pinnedIds = ['0_5_1', '0_7_3', '1_2_3', '2_4_3', '3_1_3', '3_8_3', '5_11_3'];
    const groups = [
      ['early A', '0_5_1', '0_7_3'],
      ['induction', '1_2_3', '2_4_3'],
    ];
    const q = new URLSearchParams({ slug: SLUG, clickedId: '3_8_3', pinnedIds: pinnedIds.join(','), supernodes: JSON.stringify(groups) });
    const restored = await open(`#/graph?${q.toString()}`);
    await restored.getByTestId('graph-node-pane').waitFor();
    assert.equal(await text(restored, 'graph-pane-id'), '3_8_3');
    const pinnedDrawn = await restored
      .locator('[data-testid="graph-node"].pinned')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-node-id')));
    assert.deepEqual(pinnedDrawn.sort(), [...pinnedIds].sort());
    const supers = await restored
      .getByTestId('graph-supernode')
      .evaluateAll((els) => els.map((e) => [e.getAttribute('data-label'), e.getAttribute('data-members')]));
    assert.deepEqual(supers, [
      ['early A', '0_5_1,0_7_3'],
      ['induction', '1_2_3,2_4_3'],
    ]);
    const singles = await restored.getByTestId('graph-pinned').evaluateAll((els) => els.map((e) => e.getAttribute('data-members')));
    assert.deepEqual(singles.sort(), ['3_1_3', '3_8_3', '5_11_3']);
    // The subgraph's links: the JSON's summed between groups, built here by hand.
    const owner = (id: string) => {
      const k = groups.findIndex((g) => g.slice(1).includes(id));
      return k >= 0 ? `supernode:${k}` : pinnedIds.includes(id) ? id : null;
    };
    const sums = new Map<string, number>();
    for (const l of GRAPH.links) {
      const s = owner(l.source);
      const t = owner(l.target);
      if (s && t && s !== t) sums.set(`${s}>${t}`, (sums.get(`${s}>${t}`) ?? 0) + l.weight);
    }
    const expected = [...sums].map(([k, w]) => `${k}:${w}`).sort();
    assert.deepEqual((await subLinks(restored)).sort(), expected);
    assert.ok(expected.includes('supernode:0>supernode:1:2.5'), 'early A -> induction sums 2.0 + 0.5');
    await screenshot(restored, 'graph-subgraph');
    await done();
  });

  it('draws a graph of ~1000 nodes and 10k links, and hovers in it', async (t) => {
    const t0 = Date.now();
    const page = await open(`#/graph?slug=big`);
    const loaded = Date.now() - t0;
    assert.equal(await text(page, 'graph-node-count'), String(BIG.nodes.length));
    assert.equal(await text(page, 'graph-link-count'), String(BIG.links.length));
    assert.equal(await page.getByTestId('graph-node').count(), BIG.nodes.length);
    // The node with the most links: hovering it draws exactly its links.
    const degree = new Map<string, number>();
    for (const l of BIG.links) for (const end of [l.source, l.target]) degree.set(end, (degree.get(end) ?? 0) + 1);
    const [busiest, count] = [...degree].sort((a, b) => b[1] - a[1])[0]!;
    const t1 = Date.now();
    await page.locator(`[data-testid="graph-node"][data-node-id="${busiest}"]`).hover();
    await until('the hovered links', async () => (await page.getByTestId('graph-focus-link').count()) === count);
    const hovered = Date.now() - t1;
    // Timings are reported, not asserted (the machine is shared).
    t.diagnostic(
      `big graph (${BIG.nodes.length} nodes, ${BIG.links.length} links): page + graph loaded in ${loaded} ms; hover of a node with ${count} links drawn in ${hovered} ms`,
    );
    await screenshot(page, 'graph-big');
    await done();
  });

  it('an intervention from the pane is refused as the server words it (no transcoders); no feature store is asked for', async () => {
    const page = await open(`#/graph?slug=${SLUG}&clickedId=3_1_3`);
    assert.equal(await page.getByTestId('graph-no-transcoders').count(), 1);
    // No feature stores either: the pane says how to build them, and asks the server for no page.
    assert.match(await text(page, 'graph-feature-no-store'), /glassbox clt features DIR/);
    assert.equal(await page.getByTestId('graph-feature-page').count(), 0);
    await page.getByTestId('graph-intervene-run').click();
    const error = page.getByTestId('graph-intervene').getByTestId('api-error');
    await error.waitFor();
    assert.equal(await error.getAttribute('data-status'), '400');
    assert.match(await text(page, 'api-error-message'), /no transcoders/);
    await done([/status of 400/]);
  });
});

describe('Graph view tracing a prompt on the default model (serve --transcoders)', { timeout: 300_000 }, () => {
  let dir: string;
  let server: { url: string; stop(): Promise<void> };
  let browser: Browser;
  let context: BrowserContext;
  const pages: TrackedPage[] = [];
  const PROMPT = 'The cat sat on the mat, and the cat';
  /** The slug of the graph the first test traces. */
  let traced = '';

  before(async () => {
    browser = await launchChromium();
    buildWeb();
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(ROOT, '.tmp', 'e2e-graph-tc-'));
    // Random per-layer transcoders (12 features a layer) for the default model, in SAELens layout.
    const model = await loadModel('default');
    randomPltSaes(model, 11).forEach((sae, l) => saveSae(sae, join(dir, `layer_${l}`)));
    // Their feature stores, over a little text (what `glassbox clt features DIR` writes).
    const text = 'The cat sat on the mat. The dog sat on the log. A cat and a dog sat on the mat, and the cat slept. ';
    const corpus = Int32Array.from(model.tokenizer!.encode(text.repeat(12), { prependBos: false }));
    const stores = collectTranscoderFeatures(model, loadTracingTranscoders(dir), corpus, {
      contextSize: 32,
      batchSize: 4,
      topK: 5,
      before: 4,
      after: 2,
      logitEffects: 5,
    });
    saveTranscoderFeatureStores(stores, dir);
    server = await serveCli('--transcoders', dir);
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('traces a prompt through POST /api/graph into the graph the library computes, and intervenes from the pane', async () => {
    const tracked = await openPage(context, new URL('#/graph', server.url).toString());
    pages.push(tracked);
    const page = tracked.page;
    await page.getByTestId('graph-none').waitFor();
    assert.equal(await page.getByTestId('graph-no-transcoders').count(), 0);
    await page.getByTestId('graph-prompt').fill(PROMPT);
    await page.getByTestId('graph-run').click();
    await page.locator('[data-testid="graph-explorer"][data-ready="true"]').waitFor({ timeout: 120_000 });
    const slug = new URLSearchParams(new URL(page.url()).hash.split('?')[1]).get('slug')!;
    assert.match(slug, /^[0-9a-f-]{36}$/);
    traced = slug;
    assert.equal(new URLSearchParams(new URL(page.url()).hash.split('?')[1]).get('prompt'), PROMPT);
    const served = (await (await fetch(new URL(`/api/graphs/${slug}`, server.url))).json()) as {
      metadata: { prompt_token_ids: number[] };
      nodes: { node_id: string; feature_type: string; layer: string; ctx_idx: number; activation: number | null }[];
    };
    const ids = served.metadata.prompt_token_ids;

    // The library on the same tokens, in this process.
    const model = await loadModel('default');
    const tc = loadTracingTranscoders(dir);
    const g = attribute(model, ids, tc);
    const want = graphToJson(g, pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 }), {});
    assert.equal(await text(page, 'graph-node-count'), String(want.nodes.length));
    assert.equal(await text(page, 'graph-link-count'), String(want.links.length));
    assert.equal(await page.getByTestId('graph-node').count(), want.nodes.length);
    assert.deepEqual(served.nodes.map((n) => n.node_id).sort(), want.nodes.map((n) => n.node_id).sort());
    await screenshot(page, 'graph-traced');

    // Zero the most active feature node at the last position, from its pane.
    const last = ids.length - 1;
    const feature = served.nodes
      .filter((n) => n.feature_type === 'cross layer transcoder' && n.ctx_idx === last)
      .sort((a, b) => (b.activation ?? 0) - (a.activation ?? 0))[0];
    assert.ok(feature, 'a feature node at the last position');
    await page.locator(`[data-testid="graph-node"][data-node-id="${feature.node_id}"]`).click();
    await page.getByTestId('graph-intervene').waitFor();
    await page.getByTestId('graph-intervene-scale').fill('0');
    await page.getByTestId('graph-intervene-run').click();
    await page.getByTestId('graph-intervene-result').waitFor({ timeout: 60_000 });
    const rows = await page
      .getByTestId('graph-intervene-row')
      .evaluateAll((els) => els.map((e) => [e.getAttribute('data-before')!, e.getAttribute('data-after')!]));
    const index = Number(feature.node_id.split('_')[1]);
    const r = intervene(model, ids, tc, [{ layer: Number(feature.layer), feature: index, positions: [last], op: 'zero' }]);
    const top = (logits: ReturnType<typeof intervene>['logits']) => {
      const p = logits.index([0, last]).softmax(-1).dataSync() as Float32Array;
      return [...p.keys()]
        .sort((a, b) => p[b]! - p[a]!)
        .slice(0, 10)
        .map((t) => [t, p[t]!] as const);
    };
    const check = (got: string[], want: (readonly [number, number])[]) => {
      assert.deepEqual(
        got.map((s) => Number(s.split(':')[0])),
        want.map((w) => w[0]),
      );
      got.forEach((s, i) => assert.ok(Math.abs(Number(s.split(':')[1]) - want[i]![1]) < 1e-5, `${s} vs ${want[i]![1]}`));
    };
    check(
      rows.map((x) => x[0]),
      top(r.cleanLogits),
    );
    check(
      rows.map((x) => x[1]),
      top(r.logits),
    );
    const errors = pages.flatMap((p) => p.errors);
    for (const p of pages.splice(0)) await p.page.close();
    assert.deepEqual(errors, []);
  });
  it("a feature node's pane shows its contexts, histogram and logit effects from the feature store, as the API serves them", async () => {
    assert.ok(traced, 'the trace test ran first');
    const graph = (await (await fetch(new URL(`/api/graphs/${traced}`, server.url))).json()) as {
      nodes: { node_id: string; feature_type: string; layer: string; activation: number | null }[];
    };
    const list = (await (await fetch(new URL('/api/graphs', server.url))).json()) as { featureStore: boolean };
    assert.equal(list.featureStore, true);
    // The most active feature node whose feature fired on the store's corpus.
    const candidates = graph.nodes
      .filter((n) => n.feature_type === 'cross layer transcoder')
      .sort((a, b) => (b.activation ?? 0) - (a.activation ?? 0));
    let node: (typeof candidates)[number] | undefined;
    let want: FeaturePageResult | undefined;
    for (const n of candidates) {
      const r = (await (
        await fetch(new URL(`/api/graph/features/${n.layer}/${n.node_id.split('_')[1]}`, server.url))
      ).json()) as FeaturePageResult;
      if (r.fireCount! > 0) {
        [node, want] = [n, r];
        break;
      }
    }
    assert.ok(node && want, 'a feature node whose feature fired on the store');
    const tracked = await openPage(context, new URL(`#/graph?slug=${traced}&clickedId=${node.node_id}`, server.url).toString());
    pages.push(tracked);
    const page = tracked.page;
    const pane = page.getByTestId('graph-feature-page');
    await pane.waitFor({ timeout: 60_000 });
    assert.equal(await text(page, 'graph-feature-fires'), String(want.fireCount));

    // Contexts: every token's id and activation.
    const contexts = await pane
      .getByTestId('graph-feature-context')
      .evaluateAll((els) =>
        els.map((e) =>
          [...e.querySelectorAll('[data-testid="act-tok"]')].map((t) => [Number(t.getAttribute('data-token')), t.getAttribute('data-act')]),
        ),
      );
    const wantContexts = want.groups.flatMap((g) => g.contexts);
    assert.equal(contexts.length, wantContexts.length);
    contexts.forEach((c, i) => {
      const w = wantContexts[i]!.tokens;
      assert.deepEqual(
        c.map((t) => t[0]),
        w.map((t) => t.id),
      );
      c.forEach(([, act], j) =>
        assert.ok(Math.abs(Number(act || 0) - (w[j]!.act ?? 0)) <= 1e-4, `context ${i} token ${j}: ${act} vs ${w[j]!.act}`),
      );
    });

    // Histogram: the non-empty range of bins, with their counts.
    const bins = await pane
      .getByTestId('hist-bin')
      .evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-bin')), Number(e.getAttribute('data-count'))]));
    assert.ok(bins.length > 0);
    bins.forEach(([b, c]) => assert.equal(c, want!.histogram!.counts[b!]));
    assert.equal(
      bins.reduce((a, [, c]) => a + c!, 0),
      want.histogram!.counts.reduce((a, c) => a + c, 0),
    );

    // Logit effects: the promoted and suppressed tokens and their values.
    for (const [testId, side] of [
      ['logits-pos', want.logits!.positive],
      ['logits-neg', want.logits!.negative],
    ] as const) {
      const rows = await pane
        .getByTestId(testId)
        .getByTestId('logit-row')
        .evaluateAll((els) =>
          els.map((e) => [
            Number(e.getAttribute('data-token')),
            Number(e.querySelector('[data-testid="logit-value"]')!.getAttribute('data-value')),
          ]),
        );
      assert.deepEqual(
        rows.map((r) => r[0]),
        side.map((t) => t.id),
      );
      rows.forEach(([, v], i) => assert.ok(Math.abs(v! - side[i]!.value!) <= 1e-4, `${testId} ${i}: ${v} vs ${side[i]!.value}`));
    }
    await screenshot(page, 'graph-feature-pane');
    const errors = pages.flatMap((p) => p.errors);
    for (const p of pages.splice(0)) await p.page.close();
    assert.deepEqual(errors, []);
  });

  it('Cancel stops a trace mid-attribution: no graph is made, and the next trace runs', async () => {
    const graphs = async () => ((await (await fetch(new URL('/api/graphs', server.url))).json()) as { graphs: unknown[] }).graphs.length;
    const before = await graphs();
    const tracked = await openPage(context, new URL('#/graph', server.url).toString());
    pages.push(tracked);
    const page = tracked.page;
    // A long prompt (about 150 tokens): thousands of rows, so the cancel lands between batches.
    await page.getByTestId('graph-prompt').fill(`${PROMPT}. `.repeat(15).trim());
    await page.getByTestId('graph-run').click();
    await page.locator('[data-testid="graph-cancel"]:enabled').click();
    await page.getByTestId('graph-cancelled').waitFor({ timeout: 120_000 });
    assert.equal(await graphs(), before, 'a cancelled trace lists no graph');
    // The worker answers the next job: a short trace completes.
    await page.getByTestId('graph-prompt').fill(PROMPT);
    await page.getByTestId('graph-run').click();
    // (the explorer may already show an earlier graph, so wait for the list to grow, then for the page to open the new one)
    const deadline = Date.now() + 120_000;
    while ((await graphs()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(await graphs(), before + 1);
    const list = (await (await fetch(new URL('/api/graphs', server.url))).json()) as { graphs: { id: string }[] };
    const newest = list.graphs.at(-1)!.id;
    await page.waitForURL((url) => url.hash.includes(`slug=${newest}`), { timeout: 60_000 });
    await page.locator('[data-testid="graph-explorer"][data-ready="true"]').waitFor({ timeout: 60_000 });
    const errors = pages.flatMap((p) => p.errors);
    for (const p of pages.splice(0)) await p.page.close();
    assert.deepEqual(errors, []);
  });
});
