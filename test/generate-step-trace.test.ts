/**
 * Generation with the KV cache keeps the decoding step's trace (jit's reuseTrace) when no hooks are
 * given: the tokens are those of re-tracing every step and of uncached generation, the step is
 * traced once per call, and with hooks (JS functions that may read state of their own) every step
 * traces again and sees that state.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { engineStats, type Tensor } from '../src/index.js';
import { generateConfig } from '../src/model/generate.js';
import { tinyRandomModel } from './tiny-models.js';

const NEW = 8;

/** Ops recorded into traces while `fn` runs (jit traces record one node per op application). */
function tracedOps<T>(fn: () => T): { value: T; ops: number } {
  const before = engineStats.traced;
  const value = fn();
  return { value, ops: engineStats.traced - before };
}

describe('generate: the decoding step trace', () => {
  for (const [name, over] of [
    ['learned positions', {}],
    ['rotary, sliding window, grouped KV heads', { positional: 'rotary', rotaryDim: 4, nKVHeads: 2, slidingWindow: [3, null] }],
  ] as const) {
    it(`${name}: kept and run again gives the tokens of re-tracing every step and of no cache`, () => {
      const model = tinyRandomModel(3, over as never);
      const prompts = [
        [1, 5, 9, 2],
        [0, 0, 7, 3],
      ];
      const opts = {
        maxNewTokens: NEW,
        stopAtEos: false,
        attentionMask: [
          [1, 1, 1, 1],
          [0, 0, 1, 1],
        ],
      };
      const kept = tracedOps(() => model.generate(prompts, opts));
      generateConfig.reuseStepTrace = false;
      let retraced: { value: { newTokens: number[][] }; ops: number };
      try {
        retraced = tracedOps(() => model.generate(prompts, opts));
      } finally {
        generateConfig.reuseStepTrace = true;
      }
      const uncached = model.generate(prompts, { ...opts, useKvCache: false });
      assert.deepEqual(kept.value.newTokens, retraced.value.newTokens);
      assert.deepEqual(kept.value.newTokens, uncached.newTokens);
      // Re-tracing records the step's ops at each of the NEW - 1 steps; kept, at the first only.
      // Both trace the prefill once, so the difference is NEW - 2 steps' worth of ops.
      const perStep = (retraced.ops - kept.ops) / (NEW - 2);
      assert.ok(Number.isInteger(perStep) && perStep > 0, `ops per step ${perStep} (kept ${kept.ops}, re-traced ${retraced.ops})`);
    });
  }

  it('with hooks every step traces again and sees the state its hooks read', () => {
    const model = tinyRandomModel(4);
    const prompt = [1, 5, 9, 2];
    let step = 0;
    const seen: number[] = [];
    // A hook that reads a counter of its own: zero the residual stream from the third call on.
    const hook = (x: Tensor): Tensor => {
      seen.push(step++);
      return step > 2 ? x.mul(0) : x;
    };
    const hooked = model.generate(prompt, { maxNewTokens: NEW, stopAtEos: false, hooks: [['blocks.1.hook_resid_post', hook]] });
    // Prefill plus NEW - 1 steps, each traced with the hook.
    assert.deepEqual(seen, [...Array(NEW).keys()]);
    // From the third call on the logits are the unembedding of zeros (after the final norm): one token, repeated.
    const late = hooked.newTokens[0]!.slice(2);
    assert.ok(
      late.every((t) => t === late[0]),
      `tokens after the hook zeroes the stream: ${late.join(',')}`,
    );
    const plain = model.generate(prompt, { maxNewTokens: NEW, stopAtEos: false });
    assert.deepEqual(hooked.newTokens[0]!.slice(0, 2), plain.newTokens[0]!.slice(0, 2));
  });
});
