/**
 * The HTTP API's contract, the one definition the server and the workbench (web/src/api.ts) share:
 *
 * - the JSON schemas of the request bodies, checked by Fastify (Ajv) before a handler runs: types,
 *   ranges and no unknown fields. The body types are derived from these schemas
 *   (json-schema-to-ts's `FromSchema`), so what is validated and what is typed cannot drift.
 *   Checks that need the model (a layer below nLayers, token ids inside the vocabulary, a prompt
 *   within the token limit) are made in the handlers, which name the valid range.
 * - the response types, which the handlers (handlers.ts, patching.ts, jobs.ts) are declared to
 *   return.
 *
 * This module has no runtime imports (only `import type`), so the web app can import its types
 * without pulling anything from Node into its bundle.
 */
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import type { GraphJsonLink, GraphJsonMetadata, GraphJsonNode } from '../circuits/graph-json.js';
import type { ModelConfig } from '../model/config.js';

/** The limits the schemas and handlers enforce. */
export interface ServerLimits {
  /** Longest prompt, in tokens. */
  maxTokens: number;
  /** Longest text prompt, in characters (checked before tokenizing). */
  maxChars: number;
  /** Largest top-k. */
  maxTopK: number;
  /** Most tokens one steering request may generate. */
  maxNewTokens: number;
  /** Most positive (and negative) prompts of one steering request. */
  maxSteerPrompts: number;
  /** Most rows of the repeated random tokens of the head detector. */
  maxHeadBatch: number;
  /** Most patching jobs running at once. */
  maxJobs: number;
  /** Most requests waiting for the model at once. */
  maxQueued: number;
}

const int = (minimum?: number, maximum?: number) =>
  ({
    type: 'integer',
    ...(minimum !== undefined ? { minimum } : {}),
    ...(maximum !== undefined ? { maximum } : {}),
  }) as const;

/** An object schema with no other fields than `properties`. */
const object = <const R extends readonly string[], const P extends Record<string, JSONSchema>>(required: R, properties: P) =>
  ({ type: 'object', additionalProperties: false, required, properties }) as const;

