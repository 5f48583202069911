/**
 * Runs test/browser/model-page.ts in headless Chromium against a local static server (the
 * default model at /model/, onnxruntime-web's wasm files at /ort/), cross-origin isolated or
 * not. Shared by test/browser-model.test.ts and bench/browser.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Browser } from 'playwright-core';
import { launchChromium, openPage, ROOT } from '../e2e/harness.js';
import { bundleForBrowser } from './bundle.js';
import { serveStatic } from './static-server.js';
import type { ModelRunInput, ModelRunReport } from './model-page.js';

export type { ModelRunInput, ModelRunReport };

export const ORT_WEB_DIST = join(ROOT, 'node_modules/onnxruntime-web/dist');
export const DEFAULT_MODEL = join(ROOT, 'models/default');

/** A bundled model page and a browser; `run` opens a fresh page per call. Close it in `finally`. */
export interface ModelPageRunner {
  run(input: Omit<ModelRunInput, 'wasmBase' | 'modelBase'>, isolated: boolean): Promise<ModelRunReport>;
  close(): Promise<void>;
}

export async function modelPageRunner(): Promise<ModelPageRunner> {
  const browser: Browser = await launchChromium();
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-browser-model-'));
  try {
    await bundleForBrowser(join(ROOT, 'test/browser/model-page.ts'), join(dir, 'model-page.js'));
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>model</title><script type="module" src="model-page.js"></script>',
    );
  } catch (e) {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    async run(input, isolated) {
      const server = await serveStatic({ '/': dir, '/ort/': ORT_WEB_DIST, '/model/': DEFAULT_MODEL }, isolated);
      const context = await browser.newContext();
      try {
        const { page, errors } = await openPage(context, `${server.url}/`);
        page.setDefaultTimeout(240_000);
        await page.waitForFunction(() => 'glassboxModelRun' in globalThis);
        const report = (await page.evaluate(
          (i) => (globalThis as unknown as { glassboxModelRun: (i: unknown) => Promise<unknown> }).glassboxModelRun(i),
          { ...input, wasmBase: `${server.url}/ort/`, modelBase: `${server.url}/model/` },
        )) as ModelRunReport;
        // modelFromUrl asks for the optional files of a model folder; their 404s are the only
        // failed loads allowed (Chromium logs each as a console error).
        const optional = /^GET \/model\/(model\.safetensors\.index\.json|special_tokens_map\.json|generation_config\.json) 404$/;
        const notFound = server.log.filter((l) => l.endsWith(' 404'));
        const unexpected = notFound.filter((l) => !optional.test(l));
        const otherErrors = errors.filter((e) => !e.includes('the server responded with a status of 404'));
        if (unexpected.length > 0 || otherErrors.length > 0)
          throw new Error(`the page failed:\n${[...unexpected, ...otherErrors].join('\n')}`);
        return report;
      } finally {
        await context.close();
        await server.close();
      }
    },
    async close() {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
