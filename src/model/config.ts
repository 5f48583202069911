/**
 * The model configuration: the few facts that make one transformer family differ from another.
 * Each family file (families/*.ts) builds it from a Hugging Face `config.json`.
 */
import type { HfConfigReader } from './hf-config.js';
import type { RopeConfig } from './rope.js';

/** Which of the model's RoPE settings a layer uses: 'global' (ropeTheta, ropeScaling) or 'local' (localRope). */
export type RopeId = 'global' | 'local';

export type Activation = 'gelu_new' | 'gelu' | 'gelu_tanh' | 'silu' | 'relu';

export interface ModelConfig {
  /** Hugging Face `model_type`, e.g. 'gpt2', 'gpt_neox', 'llama', 'mistral', 'qwen2', 'gemma2'. */
  family: string;
  nLayers: number;
  dModel: number;
  nHeads: number;
  /** Key/value heads (fewer than nHeads with grouped-query attention). */
  nKVHeads: number;
  dHead: number;
  dMlp: number;
  dVocab: number;
  /** Longest context the positional scheme supports. */
  nCtx: number;

  /** 'none': no normalisation at all (toy models such as Nanda et al.'s grokking transformer). */
  norm: 'layernorm' | 'rmsnorm' | 'none';
  normEps: number;
  /** OPT (layer_norm_elementwise_affine false): false when the norms have no weight or bias. Absent: they have them. */
  normAffine?: boolean;
  /** Gemma stores RMSNorm weights as w - 1: the weight applied is (offset + w). */
  normWeightOffset: number;

  /** 'alibi' (BLOOM): no position embedding; each head adds slope * (key pos - query pos) to its scores. */
  positional: 'learned' | 'rotary' | 'alibi';
  /** Rotary: how many leading dims of each head rotate (GPT-NeoX rotates a fraction). */
  rotaryDim: number;
  /**
   * GPT-J: rotary rotates adjacent pairs of dims (x0, x1), (x2, x3), ... ("rotate every two")
   * instead of GPT-NeoX's first half against second half. Absent: halves.
   */
  rotaryAdjacentPairs?: boolean;
  ropeTheta: number;
  /** RoPE scaling (Llama 3, YaRN, LongRoPE, ...); absent: the plain frequencies from ropeTheta. */
  ropeScaling?: RopeConfig;
  /**
   * Gemma 3: per layer, which RoPE it uses ('local' on sliding-window layers, whose base is
   * rope_local_base_freq, unscaled). Absent: every layer uses the global one.
   */
  layerRope?: RopeId[];
  /** The RoPE of 'local' layers. */
  localRope?: RopeConfig;
  /**
   * Phi-3: when generation with a KV cache first runs past LongRoPE's pre-training context, the
   * cache is recomputed with the long factors (what transformers' Phi3ForCausalLM intends; see
   * `generate` in hooked.ts).
   */
  ropeRefreshCache?: boolean;

  /** Attention-only blocks, no MLP (toy models: Olsson et al.'s induction-head transformers). */
  attnOnly?: boolean;
  /** GPT-NeoX: attention and MLP both read the block input, and both add to it. */
  parallelResidual: boolean;
  /**
   * OPT-350m (do_layer_norm_before false): ln1 and ln2 act on the residual stream after each
   * residual add (the stream is their output), and there is no final norm. Absent: pre-norm.
   */
  normAfterAdd?: boolean;
  act: Activation;
  /** LLaMA-style MLP: act(x W_gate) * (x W_in). */
  gatedMlp: boolean;
  /** Multiplier of q.k (1/sqrt(dHead) unless the family says otherwise). */
  attnScale: number;
  /** Gemma 2: scores -> cap * tanh(scores / cap). */
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  /** Per layer: attend only to the last `w` positions (null: full causal attention). */
  slidingWindow: (number | null)[];
  /** Gemma: embeddings are multiplied by sqrt(dModel). */
  embedScale: number;
  /** Gemma 2: norms after attention and after the MLP, before the residual add. */
  postNorms: boolean;
  /**
   * Norm on each head's q and k, of the model's norm kind: RMSNorm (Qwen3; Gemma 3 with its
   * weight offset), LayerNorm (Phi, StableLM; StableLM has one weight per head).
   */
  qkNorm: boolean;
  /** BLOOM: a LayerNorm on the token embeddings, before the first block (TransformerLens's embed.ln). */
  postEmbedNorm?: boolean;
  /** OLMo 2: the q/k RMSNorm spans the whole projection (all heads together), not each head. */
  qkNormAllHeads?: boolean;
  /** OLMo 2: false, no norms before attention and the MLP (only the post norms). Absent: true. */
  preNorms?: boolean;
  /** Mixtral: a sparse mixture-of-experts MLP (each expert a gated MLP of width dMlp). Absent: a dense MLP. */
  moe?: MoeConfig;
  /** Biases present on q/k/v, attention output, MLP, unembedding. */
  attnBias: boolean;
  attnOutBias: boolean;
  mlpBias: boolean;
  unembedBias: boolean;
  tiedEmbeddings: boolean;

  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
}

