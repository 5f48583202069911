import type { Tensor } from '../../tensor/index.js';
import type { ModelConfig } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import type { ModelParams } from '../forward.js';

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
