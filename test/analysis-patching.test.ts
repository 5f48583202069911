/**
 * Activation patching: every batched sweep equals the naive one-forward-per-patch loop, patching
 * the whole input restores the clean run exactly, and on the hand-built induction model the
 * recovery is exactly where the circuit is.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HookedTransformer, Tensor } from '../src/index.js';
import {
  activationPatching,
  inductionCircuitModel,
  logitDiffMetric,
  patchAttnOut,
  patchHeadOut,
  patchHeadPattern,
  patchMlpOut,
  patchResidPre,
  type PatchingProblem,
} from '../src/analysis/index.js';
import { FIXTURES, loadFixtureModel } from './fixture-utils.js';
import { numbers } from './helpers.js';

/** The naive sweep: one runWithHooks per patch, writing the clean slice with Tensor.set. */
function naive(
  model: HookedTransformer,
  pr: PatchingProblem,
  hook: (l: number) => string,
  grid: number[],
  site: (idx: number[]) => (number | null)[],
): number[] {
  const metric = logitDiffMetric(pr.answer, pr.wrong);
  const clean = model.runWithCache(pr.clean as number[][]);
  const cleanV = metric(clean.logits) as number;
  const corrV = metric(model.forward(pr.corrupted as number[][])) as number;
  const out: number[] = [];
  const inner = grid.reduce((a, b) => a * b, 1);
  for (let l = 0; l < model.cfg.nLayers; l++)
    for (let f = 0; f < inner; f++) {
      const idx: number[] = [];
      let rem = f;
      for (let ax = grid.length - 1; ax >= 0; ax--) {
        idx[ax] = rem % grid[ax]!;
        rem = Math.floor(rem / grid[ax]!);
      }
      const specs = [null, ...site(idx)];
      const src = clean.cache.get(hook(l)).slice(specs);
      const logits = model.runWithHooks(pr.corrupted as number[][], { hooks: [[hook(l), (x: Tensor) => x.set(specs, src)]] });
      out.push(((metric(logits) as number) - corrV) / (cleanV - corrV));
    }
  return out;
}

function assertAllClose(got: number[], want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < tol, `${what}[${i}]: batched ${g}, naive ${want[i]}`));
}

describe('batched patching sweeps equal the naive loop', () => {
  for (const fam of ['gpt2', 'llama']) {
    const model = loadFixtureModel(FIXTURES, fam);
    const pr: PatchingProblem = {
      clean: [
        [31, 12, 16, 122, 55],
        [54, 78, 251, 102, 54],
      ],
      corrupted: [
        [31, 12, 17, 122, 9],
        [54, 78, 250, 102, 3],
      ],
      answer: [7, 9],
      wrong: [11, 3],
    };
    const s = 5;
    const H = model.cfg.nHeads;
    const opts = { maxBatch: 7 }; // chunks of 3 patches x 2 rows, the last one padded

    it(`${fam}: resid_pre, attn_out and mlp_out by layer and position`, () => {
      const r = patchResidPre(model, pr, opts);
      assert.deepEqual(r.shape, [2, s]);
      assertAllClose(
        numbers(r),
        naive(
          model,
          pr,
          (l) => `blocks.${l}.hook_resid_pre`,
          [s],
          ([p]) => [p!],
        ),
        1e-4,
        'resid_pre',
      );
      assertAllClose(
        numbers(patchAttnOut(model, pr, opts)),
        naive(
          model,
          pr,
          (l) => `blocks.${l}.hook_attn_out`,
          [s],
          ([p]) => [p!],
        ),
        1e-4,
        'attn_out',
      );
      assertAllClose(
        numbers(patchMlpOut(model, pr, opts)),
        naive(
          model,
          pr,
          (l) => `blocks.${l}.hook_mlp_out`,
          [s],
          ([p]) => [p!],
        ),
        1e-4,
        'mlp_out',
      );
    });

    it(`${fam}: head outputs (all positions and by position) and head patterns`, () => {
      const z = (l: number) => `blocks.${l}.attn.hook_z`;
      const pat = (l: number) => `blocks.${l}.attn.hook_pattern`;
      const all = patchHeadOut(model, pr, opts);
      assert.deepEqual(all.shape, [2, H]);
      assertAllClose(
        numbers(all),
        naive(model, pr, z, [H], ([h]) => [null, h!]),
        1e-4,
        'head out',
      );
      const byPos = patchHeadOut(model, pr, { ...opts, perPosition: true });
      assert.deepEqual(byPos.shape, [2, s, H]);
      assertAllClose(
        numbers(byPos),
        naive(model, pr, z, [s, H], ([p, h]) => [p!, h!]),
        1e-4,
        'head out by pos',
      );
      assertAllClose(
        numbers(patchHeadPattern(model, pr, opts)),
        naive(model, pr, pat, [H], ([h]) => [h!]),
        1e-4,
        'pattern',
      );
      const patPos = patchHeadPattern(model, pr, { ...opts, perPosition: true });
      assert.deepEqual(patPos.shape, [2, H, s]);
      assertAllClose(
        numbers(patPos),
        naive(model, pr, pat, [H, s], ([h, p]) => [h!, p!]),
        1e-4,
        'pattern by pos',
      );
    });

    it(`${fam}: patching resid_pre of layer 0 at every position gives exactly 1; one chunk or many give the same`, () => {
      const [v] = activationPatching(model, pr, [{ hook: 'blocks.0.hook_resid_pre' }]);
      assert.ok(Math.abs(v! - 1) < 1e-6, `got ${v}`);
      // The final resid_post of every position too; and nothing patched gives 0.
      const [w, none] = activationPatching(model, pr, [{ hook: `blocks.${model.cfg.nLayers - 1}.hook_resid_post` }, []]);
      assert.ok(Math.abs(w! - 1) < 1e-6 && Math.abs(none!) < 1e-6);
      assertAllClose(numbers(patchResidPre(model, pr, { maxBatch: 1 })), numbers(patchResidPre(model, pr)), 1e-5, 'chunking');
    });
  }

  it('a left-padded batch: the mask applies to the clean, corrupted and patched runs', () => {
    const model = loadFixtureModel(FIXTURES, 'gpt2');
    const mask = [
      [1, 1, 1, 1, 1],
      [0, 0, 1, 1, 1],
    ];
    const pr: PatchingProblem = {
      clean: [
        [31, 12, 16, 122, 55],
        [0, 0, 251, 102, 54],
      ],
      corrupted: [
        [31, 12, 17, 122, 9],
        [0, 0, 250, 102, 3],
      ],
      answer: [7, 9],
      wrong: [11, 3],
      attentionMask: mask,
    };
    const metric = logitDiffMetric(pr.answer, pr.wrong);
    const clean = model.runWithCache(pr.clean as number[][], { attentionMask: mask });
    const cleanV = metric(clean.logits) as number;
    const corrV = metric(model.forward(pr.corrupted as number[][], { attentionMask: mask })) as number;
    const got = numbers(patchResidPre(model, pr, { maxBatch: 4 }));
    for (let l = 0; l < 2; l++)
      for (let p = 0; p < 5; p++) {
        const name = `blocks.${l}.hook_resid_pre`;
        const src = clean.cache.get(name).slice([null, p]);
        const logits = model.runWithHooks(pr.corrupted as number[][], {
          attentionMask: mask,
          hooks: [[name, (x: Tensor) => x.set([null, p], src)]],
        });
        const want = ((metric(logits) as number) - corrV) / (cleanV - corrV);
        assert.ok(Math.abs(got[l * 5 + p]! - want) < 1e-4, `layer ${l} pos ${p}: ${got[l * 5 + p]} vs ${want}`);
      }
  });
});

