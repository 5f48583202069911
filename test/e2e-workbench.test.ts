/**
 * The workbench (web/) in a real browser, against the real server (src/server) on the default
 * model: every view loads, takes a prompt from the keyboard, shows the numbers the JSON API
 * computes for the same request, and restores its whole state from its URL in a new page.
 * Patching shows its progress to the end and can be cancelled; API errors are shown as the
 * server words them. A screenshot of each view goes to test-artifacts/screenshots (or
 * $E2E_SCREENSHOTS).
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH); without it these tests fail.
 */
import { after, before, describe, it, test } from 'node:test';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import type { BrowserContext, Browser, Page } from 'playwright-core';
import {
  buildWeb,
  CHROMIUM_PATH,
  launchChromium,
  openPage,
  screenshot,
  startServer,
  until,
  WEB_DIST,
  type ServerProcess,
  type TrackedPage,
} from './e2e/harness.js';

const PROMPT = 'Then Ahab and Starbuck went on deck, and Starbuck said to';
const CORRUPTED = 'Then Ahab and Starbuck went on deck, and Ahab said to';
const ANSWER = ' Ahab';
const WRONG = ' Starbuck';
// The workbench's defaults (web/src/ui.tsx, PatchingView.tsx): an induction pair the default model solves.
const DEFAULT_CLEAN = 'Then Queequeg met Starbuck on deck, and later Queequeg met';
const DEFAULT_CORRUPTED = 'Then Queequeg met Stubb on deck, and later Queequeg met';
const DEFAULT_ANSWER = ' Starbuck';
const DEFAULT_WRONG = ' Stubb';

type Json = Record<string, unknown>;
interface TokenProb {
  token: number;
  str: string | null;
  prob: number;
}

/** The web app's rendering of a token (web/src/ui.tsx showTok). */
function showTok(s: string | null, id?: number): string {
  if (s === null) return `#${id}`;
  if (s === '') return '∅';
  return s.replace(/ /g, '·').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}
const fmtProb = (p: number) => `${(p * 100).toFixed(2)}%`;

// Its own test, so that a machine without Chromium counts a failure (not only cancelled tests).
test('Chromium is installed for the browser tests', () => {
  assert.ok(
    existsSync(CHROMIUM_PATH),
    `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install chromium\` (or set CHROMIUM_PATH)`,
  );
});

