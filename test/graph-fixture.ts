/**
 * A small attribution graph file written by hand, in the JSON circuit-tracer's
 * `create_graph_files` writes (and Neuronpedia's viewer reads): four tokens, embeddings, features
 * of layers 0-3 (two in one layer x position cell), an error node, two logits (one past the last
 * layer, as circuit-tracer numbers them), and positive and negative links. The server and browser
 * tests compare what they show with these numbers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A node as circuit-tracer writes it (every field it writes; some kinds leave some out). */
export interface HandNode {
  node_id: string;
  feature: number;
  layer: string;
  ctx_idx: number;
  feature_type: string;
  token_prob?: number;
  is_target_logit?: boolean;
  run_idx?: number;
  reverse_ctx_idx?: number;
  jsNodeId: string;
  clerp: string;
  influence?: number | null;
  activation?: number | null;
}

/** circuit-tracer's `feature` of a transcoder feature: a pairing of layer and index (the index is in node_id). */
const cantor = (layer: number, index: number) => ((layer + index) * (layer + index + 1)) / 2 + index;

function feature(layer: number, index: number, pos: number, activation: number, influence: number, clerp = '') {
  return {
    node_id: `${layer}_${index}_${pos}`,
    feature: cantor(layer, index),
    layer: String(layer),
    ctx_idx: pos,
    feature_type: 'cross layer transcoder',
    token_prob: 0,
    is_target_logit: false,
    run_idx: 0,
    reverse_ctx_idx: 0,
    jsNodeId: `${layer}_${index}-0`,
    clerp,
    influence,
    activation,
  };
}

function embedding(token: number, pos: number, influence: number) {
  return {
    node_id: `E_${token}_${pos}`,
    feature: pos,
    layer: 'E',
    ctx_idx: pos,
    feature_type: 'embedding',
    jsNodeId: `E_${token}-${pos}`,
    clerp: '',
    influence,
    activation: null,
  };
}

function logit(token: number, str: string, pos: number, prob: number, target: boolean) {
  return {
    node_id: `5_${token}_${pos}`,
    feature: token,
    layer: '5',
    ctx_idx: pos,
    feature_type: 'logit',
    token_prob: prob,
    is_target_logit: target,
    jsNodeId: `L_${token}-${pos}`,
    clerp: `Output "${str}" (p=${prob.toFixed(3)})`,
    influence: null,
    activation: null,
  };
}

/** The graph of a 4-layer model on "<bos> A B A", predicting " B". */
export function handGraph() {
  const nodes: HandNode[] = [
    embedding(0, 0, 0.01),
    embedding(10, 1, 0.3),
    embedding(11, 2, 0.4),
    embedding(10, 3, 0.5),
    feature(0, 5, 1, 2.5, 0.2, 'token A'),
    feature(0, 7, 3, 1.25, 0.35, 'token A again'),
    feature(1, 9, 2, 0.75, 0.3, 'token B'),
    feature(1, 2, 3, 3.0, 0.6, 'previous token was A'),
    {
      node_id: '1_-1_3',
      feature: -1,
      layer: '1',
      ctx_idx: 3,
      feature_type: 'mlp reconstruction error',
      jsNodeId: '1_-1-3',
      clerp: '',
      influence: 0.1,
    },
    feature(2, 4, 3, 1.5, 0.7, 'induction: say B'),
    feature(3, 1, 3, 4.0, 0.9, 'say B'),
    feature(3, 8, 3, 0.5, 0.15, 'say A'),
    logit(11, ' B', 3, 0.625, true),
    logit(12, ' C', 3, 0.125, false),
  ];
  const link = (source: string, target: string, weight: number) => ({ source, target, weight });
  const links = [
    link('E_10_1', '0_5_1', 1.5),
    link('E_10_3', '0_7_3', 1.25),
    link('E_11_2', '1_9_2', 0.75),
    link('0_5_1', '1_9_2', 0.5),
    link('0_5_1', '1_2_3', 2.0),
    link('0_7_3', '1_2_3', 0.5),
    link('0_7_3', '3_8_3', 0.5),
    link('1_9_2', '2_4_3', 1.0),
    link('1_2_3', '2_4_3', 1.75),
    link('1_-1_3', '2_4_3', -0.25),
    link('E_10_3', '1_-1_3', 0.125),
    link('2_4_3', '3_1_3', 2.5),
    link('2_4_3', '3_8_3', -0.75),
    link('3_1_3', '5_11_3', 3.0),
    link('3_8_3', '5_11_3', -0.5),
    link('3_8_3', '5_12_3', 0.625),
    link('E_10_3', '5_12_3', 0.25),
    link('E_0_0', '3_1_3', 0.0625),
  ];
  return {
    metadata: {
      slug: 'hand-induction',
      scan: 'test',
      transcoder_list: [],
      prompt_tokens: ['<bos>', 'A', ' B', ' A'],
      prompt: 'A B A',
      node_threshold: 0.8,
      schema_version: 1,
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
    nodes,
    links,
  };
}

export type HandGraph = ReturnType<typeof handGraph>;

/** Writes `graph` as `name` in `dir`; returns the path. */
export function writeGraph(dir: string, name: string, graph: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(graph, null, 2));
  return path;
}

/**
 * A large graph of the size the view must stay quick on: `nFeatures` features spread over 16
 * layers and `nPos` positions plus embeddings and 10 logits, and `nLinks` links from lower to
 * higher rows (a fixed pseudo-random choice, so every run draws the same graph).
 */
export function bigGraph(nFeatures = 960, nLinks = 10_000, nPos = 24) {
  // mulberry32: 32-bit integer arithmetic (Math.imul), so the sequence is exact and long.
  let seed = 12345;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const nodes: HandNode[] = [];
  for (let p = 0; p < nPos; p++) nodes.push(embedding(100 + p, p, rand()));
  for (let i = 0; i < nFeatures; i++) {
    const layer = i % 16;
    const pos = Math.floor(rand() * nPos);
    nodes.push(feature(layer, i, pos, rand() * 5, rand()));
  }
  for (let k = 0; k < 10; k++) nodes.push(logit(200 + k, `t${k}`, nPos - 1, 0.05, k === 0));
  const rank = (n: HandNode) => (n.layer === 'E' ? -1 : n.feature_type === 'logit' ? 99 : Number(n.layer));
  const links: { source: string; target: string; weight: number }[] = [];
  const seen = new Set<string>();
  for (let tries = 0; links.length < nLinks; tries++) {
    if (tries > 100 * nLinks) throw new Error(`bigGraph: could not draw ${nLinks} distinct links`);
    const a = nodes[Math.floor(rand() * nodes.length)]!;
    const b = nodes[Math.floor(rand() * nodes.length)]!;
    if (rank(a) >= rank(b) || a.ctx_idx > b.ctx_idx) continue;
    const key = `${a.node_id}>${b.node_id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    links.push({ source: a.node_id, target: b.node_id, weight: Number(((rand() - 0.4) * 2).toFixed(4)) });
  }
  return {
    metadata: {
      slug: 'big',
      scan: 'test',
      prompt_tokens: Array.from({ length: nPos }, (_, p) => `t${p}`),
      prompt: 'big',
      schema_version: 1,
    },
    nodes,
    links,
  };
}
