/**
 * Engine benchmark: the work of bench/engine_torch.py, in glassbox, with glassbox/PyTorch ratios.
 * Run through `npm run bench:engine` (bench/engine.sh runs PyTorch first and passes its JSON).
 * Usage: node --import tsx bench/engine.ts [torch.json]   (without the JSON: glassbox times only)
 * Writes the tables as JSON to bench/out/engine.json. See bench/README.md.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { eagerConfig, jit, mallocConfig, mallocTuning, ones, ortConfig, randn, valueAndGrad, zeros, type Tensor } from '../src/index.js';
import { Trace, withTrace } from '../src/tensor/trace.js';
import { prepare } from '../src/tensor/onnx/lower.js';

// BENCH_MALLOC=default leaves glibc's allocator as Node starts it (the "before" of bench/README.md).
if (process.env.BENCH_MALLOC === 'default') mallocConfig.tune = false;
// BENCH_THREADS=n gives every ORT session n intra-op threads (default: one per physical core).
if (process.env.BENCH_THREADS) ortConfig.intraOpNumThreads = Number(process.env.BENCH_THREADS);

const D = 768;
const H = 12;
const DH = 64;
const DMLP = 3072;
const S = 128;
const VOCAB = 50257;

/**
 * Median wall time of one call of `fn` in milliseconds, after `warmup` untimed calls. Each of the
 * `reps` samples times `inner` back-to-back calls (for microsecond-scale calls; bench/engine_torch.py
 * times the same way).
 */
