/**
 * The JS reference backend: interprets a graph node by node with each op's JS kernel. Slow, but
 * simple enough to trust; the tests use it as the oracle for the ONNX lowerings.
 */
import type { TypedArray } from '../dtype.js';
import { runKernel, type Graph } from '../trace.js';
import type { Tensor } from '../tensor.js';

export function runGraphJs(graph: Graph): TypedArray[] {
  const values = new Map<Tensor, Tensor>();
  graph.inputs.forEach((t, i) => values.set(t, graph.feeds[i]!));
  for (const [tracer, c] of graph.constants) values.set(tracer, c);
  const resolve = (t: Tensor): Tensor => {
    const v = values.get(t);
    if (!v) throw new Error('internal: graph value used before it was computed');
    return v;
  };
  for (const n of graph.nodes) {
    const ins = n.inputs.map(resolve);
    const outs = runKernel(
      n.op,
      ins,
      n.attrs,
      n.outputs.map((o) => ({ shape: [...o.shape], dtype: o.dtype })),
    );
    n.outputs.forEach((o, i) => values.set(o, outs[i]!));
  }
  return graph.outputs.map((o) => resolve(o)._storage());
}
