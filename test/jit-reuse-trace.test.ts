/**
 * jit(fn, { reuseTrace: true }): a call with the argument structure of an earlier one runs the kept
 * trace; any difference in structure (shapes, dtypes, stored forms, pytree shape, primitive leaves)
 * traces afresh; results equal the re-tracing path's and the eager ones.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { jit, ortStats, type Tensor } from '../src/index.js';
import { assertClose, rnd, withBackend } from './helpers.js';

const same = (a: Tensor, b: Tensor, what: string): void => {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual(a.toArray(), b.toArray(), `${what}: values`);
};

describe('jit reuseTrace', () => {
  for (const backend of ['ort', 'js'] as const) {
    it(`${backend}: repeated calls of one structure trace once, with the re-tracing path's results`, () =>
      withBackend(backend, () => {
        const w = rnd([8, 5], 1);
        const f = (x: Tensor, p: { b: Tensor }) => x.matmul(w).add(p.b).tanh();
        const reused = jit(f, { reuseTrace: true });
        const retraced = jit(f);
        for (let i = 0; i < 4; i++) {
          const x = rnd([3, 8], 10 + i);
          const b = rnd([5], 20 + i);
          const got = reused(x, { b }) as Tensor;
          same(got, retraced(x, { b }) as Tensor, `call ${i}`);
          assertClose(got, x.matmul(w).add(b).tanh(), { what: `call ${i} vs eager` });
        }
        assert.deepEqual(reused.stats.traces, 1);
        assert.deepEqual(reused.stats.traceHits, 3);
        assert.equal(retraced.stats.traces, 4);
      }));
  }

  it('a new shape, dtype, pytree structure or primitive leaf traces afresh, and each gives its own right answer', () => {
    const f = jit(
      (x: Tensor, opts: { scale: number; extra?: Tensor }) => (opts.extra ? x.mul(opts.scale).add(opts.extra) : x.mul(opts.scale)),
      {
        reuseTrace: true,
      },
    );
    const x = rnd([4, 3], 1);
    const cases: [string, () => Tensor, () => Tensor][] = [
      ['base', () => f(x, { scale: 2 }), () => x.mul(2)],
      ['other shape', () => f(rnd([5, 3], 2), { scale: 2 }), () => rnd([5, 3], 2).mul(2)],
      ['other dtype', () => f(rnd([4, 3], 1, 'float64'), { scale: 2 }), () => rnd([4, 3], 1, 'float64').mul(2)],
      ['other primitive', () => f(x, { scale: 3 }), () => x.mul(3)],
      ['other structure', () => f(x, { scale: 2, extra: rnd([3], 4) }), () => x.mul(2).add(rnd([3], 4))],
    ];
    for (const [what, call, expected] of cases) assertClose(call(), expected(), { what });
    assert.equal(f.stats.traces, 5);
    assert.equal(f.stats.traceHits, 0);
    // Each again, now from the kept traces: the same answers.
    for (const [what, call, expected] of cases) assertClose(call(), expected(), { what: `${what}, kept trace` });
    assert.equal(f.stats.traces, 5);
    assert.equal(f.stats.traceHits, 5);
  });

  it('a transposed view and a plain tensor of the same shape are different structures (they lower differently)', () => {
    const f = jit((a: Tensor, b: Tensor) => a.matmul(b), { reuseTrace: true });
    const a = rnd([4, 256], 1);
    const view = rnd([512, 256], 2).transpose(); // [256, 512], a view of the [512, 256] array
    assert.equal(view.storage.transposedView, true);
    const plain = rnd([256, 512], 3);
    assert.equal(plain.storage.transposedView, false);
    assertClose(f(a, view), a.matmul(view), { what: 'view' });
    assertClose(f(a, plain), a.matmul(plain), { what: 'plain' });
    assertClose(f(a, view), a.matmul(view), { what: 'view again' });
    assert.equal(f.stats.traces, 2);
    assert.equal(f.stats.traceHits, 1);
  });

  it('two functions of one graph structure but different wiring keep their own feed mapping', () => {
    const first = jit((a: Tensor, b: Tensor) => a.exp().sub(b), { reuseTrace: true });
    const second = jit((a: Tensor, b: Tensor) => b.exp().sub(a), { reuseTrace: true });
    const a = rnd([6], 1);
    const b = rnd([6], 2);
    for (let i = 0; i < 3; i++) {
      assertClose(first(a, b), a.exp().sub(b), { what: `first ${i}` });
      assertClose(second(a, b), b.exp().sub(a), { what: `second ${i}` });
    }
  });

  it('what the function closes over is read at the first trace; clearTraces() reads it again', () => {
    let w = rnd([3], 1);
    const f = jit((x: Tensor) => x.add(w), { reuseTrace: true });
    const x = rnd([3], 2);
    assertClose(f(x), x.add(w));
    const old = w;
    w = rnd([3], 3);
    assertClose(f(x), x.add(old), { what: 'kept trace: the weight of its first trace' });
    f.clearTraces();
    assertClose(f(x), x.add(w), { what: 'after clearTraces' });
    assert.equal(f.stats.traces, 2);
    // Without reuseTrace every call re-traces and sees the new weight.
    const g = jit((y: Tensor) => y.add(w));
    assertClose(g(x), x.add(w));
    w = rnd([3], 4);
    assertClose(g(x), x.add(w));
  });

  it('keeps at most maxTraces traces, least recently used dropped first', () => {
    const f = jit((x: Tensor) => x.mul(2), { reuseTrace: true, maxTraces: 2 });
    const s = (n: number) => rnd([n], n);
    f(s(1));
    f(s(2));
    f(s(1)); // hit; now [2] is least recently used
    f(s(3)); // drops [2]
    f(s(1)); // hit
    f(s(2)); // traced again
    assert.equal(f.stats.traces, 4);
    assert.equal(f.stats.traceHits, 2);
  });

  it('a kept trace reuses its compiled session: no compile after the first call', () => {
    const f = jit((x: Tensor) => x.mul(3).sin(), { reuseTrace: true });
    const x = rnd([7], 1);
    f(x);
    const compiles = ortStats.compiles;
    for (let i = 0; i < 5; i++) assertClose(f(rnd([7], i)), rnd([7], i).mul(3).sin());
    assert.equal(ortStats.compiles, compiles);
    assert.equal(f.stats.compiles, 1);
  });

  it('refuses argument leaves it cannot compare, and a bad maxTraces, naming them', () => {
    const f = jit((x: Tensor, g: (t: Tensor) => Tensor) => g(x), { reuseTrace: true });
    assert.throws(() => f(rnd([2], 1), (t: Tensor) => t), /jit\(reuseTrace\): the argument at \[1\] is a function; .*drop reuseTrace/);
    const h = jit((x: Tensor, o: { d: Date }) => x.add(o.d.getTime() % 2), { reuseTrace: true });
    assert.throws(() => h(rnd([2], 1), { d: new Date(0) }), /the argument at \[1\]\.d is a Date/);
    assert.throws(() => jit((x: Tensor) => x, { maxTraces: 0 }), /maxTraces must be a positive integer, got 0/);
  });
});
