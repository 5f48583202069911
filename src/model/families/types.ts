import type { Tensor } from '../../tensor/index.js';
import type { ModelConfig } from '../config.js';
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
  config(hf: Record<string, unknown>, file: string): ModelConfig;
  weights(cfg: ModelConfig, w: WeightReader): ModelParams;
}

/** [out, in] (torch Linear) -> [in, out]. */
export function linearT(w: WeightReader, name: string): Tensor {
  return w.get(name).transpose();
}
