/**
 * The `glassbox/browser` entry (src/browser.ts) bundles for a browser: nothing it reaches imports
 * a Node built-in. The check itself is shown to work on an entry that does (src/io).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ROOT } from './e2e/harness.js';
import { bundleForBrowser, NodeBuiltinError } from './browser/bundle.js';

test('glassbox/browser reaches no Node built-in', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-browser-entry-'));
  try {
    const out = join(dir, 'browser.js');
    await bundleForBrowser(join(ROOT, 'src/browser.ts'), out);
    assert.ok(statSync(out).size > 10_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the check names the built-in and the chain of imports that reached it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-browser-entry-'));
  try {
    await assert.rejects(bundleForBrowser(join(ROOT, 'src/io/atomic.ts'), join(dir, 'io.js')), (e: unknown) => {
      assert.ok(e instanceof NodeBuiltinError);
      assert.ok(
        e.reached.some((r) => r.startsWith('node:fs <- src/io/atomic.ts')),
        e.message,
      );
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
