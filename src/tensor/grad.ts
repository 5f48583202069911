/**
 * Reverse-mode autodiff over the traced graph. `grad` and `valueAndGrad` trace the function,
 * walk its nodes backwards applying each op's VJP rule (rules are written with ops, so the
 * backward pass is itself traced, and higher-order gradients work), and compile forward and
 * backward into one session. Inside another trace (jit, or an outer grad) they inline.
 *
 * Intermediates: `markGradTarget(name, x)` inside the function marks a traced value; the third
 * element of valueAndGrad's result holds each marked value and the gradient of the output with
 * respect to it. The hooked model uses this for attribution patching.
 */
import { isFloat } from './dtype.js';
import { flatten } from './pytree.js';
import { fmtShape, shapeEq } from './shape.js';
import { Tensor, ones, zeros } from './tensor.js';
import { activeTrace, apply1, Trace, withTrace, type Node } from './trace.js';
import { materialize } from './jit.js';

/**
 * The marks of the grad/valueAndGrad calls in progress, innermost last. Each call has its own
 * scope, so calling the same marked function twice in one jit (clean and corrupted runs) works.
 */
const targetScopes: Map<string, Tensor>[] = [];

/** Marks `x` as a gradient target named `name` of the innermost grad/valueAndGrad (a no-op outside them). */
export function markGradTarget(name: string, x: Tensor): Tensor {
  const scope = targetScopes[targetScopes.length - 1];
  const trace = activeTrace();
  if (!scope || !trace) return x;
  if (scope.has(name)) throw new Error(`markGradTarget: '${name}' is marked twice in one grad call`);
  // A value that does not depend on the traced inputs is still reported (with a zero gradient).
  const t = trace.lift(x);
  scope.set(name, t);
  return t;
}

/**
 * Cotangents of every value between `wrt` and `output`, following only nodes created after
 * `startNode` (values from before are constants, so closures over outer traced values do not
 * leak gradient: no perturbation confusion in nested grad).
 */
export function backward(trace: Trace, output: Tensor, seed: Tensor, startNode: number): Map<Tensor, Tensor> {
  // Nodes the output depends on, restricted to those after startNode.
  const relevant = new Set<Node>();
  const stack: Tensor[] = [output];
  while (stack.length) {
    const t = stack.pop()!;
    const n = t._node;
    if (!n || n.id <= startNode || relevant.has(n)) continue;
    relevant.add(n);
    for (const i of n.inputs) stack.push(i);
  }
  const cot = new Map<Tensor, Tensor>();
  cot.set(output, seed);
  const nodes = trace.nodes.filter((n) => relevant.has(n)).sort((a, b) => b.id - a.id);
  for (const n of nodes) {
    const gs = n.outputs.map((o) => cot.get(o) ?? null);
    if (gs.every((g) => g === null)) continue;
    if (!n.op.vjp) {
      if (n.inputs.some((i) => isFloat(i.dtype)))
        throw new Error(`grad: op '${n.op.name}' has no gradient rule, and a gradient flows through it`);
      continue;
    }
    const gin = n.op.vjp(gs, { inputs: n.inputs, outputs: n.outputs, attrs: n.attrs });
    n.inputs.forEach((inp, i) => {
      const g = gin[i];
      if (!g || !isFloat(inp.dtype)) return;
      if (!shapeEq(g.shape, inp.shape))
        throw new Error(`internal: VJP of '${n.op.name}' gave shape ${fmtShape(g.shape)} for input ${i} of shape ${fmtShape(inp.shape)}`);
      const prev = cot.get(inp);
      cot.set(inp, prev ? prev.add(g) : g);
    });
  }
  return cot;
}

export interface GradOptions {
  /** Which positional arguments to differentiate (default 0). An array returns a gradient per argument. */
  argnums?: number | number[];
  /** The function returns [output, aux]; aux is returned alongside, not differentiated. */
  hasAux?: boolean;
}

/** Marked intermediates: value and gradient of the output with respect to it, by name. */
export type GradTargets = Record<string, { value: Tensor; grad: Tensor }>;

