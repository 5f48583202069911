/**
 * EAP-IG: the per-node input gradients split the residual stream's gradient exactly (so the
 * norm's Jacobian and the per-head weights are mapped back right, for every block layout); edge
 * scores into the logits equal path patching where the model is linear; and on the hand-built
 * induction circuit the top edges are the circuit's (prev-token head -> induction head keys ->
 * logits), which plain EAP misses because the induction head's attention is saturated.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookedTransformer, type ModelConfig, type Tensor } from '../src/index.js';
import {
  eapCircuit,
  eapGraph,
  eapNodeGradients,
  edgeAttributionPatching,
  inductionCircuitModel,
  logitDiffTensorMetric,
  pathPatching,
  type PatchingProblem,
} from '../src/analysis/index.js';
import { numbers } from './helpers.js';
import { TINY_PATCHING_PROBLEM, randomWeights, tinyConfig } from './tiny-models.js';

function randomModel(over: Partial<ModelConfig>, seed: number, scale = 0.2): HookedTransformer {
  const cfg: ModelConfig = tinyConfig({ dVocab: 13, nCtx: 8, unembedBias: false, ...over });
  const params = randomWeights(cfg, seed, scale);
  return new HookedTransformer(cfg, params);
}

const PR = TINY_PATCHING_PROBLEM;

function assertAllClose(got: Tensor, want: Tensor, tol: number, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const g = numbers(got);
  const w = numbers(want);
  const scale = Math.max(...w.map(Math.abs));
  g.forEach((v, i) => assert.ok(Math.abs(v - w[i]!) <= tol * scale, `${what}[${i}]: ${v} vs ${w[i]} (scale ${scale})`));
}

const LAYOUTS: Record<string, Partial<ModelConfig>> = {
  'LayerNorm, sequential blocks': {},
  'RMSNorm, rotary, parallel residual, grouped-query, gated SiLU MLP, Gemma norm offset': {
    norm: 'rmsnorm',
    positional: 'rotary',
    rotaryDim: 4,
    parallelResidual: true,
    nKVHeads: 2,
    gatedMlp: true,
    act: 'silu',
    normWeightOffset: 1,
  },
  'attention-only, no norm': { attnOnly: true, norm: 'none' },
};

describe('EAP graph and node gradients', () => {
  it('lists the nodes and the edges that respect the order of the residual stream', () => {
    const g = eapGraph(randomModel({}, 1));
    assert.deepEqual(g.upstream, ['input', 'L0H0', 'L0H1', 'L0H2', 'L0H3', 'MLP0', 'L1H0', 'L1H1', 'L1H2', 'L1H3', 'MLP1']);
    assert.equal(g.downstream.length, 2 * (4 * 3 + 1) + 1);
    assert.deepEqual(g.downstream.slice(0, 5), ['L0H0.q', 'L0H1.q', 'L0H2.q', 'L0H3.q', 'L0H0.k']);
    const edge = (u: string, d: string) => g.edgeMask[g.upstream.indexOf(u)]![g.downstream.indexOf(d)]!;
    assert.ok(edge('input', 'L0H0.q') && edge('L0H1', 'MLP0') && edge('MLP0', 'L1H2.v') && edge('L1H3', 'logits'));
    assert.ok(!edge('L0H1', 'L0H2.k') && !edge('MLP0', 'MLP0') && !edge('L1H0', 'L0H0.q') && !edge('MLP1', 'L1H0.q'));
    const par = eapGraph(randomModel(LAYOUTS['RMSNorm, rotary, parallel residual, grouped-query, gated SiLU MLP, Gemma norm offset']!, 1));
    assert.ok(par.downstream.includes('L0KV1.k') && par.downstream.includes('L1KV0.v'));
    assert.equal(
      par.edgeMask[par.upstream.indexOf('L0H0')]![par.downstream.indexOf('MLP0')],
      false,
      'parallel: the MLP reads the block input',
    );
  });

  for (const [name, over] of Object.entries(LAYOUTS))
    it(`${name}: the node gradients split the residual stream's gradient exactly`, () => {
      const model = randomModel(over, 2);
      const { cfg } = model;
      const L = cfg.nLayers;
      const metric = logitDiffTensorMetric(PR.answer, PR.wrong);
      const G = eapNodeGradients(model, PR.clean, metric); // [n_down, batch, pos, d_model]
      const graph = eapGraph(model);
      assert.deepEqual(G.shape, [graph.downstream.length, 2, 6, 16]);
      const sumOf = (names: string[]) => names.map((n) => G.index([graph.downstream.indexOf(n)])).reduce((a, b) => a.add(b));
      const { targets } = model.gradientsAt(PR.clean as number[][], /hook_resid_(pre|mid|post)$/, metric);
      const grad = (n: string) => targets[n]!.grad;
      for (let l = 0; l < L; l++) {
        const attnIn = graph.downstream.filter((n) => n.startsWith(`L${l}`));
        if (cfg.attnOnly) {
          assertAllClose(sumOf(attnIn).add(grad(`blocks.${l}.hook_resid_post`)), grad(`blocks.${l}.hook_resid_pre`), 1e-4, `layer ${l}`);
        } else if (cfg.parallelResidual) {
          assertAllClose(
            sumOf([...attnIn, `MLP${l}`]).add(grad(`blocks.${l}.hook_resid_post`)),
            grad(`blocks.${l}.hook_resid_pre`),
            1e-4,
            `layer ${l}`,
          );
        } else {
          assertAllClose(sumOf(attnIn).add(grad(`blocks.${l}.hook_resid_mid`)), grad(`blocks.${l}.hook_resid_pre`), 1e-4, `attn ${l}`);
          assertAllClose(sumOf([`MLP${l}`]).add(grad(`blocks.${l}.hook_resid_post`)), grad(`blocks.${l}.hook_resid_mid`), 1e-4, `mlp ${l}`);
        }
      }
      assertAllClose(sumOf(['logits']), grad(`blocks.${L - 1}.hook_resid_post`), 1e-6, 'logits');
      if (cfg.norm !== 'none') {
        // With the norm scale frozen the split is only approximate.
        const frozen = eapNodeGradients(model, PR.clean, metric, { frozenNorm: true });
        assert.ok(frozen.sub(G).abs().max().item() > 1e-4);
      }
    });
});

describe('edge attribution patching', () => {
  it('edges into the logits equal path patching to the logits where the model is linear (no norms, no MLPs)', () => {
    const model = randomModel({ attnOnly: true, norm: 'none' }, 3);
    for (const method of ['EAP-IG', 'EAP'] as const) {
      const r = edgeAttributionPatching(model, PR, { method, steps: 3 });
      const heads = r.upstream.filter((u) => u !== 'input');
      const pp = pathPatching(
        model,
        PR,
        heads.map((u) => ({ layer: Number(u[1]), head: Number(u[3]) })),
        'logits',
        { direction: 'denoising' },
      );
      const col = r.downstream.indexOf('logits');
      const s = numbers(r.scores);
      heads.forEach((u, i) => {
        const got = s[r.upstream.indexOf(u) * r.downstream.length + col]!;
        assert.ok(Math.abs(got - pp[i]!) < 1e-4, `${method} ${u} -> logits: ${got} vs path patching ${pp[i]}`);
      });
    }
  });

  it('finds the induction circuit: prev-token head -> induction head keys -> logits', () => {
    const model = inductionCircuitModel();
    // Corrupting the earlier "1" removes the match the induction head looks for.
    const pr: PatchingProblem = { clean: [0, 1, 2, 3, 4, 5, 1], corrupted: [0, 7, 2, 3, 4, 5, 1], answer: 2, wrong: 3 };
    const r = edgeAttributionPatching(model, pr);
    assert.deepEqual(r.scores.shape, [r.upstream.length, r.downstream.length]);
    const top = r.edges.slice(0, 3).map((e) => `${e.from}->${e.to}`);
    assert.deepEqual(new Set(top), new Set(['input->L0H0.v', 'L0H0->L1H0.k', 'L1H0->logits']));
    for (const e of r.edges.slice(0, 3)) assert.ok(e.score > 0.3, `${e.from}->${e.to}: ${e.score}`);
    for (const e of r.edges.slice(3)) assert.ok(Math.abs(e.score) < 0.05, `${e.from}->${e.to}: ${e.score}`);
    const circuit = eapCircuit(r, 4);
    assert.deepEqual(circuit.nodes, ['input', 'L0H0', 'L1H0', 'logits']);
    // L0H0 -> L1H0.v (4th) survives pruning: L0H0 is fed, L1H0 feeds the logits.
    assert.equal(circuit.edges.length, 4);
    // The top two edges (input -> L0H0.v, L0H0 -> L1H0.k) do not reach the logits on their own.
    assert.equal(eapCircuit(r, 2).edges.length, 0);
    assert.equal(eapCircuit(r, 2, { prune: false }).edges.length, 2);
    // Plain EAP (one gradient at the clean run) misses the key edge: the induction head's
    // attention is saturated there, so its gradient through the keys is ~0.
    const eap = edgeAttributionPatching(model, pr, { method: 'EAP' });
    const kEdge = eap.edges.find((e) => e.from === 'L0H0' && e.to === 'L1H0.k')!;
    assert.ok(Math.abs(kEdge.score) < 1e-3, `EAP: ${kEdge.score}`);
    // Chunked interpolation points give the same scores.
    const chunked = edgeAttributionPatching(model, pr, { maxBatch: 2 });
    assertAllClose(chunked.scores, r.scores, 1e-4, 'chunked');
  });

  it('checks its inputs', () => {
    const model = inductionCircuitModel();
    const pr: PatchingProblem = { clean: [0, 1, 2, 3, 4, 5, 1], corrupted: [0, 7, 2, 3, 4, 5, 1], answer: 2, wrong: 3 };
    assert.throws(() => edgeAttributionPatching(model, { ...pr, corrupted: [0, 7, 2] }), /same shape/);
    assert.throws(() => edgeAttributionPatching(model, { ...pr, corrupted: pr.clean }), /nothing to recover/);
    assert.throws(() => eapCircuit(edgeAttributionPatching(model, pr), -1), /non-negative/);
  });
});
