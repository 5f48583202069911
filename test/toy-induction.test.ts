/**
 * Induction heads (Olsson et al. 2022) reproduced: a 2-layer attention-only transformer trained on
 * random sequences ending in a repeated segment grows a layer-0 previous-token head and layer-1
 * induction heads, and predicts the repeat almost perfectly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFromDirectory } from '../src/model/pretrained.js';
import { trainInduction } from '../src/train/toys/induction.js';

test('a 2-layer attention-only model trained on repeated random tokens forms induction heads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-induction-'));
  const r = await trainInduction({ steps: 1500, seed: 0, progress: false, outDir: join(dir, 'run') });
  const fmt = (m: number[][]) => m.map((row) => row.map((v) => v.toFixed(2)).join(' ')).join(' | ');
  const maxInduction1 = Math.max(...r.inductionScores[1]!);
  const maxPrevious0 = Math.max(...r.previousTokenScores[0]!);
  assert.ok(maxInduction1 > 0.7, `layer-1 induction scores ${fmt(r.inductionScores)}`);
  assert.ok(maxPrevious0 > 0.7, `layer-0 previous-token scores ${fmt(r.previousTokenScores)}`);
  // Induction needs composition: no layer-0 head can do it alone.
  assert.ok(Math.max(...r.inductionScores[0]!) < 0.3, `layer-0 induction scores ${fmt(r.inductionScores)}`);
  // The random half is unpredictable (log 64 = 4.16 nats); the repeat is nearly free.
  assert.ok(r.lossFirstHalf > 3.5, `first-half loss ${r.lossFirstHalf}`);
  assert.ok(r.lossRepeatedHalf < 0.5 * r.lossFirstHalf, `repeated-half loss ${r.lossRepeatedHalf} vs ${r.lossFirstHalf}`);

  // The model saves in glassbox's format (attention-only has no Hugging Face equivalent) and loads back.
  assert.equal(r.model.save(join(dir, 'model')), 'glassbox');
  const loaded = loadFromDirectory(join(dir, 'model'));
  const probe = [[1, 2, 3, 4, 5, 1, 2, 3, 4, 5]];
  const a = r.model.forward(probe).dataSync() as Float32Array;
  const b = loaded.forward(probe).dataSync() as Float32Array;
  assert.deepEqual(Array.from(b), Array.from(a));
  assert.ok(readdirSync(join(dir, 'run', 'checkpoints')).includes('latest.json'));
});
