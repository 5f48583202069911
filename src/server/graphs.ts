/**
 * Attribution graphs the server holds for the Graph view: graph files opened at start
 * (`glassbox serve --graph FILE.json`, the JSON that circuit-tracer's `create_graph_files` and
 * `glassbox graph` write and Neuronpedia's viewer reads), and graphs computed by POST /api/graph.
 *
 * A graph file is checked in full when it is opened, so the view never meets a graph it would
 * draw wrongly: every error names the file, the field (`nodes[12].ctx_idx`) and the problem.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { HttpError } from './errors.js';
import { GRAPH_ID_PATTERN, type GraphFile, type GraphLinkJson, type GraphNodeJson, type GraphSummary } from './schemas.js';

const ID_RE = new RegExp(GRAPH_ID_PATTERN);
/** A node's layer: 'E' (embeddings) or a layer number (features, errors; the logits' is one past the last layer). */
const LAYER_RE = /^(E|\d{1,4})$/;

type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => x !== null && typeof x === 'object' && !Array.isArray(x);
const describe = (x: unknown) =>
  x === null ? 'null' : Array.isArray(x) ? 'a list' : typeof x === 'string' ? `'${x.slice(0, 40)}'` : String(x);

/**
 * Checks a parsed graph file and returns it in the server's shape (layers as strings, optional
 * numbers as given or null). `file` names the source in errors.
 *
 * Checked: `metadata` an object with `prompt` (string) and `prompt_tokens` (strings, at least
 * one); `nodes` a list of objects with a unique non-empty `node_id`, a `layer` 'E' or a layer
 * number (a string, or an integer as older files write it), a `ctx_idx` inside the prompt, a
 * `feature_type` string, `feature` an integer or null, `activation` / `influence` / `token_prob`
 * finite numbers or null, `clerp` a string; `links` a list of `{ source, target, weight }` whose
 * ends are nodes of the file and whose weight is finite.
 */
