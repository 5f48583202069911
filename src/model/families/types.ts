import type { Tensor } from '../../tensor/index.js';
import type { ModelConfig } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import type { AttnParams, MlpParams, ModelParams, NormParams } from '../forward.js';

/** Reads checkpoint tensors by Hugging Face name. */
export interface WeightReader {
  has(name: string): boolean;
  /** The tensor (float32); errors name the checkpoint and the tensor. */
  get(name: string): Tensor;
  /**
   * Every tensor name the checkpoint holds. Given, the loader refuses a checkpoint holding tensors
   * the family neither read nor declared skipped (`Family.skipped`): a config that disagrees with
   * its weights (fewer layers, no biases) would otherwise run on part of them.
   */
  names?(): readonly string[];
  /** The checkpoint's file (for messages), e.g. `.../model.safetensors`. */
  source?: string;
}

/** Checkpoint tensors a family leaves unread on purpose, and why. */
export interface SkippedTensors {
  pattern: RegExp;
  why: string;
}

/** Causal-mask buffers older transformers versions saved (GPT-2, GPT-Neo, GPT-J, GPT-NeoX): recomputed here. */
export const MASK_BUFFERS = (prefix: string): SkippedTensors => ({
  pattern: new RegExp(`${prefix.replace(/\./g, '\\.')}\\.(bias|masked_bias)$`),
  why: "the causal-mask buffers older transformers saved (glassbox builds the mask from each run's length)",
});

/** RoPE's inverse-frequency buffer older transformers versions saved: recomputed here from the config, as transformers does. */
export const INV_FREQ: SkippedTensors = {
  pattern: /\.rotary_emb\.inv_freq$/,
  why: "RoPE's inverse-frequency buffer (transformers does not load it either: it is computed from the config)",
};

/** A tied unembedding stored beside the embedding: transformers uses the embedding, and so does glassbox. */
export function tiedHead(cfg: ModelConfig, ...names: string[]): SkippedTensors[] {
  if (!cfg.tiedEmbeddings) return [];
  return [
    {
      pattern: new RegExp(`^(${names.map((n) => n.replace(/\./g, '\\.')).join('|')})$`),
      why: 'the unembedding of a tied checkpoint (tie_word_embeddings: transformers uses the embedding matrix instead)',
    },
  ];
}

/** One architecture family: how its HF config and weight names map onto the common model. */
export interface Family {
  /** HF `model_type` values this file handles. */
  modelTypes: readonly string[];
  /**
   * Reads the config through `r`, which records each field read; every field that changes the
   * arithmetic must be read (and implemented) or refused, since the loader refuses unread ones.
   */
  config(r: HfConfigReader): ModelConfig;
  weights(cfg: ModelConfig, w: WeightReader): ModelParams;
  /**
   * The checkpoint tensors `weights` leaves unread on purpose (buffers transformers recomputes, a
   * tied unembedding's duplicate, a multimodal checkpoint's vision tower). Any other tensor it
   * does not read makes the load fail, naming the tensors.
   */
  skipped?(cfg: ModelConfig): readonly SkippedTensors[];
}

/** [out, in] (torch Linear) -> [in, out]. */
export function linearT(w: WeightReader, name: string): Tensor {
  return w.get(name).transpose();
}

/** A norm's weight (and bias, for a LayerNorm with one) at `prefix`: '{prefix}.weight', '{prefix}.bias'. */
export function normAt(w: WeightReader, prefix: string, bias = false): NormParams {
  return bias ? { w: w.get(`${prefix}.weight`), b: w.get(`${prefix}.bias`) } : { w: w.get(`${prefix}.weight`) };
}

/**
 * Separate q, k, v and output torch Linears under `prefix`, as [in, out]; biases where `bias`
 * says the family has them (then they are required).
 */
export function qkvoAt(
  w: WeightReader,
  prefix: string,
  bias: { qkv?: boolean; o?: boolean } = {},
  names: readonly [string, string, string, string] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
): AttnParams {
  const [q, k, v, o] = names.map((n) => `${prefix}${n}`) as [string, string, string, string];
  return {
    W_Q: linearT(w, `${q}.weight`),
    W_K: linearT(w, `${k}.weight`),
    W_V: linearT(w, `${v}.weight`),
    W_O: linearT(w, `${o}.weight`),
    ...(bias.qkv ? { b_Q: w.get(`${q}.bias`), b_K: w.get(`${k}.bias`), b_V: w.get(`${v}.bias`) } : {}),
    ...(bias.o ? { b_O: w.get(`${o}.bias`) } : {}),
  };
}

/** An MLP of two Linears with biases, '{inName}' then '{outName}': torch layout, or GPT-2's Conv1D ([in, out] already). */
export function mlpAt(w: WeightReader, inName: string, outName: string, layout: 'linear' | 'conv1d' = 'linear'): MlpParams {
  const weight = (name: string) => (layout === 'conv1d' ? w.get(`${name}.weight`) : linearT(w, `${name}.weight`));
  return { W_in: weight(inName), b_in: w.get(`${inName}.bias`), W_out: weight(outName), b_out: w.get(`${outName}.bias`) };
}

/** A gated MLP without biases under `prefix`: act(x W_gate) * (x W_in), then W_out (LLaMA's gate_proj, up_proj, down_proj). */
export function gatedMlpAt(
  w: WeightReader,
  prefix: string,
  names: readonly [string, string, string] = ['gate_proj', 'up_proj', 'down_proj'],
): MlpParams {
  const [gate, up, down] = names;
  return {
    W_gate: linearT(w, `${prefix}${gate}.weight`),
    W_in: linearT(w, `${prefix}${up}.weight`),
    W_out: linearT(w, `${prefix}${down}.weight`),
  };
}

/**
 * The unembedding: the embedding's transpose when the config ties them, else `{head}.weight`
 * (required); with `{head}.bias` where the family has one.
 */
export function unembedAt(cfg: ModelConfig, w: WeightReader, embed: Tensor, bias = false, head = 'lm_head'): ModelParams['unembed'] {
  return {
    W_U: cfg.tiedEmbeddings ? embed.transpose() : linearT(w, `${head}.weight`),
    ...(bias ? { b_U: w.get(`${head}.bias`) } : {}),
  };
}
