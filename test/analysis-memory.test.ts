/**
 * Memory planning of the sweeps: the chunk plans, the per-row estimates, and that the sweeps give
 * the same results whatever the budget splits them into (the peak-RSS regression of integrated
 * gradients on the default model is in memory.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookedTransformer, type ModelConfig } from '../src/index.js';
import {
  backwardBytesPerRow,
  backwardPlan,
  edgeAttributionPatching,
  forwardBytesPerRow,
  forwardPlan,
  integratedGradients,
  logitDiffTensorMetric,
  memoryConfig,
  patchResidPre,
  planChunks,
  rowsPerPass,
} from '../src/analysis/index.js';
import { numbers } from './helpers.js';
import { TINY_PATCHING_PROBLEM, randomWeights, tinyConfig } from './tiny-models.js';

function randomModel(over: Partial<ModelConfig>, seed: number): HookedTransformer {
  const cfg = tinyConfig({ nHeads: 2, nKVHeads: 2, dHead: 8, dVocab: 13, nCtx: 8, attnScale: 1 / Math.sqrt(8), ...over });
  return new HookedTransformer(cfg, randomWeights(cfg, seed, 0.2));
}

const PR = TINY_PATCHING_PROBLEM;

function allClose(got: number[], want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= tol, `${what} [${i}]: ${v} vs ${want[i]}`));
}

/** Runs `fn` with the global budget set to `bytes`. */
function withBudget<T>(bytes: number, fn: () => T): T {
  const saved = memoryConfig.memoryBudgetBytes;
  memoryConfig.memoryBudgetBytes = bytes;
  try {
    return fn();
  } finally {
    memoryConfig.memoryBudgetBytes = saved;
  }
}

describe('chunk plans', () => {
  it('one pass when everything fits; else equal passes rounded up to a bucket that fits', () => {
    assert.deepEqual(planChunks(50, 1, 256), { size: 50, count: 1 });
    assert.deepEqual(planChunks(256, 1, 256), { size: 256, count: 1 });
    assert.deepEqual(planChunks(256, 1, 149), { size: 128, count: 2 });
    assert.deepEqual(planChunks(256, 1, 100), { size: 96, count: 3 }); // 86 -> bucket 96
    assert.deepEqual(planChunks(100, 1, 90), { size: 64, count: 2 }); // 50 -> 64
    assert.deepEqual(planChunks(100, 1, 60), { size: 50, count: 2 }); // 50 -> 64 does not fit
    assert.deepEqual(planChunks(24, 2, 8), { size: 4, count: 6 });
    assert.deepEqual(planChunks(24, 2, 14), { size: 6, count: 4 });
    // At least one item per pass, however small the budget; nothing to do for no items.
    assert.deepEqual(planChunks(5, 4, 1), { size: 1, count: 5 });
    assert.deepEqual(planChunks(0, 4, 100), { size: 0, count: 0 });
    // Different lengths share bucketed sizes.
    const sizes = new Set([210, 230, 250, 256].map((n) => planChunks(n, 1, 100).size));
    assert.deepEqual([...sizes], [96]);
  });

  it('rows per pass: maxBatch wins; else the budget over the estimate, between 1 and memoryConfig.maxRows', () => {
    assert.equal(rowsPerPass(1000, { maxBatch: 3, memoryBudgetBytes: 1e9 }), 3);
    assert.equal(rowsPerPass(1000, { memoryBudgetBytes: 10_500 }), 10);
    assert.equal(rowsPerPass(1000, { memoryBudgetBytes: 10 }), 1);
    assert.equal(rowsPerPass(1, { memoryBudgetBytes: 1e12 }), memoryConfig.maxRows);
    assert.equal(
      withBudget(5000, () => rowsPerPass(1000)),
      5,
    );
    assert.throws(() => rowsPerPass(1000, { maxBatch: 0 }), /maxBatch must be a positive integer/);
    assert.throws(() => rowsPerPass(1000, { memoryBudgetBytes: -1 }), /memoryBudgetBytes must be a positive number/);
  });

  it('a forward+backward row costs more than a forward row; both grow with the sequence and the vocabulary', () => {
    for (const cfg of [tinyConfig(), tinyConfig({ dVocab: 4096, dModel: 192, dMlp: 768, nHeads: 6, dHead: 32, nLayers: 4 })]) {
      for (const s of [4, 14, 64]) {
        assert.ok(backwardBytesPerRow(cfg, s) > forwardBytesPerRow(cfg, s), `${cfg.dVocab}, ${s}`);
        assert.ok(backwardBytesPerRow(cfg, 2 * s) > 2 * backwardBytesPerRow(cfg, s) - 1, 'attention grows faster than the sequence');
        assert.equal(backwardBytesPerRow(cfg, s, 100), backwardBytesPerRow(cfg, s) + 4 * s * 100);
      }
      assert.ok(forwardBytesPerRow({ ...cfg, dVocab: 2 * cfg.dVocab }, 8) > forwardBytesPerRow(cfg, 8));
    }
    // The default model on a 14-token prompt: measured 1.6 MB per row for integrated gradients
    // (peak RSS growth over 64 and 128 stacked points) and 0.7 MB per forward row.
    const def = tinyConfig({ dVocab: 4096, dModel: 192, dMlp: 768, nHeads: 6, nKVHeads: 6, dHead: 32, nLayers: 4 });
    const bwd = backwardBytesPerRow(def, 14) / 2 ** 20;
    const fwd = forwardBytesPerRow(def, 14) / 2 ** 20;
    assert.ok(bwd > 1.6 && bwd < 2.4, `backward ${bwd} MB per row`);
    assert.ok(fwd > 0.7 && fwd < 1.1, `forward ${fwd} MB per row`);
  });
});