export function bodySchemas(limits: ServerLimits) {
  /** A prompt: text (tokenized, BOS prepended unless `prependBos` is false) or token ids. */
  const prompt = {
    type: ['string', 'array'],
    maxLength: limits.maxChars,
    minItems: 1,
    items: int(0),
  } as const;
  /** A token: a text that is exactly one token (no BOS), or its id. */
  const tokenRef = { type: ['string', 'integer'], minLength: 1, maxLength: 200, minimum: 0 } as const;
  const prependBos = { type: 'boolean' } as const;
  const topK = int(1, limits.maxTopK);
  return {
    tokenize: object(['prompt'], { prompt, prependBos }),
    forward: object(['prompt'], { prompt, prependBos, topK }),
    attention: object(['prompt', 'layer'], { prompt, prependBos, layer: int(0), head: int(0) }),
    logitLens: object(['prompt'], { prompt, prependBos, topK, track: tokenRef, lens: { type: 'string', enum: ['logit', 'tuned'] } }),
    dla: object(['prompt', 'answer'], { prompt, prependBos, answer: tokenRef, wrong: tokenRef, pos: int() }),
    heads: object([], {
      prompt,
      prependBos,
      seqLen: int(1),
      batch: int(1, limits.maxHeadBatch),
      seed: int(0, 2 ** 31 - 1),
    }),
    patching: object(['clean', 'corrupted', 'answer', 'wrong'], {
      clean: prompt,
      corrupted: prompt,
      prependBos,
      answer: tokenRef,
      wrong: tokenRef,
      pos: int(),
      kinds: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', enum: ['resid_pre', 'attn_out', 'mlp_out', 'head_out', 'head_out_by_pos'] },
      },
    }),
    steer: object(['positive', 'negative', 'layer', 'prompt'], {
      positive: { type: 'array', minItems: 1, maxItems: limits.maxSteerPrompts, items: prompt },
      negative: { type: 'array', minItems: 1, maxItems: limits.maxSteerPrompts, items: prompt },
      layer: int(0),
      hook: { type: 'string', minLength: 1, maxLength: 200 },
      position: { type: 'string', enum: ['last', 'mean'] },
      positions: { type: 'string', enum: ['all', 'prompt', 'generated'] },
      scale: { type: 'number', minimum: -1e4, maximum: 1e4 },
      prompt,
      prependBos,
      maxNewTokens: int(1, limits.maxNewTokens),
      temperature: { type: 'number', minimum: 0, maximum: 10 },
      topK: int(1),
      topP: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      seed: int(0, 2 ** 31 - 1),
    }),
    jobParams: object(['id'], { id: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' } }),
    ...graphSchemas(limits, prompt, prependBos),
  };
}

type Schemas = ReturnType<typeof bodySchemas>;

// ---------------------------------------------------------------------------------------------
// Requests: derived from the schemas above.

export type TokenizeBody = FromSchema<Schemas['tokenize']>;
export type ForwardBody = FromSchema<Schemas['forward']>;
export type AttentionBody = FromSchema<Schemas['attention']>;
export type LogitLensBody = FromSchema<Schemas['logitLens']>;
export type DlaBody = FromSchema<Schemas['dla']>;
export type HeadsBody = FromSchema<Schemas['heads']>;
export type PatchingBody = FromSchema<Schemas['patching']>;
export type SteerBody = FromSchema<Schemas['steer']>;
export type JobParams = FromSchema<Schemas['jobParams']>;

/** A prompt: text (tokenized, BOS prepended unless `prependBos` is false) or token ids. */
export type Prompt = TokenizeBody['prompt'];
/** A token: a text that is exactly one token (no BOS), or its id. */
export type TokenRef = DlaBody['answer'];
/** What a patching job patches. */
export type PatchingKind = NonNullable<PatchingBody['kinds']>[number];

// ---------------------------------------------------------------------------------------------
// Responses. Floats are rounded to 6 significant digits; NaN and infinities are null.

/** The JSON body of every error response (and of a job's `error` event). */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

/** A layer x head (or layer x position) grid of numbers; null where nothing was scored. */
export type Grid = (number | null)[][];

/** A prompt's token ids and their strings (null when the model has no tokenizer). */
export interface Tokens {
  tokens: number[];
  strTokens: string[] | null;
}

/** One predicted token. */
export interface TokenProb {
  token: number;
  /** The token's string (null when the model has no tokenizer). */
  str: string | null;
  prob: number | null;
}

/** GET /api/model: the config summary (ModelConfig's fields, by their names), hook names, whether there is a tokenizer, the limits. */
export interface ModelInfo extends Pick<
  ModelConfig,
  | 'family'
  | 'nLayers'
  | 'dModel'
  | 'nHeads'
  | 'nKVHeads'
  | 'dHead'
  | 'dMlp'
  | 'dVocab'
  | 'nCtx'
  | 'positional'
  | 'norm'
  | 'act'
  | 'bosTokenId'
  | 'eosTokenId'
  | 'padTokenId'
> {
  name: string;
  attnOnly: boolean;
  hasTokenizer: boolean;
  hookNames: string[];
  limits: ServerLimits;
  /** Whether a tuned lens is loaded (serve --tuned-lens, or the model folder's tuned-lens/): POST /api/logit-lens takes lens: 'tuned'. */
  tunedLens: boolean;
}

/** POST /api/tokenize. */
export type TokenizeResult = Tokens;

/** POST /api/forward: top[pos] is the top-k next tokens after position pos, most likely first. */
export interface ForwardResult extends Tokens {
  top: TokenProb[][];
  /**
   * [pos]: the probability the model gave the prompt's own token at pos, predicting it from the
   * tokens before (its loss is −ln of it); null at position 0, which nothing predicts.
   */
  tokenProbs: (number | null)[];
}

/** POST /api/attention: pattern[i][q][k] is head heads[i]'s attention from query q to key k. */
export interface AttentionResult extends Tokens {
  layer: number;
  heads: number[];
  pattern: Grid[];
}

/** POST /api/logit-lens: top[i][pos] is the top-k read from residual stream labels[i]. */
export interface LogitLensResult extends Tokens {
  /** Which lens read the residual streams: the logit lens, or the tuned lens (one affine translator per layer first). */
  lens: 'logit' | 'tuned';
  labels: string[];
  top: TokenProb[][][];
  /** With `track`: that token's probability and rank (1 = most likely) [label][pos] through the lens. */
  tracked?: { token: number; str: string | null; prob: Grid; rank: Grid };
}

/** POST /api/dla: each component's direct contribution to logit(answer) (- logit(wrong)) at pos. */
export interface DlaResult extends Tokens {
  pos: number;
  answer: { token: number; str: string | null };
  wrong: { token: number; str: string | null } | null;
  components: { label: string; value: number | null }[];
  /** The L{l}H{h} components as [layer][head] (null where the model has no per-head split). */
  heads: Grid | null;
  total: number | null;
  logitDiff: number | null;
}

/** POST /api/heads: [layer][head] scores in [0, 1]. */
export interface HeadsResult {
  nLayers: number;
  nHeads: number;
  previousToken: Grid;
  duplicateToken: Grid;
  induction: Grid;
  scoredOn: 'prompt' | 'repeated';
  /** The prompt's tokens, when one was given. */
  tokens?: number[];
  strTokens?: string[] | null;
  repeated: { seqLen: number; batch: number; seed: number; tokens: number[][] };
}

/** GET /api/stats: the server's memory and its model worker's compiled sessions. */
export interface ServerStats {
  /** The process's resident memory, in bytes. */
  rss: number;
  /** Requests waiting for the model or running, and jobs running or starting. */
  queued: number;
  jobs: number;
  /** The worker's sessions: compiled, run and released since it started, kept now, and their arenas' measured bytes. */
  compiles: number;
  runs: number;
  released: number;
  sessions: number;
  arenaBytes: number;
}

/** The status of a job (a patching sweep). */
export type JobStatus = 'running' | 'done' | 'error' | 'cancelled';

/** A job's `progress` event (and its `cancelled` event's data). */
export interface JobProgress {
  done: number;
  total: number;
  /** The result so far, for a job that reports one (patching: a PatchingResult whose cells not yet patched are null). */
  partial?: unknown;
}

/** POST /api/patching (202): the job that runs the sweep, and where its events are. */
export interface PatchingStart {
  jobId: string;
  status: JobStatus;
  total: number;
  events: string;
}

/** The grids of a patching result, by kind. */
export interface PatchingGrids {
  /** [layer][pos]: patching resid_pre at one position. */
  residPre?: Grid;
  /** [layer][pos]: patching attn_out at one position. */
  attnOut?: Grid;
  /** [layer][pos]: patching mlp_out at one position. */
  mlpOut?: Grid;
  /** [layer][head]: patching one head's output (hook_z) at every position. */
  headOut?: Grid;
  /** [layer][pos][head]: patching one head's output (hook_z) at one position (TransformerLens's `_by_pos` order). */
  headOutByPos?: Grid[];
}

/** A patching job's result: clean = 1, corrupted = 0. */
export interface PatchingResult extends Tokens, PatchingGrids {
  corruptedTokens: number[];
  corruptedStrTokens: string[] | null;
  answer: number;
  wrong: number;
  pos: number;
  cleanValue: number | null;
  corruptedValue: number | null;
}

/** GET and DELETE /api/jobs/:id. */
export interface JobSummary {
  id: string;
  kind: string;
  status: JobStatus;
  done: number;
  total: number;
  createdAt: string;
  /** When done. */
  result?: unknown;
  /** Until done, the result so far (see JobProgress); a cancelled job keeps its finished part. */
  partial?: unknown;
  error?: ErrorBody;
}

/** A token sequence and its text (null without a tokenizer). */
export interface Generation {
  tokens: number[];
  text: string | null;
}

/** POST /api/steer: the steered and unsteered continuations. */
export interface SteerResult {
  hook: string;
  layer: number;
  scale: number;
  vectorNorm: number | null;
  prompt: Generation;
  unsteered: Generation;
  steered: Generation;
}

// ---------------------------------------------------------------------------------------------
// Dictionaries (SAEs and transcoders) attached with `glassbox serve --sae`: their feature pages,
// steering along one feature, and the features that fire on a prompt (src/server/features.ts).

/** An attached dictionary's id in URLs: its directory's name, made unique. */
const SAE_ID = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,100}$' } as const;

