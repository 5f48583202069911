/**
 * The Graph view's model of an attribution graph file (circuit-tracer / Neuronpedia JSON): node
 * kinds, each node's incoming and outgoing links, the layer x position layout, and the pinned
 * subgraph with its supernodes. No React here: the view and the tests share it.
 */
import type { GraphFile, GraphLinkJson, GraphNodeJson } from '../../../src/server/schemas';

export type { GraphFile, GraphLinkJson, GraphNodeJson };

export type NodeKind = 'embedding' | 'feature' | 'error' | 'logit';

export function nodeKind(n: GraphNodeJson): NodeKind {
  if (n.layer === 'E' || n.feature_type === 'embedding') return 'embedding';
  if (n.feature_type === 'logit') return 'logit';
  if (n.feature_type.includes('error')) return 'error';
  return 'feature';
}

/**
 * A feature node's index inside its layer's transcoder: the middle part of its `node_id`
 * (`{layer}_{index}_{pos}`), since circuit-tracer writes a pairing of layer and index into
 * `feature`. Null for other nodes, or an id of another shape.
 */
export function featureIndex(n: GraphNodeJson): number | null {
  if (nodeKind(n) !== 'feature') return null;
  const m = /^\d+_(\d+)_\d+$/.exec(n.node_id);
  return m ? Number(m[1]) : null;
}

/** A graph indexed for drawing: nodes by id, and each node's links in and out (indices into `links`). */
export interface IndexedGraph {
  file: GraphFile;
  nodes: GraphNodeJson[];
  links: GraphLinkJson[];
  byId: Map<string, number>;
  incoming: number[][];
  outgoing: number[][];
  /** Largest |weight| of any link (1 when there are none). */
  maxAbsWeight: number;
}

export function indexGraph(file: GraphFile): IndexedGraph {
  const byId = new Map(file.nodes.map((n, i) => [n.node_id, i]));
  const incoming: number[][] = file.nodes.map(() => []);
  const outgoing: number[][] = file.nodes.map(() => []);
  let maxAbsWeight = 0;
  file.links.forEach((l, i) => {
    // The server checked that both ends are nodes of the file.
    outgoing[byId.get(l.source)!]!.push(i);
    incoming[byId.get(l.target)!]!.push(i);
    maxAbsWeight = Math.max(maxAbsWeight, Math.abs(l.weight));
  });
  const byMagnitude = (a: number, b: number) => Math.abs(file.links[b]!.weight) - Math.abs(file.links[a]!.weight);
  for (const list of [...incoming, ...outgoing]) list.sort(byMagnitude);
  return { file, nodes: file.nodes, links: file.links, byId, incoming, outgoing, maxAbsWeight: maxAbsWeight || 1 };
}

/** The layout's constants, in pixels. */
export const LAYOUT = {
  rowHeight: 64,
  marginLeft: 56,
  marginTop: 24,
  /** Room under the bottom row for the token labels. */
  marginBottom: 56,
  minColumnWidth: 64,
  maxColumnWidth: 420,
  nodeSpacing: 16,
};

export interface Layout {
  width: number;
  height: number;
  /** [node]: centre. */
  x: Float64Array;
  y: Float64Array;
  /** Rows bottom to top: 'E', the layers present in increasing order, 'logits'. */
  rows: { key: string; label: string; y: number }[];
  /** [pos]: the column's left edge, width and centre. */
  columns: { left: number; width: number; center: number }[];
}

/** A node's row key: 'E' for embeddings, 'logits' for logits, else its layer. */
function rowKey(n: GraphNodeJson): string {
  const kind = nodeKind(n);
  return kind === 'embedding' ? 'E' : kind === 'logit' ? 'logits' : n.layer;
}

/**
 * Places every node: rows by layer (embeddings at the bottom, then layers 0, 1, ..., logits at
 * the top), columns by token position, left to right.
 *
 * 1. Rows: the distinct layers present, sorted; each row `rowHeight` high.
 * 2. Columns: each position as wide as its fullest cell (layer x position) needs at `nodeSpacing`
 *    a node, within [minColumnWidth, maxColumnWidth]; a fuller cell packs its nodes closer.
 * 3. Inside a cell, nodes sit left to right by decreasing |influence| (then by id, so the
 *    layout is the same on every load).
 */
