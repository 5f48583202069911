/**
 * Path patching: on the hand-built induction circuit the previous-token head acts on the
 * induction head through its keys only; a last-layer head's path to the logits is its whole
 * effect (equal to activation patching); batching, sender groups and MLP senders/receivers agree
 * with the unbatched, one-by-one runs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig } from '../src/index.js';
import {
  activationPatching,
  inductionCircuitModel,
  patchHeadOut,
  pathPatching,
  pathPatchingSweep,
  type PatchingProblem,
  type PathReceiver,
} from '../src/analysis/index.js';
import { numbers } from './helpers.js';
import { TINY_PATCHING_PROBLEM, analysisModel } from './tiny-models.js';

/** The analysis tests' model, 3 layers unless `over` says otherwise. */
const randomModel = (over: Partial<ModelConfig>, seed: number, scale = 0.2) => analysisModel({ nLayers: 3, ...over }, seed, scale);

const PR = TINY_PATCHING_PROBLEM;

function allClose(got: number[], want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= tol, `${what}[${i}]: ${g} vs ${want[i]}`));
}

describe('path patching on the hand-built induction circuit', () => {
  const model = inductionCircuitModel();
  // Corrupting the earlier "1" removes the match the induction head (L1H0) looks for.
  const pr: PatchingProblem = { clean: [0, 1, 2, 3, 4, 5, 1], corrupted: [0, 7, 2, 3, 4, 5, 1], answer: 2, wrong: 3 };
  const into = (input: 'q' | 'k' | 'v'): PathReceiver[] => [{ layer: 1, head: 0, input }];

  it('denoising: the previous-token head -> induction head keys recovers the effect, -> queries and values nothing', () => {
    const k = numbers(pathPatchingSweep(model, pr, into('k'), { direction: 'denoising' })); // [layer, head]
    assert.ok(k[0]! > 0.95, `L0H0 -> L1H0.k: ${k[0]}`);
    for (const i of [1, 2, 3]) assert.ok(Math.abs(k[i]!) < 0.01, `head ${i} -> L1H0.k: ${k[i]}`);
    for (const input of ['q', 'v'] as const)
      numbers(pathPatchingSweep(model, pr, into(input), { direction: 'denoising' })).forEach((v, i) =>
        assert.ok(Math.abs(v) < 0.01, `head ${i} -> L1H0.${input}: ${v}`),
      );
    // The induction head's direct path to the logits carries the whole effect.
    const logits = numbers(pathPatchingSweep(model, pr, 'logits', { direction: 'denoising' }));
    allClose(logits, [0, 0, 1, 0], 0.01, 'to logits');
  });

  it('noising (the default, as Wang et al.): the key path destroys the behaviour, the query path leaves it', () => {
    const k = numbers(pathPatchingSweep(model, pr, into('k')));
    allClose(k, [0, 1, 1, 1], 0.01, 'to keys');
    allClose(numbers(pathPatchingSweep(model, pr, into('q'))), [1, 1, 1, 1], 0.01, 'to queries');
  });
});

describe('path patching on a random model', () => {
  const model = randomModel({}, 4);

  it("a last-layer head's path to the logits is its whole effect: equals activation patching", () => {
    const act = numbers(patchHeadOut(model, PR)); // [layer, head], denoising
    const pp = pathPatching(
      model,
      PR,
      [0, 1].map((h) => ({ layer: 2, head: h })),
      'logits',
      { direction: 'denoising' },
    );
    allClose(pp, act.slice(4), 1e-4, 'last layer');
    // Earlier heads: the direct path is only part of the effect.
    assert.ok(
      numbers(pathPatchingSweep(model, PR, 'logits', { direction: 'denoising' })).some((v, i) => i < 4 && Math.abs(v - act[i]!) > 1e-3),
    );
  });

  it('batched sweeps equal one sender per pass; heads with no path give the base value', () => {
    const receivers: PathReceiver[] = [
      { layer: 2, head: 1, input: 'q' },
      { layer: 2, head: 0, input: 'v' },
      { layer: 1, mlp: true },
    ];
    for (const direction of ['noising', 'denoising'] as const) {
      const all = numbers(pathPatchingSweep(model, PR, receivers, { direction }));
      const one = numbers(pathPatchingSweep(model, PR, receivers, { direction, maxBatch: 2 }));
      allClose(all, one, 1e-5, direction);
      // Layer-2 heads cannot reach layer-2 inputs or the layer-1 MLP.
      allClose(all.slice(4), [direction === 'noising' ? 1 : 0, direction === 'noising' ? 1 : 0], 1e-5, `${direction}: no path`);
      assert.ok(
        all.slice(0, 4).some((v) => Math.abs(v - (direction === 'noising' ? 1 : 0)) > 1e-3),
        `${direction}: some effect`,
      );
    }
  });

  it('sender groups, MLP senders and frozen MLPs', () => {
    const toLogits = (senders: Parameters<typeof pathPatching>[2], freezeMlps = false) =>
      pathPatching(model, PR, senders, 'logits', { direction: 'denoising', freezeMlps });
    // No sender: everything frozen to the corrupted run.
    const [none] = toLogits([[]]);
    assert.ok(Math.abs(none!) < 1e-5, `no sender: ${none}`);
    // Nothing comes after the last layer: its paths to the logits are its whole effect.
    const [pair, mlp2, mlp2Frozen] = [
      ...toLogits([
        [
          { layer: 2, head: 0 },
          { layer: 2, head: 1 },
        ],
        { layer: 2, mlp: true },
      ]),
      ...toLogits([{ layer: 2, mlp: true }], true),
    ];
    const [wholeLayer, wholeMlp] = activationPatching(model, PR, [{ hook: 'blocks.2.attn.hook_z' }, { hook: 'blocks.2.hook_mlp_out' }]);
    assert.ok(Math.abs(pair! - wholeLayer!) < 1e-4, `both heads of layer 2: ${pair} vs ${wholeLayer}`);
    assert.ok(Math.abs(mlp2! - wholeMlp!) < 1e-4, `MLP 2: ${mlp2} vs ${wholeMlp}`);
    assert.ok(Math.abs(mlp2Frozen! - wholeMlp!) < 1e-4, `MLP 2, MLPs frozen: ${mlp2Frozen} vs ${wholeMlp}`);
    // An early head's path through later MLPs counts unless they are frozen.
    const [free, frozen] = [...toLogits([{ layer: 0, head: 1 }]), ...toLogits([{ layer: 0, head: 1 }], true)];
    assert.ok(Math.abs(free! - frozen!) > 1e-4, `L0H1: ${free} vs ${frozen}`);
  });

  it('checks its inputs', () => {
    assert.throws(() => pathPatching(model, PR, [{ layer: 0, head: 0 }], []), /no receivers/);
    assert.throws(() => pathPatching(model, PR, [{ layer: 0, head: 2 }], 'logits'), /head 2 is out of range/);
    assert.throws(() => pathPatching(model, PR, [{ layer: 3, head: 0 }], 'logits'), /layer 3 is out of range/);
    assert.throws(() => pathPatching(model, PR, [{ layer: 0, head: 0 }], [{ layer: 1, head: 5, input: 'k' }]), /out of range/);
    const attnOnly = randomModel({ attnOnly: true }, 1);
    assert.throws(() => pathPatching(attnOnly, PR, [{ layer: 0, mlp: true }], 'logits'), /no MLPs/);
  });
});
