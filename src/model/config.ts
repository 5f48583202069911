/**
 * The model configuration: the few facts that make one transformer family differ from another.
 * Each family file (families/*.ts) builds it from a Hugging Face `config.json`.
 */

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
  /** Gemma stores RMSNorm weights as w - 1: the weight applied is (offset + w). */
  normWeightOffset: number;

  positional: 'learned' | 'rotary';
  /** Rotary: how many leading dims of each head rotate (GPT-NeoX rotates a fraction). */
  rotaryDim: number;
  ropeTheta: number;

  /** Attention-only blocks, no MLP (toy models: Olsson et al.'s induction-head transformers). */
  attnOnly?: boolean;
  /** GPT-NeoX: attention and MLP both read the block input, and both add to it. */
  parallelResidual: boolean;
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
  /** Qwen3: RMSNorm on each head's q and k. */
  qkNorm: boolean;
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

/** Reads a number from a Hugging Face config, trying several field names in order. */
export function hfNum(hf: Record<string, unknown>, file: string, ...names: string[]): number {
  for (const n of names) {
    const v = hf[n];
    if (typeof v === 'number') return v;
  }
  throw new Error(`${file}: missing numeric field ${names.map((n) => `'${n}'`).join(' or ')}`);
}

export function hfOptNum(hf: Record<string, unknown>, ...names: string[]): number | null {
  for (const n of names) {
    const v = hf[n];
    if (typeof v === 'number') return v;
  }
  return null;
}

/** The first token id of a field that may be a number or a list. */
export function hfTokenId(hf: Record<string, unknown>, name: string): number | null {
  const v = hf[name];
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
  return null;
}

/** RoPE base, from the transformers-4 field or the transformers-5 `rope_parameters`. */
export function hfRopeTheta(hf: Record<string, unknown>, fallback: number): number {
  const rp = hf.rope_parameters as Record<string, unknown> | undefined;
  return hfOptNum(hf, 'rope_theta', 'rotary_emb_base') ?? (rp && typeof rp.rope_theta === 'number' ? rp.rope_theta : fallback);
}

export function hfPartialRotary(hf: Record<string, unknown>): number {
  const rp = hf.rope_parameters as Record<string, unknown> | undefined;
  return (
    hfOptNum(hf, 'rotary_pct', 'partial_rotary_factor') ??
    (rp && typeof rp.partial_rotary_factor === 'number' ? rp.partial_rotary_factor : 1)
  );
}

/**
 * The dimensions as the LLaMA-era configs name them (hidden_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size,
 * max_position_embeddings), shared by the families that use those names.
 */
export function hfStandardDims(
  hf: Record<string, unknown>,
  file: string,
): Pick<ModelConfig, 'nLayers' | 'dModel' | 'nHeads' | 'nKVHeads' | 'dHead' | 'dMlp' | 'dVocab' | 'nCtx'> {
  const dModel = hfNum(hf, file, 'hidden_size');
  const nHeads = hfNum(hf, file, 'num_attention_heads');
  return {
    nLayers: hfNum(hf, file, 'num_hidden_layers'),
    dModel,
    nHeads,
    nKVHeads: hfOptNum(hf, 'num_key_value_heads') ?? nHeads,
    dHead: hfOptNum(hf, 'head_dim') ?? dModel / nHeads,
    dMlp: hfNum(hf, file, 'intermediate_size'),
    dVocab: hfNum(hf, file, 'vocab_size'),
    nCtx: hfNum(hf, file, 'max_position_embeddings'),
  };
}