/** A sparse mixture-of-experts MLP (Mixtral): softmax router, top-k experts, weights renormalised. */
export interface MoeConfig {
  nExperts: number;
  /** Experts per token. */
  topK: number;
}

/** Hugging Face activation names and what each computes here (closed list: anything else is refused). */
const HF_ACTIVATIONS: Record<string, Activation> = {
  gelu_new: 'gelu_new',
  gelu_fast: 'gelu_new', // the same tanh formula as gelu_new
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_tanh: 'gelu_tanh',
  gelu: 'gelu',
  silu: 'silu',
  swish: 'silu',
  relu: 'relu',
};

/** The RoPE settings of one id: the global ones (ropeTheta with ropeScaling) or Gemma 3's local ones. */
export function ropeOf(cfg: ModelConfig, id: RopeId): RopeConfig {
  if (id === 'local') {
    if (!cfg.localRope) throw new Error("the config names 'local' RoPE layers but has no localRope");
    return cfg.localRope;
  }
  return cfg.ropeScaling ?? { type: 'default', theta: cfg.ropeTheta };
}

/** The activation under the first of `names` present (default `fallback`), refused unless implemented. */
export function readActivation(r: HfConfigReader, names: string | readonly string[], fallback: keyof typeof HF_ACTIVATIONS): Activation {
  return HF_ACTIVATIONS[r.str(names, Object.keys(HF_ACTIVATIONS), fallback)]!;
}

/**
 * The dimensions as the LLaMA-era configs name them (hidden_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size,
 * max_position_embeddings), shared by the families that use those names. Checks that the heads
 * divide the model width (when head_dim is not given and the config class has no default for it)
 * and the key/value heads divide the heads.
 */
export function readStandardDims(
  r: HfConfigReader,
  classDefaults: {
    /** The config class's head_dim default (Gemma 256, Qwen3 128), if it has one. */
    headDim?: number;
    /**
     * The config class's max_position_embeddings default, taken when the file omits it as
     * transformers takes it (every family reading these names has rotary positions, so the
     * weights do not fix it; it bounds runs unless they allow long contexts).
     */
    context: number;
  },
): Pick<ModelConfig, 'nLayers' | 'dModel' | 'nHeads' | 'nKVHeads' | 'dHead' | 'dMlp' | 'dVocab' | 'nCtx'> {
  const defaultHeadDim = classDefaults.headDim ?? null;
  const dModel = r.dim('hidden_size');
  const nHeads = r.dim('num_attention_heads');
  const nKVHeads = r.optDim('num_key_value_heads', nHeads);
  if (nHeads % nKVHeads !== 0) throw r.error('num_key_value_heads', `(${nKVHeads}) must divide num_attention_heads (${nHeads})`);
  // Config classes with a head_dim default (Gemma 256, Qwen3 128) use it when the file omits head_dim.
  const dHead = r.optDim('head_dim', defaultHeadDim) ?? headDim(r, dModel, nHeads, 'hidden_size');
  return {
    nLayers: r.layers('num_hidden_layers'),
    dModel,
    nHeads,
    nKVHeads,
    dHead,
    dMlp: r.dim('intermediate_size'),
    dVocab: r.dim('vocab_size'),
    nCtx: r.optDim('max_position_embeddings', classDefaults.context),
  };
}

