/**
 * Parameter pytrees by name: `blocks.0.attn.W_Q` for `{ blocks: [{ attn: { W_Q } }] }`, in the
 * pytree's own (`flatten`) order. `namedLeaves` itself lives in the engine (src/tensor/pytree.ts),
 * which the model layer's saving uses too.
 */
import { Tensor, flatten, namedLeaves } from '../tensor/index.js';

export { namedLeaves };

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
