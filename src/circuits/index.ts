/**
 * Circuit tracing: attribution graphs over transcoder features (Ameisen et al. 2025,
 * circuit-tracer): the local replacement model, `attribute`, the Graph and its pruning and
 * scores, the viewer's graph JSON, and interventions on features.
 */
export { attribute, AttributionCancelledError, type AttributeOptions, type AttributeProgress } from './attribute.js';
export {
  nodeLayout,
  nodeAt,
  featureNodeIndex,
  normalizeAdjacency,
  computeInfluence,
  pruneGraph,
  graphScores,
  type Graph,
  type GraphNode,
  type NodeLayout,
  type PruneOptions,
  type PruneResult,
  type GraphScores,
} from './graph.js';
export { saveGraph, loadGraph, GRAPH_FILE_VERSION } from './graph-io.js';
export { prepareReplacement, checkTracingPair, type ReplacementContext, type FreezeSelection } from './replacement.js';
export {
  intervene,
  verifyGraph,
  graphVerifier,
  type GraphVerifierOptions,
  type InterventionFreeze,
  type FeatureIntervention,
  type InterveneOptions,
  type InterveneResult,
  type VerifyOptions,
  type VerifyResult,
} from './interventions.js';
export { graphToJson, type GraphJsonMeta } from './graph-json-export.js';
export { loadTracingTranscoders } from './load-transcoders.js';
export type * from './graph-json.js';
