/**
 * `graphToJson`: a pruned Graph as the JSON file Neuronpedia's and circuit-tracer's viewers load
 * (the type is in graph-json.ts, with the node-id conventions).
 */
import { nodeAt, nodeLayout, type Graph, type PruneResult } from './graph.js';
import type { GraphJson, GraphJsonLink, GraphJsonNode } from './graph-json.js';

export interface GraphJsonMeta {
  /** The graph's name (default 'graph'). */
  slug?: string;
  /** The transcoders' id (default the graph's `scan`). */
  scan?: string;
  /** Each prompt token's string (default the ids as text). */
  promptTokens?: readonly string[];
  /** A token id's string, for the logit labels (default the id). */
  tokenString?: (id: number) => string;
  /** A feature's label (explanation) or '' (default ''). */
  label?: (layer: number, feature: number) => string;
  nodeThreshold?: number;
  edgeThreshold?: number;
  scores?: NonNullable<GraphJson['metadata']['scores']>;
}

/**
 * The kept nodes and edges of `pruned` as the viewer's JSON: nodes that have a kept edge, plus
 * every token and logit node (as circuit-tracer writes them); a link per kept edge, weight = the
 * direct effect A[target, source].
 */
export function graphToJson(g: Graph, pruned: PruneResult, meta: GraphJsonMeta = {}): GraphJson {
  const L = nodeLayout(g);
  const n = L.n;
  if (pruned.nodeMask.length !== n || pruned.edgeMask.length !== n * n)
    throw new Error(`graphToJson: the prune result has ${pruned.nodeMask.length} nodes, the graph ${n}`);
  const tokenStr = meta.tokenString ?? ((id: number) => String(id));
  const ids: string[] = [];
  const nodes = new Map<number, GraphJsonNode>();
  for (let i = 0; i < n; i++) {
    const node = nodeAt(g, i, L);
    const base = {
      token_prob: 0,
      is_target_logit: false,
      run_idx: 0,
      reverse_ctx_idx: 0,
      clerp: '',
      influence: pruned.cumulativeScores[i]!,
      activation: null,
    };
    let j: GraphJsonNode;
    if (node.kind === 'feature') {
      const id = `${node.layer}_${node.feature}_${node.pos}`;
      j = {
        ...base,
        node_id: id,
        feature: node.feature,
        layer: String(node.layer),
        ctx_idx: node.pos,
        feature_type: 'cross layer transcoder',
        jsNodeId: `${node.layer}_${node.feature}-0`,
        clerp: meta.label?.(node.layer, node.feature) ?? '',
        activation: node.activation,
      };
    } else if (node.kind === 'error') {
      j = {
        ...base,
        node_id: `0_${node.layer}_${node.pos}`,
        feature: -1,
        layer: String(node.layer),
        ctx_idx: node.pos,
        feature_type: 'mlp reconstruction error',
        jsNodeId: `${node.layer}_${node.pos}-0`,
      };
    } else if (node.kind === 'token') {
      j = {
        ...base,
        node_id: `E_${node.token}_${node.pos}`,
        feature: node.pos,
        layer: 'E',
        ctx_idx: node.pos,
        feature_type: 'embedding',
        jsNodeId: `E_${node.token}-${node.pos}`,
      };
    } else {
      const layer = String(g.nLayers + 1);
      j = {
        ...base,
        node_id: `${layer}_${node.token}_${node.pos}`,
        feature: node.token,
        layer,
        ctx_idx: node.pos,
        feature_type: 'logit',
        token_prob: node.probability,
        is_target_logit: node.rank === 0,
        jsNodeId: `L_${node.token}-${node.pos}`,
        clerp: `Output "${tokenStr(node.token)}" (p=${node.probability.toFixed(3)})`,
      };
    }
    ids.push(j.node_id);
    if (pruned.nodeMask[i]) nodes.set(i, j);
  }
  const links: GraphJsonLink[] = [];
  const connected = new Set<number>();
  for (let t = 0; t < n; t++)
    for (let s = 0; s < n; s++) {
      if (!pruned.edgeMask[t * n + s] || !nodes.has(s) || !nodes.has(t)) continue;
      links.push({ source: ids[s]!, target: ids[t]!, weight: g.adjacency[t * n + s]! });
      connected.add(s).add(t);
    }
  const used = [...nodes].filter(([i]) => connected.has(i) || i >= L.tokenStart).map(([, j]) => j);
  return {
    metadata: {
      slug: meta.slug ?? 'graph',
      scan: meta.scan ?? g.scan,
      transcoder_list: [],
      prompt_tokens: meta.promptTokens ? [...meta.promptTokens] : g.inputTokens.map(String),
      prompt: g.inputString,
      node_threshold: meta.nodeThreshold ?? null,
      ...(meta.edgeThreshold !== undefined ? { edge_threshold: meta.edgeThreshold } : {}),
      ...(g.model ? { model: g.model } : {}),
      ...(meta.scores ? { scores: meta.scores } : {}),
      prompt_token_ids: [...g.inputTokens],
      glassbox_version: 1,
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
    nodes: used,
    links,
  };
}
