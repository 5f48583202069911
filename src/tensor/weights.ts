/**
 * Tensors marked as a model's weights: values read by run after run of the same graphs. A graph
 * runtime may keep such a tensor inside its compiled sessions (the onnxruntime-web runtime bakes
 * them in as initializers, ort-wasm.ts) instead of copying it in on every run, keyed by the
 * tensor's identity.
 *
 * Why identity is a safe key: a Tensor never changes its values (`tensor()` copies the caller's
 * array; `dataSync()` says not to mutate what it returns), so a changed weight is a new Tensor,
 * which is not marked until a model is built over it. Why only marked tensors: a tensor fed
 * once (an activation, a patch) baked into a session would compile a new session per call.
 */
import type { Tensor } from './tensor.js';

const weights = new WeakSet<Tensor>();

/** Marks concrete tensors as weights that stay the same across runs (tracers are skipped). */
export function markWeights(tensors: Iterable<Tensor>): void {
  for (const t of tensors) if (!t.isTracer) weights.add(t);
}

/** Whether `t` was marked as a weight with `markWeights`. */
export function isMarkedWeight(t: Tensor): boolean {
  return weights.has(t);
}
