/**
 * Interventions in the real model with frozen quantities, and graph checks (src/circuits/
 * interventions.ts): the real model with attention, norms and error terms frozen is the
 * replacement model; each frozen quantity keeps the clean run's values; `graphVerifier` answers
 * as `verifyGraph` does for every check, ranks by the influence it is given, and ablates the
 * features it is asked to.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attribute } from '../src/circuits/attribute.js';
import { featureNodeIndex, nodeAt, nodeLayout, pruneGraph } from '../src/circuits/graph.js';
import { prepareReplacement } from '../src/circuits/replacement.js';
import { graphVerifier, intervene, verifyGraph, type FeatureIntervention } from '../src/circuits/interventions.js';
import { hookName } from '../src/model/hook-names.js';
import { tinyRandomModel } from './tiny-models.js';
import { randomClt, randomPlt } from './circuits-helpers.js';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const model = tinyRandomModel(3);
const tokens = [1, 5, 7, 2, 9, 4];
const tc = randomClt(model, 21);
const g = attribute(model, tokens, tc);
const L = nodeLayout(g);
const features = Array.from(
  { length: L.nFeatures },
  (_, i) => nodeAt(g, i, L) as { layer: number; pos: number; feature: number; activation: number },
);
/** Zero three features of layer 0 at their positions, and set one to a large value: moves attention and norms downstream. */
const big: FeatureIntervention[] = [
  ...features
    .filter((f) => f.layer === 0)
    .slice(0, 3)
    .map((f) => ({ layer: f.layer, feature: f.feature, positions: [f.pos], op: 'zero' as const })),
  { layer: 0, feature: features[0]!.feature, positions: [1], op: 'set', value: 8 },
];
const patterns = Array.from({ length: model.cfg.nLayers }, (_, l) => hookName('pattern', l));
const scales = model.hookNames.filter((n) => n.endsWith('.hook_scale'));

describe('interventions in the real model with frozen quantities', () => {
  const ctx = prepareReplacement(model, tokens, tc);

  it('attention, norms and error terms all frozen: the real model is the replacement model', () => {
    const rep = intervene(model, tokens, tc, big, {}, ctx).logits.dataSync() as Float32Array;
    const frozen = intervene(model, tokens, tc, big, { mode: 'model', freeze: { attention: true, norms: true, errors: true } }, ctx);
    const live = intervene(model, tokens, tc, big, { mode: 'model' }, ctx).logits.dataSync() as Float32Array;
    assert.ok(maxAbsDiff(frozen.logits.dataSync() as Float32Array, rep) < 1e-4, 'frozen real model = replacement model');
    assert.ok(maxAbsDiff(live, rep) > 1e-2, 'the live real model differs (the test intervention moves attention, norms or errors)');
  });

  it('freeze.attention holds every attention pattern at the clean run, freeze.norms every norm scale; live, both move', () => {
    const cache = [...patterns, ...scales];
    const clean = (name: string) => ctx.frozen.get(name)!.dataSync() as Float32Array;
    const att = intervene(model, tokens, tc, big, { mode: 'model', freeze: { attention: true }, cache }, ctx);
    const norms = intervene(model, tokens, tc, big, { mode: 'model', freeze: { norms: true }, cache }, ctx);
    const live = intervene(model, tokens, tc, big, { mode: 'model', cache }, ctx);
    const moved = (r: typeof live, names: string[]) =>
      Math.max(...names.map((n) => maxAbsDiff(r.cached.get(n)!.dataSync() as Float32Array, clean(n))));
    assert.equal(moved(att, patterns), 0);
    assert.equal(moved(norms, scales), 0);
    // Layer 1's patterns and norms read layer 0's changed MLP output.
    assert.ok(moved(live, patterns) > 1e-3, `live patterns move: ${moved(live, patterns)}`);
    assert.ok(moved(live, scales) > 1e-3, `live norm scales move: ${moved(live, scales)}`);
    assert.ok(moved(att, scales) > 1e-3, 'freezing attention leaves the norms live');
    assert.ok(moved(norms, patterns) > 1e-3, 'freezing norms leaves attention live');
  });

  it('a last-layer feature: with attention and norms frozen, the real model measures what the replacement model does', () => {
    // No MLP after the last layer reads the change, so the error terms cannot respond: the two agree.
    const f = features.find((x) => x.layer === model.cfg.nLayers - 1)!;
    const iv: FeatureIntervention[] = [{ layer: f.layer, feature: f.feature, positions: [f.pos], op: 'zero' }];
    const rep = intervene(model, tokens, tc, iv, {}, ctx).logits.dataSync() as Float32Array;
    const frozen = intervene(model, tokens, tc, iv, { mode: 'model', freeze: { attention: true, norms: true } }, ctx);
    assert.ok(maxAbsDiff(frozen.logits.dataSync() as Float32Array, rep) < 1e-4);
  });

  it('refuses freeze in the replacement model, with generation, or with an unknown key', () => {
    assert.throws(() => intervene(model, tokens, tc, [], { freeze: { attention: true } }, ctx), /freeze applies to mode 'model'/);
    assert.throws(
      () => intervene(model, tokens, tc, [], { mode: 'model', freeze: { norms: true }, maxNewTokens: 2 }, ctx),
      /generation with frozen attention or norms is not supported/,
    );
    assert.throws(
      () => intervene(model, tokens, tc, [], { mode: 'model', freeze: { heads: true } as never }, ctx),
      /freeze\.heads is not an option/,
    );
  });
});

