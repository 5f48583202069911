/**
 * Engine benchmark: the work of bench/engine_torch.py, in glassbox, with glassbox/PyTorch ratios.
 * Run through `npm run bench:engine` (bench/engine.sh runs PyTorch first and passes its JSON).
 * Usage: node --import tsx bench/engine.ts [torch.json]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { eagerConfig, jit, ones, randn, valueAndGrad, zeros, type Tensor } from '../src/index.js';

const D = 768;
const H = 12;
const DH = 64;
const DMLP = 3072;
const S = 128;
const VOCAB = 50257;

function medianMs(fn: () => unknown, reps: number, warmup = 3): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
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
  ratio: number | null;
  note?: string;
}

function main(): void {
  const torchPath = process.argv[2];
  const torch = torchPath ? (JSON.parse(readFileSync(torchPath, 'utf8')) as Record<string, { ms: number; gflops?: number }>) : {};
  const rows: Row[] = [];
  const add = (name: string, ms: number, note?: string): void => {
    const ref = torch[name]?.ms ?? null;
    rows.push({ case: name, glassboxMs: ms, torchMs: ref, ratio: ref ? ms / ref : null, note });
  };

  // 1. matmul GFLOP/s (eager: one-node ORT session)
  for (const [m, k, n] of [
    [128, 768, 3072],
    [128, 3072, 768],
  ] as const) {
    const a = randn([m, k], { seed: 1 });
    const b = randn([k, n], { seed: 2 });
    const ms = medianMs(() => a.matmul(b), 30);
    const gf = (2 * m * k * n) / ms / 1e6;
    const ref = torch[`matmul_${m}x${k}x${n}`]?.gflops;
    add(`matmul_${m}x${k}x${n}`, ms, `${gf.toFixed(1)} GFLOP/s${ref ? ` = ${((100 * gf) / ref).toFixed(0)}% of PyTorch` : ''}`);
  }

  // 2. one block, jitted forward and forward+backward
  const p = blockParams();
  const x = randn([1, S, D], { seed: 3 });
  const fwd = jit(block);
  add(
    'block_fwd',
    medianMs(() => fwd(p, x), 30),
  );
  const fwdBwd = jit((q: BlockParams, xs: Tensor) => valueAndGrad((pp: BlockParams) => block(pp, xs).sum())(q));
  add(
    'block_fwd_bwd',
    medianMs(() => fwdBwd(p, x), 20),
  );

  // 3. 12 blocks + final LayerNorm + unembedding
  const blocks = Array.from({ length: 12 }, blockParams);
  const lnf = { w: ones([D]), b: zeros([D]) };
  const wU = param([D, VOCAB]);
  const stack = jit((bs: BlockParams[], xs: Tensor) => {
    let h = xs;
    for (const bp of bs) h = block(bp, h);
    return h.layerNorm(lnf.w, lnf.b, 1e-5).matmul(wU); // [1, S, vocab]
  });
  add(
    'stack12_unembed_fwd',
    medianMs(() => stack(blocks, x), 5, 2),
  );

  // 4. per-op eager overhead
  const s16a = randn([16], { seed: 4 });
  const s16b = randn([16], { seed: 5 });
  const m256a = randn([256, 256], { seed: 6 });
  const m256b = randn([256, 256], { seed: 7 });
  add(
    'eager_add_16',
    medianMs(() => s16a.add(s16b), 2000, 100),
    'JS kernel path',
  );
  add(
    'eager_add_256x256',
    medianMs(() => m256a.add(m256b), 500, 50),
    'one-node ORT session path',
  );

  // 5. eager crossover: JS kernel vs ORT session, per op and size
  const crossover: { op: string; size: string; jsUs: number; ortUs: number; work: number }[] = [];
  const saved = eagerConfig.jsThreshold;
  const time = (fn: () => unknown, th: number): number => {
    eagerConfig.jsThreshold = th;
    return 1000 * medianMs(fn, 200, 20);
  };
  for (const n of [256, 1024, 2048, 4096, 16384, 65536]) {
    const a = randn([n], { seed: 8 });
    const b = randn([n], { seed: 9 });
    crossover.push({ op: 'add', size: `[${n}]`, jsUs: time(() => a.add(b), Infinity), ortUs: time(() => a.add(b), 0), work: n });
  }
  for (const n of [4, 8, 12, 16, 24, 32, 64]) {
    const a = randn([n, n], { seed: 10 });
    crossover.push({
      op: 'matmul',
      size: `[${n},${n}]@[${n},${n}]`,
      jsUs: time(() => a.matmul(a), Infinity),
      ortUs: time(() => a.matmul(a), 0),
      work: n * n * n,
    });
  }
  eagerConfig.jsThreshold = saved;

  const fmt = (v: number | null, d = 3): string => (v === null ? '-' : v.toFixed(d));
  console.log('\nglassbox vs PyTorch (same machine, same run; ratio = glassbox time / PyTorch time)\n');
  console.log('| case | glassbox ms | PyTorch ms | ratio | note |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.case} | ${fmt(r.glassboxMs)} | ${fmt(r.torchMs)} | ${fmt(r.ratio, 2)} | ${r.note ?? ''} |`);
  console.log('\nEager JS kernel vs one-node ORT session (microseconds per op):\n');
  console.log('| op | size | work | JS us | ORT us | faster |');
  console.log('|---|---|---|---|---|---|');
  for (const c of crossover)
    console.log(`| ${c.op} | ${c.size} | ${c.work} | ${c.jsUs.toFixed(1)} | ${c.ortUs.toFixed(1)} | ${c.jsUs <= c.ortUs ? 'JS' : 'ORT'} |`);
  const firstOrt = (op: string): number | undefined => crossover.find((c) => c.op === op && c.ortUs < c.jsUs)?.work;
  console.log(
    `\nORT wins from work ~${firstOrt('add') ?? '>65536'} (add) and ~${firstOrt('matmul') ?? '>262144'} (matmul); eagerConfig.jsThreshold = ${saved}.`,
  );
  mkdirSync(new URL('./out/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./out/engine.json', import.meta.url), JSON.stringify({ rows, crossover, torch }, null, 2));
}

main();
