/** `glassbox train ...` driven as a user would (a child process): files written, resume, bad flags. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function glassbox(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('glassbox train', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-train-'));

  it('superposition writes the report, plots and metrics, and --resume continues the finished run', () => {
    const out = join(dir, 'sp');
    const r = glassbox('train', 'superposition', '--out', out, '--steps', '60', '--sparsity', '0,0.9');
    assert.equal(r.code, 0, r.err);
    for (const f of ['summary.txt', 'wtw-S0.svg', 'wtw-S0.9.svg', 'features-S0.9.svg', 'norms.svg', 'metrics.jsonl'])
      assert.ok(existsSync(join(out, f)), `${f} written`);
    assert.match(readFileSync(join(out, 'wtw-S0.9.svg'), 'utf8'), /^<svg/);
    // Without --resume the run directory is protected; with it the finished run loads and reports again.
    const again = glassbox('train', 'superposition', '--out', out, '--steps', '60', '--sparsity', '0,0.9');
    assert.equal(again.code, 1);
    assert.match(again.err, /already holds checkpoints \(latest: step 60\); pass resume/);
    const resumed = glassbox('train', 'superposition', '--out', out, '--steps', '60', '--sparsity', '0,0.9', '--resume');
    assert.equal(resumed.code, 0, resumed.err);
  });

  it('induction writes scores, plots and a model that glassbox loads', () => {
    const out = join(dir, 'ind');
    const r = glassbox('train', 'induction', '--out', out, '--steps', '20');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /induction scores \(layer x head\):\n {2}L0 /);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(report.inductionScores.length, 2);
    assert.equal(report.steps, 20);
    for (const f of ['induction-scores.svg', 'previous-token-scores.svg', 'loss.svg', 'model/config.json', 'model/model.safetensors'])
      assert.ok(existsSync(join(out, f)), `${f} written`);
    const inspect = glassbox('inspect', join(out, 'model'));
    assert.equal(inspect.code, 0, inspect.err);
    assert.match(inspect.out, /positions rotary/);
  });

  it('rejects bad flags with one line', () => {
    const r = glassbox('train', 'grokking', '--out', join(dir, 'g'), '--train-fraction', '2');
    assert.equal(r.code, 1);
    assert.match(r.err, /^glassbox: --train-fraction must be a number in \[0.01, 0.99\], got '2'\n$/);
    const s = glassbox('train', 'superposition', '--out', join(dir, 's'), '--sparsity', '0,x');
    assert.equal(s.code, 1);
    assert.match(s.err, /--sparsity must be a number/);
  });
});
