/**
 * The engine in one page: build tensors, jit a function, take gradients, and fit a tiny MLP to
 * XOR with plain gradient descent. Run: npm run demo
 */
import { jit, ortStats, randn, tensor, valueAndGrad, type Tensor } from '../src/index.js';

// Eager ops run at once (small ones on JS kernels, large ones through ONNX Runtime).
const x = tensor([
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
]);
const y = tensor([[0], [1], [1], [0]]);
console.log('x @ x^T =', x.matmul(x.transpose()).toArray());

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor };

// A plain function over a params object (a pytree), like JAX.
function loss(p: Params, xs: Tensor, ys: Tensor): Tensor {
  const h = xs.matmul(p.w1).add(p.b1).tanh(); // [4, 8]
  const out = h.matmul(p.w2).add(p.b2).sigmoid(); // [4, 1]
  return out.sub(ys).square().mean();
}

// valueAndGrad traces loss, runs each op's VJP rule backwards, and jit compiles forward and
// backward into one ONNX Runtime session; later steps reuse it.
const step = jit((p: Params, xs: Tensor, ys: Tensor) => {
  const [value, g] = valueAndGrad(loss)(p, xs, ys);
  const lr = 2.0;
  const next = Object.fromEntries(Object.entries(p).map(([k, w]) => [k, w.sub(g[k].mul(lr))])) as Params;
  return { value, next };
});

let params: Params = {
  w1: randn([2, 8], { seed: 1 }),
  b1: randn([8], { seed: 2 }).mul(0.1),
  w2: randn([8, 1], { seed: 3 }),
  b2: randn([1], { seed: 4 }).mul(0.1),
};
for (let i = 0; i <= 500; i++) {
  const { value, next } = step(params, x, y);
  params = next;
  if (i % 100 === 0) console.log(`step ${i}: loss ${value.item().toFixed(5)}`);
}
const pred = x.matmul(params.w1).add(params.b1).tanh().matmul(params.w2).add(params.b2).sigmoid();
console.log('predictions for XOR:', (pred.toArray() as number[][]).map(([v]) => v!.toFixed(3)).join(' '));
console.log(
  `compiled sessions: ${ortStats.compiles} (the training step compiled once: ${step.stats.compiles}), traced calls: ${step.stats.traces}`,
);