export function layoutGraph(g: IndexedGraph, nPos: number): Layout {
  const { rowHeight, marginLeft, marginTop, marginBottom, minColumnWidth, maxColumnWidth, nodeSpacing } = LAYOUT;
  const layerNums = [...new Set(g.nodes.map(rowKey).filter((k) => k !== 'E' && k !== 'logits'))].map(Number).sort((a, b) => a - b);
  const rowKeys = ['E', ...layerNums.map(String), 'logits'];
  const rowIndex = new Map(rowKeys.map((k, i) => [k, i]));
  const height = marginTop + rowKeys.length * rowHeight + marginBottom;
  const rowY = (r: number) => marginTop + (rowKeys.length - 1 - r) * rowHeight + rowHeight / 2;

  // Cells: [row][pos] -> node indices.
  const cells = rowKeys.map(() => Array.from({ length: nPos }, () => [] as number[]));
  g.nodes.forEach((n, i) => cells[rowIndex.get(rowKey(n))!]![n.ctx_idx]!.push(i));
  const influence = (i: number) => Math.abs(g.nodes[i]!.influence ?? 0);
  for (const row of cells)
    for (const cell of row) cell.sort((a, b) => influence(b) - influence(a) || (g.nodes[a]!.node_id < g.nodes[b]!.node_id ? -1 : 1));

  const columns: Layout['columns'] = [];
  let left = marginLeft;
  for (let p = 0; p < nPos; p++) {
    const most = Math.max(0, ...cells.map((row) => row[p]!.length));
    const width = Math.min(maxColumnWidth, Math.max(minColumnWidth, (most + 1) * nodeSpacing));
    columns.push({ left, width, center: left + width / 2 });
    left += width;
  }
  const x = new Float64Array(g.nodes.length);
  const y = new Float64Array(g.nodes.length);
  cells.forEach((row, r) =>
    row.forEach((cell, p) => {
      const col = columns[p]!;
      const step = Math.min(nodeSpacing, (col.width - nodeSpacing) / Math.max(1, cell.length - 1));
      const start = col.center - (step * (cell.length - 1)) / 2;
      cell.forEach((i, k) => {
        x[i] = start + k * step;
        y[i] = rowY(r);
      });
    }),
  );
  const rows = rowKeys.map((key, r) => ({ key, label: key === 'E' ? 'Emb' : key === 'logits' ? 'Logit' : `L${key}`, y: rowY(r) }));
  return { width: left + 16, height, x, y, rows, columns };
}

// ---------------------------------------------------------------------------------------------
// Pins and supernodes, as Neuronpedia's URL holds them: `pinnedIds=a,b,c` and
// `supernodes=[["label","a","b"],...]`.

export interface Supernode {
  label: string;
  members: string[];
}

export function parsePinned(s: string | null): string[] {
  if (!s) return [];
  return [...new Set(s.split(',').filter((x) => x !== ''))];
}

/** The supernodes of a URL (malformed entries are dropped: a link is never an error). */
export function parseSupernodes(s: string | null): Supernode[] {
  if (!s) return [];
  let data: unknown;
  try {
    data = JSON.parse(s);
  } catch {
    return [];
  }
  if (!Array.isArray(data)) return [];
  return data
    .filter((g): g is string[] => Array.isArray(g) && g.length >= 2 && g.every((x) => typeof x === 'string'))
    .map(([label, ...members]) => ({ label: label!, members }));
}

export function serializeSupernodes(groups: readonly Supernode[]): string | undefined {
  return groups.length ? JSON.stringify(groups.map((g) => [g.label, ...g.members])) : undefined;
}

/** A node of the pinned subgraph: one pinned node, or a supernode of several. */
export interface SubNode {
  id: string;
  label: string;
  members: string[];
  supernode: boolean;
}

export interface SubLink {
  source: string;
  target: string;
  /** The sum of the weights of the graph's links from the source's members to the target's. */
  weight: number;
}

/**
 * The pinned subgraph: each pinned node not in a supernode, each supernode (of the pinned nodes
 * of the graph it names), and between them the summed weights of the graph's links. Pins of ids
 * the graph lacks are ignored.
 */
export function subgraph(g: IndexedGraph, pinned: readonly string[], groups: readonly Supernode[]): { nodes: SubNode[]; links: SubLink[] } {
  const pinnedSet = new Set(pinned.filter((id) => g.byId.has(id)));
  const owner = new Map<string, string>();
  const nodes: SubNode[] = [];
  groups.forEach((grp, k) => {
    const members = grp.members.filter((m) => pinnedSet.has(m) && !owner.has(m));
    if (members.length === 0) return;
    const id = `supernode:${k}`;
    for (const m of members) owner.set(m, id);
    nodes.push({ id, label: grp.label, members, supernode: true });
  });
  for (const id of pinnedSet)
    if (!owner.has(id)) {
      owner.set(id, id);
      const n = g.nodes[g.byId.get(id)!]!;
      nodes.push({ id, label: n.clerp || id, members: [id], supernode: false });
    }
  const sums = new Map<string, SubLink>();
  for (const l of g.links) {
    const s = owner.get(l.source);
    const t = owner.get(l.target);
    if (s === undefined || t === undefined || s === t) continue;
    const key = `${s}\u0000${t}`;
    const link = sums.get(key) ?? { source: s, target: t, weight: 0 };
    link.weight += l.weight;
    sums.set(key, link);
  }
  return { nodes, links: [...sums.values()].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)) };
}
