/**
 * Dictionaries in the workbench, in a real browser: the serve command docs/sae.md gives
 * (`glassbox serve default --sae DIR`, the CLI in its own process) with an SAE on the default
 * model and its feature store built by the library in this test's setup. The feature page and
 * the "what fires on my prompt" view show the numbers the JSON API gives, and those equal the
 * library's (featurePage, promptFeatureActs / topFeaturesPerToken, steerWithFeature) within
 * 1e-4; each view's URL restores it in a new page.
 * Screenshots go to test-artifacts/screenshots (or $E2E_SCREENSHOTS).
 *
 * The SAE is built, not trained (training one takes minutes on two cores): a TopK dictionary
 * (k 8) whose features are the unit embedding directions of the first 256 distinct tokens of the
 * corpus, read at blocks.1.hook_resid_post, so each feature fires mostly on its own token.
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH); without it these tests fail.
 */
import { after, before, describe, it, test } from 'node:test';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { loadModel } from '../src/model/index.js';
import type { HookedTransformer } from '../src/model/hooked.js';
import {
  Sae,
  collectFeatures,
  defaultCorpusTokens,
  featurePage,
  promptFeatureActs,
  saveFeatureStore,
  saveSae,
  steerWithFeature,
  topFeaturesPerToken,
  type FeatureStore,
} from '../src/sae/index.js';
import { tensor } from '../src/tensor/index.js';
import type { FeaturePageResult, FeatureSteerResult, FiresResult, SaeList } from '../src/server/schemas.js';
import {
  buildWeb,
  CHROMIUM_PATH,
  launchChromium,
  openPage,
  ROOT,
  screenshot,
  startServer,
  until,
  WEB_DIST,
  type ServerProcess,
  type TrackedPage,
} from './e2e/harness.js';

const HOOK = 'blocks.1.hook_resid_post';
const D_SAE = 256;
const PROMPT = 'Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.';
const STEER_PROMPT = 'The whale';

/** The web app's rendering of a token (web/src/ui.tsx showTok). */
function showTok(s: string | null, id?: number): string {
  if (s === null) return `#${id}`;
  if (s === '') return '∅';
  return s.replace(/ /g, '·').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}
/** web/src/features.tsx fmtAct. */
const fmtAct = (x: number | null) => (x === null ? '—' : x.toFixed(3));

function close(a: number | null | undefined, b: number, what: string): void {
  assert.ok(a !== null && a !== undefined && Number.isFinite(a), `${what}: ${a}`);
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

/** The token-identity TopK SAE (see the file's comment) and the corpus it is read on. */
function tokenSae(model: HookedTransformer, corpus: Int32Array): Sae {
  const d = model.cfg.dModel;
  const seen: number[] = [];
  for (const id of corpus) {
    if (seen.length === D_SAE) break;
    if (id !== model.cfg.bosTokenId && id !== model.cfg.eosTokenId && !seen.includes(id)) seen.push(id);
  }
  const W_E = model.params.embed.W_E.cast('float32').dataSync() as Float32Array;
  const W_dec = new Float32Array(D_SAE * d);
  const W_enc = new Float32Array(d * D_SAE);
  seen.forEach((t, i) => {
    let norm = 0;
    for (let j = 0; j < d; j++) norm += W_E[t * d + j]! ** 2;
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) {
      W_dec[i * d + j] = W_E[t * d + j]! / norm;
      W_enc[j * D_SAE + i] = W_E[t * d + j]! / norm;
    }
  });
  const sae = Sae.create({ architecture: 'topk', d_in: d, d_sae: D_SAE, k: 8, hook_name: HOOK }, { seed: 0 });
  return sae.withParams({
    ...sae.params,
    W_enc: tensor(W_enc, [d, D_SAE]),
    W_dec: tensor(W_dec, [D_SAE, d]),
    b_enc: tensor(new Float32Array(D_SAE), [D_SAE]),
    b_dec: tensor(new Float32Array(d), [d]),
  });
}