export function checkGraphFile(data: unknown, file: string): GraphFile {
  const fail = (field: string, problem: string): never => {
    throw new Error(`${file}: ${field}: ${problem}`);
  };
  if (!isObject(data)) fail('(top level)', `expected a JSON object with metadata, nodes and links, got ${describe(data)}`);
  const d = data as Json;
  const meta = d.metadata;
  if (!isObject(meta)) fail('metadata', `expected an object, got ${describe(meta)}`);
  const m = meta as Json;
  if (typeof m.prompt !== 'string') fail('metadata.prompt', `expected a string, got ${describe(m.prompt)}`);
  const toks = m.prompt_tokens;
  if (!Array.isArray(toks) || toks.length === 0)
    fail('metadata.prompt_tokens', `expected a non-empty list of token strings, got ${describe(toks)}`);
  (toks as unknown[]).forEach((t, i) => {
    if (typeof t !== 'string') fail(`metadata.prompt_tokens[${i}]`, `expected a string, got ${describe(t)}`);
  });
  const nPos = (toks as string[]).length;
  if (m.slug !== undefined && typeof m.slug !== 'string') fail('metadata.slug', `expected a string, got ${describe(m.slug)}`);

  if (!Array.isArray(d.nodes)) fail('nodes', `expected a list, got ${describe(d.nodes)}`);
  if (!Array.isArray(d.links)) fail('links', `expected a list, got ${describe(d.links)}`);
  const ids = new Set<string>();
  const optNum = (n: Json, key: string, at: string): number | null | undefined => {
    const v = n[key];
    if (v === undefined || v === null) return v as null | undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${at}.${key}`, `expected a finite number or null, got ${describe(v)}`);
    return v as number;
  };
  const nodes = (d.nodes as unknown[]).map((raw, i): GraphNodeJson => {
    const at = `nodes[${i}]`;
    if (!isObject(raw)) fail(at, `expected an object, got ${describe(raw)}`);
    const n = raw as Json;
    if (typeof n.node_id !== 'string' || n.node_id === '') fail(`${at}.node_id`, `expected a non-empty string, got ${describe(n.node_id)}`);
    const id = n.node_id as string;
    if (ids.has(id)) fail(`${at}.node_id`, `'${id}' is the id of an earlier node too`);
    ids.add(id);
    const layer = typeof n.layer === 'number' && Number.isSafeInteger(n.layer) && n.layer >= 0 ? String(n.layer) : n.layer;
    if (typeof layer !== 'string' || !LAYER_RE.test(layer)) fail(`${at}.layer`, `expected 'E' or a layer number, got ${describe(n.layer)}`);
    const pos = n.ctx_idx;
    if (typeof pos !== 'number' || !Number.isSafeInteger(pos) || pos < 0 || pos >= nPos)
      fail(`${at}.ctx_idx`, `expected a position in 0..${nPos - 1} (the prompt has ${nPos} tokens), got ${describe(pos)}`);
    if (typeof n.feature_type !== 'string') fail(`${at}.feature_type`, `expected a string, got ${describe(n.feature_type)}`);
    const feature = n.feature ?? null;
    if (feature !== null && (typeof feature !== 'number' || !Number.isSafeInteger(feature)))
      fail(`${at}.feature`, `expected an integer or null, got ${describe(feature)}`);
    if (n.clerp !== undefined && n.clerp !== null && typeof n.clerp !== 'string')
      fail(`${at}.clerp`, `expected a string, got ${describe(n.clerp)}`);
    if (n.is_target_logit !== undefined && typeof n.is_target_logit !== 'boolean')
      fail(`${at}.is_target_logit`, `expected true or false, got ${describe(n.is_target_logit)}`);
    if (n.jsNodeId !== undefined && typeof n.jsNodeId !== 'string')
      fail(`${at}.jsNodeId`, `expected a string, got ${describe(n.jsNodeId)}`);
    const out: GraphNodeJson = {
      node_id: id,
      feature: feature as number | null,
      layer: layer as string,
      ctx_idx: pos as number,
      feature_type: n.feature_type as string,
      clerp: (n.clerp as string | null | undefined) ?? '',
      influence: optNum(n, 'influence', at) ?? null,
      activation: optNum(n, 'activation', at) ?? null,
    };
    const prob = optNum(n, 'token_prob', at);
    if (typeof prob === 'number') out.token_prob = prob;
    if (n.is_target_logit !== undefined) out.is_target_logit = n.is_target_logit as boolean;
    if (n.jsNodeId !== undefined) out.jsNodeId = n.jsNodeId as string;
    return out;
  });
  const links = (d.links as unknown[]).map((raw, i): GraphLinkJson => {
    const at = `links[${i}]`;
    if (!isObject(raw)) fail(at, `expected an object, got ${describe(raw)}`);
    const l = raw as Json;
    for (const end of ['source', 'target'] as const)
      if (typeof l[end] !== 'string' || !ids.has(l[end] as string))
        fail(`${at}.${end}`, `expected the node_id of a node of this file, got ${describe(l[end])}`);
    if (typeof l.weight !== 'number' || !Number.isFinite(l.weight))
      fail(`${at}.weight`, `expected a finite number, got ${describe(l.weight)}`);
    return { source: l.source as string, target: l.target as string, weight: l.weight as number };
  });
  const metadata = { ...m, slug: (m.slug as string | undefined) ?? '', prompt: m.prompt as string, prompt_tokens: toks as string[] };
  return { metadata, ...(isObject(d.qParams) ? { qParams: d.qParams } : {}), nodes, links };
}

/** Reads and checks a graph file; errors name the file. */
export function readGraphFile(file: string): GraphFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read the graph file (${e instanceof Error ? e.message : String(e)})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return checkGraphFile(data, file);
}

/** The id a graph file is served under: its slug when that is a valid id, else its file name without `.json`. */
export function graphFileId(graph: GraphFile, file: string): string {
  const slug = graph.metadata.slug;
  if (slug && ID_RE.test(slug)) return slug;
  const name = basename(file).replace(/\.json$/i, '');
  if (ID_RE.test(name)) return name;
  throw new Error(
    `${file}: metadata.slug ${slug ? `'${slug}'` : '(absent)'} and the file name are not usable as a graph id (letters, digits, '.', '_', '-'; at most 128)`,
  );
}

export function summarize(id: string, graph: GraphFile, source: GraphSummary['source']): GraphSummary {
  return {
    id,
    prompt: graph.metadata.prompt,
    promptTokens: graph.metadata.prompt_tokens,
    nodes: graph.nodes.length,
    links: graph.links.length,
    source,
  };
}

/**
 * The graphs of one server: the files it was started with (kept for its life), and the graphs
 * computed since (the latest `maxComputed`, oldest dropped first).
 */
export class GraphStore {
  private readonly files = new Map<string, GraphFile>();
  private readonly computed = new Map<string, GraphFile>();

  constructor(
    files: readonly string[] = [],
    private readonly maxComputed = 16,
  ) {
    const from = new Map<string, string>();
    for (const file of files) {
      const graph = readGraphFile(file);
      const id = graphFileId(graph, file);
      const other = from.get(id);
      if (other !== undefined)
        throw new Error(`${file}: its graph id '${id}' is that of ${other} too; give one of them another slug or file name`);
      from.set(id, file);
      this.files.set(id, graph);
    }
  }

  /** Adds a computed graph under `id`. */
  addComputed(id: string, graph: GraphFile): void {
    if (this.files.has(id)) throw new Error(`internal: the graph id '${id}' is a file's`);
    this.computed.set(id, graph);
    while (this.computed.size > this.maxComputed) this.computed.delete(this.computed.keys().next().value!);
  }

  list(): GraphSummary[] {
    return [
      ...[...this.files].map(([id, g]) => summarize(id, g, 'file')),
      ...[...this.computed].map(([id, g]) => summarize(id, g, 'computed')),
    ];
  }

  /** The graph `id`; a 404 naming the graphs there are. */
  get(id: string): GraphFile {
    const g = this.files.get(id) ?? this.computed.get(id);
    if (g) return g;
    const known = [...this.files.keys(), ...this.computed.keys()];
    throw new HttpError(
      404,
      `no graph '${id}'; this server has ${known.length ? known.map((k) => `'${k}'`).join(', ') : 'none (open one with serve --graph FILE.json)'}`,
    );
  }
}