describe('graphVerifier', () => {
  const verify = graphVerifier(model, tc, g);

  it('answers every check as verifyGraph does (influence and clean run made once)', () => {
    for (const options of [
      { topFeatures: 1 },
      { topFeatures: 3, mode: 'model' as const },
      { topFeatures: 4, mode: 'model' as const, freeze: { attention: true } },
      { topFeatures: 2, logitRank: 1 },
    ]) {
      if ((options.logitRank ?? 0) >= L.nLogits) continue;
      const a = verify(options);
      const b = verifyGraph(model, tc, g, options);
      assert.deepEqual(a.features, b.features);
      assert.equal(a.predicted, b.predicted);
      assert.ok(Math.abs(a.actual - b.actual) < 1e-6, `${a.actual} vs ${b.actual}`);
    }
  });

  it('ranks by the influence it is given (pruneGraph influence: the same as its own)', () => {
    const influence = pruneGraph(g, { nodeThreshold: 0.5, edgeThreshold: 0.5 }).influence;
    assert.deepEqual(graphVerifier(model, tc, g, { influence })({ topFeatures: 5 }).features, verify({ topFeatures: 5 }).features);
    // A made-up influence that puts the last feature first.
    const made = new Float64Array(L.n);
    made[L.nFeatures - 1] = 1;
    const last = features[L.nFeatures - 1]!;
    const top = graphVerifier(model, tc, g, { influence: made })({ topFeatures: 1 }).features[0]!;
    assert.deepEqual([top.layer, top.pos, top.feature], [last.layer, last.pos, last.feature]);
    assert.throws(
      () => graphVerifier(model, tc, g, { influence: new Float64Array(3) }),
      /influence has 3 entries; the graph has \d+ nodes/,
    );
  });

  it('excludePositions leaves those positions alone; features ablates exactly the ones given', () => {
    const all = verify({ topFeatures: L.nFeatures }).features;
    const p0 = all[0]!.pos;
    const without = verify({ topFeatures: 3, excludePositions: [p0] }).features;
    assert.ok(without.every((f) => f.pos !== p0));
    assert.deepEqual(without, all.filter((f) => f.pos !== p0).slice(0, 3));
    // One feature by name: in the replacement model, a last-layer feature's ablation is exactly its edge.
    const f = features.find((x) => x.layer === model.cfg.nLayers - 1)!;
    const one = verify({ features: [{ layer: f.layer, pos: f.pos, feature: f.feature }] });
    assert.deepEqual(
      one.features.map((x) => [x.layer, x.pos, x.feature]),
      [[f.layer, f.pos, f.feature]],
    );
    const edge = g.adjacency[L.logitStart * L.n + featureNodeIndex(g, f.layer, f.pos, f.feature)]!;
    assert.ok(Math.abs(one.predicted + edge) < 1e-6);
    assert.ok(Math.abs(one.actual - one.predicted) < 1e-4, `${one.actual} vs ${one.predicted}`);
    assert.throws(
      () => verify({ features: [{ layer: 0, pos: 0, feature: 999 }] }),
      /features\[0\] \(layer 0, position 0, feature 999\) is not a node/,
    );
    assert.throws(() => verify({ excludePositions: [99] }), /excludePositions has 99, outside the prompt's 0\.\.5/);
  });

  it('refuses a prepared run of another prompt', () => {
    assert.throws(
      () => graphVerifier(model, tc, g, { prepared: prepareReplacement(model, [1, 2, 3], tc) }),
      /the prepared run's prompt is not the graph's prompt/,
    );
  });
});

describe('graphVerifier with per-layer transcoders', () => {
  it('ablating nothing changes nothing, in every setting', () => {
    const plt = randomPlt(model, 11);
    const gp = attribute(model, tokens, plt);
    const verify = graphVerifier(model, plt, gp);
    for (const mode of ['replacement', 'model'] as const) {
      const v = verify({ topFeatures: 0, mode });
      assert.equal(v.predicted, 0);
      assert.ok(Math.abs(v.actual) < 1e-4, `${mode}: ${v.actual}`);
    }
  });
});
