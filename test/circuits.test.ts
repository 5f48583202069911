/**
 * Attribution graphs (src/circuits): the replacement model reproduces the logits, every row of
 * the adjacency plus its bias is its node's value, the edges equal brute-force effects in the
 * frozen replacement model, on a tiny model (per-layer and cross-layer transcoders) and on the
 * GPT-2, LLaMA and Gemma 2 fixtures; graphs save and load.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { attribute } from '../src/circuits/attribute.js';
import { nodeLayout, nodeAt } from '../src/circuits/graph.js';
import { loadGraph, saveGraph } from '../src/circuits/graph-io.js';
import { prepareReplacement } from '../src/circuits/replacement.js';
import { intervene, verifyGraph } from '../src/circuits/interventions.js';
import type { HookedTransformer } from '../src/model/hooked.js';
import type { TracingTranscoders } from '../src/sae/clt/types.js';
import { tinyRandomModel } from './tiny-models.js';
import { FIXTURES_HF, loadFixtureModel } from './fixture-utils.js';
import { bruteForceAdjacency, randomClt, randomPlt } from './circuits-helpers.js';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Checks the three properties of a graph; returns it. */
function checkGraph(
  model: HookedTransformer,
  tokens: number[],
  tc: TracingTranscoders,
  options: { bruteForce?: boolean; maxBatch?: number } = {},
) {
  const g = attribute(model, tokens, tc, { maxBatch: options.maxBatch ?? 8 });
  const L = nodeLayout(g);
  assert.ok(L.nFeatures > 0, 'some features fire');
  assert.equal(L.nFeatures, g.activationValues.length, 'every active feature is a node by default');
  // The replacement model reproduces the logits.
  const ctx = prepareReplacement(model, tokens, tc);
  const rep = intervene(model, tokens, tc, [], {}, ctx);
  assert.ok(
    maxAbsDiff(rep.logits.dataSync() as Float32Array, model.forward([tokens]).dataSync() as Float32Array) < 1e-4,
    'replacement logits',
  );
  // Row sums plus biases are the values (feature pre-activations, demeaned pre-softcap logits).
  const n = L.n;
  let worst = 0;
  for (const t of [...Array.from({ length: L.nFeatures }, (_, i) => i), ...Array.from({ length: L.nLogits }, (_, i) => L.logitStart + i)]) {
    let s = g.biases[t]!;
    for (let c = 0; c < n; c++) s += g.adjacency[t * n + c]!;
    worst = Math.max(worst, Math.abs(s - g.values[t]!));
  }
  assert.ok(worst < 1e-4, `row sum + bias vs value: ${worst}`);
  // Feature values are pre-activations of active features: positive where ReLU fired.
  for (let i = 0; i < L.nFeatures; i++) {
    const node = nodeAt(g, i, L);
    if (node.kind === 'feature' && tc.activation === 'relu')
      assert.ok(Math.abs(g.values[i]! - node.activation) < 1e-4, 'ReLU: activation = pre-activation');
  }
  if (options.bruteForce) {
    const bf = bruteForceAdjacency(ctx, g);
    const diff = maxAbsDiff(bf, g.adjacency);
    assert.ok(diff < 1e-4, `brute-force edges differ by ${diff}`);
  }
  return g;
}

