/**
 * Induction heads (Olsson et al. 2022) reproduced: a 2-layer attention-only transformer trained on
 * random sequences ending in a repeated segment grows a layer-0 previous-token head and layer-1
 * induction heads, and predicts the repeat almost perfectly. The model is trained once; the head
 * detector, activation patching and attribution patching then each have to find its circuit
 * (docs/analysis.md, "Finding the induction head in the toy model", runs the same analysis and shows
 * the tables these tests log).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRNG } from '../src/tensor/index.js';
import { loadFromDirectory } from '../src/model/pretrained.js';
import { trainInduction, type InductionResult } from '../src/recipes/toys/induction.js';
import { attributionPatching, inductionScores, patchHeadOut, previousTokenScores, type PatchingProblem } from '../src/analysis/index.js';

const fmt = (m: number[][]) => m.map((row) => row.map((v) => v.toFixed(2)).join(' ')).join(' | ');

/** Logs a [layer][head] table, one diagnostic line per layer (TAP escapes newlines). */
function table(t: TestContext, title: string, m: number[][]): void {
  t.diagnostic(title);
  m.forEach((row, l) => t.diagnostic(`  L${l} ${row.map((v) => v.toFixed(3).padStart(7)).join('')}`));
}

/** The head with the largest value, optionally only among `layers`. */
function topHead(m: number[][], layers: readonly number[] = m.map((_, l) => l)): { layer: number; head: number; value: number } {
  let best = { layer: -1, head: -1, value: -Infinity };
  for (const layer of layers)
    m[layer]!.forEach((value, head) => {
      if (value > best.value) best = { layer, head, value };
    });
  return best;
}

const HALF = 16;

/**
 * Clean/corrupted pairs where only induction predicts the answer. Each clean row is HALF distinct
 * random tokens r, then r again without its last token: [r0 .. r15, r0 .. r14], 31 tokens. The
 * last token is r14, so the next token, r15, follows only from "the token after r14's earlier
 * occurrence". The corrupted row replaces one token of the first copy with a token x that appears
 * nowhere in the clean row, and x is the wrong token of the logit difference:
 * - 'answer' (position 15, r15 := x): the corrupted prompt's induction answer becomes x. Only
 *   what the induction heads copy (their OV circuit) differs, so only layer-1 heads can restore it.
 * - 'previous' (position 14, r14 := x): r14 no longer occurs earlier, so there is nothing to copy.
 *   What is missing is "my previous token is r14" at position 15, which the layer-0
 *   previous-token head writes and the induction heads' keys read (K-composition).
 */
function inductionProblem(corrupt: 'answer' | 'previous', rows: number, seed: number, dVocab: number): PatchingProblem {
  const rng = new PRNG(seed);
  const clean: number[][] = [];
  const corrupted: number[][] = [];
  const answer: number[] = [];
  const wrong: number[] = [];
  for (let b = 0; b < rows; b++) {
    const r: number[] = [];
    while (r.length < HALF + 1) {
      const t = rng.int(dVocab);
      if (!r.includes(t)) r.push(t);
    }
    const x = r.pop()!;
    const row = [...r, ...r.slice(0, HALF - 1)];
    const bad = row.slice();
    bad[corrupt === 'answer' ? HALF - 1 : HALF - 2] = x;
    clean.push(row);
    corrupted.push(bad);
    answer.push(r[HALF - 1]!);
    wrong.push(x);
  }
  return { clean, corrupted, answer, wrong };
}

