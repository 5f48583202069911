/**
 * Mixtral (mixture of experts) and OLMo 2 beyond the parity harness (test/model-hf.test.ts): both
 * weight layouts of the experts, the transformers-4 config spelling, the MoE hook points, the
 * refusal of router ties, weight processing, saving, random initialisation, and the analysis
 * tools that refuse what they cannot compute for these layouts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concat, stack, tensor, zeros, type Tensor } from '../src/tensor/index.js';
import { HookedTransformer, initParams, loadFromDirectory, type ModelParams } from '../src/model/index.js';
import { validateParams } from '../src/model/hooked.js';
import { ablationSite, edgeAttributionPatching, eapNodeGradients } from '../src/analysis/index.js';
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

for (const fam of ['olmo2', 'mixtral']) {
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
      assert.throws(() => model.save(tmp(), { format: 'hf' }), fam === 'mixtral' ? /mixture-of-experts/ : /OLMo 2 norms/);
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

describe('mixtral: mixture of experts', () => {
  const fam = 'mixtral';
  const model = loadFixtureModel(FIXTURES_HF, fam);
  const { nExperts: E, topK: k } = model.cfg.moe!;
  const toks = p0(fam);
  const logits = model.forward(toks);
  const L = model.cfg.nLayers;

  it('loads the fused transformers-5 expert layout (mlp.experts.gate_up_proj) to the same model', () => {
    const files = readAll(`${FIXTURES_HF}${fam}/model.safetensors`);
    const fused = new Map([...files].filter(([n]) => !n.includes('block_sparse_moe')));
    for (let l = 0; l < L; l++) {
      const pre = `model.layers.${l}.block_sparse_moe.`;
      const per = (w: string) => stack(Array.from({ length: E }, (_, e) => files.get(`${pre}experts.${e}.${w}.weight`)!));
      fused.set(`model.layers.${l}.mlp.gate.weight`, files.get(`${pre}gate.weight`)!);
      fused.set(`model.layers.${l}.mlp.experts.gate_up_proj`, concat([per('w1'), per('w3')], 1));
      fused.set(`model.layers.${l}.mlp.experts.down_proj`, per('w2'));
    }
    const m = fromFiles(fam, readJson(`${FIXTURES_HF}${fam}/config.json`), fused);
    assert.deepEqual(floats(m.forward(toks)), floats(logits));
  });

  it('accepts the training-only router fields (jitter noise, auxiliary loss)', () => {
    const cfg = {
      ...readJson(`${FIXTURES_HF}${fam}/config.json`),
      router_jitter_noise: 0.1,
      router_aux_loss_coef: 0.5,
      output_router_logits: true,
    };
    const m = fromFiles(fam, cfg, readAll(`${FIXTURES_HF}${fam}/model.safetensors`));
    assert.deepEqual(floats(m.forward(toks)), floats(logits));
  });

  it("exposes TransformerLens's MoE hook points, the router logits and per-expert activations", () => {
    const names = new Set(model.hookNames);
    for (const n of [
      'hook_router_logits',
      'hook_expert_weights',
      'hook_expert_indices',
      'experts.0.hook_gate',
      `experts.${E - 1}.hook_post`,
    ])
      assert.ok(names.has(`blocks.0.mlp.${n}`), n);
    assert.ok(!names.has('blocks.0.mlp.hook_pre') && !names.has('blocks.0.mlp.hook_post'));
    const { cache } = model.runWithCache(toks);
    assert.ok(!cache.has('blocks.0.mlp.experts.0.hook_post'), 'per-expert hooks are not cached by default');
    const s = toks[0]!.length;
    const router = cache.get('blocks.0.mlp.hook_router_logits');
    const probs = cache.get('blocks.0.mlp.hook_expert_weights');
    const indices = cache.get('blocks.0.mlp.hook_expert_indices');
    assert.deepEqual(router.shape, [1, s, E]);
    assert.deepEqual(indices.shape, [1, s, k]);
    assert.equal(indices.dtype, 'int64');
    assert.ok(maxDiff(probs, router.softmax(-1)) < 1e-6);
    assert.deepEqual(ints(indices), ints(probs.topk(k).indices));
  });

  it('per-expert activations: caching them changes nothing, and their routed sum is hook_mlp_out', () => {
    const l = L - 1;
    const names = [
      `blocks.${l}.hook_mlp_out`,
      `blocks.${l}.mlp.hook_expert_weights`,
      `blocks.${l}.mlp.hook_expert_indices`,
      ...Array.from({ length: E }, (_, e) => `blocks.${l}.mlp.experts.${e}.hook_post`),
    ];
    const { logits: hooked, cache } = model.runWithCache(toks, { names });
    assert.ok(maxDiff(hooked, logits) < 1e-6);
    const top = cache.get(`blocks.${l}.mlp.hook_expert_weights`).topk(k);
    const w = top.values.div(top.values.sum(-1, true)); // [1, s, k]
    const idx = ints(cache.get(`blocks.${l}.mlp.hook_expert_indices`));
    const W_out = model.params.blocks[l]!.moe!.W_out;
    const s = toks[0]!.length;
    const wv = floats(w);
    const outs = Array.from({ length: E }, (_, e) => floats(cache.get(`blocks.${l}.mlp.experts.${e}.hook_post`).matmul(W_out.index([e]))));
    const d = model.cfg.dModel;
    const expected = new Float32Array(s * d);
    for (let p = 0; p < s; p++)
      for (let j = 0; j < k; j++) for (let i = 0; i < d; i++) expected[p * d + i]! += wv[p * k + j]! * outs[idx[p * k + j]!]![p * d + i]!;
    const got = floats(cache.get(`blocks.${l}.hook_mlp_out`));
    assert.ok(Math.max(...got.map((g, i) => Math.abs(g - expected[i]!))) < 1e-5);
  });

  it('an expert ablated through its hook_post (last layer) changes the logits exactly where it was chosen', () => {
    const l = L - 1;
    const name = `blocks.${l}.mlp.hook_expert_indices`;
    const idx = ints(model.runWithCache(toks, { names: [name] }).cache.get(name));
    const ablated = model.runWithHooks(toks, { hooks: [[`blocks.${l}.mlp.experts.0.hook_post`, (x: Tensor) => zeros(x.shape)]] });
    const V = model.cfg.dVocab;
    const a = floats(logits);
    const b = floats(ablated);
    let changed = 0;
    for (let p = 0; p < toks[0]!.length; p++) {
      const diff = Math.max(...Array.from({ length: V }, (_, i) => Math.abs(a[p * V + i]! - b[p * V + i]!)));
      if (idx.slice(p * k, (p + 1) * k).includes(0)) {
        assert.ok(diff > 1e-4, `position ${p} routes to expert 0`);
        changed++;
      } else assert.ok(diff < 1e-6, `position ${p} does not route to expert 0`);
    }
    assert.ok(changed > 0);
  });

  it('refuses a token whose router probabilities tie at the top-k boundary, unless it is padding', () => {
    const blocks = model.params.blocks.map((b, l) => (l === 0 ? { ...b, moe: { ...b.moe!, W_router: zeros(b.moe!.W_router.shape) } } : b));
    const tied = new HookedTransformer(model.cfg, { ...model.params, blocks } as ModelParams);
    assert.throws(() => tied.forward(toks), /layer 0, batch row 0, position 0 .*same probability.*torch\.topk/);
    assert.throws(() => tied.generate(toks[0]!, { maxNewTokens: 2 }), /same probability/);
    assert.throws(() => tied.generate(toks[0]!, { maxNewTokens: 2, useKvCache: false }), /same probability/);
    assert.throws(() => tied.gradientsAt(toks, ['blocks.0.hook_resid_post'], (x) => x.sum()), /same probability/);
    // Experts chosen by a hook are not transformers' choice to match: accepted.
    const pickLast = (x: Tensor) =>
      zeros(x.shape, 'int64').add(
        tensor(
          Array.from({ length: k }, (_, j) => E - 1 - j),
          [k],
          'int64',
        ),
      );
    assert.doesNotThrow(() => tied.runWithHooks(toks, { hooks: [['blocks.0.mlp.hook_expert_indices', pickLast]] }));
    // A hook that leaves the tied choice as it was does not make it transformers'.
    assert.throws(
      () => tied.runWithHooks(toks, { hooks: [['blocks.0.mlp.hook_expert_indices', (x: Tensor) => x.add(0)]] }),
      /same probability/,
    );
    // A tie made by a hook at the first position of one row: refused at a real token, not at padding.
    const two = [toks[0]!.slice(0, 5), toks[0]!.slice(0, 5)];
    const mask = [
      [0, 1, 1, 1, 1],
      [1, 1, 1, 1, 1],
    ];
    const uniformAt = (row: number): [string, (x: Tensor) => Tensor] => [
      'blocks.1.mlp.hook_expert_weights',
      (x: Tensor) => {
        const [b, s, e] = x.shape as [number, number, number];
        const keep = new Float32Array(b * s * e).fill(1);
        const set = new Float32Array(b * s * e);
        keep.fill(0, row * s * e, (row * s + 1) * e);
        set.fill(1 / e, row * s * e, (row * s + 1) * e);
        return x.mul(tensor(keep, [b, s, e])).add(tensor(set, [b, s, e]));
      },
    ];
    assert.doesNotThrow(() => model.runWithHooks(two, { attentionMask: mask, hooks: [uniformAt(0)] }));
    assert.throws(() => model.runWithHooks(two, { attentionMask: mask, hooks: [uniformAt(1)] }), /layer 1, batch row 1, position 0/);
  });

  it('processWeights folds ln2 into the router and the experts: same router logits', () => {
    const name = 'blocks.0.mlp.hook_router_logits';
    const a = model.runWithCache(toks, { names: [name] }).cache.get(name);
    const b = model
      .processWeights()
      .runWithCache(toks, { names: [name] })
      .cache.get(name);
    assert.ok(maxDiff(a, b) < 1e-5);
  });

  it('validateParams names a mis-shaped expert weight', () => {
    const blocks = model.params.blocks.map((b, l) =>
      l === 1 ? { ...b, moe: { ...b.moe!, W_in: b.moe!.W_in.slice([{ end: E - 1 }]) } } : b,
    );
    assert.throws(() => validateParams(model.cfg, { ...model.params, blocks }, 'x'), /x: weight 'blocks\.1\.moe\.W_in' has shape/);
  });

  it('analysis that assumes a dense MLP refuses it', () => {
    assert.throws(
      () => edgeAttributionPatching(model, { clean: toks, corrupted: toks, answer: 1, wrong: 2 }),
      /mixture-of-experts.*mixtral/,
    );
    assert.throws(() => eapNodeGradients(model, toks, (x) => x.sum()), /mixture-of-experts.*mixtral/);
    assert.throws(() => ablationSite(model, { layer: 0, neuron: 3 }), /mixture of experts \(mixtral\).*experts\.E\.hook_post/);
  });
});
