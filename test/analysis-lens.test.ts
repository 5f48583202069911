/**
 * Logit lens: the accumulated residual stream (TransformerLens's accumulated_resid) and the lens
 * itself, whose last layer must be the model's own logits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { accumulatedResid, inductionCircuitModel, logitLens } from '../src/analysis/index.js';
import { FIXTURES, loadFixtureModel, maxDiff, readJson } from './fixture-utils.js';

const FAMILIES = ['gpt2', 'gpt_neox', 'llama', 'qwen2', 'gemma2'];

describe('logit lens on the TransformerLens fixture models', () => {
  for (const fam of FAMILIES) {
    it(`${fam}: the last layer's lens is the model's logits, and its top tokens are the softmax's`, () => {
      const model = loadFixtureModel(FIXTURES, fam);
      const info = readJson(`${FIXTURES}${fam}/ref.json`) as { cases: Record<string, { tokens: number[][] }> };
      const toks = info.cases.p1!.tokens[0]!;
      const lens = logitLens(model, toks, { topK: 3 });
      const n = model.cfg.nLayers;
      assert.deepEqual(lens.labels, [...Array.from({ length: n }, (_, l) => `${l}_pre`), 'final_post']);
      assert.deepEqual(lens.logits.shape, [n + 1, toks.length, model.cfg.dVocab]);
      const logits = model.forward([toks]);
      const last = lens.logits.slice([{ start: n }]);
      assert.ok(maxDiff(last, logits) < 1e-4, `max diff ${maxDiff(last, logits)}`);
      const probs = logits.softmax(-1).dataSync() as Float32Array;
      const V = model.cfg.dVocab;
      lens.top[n]!.forEach((preds, p) => {
        const row = Array.from(probs.subarray(p * V, (p + 1) * V));
        const sorted = [...row].sort((a, b) => b - a);
        preds.forEach((pred, j) => {
          assert.ok(Math.abs(pred.prob - sorted[j]!) < 1e-5);
          assert.ok(Math.abs(row[pred.token]! - pred.prob) < 1e-5);
        });
      });
    });
  }

  it('accumulatedResid stacks the cached streams with TransformerLens labels', () => {
    const model = loadFixtureModel(FIXTURES, 'gpt2');
    const toks = [[313, 312, 316, 122, 55]];
    const { cache } = model.runWithCache(toks);
    const all = accumulatedResid(model, cache);
    assert.deepEqual(all.labels, ['0_pre', '1_pre', 'final_post']);
    assert.deepEqual(all.resid.shape, [3, 1, 5, 64]);
    assert.equal(maxDiff(all.resid.index([1]), cache.get('blocks.1.hook_resid_pre')), 0);
    assert.equal(maxDiff(all.resid.index([2]), cache.get('blocks.1.hook_resid_post')), 0);

    const mid = accumulatedResid(model, cache, { inclMid: true });
    assert.deepEqual(mid.labels, ['0_pre', '0_mid', '1_pre', '1_mid', 'final_post']);
    assert.equal(maxDiff(mid.resid.index([3]), cache.get('blocks.1.hook_resid_mid')), 0);
    assert.deepEqual(accumulatedResid(model, cache, { incidentalMid: true }).labels, mid.labels);
    assert.deepEqual(accumulatedResid(model, cache, { layer: 1, mlpInput: true }).labels, ['0_pre', '1_pre', '1_mid']);
    assert.deepEqual(accumulatedResid(model, cache, { layer: 0 }).labels, ['0_pre']);

    const atPos = accumulatedResid(model, cache, { pos: -1 });
    assert.deepEqual(atPos.resid.shape, [3, 1, 64]);
    assert.equal(maxDiff(atPos.resid.index([0]).reshape([1, 1, 64]), cache.get('blocks.0.hook_resid_pre').slice([null, { start: 4 }])), 0);
    assert.deepEqual(accumulatedResid(model, cache, { pos: { start: 1, end: 3 } }).resid.shape, [3, 1, 2, 64]);

    // applyLn: ln_final recomputed per entry; on the final entry that is ln_final's own output.
    const { cache: c2 } = model.runWithCache(toks, {
      names: ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre', 'blocks.1.hook_resid_post', 'ln_final.hook_normalized'],
    });
    const ln = accumulatedResid(model, c2, { applyLn: true });
    assert.ok(maxDiff(ln.resid.index([2]), c2.get('ln_final.hook_normalized')) < 1e-5);
    assert.throws(() => accumulatedResid(model, cache, { layer: 3 }), /out of range/);
  });
});

describe('logit lens on a hand-built induction model', () => {
  it('sees the MLP write token 9 after block 0 and the induction head copy the answer at the end', () => {
    const model = inductionCircuitModel();
    // [BOS, 1, 2, 3, 4, 5, 1]: after the second 1 comes 2 (what followed the first 1).
    const lens = logitLens(model, [0, 1, 2, 3, 4, 5, 1], { topK: 2 });
    const last = 6;
    // Embeddings write nothing W_U reads: uniform.
    for (const p of lens.top[0]![last]!) assert.ok(Math.abs(p.prob - 0.1) < 1e-6);
    assert.equal(lens.top[1]![last]![0]!.token, 9);
    assert.equal(lens.top[2]![last]![0]!.token, 2);
    assert.ok(lens.top[2]![last]![0]!.prob > 0.95);
    assert.equal(lens.strTokens, null);
  });
});