export function featureSchemas(limits: ServerLimits) {
  const prompt = { type: ['string', 'array'], maxLength: limits.maxChars, minItems: 1, items: int(0) } as const;
  return {
    saeParams: object(['sae'], { sae: SAE_ID }),
    featureParams: object(['sae', 'feature'], { sae: SAE_ID, feature: { type: 'string', pattern: '^[0-9]{1,9}$' } }),
    featureSteer: object(['feature', 'prompt'], {
      feature: int(0),
      prompt,
      prependBos: { type: 'boolean' },
      scale: { type: 'number', minimum: -1e4, maximum: 1e4 },
      maxNewTokens: int(1, limits.maxNewTokens),
      temperature: { type: 'number', minimum: 0, maximum: 10 },
      topK: int(1),
      topP: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      seed: int(0, 2 ** 31 - 1),
    }),
    fires: object(['prompt'], {
      prompt,
      prependBos: { type: 'boolean' },
      topK: int(1, limits.maxTopK),
      /** Only these dictionaries (default all). */
      saes: { type: 'array', minItems: 1, uniqueItems: true, items: SAE_ID },
      /** One feature whose activation at every token comes back too. */
      highlight: object(['sae', 'feature'], { sae: SAE_ID, feature: int(0) }),
    }),
  };
}

