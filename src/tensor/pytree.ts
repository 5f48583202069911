/**
 * Pytrees: nested arrays and plain objects whose leaves are tensors (or other values). jit and
 * grad accept and return them, so parameters can be a dict of tensors, as in JAX.
 */
import { Tensor } from './tensor.js';

export type PyTree<T = Tensor> = T | readonly PyTree<T>[] | { readonly [key: string]: PyTree<T> };

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** Leaves in a fixed order, and a function that rebuilds the same structure from new leaves. */
export function flatten(tree: unknown): { leaves: unknown[]; rebuild: (leaves: readonly unknown[]) => unknown } {
  const leaves: unknown[] = [];
  const visit = (x: unknown): ((next: () => unknown) => unknown) => {
    if (Array.isArray(x)) {
      const parts = x.map(visit);
      return (next) => parts.map((p) => p(next));
    }
    if (isPlainObject(x)) {
      const keys = Object.keys(x);
      const parts = keys.map((k) => visit(x[k]));
      return (next) => Object.fromEntries(keys.map((k, i) => [k, parts[i]!(next)]));
    }
    leaves.push(x);
    return (next) => next();
  };
  const build = visit(tree);
  return {
    leaves,
    rebuild: (newLeaves) => {
      let i = 0;
      return build(() => newLeaves[i++]);
    },
  };
}

/** Applies `f` to every tensor leaf. */
export function mapTensors<T>(tree: T, f: (t: Tensor) => Tensor): T {
  const { leaves, rebuild } = flatten(tree);
  return rebuild(leaves.map((l) => (l instanceof Tensor ? f(l) : l))) as T;
}

/** Every tensor leaf with its dotted path (`blocks.0.attn.W_Q`), in flatten order. */
export function namedLeaves(tree: unknown): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  const visit = (x: unknown, path: string): void => {
    if (x instanceof Tensor) out.push([path, x]);
    else if (Array.isArray(x)) x.forEach((v, i) => visit(v, path ? `${path}.${i}` : String(i)));
    else if (x !== null && typeof x === 'object') for (const [k, v] of Object.entries(x)) visit(v, path ? `${path}.${k}` : k);
  };
  visit(tree, '');
  return out;
}

/** The number of elements in all tensor leaves (a model's parameter count). */
export function elementCount(tree: unknown): number {
  return namedLeaves(tree).reduce((n, [, t]) => n + t.size, 0);
}
