/**
 * Optimizers as pure functions over pytrees of tensors, in the style of optax: `init(params)`
 * gives the state, `update(params, grads, state, lr)` gives new params and state. Everything is
 * written with tensor ops, so a whole training step (forward, backward, clip, update) traces into
 * one compiled graph. The step count and the learning rate are tensors, so a schedule never
 * triggers a recompile. Semantics follow PyTorch's `torch.optim` (noted where it matters).
 */
import { scalar, zerosLike, type Tensor } from '../tensor/index.js';
import { mapLeaves, namedLeaves } from './tree.js';

/** Optimizer state: the step count (float32 scalar) and per-parameter slots (same structure as params). */
export interface OptState {
  step: Tensor;
  [slot: string]: unknown;
}

/** Which parameters weight decay applies to, by dotted path (`blocks.0.attn.W_Q`) and value. */
export type DecayMask = (path: string, param: Tensor) => boolean;

/** Decay only matrices (rank >= 2): the usual choice for transformers (no decay on biases and norms). */
export const decayMatricesOnly: DecayMask = (_path, p) => p.rank >= 2;

export interface Optimizer {
  readonly name: string;
  /** Hyper-parameters, for logs and checkpoints. */
  readonly hyper: Readonly<Record<string, number | boolean | string>>;
  /**
   * The paths of the parameters weight decay applies to (empty without weight decay): what a
   * `decayMask` decides, for a run's fingerprint.
   */
  decayed?(params: unknown): string[];
  init(params: unknown): OptState;
  /** One step; `lr` is a float32 scalar tensor (or a number, which is baked into the graph). */
  update<P>(params: P, grads: P, state: OptState, lr: Tensor | number): { params: P; state: OptState };
}

export interface SgdOptions {
  momentum?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (PyTorch's SGD weight_decay). */
  weightDecay?: number;
  decayMask?: DecayMask;
}

/** SGD with optional (Nesterov) momentum: buf = mu * buf + g; p -= lr * (nesterov ? g + mu * buf : buf). */
export function sgd(options: SgdOptions = {}): Optimizer {
  const mu = options.momentum ?? 0;
  const wd = options.weightDecay ?? 0;
  const nesterov = options.nesterov ?? false;
  if (nesterov && mu <= 0) throw new Error('sgd: nesterov needs momentum > 0');
  const mask = options.decayMask ?? (() => true);
  return {
    name: 'sgd',
    hyper: { momentum: mu, nesterov, weightDecay: wd },
    decayed: (params) => decayedPaths(params, wd, mask),
    init: (params) => ({ step: scalar(0), ...(mu > 0 ? { momentum: mapLeaves([params], ([p]) => zerosLike(p!)) } : {}) }),
    update(params, grads, state, lr) {
      const withDecay = mapLeaves<typeof grads>([grads, params], ([g, p], path) => (wd > 0 && mask(path, p!) ? g!.add(p!.mul(wd)) : g!));
      let direction = withDecay;
      let momentum: unknown;
      if (mu > 0) {
        momentum = mapLeaves([state.momentum, withDecay], ([b, g]) => b!.mul(mu).add(g!));
        direction = nesterov ? mapLeaves([withDecay, momentum], ([g, b]) => g!.add(b!.mul(mu))) : (momentum as typeof grads);
      }
      const next = mapLeaves<typeof params>([params, direction], ([p, d]) => p!.sub(d!.mul(asDType(scalarLike(lr), p!))));
      return { params: next, state: { step: state.step.add(1), ...(mu > 0 ? { momentum } : {}) } };
    },
  };
}

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Adam: L2 penalty added to the gradient. AdamW: decoupled decay, p *= 1 - lr * weightDecay. */
  weightDecay?: number;
  decayMask?: DecayMask;
}

/** Adam (Kingma & Ba), with bias correction, as torch.optim.Adam (eps added after the square root). */
export function adam(options: AdamOptions = {}): Optimizer {
  return adamLike('adam', options, false);
}

