/** The default-model demo (`npm run demo`) and the engine demo run as a user would run them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = (file: string) => spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, encoding: 'utf8' });

test('examples/default-model.ts (npm run demo) opens the default model and prints each section', () => {
  const r = run('examples/default-model.ts');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^default model: 4 layers, d_model 192, 6 heads, vocabulary 4096, context 256/m);
  assert.match(r.stdout, /greedy continuation: ".+"/);
  assert.match(r.stdout, /logit lens at the last position:\n {2}0_pre/);
  assert.match(r.stdout, /direct logit attribution to ".*" \(top 5 of \d+ components\):/);
  assert.match(r.stdout, /head scores \(layer x head\)/);
});

test('examples/engine-demo.ts (npm run demo:engine) trains its MLP', () => {
  const r = run('examples/engine-demo.ts');
  assert.equal(r.status, 0, r.stderr);
});

test('examples/analysis-tour.ts (npm run tour) runs every analysis verb on the default model', () => {
  const r = run('examples/analysis-tour.ts');
  assert.equal(r.status, 0, r.stderr);
  for (const section of [
    'logit lens',
    'direct logit attribution',
    'induction scores',
    'ablation',
    'activation patching',
    'steering',
    'linear probe',
    'tuned lens',
  ])
    assert.match(r.stdout, new RegExp(`## ${section}`));
});
