/**
 * Direct logit attribution: the components add up to the real logit difference (fixture models of
 * every family and random models with every bias set), the residual stack adds up to the final
 * residual stream, and on a hand-built model the attribution lands on the component that writes
 * the logit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookedTransformer, type ModelConfig } from '../src/index.js';
import { directLogitAttribution, dlaHookNames, inductionCircuitModel, logitDirection, residualStack } from '../src/analysis/index.js';
import { FIXTURES, loadFixtureModel, maxDiff, readJson } from './fixture-utils.js';
import { tinyRandomModel } from './tiny-models.js';

const FAMILIES = ['gpt2', 'gpt_neox', 'llama', 'qwen2', 'gemma2'];

const RANDOM: Record<string, Partial<ModelConfig>> = {
  'layernorm, learned positions, all biases': {},
  'rmsnorm, rotary, parallel residual, grouped-query, gated MLP': {
    norm: 'rmsnorm',
    positional: 'rotary',
    rotaryDim: 4,
    parallelResidual: true,
    nKVHeads: 2,
    gatedMlp: true,
    act: 'silu',
    attnBias: false,
    mlpBias: false,
  },
  'post-norms and soft-capping (Gemma 2 style)': {
    norm: 'rmsnorm',
    positional: 'rotary',
    rotaryDim: 4,
    postNorms: true,
    normWeightOffset: 1,
    finalSoftcap: 5,
    attnSoftcap: 4,
    attnBias: false,
    attnOutBias: false,
    mlpBias: false,
    unembedBias: false,
  },
};

function close(a: number, b: number, tol = 1e-4): boolean {
  return Math.abs(a - b) <= tol * (1 + Math.abs(b));
}

function checkSums(model: HookedTransformer, tokens: number[][], answer: number | number[], wrong?: number | number[]): void {
  const r = directLogitAttribution(model, tokens, { answer, ...(wrong !== undefined ? { wrong } : {}) });
  assert.equal(r.labels.length, r.attributions.shape[0]);
  assert.deepEqual(r.attributions.shape, [r.labels.length, tokens.length]);
  const total = r.total.dataSync() as Float32Array;
  const diff = r.logitDiff.dataSync() as Float32Array;
  total.forEach((t, i) => assert.ok(close(t, diff[i]!), `row ${i}: components sum to ${t}, logit difference ${diff[i]}`));
  // logitDiff is the model's own (pre-soft-cap) logit difference.
  const logits = model.forward(tokens).dataSync() as Float32Array;
  const [s, V] = [tokens[0]!.length, model.cfg.dVocab];
  const cap = model.cfg.finalSoftcap;
  const un = (x: number) => (cap === null ? x : cap * Math.atanh(x / cap));
  tokens.forEach((_, row) => {
    const at = (t: number) => un(logits[(row * s + s - 1) * V + t]!);
    const a = typeof answer === 'number' ? answer : answer[row]!;
    const w = wrong === undefined ? null : typeof wrong === 'number' ? wrong : wrong[row]!;
    assert.ok(close(diff[row]!, at(a) - (w === null ? 0 : at(w)), 1e-3), `row ${row} logit difference`);
  });
}

describe('direct logit attribution sums to the logit difference', () => {
  for (const fam of FAMILIES)
    it(`fixture ${fam}`, () => {
      const model = loadFixtureModel(FIXTURES, fam);
      const info = readJson(`${FIXTURES}${fam}/ref.json`) as { cases: Record<string, { tokens: number[][] }> };
      const toks = info.cases.p0!.tokens;
      checkSums(model, toks, 7, 11);
      checkSums(model, toks, 5);
      // The residual stack adds up to the final residual stream at every position.
      const { cache } = model.runWithCache(toks);
      const { stack, labels } = residualStack(model, cache);
      assert.equal(stack.shape[0], labels.length);
      const d = maxDiff(stack.sum(0), cache.get(`blocks.${model.cfg.nLayers - 1}.hook_resid_post`));
      assert.ok(d < 1e-4, `stack sum differs by ${d}`);
      const heads = labels.filter((l) => /^L\dH\d$/.test(l)).length;
      assert.equal(heads, model.cfg.postNorms ? 0 : model.cfg.nLayers * model.cfg.nHeads);
    });

  for (const [name, over] of Object.entries(RANDOM))
    it(`random model: ${name}`, () => {
      const model = tinyRandomModel(3, over);
      const toks = [
        [1, 5, 9, 2, 7, 7, 3],
        [4, 4, 8, 0, 22, 6, 1],
      ];
      checkSums(model, toks, [3, 8], [10, 2]);
      checkSums(model, toks, 17);
      const { cache } = model.runWithCache(toks, { names: [...dlaHookNames(model), 'blocks.1.hook_resid_post'] });
      const { stack } = residualStack(model, cache, { pos: 2 });
      assert.ok(maxDiff(stack.sum(0), cache.get('blocks.1.hook_resid_post').index([null, 2])) < 1e-4);
    });

  it('is unchanged by weight processing that keeps each component (fold LN, centre, centre unembed)', () => {
    const model = loadFixtureModel(FIXTURES, 'gpt2');
    const toks = [[313, 312, 316, 122, 55, 295, 34]];
    const a = directLogitAttribution(model, toks, { answer: 7, wrong: 11 });
    const b = directLogitAttribution(model.processWeights({ foldValueBiases: false }), toks, { answer: 7, wrong: 11 });
    assert.deepEqual(a.labels, b.labels);
    a.values.forEach((v, i) => assert.ok(close(v, b.values[i]!, 1e-3), `${a.labels[i]}: ${v} vs ${b.values[i]}`));
  });
});

describe('direct logit attribution on a hand-built induction model', () => {
  const model = inductionCircuitModel();
  const prompt = [0, 1, 2, 3, 4, 5, 1]; // predicts 2 (after the earlier 1)

  it('puts logit(2) - logit(6) on the copying head L1H0', () => {
    const r = directLogitAttribution(model, prompt, { answer: 2, wrong: 6 });
    const total = r.total.item();
    assert.ok(total > 5, `logit difference ${total}`);
    r.labels.forEach((l, i) => {
      if (l === 'L1H0') assert.ok(close(r.values[i]!, total, 1e-4), `L1H0 gets ${r.values[i]} of ${total}`);
      else assert.ok(Math.abs(r.values[i]!) < 1e-4, `${l}: ${r.values[i]}`);
    });
  });

  it("puts token 9's logit on the MLP of layer 0, which writes its direction", () => {
    const r = directLogitAttribution(model, prompt, { answer: 9 });
    const total = r.total.item();
    assert.ok(total > 0.5);
    r.labels.forEach((l, i) => {
      if (l === 'L0.mlp_out') assert.ok(close(r.values[i]!, total, 1e-4));
      else assert.ok(Math.abs(r.values[i]!) < 1e-4, `${l}: ${r.values[i]}`);
    });
  });

  it('logitDirection is a W_U column or a difference of two', () => {
    assert.deepEqual(logitDirection(model, 2).shape, [50]);
    const d = logitDirection(model, [2, 3], 6).dataSync() as Float32Array;
    assert.equal(d.length, 100);
    assert.equal(d[40 + 2], 1);
    assert.equal(d[40 + 6], -1);
    assert.equal(d[50 + 40 + 3], 1);
    assert.throws(() => logitDirection(model, 10), /outside the vocabulary/);
  });
});
