/**
 * HookedTransformer against TransformerLens v2.10 outputs (test/fixtures/tl): every hook point,
 * logits, losses, a right-padded batch and greedy generation, for five families.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookedTransformer, tensor, type Tensor } from '../src/index.js';
import { FIXTURES, loadFixtureModel, maxDiff, readAll, readJson } from './fixture-utils.js';

const FAMILIES = ['gpt2', 'gpt_neox', 'llama', 'qwen2', 'gemma2'];

const TOL = 1e-4;

for (const fam of FAMILIES) {
  describe(`TransformerLens parity: ${fam}`, () => {
    const model = loadFixtureModel(FIXTURES, fam);
    const ref = readAll(`${FIXTURES}${fam}/ref_nofold.safetensors`);
    const info = readJson(`${FIXTURES}${fam}/ref.json`) as {
      cases: Record<string, { tokens: number[][]; attention_mask: number[][] | null }>;
      hook_names: string[];
      extra_hook_names: string[];
    };

    it('has every TransformerLens hook point', () => {
      for (const n of [...info.hook_names, ...info.extra_hook_names]) assert.ok(model.hookNames.includes(n), n);
    });

    for (const c of ['p0', 'p1', 'p2']) {
      it(`${c}: logits, losses and every cached hook`, () => {
        const toks = info.cases[c]!.tokens;
        const { logits, cache } = model.runWithCache(toks, { names: model.hookNames });
        assert.ok(maxDiff(logits, ref.get(`${c}/logits`)!) < TOL);
        let checked = 0;
        for (const [key, r] of ref) {
          if (!key.startsWith(`${c}/`)) continue;
          const name = key.slice(c.length + 1);
          if (['logits', 'loss', 'loss_per_token'].includes(name)) continue;
          const d = maxDiff(cache.get(name), r);
          assert.ok(d < TOL, `${name}: max diff ${d}`);
          checked++;
        }
        assert.ok(checked >= info.hook_names.length, `checked ${checked} hooks`);
        assert.ok(Math.abs(model.loss(toks).item() - ref.get(`${c}/loss`)!.item()) < TOL);
        assert.ok(maxDiff(model.loss(toks, { perToken: true }), ref.get(`${c}/loss_per_token`)!) < TOL);
      });
    }

    it('right-padded batch with an attention mask: real positions match, loss is the masked mean', () => {
      const { tokens, attention_mask: mask } = info.cases.batch!;
      const { logits, cache } = model.runWithCache(tokens, { attentionMask: mask!, names: /hook_resid_post|hook_pattern/ });
      assert.ok(maxDiff(logits, ref.get('batch/logits')!, mask!) < TOL);
      for (const name of cache.keys()) {
        const r = ref.get(`batch/${name}`);
        // hook_pattern is [batch, head, q, k]: compare rows of real query positions.
        if (r && !name.endsWith('hook_pattern')) assert.ok(maxDiff(cache.get(name), r, mask!) < TOL, name);
      }
      assert.ok(Math.abs(model.loss(tokens, { attentionMask: mask! }).item() - ref.get('batch/loss')!.item()) < TOL);
      assert.ok(maxDiff(model.loss(tokens, { attentionMask: mask!, perToken: true }), ref.get('batch/loss_per_token')!) < TOL);
    });

    it('each row of the batch equals the row run alone (right and left padding)', () => {
      const rows = [info.cases.p1!.tokens[0]!, info.cases.p0!.tokens[0]!.slice(0, 4)];
      const s = rows[0]!.length;
      const alone = rows.map((r) => model.forward([r]));
      for (const side of ['right', 'left'] as const) {
        const pad = (r: number[]) => (side === 'right' ? [...r, ...Array(s - r.length).fill(0)] : [...Array(s - r.length).fill(0), ...r]);
        const masks = rows.map((r) =>
          side === 'right' ? [...r.map(() => 1), ...Array(s - r.length).fill(0)] : [...Array(s - r.length).fill(0), ...r.map(() => 1)],
        );
        const batched = model.forward(rows.map(pad), { attentionMask: masks });
        rows.forEach((r, i) => {
          const off = side === 'right' ? 0 : s - r.length;
          const got = batched.slice([
            { start: i, end: i + 1 },
            { start: off, end: off + r.length },
          ]);
          assert.ok(maxDiff(got, alone[i]!) < TOL, `${side} padding, row ${i}`);
        });
      }
    });

    it('processWeights matches TransformerLens default processing on every hook', () => {
      const folded = model.processWeights();
      const refFold = readAll(`${FIXTURES}${fam}/ref_fold.safetensors`);
      for (const c of ['p0', 'p1', 'p2', 'batch']) {
        const { tokens, attention_mask: mask } = info.cases[c]!;
        const rowMask = mask ?? tokens.map((r) => r.map(() => 1));
        const { logits, cache } = folded.runWithCache(tokens, { names: folded.hookNames, ...(mask ? { attentionMask: mask } : {}) });
        assert.ok(maxDiff(logits, refFold.get(`${c}/logits`)!, rowMask) < TOL, `${c} logits`);
        for (const [key, r] of refFold) {
          if (!key.startsWith(`${c}/`)) continue;
          const name = key.slice(c.length + 1);
          if (['logits', 'loss', 'loss_per_token'].includes(name) || name.endsWith('hook_pattern') || name.endsWith('hook_attn_scores')) {
            if (c !== 'batch' && name.startsWith('blocks')) assert.ok(maxDiff(cache.get(name), r) < TOL, `${c} ${name}`);
            continue;
          }
          assert.ok(maxDiff(cache.get(name), r, rowMask) < TOL, `${c} ${name}`);
        }
        assert.ok(Math.abs(folded.loss(tokens, mask ? { attentionMask: mask } : {}).item() - refFold.get(`${c}/loss`)!.item()) < TOL);
      }
      const g = readJson(`${FIXTURES}${fam}/gen.json`) as { prompt: number[]; fold_kv_cache: number[] };
      assert.deepEqual(folded.generate(g.prompt, { maxNewTokens: 10, stopAtEos: false }).newTokens[0], g.fold_kv_cache);
    });

    it('each weight-processing transform alone keeps the log-probabilities', () => {
      const toks = info.cases.p2!.tokens;
      const base = model.forward(toks).logSoftmax(-1);
      for (const o of [{ foldLn: true }, { centerWritingWeights: true }, { centerUnembed: true }, { foldValueBiases: true }]) {
        const only = { foldLn: false, centerWritingWeights: false, centerUnembed: false, foldValueBiases: false, ...o };
        assert.ok(maxDiff(model.processWeights(only).forward(toks).logSoftmax(-1), base) < TOL, JSON.stringify(o));
      }
    });

    it('greedy generation equals TransformerLens, with and without the KV cache', () => {
      const g = readJson(`${FIXTURES}${fam}/gen.json`) as { prompt: number[]; nofold_kv_cache: number[]; nofold_no_kv_cache: number[] };
      assert.deepEqual(model.generate(g.prompt, { maxNewTokens: 10, stopAtEos: false }).newTokens[0], g.nofold_kv_cache);
      assert.deepEqual(
        model.generate(g.prompt, { maxNewTokens: 10, stopAtEos: false, useKvCache: false }).newTokens[0],
        g.nofold_no_kv_cache,
      );
    });
  });
}

describe('hooks', () => {
  const model = loadFixtureModel(FIXTURES, 'gpt2');
  const toks = [[313, 312, 316, 122, 55]];

  it('HookedTransformer.fromPretrained loads a directory (through the streaming checkpoint reader)', async () => {
    const loaded = await HookedTransformer.fromPretrained(`${FIXTURES}gpt2`);
    assert.equal(maxDiff(loaded.forward(toks), model.forward(toks)), 0);
    await assert.rejects(HookedTransformer.fromPretrained(`${FIXTURES}nope`), /nope: no such directory/);
  });

  it('an unknown hook name suggests the nearest names', () => {
    assert.throws(
      () => model.runWithCache(toks, { names: ['blocks.0.attn.hook_patern'] }),
      /unknown hook point 'blocks.0.attn.hook_patern' \(did you mean 'blocks.0.attn.hook_pattern'/,
    );
    assert.throws(() => model.runWithHooks(toks, { hooks: [['blocks.9.hook_resid_post', (x) => x]] }), /unknown hook point/);
  });

  it('identity hooks change nothing; replacing the final residual gives the known logits', () => {
    const base = model.forward(toks);
    assert.ok(maxDiff(model.runWithHooks(toks, { hooks: [[/hook_resid/, (x) => x]] }), base) === 0);
    // Zero residual -> LayerNorm gives its bias -> logits = b_lnf @ W_U at every position.
    const logits = model.runWithHooks(toks, { hooks: [['blocks.1.hook_resid_post', (x) => x.mul(0)]] });
    const expected = model.params.ln_final.b!.matmul(model.params.unembed.W_U);
    for (let p = 0; p < 5; p++) assert.ok(maxDiff(logits.slice([null, { start: p, end: p + 1 }]), expected.reshape([1, 1, -1])) < 1e-5);
  });

  it('a head ablation through hook_z equals removing that head from the weights', () => {
    const head = 2;
    const dh = model.cfg.dHead;
    const ablated = model.runWithHooks(toks, {
      hooks: [['blocks.0.attn.hook_z', (z) => z.set([null, null, head], 0)]],
    });
    const saved = model.params.blocks[0]!.attn.W_O;
    model.params.blocks[0]!.attn.W_O = saved.set([{ start: head * dh, end: (head + 1) * dh }], 0);
    try {
      assert.ok(maxDiff(ablated, model.forward(toks)) < 1e-5);
    } finally {
      model.params.blocks[0]!.attn.W_O = saved;
    }
  });

  it('runWithCache filters by list, regex and predicate', () => {
    assert.deepEqual(model.runWithCache(toks, { names: ['hook_embed'] }).cache.keys(), ['hook_embed']);
    assert.equal(model.runWithCache(toks, { names: /hook_pattern$/ }).cache.keys().length, 2);
    assert.equal(
      model.runWithCache(toks, { names: (n) => n.startsWith('blocks.1.') }).cache.keys().length,
      model.hookNames.filter((n) => n.startsWith('blocks.1.')).length,
    );
  });

  it('gradientsAt: the gradient at a hook point matches finite differences', () => {
    const name = 'blocks.1.hook_resid_pre';
    const metric = (logits: Tensor) => logits.index([0, -1, 7]).sub(logits.index([0, -1, 3]));
    const { value, targets } = model.gradientsAt(toks, [name], metric);
    const g = targets[name]!.grad.dataSync() as Float32Array;
    assert.ok(Math.abs(value.item() - metric(model.forward(toks)).item()) < 1e-5);
    const eps = 1e-2;
    for (const i of [0, 70, 255, 319]) {
      const bump = (sign: number) => {
        const delta = new Float32Array(5 * 64);
        delta[i] = sign * eps;
        return metric(model.runWithHooks(toks, { hooks: [[name, (x) => x.add(tensor(delta, [1, 5, 64]))]] })).item();
      };
      const fd = (bump(1) - bump(-1)) / (2 * eps);
      assert.ok(Math.abs(fd - g[i]!) < 2e-3 * Math.max(1, Math.abs(fd)), `element ${i}: fd ${fd} vs grad ${g[i]}`);
    }
  });
});