describe('sweeps under a memory budget', () => {
  const metric = logitDiffTensorMetric(PR.answer, PR.wrong);

  it('integrated gradients: the budget sets the passes, the result is the single-pass one to 1e-5', () => {
    const model = randomModel({}, 19);
    const [b, s] = [2, 6];
    const perRow = backwardBytesPerRow(model.cfg, s);
    const steps = 24;
    const opts = { steps, baseline: { tokens: PR.corrupted } };
    const single = integratedGradients(model, PR.clean, metric, { ...opts, maxBatch: steps * b });
    assert.deepEqual(single.plan, { size: steps, count: 1 });
    const counts: number[] = [];
    for (const [rows, want] of [
      [1, { size: 1, count: 24 }],
      [8, { size: 4, count: 6 }],
      [14, { size: 6, count: 4 }],
      [48, { size: 24, count: 1 }],
    ] as const) {
      const budget = perRow * rows + 1;
      assert.deepEqual(backwardPlan(model.cfg, b, s, steps, { memoryBudgetBytes: budget }), want);
      const ig = integratedGradients(model, PR.clean, metric, { ...opts, memoryBudgetBytes: budget });
      assert.deepEqual(ig.plan, want, `budget of ${rows} rows`);
      counts.push(ig.plan.count);
      allClose(numbers(ig.perDim), numbers(single.perDim), 1e-5, `perDim, ${rows} rows`);
      allClose(numbers(ig.attributions), numbers(single.attributions), 1e-5, `attributions, ${rows} rows`);
    }
    assert.deepEqual(counts, [24, 6, 4, 1]);
    // The global default applies when the call names no budget.
    const global = withBudget(perRow * 8 + 1, () => integratedGradients(model, PR.clean, metric, opts));
    assert.deepEqual(global.plan, { size: 4, count: 6 });
    allClose(numbers(global.perDim), numbers(single.perDim), 1e-5, 'perDim, global budget');
  });

  it('EAP-IG and activation patching: same results under a budget of one item per pass', () => {
    const model = randomModel({}, 23);
    const pr = { ...PR, clean: PR.clean, corrupted: PR.corrupted };
    const full = edgeAttributionPatching(model, pr, { steps: 6 });
    assert.deepEqual(full.plan, { size: 6, count: 1 });
    const tight = edgeAttributionPatching(model, pr, { steps: 6, memoryBudgetBytes: 1 });
    assert.deepEqual(tight.plan, { size: 1, count: 6 });
    allClose(numbers(tight.scores), numbers(full.scores), 1e-5, 'EAP-IG scores');
    // EAP's extra gradients count against the budget.
    const withExtra = backwardPlan(model.cfg, 2, 6, 6, {
      memoryBudgetBytes: backwardBytesPerRow(model.cfg, 6) * 12,
      extraPerPosition: 1000,
    });
    assert.ok(withExtra.size < 6, `plan ${JSON.stringify(withExtra)}`);

    assert.equal(forwardPlan(model.cfg, 2, 6, 12, { memoryBudgetBytes: 1 }).size, 1);
    const a = numbers(patchResidPre(model, PR));
    const c = numbers(patchResidPre(model, PR, { memoryBudgetBytes: 1 }));
    allClose(c, a, 1e-5, 'patchResidPre');
  });
});
