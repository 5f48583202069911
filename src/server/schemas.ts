/**
 * JSON schemas of the API's request bodies, checked by Fastify (Ajv) before a handler runs:
 * types, ranges and no unknown fields. Checks that need the model (a layer below nLayers, token
 * ids inside the vocabulary, a prompt within the token limit) are made in the handlers, which
 * name the valid range.
 */

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
}

/** A prompt: text (tokenized, BOS prepended unless `prependBos` is false) or token ids. */
export type Prompt = string | number[];

/** A token: a text that is exactly one token (no BOS), or its id. */
export type TokenRef = string | number;

const int = (minimum?: number, maximum?: number) => ({
  type: 'integer',
  ...(minimum !== undefined ? { minimum } : {}),
  ...(maximum !== undefined ? { maximum } : {}),
});

export function bodySchemas(limits: ServerLimits) {
  const prompt = {
    type: ['string', 'array'],
    maxLength: limits.maxChars,
    minItems: 1,
    items: int(0),
  } as const;
  const tokenRef = { type: ['string', 'integer'], minLength: 1, maxLength: 200, minimum: 0 } as const;
  const prependBos = { type: 'boolean' } as const;
  const topK = int(1, limits.maxTopK);
  const object = (required: string[], properties: Record<string, unknown>) => ({
    type: 'object',
    additionalProperties: false,
    required,
    properties,
  });
  return {
    tokenize: object(['prompt'], { prompt, prependBos }),
    forward: object(['prompt'], { prompt, prependBos, topK }),
    attention: object(['prompt', 'layer'], { prompt, prependBos, layer: int(0), head: int(0) }),
    logitLens: object(['prompt'], { prompt, prependBos, topK }),
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
        items: { type: 'string', enum: ['resid_pre', 'attn_out', 'mlp_out', 'head_out'] },
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
  };
}

export interface TokenizeBody {
  prompt: Prompt;
  prependBos?: boolean;
}
export interface ForwardBody extends TokenizeBody {
  topK?: number;
}
export interface AttentionBody extends TokenizeBody {
  layer: number;
  head?: number;
}
export type LogitLensBody = ForwardBody;
export interface DlaBody extends TokenizeBody {
  answer: TokenRef;
  wrong?: TokenRef;
  pos?: number;
}
export interface HeadsBody {
  prompt?: Prompt;
  prependBos?: boolean;
  seqLen?: number;
  batch?: number;
  seed?: number;
}
export type PatchingKind = 'resid_pre' | 'attn_out' | 'mlp_out' | 'head_out';
export interface PatchingBody {
  clean: Prompt;
  corrupted: Prompt;
  prependBos?: boolean;
  answer: TokenRef;
  wrong: TokenRef;
  pos?: number;
  kinds?: PatchingKind[];
}
export interface SteerBody {
  positive: Prompt[];
  negative: Prompt[];
  layer: number;
  hook?: string;
  position?: 'last' | 'mean';
  positions?: 'all' | 'prompt' | 'generated';
  scale?: number;
  prompt: Prompt;
  prependBos?: boolean;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}