describe('attribute on a tiny model (GPT-2 style: LayerNorm, learned positions)', () => {
  const model = tinyRandomModel(3);
  const tokens = [1, 5, 7, 2, 9, 4];
  it('per-layer ReLU transcoders on ln2.hook_normalized: logits, rows, brute-force edges', () => {
    checkGraph(model, tokens, randomPlt(model, 11), { bruteForce: true });
  });
  it('skip transcoders with JumpReLU on hook_resid_mid (the skip path stays live)', () => {
    checkGraph(model, tokens, randomPlt(model, 12, { skip: true, jumprelu: true, inputKind: 'resid_mid' }), { bruteForce: true });
  });
  it('a cross-layer transcoder (decoders into later layers)', () => {
    checkGraph(model, tokens, randomClt(model, 13), { bruteForce: true });
  });
  it('the batch size does not change the graph', () => {
    const tc = randomPlt(model, 11);
    const a = attribute(model, tokens, tc, { maxBatch: 3 });
    const b = attribute(model, tokens, tc, { maxBatch: 16 });
    assert.ok(maxAbsDiff(a.adjacency, b.adjacency) < 1e-5);
  });
  it('parallel residual (GPT-NeoX style, RMSNorm, rotary)', () => {
    const m = tinyRandomModel(4, { parallelResidual: true, norm: 'rmsnorm', positional: 'rotary', rotaryDim: 4 });
    checkGraph(m, tokens, randomPlt(m, 14, { inputKind: 'resid_pre' }), { bruteForce: true });
  });
});

describe('attribute on the Hugging Face fixtures', () => {
  for (const fam of ['gpt2', 'llama', 'gemma2']) {
    it(`${fam}: logits, rows and brute-force edges`, () => {
      const model = loadFixtureModel(FIXTURES_HF, fam);
      const tokens = [3, 17, 42, 5, 17, 42, 9].map((t) => t % model.cfg.dVocab);
      checkGraph(model, tokens, randomPlt(model, 21, { width: 8 }), { bruteForce: true, maxBatch: 16 });
    });
  }
});

