/**
 * What the browser tests share: building the web app (web/ -> web/dist, skipped when the build
 * is newer than its sources), launching Debian's Chromium through playwright-core (a clear
 * failure, not a skip, when it is missing), and a page that records its errors.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WEB_DIR = join(ROOT, 'web');
export const WEB_DIST = join(WEB_DIR, 'dist');

/** Where screenshots of each view go (E2E_SCREENSHOTS, default test-artifacts/screenshots). */
export const SCREENSHOT_DIR = resolve(ROOT, process.env.E2E_SCREENSHOTS ?? 'test-artifacts/screenshots');

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/**
 * Builds web/ into web/dist with Vite unless web/dist/index.html is newer than every source
 * (web/src, web/index.html, web/vite.config.ts, web/tsconfig.json); E2E_REBUILD=1 always builds.
 */
export function buildWeb(): { built: boolean; ms: number } {
  const index = join(WEB_DIST, 'index.html');
  const sources = ['src', 'index.html', 'vite.config.ts', 'tsconfig.json'].map((p) => join(WEB_DIR, p)).filter((p) => existsSync(p));
  const fresh = existsSync(index) && statSync(index).mtimeMs > Math.max(...sources.map(newestMtime));
  if (fresh && process.env.E2E_REBUILD !== '1') return { built: false, ms: 0 };
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  if (!existsSync(vite)) throw new Error(`vite is not installed (${vite}); run npm ci`);
  const t0 = Date.now();
  try {
    execFileSync(process.execPath, [vite, 'build', '--config', join(WEB_DIR, 'vite.config.ts'), '--logLevel', 'warn'], {
      cwd: ROOT,
      stdio: 'pipe',
      encoding: 'utf8',
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`building the web app failed:\n${err.stdout ?? ''}${err.stderr ?? ''}\n${err.message}`);
  }
  return { built: true, ms: Date.now() - t0 };
}

/** Launches headless Chromium; fails, naming the fix, when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: the workbench's browser tests need it. ` +
        'Install it with `apt-get install chromium` (Debian; CI does this), or set CHROMIUM_PATH to a Chromium or Chrome binary.',
    );
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--no-first-run',
    ],
    headless: true,
  });
}

/** A page and the errors it has logged (uncaught exceptions and console errors). */
export interface TrackedPage {
  page: Page;
  errors: string[];
}

export async function openPage(context: BrowserContext, url: string): Promise<TrackedPage> {
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return { page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A workbench server running in a child process. */
export interface ServerProcess {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a workbench server in a child process, on 127.0.0.1 and a free port, serving `webRoot`
 * and `model`: test/e2e/server.ts (createServer), or, given `cliArgs`, the CLI as a user runs it,
 * `glassbox serve MODEL --port 0 --web WEBROOT ...cliArgs` (so its flags and start-up are tested
 * too). Resolves with the URL the server prints once listening.
 */
export async function startServer(webRoot: string, model = 'default', cliArgs?: readonly string[]): Promise<ServerProcess> {
  const args = cliArgs
    ? [join(ROOT, 'src', 'cli', 'main.ts'), 'serve', model, '--port', '0', '--web', webRoot, ...cliArgs]
    : [join(ROOT, 'test', 'e2e', 'server.ts'), webRoot, model];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start in 90 s:\n${stderr}`)), 90_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      // test/e2e/server.ts prints {"url": ...}; the CLI, "... at http://127.0.0.1:PORT/".
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before listening:\n${stderr}`));
    });
  });
  return {
    url,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => {
          clearTimeout(kill);
          done();
        });
        child.stdin.end();
        child.kill('SIGTERM');
      }),
  };
}
