/**
 * Gradient tools the SAE losses need: a stop-gradient, and JumpReLU's straight-through estimators
 * (Rajamanoharan et al. 2024, "Jumping Ahead"; SAELens's `JumpReLU` and `Step` autograd functions).
 *
 * The estimators are ordinary compositions with the engine's stop-gradient (`Tensor.detach`): a term `(t - stopGradient(t)) * c` is exactly 0 in value (t - t = 0 in
 * floating point) and has gradient `c` with respect to t, which injects a pseudo-derivative.
 */
import type { Tensor } from '../tensor/index.js';

/** `x` in value, with no gradient flowing back through it (the engine's `Tensor.detach`). */
export function stopGradient(x: Tensor): Tensor {
  return x.detach();
}

/** SAELens's rectangle kernel: 1 where -0.5 < u < 0.5, else 0 (no gradient). Same shape as `u`. */
export function rectangle(u: Tensor): Tensor {
  return u.gt(-0.5).and(u.lt(0.5)).cast(u.dtype);
}

/**
 * JumpReLU with SAELens's training gradients: value `x * (x > threshold)`; d/dx = (x > threshold);
 * d/dthreshold = -(threshold / bandwidth) * rectangle((x - threshold) / bandwidth), summed over the
 * broadcast (batch) axes.
 *
 * @param x pre-activations [..., d_sae]
 * @param threshold [d_sae] (already non-negative)
 * @param bandwidth the kernel's width ε
 * @returns [..., d_sae]
 */
export function jumpReluSte(x: Tensor, threshold: Tensor, bandwidth: number): Tensor {
  const mask = x.gt(threshold).cast(x.dtype); // comparisons carry no gradient
  const kernel = rectangle(x.sub(threshold).div(bandwidth));
  const pseudo = stopGradient(threshold).neg().div(bandwidth).mul(kernel); // d/dthreshold, a constant
  return x.mul(mask).add(threshold.sub(stopGradient(threshold)).mul(pseudo));
}

/**
 * Heaviside step H(x - threshold) with SAELens's training gradients: no gradient to x;
 * d/dthreshold = -(1 / bandwidth) * rectangle((x - threshold) / bandwidth). Summing it over
 * d_sae gives the L0 the JumpReLU loss penalises.
 *
 * @param x pre-activations [..., d_sae]
 * @param threshold [d_sae]
 * @returns [..., d_sae] of 0/1
 */
export function stepSte(x: Tensor, threshold: Tensor, bandwidth: number): Tensor {
  const step = x.gt(threshold).cast(x.dtype);
  const pseudo = rectangle(x.sub(threshold).div(bandwidth)).mul(-1 / bandwidth);
  return step.add(threshold.sub(stopGradient(threshold)).mul(pseudo));
}