/**
 * The serve command docs/sae.md gives (`npm run glassbox -- serve default --sae runs/sae-topk
 * --open`), as the model and the arguments after it, with `saeDir` for the doc's SAE and without
 * --open (no browser to open here; the test drives its own).
 */
function docServeCommand(saeDir: string): { model: string; args: string[] } {
  const doc = readFileSync(join(ROOT, 'docs', 'sae.md'), 'utf8');
  const line = doc.split('\n').find((l) => l.startsWith('npm run glassbox -- serve '));
  assert.ok(line, 'docs/sae.md gives the serve command');
  const words = line.trim().split(/\s+/);
  const [model, ...rest] = words.slice(words.indexOf('serve') + 1);
  assert.ok(rest.includes('runs/sae-topk'), `the doc's serve line attaches its SAE: ${line}`);
  return { model: model!, args: rest.filter((a) => a !== '--open').map((a) => (a === 'runs/sae-topk' ? saeDir : a)) };
}

test('Chromium is installed for the browser tests', () => {
  assert.ok(
    existsSync(CHROMIUM_PATH),
    `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install chromium\` (or set CHROMIUM_PATH)`,
  );
});

describe('dictionaries in the workbench', { timeout: 300_000 }, () => {
  const workDir = join(ROOT, '.tmp', `e2e-features-${process.pid}`);
  const saeDir = join(workDir, 'tokens-sae');
  let server: ServerProcess;
  let browser: Browser;
  let context: BrowserContext;
  let model: HookedTransformer;
  let sae: Sae;
  let store: FeatureStore;
  /** The feature the page tests open: the one firing most often among those with a full top-k. */
  let feature = -1;
  const pages: TrackedPage[] = [];

  before(async () => {
    browser = await launchChromium();
    buildWeb();
    model = await loadModel('default');
    const corpus = defaultCorpusTokens(model.tokenizer!, { eosTokenId: model.cfg.eosTokenId });
    sae = tokenSae(model, corpus.ids);
    mkdirSync(workDir, { recursive: true });
    saveSae(sae, saeDir);
    store = collectFeatures(model, sae, corpus.ids, {
      batches: 16,
      batchSize: 8,
      contextSize: 64,
      topK: 12,
      before: 8,
      after: 4,
      description: corpus.description,
      modelName: 'default',
      saePath: saeDir,
    });
    saveFeatureStore(store, join(saeDir, 'features'));
    let best = -1;
    for (let f = 0; f < D_SAE; f++)
      if (
        featurePage(store, f).contexts.length === store.stats.topK &&
        (best < 0 || store.stats.fireCount[f]! > store.stats.fireCount[best]!)
      )
        best = f;
    assert.ok(best >= 0, 'some feature has a full top-k');
    feature = best;
    const top = featurePage(store, feature).contexts[0]!;
    // What `glassbox sae explain` writes beside the store (src/sae/explain): one JSON object a line.
    writeFileSync(
      join(saeDir, 'features', 'explanations.jsonl'),
      JSON.stringify({
        feature,
        explanation: `the token ${JSON.stringify(top.tokens[top.maxIndex]!.str)}`,
        score: {
          method: 'detection',
          balanced_accuracy: 0.875,
          true_positives: 4,
          false_negatives: 0,
          true_negatives: 3,
          false_positives: 1,
        },
        explainer: { model: 'hand-written', api_base: 'http://127.0.0.1:1/v1' },
        created_at: '2026-12-07T00:00:00.000Z',
      }) + '\n',
    );
    const serve = docServeCommand(saeDir);
    server = await startServer(WEB_DIST, serve.model, serve.args);
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  async function open(url: string): Promise<Page> {
    const tracked = await openPage(context, url);
    pages.push(tracked);
    await tracked.page.getByTestId('model-info').waitFor();
    return tracked.page;
  }
  async function done(): Promise<void> {
    const errors = pages.flatMap((p) => p.errors);
    for (const p of pages.splice(0)) await p.page.close();
    assert.deepEqual(errors, [], 'the pages logged errors');
  }
  async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(new URL(path, server.url), {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as T;
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(json)}`);
    return json;
  }
  const text = async (page: Page, testId: string) => ((await page.getByTestId(testId).first().textContent()) ?? '').trim();
  const urlHas = (page: Page, ...parts: string[]) =>
    until(`the URL to have ${parts.join(', ')} (it is ${page.url()})`, () => parts.every((p) => page.url().includes(p)));

  it('lists the attached SAE and shows the dictionary views in the nav', async () => {
    const list = await api<SaeList>('GET', '/api/saes');
    assert.equal(list.saes.length, 1);
    const s = list.saes[0]!;
    assert.equal(s.id, 'tokens-sae');
    assert.equal(s.hookName, HOOK);
    assert.equal(s.dSae, D_SAE);
    assert.equal(s.architecture, 'topk');
    const l0 = Array.from(store.stats.fireCount).reduce((a, b) => a + b, 0) / store.stats.tokens;
    close(s.l0, l0, 'L0');
    const page = await open(server.url);
    const nav = await page.getByTestId('nav').locator('a').allTextContents();
    // The dictionary views follow the others (other views, such as Graph, may come after them).
    const at = nav.indexOf('Features');
    assert.ok(at >= 0, `nav: ${nav.join(', ')}`);
    assert.deepEqual(nav.slice(at, at + 2), ['Features', 'Feature page']);
    await done();
  });

  it('Feature page: every number is the API page and the library page; steering; the URL restores it', async () => {
    const api0 = await api<FeaturePageResult>('GET', `/api/features/tokens-sae/${feature}`);
    const lib = featurePage(store, feature);
    const page = await open(`${server.url}#/feature?sae=tokens-sae&feature=${feature}`);
    await page.getByTestId('feature-title').waitFor();

    const check = async (p: Page) => {
      assert.match(await text(p, 'feature-title'), new RegExp(`^Feature ${feature} of tokens-sae$`));
      assert.equal(await text(p, 'feature-explanation-text'), api0.explanation!.text);
      assert.equal(await text(p, 'feature-explanation-score'), '0.88');
      // Figures.
      assert.equal(await text(p, 'feature-density'), api0.density!.toExponential(3));
      close(api0.density, lib.density, 'density');
      assert.equal(await text(p, 'feature-fires'), String(lib.fireCount));
      assert.equal(await text(p, 'feature-max'), fmtAct(api0.maxActivation));
      close(api0.maxActivation, lib.maxActivation, 'max activation');
      assert.equal(await text(p, 'feature-mean'), fmtAct(api0.meanActivation));
      close(api0.meanActivation, lib.meanActivation!, 'mean activation');
      // Histogram: the non-empty range of bins, with the library's counts.
      const bins = p.getByTestId('hist-bin');
      const shown = await bins.evaluateAll((rows) =>
        rows.map((r) => [Number(r.getAttribute('data-bin')), Number(r.textContent?.match(/(\d+)$/)?.[1])]),
      );
      assert.ok(shown.length > 0);
      for (const [bin, count] of shown) {
        assert.equal(count, api0.histogram!.counts[bin!]);
        assert.equal(count, lib.histogram.counts[bin!]);
      }
      assert.equal(
        shown.reduce((a, [, c]) => a + c!, 0),
        lib.fireCount,
        'the histogram counts every firing',
      );
      // Logit effects.
      for (const [testId, apiSide, libSide] of [
        ['logits-pos', api0.logits!.positive, lib.logitEffects!.positive],
        ['logits-neg', api0.logits!.negative, lib.logitEffects!.negative],
      ] as const) {
        const table = p.getByTestId(testId);
        assert.deepEqual(
          await table.getByTestId('logit-tok').allTextContents(),
          apiSide.map((t) => showTok(t.str, t.id)),
        );
        assert.deepEqual(
          await table.getByTestId('logit-value').allTextContents(),
          apiSide.map((t) => t.value!.toFixed(3)),
        );
        apiSide.forEach((t, i) => {
          assert.equal(t.id, libSide[i]!.id);
          close(t.value, libSide[i]!.value, `${testId} ${i}`);
        });
      }
      // Contexts: grouped as the API groups them, every token's activation the library's.
      assert.deepEqual(
        await p.getByTestId('context-group-label').allTextContents(),
        api0.groups.map((g) => g.label),
      );
      // The top activations, then the sampled firing tokens by quantile (together the library's samples, largest first).
      const libContexts = [...lib.contexts, ...lib.samples!];
      assert.ok(lib.samples!.length > 0 && api0.groups.length > 1, 'the page has quantile groups');
      assert.equal(api0.groupsNote, null);
      const apiContexts = api0.groups.flatMap((g) => g.contexts);
      const ctx = p.getByTestId('context');
      assert.equal(await ctx.count(), libContexts.length);
      for (let i = 0; i < libContexts.length; i++) {
        const row = ctx.nth(i);
        assert.equal(await row.getByTestId('context-act').textContent(), fmtAct(apiContexts[i]!.activation));
        close(apiContexts[i]!.activation, libContexts[i]!.activation, `context ${i}`);
        const toks = await row
          .getByTestId('act-tok')
          .evaluateAll((els) =>
            els.map((e) => ({ id: Number(e.getAttribute('data-token')), act: Number(e.getAttribute('data-act')), text: e.textContent })),
          );
        assert.deepEqual(
          toks.map((t) => t.id),
          libContexts[i]!.tokens.map((t) => t.id),
        );
        toks.forEach((t, j) => {
          close(t.act, libContexts[i]!.tokens[j]!.act, `context ${i} token ${j}`);
          assert.equal(t.text, showTok(libContexts[i]!.tokens[j]!.str, t.id));
        });
      }
    };
    await check(page);

    // Steering: the feature added at scale 6 for 8 tokens.
    await page.getByTestId('steer-prompt').fill(STEER_PROMPT);
    await page.getByTestId('steer-scale').fill('6');
    await page.getByTestId('steer-n').fill('8');
    await page.getByTestId('steer-run').click();
    await urlHas(page, 'sp=', 'scale=6', 'n=8');
    await page.getByTestId('feature-steered').waitFor();
    const steer = await api<FeatureSteerResult>('POST', '/api/features/tokens-sae/steer', {
      feature,
      prompt: STEER_PROMPT,
      scale: 6,
      maxNewTokens: 8,
    });
    const want = steerWithFeature(model, sae, feature, model.tokenizer!.encode(STEER_PROMPT, { prependBos: true }), {
      scale: 6,
      maxNewTokens: 8,
    });
    assert.deepEqual(steer.unsteered.tokens, want.unsteered);
    assert.deepEqual(steer.steered.tokens, want.steered);
    const checkSteer = async (p: Page) => {
      await p.getByTestId('feature-steered').waitFor();
      assert.equal(await p.getByTestId('feature-unsteered').textContent(), steer.unsteered.text);
      assert.equal(await p.getByTestId('feature-steered').textContent(), steer.steered.text);
    };
    await checkSteer(page);
    await screenshot(page, 'feature-page');

    // A link to the page restores everything, the steering included.
    const shared = await open(page.url());
    await shared.getByTestId('feature-title').waitFor();
    assert.equal(await shared.getByTestId('feature-index').inputValue(), String(feature));
    assert.equal(await shared.getByTestId('steer-prompt').inputValue(), STEER_PROMPT);
    await check(shared);
    await checkSteer(shared);
    await done();
  });

  it('Features on a prompt: per-token top features as the API and the library find them; highlight; links to pages; the URL restores it', async () => {
    const page = await open(`${server.url}#/fires`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('fires-k').fill('3');
    await page.getByTestId('prompt').press('Enter');
    await page.getByTestId('fires-table').waitFor();
    const r = await api<FiresResult>('POST', '/api/fires', { prompt: PROMPT, topK: 3 });
    const tokens = model.tokenizer!.encode(PROMPT, { prependBos: true });
    assert.deepEqual(r.tokens, tokens);
    const acts = promptFeatureActs(model, sae, tokens);
    const lib = topFeaturesPerToken(acts, D_SAE, 3);

    const check = async (p: Page) => {
      for (let pos = 0; pos < tokens.length; pos++) {
        const cell = p.locator(`[data-testid="fires-row"][data-pos="${pos}"] [data-testid="fires-cell"]`);
        const shown = await cell.getByTestId('fires-feature').evaluateAll((els) =>
          els.map((e) => ({
            feature: Number(e.getAttribute('data-feature')),
            act: e.querySelector('[data-testid="fires-act"]')?.textContent,
          })),
        );
        const apiRow = r.saes[0]!.top[pos]!;
        assert.deepEqual(
          shown.map((s) => s.feature),
          apiRow.map((f) => f.feature),
          `features at ${pos}`,
        );
        assert.deepEqual(
          shown.map((s) => s.act),
          apiRow.map((f) => fmtAct(f.act)),
          `activations at ${pos}`,
        );
        assert.deepEqual(
          apiRow.map((f) => f.feature),
          lib[pos]!.map((f) => f.feature),
          `library features at ${pos}`,
        );
        apiRow.forEach((f, j) => close(f.act, lib[pos]![j]!.act, `activation at ${pos}`));
      }
    };
    await check(page);

    // Highlight the strongest feature of the last token across the prompt.
    const last = tokens.length - 1;
    const target = r.saes[0]!.top[last]![0]!.feature;
    await page
      .locator(
        `[data-testid="fires-row"][data-pos="${last}"] [data-testid="fires-feature"][data-feature="${target}"] [data-testid="fires-hl"]`,
      )
      .click();
    await urlHas(page, `hl=tokens-sae%3A${target}`);
    await page.getByTestId('fires-highlight').waitFor();
    const hl = await api<FiresResult>('POST', '/api/fires', { prompt: PROMPT, topK: 3, highlight: { sae: 'tokens-sae', feature: target } });
    const checkHighlight = async (p: Page) => {
      await p.getByTestId('fires-highlight').waitFor();
      const shown = await p
        .getByTestId('fires-highlight-text')
        .getByTestId('act-tok')
        .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-act'))));
      assert.equal(shown.length, tokens.length);
      shown.forEach((a, i) => {
        close(a, hl.highlight!.acts[i]!, `highlight at ${i} (API)`);
        close(a, acts[i * D_SAE + target]!, `highlight at ${i} (library)`);
      });
    };
    await checkHighlight(page);
    await screenshot(page, 'features-on-prompt');

    const shared = await open(page.url());
    await shared.getByTestId('fires-table').waitFor();
    assert.equal(await shared.getByTestId('prompt').inputValue(), PROMPT);
    await check(shared);
    await checkHighlight(shared);

    // A feature opens its page.
    await page
      .locator(
        `[data-testid="fires-row"][data-pos="${last}"] [data-testid="fires-feature"][data-feature="${target}"] [data-testid="fires-link"]`,
      )
      .click();
    await urlHas(page, '#/feature?', `feature=${target}`);
    await page.getByTestId('feature-title').waitFor();
    assert.match(await text(page, 'feature-title'), new RegExp(`^Feature ${target} of tokens-sae$`));
    await done();
  });

  it("refuses an unknown dictionary or a feature out of range, and the page shows the server's words", async () => {
    const bad = await fetch(new URL(`/api/features/tokens-sae/${D_SAE}`, server.url));
    assert.equal(bad.status, 400);
    const page = await open(`${server.url}#/feature?sae=tokens-sae&feature=${D_SAE}`);
    await page.getByTestId('api-error').waitFor();
    assert.match(await text(page, 'api-error-message'), new RegExp(`feature ${D_SAE} is out of range: 'tokens-sae' has ${D_SAE} features`));
    const unknown = await fetch(new URL('/api/features/nope/1', server.url));
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { message: string }).message, /no dictionary 'nope'; attached: tokens-sae/);
    const pages0 = pages.splice(0);
    for (const p of pages0) await p.page.close();
    // The failed request is logged by the browser as a console error; that is the test's point.
    assert.ok(
      pages0.every((p) => p.errors.every((e) => /400|Bad Request/.test(e))),
      JSON.stringify(pages0.map((p) => p.errors)),
    );
  });
});