describe('workbench in a browser', { timeout: 180_000 }, () => {
  let server: ServerProcess;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  const pages: TrackedPage[] = [];

  before(async () => {
    // Chromium first: without it, fail at once with the fix (no build, no model).
    browser = await launchChromium();
    buildWeb();
    // The server runs in its own process: its model calls block its event loop, not this one's.
    server = await startServer(WEB_DIST, 'default');
    base = server.url;
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
  });

  async function open(url: string): Promise<Page> {
    const tracked = await openPage(context, url);
    pages.push(tracked);
    await tracked.page.getByTestId('model-info').waitFor();
    return tracked.page;
  }

  /** Closes the test's pages; fails if any logged an error other than the expected ones. */
  async function done(allowed: RegExp[] = []): Promise<void> {
    const errors = pages.flatMap((p) => p.errors).filter((e) => !allowed.some((re) => re.test(e)));
    for (const p of pages.splice(0)) await p.page.close();
    assert.deepEqual(errors, [], 'the pages logged errors');
  }

  async function api<T = Json>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(new URL(path, base), {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  }
  const post = async <T = Json>(path: string, body: unknown): Promise<T> => {
    const r = await api<T>('POST', path, body);
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  };

  const text = async (page: Page, testId: string) => ((await page.getByTestId(testId).first().textContent()) ?? '').trim();
  const ready = (page: Page, testId: string) => page.locator(`[data-testid="${testId}"][data-ready="true"]`).waitFor();
  const urlHas = (page: Page, ...parts: string[]) =>
    until(`the URL to have ${parts.join(', ')} (it is ${page.url()})`, () => parts.every((p) => page.url().includes(p)));
  /** Clicks a head link on `page` and checks that the Attention view opens on that head and prompt. */
  const followHeadLink = async (page: Page, link: ReturnType<Page['getByTestId']>, layer: number, head: number, prompt: string) => {
    assert.equal(await link.textContent(), `L${layer}H${head}`);
    await link.click();
    await urlHas(page, '#/attention?', `layer=${layer}`, `head=${head}`);
    await page.getByTestId('attn-selected').waitFor();
    assert.equal(await text(page, 'attn-selected'), `L${layer}H${head}`);
    assert.equal(await page.getByTestId('prompt').inputValue(), prompt);
  };
  const lastNumber = (s: string) => Number(/(-?\d+(?:\.\d+)?)\s*$/.exec(s)?.[1]);

  it('shows the model in the header and a nav bar of the views', async () => {
    const page = await open(base);
    const info = (await api<Json>('GET', '/api/model')).body;
    assert.equal(await text(page, 'model-name'), info.name);
    assert.equal(await text(page, 'model-family'), info.family);
    assert.equal(await text(page, 'model-layers'), String(info.nLayers));
    assert.equal(await text(page, 'model-heads'), String(info.nHeads));
    assert.equal(await text(page, 'model-vocab'), String(info.dVocab));
    assert.equal(await text(page, 'model-ctx'), String(info.nCtx));
    const nav = await page.getByTestId('nav').locator('a').allTextContents();
    assert.deepEqual(nav, ['Prompt', 'Attention', 'Logit lens', 'Attribution', 'Patching', 'Heads', 'Steering', 'Graph']);
    await page.getByTestId('nav-heads').click();
    await page.getByTestId('view-heads').waitFor();
    assert.match(page.url(), /#\/heads$/);
    await page.goBack();
    await page.getByTestId('view-prompt').waitFor();
    await done();
  });

  it('Prompt: chips and per-position top-k with the API probabilities; the URL restores it', async () => {
    const page = await open(`${base}#/prompt`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('topk').fill('4');
    await page.getByTestId('prompt').press('Enter');
    await page.getByTestId('forward-table').waitFor();
    const r = await post<{ tokens: number[]; strTokens: string[]; top: TokenProb[][]; tokenProbs: (number | null)[] }>('/api/forward', {
      prompt: PROMPT,
      topK: 4,
    });

    const chips = await page.getByTestId('token-chips').getByTestId('token-chip').allTextContents();
    assert.deepEqual(
      chips,
      r.strTokens.map((s, i) => `${i}${showTok(s)}`),
    );
    const check = async (p: Page) => {
      for (let pos = 0; pos < r.tokens.length; pos++) {
        const row = p.locator(`[data-testid="forward-row"][data-pos="${pos}"]`);
        assert.deepEqual(
          await row.getByTestId('pred-tok').allTextContents(),
          r.top[pos]!.map((t) => showTok(t.str, t.token)),
          `top tokens at ${pos}`,
        );
        assert.deepEqual(
          await row.getByTestId('pred-prob').allTextContents(),
          r.top[pos]!.map((t) => fmtProb(t.prob)),
          `probabilities at ${pos}`,
        );
      }
    };
    await check(page);
    // The text coloured by each token's probability: the API's numbers in each token's title.
    const probTokens = page.getByTestId('prob-token');
    assert.equal(await probTokens.count(), r.tokens.length);
    assert.equal(await probTokens.nth(0).getAttribute('title'), `0 ${showTok(r.strTokens[0]!)}: nothing predicts the first token`);
    for (let pos = 1; pos < r.tokens.length; pos++) {
      const prob = r.tokenProbs[pos]!;
      assert.equal(
        await probTokens.nth(pos).getAttribute('title'),
        `${pos} ${showTok(r.strTokens[pos]!)}: p = ${fmtProb(prob)}, loss ${(-Math.log(prob)).toFixed(3)}`,
      );
    }
    assert.equal((await page.getByTestId('prob-text').textContent()) ?? '', r.strTokens.join(''));

    // Pick a position: its top-k as a chart, and the choice in the URL.
    await page.locator('[data-testid="token-chip"][data-pos="3"]').click();
    await urlHas(page, 'pos=3');
    assert.match(await text(page, 'forward-detail-title'), /^After position 3 ·Ahab$/);
    await ready(page, 'forward-chart');
    const firstBar = await page.getByTestId('forward-chart').locator('path[aria-label]').first().getAttribute('aria-label');
    assert.ok(firstBar?.includes(`probability: ${r.top[3]![0]!.prob}`), `${firstBar} shows p = ${r.top[3]![0]!.prob}`);
    await screenshot(page, 'prompt');

    const shared = await open(page.url());
    await shared.getByTestId('forward-table').waitFor();
    assert.equal(await shared.getByTestId('prompt').inputValue(), PROMPT);
    assert.equal(await shared.getByTestId('topk').inputValue(), '4');
    assert.equal(await shared.locator('[data-testid="token-chip"][data-pos="3"]').getAttribute('aria-pressed'), 'true');
    await check(shared);
    await done();
  });

  it('Attention: any layer/head, hover readout and tooltip, small multiples that select; the URL restores it', async () => {
    const page = await open(`${base}#/attention`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('prompt').press('Enter');
    await ready(page, 'attn-main');
    await ready(page, 'attn-grid');
    const info = (await api<{ nLayers: number; nHeads: number }>('GET', '/api/model')).body;
    // Small multiples: every head of every layer.
    const gridCells = await page.getByTestId('attn-grid').locator('path[aria-label$=" q13 k0"]').count();
    assert.equal(gridCells, info.nLayers * info.nHeads);

    await page.getByTestId('attn-layer').selectOption('1');
    await page.getByTestId('attn-head').selectOption('2');
    await urlHas(page, 'layer=1', 'head=2');
    assert.equal(await text(page, 'attn-selected'), 'L1H2');
    // The selected head is outlined in the grid, and only it.
    await ready(page, 'attn-grid');
    const outlined = (l: number, h: number) =>
      page.getByTestId('attn-grid').locator(`path[aria-label="L${l}H${h} q13 k0"]`).getAttribute('stroke');
    assert.equal(await outlined(1, 2), '#d1495b');
    assert.notEqual(await outlined(0, 0), '#d1495b');

    // The text view: hover a token, and every token before it shows the selected head's weight from it.
    const pat12 = (await post<{ pattern: number[][][] }>('/api/attention', { prompt: PROMPT, layer: 1, head: 2 })).pattern[0]!;
    const words = page.getByTestId('attn-text-token');
    await words.nth(13).hover();
    await until(
      'the text view to focus token 13',
      async () => (await text(page, 'attn-text-focus')).startsWith('Attention from 13 ') || undefined,
    );
    for (let k = 0; k < (await words.count()); k++)
      assert.equal(await words.nth(k).getAttribute('title'), k <= 13 ? `${k}: ${pat12[13]![k]!.toFixed(4)}` : `${k}`, `token ${k}`);

    /** Hovers (q, k) on the big heatmap and returns the weight the readout shows. */
    const hoverWeight = async (p: Page, q: number, k: number) => {
      await ready(p, 'attn-main');
      return until(`the readout of q${q} k${k}`, async () => {
        await p.getByTestId('attn-main').locator(`path[aria-label="q${q} k${k}"]`).hover();
        const readout = p.getByTestId('attn-hover');
        if ((await readout.getAttribute('data-q')) !== String(q) || (await readout.getAttribute('data-k')) !== String(k)) return undefined;
        return (await readout.textContent()) ?? '';
      });
    };
    const pattern = async (layer: number, head: number) =>
      (await post<{ pattern: number[][][] }>('/api/attention', { prompt: PROMPT, layer, head })).pattern[0]!;

    let pat = await pattern(1, 2);
    let shown = await hoverWeight(page, 13, 3);
    assert.match(shown, /^13 ·to ← 3 ·Ahab: /);
    assert.ok(Math.abs(lastNumber(shown) - pat[13]![3]!) < 6e-5, `${shown} vs ${pat[13]![3]}`);
    // The chart's own tooltip says the same.
    const tooltip = await until('the tooltip', async () => {
      const t = await page.locator('#vg-tooltip-element.visible').textContent();
      return t?.includes('destination') ? t : undefined;
    });
    assert.ok(tooltip.includes(pat[13]![3]!.toFixed(4)), `tooltip ${tooltip} shows ${pat[13]![3]!.toFixed(4)}`);

    // Click a small multiple: it becomes the big one.
    await page.getByTestId('attn-grid').locator('path[aria-label="L2H4 q5 k2"]').click();
    await urlHas(page, 'layer=2', 'head=4');
    assert.equal(await text(page, 'attn-selected'), 'L2H4');
    pat = await pattern(2, 4);
    shown = await hoverWeight(page, 13, 3);
    assert.ok(Math.abs(lastNumber(shown) - pat[13]![3]!) < 6e-5, `${shown} vs ${pat[13]![3]}`);
    await screenshot(page, 'attention');

    const shared = await open(page.url());
    await ready(shared, 'attn-main');
    assert.equal(await text(shared, 'attn-selected'), 'L2H4');
    assert.equal(await shared.getByTestId('attn-layer').inputValue(), '2');
    assert.equal(await shared.getByTestId('attn-head').inputValue(), '4');
    assert.equal(await shared.getByTestId('prompt').inputValue(), PROMPT);
    assert.equal(await hoverWeight(shared, 13, 3), shown);
    await done();
  });

  it('Logit lens: layer x position heatmap; a clicked cell shows its top-k as the API does; the URL restores it', async () => {
    const page = await open(`${base}#/logit-lens`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('prompt').press('Enter');
    await ready(page, 'lens-chart');
    const r = await post<{ labels: string[]; top: TokenProb[][][] }>('/api/logit-lens', { prompt: PROMPT, topK: 5 });
    assert.equal(await page.getByTestId('lens-chart').locator('path[aria-label^="layer "]').count(), r.labels.length * 14);

    const rows = async (p: Page) => ({
      toks: await p.getByTestId('lens-topk').getByTestId('lens-tok').allTextContents(),
      probs: await p.getByTestId('lens-topk').getByTestId('lens-prob').allTextContents(),
    });
    const expected = (li: number, pos: number) => ({
      toks: r.top[li]![pos]!.map((t) => showTok(t.str, t.token)),
      probs: r.top[li]![pos]!.map((t) => fmtProb(t.prob)),
    });
    // Before a click: the model's output at the last position.
    assert.deepEqual(await rows(page), expected(r.labels.length - 1, 13));

    await page.getByTestId('lens-chart').locator('path[aria-label="layer 2 pos 5"]').click({ force: true });
    await urlHas(page, 'cell=2%2C5');
    await page.locator('[data-testid="lens-topk"][data-li="2"][data-pos="5"]').waitFor();
    assert.equal(await text(page, 'lens-topk-title'), 'L2 resid_pre, position 5 ·Starbuck');
    assert.deepEqual(await rows(page), expected(2, 5));
    await ready(page, 'lens-chart');
    await screenshot(page, 'logit-lens');

    const shared = await open(page.url());
    await shared.locator('[data-testid="lens-topk"][data-li="2"][data-pos="5"]').waitFor();
    assert.deepEqual(await rows(shared), expected(2, 5));

    // Track a token: its probability and rank at every layer, at the selected position, as the API has them.
    await page.getByTestId('track').fill(ANSWER);
    await page.getByTestId('prompt').press('Enter');
    await urlHas(page, 'track=');
    // (a new run starts from the output at the last position)
    await page.locator('[data-testid="lens-track"][data-pos="13"]').waitFor();
    const t = await post<{ tracked: { token: number; str: string; prob: number[][]; rank: number[][] } }>('/api/logit-lens', {
      prompt: PROMPT,
      topK: 5,
      track: ANSWER,
    });
    assert.equal(t.tracked.str, ANSWER);
    const track = page.getByTestId('lens-track');
    assert.deepEqual(
      await track.getByTestId('lens-track-prob').allTextContents(),
      t.tracked.prob.map((row) => fmtProb(row[13]!)),
    );
    assert.deepEqual(
      await track.getByTestId('lens-track-rank').allTextContents(),
      t.tracked.rank.map((row) => String(row[13])),
    );
    // Its rank is 1 exactly where it is the lens's top token there.
    t.tracked.rank.forEach((row, li) => assert.equal(row[13] === 1, r.top[li]![13]![0]!.token === t.tracked.token, `layer ${li}`));

    // The tuned lens (models/default ships one in tuned-lens/): the switch reruns through it, as the API does.
    assert.equal((await api<{ tunedLens: boolean }>('GET', '/api/model')).body.tunedLens, true);
    assert.equal(await page.getByTestId('lens-tuned-reason').count(), 0);
    await page.getByTestId('lens-tuned').check();
    await urlHas(page, 'lens=tuned');
    await page.locator('[data-testid="lens-kind"][data-lens="tuned"]').waitFor();
    await ready(page, 'lens-chart');
    const tuned = await post<{ lens: string; top: TokenProb[][][]; tracked: { prob: number[][]; rank: number[][] } }>('/api/logit-lens', {
      prompt: PROMPT,
      topK: 5,
      track: ANSWER,
      lens: 'tuned',
    });
    assert.equal(tuned.lens, 'tuned');
    const topk = page.getByTestId('lens-topk');
    const [li, pos] = [Number(await topk.getAttribute('data-li')), Number(await topk.getAttribute('data-pos'))];
    assert.deepEqual(await rows(page), {
      toks: tuned.top[li]![pos]!.map((x) => showTok(x.str, x.token)),
      probs: tuned.top[li]![pos]!.map((x) => fmtProb(x.prob)),
    });
    const tunedTrack = page.getByTestId('lens-track');
    assert.deepEqual(
      await tunedTrack.getByTestId('lens-track-prob').allTextContents(),
      tuned.tracked.prob.map((row) => fmtProb(row[pos]!)),
    );
    // It reads differently from the logit lens below the output (the first layer above all).
    assert.notDeepEqual(
      tuned.top[0]!.map((ps) => ps[0]!.token),
      r.top[0]!.map((ps) => ps[0]!.token),
    );
    await screenshot(page, 'tuned-lens');
    // The shared URL opens the tuned lens again.
    const sharedTuned = await open(page.url());
    await sharedTuned.locator('[data-testid="lens-kind"][data-lens="tuned"]').waitFor();
    assert.ok(await sharedTuned.getByTestId('lens-tuned').isChecked());
    await done();
  });

  it('Attribution: DLA by component and logit difference as the API computes; errors as the server words them', async () => {
    const page = await open(`${base}#/attribution`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('answer').fill(ANSWER);
    await page.getByTestId('wrong').fill(WRONG);
    await page.getByTestId('pos').fill('-1');
    await page.getByTestId('prompt').press('Enter');
    await ready(page, 'dla-chart');
    const r = await post<{ logitDiff: number; total: number; pos: number; components: { label: string; value: number }[] }>('/api/dla', {
      prompt: PROMPT,
      answer: ANSWER,
      wrong: WRONG,
      pos: -1,
    });
    const check = async (p: Page) => {
      assert.equal(await text(p, 'dla-logit-diff'), r.logitDiff.toFixed(4));
      assert.equal(await text(p, 'dla-total'), r.total.toFixed(4));
      assert.equal(await text(p, 'dla-pos'), String(r.pos));
      assert.equal(await text(p, 'dla-metric'), 'logit(·Ahab) − logit(·Starbuck)');
      const top = [...r.components].sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, 5);
      const shownRows = p.getByTestId('dla-top-row');
      for (let i = 0; i < top.length; i++) {
        assert.equal(await shownRows.nth(i).getAttribute('data-label'), top[i]!.label);
        assert.equal(((await shownRows.nth(i).getByTestId('dla-value').textContent()) ?? '').trim(), top[i]!.value.toFixed(4));
      }
      // One bar per component.
      assert.equal(await p.getByTestId('dla-chart').locator('path[aria-label]').count(), r.components.length);
    };
    await check(page);
    await ready(page, 'dla-heads');
    await screenshot(page, 'attribution');

    const shared = await open(page.url());
    await ready(shared, 'dla-chart');
    assert.equal(await shared.getByTestId('answer').inputValue(), ANSWER);
    assert.equal(await shared.getByTestId('wrong').inputValue(), WRONG);
    await check(shared);

    // An answer that is not one token: the server's 400 and message, shown as they are.
    await page.getByTestId('answer').fill(' Ahab and Starbuck');
    await page.getByTestId('answer').press('Enter');
    await page.getByTestId('api-error').waitFor();
    const bad = await api<{ statusCode: number; error: string; message: string }>('POST', '/api/dla', {
      prompt: PROMPT,
      answer: ' Ahab and Starbuck',
      wrong: WRONG,
      pos: -1,
    });
    assert.equal(bad.status, 400);
    assert.equal(await text(page, 'api-error-title'), `400 ${bad.body.error}`);
    assert.equal(await text(page, 'api-error-message'), bad.body.message);
    await screenshot(page, 'attribution-error');
    await done([/status of 400/]);
  });

  it('Patching: progress bar to the end from the SSE events, heatmaps of the job result; cancel; the URL restores it', async () => {
    const page = await open(`${base}#/patching`);
    await page.getByTestId('clean').fill(PROMPT);
    await page.getByTestId('corrupted').fill(CORRUPTED);
    await page.getByTestId('answer').fill(ANSWER);
    await page.getByTestId('wrong').fill(WRONG);
    await page.getByTestId('clean').press('Enter');

    const progress = page.getByTestId('patch-progress');
    const seen: number[] = [];
    const status = await until(
      'the sweep to finish',
      async () => {
        const s = await page.getByTestId('patch-job').getAttribute('data-status');
        const v = await progress.getAttribute('value');
        if (v !== null) seen.push(Number(v));
        return s === 'done' || s === 'error' || s === 'cancelled' ? s : undefined;
      },
      60_000,
    );
    assert.equal(status, 'done', await text(page, 'patch-status'));
    const jobId = await page.getByTestId('patch-job').getAttribute('data-job-id');
    assert.ok(jobId);
    const job = (await api<{ status: string; done: number; total: number; result: Json }>('GET', `/api/jobs/${jobId}`)).body;
    assert.equal(job.status, 'done');
    assert.equal(await progress.getAttribute('value'), String(job.total));
    assert.equal(await progress.getAttribute('max'), String(job.total));
    assert.equal(await text(page, 'patch-progress-text'), `${job.total} / ${job.total}`);
    assert.equal(await text(page, 'patch-status'), 'Done');
    assert.ok(
      seen.every((v, i) => i === 0 || v >= seen[i - 1]!),
      `progress never goes back: ${seen.join(',')}`,
    );

    const result = job.result as { cleanValue: number; corruptedValue: number; residPre: number[][]; headOut: number[][] };
    const best = (grid: number[][]) => {
      let b = { l: 0, c: 0, v: -Infinity };
      grid.forEach((row, l) => row.forEach((v, c) => v > b.v && (b = { l, c, v })));
      return b;
    };
    const check = async (p: Page) => {
      assert.equal(await text(p, 'patch-clean-value'), result.cleanValue.toFixed(4));
      assert.equal(await text(p, 'patch-corrupted-value'), result.corruptedValue.toFixed(4));
      for (const [kind, grid] of [
        ['resid_pre', result.residPre],
        ['head_out', result.headOut],
      ] as const) {
        const b = best(grid);
        const el = p.getByTestId(`patch-best-${kind}`);
        assert.equal(await el.getAttribute('data-layer'), String(b.l), kind);
        assert.equal(await el.getAttribute('data-col'), String(b.c), kind);
        assert.equal(await el.locator('strong').textContent(), b.v.toFixed(4), kind);
        await ready(p, `patch-${kind}`);
      }
    };
    await check(page);
    // This IOI-style pair is one the default model does not solve (clean ≤ corrupted): a warning says so.
    assert.ok(result.cleanValue <= result.corruptedValue, `${result.cleanValue} <= ${result.corruptedValue}`);
    assert.match(await text(page, 'patch-warning'), /does not beat the corrupted one/);
    // The residual-stream heatmap has a cell per layer and position.
    assert.equal(await page.getByTestId('patch-resid_pre').locator('path[aria-label]').count(), result.residPre.flat().length);
    await screenshot(page, 'patching');

    // The shared URL runs the same sweep again, to the same numbers.
    const shared = await open(page.url());
    assert.equal(await shared.getByTestId('corrupted').inputValue(), CORRUPTED);
    await shared.locator('[data-testid="patch-job"][data-status="done"]').waitFor({ timeout: 60_000 });
    await check(shared);

    // A long sweep, cancelled part-way: the bar stops short and the job is cancelled on the server.
    const long = (s: string) => Array.from({ length: 16 }, () => s).join(' ');
    await page.getByTestId('clean').fill(long(PROMPT));
    await page.getByTestId('corrupted').fill(long(CORRUPTED));
    await page.getByTestId('kind-head_out').uncheck();
    await page.getByTestId('clean').press('Enter');
    await page.locator('[data-testid="patch-job"][data-status="running"]').waitFor();
    await until('progress past 0', async () => Number((await progress.getAttribute('value')) ?? 0) > 0 || undefined, 60_000);
    // The heatmap fills in as the sweep runs.
    await page.getByTestId('patch-partial').waitFor();
    await page.getByTestId('patch-resid_pre').waitFor();
    await page.getByTestId('patch-cancel').click();
    await page.locator('[data-testid="patch-job"][data-status="cancelled"]').waitFor({ timeout: 60_000 });
    assert.equal(await text(page, 'patch-status'), 'Cancelled');
    const cancelledId = await page.getByTestId('patch-job').getAttribute('data-job-id');
    const cancelled = (await api<{ status: string; done: number; total: number }>('GET', `/api/jobs/${cancelledId}`)).body;
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.done < cancelled.total, `${cancelled.done} < ${cancelled.total}`);
    assert.ok(Number(await progress.getAttribute('value')) < Number(await progress.getAttribute('max')));
    // A cancel keeps the finished part: the page shows the job's partial result, a cell per run done.
    const kept = (await api<{ partial: { residPre: (number | null)[][] } }>('GET', `/api/jobs/${cancelledId}`)).body.partial;
    const doneCells = kept.residPre.flatMap((row, l) => row.flatMap((v, c) => (v === null ? [] : [{ l, c, v }])));
    assert.equal(doneCells.length, cancelled.done);
    assert.ok(await page.getByTestId('patch-partial').isVisible());
    await ready(page, 'patch-resid_pre');
    assert.equal(await page.getByTestId('patch-resid_pre').locator('path[aria-label]').count(), doneCells.length);
    const keptBest = doneCells.reduce((a, b) => (b.v > a.v ? b : a));
    const keptEl = page.getByTestId('patch-best-resid_pre');
    assert.equal(await keptEl.getAttribute('data-layer'), String(keptBest.l));
    assert.equal(await keptEl.getAttribute('data-col'), String(keptBest.c));
    assert.equal(await keptEl.locator('strong').textContent(), keptBest.v.toFixed(4));
    await screenshot(page, 'patching-cancelled');
    await done();
  });

  it('Defaults: Attribution and Patching start on a pair the model solves, listed position by position; Heads at the learned distance', async () => {
    // Attribution, run as it opens: the default prompt's logit difference is clearly positive.
    const attribution = await open(`${base}#/attribution`);
    assert.equal(await attribution.getByTestId('prompt').inputValue(), DEFAULT_CLEAN);
    await attribution.getByTestId('prompt').press('Enter');
    await ready(attribution, 'dla-chart');
    const dla = await post<{ logitDiff: number }>('/api/dla', {
      prompt: DEFAULT_CLEAN,
      answer: DEFAULT_ANSWER,
      wrong: DEFAULT_WRONG,
      pos: -1,
    });
    assert.equal(await text(attribution, 'dla-logit-diff'), dla.logitDiff.toFixed(4));
    assert.ok(dla.logitDiff > 1, `the default prompt is solved: logit diff ${dla.logitDiff}`);
    // A head among the largest contributions links to its attention pattern.
    const headRow = attribution
      .locator('[data-testid="dla-top-row"][data-label^="L"]')
      .filter({ has: attribution.getByTestId('head-link') })
      .first();
    const [, dlaLayer, dlaHead] = /^L(\d+)H(\d+)$/.exec((await headRow.getAttribute('data-label')) ?? '')!;
    await followHeadLink(attribution, headRow.getByTestId('head-link'), Number(dlaLayer), Number(dlaHead), DEFAULT_CLEAN);

    // Patching, run as it opens: clean well above corrupted, no warning, the one differing position listed.
    const page = await open(`${base}#/patching`);
    assert.equal(await page.getByTestId('corrupted').inputValue(), DEFAULT_CORRUPTED);
    await page.getByTestId('clean').press('Enter');
    await page.locator('[data-testid="patch-job"][data-status="done"]').waitFor({ timeout: 60_000 });
    const jobId = await page.getByTestId('patch-job').getAttribute('data-job-id');
    const job = (await api<{ result: { cleanValue: number; corruptedValue: number } }>('GET', `/api/jobs/${jobId}`)).body;
    const { cleanValue, corruptedValue } = job.result;
    assert.ok(cleanValue > 1 && corruptedValue < -1, `clean ${cleanValue}, corrupted ${corruptedValue}`);
    assert.equal(await text(page, 'patch-clean-value'), cleanValue.toFixed(4));
    assert.equal(await text(page, 'patch-corrupted-value'), corruptedValue.toFixed(4));
    assert.equal(await page.getByTestId('patch-warning').count(), 0);
    const clean = await post<{ tokens: number[]; strTokens: string[] }>('/api/tokenize', { prompt: DEFAULT_CLEAN });
    const corrupted = await post<{ tokens: number[]; strTokens: string[] }>('/api/tokenize', { prompt: DEFAULT_CORRUPTED });
    const differing = clean.tokens.flatMap((t, i) => (t !== corrupted.tokens[i] ? [i] : []));
    assert.equal(differing.length, 1);
    const rows = page.getByTestId('patch-diff-row');
    assert.equal(await rows.count(), differing.length);
    for (const [n, i] of differing.entries()) {
      assert.equal(await rows.nth(n).getAttribute('data-pos'), String(i));
      assert.equal(await text(page, 'patch-diff-clean'), showTok(clean.strTokens[i]!));
      assert.equal(await text(page, 'patch-diff-corrupted'), showTok(corrupted.strTokens[i]!));
    }
    assert.equal(await text(page, 'patch-diff-clean'), '·Starbuck');
    assert.equal(await text(page, 'patch-diff-corrupted'), '·Stubb');
    // The head whose patching restores most links to its attention pattern on the clean prompt.
    const bestHead = page.getByTestId('patch-best-head_out');
    await followHeadLink(
      page,
      bestHead.getByTestId('head-link'),
      Number(await bestHead.getAttribute('data-layer')),
      Number(await bestHead.getAttribute('data-col')),
      DEFAULT_CLEAN,
    );

    // Head patching by position: a head x position heatmap per layer, its numbers the job's.
    const pp = await open(`${base}#/patching`);
    await pp.getByTestId('kind-head_out_by_pos').check();
    await pp.getByTestId('clean').press('Enter');
    await urlHas(pp, 'head_out_by_pos');
    await pp.locator('[data-testid="patch-job"][data-status="done"]').waitFor({ timeout: 120_000 });
    const byPosId = await pp.getByTestId('patch-job').getAttribute('data-job-id');
    const byPos = (await api<{ result: { headOutByPos: number[][][] } }>('GET', `/api/jobs/${byPosId}`)).body.result.headOutByPos;
    assert.equal(byPos.length, 4);
    let topCell = { l: 0, p: 0, h: 0, v: -Infinity };
    byPos.forEach((rows, l) => rows.forEach((row, p) => row.forEach((v, h) => v > topCell.v && (topCell = { l, p, h, v }))));
    const bestByPos = pp.getByTestId('patch-best-head_out_by_pos');
    assert.equal(await bestByPos.getAttribute('data-layer'), String(topCell.l));
    assert.equal(await bestByPos.getAttribute('data-head'), String(topCell.h));
    assert.equal(await bestByPos.getAttribute('data-col'), String(topCell.p));
    assert.equal(await bestByPos.locator('strong').textContent(), topCell.v.toFixed(4));
    // The heatmap opens on the best cell's layer: a cell per head and position; another layer on a click.
    assert.equal(await pp.getByTestId('patch-by-pos').getAttribute('data-layer'), String(topCell.l));
    await ready(pp, 'patch-head_out_by_pos');
    const cells = byPos[0]!.length * byPos[0]![0]!.length;
    assert.equal(await pp.getByTestId('patch-head_out_by_pos').locator('path[aria-label]').count(), cells);
    const otherLayer = (topCell.l + 1) % byPos.length;
    await pp.getByTestId(`patch-by-pos-layer-${otherLayer}`).click();
    await pp.locator(`[data-testid="patch-by-pos"][data-layer="${otherLayer}"]`).waitFor();
    await ready(pp, 'patch-head_out_by_pos');
    assert.equal(await pp.getByTestId('patch-head_out_by_pos').locator('path[aria-label]').count(), cells);
    await screenshot(pp, 'patching-by-pos');

    // Heads, run as it opens: repeats of 20 tokens, where the model's induction head scores high.
    const heads = await open(`${base}#/heads`);
    assert.equal(await heads.getByTestId('seqlen').inputValue(), '20');
    await heads.getByTestId('seed').press('Enter');
    await ready(heads, 'heads-induction');
    const scores = await post<{ induction: number[][] }>('/api/heads', { seqLen: 20, batch: 4, seed: 0 });
    const best = scores.induction.flatMap((row, l) => row.map((v, h) => ({ l, h, v }))).sort((a, b) => b.v - a.v)[0]!;
    const top = heads.getByTestId('heads-top-induction').getByTestId('heads-top-row').first();
    assert.equal(await top.getAttribute('data-layer'), String(best.l));
    assert.equal(await top.getAttribute('data-head'), String(best.h));
    assert.equal(((await top.getByTestId('heads-score').textContent()) ?? '').trim(), best.v.toFixed(4));
    assert.ok(best.v > 0.8, `an induction head at the default distance: ${best.v}`);
    // Scored on random tokens: the head opens its pattern on the default prompt.
    await followHeadLink(heads, top.getByTestId('head-link'), best.l, best.h, DEFAULT_CLEAN);
    await done();
  });

  it('Heads: induction, previous- and duplicate-token scores per head as the API computes; the URL restores it', async () => {
    const page = await open(`${base}#/heads`);
    await page.getByTestId('seqlen').fill('20');
    await page.getByTestId('batch').fill('4');
    await page.getByTestId('seed').fill('3');
    await page.getByTestId('seed').press('Enter');
    await ready(page, 'heads-induction');
    const r = await post<Record<string, number[][]>>('/api/heads', { seqLen: 20, batch: 4, seed: 3 });
    const check = async (p: Page, scores: Record<string, number[][]>) => {
      for (const kind of ['induction', 'previousToken', 'duplicateToken']) {
        await ready(p, `heads-${kind}`);
        const all = scores[kind]!.flatMap((row, l) => row.map((v, h) => ({ l, h, v }))).sort((a, b) => b.v - a.v);
        const rows = p.getByTestId(`heads-top-${kind}`).getByTestId('heads-top-row');
        assert.equal(await rows.count(), 3);
        for (let i = 0; i < 3; i++) {
          assert.equal(await rows.nth(i).getAttribute('data-layer'), String(all[i]!.l), `${kind} #${i}`);
          assert.equal(await rows.nth(i).getAttribute('data-head'), String(all[i]!.h), `${kind} #${i}`);
          assert.equal(((await rows.nth(i).getByTestId('heads-score').textContent()) ?? '').trim(), all[i]!.v.toFixed(4));
        }
        assert.equal(await p.getByTestId(`heads-${kind}`).locator('path[aria-label^="L"]').count(), scores[kind]!.flat().length);
      }
    };
    await check(page, r);
    assert.match(await text(page, 'heads-scored-on'), /on those repeated tokens/);
    await screenshot(page, 'heads');

    const shared = await open(page.url());
    assert.equal(await shared.getByTestId('seed').inputValue(), '3');
    await check(shared, r);

    // On a prompt: previous- and duplicate-token scores on it.
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('prompt').press('Enter');
    await until('scores on the prompt', async () => (await text(page, 'heads-scored-on')).includes('the prompt'));
    await check(page, await post<Record<string, number[][]>>('/api/heads', { prompt: PROMPT, seqLen: 20, batch: 4, seed: 3 }));
    await done();
  });

  it('Steering: steered and unsteered generations side by side as the API generates them; the URL restores it', async () => {
    const page = await open(`${base}#/steering`);
    const positive = ['The whale rose from the sea', 'The harpoon struck the whale'];
    const negative = ['The Congress passed the law', 'Our economy needs new jobs'];
    await page.getByTestId('positive').fill(positive.join('\n'));
    await page.getByTestId('negative').fill(negative.join('\n'));
    await page.getByTestId('prompt').fill('I think that the');
    await page.getByTestId('steer-layer').selectOption('2');
    await page.getByTestId('scale').fill('2');
    await page.getByTestId('new-tokens').fill('12');
    await page.getByTestId('positive').press('Control+Enter');
    await page.getByTestId('steer-steered').waitFor();
    const r = await post<{ vectorNorm: number; hook: string; steered: { text: string }; unsteered: { text: string } }>('/api/steer', {
      positive,
      negative,
      prompt: 'I think that the',
      layer: 2,
      hook: 'resid_pre',
      position: 'mean',
      scale: 2,
      maxNewTokens: 12,
      temperature: 0,
      seed: 0,
    });
    assert.notEqual(r.steered.text, r.unsteered.text, 'the default steering changes the text');
    const check = async (p: Page) => {
      await p.getByTestId('steer-steered').waitFor();
      assert.equal(await p.getByTestId('steer-steered').textContent(), r.steered.text);
      assert.equal(await p.getByTestId('steer-unsteered').textContent(), r.unsteered.text);
      assert.equal(await text(p, 'steer-norm'), r.vectorNorm.toFixed(3));
      assert.equal(await text(p, 'steer-hook-name'), r.hook);
    };
    await check(page);
    await screenshot(page, 'steering');

    const shared = await open(page.url());
    await check(shared);
    assert.equal(await shared.getByTestId('positive').inputValue(), positive.join('\n'));
    assert.equal(await shared.getByTestId('scale').inputValue(), '2');
    await done();
  });
});
