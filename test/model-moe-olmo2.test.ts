/**
 * OLMo 2 beyond the parity harness (test/model-hf.test.ts): the transformers-4 config spelling,
 * hook points, weight processing, saving, random initialisation, and the analysis tools that
 * refuse what they cannot compute for its layout.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '../src/tensor/index.js';
import { HookedTransformer, initParams, loadFromDirectory } from '../src/model/index.js';
import { validateParams } from '../src/model/hooked.js';
import { edgeAttributionPatching } from '../src/analysis/index.js';
import { FIXTURES_HF, loadFixtureModel, maxDiff, readAll, readJson } from './fixture-utils.js';

const TOL = 1e-4;
const ints = (t: Tensor): number[] => Array.from(t.dataSync() as Int32Array, Number);
const floats = (t: Tensor): number[] => Array.from(t.dataSync() as Float32Array);

function fromFiles(fam: string, config: Record<string, unknown>, weights: Map<string, Tensor>): HookedTransformer {
  return HookedTransformer.fromHf(
    config,
    {
      has: (n) => weights.has(n),
      get: (n) => {
        const t = weights.get(n);
        if (!t) throw new Error(`${fam}: no tensor '${n}'`);
        return t;
      },
    },
    `${fam}/config.json`,
  );
}

const ref = (fam: string) => readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
const p0 = (fam: string) => [ints(ref(fam).get('p0.input_ids')!)];

/** Max |a - b| of the log-probabilities. */
function logProbDiff(a: Tensor, b: Tensor): number {
  return maxDiff(a.logSoftmax(-1), b.logSoftmax(-1));
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'glassbox-moe-'));

for (const fam of ['olmo2']) {
  describe(`${fam}: loading, processing, saving`, () => {
    const model = loadFixtureModel(FIXTURES_HF, fam);
    const toks = p0(fam);
    const logits = model.forward(toks);

    it('the transformers-4 config spelling (config_t4.json) gives the same logits', () => {
      const w = readAll(`${FIXTURES_HF}${fam}/model.safetensors`);
      const t4 = fromFiles(fam, readJson(`${FIXTURES_HF}${fam}/config_t4.json`), w);
      assert.deepEqual(floats(t4.forward(toks)), floats(logits));
    });

    it('processWeights keeps the log-probabilities', () => {
      assert.ok(logProbDiff(model.processWeights().forward(toks), logits) < TOL);
    });

    it('saves in glassbox format (processed too) and loads back identically', () => {
      for (const m of [model, model.processWeights()]) {
        const dir = tmp();
        assert.equal(m.save(dir), 'glassbox');
        const loaded = loadFromDirectory(dir);
        assert.deepEqual(loaded.cfg, m.cfg);
        assert.deepEqual(floats(loaded.forward(toks)), floats(m.forward(toks)));
      }
      assert.throws(() => model.save(tmp(), { format: 'hf' }), /OLMo 2 norms/);
    });

    it('random initialisation builds weights of the right shapes', () => {
      const fresh = new HookedTransformer(model.cfg, initParams(model.cfg, { seed: 1 }));
      validateParams(fresh.cfg, fresh.params, 'init');
      assert.deepEqual(fresh.forward(toks).shape, logits.shape);
      assert.deepEqual(fresh.hookNames, model.hookNames);
    });
  });
}

describe('olmo2: norms after attention and the MLP only', () => {
  const model = loadFixtureModel(FIXTURES_HF, 'olmo2');
  const toks = p0('olmo2');

  it('has post-norm hook points and no pre-norm ones; hook_attn_out / hook_mlp_out are what the residual stream adds', () => {
    const names = new Set(model.hookNames);
    for (const n of ['blocks.0.ln1_post.hook_scale', 'blocks.0.ln2_post.hook_normalized', 'blocks.0.attn.hook_rot_q'])
      assert.ok(names.has(n), n);
    for (const n of ['blocks.0.ln1.hook_scale', 'blocks.0.ln2.hook_normalized']) assert.ok(!names.has(n), n);
    const { cache } = model.runWithCache(toks);
    const at = (n: string) => cache.get(`blocks.0.${n}`);
    assert.ok(maxDiff(at('hook_resid_mid').sub(at('hook_resid_pre')), at('hook_attn_out')) < 1e-5);
    assert.ok(maxDiff(at('hook_resid_post').sub(at('hook_resid_mid')), at('hook_mlp_out')) < 1e-5);
  });

  it('edge attribution patching refuses it (norms after attention and the MLP)', () => {
    assert.throws(() => edgeAttributionPatching(model, { clean: toks, corrupted: toks, answer: 1, wrong: 2 }), /OLMo 2/);
  });
});
