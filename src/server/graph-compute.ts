/**
 * The model worker's side of attribution graphs (worker.ts runs these): tracing a prompt into a
 * pruned graph file (a job: `attribute`, `pruneGraph`, `graphToJson` of src/circuits) and an
 * intervention on transcoder features (a request: `intervene`). The transcoders are the ones the
 * server was started with (`serve --transcoders DIR`), loaded by the worker itself.
 */
import { attribute, graphScores, graphToJson, intervene, pruneGraph, type GraphJson } from '../circuits/index.js';
import type { Tensor } from '../tensor/index.js';
import type { Computer } from './compute.js';

export interface GraphArgs {
  tokens: number[];
  /** The prompt's tokens as strings (the worker's model has no tokenizer). */
  promptTokens: string[];
  prompt: string;
  slug: string;
  nodeThreshold: number;
  edgeThreshold: number;
  maxFeatureNodes?: number;
  maxLogits?: number;
  desiredLogitProb?: number;
}

/** A graph job's steps: first `{ started }`, then `{ done }` after each phase. */
export type GraphStep = { started: { total: number } } | { done: number };

/** The phases a graph job counts: 1. the clean run (attribution's rows begin), 2. attribution done, 3. pruned. */
export const GRAPH_PHASES = 3;

/**
 * What the worker gives a job besides its arguments, for work that runs long inside one step:
 * `shouldStop()` says whether the job was cancelled meanwhile, `report(step)` sends a step at once.
 */
export interface JobControl {
  shouldStop(): boolean;
  report(step: GraphStep): void;
}

const UNCONTROLLED: JobControl = { shouldStop: () => false, report: () => {} };

function transcodersOf(c: Computer) {
  if (!c.transcoders) throw new Error('this server has no transcoders, so it cannot compute graphs or intervene');
  return c.transcoders;
}

/**
 * Traces `tokens`: attribution (the long phase: its clean run reported as phase 1, the rows as
 * phase 2), then pruning and the graph file (3). A cancellation (`control.shouldStop`) is seen
 * between attribution's batches of rows, which then throws and leaves nothing behind. The file's
 * logit labels use token ids; the HTTP thread, which has the tokenizer, relabels them.
 */
export function* graphJob(c: Computer, a: GraphArgs, control: JobControl = UNCONTROLLED): Generator<GraphStep, GraphJson, void> {
  const tc = transcodersOf(c);
  yield { started: { total: GRAPH_PHASES } };
  let rowsBegun = false;
  const g = attribute(c.model, a.tokens, tc, {
    ...(a.maxLogits !== undefined ? { maxNLogits: a.maxLogits } : {}),
    ...(a.desiredLogitProb !== undefined ? { desiredLogitProb: a.desiredLogitProb } : {}),
    ...(a.maxFeatureNodes !== undefined ? { maxFeatureNodes: a.maxFeatureNodes } : {}),
    shouldStop: () => control.shouldStop(),
    onProgress: (p) => {
      if (!rowsBegun && p.phase === 'logits') {
        rowsBegun = true;
        control.report({ done: 1 });
      }
    },
  });
  g.inputString = a.prompt;
  yield { done: 2 };
  const pruned = pruneGraph(g, { nodeThreshold: a.nodeThreshold, edgeThreshold: a.edgeThreshold });
  const full = graphScores(g);
  const kept = graphScores(g, pruned);
  return graphToJson(g, pruned, {
    slug: a.slug,
    scan: 'serve --transcoders',
    promptTokens: a.promptTokens,
    nodeThreshold: a.nodeThreshold,
    edgeThreshold: a.edgeThreshold,
    scores: {
      replacement: full.replacement,
      completeness: full.completeness,
      pruned_replacement: kept.replacement,
      pruned_completeness: kept.completeness,
    },
  });
}

export interface InterveneArgs {
  tokens: number[];
  features: { layer: number; feature: number; pos?: number[]; scale?: number; value?: number }[];
  topK: number;
}

/** Top-k next tokens at the last position: the model's own, and with the interventions (in the replacement model). */
export interface InterveneRaw {
  before: { ids: number[]; probs: number[] };
  after: { ids: number[]; probs: number[] };
}

function topAtLast(logits: Tensor, k: number): { ids: number[]; probs: number[] } {
  const [, s] = logits.shape as [number, number, number];
  const { values, indices } = logits
    .index([0, s - 1])
    .softmax(-1)
    .topk(k, -1);
  return { ids: Array.from(indices.dataSync() as BigInt64Array, Number), probs: Array.from(values.dataSync() as Float32Array) };
}

export function interveneRun(c: Computer, a: InterveneArgs): InterveneRaw {
  const tc = transcodersOf(c);
  const r = intervene(
    c.model,
    a.tokens,
    tc,
    a.features.map((f) => ({
      layer: f.layer,
      feature: f.feature,
      ...(f.pos ? { positions: f.pos } : {}),
      ...(f.value !== undefined ? { op: 'set' as const, value: f.value } : { op: 'scale' as const, value: f.scale ?? 0 }),
    })),
  );
  const k = Math.min(a.topK, c.model.cfg.dVocab);
  return { before: topAtLast(r.cleanLogits, k), after: topAtLast(r.logits, k) };
}
