/**
 * The static workbench (`npm run build:static`) from a plain local static server, with and
 * without COOP/COEP: the page runs the model itself (Web Worker, onnxruntime-web), says which
 * runtime and, when not cross-origin isolated, why threads are off; the Prompt, Attention,
 * Logit lens and Patching views show the numbers the Node library computes for the same inputs, within 1e-4 (the page
 * shows percentages to 2 decimals: 5e-5 of rounding).
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH), as the workbench's e2e tests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, openPage, ROOT, until } from './e2e/harness.js';
import { serveStatic } from './browser/static-server.js';
import { hookName, loadModel, type HookedTransformer } from '../src/index.js';
import { loadTunedLens, logitLens, patchHeadOut, patchResidPre, toSingleToken, tunedLens } from '../src/analysis/index.js';
import { DEFAULT_MODEL_DIR } from '../src/model/pretrained.js';

const PROMPT = 'Then Ahab and Starbuck went on deck, and Starbuck said to';
const CORRUPTED = 'Then Ahab and Starbuck went on deck, and Ahab said to';
const ANSWER = ' Ahab';
const WRONG = ' Starbuck';
const TOP_K = 4;
const TOL = 1e-4;

/** The web app's rendering of a token (web/src/ui.tsx showTok). */
function showTok(s: string | null | undefined, id?: number): string {
  if (s === null || s === undefined) return `#${id}`;
  if (s === '') return '∅';
  return s.replace(/ /g, '·').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}
const percent = (s: string) => Number(s.replace('%', '')) / 100;

interface Top {
  toks: string[];
  probs: number[];
}

