import type { Tensor } from '../../tensor/index.js';
import type { ModelConfig } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import type { ModelParams } from '../forward.js';

/** Reads checkpoint tensors by Hugging Face name. */
export interface WeightReader {
  has(name: string): boolean;
  /** The tensor (float32); errors name the checkpoint and the tensor. */
  get(name: string): Tensor;
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
}

/** [out, in] (torch Linear) -> [in, out]. */
export function linearT(w: WeightReader, name: string): Tensor {
  return w.get(name).transpose();
}