describe('the induction toy', () => {
  let dir: string;
  let r: InductionResult;
  /** The detectors' [layer][head] scores on 64 rows of 16 distinct random tokens written twice. */
  let induction: number[][];
  let previous: number[][];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glassbox-induction-'));
    r = await trainInduction({ steps: 1500, seed: 0, progress: false, outDir: join(dir, 'run') });
    const detected = inductionScores(r.model, { seqLen: HALF, batch: 64 });
    induction = detected.scores.toArray() as number[][];
    previous = previousTokenScores(r.model, detected.tokens).toArray() as number[][];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a 2-layer attention-only model trained on repeated random tokens forms induction heads', () => {
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

  test('the head detectors find the induction heads in layer 1 and the previous-token head in layer 0', (t) => {
    table(t, 'induction scores', induction);
    table(t, 'previous-token scores', previous);
    const topInduction = topHead(induction);
    const topPrevious = topHead(previous);
    t.diagnostic(
      `detector: top induction head L${topInduction.layer}H${topInduction.head}, top previous-token head L${topPrevious.layer}H${topPrevious.head}`,
    );
    assert.equal(topInduction.layer, 1, `top induction head ${fmt(induction)}`);
    assert.equal(topPrevious.layer, 0, `top previous-token head ${fmt(previous)}`);
    // Every layer-1 head outranks every layer-0 head: the toy grows four induction heads, whose
    // scores are within a few hundredths of each other (which one is on top changes with the seed
    // of the detector's tokens), so the detector alone cannot say which one does the most work.
    assert.ok(Math.min(...induction[1]!) > Math.max(...induction[0]!), fmt(induction));
  });

  test('activation patching and attribution patching find the same induction head', (t) => {
    const problem = inductionProblem('answer', 32, 1, r.model.cfg.dVocab);
    const patched = patchHeadOut(r.model, problem).toArray() as number[][];
    const atp = attributionPatching(r.model, problem);
    const estimated = atp.headOut.toArray() as number[][];
    t.diagnostic(`logit diff: clean ${atp.cleanValue.toFixed(2)}, corrupted ${atp.corruptedValue.toFixed(2)}`);
    table(t, 'head output patching (clean = 1, corrupted = 0)', patched);
    table(t, 'attribution patching estimate', estimated);
    const top = topHead(patched);
    const topAtp = topHead(estimated);
    t.diagnostic(`patching: top head L${top.layer}H${top.head}; attribution patching: L${topAtp.layer}H${topAtp.head}`);
    // The answer differs only in what the induction heads copy, so the head that restores the
    // most is a layer-1 head (one of the heads the detector scores above every layer-0 head), and
    // attribution patching ranks the same head first.
    assert.equal(top.layer, 1, `head patching ${fmt(patched)}`);
    assert.ok(induction[1]![top.head]! > Math.max(...induction[0]!), fmt(induction));
    assert.deepEqual(
      [topAtp.layer, topAtp.head],
      [top.layer, top.head],
      `attribution patching ${fmt(estimated)} vs patching ${fmt(patched)}`,
    );
  });

  test('activation patching finds the previous-token head the induction heads read', (t) => {
    const problem = inductionProblem('previous', 32, 2, r.model.cfg.dVocab);
    const patched = patchHeadOut(r.model, problem).toArray() as number[][];
    const atp = attributionPatching(r.model, problem);
    t.diagnostic(`logit diff: clean ${atp.cleanValue.toFixed(2)}, corrupted ${atp.corruptedValue.toFixed(2)}`);
    table(t, 'head output patching (clean = 1, corrupted = 0)', patched);
    table(t, 'attribution patching estimate', atp.headOut.toArray() as number[][]);
    const topPrevious = topHead(previous);
    const top0 = topHead(patched, [0]);
    const top1 = topHead(patched, [1]);
    t.diagnostic(
      `patching: top layer-0 head L0H${top0.head} (${top0.value.toFixed(3)}), top layer-1 head L1H${top1.head} (${top1.value.toFixed(3)})`,
    );
    // The detector's previous-token head is the layer-0 head that matters, and more than any one
    // induction head: all of them read it, so restoring it restores the match for every one.
    assert.deepEqual([top0.layer, top0.head], [topPrevious.layer, topPrevious.head], `head patching ${fmt(patched)}`);
    assert.ok(top0.value > top1.value, `head patching ${fmt(patched)}`);
  });
});
