/** Analysis commands on the default model, driven as a user would; numbers checked against the library. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HookedTransformer } from '../src/model/index.js';
import { directLogitAttribution, inductionScores, patchResidPre, toSingleToken } from '../src/analysis/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
function glassbox(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('analysis commands', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-analysis-'));
  const model = await HookedTransformer.fromPretrained('default');
  // The workbench's default induction pair, which the default model solves (clean 2.78, corrupted -5.22).
  const clean = 'Then Queequeg met Starbuck on deck, and later Queequeg met';
  const corrupted = 'Then Queequeg met Stubb on deck, and later Queequeg met';

  it('lens prints one row per layer', () => {
    const r = glassbox('lens', 'default', 'The whale rose out of the');
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 1 + model.cfg.nLayers + 1);
    assert.match(lines[1]!, /^0_pre/);
  });

  it('dla writes components that sum to the logit difference the library computes', () => {
    const file = join(dir, 'dla.json');
    const r = glassbox('dla', 'default', clean, '--answer', ' Starbuck', '--wrong', ' Stubb', '--json', file);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(readFileSync(file, 'utf8'));
    const lib = directLogitAttribution(model, clean, { answer: toSingleToken(model, ' Starbuck'), wrong: toSingleToken(model, ' Stubb') });
    assert.ok(Math.abs(out.total - lib.values.reduce((s, v) => s + v, 0)) < 1e-4);
    assert.ok(out.total > 1, `the model solves the prompt: ${out.total}`);
    assert.equal(out.components.length, lib.labels.length);
  });

  it('patch writes the residual grid the library computes, and refuses prompts of different lengths', () => {
    const file = join(dir, 'patch.json');
    const r = glassbox(
      'patch',
      'default',
      '--clean',
      clean,
      '--corrupted',
      corrupted,
      '--answer',
      ' Starbuck',
      '--wrong',
      ' Stubb',
      '--json',
      file,
      '--svg',
      join(dir, 'p'),
    );
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(readFileSync(file, 'utf8'));
    const lib = patchResidPre(model, {
      clean,
      corrupted,
      answer: toSingleToken(model, ' Starbuck'),
      wrong: toSingleToken(model, ' Stubb'),
    }).toArray() as number[][];
    out.residPre.forEach((row: number[], l: number) => row.forEach((v, p) => assert.ok(Math.abs(v - lib[l]![p]!) < 1e-4)));
    assert.ok(existsSync(join(dir, 'p-resid.svg')) && existsSync(join(dir, 'p-heads.svg')));
    const bad = glassbox(
      'patch',
      'default',
      '--clean',
      clean,
      '--corrupted',
      'Then Queequeg met',
      '--answer',
      ' Starbuck',
      '--wrong',
      ' Stubb',
    );
    assert.equal(bad.code, 1);
    assert.match(bad.err, /patching needs prompts of the same length/);
  });

  it('heads prints the three score matrices; steer prints both continuations; bad tokens get one line', () => {
    const h = glassbox('heads', 'default', '--seq-len', '20', '--json', join(dir, 'heads.json'));
    assert.equal(h.code, 0, h.err);
    const scores = JSON.parse(readFileSync(join(dir, 'heads.json'), 'utf8'));
    assert.equal(scores.induction.length, model.cfg.nLayers);
    const library = inductionScores(model, { seed: 0, batch: 4, seqLen: 20 }).scores.toArray() as number[][];
    scores.induction.forEach((row: number[], l: number) => row.forEach((v, h) => assert.ok(Math.abs(v - library[l]![h]!) < 1e-6)));
    const s = glassbox(
      'steer',
      'default',
      'I believe that the',
      '--positive',
      'The whale and the sea',
      '--negative',
      'The Congress and the nation',
      '--tokens',
      '8',
    );
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /^unsteered: ".*"\nsteered: {3}".*"\n$/);
    const bad = glassbox('dla', 'default', clean, '--answer', ' Ishmael');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--answer: ' Ishmael' is not a single token/);
  });
});
