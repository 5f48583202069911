/**
 * `glassbox clt train` and `glassbox clt eval` on the default model, as child processes: a few
 * steps write a loadable set and eval.json whose numbers `clt eval` reproduces; bad flags are
 * refused naming the flag.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClt, type CltEvalReport } from '../src/sae/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'glassbox-clt-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function glassbox(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('glassbox clt', () => {
  it('train writes a set that loads, with eval.json; eval reproduces its numbers', () => {
    const out = join(dir, 'run');
    const small = ['--context-size', '16', '--store-batch-size-prompts', '2', '--n-batches-in-buffer', '2', '--eval-rows', '2'];
    const r = glassbox(
      'clt',
      'train',
      'default',
      '--out',
      out,
      '--steps',
      '3',
      '--width',
      '16',
      '--batch-size',
      '32',
      ...small,
      '--no-progress',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /trained CLT\(4 layers, jumprelu, widths 16\/16\/16\/16, 192 -> 192\) for 3 steps/);
    const set = loadClt(out);
    assert.deepEqual(set.widths, [16, 16, 16, 16]);
    assert.equal(set.inputHook(2), 'blocks.2.ln2.hook_normalized');
    const report = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8')) as CltEvalReport & { steps: number };
    assert.equal(report.steps, 3);
    assert.equal(report.fvu.length, 4);
    assert.equal(report.positions, 2 * 15); // the BOS position left out
    const e = glassbox('clt', 'eval', out, '--context-size', '16', '--eval-rows', '2');
    assert.equal(e.code, 0, e.stderr);
    assert.ok(e.stdout.includes(`CE-loss recovered ${(100 * report.ceLossRecovered).toFixed(1)}%`), e.stdout);
  });

  it('refuses bad flags, naming them', () => {
    const bad = glassbox('clt', 'train', 'default', '--out', join(dir, 'bad'), '--activation', 'gelu');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--activation must be one of jumprelu, relu, topk, got 'gelu'/);
    const width = glassbox('clt', 'train', 'default', '--out', join(dir, 'bad'), '--width', '0');
    assert.match(width.stderr, /--width must be an integer >= 1, got '0'/);
  });
});
