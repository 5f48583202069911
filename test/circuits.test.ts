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
import { intervene } from '../src/circuits/interventions.js';
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