type FeatureSchemas = ReturnType<typeof featureSchemas>;
export type SaeParams = FromSchema<FeatureSchemas['saeParams']>;
export type FeatureParams = FromSchema<FeatureSchemas['featureParams']>;
export type FeatureSteerBody = FromSchema<FeatureSchemas['featureSteer']>;
export type FiresBody = FromSchema<FeatureSchemas['fires']>;

/** GET /api/saes: one attached dictionary. */
export interface SaeInfo {
  /** Its id in URLs (/api/features/{id}/...). */
  id: string;
  /** Where it was loaded from. */
  source: string;
  architecture: string;
  transcoder: boolean;
  hookName: string;
  /** A transcoder's output hook point (null for SAEs). */
  hookNameOut: string | null;
  hookHeadIndex: number | null;
  dIn: number;
  /** The dictionary's width. */
  dSae: number;
  dOut: number;
  modelName: string | null;
  /** Mean active features per token over the feature store's corpus (null without a store). */
  l0: number | null;
  /** Features that never fired over the store's corpus (null without a store). */
  deadFeatures: number | null;
  /** The store's corpus, when there is a store. */
  store: { tokens: number; contexts: number; contextSize: number; topK: number; description: string } | null;
  /** The SAE directory's evals.json (what `glassbox sae eval --json` writes), when it has one. */
  evals: Record<string, unknown> | null;
}

export interface SaeList {
  saes: SaeInfo[];
}

/** One token of a context, with the feature's activation there. */
export interface FeatureToken {
  id: number;
  str: string | null;
  act: number | null;
}

/** One of a feature's top activating contexts. */
export interface FeatureContext {
  /** Its max activation. */
  activation: number | null;
  /** The context's index in the store's corpus, and the max-activating token's position in it. */
  context: number;
  position: number;
  /** The max-activating token's index in `tokens`. */
  maxIndex: number;
  tokens: FeatureToken[];
}

