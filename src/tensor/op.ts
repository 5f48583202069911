/**
 * The op registry. Every primitive op is declared exactly once with `defineOp`, giving:
 *  - `infer`:  the shape and dtype rule (throws naming the op and the offending shapes),
 *  - `lower`:  the ONNX node(s) it emits,
 *  - `vjp`:    its reverse-mode rule, written with other ops (so it is itself traceable and
 *              differentiable),
 *  - `kernel`: a plain-JS reference implementation (the `js` backend and the tests' oracle).
 * Composite ops (stack, attention, ...) are ordinary functions over these.
 */
import type { DType } from './dtype.js';
import type { AttrValue } from './onnx/proto.js';
import type { Shape } from './shape.js';
import type { Tensor } from './tensor.js';

/** Static description of a value: shape and dtype. */
export interface Meta {
  shape: readonly number[];
  dtype: DType;
}

/** What a JS kernel receives: numeric data (int64 widened to float64), shape and dtype. */
export interface KernelArg {
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
  shape: Shape;
  dtype: DType;
}

/** A kernel returns one numeric array per output; it is converted to the output dtype's storage. */
export type KernelOut = ArrayLike<number>;

/** Builds ONNX nodes during lowering; returns the names of the values it creates. */
export interface LowerBuilder {
  /** Emits one ONNX node; returns its output value names. */
  emit(opType: string, inputs: readonly string[], attrs?: Record<string, AttrValue>, nOutputs?: number): string[];
  /** An int64 constant (for shapes, axes, pads, ...). */
  constI64(values: readonly number[], dims?: readonly number[]): string;
  /** A scalar constant of `dtype`. */
  constScalar(value: number, dtype: DType): string;
  /** The empty name: an omitted optional input. */
  readonly none: string;
}

export interface VjpContext<A> {
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  attrs: A;
}

export interface OpDef<A = Record<string, never>> {
  name: string;
  /** Shape/dtype rule: metas of the outputs. */
  infer(inputs: readonly Meta[], attrs: A): Meta[];
  /** ONNX lowering: input value names in, output value names out. */
  lower(b: LowerBuilder, inputs: readonly string[], attrs: A, meta: { inputs: readonly Meta[]; outputs: readonly Meta[] }): string[];
  /**
   * Reverse-mode rule: cotangents of the outputs (null where no gradient flows) to cotangents of
   * the inputs (null for non-differentiable inputs). Absent means the op is not differentiable.
   */
  vjp?(cotangents: readonly (Tensor | null)[], ctx: VjpContext<A>): (Tensor | null)[];
  /** JS reference kernel. */
  kernel(inputs: readonly KernelArg[], attrs: A, outputs: readonly Meta[]): KernelOut[];
  /** Rough work estimate used to choose JS kernel vs ORT for eager calls (default: output elements). */
  cost?(inputs: readonly Meta[], outputs: readonly Meta[], attrs: A): number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const registry = new Map<string, OpDef<any>>();

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  if (registry.has(def.name)) throw new Error(`op '${def.name}' is declared twice`);
  registry.set(def.name, def);
  return def;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function getOp(name: string): OpDef<any> {
  const op = registry.get(name);
  if (!op) throw new Error(`unknown op '${name}'`);
  return op;
}

export function listOps(): string[] {
  return [...registry.keys()].sort();
}

/** Attribute helpers for lowerings. */
export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  str: (value: string): AttrValue => ({ kind: 'string', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
};