/**
 * Returns a function computing `[value, grads, targets]`: the scalar output of `fn` (with its aux
 * when `hasAux`), the gradient with respect to the `argnums` argument(s) (same pytree structure as
 * the argument), and the marked intermediates.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function valueAndGrad(fn: (...args: any[]) => any, options: GradOptions = {}) {
  const argnums = options.argnums ?? 0;
  const nums = typeof argnums === 'number' ? [argnums] : argnums;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return (...args: any[]): [any, any, GradTargets] => {
    for (const k of nums)
      if (!Number.isInteger(k) || k < 0 || k >= args.length)
        throw new Error(`grad: argnums ${k} is out of range for ${args.length} arguments`);
    const outer = activeTrace();
    const trace = outer ?? new Trace();
    const argFeeds: Tensor[] = [];
    const startNode = lastNodeId(trace);
    // Arguments being differentiated get a fresh identity inside the trace, so only paths
    // through this call count.
    const run = (): [unknown, unknown, Record<string, { value: Tensor; grad: Tensor }>] => {
      const wrt: Tensor[][] = [];
      const callArgs = args.map((a, i) => {
        const { leaves, rebuild } = flatten(a);
        const differentiate = nums.includes(i);
        const mine: Tensor[] = [];
        const traced = leaves.map((l) => {
          if (!(l instanceof Tensor)) return l;
          let t: Tensor;
          if (outer) t = differentiate ? apply1('identity', [trace.lift(l)]) : l;
          else {
            if (l.isTracer) throw new Error('grad: got a tracer from a finished trace as an argument');
            argFeeds.push(l);
            t = trace.argument({ shape: [...l.shape], dtype: l.dtype });
          }
          if (differentiate) {
            if (!isFloat(l.dtype)) throw new Error(`grad: cannot differentiate with respect to a ${l.dtype} tensor (argument ${i})`);
            mine.push(t);
          }
          return t;
        });
        if (differentiate) wrt[i] = mine;
        return rebuild(traced);
      });
      const scope = new Map<string, Tensor>();
      targetScopes.push(scope);
      let result: unknown;
      try {
        result = fn(...callArgs);
      } finally {
        targetScopes.pop();
      }
      const out = options.hasAux ? (result as unknown[])[0] : result;
      if (options.hasAux && !Array.isArray(result)) throw new Error('grad: hasAux expects the function to return [output, aux]');
      if (!(out instanceof Tensor)) throw new Error('grad: the function must return a Tensor (or [Tensor, aux] with hasAux)');
      if (out.size !== 1 || !isFloat(out.dtype))
        throw new Error(
          `grad: the function must return a float scalar, got ${out.dtype}${fmtShape(out.shape)}; reduce it (e.g. .sum()) first`,
        );
      const outT = trace.lift(out);
      // The seed is lifted so the backward pass is traced from its first op (a plain tensor would run
      // the first VJPs eagerly and enter the graph as a large input).
      const cot = backward(trace, outT, trace.lift(ones(out.shape, out.dtype)), startNode);
      const zerosFor = (t: Tensor): Tensor => cot.get(t) ?? trace.lift(zeros(t.shape, t.dtype));
      const grads = nums.map((i) => {
        // Tensor leaves get their gradients; other leaves (names, flags) come back unchanged.
        const { leaves, rebuild } = flatten(args[i]);
        let k = 0;
        return rebuild(leaves.map((l) => (l instanceof Tensor ? zerosFor(wrt[i]![k++]!) : l)));
      });
      const targets: Record<string, { value: Tensor; grad: Tensor }> = {};
      for (const [name, t] of scope) targets[name] = { value: t, grad: zerosFor(t) };
      return [result, typeof argnums === 'number' ? grads[0] : grads, targets];
    };
    if (outer) return run() as [unknown, unknown, GradTargets];
    let res: unknown;
    try {
      res = withTrace(trace, run);
    } finally {
      trace.active = false;
    }
    return materialize(trace, argFeeds, res) as [unknown, unknown, GradTargets];
  };
}

/** Gradient of a scalar function with respect to argument `argnums` (default 0), like jax.grad. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function grad(fn: (...args: any[]) => any, options: GradOptions = {}) {
  const vg = valueAndGrad(fn, options);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return (...args: any[]): any => {
    const [value, g] = vg(...args);
    return options.hasAux ? [g, (value as unknown[])[1]] : g;
  };
}

function lastNodeId(trace: Trace): number {
  const n = trace.nodes[trace.nodes.length - 1];
  return n ? n.id : 0;
}
