/**
 * Shape buckets (src/analysis/buckets.ts): a run padded to a bucket length (right padding and
 * an attention mask, batches filled with all-padding rows) gives the unpadded run's numbers
 * within 1e-5, for learned positions, rotary (plain and dynamic scaling, which depends on the
 * longest position), ALiBi and sliding windows; the analyses that take `buckets` return the
 * unpadded results; prompts of many lengths compile a bounded number of sessions.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor, type ModelConfig } from '../src/index.js';
import {
  boxSlice,
  bucketAtLeast,
  compareSteering,
  headScores,
  inductionScores,
  logitLens,
  padRows,
  patchHeadOut,
  patchResidPre,
  rowSlice,
  shapeBuckets,
  steeringVector,
} from '../src/analysis/index.js';
import { ortStats } from '../src/tensor/backends/ort.js';
import { patchingSweep, type Computer, type PatchingRaw } from '../src/server/compute.js';
import { tinyRandomModel } from './tiny-models.js';

const SCHEMES: Record<string, Partial<ModelConfig>> = {
  'learned positions': { nCtx: 40 },
  rotary: { positional: 'rotary', rotaryDim: 4, nCtx: 40, norm: 'rmsnorm', gatedMlp: true, act: 'silu' },
  'rotary, dynamic scaling past 8 positions': {
    positional: 'rotary',
    rotaryDim: 4,
    nCtx: 40,
    ropeScaling: { type: 'dynamic', theta: 10000, factor: 2, originalMaxPositions: 8 },
  },
  alibi: { positional: 'alibi', nCtx: 40 },
  'sliding window of 3 on layer 0': { positional: 'rotary', rotaryDim: 4, nCtx: 40, slidingWindow: [3, null] },
};

/** The largest difference; equal infinities (masked scores) and NaNs (nothing scored) count as equal. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'sizes');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const [x, y] = [a[i]!, b[i]!];
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    m = Math.max(m, Number.isNaN(x - y) ? Infinity : Math.abs(x - y));
  }
  return m;
}

const f32 = (t: Tensor) => t.cast('float32').dataSync() as Float32Array;
const rows = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7 + seed * 5 + 1) % 23);

describe('shape buckets: the buckets', () => {
  it('lengths 16, 24, 32, 48, ... up to the limit, which is a bucket; batches of powers of two', () => {
    const b = shapeBuckets({ maxLength: 256 });
    const lengths = new Set(Array.from({ length: 256 }, (_, i) => b.length(i + 1)));
    assert.deepEqual([...lengths], [16, 24, 32, 48, 64, 96, 128, 192, 256]);
    for (let n = 1; n <= 256; n++) assert.ok(b.length(n) >= n && (n <= 16 || b.length(n) <= 1.5 * n), `bucket of ${n}`);
    assert.equal(shapeBuckets({ maxLength: 200 }).length(199), 200, 'the limit is a bucket');
    assert.equal(b.length(300), 384, 'past the limit (a prompt and its new tokens): the buckets above it');
    assert.deepEqual(
      [1, 2, 3, 5, 8].map((r) => b.batch(r)),
      [1, 2, 4, 8, 8],
    );
    assert.throws(() => b.batch(9), /1 to 8 rows, got 9/);
    assert.throws(() => b.length(0), /at least one token, got 0/);
    assert.throws(() => shapeBuckets({ maxLength: 0 }), /maxLength must be a positive integer, got 0/);
    assert.deepEqual([1, 2, 3, 5, 7, 9, 13, 17, 100].map(bucketAtLeast), [1, 2, 3, 6, 8, 12, 16, 24, 128]);
  });

  it('padRows pads right (or left) with a mask and fills the batch with padding rows; boxSlice and rowSlice copy boxes', () => {
    const p = padRows([[5, 6, 7], [8]], 4, 3);
    assert.deepEqual(p.tokens.toArray(), [
      [5n, 6n, 7n, 0n],
      [8n, 0n, 0n, 0n],
      [0n, 0n, 0n, 0n],
    ]);
    assert.deepEqual(p.attentionMask.toArray(), [
      [1n, 1n, 1n, 0n],
      [1n, 0n, 0n, 0n],
      [0n, 0n, 0n, 0n],
    ]);
    const left = padRows([[5, 6]], 4, 1, { side: 'left', padId: 9 });
    assert.deepEqual(left.tokens.toArray(), [[9n, 9n, 5n, 6n]]);
    assert.deepEqual(left.attentionMask.toArray(), [[0n, 0n, 1n, 1n]]);
    assert.throws(() => padRows([[1, 2, 3]], 2), /row 0 has 3 tokens, more than the padded length 2/);
    const t = tensor(
      Array.from({ length: 2 * 3 * 4 * 4 }, (_, i) => i),
      [2, 3, 4, 4],
    );
    const box = boxSlice(t, [
      [1, 2],
      [0, 3],
      [1, 3],
      [0, 2],
    ]);
    assert.deepEqual(box.shape, [1, 3, 2, 2]);
    assert.deepEqual(Array.from(f32(box)), Array.from(f32(t.slice([{ start: 1, end: 2 }, null, { start: 1, end: 3 }, { end: 2 }]))));
    const pat = rowSlice('blocks.0.attn.hook_pattern', t, 1, 2); // [head, q, k] cut to 2 x 2
    assert.deepEqual(pat.shape, [3, 2, 2]);
    assert.deepEqual(
      Array.from(f32(pat)),
      Array.from(f32(t.slice([{ start: 1, end: 2 }, null, { end: 2 }, { end: 2 }]).reshape([3, 2, 2]))),
    );
    const resid = rowSlice('blocks.0.hook_resid_pre', t, 0, 2); // [pos, ...] cut to 2 positions
    assert.deepEqual(resid.shape, [2, 4, 4]);
    assert.throws(() => boxSlice(t, [[0, 3]]), /range \[0, 3\) is outside axis 0 of \[2,3,4,4\]/);
  });
});

for (const [scheme, over] of Object.entries(SCHEMES)) {
  describe(`shape buckets: ${scheme}`, () => {
    const model = tinyRandomModel(3, over);

    it('every hook point and the logits of a padded run equal the unpadded run within 1e-5', () => {
      for (const n of [1, 5, 9, 17]) {
        const row = rows(n, n);
        const plain = model.runWithCache([row]);
        const p = padRows([row, rows(3, 1)], 24, 4); // another row and two padding rows beside it
        const padded = model.runWithCache(p.tokens, { attentionMask: p.attentionMask });
        const logits = rowSlice('logits', padded.logits, 0, n);
        assert.ok(maxAbsDiff(f32(logits), f32(plain.logits.index([0]))) <= 1e-5, `logits, ${n} tokens`);
        for (const name of plain.cache.keys()) {
          const want = plain.cache.get(name).index([0]);
          const got = rowSlice(name, padded.cache.get(name), 0, n);
          assert.deepEqual(got.shape, want.shape, `${name} shape`);
          const d = maxAbsDiff(f32(got), f32(want));
          assert.ok(d <= 1e-5, `${name}, ${n} tokens: ${d}`);
        }
      }
    });

    it('logit lens, head scores, induction scores and steering vectors with buckets equal those without', () => {
      const buckets = shapeBuckets({ maxLength: 40, maxBatch: 4 });
      for (const n of [3, 11]) {
        const row = rows(n, 2);
        const a = logitLens(model, [row], { topK: 3 });
        const b = logitLens(model, [row], { topK: 3, buckets });
        assert.deepEqual(b.logits.shape, a.logits.shape);
        assert.ok(maxAbsDiff(f32(b.logits), f32(a.logits)) <= 1e-5, 'lens logits');
        assert.deepEqual(
          b.top.map((l) => l.map((p) => p.map((x) => x.token))),
          a.top.map((l) => l.map((p) => p.map((x) => x.token))),
        );
      }
      const prompts = [rows(6, 1), rows(6, 2), rows(6, 3)];
      const plainHeads = headScores(model, prompts);
      const bucketHeads = headScores(model, prompts, undefined, { buckets });
      for (const k of ['previousToken', 'duplicateToken', 'induction'] as const)
        assert.ok(maxAbsDiff(f32(bucketHeads[k]!), f32(plainHeads[k]!)) <= 1e-5, k);
      const ind = inductionScores(model, { seqLen: 7, batch: 5, seed: 1 });
      const indB = inductionScores(model, { seqLen: 7, batch: 5, seed: 1, buckets });
      assert.deepEqual(indB.tokens, ind.tokens);
      assert.ok(maxAbsDiff(f32(indB.scores), f32(ind.scores)) <= 1e-5, 'induction');
      const pos = [rows(3, 1), rows(9, 2), rows(5, 3), rows(9, 4), rows(2, 5)];
      const neg = [rows(4, 6), rows(12, 7)];
      for (const position of ['last', 'mean'] as const) {
        const v = steeringVector(model, pos, neg, { layer: 1, position });
        const vb = steeringVector(model, pos, neg, { layer: 1, position, buckets });
        assert.ok(maxAbsDiff(f32(vb), f32(v)) <= 1e-5, `steering vector (${position})`);
      }
    });

    it('generation left-padded to a bucket with a larger KV cache continues as unpadded', () => {
      const buckets = shapeBuckets({ maxLength: 40 });
      const vector = tensor(Array.from({ length: 16 }, (_, i) => Math.sin(i)));
      for (const positions of ['all', 'prompt', 'generated'] as const) {
        const opts = { layer: 1, scale: 3, positions, maxNewTokens: 6 };
        const plain = compareSteering(model, [rows(5, 1)], vector, opts);
        const padded = compareSteering(model, [rows(5, 1)], vector, { ...opts, buckets });
        assert.deepEqual(padded, plain, positions);
      }
      const g = model.generate([rows(4, 2)], { maxNewTokens: 5 });
      assert.deepEqual(model.generate([rows(4, 2)], { maxNewTokens: 5, cacheLength: 24 }), g);
      assert.deepEqual(model.generate([rows(4, 2)], { maxNewTokens: 5, cacheLength: 24, useKvCache: false }), g);
      assert.throws(
        () => model.generate([rows(4, 2)], { maxNewTokens: 5, cacheLength: 8 }),
        /cacheLength 8 is shorter than the 4 prompt columns plus 5/,
      );
    });

    it("the server's patching sweep (padded, one session) equals patchResidPre, patchHeadOut and a brute-force loop per head and position", () => {
      const clean = rows(7, 1);
      const corrupted = clean.map((t, i) => (i === 5 ? (t + 3) % 23 : t));
      const logits = model.forward([clean]).index([0, 6]);
      const order = Array.from(f32(logits).keys()).sort((x, y) => f32(logits)[y]! - f32(logits)[x]!);
      const [answer, wrong] = [order[0]!, order[1]!];
      const c: Computer = { model, buckets: shapeBuckets({ maxLength: 40 }), passBudgetBytes: 2 ** 16 };
      const gen = patchingSweep(c, { clean, corrupted, answer, wrong, pos: 6, kinds: ['resid_pre', 'head_out', 'head_out_by_pos'] });
      let r = gen.next();
      const passes: number[] = [];
      while (!r.done) {
        if ('done' in r.value) passes.push(r.value.done);
        r = gen.next();
      }
      assert.ok(passes.length > 1, `several passes: ${passes}`);
      const raw = r.value as PatchingRaw;
      const problem = { clean: [clean], corrupted: [corrupted], answer, wrong, pos: 6 };
      assert.ok(maxAbsDiff(raw.resid_pre!, f32(patchResidPre(model, problem))) <= 1e-5, 'resid_pre');
      assert.ok(maxAbsDiff(raw.head_out!, f32(patchHeadOut(model, problem))) <= 1e-5, 'head_out');
      // [layer, pos, head], as TransformerLens's get_act_patch_attn_head_out_by_pos.
      assert.ok(maxAbsDiff(raw.head_out_by_pos!, f32(patchHeadOut(model, problem, { perPosition: true }))) <= 1e-5, 'by pos');
      // Brute force: one unpadded hooked run per (layer, pos, head), the clean z[:, pos, head] written in.
      const diff = (l: Tensor) => {
        const v = f32(l.index([0, 6]));
        return v[answer]! - v[wrong]!;
      };
      const cleanRun = model.runWithCache([clean]);
      const [cleanV, corrV] = [diff(cleanRun.logits), diff(model.forward([corrupted]))];
      const { nLayers: L, nHeads: H } = model.cfg;
      const brute: number[] = [];
      for (let l = 0; l < L; l++)
        for (let p = 0; p < clean.length; p++)
          for (let h = 0; h < H; h++) {
            const at = [null, p, h];
            const src = cleanRun.cache.get(`blocks.${l}.attn.hook_z`).slice(at);
            const logits = model.runWithHooks([corrupted], { hooks: [[`blocks.${l}.attn.hook_z`, (x: Tensor) => x.set(at, src)]] });
            brute.push((diff(logits) - corrV) / (cleanV - corrV));
          }
      assert.equal(raw.head_out_by_pos!.length, L * clean.length * H);
      // Within 1e-5 in logit-difference units (the normalisation divides by clean - corrupted, which
      // may be small on a random model and magnify float rounding).
      const span = Math.abs(cleanV - corrV);
      assert.ok(
        maxAbsDiff(raw.head_out_by_pos!, brute) * span <= 1e-5,
        `brute force: ${maxAbsDiff(raw.head_out_by_pos!, brute)} x ${span}`,
      );
    });
  });
}

describe('shape buckets: compiled sessions', () => {
  it('logit lens over prompts of 1 to 40 tokens compiles sessions for 4 lengths, not 40', () => {
    // shapes no other test compiled (sessions are cached by graph, whichever model runs them)
    const model = tinyRandomModel(5, { nCtx: 40, dModel: 20, dHead: 5, dMlp: 24 });
    const buckets = shapeBuckets({ maxLength: 40 });
    const count = (f: () => void) => {
      const before = ortStats.compiles;
      f();
      return ortStats.compiles - before;
    };
    const unpadded = count(() => {
      for (let n = 1; n <= 10; n++) logitLens(model, [rows(n, n + 50)]);
    });
    assert.ok(unpadded >= 10, `unpadded, every length compiles: ${unpadded} compiles for 10 lengths`);
    const perBucket = count(() => logitLens(model, [rows(1, 0)], { buckets }));
    const bucketed = count(() => {
      for (let n = 1; n <= 40; n++) logitLens(model, [rows(n, n)], { buckets });
    });
    // 1..16 is the bucket just compiled; 17..24, 25..32 and 33..40 are three more
    assert.ok(perBucket >= 1);
    assert.ok(bucketed <= 3 * perBucket, `${bucketed} compiles for 40 lengths, ${perBucket} per bucket`);
  });

  it('one pass of a patching sweep is one session for all its layers and positions', () => {
    const model = tinyRandomModel(6, { nCtx: 40, nLayers: 3 });
    const c: Computer = { model, buckets: shapeBuckets({ maxLength: 40 }), passBudgetBytes: 2 ** 16 };
    const run = (n: number) => {
      const clean = rows(n, 1);
      const corrupted = clean.map((t, i) => (i === n - 2 ? (t + 3) % 23 : t));
      const gen = patchingSweep(c, {
        clean,
        corrupted,
        answer: 1,
        wrong: 2,
        pos: n - 1,
        kinds: ['resid_pre', 'attn_out', 'mlp_out', 'head_out'],
      });
      const before = ortStats.compiles;
      let r = gen.next();
      const prep = ortStats.compiles - before;
      let passes = 0;
      while (!r.done) {
        r = gen.next();
        passes++;
      }
      return { prep, sweep: ortStats.compiles - before - prep, passes };
    };
    const first = run(9); // lengths 9 and 12 share the 16 bucket
    const second = run(12);
    assert.ok(first.passes > 3, `${first.passes} passes`);
    // the sweep's session and the evaluator's eager ops, once for every layer, position and kind
    assert.ok(first.sweep <= 4, `${first.sweep} compiles for a sweep of ${first.passes} passes`);
    assert.equal(second.prep + second.sweep, 0, 'another length in the same bucket compiles nothing');
  });
});
