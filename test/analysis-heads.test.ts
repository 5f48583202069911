/**
 * Attention head detectors on a hand-built model whose previous-token, duplicate-token and
 * induction heads are set by hand, and against a direct reading of the patterns on a fixture model.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  attentionPattern,
  duplicateTokenScores,
  headScores,
  inductionCircuitModel,
  inductionScores,
  previousTokenScores,
  repeatedRandomTokens,
} from '../src/analysis/index.js';
import { FIXTURES, loadFixtureModel, maxDiff } from './fixture-utils.js';
import { numbers } from './helpers.js';

/** The index of the largest entry and the largest of the others. */
function best(scores: number[]): { at: number; value: number; rest: number } {
  const at = scores.indexOf(Math.max(...scores));
  return { at, value: scores[at]!, rest: Math.max(...scores.filter((_, i) => i !== at)) };
}

describe('head detectors on a hand-built model', () => {
  const model = inductionCircuitModel();
  const { scores: ind, tokens } = inductionScores(model, { seqLen: 6, batch: 3, seed: 1 });

  it('finds the previous-token head L0H0 (score ~1, the others lower)', () => {
    const b = best(numbers(previousTokenScores(model, tokens)));
    assert.equal(b.at, 0); // [layer 0, head 0]
    assert.ok(b.value > 0.999, `score ${b.value}`);
    assert.ok(b.rest < 0.5, `next best ${b.rest}`);
  });

  it('finds the duplicate-token head L0H1', () => {
    const b = best(numbers(duplicateTokenScores(model, tokens)));
    assert.equal(b.at, 1);
    assert.ok(b.value > 0.999 && b.rest < 0.01, JSON.stringify(b));
  });

  it('finds the induction head L1H0 on repeated random tokens', () => {
    const b = best(numbers(ind));
    assert.equal(b.at, 2); // [layer 1, head 0]
    assert.ok(b.value > 0.999 && b.rest < 0.01, JSON.stringify(b));
    // On [BOS, r, r] with distinct tokens the general induction rule gives the same scores.
    assert.ok(maxDiff(headScores(model, tokens, ['induction']).induction!, ind) < 1e-6);
  });

  it('attentionPattern is the head slice of hook_pattern: L0H0 looks one back', () => {
    const prompt = [0, 3, 1, 4, 1, 5];
    const p = attentionPattern(model, prompt, 0, 0);
    assert.deepEqual(p.shape, [1, 6, 6]);
    const { cache } = model.runWithCache([prompt], { names: ['blocks.0.attn.hook_pattern'] });
    assert.equal(maxDiff(p, cache.get('blocks.0.attn.hook_pattern').index([null, 0])), 0);
    const v = numbers(p);
    for (let q = 1; q < 6; q++) assert.ok(v[q * 6 + q - 1]! > 0.999);
    assert.throws(() => attentionPattern(model, prompt, 2, 0), /layer 2 is out of range/);
    assert.throws(() => attentionPattern(model, prompt, 0, 2), /head 2 is out of range/);
  });

  it('repeatedRandomTokens: [BOS, r, r], r distinct, no special tokens, reproducible', () => {
    const rows = repeatedRandomTokens(model, { seqLen: 5, batch: 2, seed: 7 });
    assert.deepEqual(rows, repeatedRandomTokens(model, { seqLen: 5, batch: 2, seed: 7 }));
    for (const r of rows) {
      assert.equal(r.length, 11);
      assert.equal(r[0], 0);
      assert.deepEqual(r.slice(1, 6), r.slice(6));
      assert.equal(new Set(r.slice(1, 6)).size, 5);
      assert.ok(!r.slice(1).includes(0));
    }
    assert.equal(repeatedRandomTokens(model, { seqLen: 4, prependBos: false })[0]!.length, 8);
    assert.throws(() => repeatedRandomTokens(model, { seqLen: 10 }), /does not fit/);
  });
});

describe('head detectors read the patterns', () => {
  it('previous-token and duplicate-token scores equal a direct average over the pattern', () => {
    const model = loadFixtureModel(FIXTURES, 'gpt2');
    const toks = [
      [313, 312, 313, 122, 55, 312, 34, 313],
      [5, 6, 7, 5, 6, 7, 8, 9],
    ];
    const s = 8;
    const prev = numbers(previousTokenScores(model, toks));
    const dup = numbers(duplicateTokenScores(model, toks));
    for (let l = 0; l < 2; l++)
      for (let h = 0; h < 4; h++) {
        const p = numbers(attentionPattern(model, toks, l, h)); // [batch, q, k]
        let sumPrev = 0;
        let sumDup = 0;
        let nDup = 0;
        toks.forEach((row, r) => {
          for (let q = 1; q < s; q++) sumPrev += p[(r * s + q) * s + q - 1]!;
          for (let q = 0; q < s; q++) {
            const ks = row.slice(0, q).flatMap((t, k) => (t === row[q] ? [k] : []));
            if (ks.length) nDup++;
            for (const k of ks) sumDup += p[(r * s + q) * s + k]!;
          }
        });
        assert.ok(Math.abs(prev[l * 4 + h]! - sumPrev / (2 * (s - 1))) < 1e-6);
        assert.ok(Math.abs(dup[l * 4 + h]! - sumDup / nDup) < 1e-6);
      }
  });
});
