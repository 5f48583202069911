/**
 * Optimizers against PyTorch: the expected parameters below are torch.optim's results for the same
 * problem (5 steps on loss = sum((p * a - b)^2), float64), computed once with torch 2.13:
 * see the script in the comment at the end of this file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jit, tensor, valueAndGrad, type Tensor } from '../src/tensor/index.js';
import { adam, adamw, clipByGlobalNorm, sgd, type Optimizer } from '../src/train/optim.js';
import { constant, cosineDecay, linearDecay, linearWarmup } from '../src/train/schedule.js';
import { mapLeaves, namedLeaves, fromNamedLeaves } from '../src/train/tree.js';

const TORCH: Record<string, number[]> = {
  sgd: [0.46307453952, -0.7091059712, 1.7059402994000001, 0.21901677568],
  sgd_momentum_wd: [0.39302169624593597, -0.281788678967648, 1.1823546752040959, 0.33382437800070075],
  sgd_nesterov: [0.38585743281684476, -0.321866902796288, 1.030644579923006, 0.2653948236562432],
  adam: [0.1829049777062743, -0.5278144475005082, 1.5008022356675992, 0.2919484724217417],
  adam_wd: [0.1868114723676745, -0.5384018349820676, 1.5017629776703603, 0.26498230369991094],
  adamw: [0.1730476492505743, -0.3804723958974807, 1.0967234654701348, 0.26932941821404655],
  adam_clip: [0.20612221152730367, -0.5132678885402465, 1.4981737418668026, 0.2567957572045033],
  sgd_clip: [0.48015778295178996, -0.82465333713695, 1.8465057943668453, 0.18576841506921987],
};

const a = tensor([1, -2, 0.5, 3], [4], 'float64');
const b = tensor([0.3, 1, -2, 0.7], [4], 'float64');
const lossFn = (p: { w: Tensor }): Tensor => p.w.mul(a).sub(b).square().sum();

function run(opt: Optimizer, lr: number, options: { clip?: number; jitted?: boolean } = {}): number[] {
  let params = { w: tensor([0.5, -1, 2, 0.1], [4], 'float64') };
  let state = opt.init(params);
  const step = (p: typeof params, s: typeof state, lrT: Tensor) => {
    const [, g] = valueAndGrad(lossFn)(p) as unknown as [Tensor, typeof params];
    const clipped = options.clip ? clipByGlobalNorm(g, options.clip).grads : g;
    const next = opt.update(p, clipped, s, lrT);
    return next;
  };
  const f = options.jitted ? jit(step) : step;
  for (let i = 0; i < 5; i++) {
    const out = f(params, state, tensor([lr], [], 'float64'));
    params = out.params;
    state = out.state;
  }
  return Array.from(params.w.dataSync() as Float64Array);
}

function near(actual: number[], expected: number[], what: string, tol = 1e-9): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((x, i) => assert.ok(Math.abs(x - expected[i]!) <= tol, `${what}[${i}]: got ${x}, torch gives ${expected[i]}`));
}

const cases: [string, () => Optimizer, number, number?][] = [
  ['sgd', () => sgd(), 0.02],
  ['sgd_momentum_wd', () => sgd({ momentum: 0.9, weightDecay: 0.1 }), 0.02],
  ['sgd_nesterov', () => sgd({ momentum: 0.9, nesterov: true }), 0.02],
  ['adam', () => adam(), 0.1],
  ['adam_wd', () => adam({ weightDecay: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6 }), 0.1],
  ['adamw', () => adamw({ weightDecay: 0.5 }), 0.1],
  ['adam_clip', () => adam(), 0.1, 1.0],
  ['sgd_clip', () => sgd(), 0.05, 1.0],
];

for (const [name, make, lr, clip] of cases) {
  test(`${name} matches torch.optim (eager and jit)`, () => {
    near(run(make(), lr, { clip }), TORCH[name]!, `${name} eager`);
    near(run(make(), lr, { clip, jitted: true }), TORCH[name]!, `${name} jit`);
  });
}

test('the step count lives in the state and the learning rate is an input: one compile for a schedule', () => {
  const opt = adam();
  let params = { w: tensor([1, 2], [2]) };
  let state = opt.init(params);
  const f = jit((p: typeof params, s: typeof state, lr: Tensor) => opt.update(p, { w: p.w }, s, lr));
  for (let i = 0; i < 4; i++) ({ params, state } = f(params, state, tensor([0.1 / (i + 1)], [])));
  assert.equal(state.step.item(), 4);
  assert.equal(f.stats.compiles, 1);
});

test('decay masks choose which parameters decay', () => {
  const opt = adamw({ weightDecay: 0.5, decayMask: (path) => path !== 'bias' });
  const params = { weight: tensor([[1, 1]], [1, 2]), bias: tensor([1], [1]) };
  const zero = mapLeaves<typeof params>([params], ([p]) => p!.mul(0));
  const { params: next } = opt.update(params, zero, opt.init(params), 0.1);
  // Zero gradient: Adam's step is 0, only decay moves the weight: 1 * (1 - 0.1 * 0.5).
  assert.deepEqual(Array.from(next.weight.dataSync() as Float32Array), [0.949999988079071, 0.949999988079071]);
  assert.deepEqual(Array.from(next.bias.dataSync() as Float32Array), [1]);
});

test('clipByGlobalNorm scales all leaves together and reports the norm before clipping', () => {
  const g = { x: tensor([3, 0], [2]), y: [tensor([4], [1])] };
  const { grads, norm } = clipByGlobalNorm(g, 1);
  assert.ok(Math.abs((norm.item() as number) - 5) < 1e-6);
  assert.ok(Math.abs((grads.x.dataSync()[0] as number) - 0.6) < 1e-6);
  assert.ok(Math.abs((grads.y[0]!.dataSync()[0] as number) - 0.8) < 1e-6);
  const small = clipByGlobalNorm(g, 10).grads; // under the cap: unchanged
  assert.ok(Math.abs((small.x.dataSync()[0] as number) - 3) < 1e-5);
});

test('schedules: warm-up, cosine and linear decay hit their end points', () => {
  assert.equal(constant(0.3)(100), 0.3);
  const w = linearWarmup(1, 4);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map(w), [0.25, 0.5, 0.75, 1, 1, 1]);
  const c = cosineDecay({ lr: 1, totalSteps: 12, warmupSteps: 2, finalLr: 0.1 });
  assert.deepEqual([c(0), c(1)], [0.5, 1]);
  assert.equal(c(2), 1);
  assert.ok(Math.abs(c(11) - 0.1) < 1e-12);
  assert.ok(Math.abs(c(2 + 4.5) - 0.55) < 1e-12, 'half-way through the decay is the midpoint');
  const l = linearDecay({ lr: 2, totalSteps: 11 });
  assert.deepEqual([l(0), l(5), l(10)], [2, 1, 0]);
  assert.throws(() => cosineDecay({ lr: 1, totalSteps: 2, warmupSteps: 2 }), /must exceed warmupSteps/);
  assert.throws(() => constant(NaN), /finite number/);
});

test('named leaves round-trip a nested parameter tree and report missing or mis-shaped tensors', () => {
  const tree = { embed: { W_E: tensor([1, 2], [1, 2]) }, blocks: [{ w: tensor([3], [1]) }, { w: tensor([4], [1]) }] };
  const named = namedLeaves(tree);
  assert.deepEqual(
    named.map(([k]) => k),
    ['embed.W_E', 'blocks.0.w', 'blocks.1.w'],
  );
  const back = fromNamedLeaves(tree, new Map(named), 'x.safetensors');
  assert.deepEqual(Array.from(back.blocks[1]!.w.dataSync() as Float32Array), [4]);
  assert.throws(() => fromNamedLeaves(tree, new Map(named.slice(1)), 'x.safetensors'), /x.safetensors: tensor 'embed.W_E' is missing/);
  const wrong = new Map(named);
  wrong.set('blocks.0.w', tensor([1, 2], [2]));
  assert.throws(() => fromNamedLeaves(tree, wrong, 'x.safetensors'), /'blocks.0.w' has shape \[2\], expected \[1\]/);
});

/*
Reference script (torch 2.13):
  a = [1, -2, 0.5, 3]; b = [0.3, 1, -2, 0.7]; p0 = [0.5, -1, 2, 0.1] (float64)
  5 x { zero_grad; ((p * a - b) ** 2).sum().backward(); [clip_grad_norm_(p, clip)]; opt.step() }
  with SGD(lr=0.02), SGD(lr=0.02, momentum=0.9, weight_decay=0.1), SGD(lr=0.02, momentum=0.9, nesterov=True),
  Adam(lr=0.1), Adam(lr=0.1, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6), AdamW(lr=0.1, weight_decay=0.5),
  Adam(lr=0.1) + clip 1.0, SGD(lr=0.05) + clip 1.0.
*/