/** d_model / n_heads, refused unless the heads divide the width. */
export function headDim(r: HfConfigReader, dModel: number, nHeads: number, widthField: string, headsField = 'num_attention_heads'): number {
  if (dModel % nHeads !== 0)
    throw r.error(widthField, `(${dModel}) must be divisible by the number of heads, '${r.path}${headsField}' (${nHeads})`);
  return dModel / nHeads;
}

/** The fields a family leaves at their plain value unless it says otherwise. */
type PlainFields =
  | 'normWeightOffset'
  | 'parallelResidual'
  | 'gatedMlp'
  | 'attnSoftcap'
  | 'finalSoftcap'
  | 'slidingWindow'
  | 'embedScale'
  | 'postNorms'
  | 'qkNorm'
  | 'unembedBias';

/**
 * The plain values of the fields most families leave alone (no soft-caps, windows, post-norms,
 * q/k norms, embedding scale or unembedding bias; sequential residual; ungated MLP). A family's
 * config spreads this first and then states only its differences.
 */
export function plainConfig(nLayers: number): Pick<ModelConfig, PlainFields> {
  return {
    normWeightOffset: 0,
    parallelResidual: false,
    gatedMlp: false,
    attnSoftcap: null,
    finalSoftcap: null,
    slidingWindow: Array<number | null>(nLayers).fill(null),
    embedScale: 1,
    postNorms: false,
    qkNorm: false,
    unembedBias: false,
  };
}

/** Rotary positions over the first `rotaryDim` dims of each head, with `rope`'s base and scaling. */
export function rotaryFields(
  rope: RopeConfig,
  rotaryDim: number,
): Pick<ModelConfig, 'positional' | 'rotaryDim' | 'ropeTheta' | 'ropeScaling'> {
  return { positional: 'rotary', rotaryDim, ropeTheta: rope.theta, ...(rope.type !== 'default' ? { ropeScaling: rope } : {}) };
}

/**
 * The config of a LLaMA-style family up to its own differences (LLaMA, Mixtral, OLMo 2, Phi-3):
 * `plainConfig`, `family`, the dimensions, RMSNorm with `rms_norm_eps` (default `normEps`), rotary
 * positions over `rotaryDim` dims (default the whole head) with `rope`'s base and scaling, a gated
 * MLP with `hidden_act` (default SiLU), and scores scaled by 1 / sqrt(d_head). The family spreads
 * this first and then states the rest.
 */
export function rmsGatedConfig(
  r: HfConfigReader,
  family: string,
  dims: ReturnType<typeof readStandardDims>,
  rope: RopeConfig,
  { normEps, rotaryDim = dims.dHead }: { normEps: number; rotaryDim?: number },
) {
  return {
    ...plainConfig(dims.nLayers),
    family,
    ...dims,
    norm: 'rmsnorm' as const,
    normEps: r.optNum('rms_norm_eps', normEps, { gt: 0, max: 1 }),
    ...rotaryFields(rope, rotaryDim),
    act: readActivation(r, 'hidden_act', 'silu'),
    gatedMlp: true,
    attnScale: 1 / Math.sqrt(dims.dHead),
  };
}

/**
 * The model's ends: whether the unembedding is the embedding's transpose (`tie_word_embeddings`,
 * default as the family's config class has it) and the special token ids.
 */
export function readEnds(
  r: HfConfigReader,
  tiedByDefault: boolean,
): Pick<ModelConfig, 'tiedEmbeddings' | 'bosTokenId' | 'eosTokenId' | 'padTokenId'> {
  return { tiedEmbeddings: r.bool('tie_word_embeddings', tiedByDefault), ...readTokenIds(r) };
}

/** The token ids every family reads. */
export function readTokenIds(r: HfConfigReader): Pick<ModelConfig, 'bosTokenId' | 'eosTokenId' | 'padTokenId'> {
  return { bosTokenId: r.tokenId('bos_token_id'), eosTokenId: r.tokenId('eos_token_id'), padTokenId: r.tokenId('pad_token_id') };
}
