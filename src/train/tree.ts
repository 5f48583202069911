/**
 * Named leaves of a parameter pytree: `blocks.0.attn.W_Q` for `{ blocks: [{ attn: { W_Q } }] }`.
 * The order is the pytree's own (`flatten`), so named leaves and `flatten` line up one to one.
 */
import { Tensor, flatten } from '../tensor/index.js';

/** Every tensor leaf with its dotted path, in flatten order. */
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

/** Applies `f` leaf by leaf to trees of the same structure (the first tree gives the structure). */
export function mapLeaves<T>(trees: readonly unknown[], f: (leaves: Tensor[], path: string) => Tensor): T {
  const first = flatten(trees[0]);
  const paths = namedLeaves(trees[0]).map(([p]) => p);
  const others = trees.slice(1).map((t, i) => {
    const leaves = flatten(t).leaves;
    if (leaves.length !== first.leaves.length)
      throw new Error(`tree ${i + 1} has ${leaves.length} leaves, the first has ${first.leaves.length}`);
    return leaves;
  });
  let k = 0;
  return first.rebuild(
    first.leaves.map((leaf, i) => {
      if (!(leaf instanceof Tensor)) return leaf;
      return f([leaf, ...others.map((o) => o[i] as Tensor)], paths[k++]!);
    }),
  ) as T;
}

/** Rebuilds `like`'s structure from tensors by path; every path must be present with the same shape. */
export function fromNamedLeaves<T>(like: T, tensors: ReadonlyMap<string, Tensor>, where: string): T {
  return mapLeaves<T>([like], ([ref], path) => {
    const t = tensors.get(path);
    if (!t) throw new Error(`${where}: tensor '${path}' is missing`);
    if (t.shape.length !== ref!.shape.length || t.shape.some((d, i) => d !== ref!.shape[i]))
      throw new Error(`${where}: tensor '${path}' has shape [${t.shape}], expected [${ref!.shape}]`);
    return t.dtype === ref!.dtype ? t : t.cast(ref!.dtype);
  });
}
