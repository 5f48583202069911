/**
 * `glassbox serve`: loads a model directory, listens on 127.0.0.1, prints the URL, answers the
 * API, and stops on SIGINT; bad flags are one-line errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TOKENIZER_DIR, tinyModel } from './server-helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

describe('glassbox serve', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'glassbox-serve-'));
    tinyModel().save(dir, { tokenizer: join(TOKENIZER_DIR, 'tokenizer.json') });
    copyFileSync(join(TOKENIZER_DIR, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves a model directory on 127.0.0.1 and stops on SIGINT', async () => {
    const child = spawn(
      process.execPath,
      [...CLI, 'serve', dir, '--port', '0', '--max-tokens', '16', '--max-jobs', '1', '--session-budget', '64'],
      {
        cwd: ROOT,
      },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed; stderr: ${err}`)), 60_000);
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.on('exit', () => reject(new Error(`exited early; stderr: ${err}`)));
      });
      assert.match(out, /serving .* \(gpt2, 2 layers\)/);
      const info = (await (await fetch(`${url}api/model`)).json()) as {
        nLayers: number;
        hasTokenizer: boolean;
        limits: { maxTokens: number; maxJobs: number };
      };
      assert.equal(info.nLayers, 2);
      assert.equal(info.hasTokenizer, true);
      assert.equal(info.limits.maxTokens, 16);
      assert.equal(info.limits.maxJobs, 1);
      const r = await fetch(`${url}api/forward`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'Hello world', topK: 1 }),
      });
      assert.equal(r.status, 200);
      assert.equal(err, '', 'no warning on 127.0.0.1');
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('--open hands the URL to the browser ($BROWSER), as `npm start` does', async () => {
    const browser = join(dir, 'browser.sh');
    const opened = join(dir, 'opened.txt');
    writeFileSync(browser, `#!/bin/sh\necho "$1" > '${opened}'\n`);
    chmodSync(browser, 0o755);
    const child = spawn(process.execPath, [...CLI, 'serve', dir, '--port', '0', '--open'], {
      cwd: ROOT,
      env: { ...process.env, BROWSER: browser },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const deadline = Date.now() + 60_000;
      while (!existsSync(opened) || readFileSync(opened, 'utf8').trim() === '') {
        if (Date.now() > deadline) throw new Error(`the browser was not started; stdout: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const url = readFileSync(opened, 'utf8').trim();
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      assert.ok(out.includes(url), 'the URL opened is the one printed');
      assert.equal((await fetch(`${url}api/model`)).status, 200);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('bad flags are one-line errors', async () => {
    for (const [args, pattern] of [
      [['serve', dir, '--port', 'abc'], /--port must be an integer in 0\.\.65535, got 'abc'/],
      [['serve', dir, '--port', '70000'], /--port must be an integer/],
      [['serve', dir, '--port', '0', '--max-tokens', '100'], /maxTokens 100 exceeds the model's context of 32 tokens/],
      [['serve', join(dir, 'missing')], /no such directory/],
      [['serve', dir, '--session-budget', '0'], /--session-budget must be an integer in 1\.\.1073741824, got '0'/],
      [['serve', dir, '--sae', join(dir, 'no-sae')], /no-sae: not found \(--sae takes an SAE directory/],
      [['serve', dir, '--sae', dir], /cfg\.json: not found \(--sae takes an SAE directory in SAELens layout/],
    ] as const) {
      const r = await promisify(execFile)(process.execPath, [...CLI, ...args], { cwd: ROOT }).then(
        () => ({ code: 0, err: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }),
      );
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err, pattern);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
  });
});