describe('activation patching on a hand-built induction model', () => {
  const model = inductionCircuitModel();
  // Clean predicts 2 (the token after the earlier 1); corrupted has 6 there and predicts 6.
  const pr: PatchingProblem = { clean: [0, 1, 2, 3, 4, 5, 1], corrupted: [0, 1, 6, 3, 4, 5, 1], answer: 2, wrong: 6 };

  it('patching the copying head recovers ~1, every other head ~0', () => {
    const r = numbers(patchHeadOut(model, pr)); // [layer, head]
    assert.ok(Math.abs(r[2]! - 1) < 0.01, `L1H0: ${r[2]}`);
    for (const i of [0, 1, 3]) assert.ok(Math.abs(r[i]!) < 0.01, `head ${i}: ${r[i]}`);
    // By position: only the final position of the copying head.
    const byPos = numbers(patchHeadOut(model, pr, { perPosition: true })); // [layer, pos, head]
    byPos.forEach((v, i) => assert.ok(i === (1 * 7 + 6) * 2 + 0 ? Math.abs(v - 1) < 0.01 : Math.abs(v) < 0.01, `entry ${i}: ${v}`));
  });

  it('the residual stream carries the answer at its own position; patterns and MLPs carry nothing', () => {
    const resid = numbers(patchResidPre(model, pr)); // [layer, pos]
    resid.forEach((v, i) => assert.ok(i % 7 === 2 ? Math.abs(v - 1) < 0.01 : Math.abs(v) < 0.01, `resid ${i}: ${v}`));
    const attn = numbers(patchAttnOut(model, pr));
    attn.forEach((v, i) => assert.ok(i === 7 + 6 ? Math.abs(v - 1) < 0.01 : Math.abs(v) < 0.01, `attn_out ${i}: ${v}`));
    for (const v of numbers(patchMlpOut(model, pr))) assert.ok(Math.abs(v) < 1e-4);
    // The induction head attends to the same place in both runs: its pattern carries no information.
    for (const v of numbers(patchHeadPattern(model, pr))) assert.ok(Math.abs(v) < 0.01);
    const [all] = activationPatching(model, pr, [{ hook: 'blocks.0.hook_resid_pre' }]);
    assert.ok(Math.abs(all! - 1) < 1e-6);
  });

  it('a custom metric is normalised the same way', () => {
    const custom = patchHeadOut(model, { ...pr, metric: logitDiffMetric(2, 6) });
    const dflt = patchHeadOut(model, pr);
    assertAllClose(numbers(custom), numbers(dflt), 1e-5, 'custom metric');
  });

  it('checks its inputs', () => {
    assert.throws(() => patchHeadOut(model, { ...pr, corrupted: [0, 1, 6, 3] }), /same shape/);
    assert.throws(() => patchHeadOut(model, { ...pr, corrupted: pr.clean }), /nothing to recover/);
    assert.throws(() => activationPatching(model, pr, [{ hook: 'blocks.0.hook_resid_pre', index: [7] }]), /out of range/);
  });
});
