/**
 * Pure functions over attribution graphs (src/circuits/graph.ts, graph-json-export.ts) on a
 * hand-built graph whose influence, pruning and scores are worked out by hand in the comments.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { graphScores, nodeLayout, pruneGraph, type Graph } from '../src/circuits/graph.js';
import { graphToJson } from '../src/circuits/graph-json-export.js';

/**
 * One layer, one position: nodes [F0, F1, E, T, Lg] (two features, the error, the token, one
 * logit of probability 0.9). Edges: Lg <- F0 3, Lg <- F1 -1; F0 <- T 2, F0 <- E 2; F1 <- T 1.
 */
function handGraph(): Graph {
  const n = 5;
  const a = new Float32Array(n * n);
  const set = (t: number, s: number, w: number) => (a[t * n + s] = w);
  set(4, 0, 3);
  set(4, 1, -1);
  set(0, 3, 2);
  set(0, 2, 2);
  set(1, 3, 1);
  return {
    inputTokens: [7],
    inputString: 'x',
    nLayers: 1,
    activeFeatures: Int32Array.from([0, 0, 3, 0, 0, 5]),
    activationValues: Float32Array.from([1.5, 0.5]),
    selectedFeatures: Int32Array.from([0, 1]),
    logitTokens: [11],
    logitProbabilities: Float32Array.from([0.9]),
    adjacency: a,
    biases: new Float32Array(n),
    values: new Float32Array(n),
    model: 'hand',
    scan: 'hand',
  };
}

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

describe('influence, pruning and scores on a hand-built graph', () => {
  it('node influence, cumulative scores and the node / edge masks', () => {
    const g = handGraph();
    // Normalised rows: Lg: F0 0.75, F1 0.25; F0: T 0.5, E 0.5; F1: T 1. With w = 0.9 on Lg:
    // w A = F0 0.675, F1 0.225; w A^2 = T 0.3375 + 0.225 = 0.5625, E 0.3375.
    const r = pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 });
    [0.675, 0.225, 0.3375, 0.5625, 0].forEach((v, i) => close(r.influence[i]!, v));
    // Sorted F0, T, E, F1, Lg of total 1.8: cumulative 0.375, 0.6875, 0.875, 1, 1.
    [0.375, 1, 0.875, 0.6875, 1].forEach((v, i) => close(r.cumulativeScores[i]!, v));
    // 0.8 of the influence is reached at E: F1 is dropped; tokens and logits always stay.
    assert.deepEqual(Array.from(r.nodeMask), [1, 0, 1, 1, 1]);
    // Edges of the pruned graph: Lg <- F0 (score 0.9), F0 <- T and F0 <- E (0.45 each): all kept.
    const kept = [...r.edgeMask.keys()].filter((k) => r.edgeMask[k]).map((k) => [Math.floor(k / 5), k % 5]);
    assert.deepEqual(kept, [
      [0, 2],
      [0, 3],
      [4, 0],
    ]);
    // A tight edge threshold keeps only Lg <- F0 (0.9 of 1.8 is 0.5): then E has no outgoing
    // edge and is dropped, and F0 has no incoming edge and is dropped too, and with it its edge.
    const tight = pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.5 });
    assert.deepEqual(Array.from(tight.nodeMask), [0, 0, 0, 1, 1]);
    assert.equal(
      tight.edgeMask.reduce((s, v) => s + v, 0),
      0,
    );
  });

  it('replacement and completeness scores', () => {
    const g = handGraph();
    const s = graphScores(g);
    // replacement = T / (T + E) = 0.5625 / 0.9 = 0.625.
    close(s.replacement, 0.625);
    // completeness: rows' non-error shares (Lg 1, F0 0.5, others 1) weighted by influence + logit
    // weight (Lg 0.9, F0 0.675, F1 0.225, E 0.3375, T 0.5625): 2.3625 / 2.7 = 0.875.
    close(s.completeness, 0.875);
  });

  it('refuses thresholds outside [0, 1]', () => {
    assert.throws(() => pruneGraph(handGraph(), { nodeThreshold: 1.5 }), /nodeThreshold must be in \[0, 1\], got 1.5/);
  });
});

describe('graph JSON', () => {
  it('nodes and links with the viewers ids', () => {
    const g = handGraph();
    const r = pruneGraph(g);
    const j = graphToJson(g, r, { slug: 's', promptTokens: ['x'], tokenString: () => 'y', nodeThreshold: 0.8 });
    assert.equal(nodeLayout(g).n, 5);
    assert.deepEqual(
      j.nodes.map((n) => [n.node_id, n.feature_type, n.layer, n.ctx_idx, n.feature]),
      [
        ['0_3_0', 'cross layer transcoder', '0', 0, 3],
        ['0_0_0', 'mlp reconstruction error', '0', 0, -1],
        ['E_7_0', 'embedding', 'E', 0, 0],
        ['2_11_0', 'logit', '2', 0, 11],
      ],
    );
    assert.equal(j.nodes[0]!.activation, 1.5);
    assert.equal(j.nodes[3]!.clerp, 'Output "y" (p=0.900)');
    assert.equal(j.nodes[3]!.is_target_logit, true);
    close(j.nodes[0]!.influence!, 0.375);
    assert.deepEqual(
      j.links.map((l) => [l.source, l.target, l.weight]),
      [
        ['0_0_0', '0_3_0', 2],
        ['E_7_0', '0_3_0', 2],
        ['0_3_0', '2_11_0', 3],
      ],
    );
    assert.deepEqual(j.metadata.prompt_tokens, ['x']);
    assert.equal(j.metadata.node_threshold, 0.8);
  });
});