describe('graphs on disk', () => {
  it('save and load round-trip; a damaged file is refused naming the field', () => {
    const model = tinyRandomModel(3);
    const g = attribute(model, [1, 5, 7, 2], randomPlt(model, 11), { model: 'tiny', scan: 'random' });
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-graph-'));
    try {
      saveGraph(g, dir);
      const h = loadGraph(dir);
      assert.deepEqual(h, g);
      writeFileSync(
        join(dir, 'graph.json'),
        JSON.stringify({
          ...JSON.parse('{}'),
          format: 'glassbox-attribution-graph',
          version: 1,
          nLayers: 2,
          nPos: 5,
          nActive: 1,
          nSelected: 1,
          nLogits: 1,
          inputString: '',
          model: '',
          scan: '',
        }),
      );
      assert.throws(() => loadGraph(dir), /graph\.safetensors: 'active_features' has shape/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('feature selection by influence', () => {
  it('maxFeatureNodes keeps that many features, with the same rows as the full graph', () => {
    const model = tinyRandomModel(3);
    const tokens = [1, 5, 7, 2, 9, 4];
    const tc = randomPlt(model, 11);
    const full = attribute(model, tokens, tc, { maxBatch: 4 });
    const part = attribute(model, tokens, tc, { maxBatch: 4, maxFeatureNodes: 5, updateInterval: 1 });
    const F = nodeLayout(full);
    const P = nodeLayout(part);
    assert.equal(P.nFeatures, 5);
    assert.equal(P.n, F.n - F.nFeatures + 5);
    // Column and row maps from the partial graph's nodes to the full graph's.
    const map = (i: number): number => (i < P.nFeatures ? part.selectedFeatures[i]! : i - P.nFeatures + F.nFeatures);
    let worst = 0;
    for (let t = 0; t < P.n; t++)
      for (let s = 0; s < P.n; s++)
        worst = Math.max(worst, Math.abs(part.adjacency[t * P.n + s]! - full.adjacency[map(t) * F.n + map(s)]!));
    assert.ok(worst < 1e-5, `rows differ by ${worst}`);
  });
});

describe('interventions', () => {
  const model = tinyRandomModel(3);
  const tokens = [1, 5, 7, 2, 9, 4];
  const tc = randomPlt(model, 11);
  const g = attribute(model, tokens, tc);
  const L = nodeLayout(g);
  const lastLayer = Array.from({ length: L.nFeatures }, (_, i) => i).filter(
    (i) => nodeAt(g, i, L).kind === 'feature' && (nodeAt(g, i, L) as { layer: number }).layer === 1,
  );

  it('no intervention: the spliced-in model is the model (logits and greedy generation)', () => {
    const r = intervene(model, tokens, tc, [], { mode: 'model', maxNewTokens: 4 });
    assert.ok(maxAbsDiff(r.logits.dataSync() as Float32Array, model.forward([tokens]).dataSync() as Float32Array) < 1e-4);
    assert.deepEqual(r.generated, model.generate([tokens], { maxNewTokens: 4, temperature: 0, stopAtEos: false }).newTokens[0]);
  });

  it('zeroing a last-layer feature moves the logit node by minus its edge (replacement model)', () => {
    assert.ok(lastLayer.length > 0);
    for (const i of lastLayer.slice(0, 3)) {
      const f = nodeAt(g, i, L) as { layer: number; pos: number; feature: number };
      const res = verifyOne(f);
      const edge = g.adjacency[L.logitStart * L.n + i]!;
      assert.ok(Math.abs(res - (g.values[L.logitStart]! - edge)) < 1e-4, `${res} vs ${g.values[L.logitStart]! - edge}`);
    }
    function verifyOne(f: { layer: number; pos: number; feature: number }): number {
      const r = intervene(model, tokens, tc, [{ layer: f.layer, feature: f.feature, positions: [f.pos], op: 'zero' }]);
      // The logit node is the demeaned logit (no soft-cap here).
      const last = (r.logits.dataSync() as Float32Array).slice((tokens.length - 1) * model.cfg.dVocab);
      const mean = last.reduce((a, b) => a + b, 0) / last.length;
      return last[g.logitTokens[0]!]! - mean;
    }
  });

  it('scaling by 1 and setting a feature to its own activation change nothing', () => {
    const f = nodeAt(g, 0, L) as { layer: number; pos: number; feature: number; activation: number };
    const base = intervene(model, tokens, tc, []).logits.dataSync() as Float32Array;
    for (const iv of [
      { layer: f.layer, feature: f.feature, positions: [f.pos], op: 'scale' as const, value: 1 },
      { layer: f.layer, feature: f.feature, positions: [f.pos], op: 'set' as const, value: f.activation },
    ])
      assert.ok(maxAbsDiff(intervene(model, tokens, tc, [iv]).logits.dataSync() as Float32Array, base) < 1e-5);
  });

  it('verifyGraph: with every feature in the last layer, the graph predicts the ablation exactly', () => {
    // Layer 0's features never fire (encoder bias -100), so no feature feeds another one.
    const silent: TracingTranscoders = {
      ...tc,
      bEnc: (l) => (l === 0 ? tc.bEnc(0).sub(100) : tc.bEnc(l)),
      encode: (l, x) => (l === 0 ? x.matmul(tc.wEnc(0)).add(tc.bEnc(0).sub(100)).relu() : tc.encode(l, x)),
    };
    const g1 = attribute(model, tokens, silent);
    const v = verifyGraph(model, silent, g1, { topFeatures: 3 });
    assert.equal(v.features.length, 3);
    assert.ok(v.features.every((f) => f.layer === 1));
    assert.ok(Math.abs(v.predicted) > 1e-3, 'the ablation matters');
    assert.ok(Math.abs(v.predicted - v.actual) < 1e-4, `predicted ${v.predicted}, actual ${v.actual}`);
  });

  it('refuses a feature outside the layer, naming it', () => {
    assert.throws(
      () => intervene(model, tokens, tc, [{ layer: 0, feature: 99, op: 'zero' }]),
      /intervention 0: feature 99 is outside 0\.\.11 of layer 0/,
    );
    assert.throws(() => intervene(model, tokens, tc, [], { maxNewTokens: 2 }), /generation needs mode 'model'/);
  });
});
