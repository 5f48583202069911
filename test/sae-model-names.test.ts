/**
 * Which model an SAE's cfg.json `model_name` names: one comparison (`saeNamesModel`, by
 * `modelKey`) for the library's `attachSae` and the server's `serve --sae`, which adds the model's
 * family to the names the model answers to. Answers written by hand.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Sae, makeSaeConfig } from '../src/sae/index.js';
import { checkSaeModel, modelKey, saeNamesModel } from '../src/sae/attach.js';
import { tensor } from '../src/index.js';

function saeFor(modelName: string | null): Sae {
  const cfg = makeSaeConfig({ architecture: 'standard', d_in: 2, d_sae: 2, hook_name: 'blocks.0.hook_resid_pre' });
  const zeros = (shape: number[]) => tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  return new Sae({ ...cfg, model_name: modelName }, { W_enc: zeros([2, 2]), W_dec: zeros([2, 2]), b_enc: zeros([2]), b_dec: zeros([2]) });
}

describe('saeNamesModel', () => {
  it('matches a name up to organisation, revision, -hf, case and punctuation, and known aliases', () => {
    assert.equal(modelKey('EleutherAI/Pythia-70m@main'), 'pythia70m');
    assert.equal(saeNamesModel(saeFor('EleutherAI/pythia-70m'), ['pythia-70m']), true);
    assert.equal(saeNamesModel(saeFor('meta-llama/Llama-2-7b-hf'), ['llama_2_7b']), true);
    assert.equal(saeNamesModel(saeFor('gpt2-small'), ['openai-community/gpt2']), true);
    assert.equal(saeNamesModel(saeFor('gemma-2-2b'), ['default']), false);
  });

  it("matches any of the names given (the server's name and family), and passes when either side is unknown", () => {
    assert.equal(saeNamesModel(saeFor('gpt_neox'), ['default', 'gpt_neox']), true);
    assert.equal(saeNamesModel(saeFor('gemma-2-2b'), ['default', 'gpt_neox']), false);
    assert.equal(saeNamesModel(saeFor(null), ['default']), true);
    assert.equal(saeNamesModel(saeFor('gemma-2-2b'), [null, undefined, '']), true);
  });

  it('checkSaeModel refuses on it, naming both names, unless allowModelMismatch', () => {
    assert.throws(() => checkSaeModel({ name: 'default' }, saeFor('gemma-2-2b')), /model_name 'gemma-2-2b'.*the model is 'default'/);
    assert.doesNotThrow(() => checkSaeModel({ name: 'default' }, saeFor('gemma-2-2b'), { allowModelMismatch: true }));
    assert.doesNotThrow(() => checkSaeModel({ name: 'EleutherAI/pythia-70m' }, saeFor('pythia-70m')));
  });
});
