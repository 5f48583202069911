/**
 * Thread-count benchmark: the same work with 1 and with 2 (or BENCH_THREAD_COUNTS) intra-op
 * threads, interleaved round by round in one process so both see the same machine load.
 * Usage: node --import tsx bench/threads.ts [rounds]   (`npm run bench:threads`)
 *
 * 1. build the cases: three GPT-2-small matmul shapes (eager, one-node sessions) and a jitted
 *    MLP (LayerNorm, [128,768]@[768,3072], GELU, [128,3072]@[3072,768]);
 * 2. each round, for each thread count: clear the session cache, set the count, time each case
 *    (median of 9 after 3 warm-up calls), and note the load average;
 * 3. print per case and thread count the median over rounds, and the load averages seen.
 * Decides `ortConfig.intraOpNumThreads`'s default (bench/README.md, "Thread count").
 */
import { cpus, loadavg } from 'node:os';
import { clearSessionCache, jit, ones, ortConfig, randn, zeros, type Tensor } from '../src/index.js';

const rounds = Number(process.argv[2] ?? 5);
const counts = (process.env.BENCH_THREAD_COUNTS ?? '1,2').split(',').map(Number);

function medianMs(fn: () => unknown, reps = 9, warmup = 3): number {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

const x = randn([128, 768], { seed: 1 });
const w1 = randn([768, 3072], { seed: 2 }).mul(0.02);
const w2 = randn([3072, 768], { seed: 3 }).mul(0.02);
const h = randn([128, 3072], { seed: 4 });
const big = randn([768, 3072], { seed: 5 });
const mlp = jit((xs: Tensor) =>
  xs
    .layerNorm(ones([768]), zeros([768]), 1e-5)
    .matmul(w1)
    .gelu()
    .matmul(w2),
);
const cases: [string, number, () => unknown][] = [
  ['matmul [128,768]@[768,3072]', 2 * 128 * 768 * 3072, () => x.matmul(w1)],
  ['matmul [128,3072]@[3072,768]', 2 * 128 * 3072 * 768, () => h.matmul(w2)],
  ['matmul [768,3072]@[3072,768]', 2 * 768 * 3072 * 768, () => big.matmul(w2)],
  ['jit MLP [128,768] (LN, 2 matmuls, GELU)', 4 * 128 * 768 * 3072, () => mlp(x)],
];

const times = new Map<string, number[]>();
const loads: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (const n of counts) {
    clearSessionCache();
    ortConfig.intraOpNumThreads = n;
    loads.push(loadavg()[0]!);
    for (const [name, , fn] of cases) {
      const key = `${name}|${n}`;
      if (!times.has(key)) times.set(key, []);
      times.get(key)!.push(medianMs(fn));
    }
  }
}
const med = (a: number[]): number => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
console.log(
  `\nIntra-op threads, ${rounds} interleaved rounds on ${cpus().length} CPUs; load average (1 min) during the rounds ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}.\n`,
);
console.log(`| case | ${counts.map((n) => `${n} thread${n > 1 ? 's' : ''} ms (GFLOP/s)`).join(' | ')} |`);
console.log(`|---|${counts.map(() => '---').join('|')}|`);
for (const [name, flop] of cases)
  console.log(
    `| ${name} | ${counts
      .map((n) => {
        const m = med(times.get(`${name}|${n}`)!);
        return `${m.toFixed(2)} (${(flop / m / 1e6).toFixed(0)})`;
      })
      .join(' | ')} |`,
  );