/** Contexts whose (max or sampled) activation lies in [min, max]. */
export interface ContextGroup {
  label: string;
  min: number | null;
  max: number | null;
  contexts: FeatureContext[];
}

/** A token's effect on the logits. */
export interface LogitToken {
  id: number;
  str: string | null;
  value: number | null;
}

/** A feature's explanation (written into the feature store by `glassbox sae explain`). */
export interface FeatureExplanation {
  text: string;
  /** Its detection score (balanced accuracy), when scored. */
  score: number | null;
  /** The explainer model, when known. */
  model: string | null;
}

/** GET /api/features/:sae/:feature: everything a feature page shows. */
export interface FeaturePageResult {
  sae: string;
  feature: number;
  dSae: number;
  /** Whether the dictionary has a feature store (without one, only logit effects are known). */
  hasStore: boolean;
  density: number | null;
  fireCount: number | null;
  maxActivation: number | null;
  meanActivation: number | null;
  /** Non-zero activations by log-spaced bin: counts[i] in [edges[i], edges[i+1]). */
  histogram: { edges: (number | null)[]; counts: number[] } | null;
  /**
   * The store's top contexts (best first), then contexts of a uniform sample of the feature's
   * firing tokens grouped by activation quantile, the top quantile first.
   */
  groups: ContextGroup[];
  /** Why there are no quantile groups (a store written before activation samples), else null. */
  groupsNote: string | null;
  /** Top and bottom tokens of the decoder direction through the unembedding (null, with the reason, when it has none). */
  logits: { path: string; positive: LogitToken[]; negative: LogitToken[] } | null;
  logitsReason: string | null;
  explanation: FeatureExplanation | null;
}

/** POST /api/features/:sae/steer: the prompt continued without and with the feature added. */
export interface FeatureSteerResult {
  sae: string;
  feature: number;
  /** Added to the feature's activation at every position. */
  scale: number;
  prompt: Generation;
  unsteered: Generation;
  steered: Generation;
}

/** One feature's activation at a token. */
export interface FiringFeature {
  feature: number;
  act: number | null;
}

/** POST /api/fires: per token, its top features in each dictionary. */
export interface FiresResult extends Tokens {
  /** top[pos] for each dictionary: the features firing there, strongest first (at most topK). */
  saes: { id: string; top: FiringFeature[][] }[];
  /** The highlighted feature's activation at every token. */
  highlight: { sae: string; feature: number; acts: (number | null)[] } | null;
}

// Attribution graphs (the Graph view): graph files as circuit-tracer and Neuronpedia write them.

/** The graph endpoints' request schemas (part of `bodySchemas`). */
function graphSchemas<const P extends JSONSchema, const B extends JSONSchema>(limits: ServerLimits, prompt: P, prependBos: B) {
  /** A feature of a graph: layer, feature index, and the positions it is changed at (all when absent). */
  const featureRef = object(['layer', 'feature'], {
    layer: int(0),
    feature: int(0),
    pos: { type: 'array', minItems: 1, maxItems: limits.maxTokens, uniqueItems: true, items: int() },
  });
  return {
    graph: object(['prompt'], {
      prompt,
      prependBos,
      nodeThreshold: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      edgeThreshold: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      maxFeatureNodes: int(1, 100_000),
      maxLogits: int(1, 100),
      desiredLogitProb: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    }),
    graphIntervene: object(['prompt', 'features'], {
      prompt,
      prependBos,
      /** Each feature set to `value`, or multiplied by `scale` (0 zeroes it). */
      features: {
        type: 'array',
        minItems: 1,
        maxItems: 1000,
        items: {
          ...featureRef,
          properties: {
            ...featureRef.properties,
            scale: { type: 'number', minimum: -1e4, maximum: 1e4 },
            value: { type: 'number', minimum: -1e6, maximum: 1e6 },
          },
        },
      },
      topK: int(1, limits.maxTopK),
    }),
    graphParams: object(['id'], { id: { type: 'string', pattern: GRAPH_ID_PATTERN } }),
    /** GET /api/graph/features/:layer/:feature: a transcoder feature's page from its layer's feature store. */
    graphFeatureParams: object(['layer', 'feature'], {
      layer: { type: 'string', pattern: '^[0-9]{1,4}$' },
      feature: { type: 'string', pattern: '^[0-9]{1,9}$' },
    }),
  } as const;
}

