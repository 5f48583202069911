/**
 * The attribution-graph file that Neuronpedia's and circuit-tracer's graph viewers load (one
 * JSON object per graph: circuit-tracer's `create_graph_files` writes the same fields). glassbox
 * writes it with `graphToJson` (src/circuits/graph-json-export.ts) and the workbench's Graph view
 * reads it; this file holds only the type, so the browser build imports it type-only.
 *
 * Node ids follow the viewers' conventions, which encode the node kind in the id:
 *   - feature:          `${layer}_${feature}_${ctx_idx}`
 *   - MLP error:        `0_${layer}_${ctx_idx}`
 *   - token embedding:  `E_${tokenId}_${ctx_idx}`
 *   - logit:            `${nLayers + 1}_${tokenId}_${ctx_idx}`
 * and `layer` is a string: the layer index, 'E' for embeddings, String(nLayers + 1) for logits.
 */

/** What a node stands for (the viewers colour and place nodes by this string). */
export type GraphNodeType = 'cross layer transcoder' | 'mlp reconstruction error' | 'embedding' | 'logit';

export interface GraphJsonMetadata {
  /** The graph's name (file stem; unique within a collection of graphs). */
  slug: string;
  /** Identifies the transcoders used (a Neuronpedia source set, or a local path / hash). */
  scan: string;
  /** The transcoder ids when `scan` names a custom set, else []. */
  transcoder_list: string[];
  /** Each prompt token's string, [n_pos]. */
  prompt_tokens: string[];
  /** The prompt's text. */
  prompt: string;
  /** The node threshold the graph was pruned with (cumulative influence fraction). */
  node_threshold?: number | null;
  // glassbox's additions (optional; the viewers ignore unknown fields).
  /** The edge threshold the graph was pruned with. */
  edge_threshold?: number;
  /** The model traced (a path, hub id or 'default'). */
  model?: string;
  /** Replacement and completeness scores of the unpruned and pruned graphs (see `graphScores`). */
  scores?: { replacement: number; completeness: number; pruned_replacement?: number; pruned_completeness?: number };
  /** Prompt token ids, [n_pos]. */
  prompt_token_ids?: number[];
  /** The graph file's format version (glassbox's; starts at 1). */
  glassbox_version?: number;
}

/** The viewer's initial state (pinned nodes, supernodes, link filter, clicked node, subgraph positions). */
export interface GraphJsonQParams {
  pinnedIds: string[];
  /** Each supernode: [label, ...node_ids]. */
  supernodes: string[][];
  /** 'both' | 'input' | 'output'. */
  linkType: string;
  clickedId: string;
  sg_pos: string;
}

export interface GraphJsonNode {
  /** Unique id, see the conventions above. */
  node_id: string;
  /** Feature index (features), -1 (errors), position (embeddings), token id (logits). */
  feature: number;
  /** Layer index as a string; 'E' for embeddings; String(nLayers + 1) for logits. */
  layer: string;
  /** Token position, 0-based. */
  ctx_idx: number;
  feature_type: GraphNodeType;
  /** Logits: the token's probability at the last position; 0 otherwise. */
  token_prob: number;
  /** Logits: true for the most likely token (the graph's target). */
  is_target_logit: boolean;
  run_idx: number;
  reverse_ctx_idx: number;
  /** The id the viewer's JavaScript keys nodes by. */
  jsNodeId: string;
  /** A human label (feature explanation, 'Output "x" (p=0.123)' for logits, '' when none). */
  clerp: string;
  /**
   * Cumulative influence rank in [0, 1]: the share of total influence held by the nodes at least
   * as influential as this one (circuit-tracer's `cumulative_scores`); null when not computed.
   */
  influence: number | null;
  /** Features: the activation on this token; null for other nodes. */
  activation: number | null;
}

export interface GraphJsonLink {
  /** node_id of the source (upstream) node. */
  source: string;
  /** node_id of the target (downstream) node. */
  target: string;
  /** Direct effect of the source on the target's pre-activation (signed). */
  weight: number;
}

/** The whole graph file. */
export interface GraphJson {
  metadata: GraphJsonMetadata;
  qParams: GraphJsonQParams;
  nodes: GraphJsonNode[];
  links: GraphJsonLink[];
}
