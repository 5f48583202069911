/**
 * Ablations: zero, mean and resample, of a hook point, a head or a neuron. Known answers on the
 * hand-built induction model, and equality with hand-written hooks on a fixture model.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../src/index.js';
import {
  ablate,
  ablationHooks,
  ablationSweep,
  headAblationSweep,
  inductionCircuitModel,
  logitDiffMetric,
  neuronAblationSweep,
} from '../src/analysis/index.js';
import { FIXTURES, loadFixtureModel, maxDiff } from './fixture-utils.js';
import { numbers } from './helpers.js';

describe('ablation on a hand-built induction model', () => {
  const model = inductionCircuitModel();
  const prompt = [0, 1, 2, 3, 4, 5, 1]; // the induction head L1H0 copies 2
  const metric = logitDiffMetric(2, 6);

  it('zero-ablating the copying head destroys the logit difference; the heads outside the circuit do nothing', () => {
    const copy = ablate(model, prompt, { layer: 1, head: 0 }, { metric });
    assert.ok(copy.before > 5, `before ${copy.before}`);
    assert.ok(Math.abs(copy.after) < 1e-3, `after ${copy.after}`);
    // L0H1 writes nothing (W_O = 0); L1H1 writes token 0's direction (it only moves the final norm's scale).
    const dup = ablate(model, prompt, { layer: 0, head: 1 }, { metric });
    assert.ok(Math.abs(dup.after - dup.before) < 1e-5);
    const bos = ablate(model, prompt, { layer: 1, head: 1 }, { metric });
    assert.ok(Math.abs(bos.after - bos.before) / bos.before < 0.01, `${bos.before} -> ${bos.after}`);
    // The previous-token head feeds the induction head's keys: without it the induction head
    // attends evenly to every position, and the answer loses most of its lead.
    assert.ok(ablate(model, prompt, { layer: 0, head: 0 }, { metric }).after < 0.5 * copy.before);
  });

  it('headAblationSweep equals one ablation at a time (batched, chunked)', () => {
    const sweep = headAblationSweep(model, prompt, { metric, maxBatch: 3 });
    assert.deepEqual(sweep.after.shape, [2, 2]);
    const after = numbers(sweep.after);
    for (let l = 0; l < 2; l++)
      for (let h = 0; h < 2; h++) {
        const one = ablate(model, prompt, { layer: l, head: h }, { metric });
        assert.ok(Math.abs(after[l * 2 + h]! - one.after) < 1e-4, `L${l}H${h}`);
        assert.ok(Math.abs(sweep.before - one.before) < 1e-6);
      }
  });

  it("ablating the MLP neuron that writes token 9 removes token 9's logit", () => {
    const logit9 = logitDiffMetric(9);
    const r = ablate(model, prompt, { layer: 0, neuron: 0 }, { metric: logit9 });
    assert.ok(r.before > 0.5 && Math.abs(r.after) < 1e-5, JSON.stringify({ before: r.before, after: r.after }));
    const sweep = neuronAblationSweep(model, prompt, 0, { metric: logit9 });
    const after = numbers(sweep.after);
    assert.ok(Math.abs(after[0]!) < 1e-5);
    for (const v of after.slice(1)) assert.ok(Math.abs(v - sweep.before) < 1e-5);
  });

  it('mean- and resample-ablating the copying head over other prompts also destroys the answer', () => {
    // Prompts without tokens 2 and 6: the head's output there favours neither.
    const reference = [
      [0, 3, 4, 5, 9, 7, 8],
      [0, 8, 7, 9, 5, 4, 3],
      [0, 4, 9, 8, 3, 5, 7],
    ];
    for (const kind of ['mean', 'resample'] as const) {
      const r = ablate(model, prompt, { layer: 1, head: 0 }, { metric, kind, reference });
      assert.ok(Math.abs(r.after) < 0.2 * r.before, `${kind}: ${r.before} -> ${r.after}`);
    }
  });

  it('checks its inputs', () => {
    assert.throws(() => ablate(model, prompt, { layer: 2, head: 0 }, { metric }), /layer 2/);
    assert.throws(() => ablate(model, prompt, { layer: 0, neuron: 4 }, { metric }), /neuron 4/);
    assert.throws(() => ablate(model, prompt, { layer: 0, head: 0 }, { metric, kind: 'mean' }), /reference/);
    assert.throws(() => ablate(model, prompt, { layer: 0, head: 0 }, { metric, kind: 'mean', reference: [[0, 1, 2]] }), /same length/);
    assert.throws(() => ablate(model, prompt, { hook: 'blocks.0.hook_resid_pre', index: [0, 0, 0] }, { metric }), /indices/);
  });
});

describe('ablation equals hand-written hooks', () => {
  const model = loadFixtureModel(FIXTURES, 'gpt2');
  const input = [
    [313, 312, 316, 122, 55, 295],
    [254, 78, 251, 102, 254, 308],
  ];
  const reference = [
    [85, 178, 141, 82, 195, 287],
    [276, 207, 276, 166, 216, 305],
    [211, 16, 235, 236, 72, 277],
  ];
  const metric = logitDiffMetric([7, 9], [11, 3]);
  const run = (hooks: [string, (x: Tensor) => Tensor][]) => metric(model.runWithHooks(input, { hooks })) as number;
  const refCache = model.runWithCache(reference).cache;

  it('zero: a head, a neuron, a hook point at one position', () => {
    const z = 'blocks.1.attn.hook_z';
    assert.ok(
      Math.abs(ablate(model, input, { layer: 1, head: 2 }, { metric }).after - run([[z, (x) => x.set([null, null, 2], 0)]])) < 1e-4,
    );
    const post = 'blocks.0.mlp.hook_post';
    assert.ok(
      Math.abs(ablate(model, input, { layer: 0, neuron: 17, pos: 3 }, { metric }).after - run([[post, (x) => x.set([null, 3, 17], 0)]])) <
        1e-4,
    );
    const attn = 'blocks.1.hook_attn_out';
    assert.ok(Math.abs(ablate(model, input, { hook: attn, pos: -1 }, { metric }).after - run([[attn, (x) => x.set([null, 5], 0)]])) < 1e-4);
  });

  it('mean over the reference rows (per position, or over positions too)', () => {
    const z = 'blocks.0.attn.hook_z';
    const mean = refCache.get(z).index([null, null, 1]).mean(0, true); // [1, pos, d_head]
    const want = run([[z, (x) => x.set([null, null, 1], mean.reshape([1, 6, 1, 16]))]]);
    assert.ok(Math.abs(ablate(model, input, { layer: 0, head: 1 }, { metric, kind: 'mean', reference }).after - want) < 1e-4);
    const meanAll = refCache.get(z).index([null, null, 1]).mean([0, 1]); // [d_head]
    const wantAll = run([[z, (x) => x.set([null, null, 1], meanAll)]]);
    const shorter = reference.map((r) => r.slice(0, 4));
    const got = ablate(model, input, { layer: 0, head: 1 }, { metric, kind: 'mean', reference: shorter, meanOverPositions: true }).after;
    const meanShort = model.runWithCache(shorter).cache.get(z).index([null, null, 1]).mean([0, 1]);
    assert.ok(Math.abs(got - run([[z, (x) => x.set([null, null, 1], meanShort)]])) < 1e-4);
    assert.ok(Number.isFinite(wantAll));
    // A padded reference: only its real tokens enter the mean.
    const referenceMask = [
      [1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
    ];
    const zz = model.runWithCache(reference, { attentionMask: referenceMask }).cache.get(z).index([null, null, 1]); // [3, 6, 16]
    const rowsOf = (p: number) => (p < 4 ? [0, 1, 2] : [0, 2]);
    const means = Array.from({ length: 6 }, (_, p) =>
      zz
        .index([null, p])
        .gather(tensor(rowsOf(p), [rowsOf(p).length], 'int64'), 0)
        .mean(0),
    );
    const meanMasked = means.map((m) => m.reshape([1, 1, 1, 16]));
    const wantMasked = run([[z, (x) => meanMasked.reduce((acc, m, p) => acc.set([null, p, 1], m), x)]]);
    const gotMasked = ablate(model, input, { layer: 0, head: 1 }, { metric, kind: 'mean', reference, referenceMask }).after;
    assert.ok(Math.abs(gotMasked - wantMasked) < 1e-4, `${gotMasked} vs ${wantMasked}`);
  });

  it('resample: each row takes the chosen reference row', () => {
    const post = 'blocks.1.mlp.hook_post';
    const act = refCache.get(post);
    const rows = [2, 0];
    const src = act.gather(tensor(rows, [2], 'int64'), 0).slice([null, null, { start: 40, end: 41 }]);
    const want = run([[post, (x) => x.set([null, null, 40], src)]]);
    const got = ablate(model, input, { layer: 1, neuron: 40 }, { metric, kind: 'resample', reference, resampleRows: rows });
    assert.ok(Math.abs(got.after - want) < 1e-4);
    // Default rows come from the seed: reproducible.
    const a = ablate(model, input, { layer: 1, neuron: 40 }, { metric, kind: 'resample', reference, seed: 4 }).after;
    assert.equal(ablate(model, input, { layer: 1, neuron: 40 }, { metric, kind: 'resample', reference, seed: 4 }).after, a);
  });

  it('several targets at once; ablationHooks plugs into runWithHooks; sweeps of lists', () => {
    const targets = [
      { layer: 0, head: 3 },
      { layer: 1, neuron: 5 },
    ];
    const both = ablate(model, input, targets, { metric });
    const want = run([
      ['blocks.0.attn.hook_z', (x) => x.set([null, null, 3], 0)],
      ['blocks.1.mlp.hook_post', (x) => x.set([null, null, 5], 0)],
    ]);
    assert.ok(Math.abs(both.after - want) < 1e-4);
    const { hooks, tokens } = ablationHooks(model, input, targets);
    assert.ok(maxDiff(model.runWithHooks(tokens, { hooks }), both.logits) < 1e-5);
    const sweep = ablationSweep(model, input, [targets, targets[0]!], { metric, maxBatch: 2 });
    assert.ok(Math.abs(sweep.after[0]! - want) < 1e-4);
    assert.ok(Math.abs(sweep.after[1]! - ablate(model, input, targets[0]!, { metric }).after) < 1e-4);
  });
});