/** AdamW (Loshchilov & Hutter): decoupled weight decay, default 0.01 as torch.optim.AdamW. */
export function adamw(options: AdamOptions = {}): Optimizer {
  return adamLike('adamw', { weightDecay: 0.01, ...options }, true);
}

function adamLike(name: string, options: AdamOptions, decoupled: boolean): Optimizer {
  const b1 = options.beta1 ?? 0.9;
  const b2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8;
  const wd = options.weightDecay ?? 0;
  const mask = options.decayMask ?? (() => true);
  for (const [k, v] of Object.entries({ beta1: b1, beta2: b2 }))
    if (!(v >= 0 && v < 1)) throw new Error(`${name}: ${k} must be in [0, 1), got ${v}`);
  if (!(eps > 0)) throw new Error(`${name}: eps must be > 0, got ${eps}`);
  if (!(wd >= 0)) throw new Error(`${name}: weightDecay must be >= 0, got ${wd}`);
  return {
    name,
    hyper: { beta1: b1, beta2: b2, eps, weightDecay: wd },
    decayed: (params) => decayedPaths(params, wd, mask),
    init: (params) => ({
      step: scalar(0),
      m: mapLeaves([params], ([p]) => zerosLike(p!)),
      v: mapLeaves([params], ([p]) => zerosLike(p!)),
    }),
    update(params, grads, state, lr) {
      const step = state.step.add(1);
      const g = decoupled
        ? grads
        : mapLeaves<typeof grads>([grads, params], ([g, p], path) => (wd > 0 && mask(path, p!) ? g!.add(p!.mul(wd)) : g!));
      const m = mapLeaves([state.m, g], ([m, g]) => m!.mul(b1).add(g!.mul(1 - b1)));
      const v = mapLeaves([state.v, g], ([v, g]) => v!.mul(b2).add(g!.square().mul(1 - b2)));
      // Bias corrections as scalars, in the learning rate's dtype: lr / (1 - b1^t) and sqrt(1 - b2^t).
      const lrT = scalarLike(lr);
      const t = step.cast(lrT.dtype);
      const c1 = scalar(b1, lrT.dtype).pow(t).neg().add(1);
      const c2 = scalar(b2, lrT.dtype).pow(t).neg().add(1).sqrt();
      const stepSize = lrT.div(c1);
      const next = mapLeaves<typeof params>([params, m, v], ([p, m, v], path) => {
        const as = (x: Tensor): Tensor => asDType(x, p!);
        const decayed = decoupled && wd > 0 && mask(path, p!) ? p!.mul(as(lrT).mul(-wd).add(1)) : p!;
        return decayed.sub(m!.div(v!.sqrt().div(as(c2)).add(eps)).mul(as(stepSize)));
      });
      return { params: next, state: { step, m, v } };
    },
  };
}

function decayedPaths(params: unknown, wd: number, mask: DecayMask): string[] {
  return wd > 0 ? namedLeaves(params).flatMap(([path, p]) => (mask(path, p) ? [path] : [])) : [];
}

function asDType(x: Tensor, like: Tensor): Tensor {
  return x.dtype === like.dtype ? x : x.cast(like.dtype);
}

function scalarLike(x: Tensor | number): Tensor {
  return typeof x === 'number' ? scalar(x) : x;
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_:
 * coefficient maxNorm / (norm + 1e-6), capped at 1). Returns the clipped gradients and the norm
 * before clipping.
 */
export function clipByGlobalNorm<G>(grads: G, maxNorm: number): { grads: G; norm: Tensor } {
  if (!(maxNorm > 0)) throw new Error(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  const coef = scalar(maxNorm, norm.dtype).div(norm.add(1e-6)).minimum(1);
  return { grads: mapLeaves<G>([grads], ([g]) => g!.mul(asDType(coef, g!))), norm };
}

/** sqrt of the sum of squares of every leaf. */
export function globalNorm(tree: unknown): Tensor {
  let total: Tensor | null = null;
  mapLeaves([tree], ([g]) => {
    const s = g!.square().sum();
    total = total ? total.add(asDType(s, total)) : s;
    return g!;
  });
  if (!total) throw new Error('globalNorm: the tree has no tensors');
  return (total as Tensor).sqrt();
}
