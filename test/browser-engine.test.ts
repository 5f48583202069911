/**
 * The engine's op tests in headless Chromium: the same test files Node runs (elementwise, reduce,
 * linalg, indexing, nn, tensor, jit, grad), bundled with the `glassbox/browser` entry, run in a
 * page on onnxruntime-web's wasm runtime, so every ONNX lowering, jit and grad is checked there
 * against the JS reference kernels. Once cross-origin isolated (threads), once not (one thread,
 * with the note saying why).
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH), as the workbench's e2e tests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Browser } from 'playwright-core';
import { launchChromium, openPage, ROOT } from './e2e/harness.js';
import { bundleForBrowser } from './browser/bundle.js';
import { serveStatic, type StaticServer } from './browser/static-server.js';
import type { TestResult } from './browser/shim-test.js';

const ORT_WEB_DIST = join(ROOT, 'node_modules/onnxruntime-web/dist');

interface OpTestReport {
  runtime: string;
  threads: number;
  threadsNote: string | null;
  crossOriginIsolated: boolean;
  results: TestResult[];
  compiles: number;
  runs: number;
}

describe('engine op tests in Chromium on onnxruntime-web', { timeout: 300_000 }, () => {
  let dir: string;
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
    dir = mkdtempSync(join(tmpdir(), 'glassbox-browser-ops-'));
    await bundleForBrowser(join(ROOT, 'test/browser/op-tests-page.ts'), join(dir, 'op-tests.js'), {
      alias: {
        'node:test': join(ROOT, 'test/browser/shim-test.ts'),
        'node:assert/strict': join(ROOT, 'test/browser/shim-assert.ts'),
        [join(ROOT, 'src/index.ts')]: join(ROOT, 'src/browser.ts'),
      },
    });
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>op tests</title><script type="module" src="op-tests.js"></script>',
    );
  });

  after(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function runIn(isolated: boolean): Promise<OpTestReport> {
    let server: StaticServer | undefined;
    const context = await browser.newContext();
    try {
      server = await serveStatic({ '/': dir, '/ort/': ORT_WEB_DIST }, isolated);
      const { page, errors } = await openPage(context, `${server.url}/`);
      await page.waitForFunction(() => 'glassboxOpTests' in globalThis);
      const report = (await page.evaluate(
        (base) => (globalThis as unknown as { glassboxOpTests: (b: string) => Promise<unknown> }).glassboxOpTests(base),
        `${server.url}/ort/`,
      )) as OpTestReport;
      assert.deepEqual(
        errors.filter((e) => !e.includes('WebAssembly multi-threading')),
        [],
        'the page logged errors',
      );
      return report;
    } finally {
      await context.close();
      await server?.close();
    }
  }

  function assertAllPass(report: OpTestReport): void {
    const failed = report.results.filter((r) => !r.ok);
    assert.ok(report.results.length > 100, `only ${report.results.length} tests ran`);
    // The lowerings ran on onnxruntime-web (each op test compiles eager and jitted graphs).
    assert.ok(
      report.compiles > 500 && report.runs > report.compiles,
      `${report.compiles} compiles, ${report.runs} runs on onnxruntime-web`,
    );
    console.log(`# ${report.runtime}: ${report.results.length} op tests, ${report.compiles} graphs compiled, ${report.runs} runs`);
    assert.deepEqual(
      failed.map((r) => `${r.name}: ${r.error}`),
      [],
      `${failed.length} of ${report.results.length} op tests failed in the browser`,
    );
  }

  it('cross-origin isolated: wasm with threads', async () => {
    const report = await runIn(true);
    assert.equal(report.crossOriginIsolated, true);
    assert.equal(report.threadsNote, null);
    assert.match(report.runtime, /^onnxruntime-web \(wasm SIMD, \d+ threads?\)$/);
    assertAllPass(report);
  });

  it('not isolated: one thread, and the note says why', async () => {
    const report = await runIn(false);
    assert.equal(report.crossOriginIsolated, false);
    assert.equal(report.threads, 1);
    assert.match(report.threadsNote ?? '', /not cross-origin isolated \(COOP\/COEP headers\)/);
    assertAllPass(report);
  });
});