function medianMs(fn: () => unknown, reps: number, warmup = 3, inner = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    for (let j = 0; j < inner; j++) fn();
    times.push((performance.now() - t) / inner);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

type BlockParams = Record<
  'ln1_w' | 'ln1_b' | 'w_qkv' | 'b_qkv' | 'w_o' | 'b_o' | 'ln2_w' | 'ln2_b' | 'w_in' | 'b_in' | 'w_out' | 'b_out',
  Tensor
>;

let seedCounter = 0;
const param = (shape: number[], scale = 0.02): Tensor => randn(shape, { seed: seedCounter++ }).mul(scale);

function blockParams(): BlockParams {
  return {
    ln1_w: ones([D]),
    ln1_b: zeros([D]),
    w_qkv: param([D, 3 * D]),
    b_qkv: param([3 * D]),
    w_o: param([D, D]),
    b_o: param([D]),
    ln2_w: ones([D]),
    ln2_b: zeros([D]),
    w_in: param([D, DMLP]),
    b_in: param([DMLP]),
    w_out: param([DMLP, D]),
    b_out: param([D]),
  };
}

const causal = ones([S, S]).tril().gt(0); // [S, S] bool, true where attention is allowed

/** A GPT-2 block: x [batch, pos, d_model] -> [batch, pos, d_model]. */
function block(p: BlockParams, x: Tensor): Tensor {
  const [b, s] = x.shape as [number, number, number];
  const h = x.layerNorm(p.ln1_w, p.ln1_b, 1e-5);
  const qkv = h.matmul(p.w_qkv).add(p.b_qkv); // [b, s, 3d]
  const heads = (i: number): Tensor =>
    qkv
      .slice([null, null, { start: i * D, end: (i + 1) * D }])
      .reshape([b, s, H, DH])
      .permute([0, 2, 1, 3]); // [b, h, s, dh]
  const [q, k, v] = [heads(0), heads(1), heads(2)];
  const scores = q.matmul(k.transpose(-1, -2)).mul(1 / Math.sqrt(DH)); // [b, h, s, s]
  const pattern = scores.where(causal, -1e4).softmax(-1);
  const z = pattern.matmul(v).permute([0, 2, 1, 3]).reshape([b, s, D]);
  const x2 = x.add(z.matmul(p.w_o).add(p.b_o));
  const h2 = x2.layerNorm(p.ln2_w, p.ln2_b, 1e-5);
  const mlp = h2.matmul(p.w_in).add(p.b_in).gelu('tanh').matmul(p.w_out).add(p.b_out);
  return x2.add(mlp);
}

interface Row {
  case: string;
  glassboxMs: number;
  torchMs: number | null;
  /** glassbox time / PyTorch time: below 1 means glassbox is faster. */
  ratio: number | null;
  note?: string;
}

interface Crossover {
  op: string;
  size: string;
  /** The op's eager work measure (output elements; m*n*k for matmul), compared with eagerConfig.jsThreshold. */
  work: number;
  jsUs: number;
  ortUs: number;
}

/**
 * Where ORT starts to win for one op: the geometric mean of the largest work the JS kernel wins at
 * and the smallest work ORT wins at (from which on ORT keeps winning). Null if one side always wins.
 */
function crossoverWork(rows: readonly Crossover[]): number | null {
  const sorted = [...rows].sort((a, b) => a.work - b.work);
  let first = sorted.length;
  while (first > 0 && sorted[first - 1]!.ortUs < sorted[first - 1]!.jsUs) first--;
  if (first === 0 || first === sorted.length) return null;
  return Math.sqrt(sorted[first - 1]!.work * sorted[first]!.work);
}

function main(): void {
  const torchPath = process.argv[2];
  const torch = torchPath
    ? (JSON.parse(readFileSync(torchPath, 'utf8')) as Record<string, { ms: number; gflops?: number; by?: string }>)
    : {};
  const torchInfo = torch as unknown as Record<string, unknown>;
  const rows: Row[] = [];
  const add = (name: string, ms: number, note?: string, torchName = name): void => {
    const ref = torch[torchName]?.ms ?? null;
    // With two PyTorch builds measured (bench/torch_best.py), say which one was the faster here.
    const by = torch[torchName]?.by;
    const withBy = by && String(torchInfo.torch).includes('/') ? [note, `PyTorch ${by}`].filter(Boolean).join('; ') : note;
    rows.push({ case: name, glassboxMs: ms, torchMs: ref, ratio: ref ? ms / ref : null, note: withBy });
    console.error(`  ${name}: ${ms.toFixed(3)} ms`);
  };

  // 1. matmul GFLOP/s (eager: one-node ORT session)
  for (const [m, k, n] of [
    [128, 768, 3072],
    [128, 3072, 768],
    [768, 3072, 768],
  ] as const) {
    const a = randn([m, k], { seed: 1 });
    const b = randn([k, n], { seed: 2 });
    const ms = medianMs(() => a.matmul(b), 30);
    const gf = (2 * m * k * n) / ms / 1e6;
    const shape = `${m}x${k}x${n}`;
    const ref = torch[`matmul_${shape}`]?.gflops;
    const ortFeed = torch[`ort_matmul_feed_${shape}`]?.gflops;
    const ortInit = torch[`ort_matmul_init_${shape}`]?.gflops;
    // The peak: the best of PyTorch and Python's onnxruntime (weight fed, or an initializer) measured in this run.
    const peak = Math.max(ref ?? 0, ortFeed ?? 0, ortInit ?? 0);
    const refs = [
      ref ? `PyTorch ${ref.toFixed(1)}` : '',
      ortFeed && ortInit ? `ORT-Python ${ortFeed.toFixed(1)} fed / ${ortInit.toFixed(1)} initializer` : '',
    ].filter(Boolean);
    add(
      `matmul_${shape}`,
      ms,
      `${gf.toFixed(1)} GFLOP/s${peak ? ` vs ${refs.join(', ')}: ${((100 * gf) / peak).toFixed(0)}% of the best` : ''}`,
    );
  }

  // 2. one block, jitted forward and forward+backward (gradients w.r.t. all 12 weights)
  const p = blockParams();
  const x = randn([1, S, D], { seed: 3 });
  const fwd = jit(block);
  add(
    'block_fwd',
    medianMs(() => fwd(p, x), 30),
    'jit',
  );
  const fwdReuse = jit(block, { reuseTrace: true });
  add(
    'block_fwd_reuse',
    medianMs(() => fwdReuse(p, x), 30),
    'jit with reuseTrace (the trace kept, not rebuilt per call)',
    'block_fwd',
  );
  const fwdBwd = jit((q: BlockParams, xs: Tensor) => valueAndGrad((pp: BlockParams) => block(pp, xs).sum())(q));
  add(
    'block_fwd_bwd',
    medianMs(() => fwdBwd(p, x), 20),
    'jit(valueAndGrad), grads of all weights',
  );

  // 3. 12 blocks + final LayerNorm + unembedding
  const blocks = Array.from({ length: 12 }, blockParams);
  const lnf = { w: ones([D]), b: zeros([D]) };
  const wU = param([D, VOCAB]);
  const stackFn = (bs: BlockParams[], xs: Tensor): Tensor => {
    let h = xs;
    for (const bp of bs) h = block(bp, h);
    return h.layerNorm(lnf.w, lnf.b, 1e-5).matmul(wU); // [1, S, vocab]
  };
  const stack = jit(stackFn);
  const stackMs = medianMs(() => stack(blocks, x), 7, 2);
  // jit re-traces every call and looks the session up by structure; what that costs here:
  const traceMs = medianMs(
    () => {
      const tr = new Trace();
      const xs = tr.argument({ shape: [1, S, D], dtype: 'float32' });
      const out = withTrace(tr, () => stackFn(blocks, xs));
      tr.active = false;
      return prepare({ nodes: tr.nodes, inputs: tr.inputs.map((i) => i.tracer), feeds: [], outputs: [out], constants: tr.constants }).key;
    },
    7,
    2,
  );
  add('stack12_unembed_fwd', stackMs, `jit; of which trace + cache key ${traceMs.toFixed(1)} ms`);
  const stackReuse = jit(stackFn, { reuseTrace: true });
  add(
    'stack12_unembed_fwd_reuse',
    medianMs(() => stackReuse(blocks, x), 7, 2),
    'jit with reuseTrace (no trace, no cache key per call)',
    'stack12_unembed_fwd',
  );

  // 4. per-op eager overhead (reported in microseconds below)
  const s16a = randn([16], { seed: 4 });
  const s16b = randn([16], { seed: 5 });
  const m256a = randn([256, 256], { seed: 6 });
  const m256b = randn([256, 256], { seed: 7 });
  const us = (ms: number): string => `${(1000 * ms).toFixed(1)} us`;
  const eager16 = medianMs(() => s16a.add(s16b), 200, 200, 50);
  add('eager_add_16', eager16, `JS kernel path, ${us(eager16)}/call`);
  const eager256 = medianMs(() => m256a.add(m256b), 100, 50, 10);
  add('eager_add_256x256', eager256, `one-node ORT session path, ${us(eager256)}/call`);
  const jitAdd = jit((a: Tensor, b: Tensor) => a.add(b));
  const jit16 = medianMs(() => jitAdd(s16a, s16b), 100, 50, 10);
  add('jit_add_16', jit16, `fixed cost of a jitted call (trace, key, ORT run), ${us(jit16)}/call; vs torch eager add [16]`, 'eager_add_16');
  const jitAddReuse = jit((a: Tensor, b: Tensor) => a.add(b), { reuseTrace: true });
  const jit16Reuse = medianMs(() => jitAddReuse(s16a, s16b), 100, 50, 10);
  add('jit_add_16_reuse', jit16Reuse, `the same with reuseTrace (kept trace and key), ${us(jit16Reuse)}/call`, 'eager_add_16');

  // 5. eager crossover: JS kernel vs ORT session, per op and size
  const crossover: Crossover[] = [];
  const saved = eagerConfig.jsThreshold;
  const time = (fn: () => unknown, th: number): number => {
    eagerConfig.jsThreshold = th;
    return 1000 * medianMs(fn, 60, 30, 5);
  };
  // Each case is measured twice, the first time as warm-up (V8 optimises the JS kernels and ORT
  // compiles the one-node sessions during it); the second measurement is the one kept.
  const measure = (op: string, size: string, work: number, fn: () => unknown): void => {
    time(fn, Infinity);
    time(fn, 0);
    crossover.push({ op, size, work, jsUs: time(fn, Infinity), ortUs: time(fn, 0) });
  };
  for (const n of [1024, 2048, 4096, 8192, 16384, 32768, 65536]) {
    const a = randn([n], { seed: 8 });
    const b = randn([n], { seed: 9 });
    measure('add', `[${n}]+[${n}]`, n, () => a.add(b));
    measure('exp', `[${n}]`, n, () => a.exp());
  }
  for (const n of [8, 12, 16, 20, 24, 32, 64]) {
    const a = randn([n, n], { seed: 10 });
    measure('matmul', `[${n},${n}]@[${n},${n}]`, n * n * n, () => a.matmul(a));
  }
  for (const n of [16, 32, 64, 128, 256]) {
    const a = randn([n, n], { seed: 11 });
    measure('sum(-1)', `[${n},${n}]`, n * n, () => a.sum(-1));
  }
  eagerConfig.jsThreshold = saved;

  // ---- report ----
  const fmt = (v: number | null, d = 3): string => (v === null ? '-' : v.toFixed(d));
  const cpu = typeof torchInfo.cpu === 'string' ? `, ${torchInfo.cpu}` : '';
  const ref = torchPath ? `PyTorch ${String(torchInfo.torch)} (${String(torchInfo.threads)} threads${cpu})` : 'no PyTorch reference';
  const ortPy = typeof torchInfo.onnxruntime === 'string' ? `; onnxruntime ${torchInfo.onnxruntime} from Python for the matmul rows` : '';
  const t = mallocTuning();
  const malloc = t?.applied
    ? 'glibc large-block thresholds set (native helper)'
    : `glibc thresholds not set: ${t?.reason ?? 'ORT not loaded'}`;
  console.log(
    `\nglassbox (intra-op threads: ${ortConfig.intraOpNumThreads || 'one per physical core'}) vs ${ref}${ortPy}; same machine, same run; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} on ${cpus().length} CPUs; ${malloc}.`,
  );
  console.log('ratio = glassbox time / PyTorch time (below 1: glassbox faster). Medians after warm-up.\n');
  console.log('| case | glassbox ms | PyTorch ms | ratio | note |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.case} | ${fmt(r.glassboxMs)} | ${fmt(r.torchMs)} | ${fmt(r.ratio, 2)} | ${r.note ?? ''} |`);

  console.log(`\nEager JS kernel vs one-node ORT session, microseconds per call (work = what eagerConfig.jsThreshold is compared with):\n`);
  console.log('| op | size | work | JS us | ORT us | faster |');
  console.log('|---|---|---|---|---|---|');
  for (const c of crossover)
    console.log(`| ${c.op} | ${c.size} | ${c.work} | ${c.jsUs.toFixed(1)} | ${c.ortUs.toFixed(1)} | ${c.jsUs <= c.ortUs ? 'JS' : 'ORT'} |`);
  const perOp: Record<string, number | null> = {};
  for (const op of [...new Set(crossover.map((c) => c.op))]) perOp[op] = crossoverWork(crossover.filter((c) => c.op === op));
  // One threshold for all ops. Picking the slower path costs (its time - the faster one's); the
  // JS path's excess grows with size while ORT's is bounded by its fixed cost, so the threshold
  // is chosen (among powers of two) to minimise the worst excess over the measured cases.
  const excess = (th: number): { max: number; total: number } => {
    let max = 0;
    let total = 0;
    for (const c of crossover) {
      const e = (c.work >= th ? c.ortUs : c.jsUs) - Math.min(c.jsUs, c.ortUs);
      max = Math.max(max, e);
      total += e;
    }
    return { max, total };
  };
  let suggested = saved;
  for (let th = 256; th <= 65536; th *= 2) if (excess(th).max < excess(suggested).max) suggested = th;
  const fmtEx = (th: number): string => `worst excess ${excess(th).max.toFixed(0)} us, total ${excess(th).total.toFixed(0)} us`;
  console.log(
    `\nCrossover (work where ORT starts to win): ${Object.entries(perOp)
      .map(([op, v]) => `${op} ~${v === null ? '?' : Math.round(v)}`)
      .join(', ')}.`,
  );
  console.log(`eagerConfig.jsThreshold: current ${saved} (${fmtEx(saved)}); suggested ${suggested} (${fmtEx(suggested)}).`);

  mkdirSync(new URL('./out/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./out/engine.json', import.meta.url),
    JSON.stringify({ rows, crossover, crossoverWork: perOp, suggestedJsThreshold: suggested, jsThreshold: saved, torch }, null, 2),
  );
}

main();
