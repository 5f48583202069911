/**
 * Steering (ActAdd, Turner et al. 2023; CAA, Rimsky et al. 2023): the difference-of-means vector
 * is the hand-computed one; adding a token's unembedding direction at the last layer makes that
 * token the greedy continuation (hand-built model: exactly by construction; a random model: every
 * token); scale 0 is plain `generate`; the position modes add the vector where they say.
 */
import { describe, it } from 'node:test';
import { TINY_VOCAB, tinyRandomModel } from './tiny-models.js';
import assert from 'node:assert/strict';
import { randn, type Tensor } from '../src/index.js';
import { inductionCircuitModel } from '../src/analysis/known-circuits.js';
import { compareSteering, generateSteered, steeringHooks, steeringVector } from '../src/analysis/steering.js';

const V = TINY_VOCAB;

const tinyModel = tinyRandomModel;

const values = (t: Tensor): number[] => Array.from(t.cast('float32').dataSync() as Float32Array);

describe('steering', () => {
  const model = tinyModel(2);
  const prompt = [3, 1, 4, 1, 5];

  it('steeringVector is the difference of the mean activations, by hand', () => {
    const pos = [[1, 2, 3], [4, 5, 6, 7, 8], [9]];
    const neg = [
      [10, 11],
      [12, 13],
    ];
    const name = 'blocks.1.hook_resid_post';
    const act = (row: number[]) =>
      model
        .runWithCache([row], { names: [name] })
        .cache.get(name)
        .index([0]); // [pos, d]
    const d = 16;
    const meanOf = (rows: number[][], pick: (a: Tensor) => number[]) => {
      const acc = new Array<number>(d).fill(0);
      for (const r of rows) pick(act(r)).forEach((v, i) => (acc[i]! += v / rows.length));
      return acc;
    };
    const last = (a: Tensor) => values(a.index([-1]));
    const avg = (a: Tensor) => {
      const v = values(a);
      const s = a.shape[0]!;
      return Array.from({ length: d }, (_, j) => {
        let x = 0;
        for (let p = 0; p < s; p++) x += v[p * d + j]! / s;
        return x;
      });
    };
    for (const [position, pick] of [
      ['last', last],
      ['mean', avg],
    ] as const) {
      const expected = meanOf(pos, pick).map((x, i) => x - meanOf(neg, pick)[i]!);
      const got = values(steeringVector(model, pos, neg, { layer: 1, hook: 'resid_post', position }));
      assert.equal(got.length, d);
      got.forEach((x, i) => assert.ok(Math.abs(x - expected[i]!) < 1e-5, `${position} [${i}]: ${x} vs ${expected[i]}`));
    }
    // resid_pre is the default hook; one prompt each is ActAdd's pair.
    const pre = (row: number[]) => model.runWithCache([row], { names: ['blocks.1.hook_resid_pre'] }).cache.get('blocks.1.hook_resid_pre');
    const pair = values(steeringVector(model, [[1, 2, 3]], [[4, 5, 6]], { layer: 1 }));
    const want = values(
      pre([1, 2, 3])
        .index([0, -1])
        .sub(pre([4, 5, 6]).index([0, -1])),
    );
    pair.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-6));
    assert.throws(() => steeringVector(model, [[1]], [[2]], { layer: 2 }), /layer 2 is out of range/);
    assert.throws(
      () => steeringVector(model, [[1]], [[2]], { layer: 0, hook: 'resid_pst' }),
      /unknown hook point 'blocks\.0\.hook_resid_pst'.*did you mean/,
    );
  });

  it("adding a token's unembedding direction at the last layer makes it the greedy continuation", () => {
    // Hand-built model: W_U reads dims 40..49, so W_U[:, t] is the one-hot of token t's logit.
    const ind = inductionCircuitModel();
    const p = [0, 1, 2, 3, 4, 5, 1];
    assert.deepEqual(ind.generate([p], { maxNewTokens: 4 }).newTokens, [[2, 3, 4, 5]]);
    for (let t = 0; t < 10; t++) {
      const u = ind.params.unembed.W_U.index([null, t]);
      assert.deepEqual(generateSteered(ind, p, u, { layer: 1, hook: 'resid_post', scale: 20, maxNewTokens: 4 }).newTokens, [[t, t, t, t]]);
    }
    // A random model: the direction through the final LayerNorm's weight (d logit_t / d normalised resid) wins for every token.
    for (let t = 0; t < V; t++) {
      const u = model.params.unembed.W_U.index([null, t]).mul(model.params.ln_final.w!);
      const out = generateSteered(model, [prompt], u, { layer: 1, hook: 'resid_post', scale: 100, maxNewTokens: 3 }).newTokens[0]!;
      assert.deepEqual(out, [t, t, t], `token ${t}`);
    }
  });

  it('scale 0 is plain generate (greedy and sampled, with and without the KV cache)', () => {
    const v = randn([16], { seed: 7 });
    for (const o of [{}, { temperature: 1, seed: 5 }, { temperature: 0.7, topK: 5, seed: 11 }]) {
      const plain = model.generate([prompt], { maxNewTokens: 6, ...o });
      for (const positions of ['all', 'prompt'] as const) {
        const steered = generateSteered(model, [prompt], v, { layer: 0, scale: 0, positions, maxNewTokens: 6, ...o });
        assert.deepEqual(steered.tokens, plain.tokens, `${JSON.stringify(o)} ${positions}`);
      }
      // A large random vector changes something.
      assert.notDeepEqual(generateSteered(model, [prompt], v, { layer: 0, scale: 50, maxNewTokens: 6, ...o }).tokens, plain.tokens);
    }
  });

  it('positions: prompt, generated, or chosen positions only', () => {
    const ind = inductionCircuitModel();
    const p = [0, 1, 2, 3, 4, 5, 1];
    const u = ind.params.unembed.W_U.index([null, 7]);
    const o = { layer: 1, hook: 'resid_post', scale: 20, maxNewTokens: 4 } as const;
    // At the last layer the vector moves only the logits of the positions it is added at.
    assert.deepEqual(generateSteered(ind, p, u, { ...o, positions: 'generated' }).newTokens, [[2, 7, 7, 7]]);
    const first = generateSteered(ind, p, u, { ...o, positions: 'prompt' }).newTokens[0]!;
    assert.equal(first[0], 7);
    assert.deepEqual(first.slice(1), ind.generate([[...p, 7]], { maxNewTokens: 3 }).newTokens[0]);

    const hooks = steeringHooks(model, randn([16], { seed: 1 }), {
      layer: 1,
      hook: 'resid_post',
      scale: 5,
      positions: [1, 3],
      promptLen: 5,
      seqLen: 5,
    });
    const plain = values(model.forward([prompt]));
    const steered = values(model.runWithHooks([prompt], { hooks }));
    for (let pos = 0; pos < 5; pos++) {
      const diff = Math.max(...Array.from({ length: V }, (_, j) => Math.abs(plain[pos * V + j]! - steered[pos * V + j]!)));
      if (pos === 1 || pos === 3) assert.ok(diff > 1e-3, `position ${pos} should change`);
      else assert.equal(diff, 0, `position ${pos} should not change`);
    }
    assert.throws(() => generateSteered(model, [prompt], [1, 2, 3], { layer: 0 }), /shape \[3\], the model needs \[16\]/);
    assert.throws(() => steeringHooks(model, randn([16]), { layer: 0, positions: 'prompt' }), /need promptLen and seqLen/);
  });

  it('compareSteering gives the plain and steered continuations side by side', () => {
    const u = model.params.unembed.W_U.index([null, 4]).mul(model.params.ln_final.w!);
    const rows = compareSteering(model, [prompt, [7, 8]], u, { layer: 1, hook: 'resid_post', scale: 100, maxNewTokens: 3 });
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0]!.prompt, prompt);
    assert.deepEqual(rows[1]!.prompt, [7, 8]);
    assert.deepEqual(rows[0]!.unsteered, model.generate([prompt], { maxNewTokens: 3 }).newTokens[0]);
    assert.deepEqual(rows[1]!.unsteered, model.generate([[7, 8]], { maxNewTokens: 3 }).newTokens[0]);
    for (const r of rows) assert.deepEqual(r.steered, [4, 4, 4]);
    assert.equal(rows[0]!.steeredText, undefined);
  });
});