/** The ids of graphs: a file's slug, or a computed graph's job id. */
export const GRAPH_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';

export type GraphBody = FromSchema<Schemas['graph']>;
export type GraphInterveneBody = FromSchema<Schemas['graphIntervene']>;
export type GraphParams = FromSchema<Schemas['graphParams']>;
export type GraphFeatureParams = FromSchema<Schemas['graphFeatureParams']>;

/**
 * A node of a graph file as the server reads one: glassbox's own (`GraphJsonNode`, written by
 * `graphToJson`) with the fields circuit-tracer or Neuronpedia may leave out optional. `layer` is
 * a string: 'E' for the token embeddings, '0'..'L-1' for the features and error nodes of a layer,
 * 'L+1' (one past the last layer, circuit-tracer's convention) for the logits; `ctx_idx` the token
 * position. `feature` is the feature index (circuit-tracer writes a pairing of layer and index
 * there; the index is also the middle part of `node_id` = `{layer}_{index}_{pos}`), -1 for an
 * error node, the position for an embedding, the token id for a logit.
 */
export type GraphNodeJson = Pick<GraphJsonNode, 'node_id' | 'layer' | 'ctx_idx'> &
  Partial<Pick<GraphJsonNode, 'jsNodeId' | 'clerp' | 'influence' | 'activation' | 'token_prob' | 'is_target_logit'>> & {
    feature: GraphJsonNode['feature'] | null;
    /** 'cross layer transcoder', 'mlp reconstruction error', 'embedding', 'logit' (others are shown as features). */
    feature_type: string;
  };

/** A directed edge: the direct effect of `source` on `target`. */
export type GraphLinkJson = GraphJsonLink;

/** A graph file's metadata: glassbox's (`GraphJsonMetadata`) fields that every writer sets, and whatever else it holds. */
export type GraphMetadata = Pick<GraphJsonMetadata, 'slug' | 'prompt' | 'prompt_tokens' | 'node_threshold'> & {
  scan?: GraphJsonMetadata['scan'] | null;
  schema_version?: number | null;
  [key: string]: unknown;
};

/** A graph file (circuit-tracer's `create_graph_files`, Neuronpedia's viewer). */
export interface GraphFile {
  metadata: GraphMetadata;
  qParams?: Record<string, unknown>;
  nodes: GraphNodeJson[];
  links: GraphLinkJson[];
}

/** One graph the server holds. */
export interface GraphSummary {
  id: string;
  prompt: string;
  promptTokens: string[];
  nodes: number;
  links: number;
  /** 'file': opened with `serve --graph`; 'computed': made by POST /api/graph. */
  source: 'file' | 'computed';
}

/** GET /api/graphs. */
export interface GraphList {
  graphs: GraphSummary[];
  /** Whether POST /api/graph and /api/graph/intervene can run (the server has transcoders). */
  canCompute: boolean;
  /** Whether GET /api/graph/features/:layer/:feature has feature stores for the transcoders' features (`glassbox clt features`). */
  featureStore: boolean;
}

/** POST /api/graph (202): the job computing the graph; its result is a `GraphSummary`, the graph at GET /api/graphs/{id}. */
export type GraphStart = PatchingStart;

/** POST /api/graph/intervene: the top next tokens at the last position, before and after. */
export interface InterveneResult extends Tokens {
  before: TokenProb[];
  after: TokenProb[];
}
