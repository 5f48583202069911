/**
 * docs/sae.md's workbench screenshots, made from the SAE the doc trains (not the browser test's
 * built one): serves it with the doc's command (`glassbox serve default --sae DIR`, through
 * `startServer`), opens the feature page and the features-on-a-prompt view in Chromium, and
 * writes docs/img/workbench-feature-page.png and docs/img/workbench-features-on-prompt.png.
 *
 * Usage (after the doc's train, features and explain steps):
 *   node --import tsx test/e2e/doc-screenshots.ts runs/sae-topk [feature (default 600)] [out dir (default docs/img)]
 */
import { resolve } from 'node:path';
import { buildWeb, launchChromium, openPage, ROOT, startServer, WEB_DIST } from './harness.js';

const [saeArg, featureArg = '600', outArg = 'docs/img'] = process.argv.slice(2);
if (!saeArg) throw new Error('usage: doc-screenshots.ts SAE_DIR [feature] [out dir]');
const saeDir = resolve(saeArg);
const out = resolve(ROOT, outArg);
const PROMPT = 'In 1869 the receipts were $2,527,570, and the whale went down.';

buildWeb();
const server = await startServer(WEB_DIST, 'default', ['--sae', saeDir]);
const browser = await launchChromium();
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const id = saeDir.split('/').pop()!;
  const feature = await openPage(context, `${server.url}#/feature?sae=${id}&feature=${featureArg}`);
  await feature.page.getByTestId('feature-title').waitFor();
  await feature.page.getByTestId('steer-prompt').fill('The price was $');
  await feature.page.getByTestId('steer-scale').fill('8');
  await feature.page.getByTestId('steer-n').fill('8');
  await feature.page.getByTestId('steer-run').click();
  await feature.page.getByTestId('feature-steered').waitFor({ timeout: 120_000 });
  await feature.page.screenshot({ path: `${out}/workbench-feature-page.png`, fullPage: true });
  const fires = await openPage(context, `${server.url}#/fires?prompt=${encodeURIComponent(PROMPT)}&hl=${id}%3A${featureArg}`);
  await fires.page.getByTestId('fires-table').waitFor({ timeout: 120_000 });
  await fires.page.getByTestId('fires-highlight').waitFor({ timeout: 120_000 });
  await fires.page.screenshot({ path: `${out}/workbench-features-on-prompt.png`, fullPage: true });
  const errors = [...feature.errors, ...fires.errors];
  if (errors.length > 0) throw new Error(`the pages logged errors:\n${errors.join('\n')}`);
  console.log(`wrote ${out}/workbench-feature-page.png and ${out}/workbench-features-on-prompt.png`);
} finally {
  await browser.close();
  await server.stop();
}