describe('the static workbench from a static server', { timeout: 600_000 }, () => {
  let browser: Browser;
  let dir: string;
  let model: HookedTransformer;
  let forwardTop: Top[];
  let lensLast: Top;
  /** The tuned lens (models/default/tuned-lens) at the embeddings, last position. */
  let tunedFirst: Top;
  /** Layer 1, head 2's attention from position 13 to position 3. */
  let attention13to3: number;
  /** The largest cell of the residual and head patching grids: layer, column, value. */
  let bestPatch: Record<'resid_pre' | 'head_out', { l: number; c: number; v: number }>;

  before(async () => {
    browser = await launchChromium();
    dir = mkdtempSync(join(tmpdir(), 'glassbox-static-'));
    execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'web/build-static.ts'), join(dir, 'site')], { cwd: ROOT, stdio: 'pipe' });
    // The Node library on the same inputs.
    model = await loadModel('default');
    const tokens = model.toTokens(PROMPT);
    const { values, indices } = model.forward(tokens).index([0]).softmax(-1).topk(TOP_K, -1);
    const p = values.dataSync() as Float32Array;
    const ids = Array.from(indices.dataSync() as BigInt64Array, Number);
    const strs = model.tokenizer!.toStrTokens(ids);
    forwardTop = tokens[0]!.map((_, pos) => ({
      toks: Array.from({ length: TOP_K }, (_, j) => showTok(strs[pos * TOP_K + j], ids[pos * TOP_K + j])),
      probs: Array.from({ length: TOP_K }, (_, j) => p[pos * TOP_K + j]!),
    }));
    const { cache } = model.runWithCache(tokens, { names: [hookName('pattern', 1)] });
    const pattern = cache.get(hookName('pattern', 1));
    attention13to3 = pattern.index([0, 2, 13, 3]).item() as number;
    const problem = { clean: PROMPT, corrupted: CORRUPTED, answer: toSingleToken(model, ANSWER), wrong: toSingleToken(model, WRONG) };
    const best = (t: { shape: readonly number[]; dataSync(): unknown }) => {
      const cols = t.shape[1]!;
      const d = t.dataSync() as Float32Array;
      let b = { l: 0, c: 0, v: -Infinity };
      d.forEach((v, i) => v > b.v && (b = { l: Math.floor(i / cols), c: i % cols, v }));
      return b;
    };
    bestPatch = { resid_pre: best(patchResidPre(model, problem)), head_out: best(patchHeadOut(model, problem)) };
    const lens = logitLens(model, PROMPT, { topK: 5 });
    const last = lens.top[lens.top.length - 1]![tokens[0]!.length - 1]!;
    lensLast = { toks: last.map((t) => showTok(t.str ?? null, t.token)), probs: last.map((t) => t.prob) };
    const tuned = tunedLens(model, loadTunedLens(join(DEFAULT_MODEL_DIR, 'tuned-lens'), model), PROMPT, { topK: 5 });
    const first = tuned.top[0]![tokens[0]!.length - 1]!;
    tunedFirst = { toks: first.map((t) => showTok(t.str ?? null, t.token)), probs: first.map((t) => t.prob) };
  });

  after(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function assertTop(page: Top, node: Top, what: string): void {
    assert.deepEqual(page.toks, node.toks, `${what}: tokens`);
    page.probs.forEach((pr, j) =>
      assert.ok(Math.abs(pr - node.probs[j]!) <= TOL, `${what}: probability ${j} is ${pr} on the page, ${node.probs[j]} in Node`),
    );
  }

  async function views(page: Page): Promise<void> {
    await page.goto(`${page.url().split('#')[0]}#/prompt`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('topk').fill(String(TOP_K));
    await page.getByTestId('prompt').press('Enter');
    await page.getByTestId('forward-table').waitFor();
    for (let pos = 0; pos < forwardTop.length; pos++) {
      const row = page.locator(`[data-testid="forward-row"][data-pos="${pos}"]`);
      const shown = {
        toks: await row.getByTestId('pred-tok').allTextContents(),
        probs: (await row.getByTestId('pred-prob').allTextContents()).map(percent),
      };
      assertTop(shown, forwardTop[pos]!, `Prompt view, position ${pos}`);
    }
    await page.goto(`${page.url().split('#')[0]}#/attention`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('prompt').press('Enter');
    await page.getByTestId('attn-layer').selectOption('1');
    await page.getByTestId('attn-head').selectOption('2');
    const readout = await until('the attention readout of q13 k3', async () => {
      await page.locator('[data-testid="attn-main"][data-ready="true"]').waitFor();
      await page.getByTestId('attn-main').locator('path[aria-label="q13 k3"]').hover();
      const r = page.getByTestId('attn-hover');
      if ((await r.getAttribute('data-q')) !== '13' || (await r.getAttribute('data-k')) !== '3') return undefined;
      return (await r.textContent()) ?? '';
    });
    const shownWeight = Number(/(-?\d+(?:\.\d+)?)\s*$/.exec(readout)?.[1]);
    assert.ok(
      Math.abs(shownWeight - attention13to3) <= TOL,
      `Attention view: L1H2 q13 k3 is ${readout} on the page, ${attention13to3} in Node`,
    );
    await page.goto(`${page.url().split('#')[0]}#/logit-lens`);
    await page.getByTestId('prompt').fill(PROMPT);
    await page.getByTestId('prompt').press('Enter');
    await page.locator('[data-testid="lens-chart"][data-ready="true"]').waitFor();
    const lens = {
      toks: await page.getByTestId('lens-topk').getByTestId('lens-tok').allTextContents(),
      probs: (await page.getByTestId('lens-topk').getByTestId('lens-prob').allTextContents()).map(percent),
    };
    assertTop(lens, lensLast, 'Logit lens view, last layer and position');
    // The page's worker found the model folder's tuned lens: the switch reads through it, as Node does.
    await page.getByTestId('lens-tuned').check();
    await page.locator('[data-testid="lens-kind"][data-lens="tuned"]').waitFor();
    await page.goto(`${page.url()}&cell=0%2C13`);
    await page.locator('[data-testid="lens-topk"][data-li="0"][data-pos="13"]').waitFor();
    const tunedTop = {
      toks: await page.getByTestId('lens-topk').getByTestId('lens-tok').allTextContents(),
      probs: (await page.getByTestId('lens-topk').getByTestId('lens-prob').allTextContents()).map(percent),
    };
    assertTop(tunedTop, tunedFirst, 'Logit lens view, tuned lens at the embeddings, last position');

    await page.goto(`${page.url().split('#')[0]}#/patching`);
    await page.getByTestId('clean').fill(PROMPT);
    await page.getByTestId('corrupted').fill(CORRUPTED);
    await page.getByTestId('answer').fill(ANSWER);
    await page.getByTestId('wrong').fill(WRONG);
    await page.getByTestId('clean').press('Enter');
    await page.locator('[data-testid="patch-job"][data-status="done"]').waitFor({ timeout: 300_000 });
    const progress = page.getByTestId('patch-progress');
    assert.equal(await progress.getAttribute('value'), await progress.getAttribute('max'), 'the progress bar reached the end');
    for (const kind of ['resid_pre', 'head_out'] as const) {
      const el = page.getByTestId(`patch-best-${kind}`);
      const b = bestPatch[kind];
      assert.equal(await el.getAttribute('data-layer'), String(b.l), `Patching view, ${kind}: layer of the largest cell`);
      assert.equal(await el.getAttribute('data-col'), String(b.c), `Patching view, ${kind}: column of the largest cell`);
      const shown = Number(await el.locator('strong').textContent());
      assert.ok(Math.abs(shown - b.v) <= TOL, `Patching view, ${kind}: ${shown} on the page, ${b.v} in Node`);
    }
  }

  it('?model= loads another model folder by URL (here a GPT-2 fixture served beside the app)', async () => {
    const server = await serveStatic({ '/': join(dir, 'site'), '/fixtures/gpt2/': join(ROOT, 'test/fixtures/hf/gpt2') }, true);
    const context = await browser.newContext();
    try {
      const { page, errors } = await openPage(context, `${server.url}/?model=/fixtures/gpt2/`);
      page.setDefaultTimeout(120_000);
      await page
        .getByTestId('model-info')
        .waitFor()
        .catch(async (e: unknown) => {
          // Say what the page says (its engine note, its errors), not only that it timed out.
          const body = ((await page.locator('body').textContent()) ?? '').slice(0, 500);
          throw new Error(
            `${e instanceof Error ? e.message.split('\n')[0] : String(e)}; page errors: ${errors.join(' | ') || 'none'}; page text: ${body}`,
          );
        });
      const config = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/hf/gpt2/config.json'), 'utf8')) as {
        n_layer: number;
        n_head: number;
      };
      assert.equal(await page.getByTestId('model-family').textContent(), 'gpt2');
      assert.equal(await page.getByTestId('model-layers').textContent(), String(config.n_layer));
      assert.equal(await page.getByTestId('model-heads').textContent(), String(config.n_head));
      assert.ok(
        server.log.some((l) => l.startsWith('GET /fixtures/gpt2/model.safetensors 206')),
        'the weights were read with Range requests',
      );
      // This folder has no tuned-lens/: the Logit lens view's switch is disabled and says why.
      await page.goto(`${page.url().split('#')[0]}#/logit-lens`);
      await page.getByTestId('lens-switch').waitFor();
      assert.ok(await page.getByTestId('lens-tuned').isDisabled());
      assert.ok(await page.getByTestId('lens-logit').isChecked());
      assert.match((await page.getByTestId('lens-tuned-reason').textContent()) ?? '', /no tuned lens is loaded/);
    } finally {
      await context.close();
      await server.close();
    }
  });

  /** Opens the static site (its own static server, closed in `finally` with the context) and runs `body` on the page. */
  async function onSite(isolated: boolean, body: (page: Page, errors: string[]) => Promise<void>): Promise<void> {
    const server = await serveStatic({ '/': join(dir, 'site') }, isolated);
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    try {
      const { page, errors } = await openPage(context, `${server.url}/`);
      page.setDefaultTimeout(120_000);
      await page.getByTestId('model-info').waitFor();
      await body(page, errors);
    } finally {
      await context.close();
      await server.close();
    }
  }

  it('a patching sweep cancelled part-way keeps its finished part (the Node numbers), and the worker answers the next request', async () => {
    // Six copies of the pair: a sweep of 4 x 84 forward passes, cancelled after its first steps.
    const long = (s: string) => Array.from({ length: 6 }, () => s).join(' ');
    const problem = {
      clean: long(PROMPT),
      corrupted: long(CORRUPTED),
      answer: toSingleToken(model, ANSWER),
      wrong: toSingleToken(model, WRONG),
    };
    const nodeGrid = patchResidPre(model, problem);
    const cols = nodeGrid.shape[1]!;
    const nodeValues = nodeGrid.dataSync() as Float32Array;
    await onSite(true, async (page) => {
      await page.goto(`${page.url().split('#')[0]}#/patching`);
      await page.getByTestId('clean').fill(problem.clean);
      await page.getByTestId('corrupted').fill(problem.corrupted);
      await page.getByTestId('answer').fill(ANSWER);
      await page.getByTestId('wrong').fill(WRONG);
      await page.getByTestId('kind-head_out').uncheck();
      await page.getByTestId('clean').press('Enter');
      const progress = page.getByTestId('patch-progress');
      await until('progress past 0', async () => Number((await progress.getAttribute('value')) ?? 0) > 0 || undefined, 120_000);
      await page.getByTestId('patch-partial').waitFor();
      await page.getByTestId('patch-cancel').click();
      await page.locator('[data-testid="patch-job"][data-status="cancelled"]').waitFor({ timeout: 60_000 });
      const done = Number(await progress.getAttribute('value'));
      const total = Number(await progress.getAttribute('max'));
      assert.equal(total, 4 * cols, 'the sweep counts layers x positions');
      assert.ok(done > 0 && done < total, `cancelled part-way: ${done} of ${total}`);
      // The finished part stays on the page: a cell per run done, its best cell the Node value.
      assert.ok(await page.getByTestId('patch-partial').isVisible());
      await page.locator('[data-testid="patch-resid_pre"][data-ready="true"]').waitFor();
      const cells = await page.getByTestId('patch-resid_pre').locator('path[aria-label]').count();
      assert.equal(cells, done, 'the heatmap shows a cell per finished run');
      // The sweep runs layer by layer, position by position: its first `done` cells.
      let best = { l: 0, c: 0, v: -Infinity };
      for (let i = 0; i < done; i++) if (nodeValues[i]! > best.v) best = { l: Math.floor(i / cols), c: i % cols, v: nodeValues[i]! };
      const el = page.getByTestId('patch-best-resid_pre');
      assert.equal(await el.getAttribute('data-layer'), String(best.l));
      assert.equal(await el.getAttribute('data-col'), String(best.c));
      const shown = Number(await el.locator('strong').textContent());
      assert.ok(Math.abs(shown - best.v) <= TOL, `kept part's best cell: ${shown} on the page, ${best.v} in Node`);
      // The worker is free again: the next request is answered, with the Node numbers.
      await page.goto(`${page.url().split('#')[0]}#/prompt`);
      await page.getByTestId('prompt').fill(PROMPT);
      await page.getByTestId('topk').fill(String(TOP_K));
      await page.getByTestId('prompt').press('Enter');
      const row = page.locator('[data-testid="forward-row"][data-pos="0"]');
      await row.waitFor();
      assertTop(
        {
          toks: await row.getByTestId('pred-tok').allTextContents(),
          probs: (await row.getByTestId('pred-prob').allTextContents()).map(percent),
        },
        forwardTop[0]!,
        'Prompt view after the cancel, position 0',
      );
    });
  });

  it('a model folder dropped or picked on the page: every view runs on it (the Node numbers); bad folders are refused naming the file and field', async () => {
    const fixture = join(ROOT, 'test/fixtures/hf/gpt2');
    const gpt2 = await loadModel(fixture);
    const ids = [1, 2, 3, 4, 5, 6];
    const { values, indices } = gpt2.forward([ids]).index([0]).softmax(-1).topk(TOP_K, -1);
    const p = values.dataSync() as Float32Array;
    const top = Array.from(indices.dataSync() as BigInt64Array, Number);
    const nodeTop: Top[] = ids.map((_, pos) => ({
      toks: Array.from({ length: TOP_K }, (_, j) => showTok(null, top[pos * TOP_K + j])),
      probs: Array.from({ length: TOP_K }, (_, j) => p[pos * TOP_K + j]!),
    }));
    const config = readFileSync(join(fixture, 'config.json'));
    const weights = readFileSync(join(fixture, 'model.safetensors'));
    const bad = mkdtempSync(join(tmpdir(), 'glassbox-bad-model-'));
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...JSON.parse(config.toString()), model_type: 'no_such_family' }));
    writeFileSync(join(bad, 'model.safetensors'), weights);
    try {
      await onSite(false, async (page, errors) => {
        const promptRows = async (what: string) => {
          await page.goto(`${page.url().split('#')[0]}#/prompt`);
          await page.getByTestId('prompt').fill(ids.join(', '));
          await page.getByTestId('topk').fill(String(TOP_K));
          await page.getByTestId('prompt').press('Enter');
          await page.getByTestId('forward-table').waitFor();
          for (let pos = 0; pos < ids.length; pos++) {
            const row = page.locator(`[data-testid="forward-row"][data-pos="${pos}"]`);
            const shown = {
              toks: await row.getByTestId('pred-tok').allTextContents(),
              probs: (await row.getByTestId('pred-prob').allTextContents()).map(percent),
            };
            assertTop(shown, nodeTop[pos]!, `${what}, position ${pos}`);
          }
        };
        // 1. The folder input (webkitdirectory): the fixture folder, with files the model does not need.
        await page.getByTestId('model-folder-input').setInputFiles(fixture);
        await page.getByTestId('model-drop-loaded').waitFor();
        assert.equal(await page.getByTestId('model-name').textContent(), 'gpt2 (dropped folder)');
        assert.equal(await page.getByTestId('model-family').textContent(), 'gpt2');
        assert.match(
          (await page.getByTestId('model-drop-note').textContent()) ?? '',
          /gpt2\/tokenizer\.json: missing, so prompts are token ids/,
        );
        await promptRows('picked folder, Prompt view');

        // 2. Refused folders, dropped (a synthetic drop event with a DataTransfer): the error names
        // the file and field, and the model loaded before stays.
        const drop = async (files: { name: string; bytes: number[] }[]) => {
          await page.evaluate((fs) => {
            // The page's DOM (this file is type-checked without the DOM library).
            const g = globalThis as unknown as {
              DataTransfer: new () => { items: { add(f: unknown): void } };
              File: new (parts: unknown[], name: string) => unknown;
              DragEvent: new (type: string, init: object) => unknown;
              dispatchEvent(e: unknown): boolean;
            };
            const dt = new g.DataTransfer();
            for (const f of fs) dt.items.add(new g.File([new Uint8Array(f.bytes)], f.name));
            g.dispatchEvent(new g.DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          }, files);
        };
        const file = (name: string, b: Buffer) => ({ name, bytes: Array.from(b) });
        await drop([file('config.json', readFileSync(join(bad, 'config.json'))), file('model.safetensors', weights)]);
        const error = page.getByTestId('model-drop-error');
        await error.waitFor();
        assert.match((await error.textContent()) ?? '', /dropped files\/config\.json.*model_type.*no_such_family/);
        await drop([file('config.json', config), file('model.safetensors', weights.subarray(0, 1000))]);
        await until(
          'the truncated weights refused',
          async () => /dropped files\/model\.safetensors/.test((await error.textContent()) ?? '') || undefined,
        );
        await drop([file('model.safetensors', weights)]);
        await until(
          'the missing config refused',
          async () => /dropped files\/config\.json: missing/.test((await error.textContent()) ?? '') || undefined,
        );
        assert.equal(await page.getByTestId('model-name').textContent(), 'gpt2 (dropped folder)', 'the model before stays');

        // 3. The same model dropped as loose files: loaded, the same numbers.
        await drop([file('config.json', config), file('model.safetensors', weights)]);
        await page.getByTestId('model-drop-loaded').waitFor();
        assert.equal(await page.getByTestId('model-name').textContent(), 'dropped files (dropped folder)');
        await promptRows('dropped files, Prompt view');
        assert.deepEqual(
          errors.filter((e) => !e.includes('the server responded with a status of 404')),
          [],
          'the page logged errors',
        );
      });
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  for (const isolated of [true, false]) {
    it(
      isolated ? 'with COOP/COEP: wasm threads, the Node numbers' : 'without COOP/COEP: one thread with a visible note, the Node numbers',
      async () => {
        const server = await serveStatic({ '/': join(dir, 'site') }, isolated);
        const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
        try {
          const { page, errors } = await openPage(context, `${server.url}/`);
          page.setDefaultTimeout(120_000);
          await page.getByTestId('engine-note').waitFor();
          await page.getByTestId('model-info').waitFor();
          const runtime = (await page.getByTestId('engine-runtime').textContent()) ?? '';
          if (isolated) {
            assert.match(runtime, /^onnxruntime-web \(wasm SIMD, \d+ threads?\)$/);
            assert.equal(await page.getByTestId('engine-threads-note').count(), 0);
          } else {
            assert.equal(runtime, 'onnxruntime-web (wasm SIMD, 1 thread)');
            assert.match((await page.getByTestId('engine-threads-note').textContent()) ?? '', /not cross-origin isolated/);
          }
          await views(page);
          // The only failed loads: the probe for a server (/api/model) and the model's optional files.
          const allowed =
            /^GET \/(api\/model|model\/(model\.safetensors\.index\.json|special_tokens_map\.json|generation_config\.json|tuned-lens\/config\.json)) 404$/;
          assert.deepEqual(
            server.log.filter((l) => l.endsWith(' 404') && !allowed.test(l)),
            [],
          );
          assert.deepEqual(
            errors.filter((e) => !e.includes('the server responded with a status of 404')),
            [],
            'the page logged errors',
          );
        } finally {
          await context.close();
          await server.close();
        }
      },
    );
  }
});
