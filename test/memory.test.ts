import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Runs in a child process started with --expose-gc, so the heap and RSS can be measured after a
// full collection (the test runner itself does not expose gc).
const script = `
import { engineStats, jit, randn, sessionCacheSize, tensor } from './src/index.js';
const a = randn([64, 64], { seed: 1 });
const small = tensor([1, 2, 3, 4]);
const f = jit((x) => x.mul(2).add(1).exp().sum());
const start = { ort: engineStats.eagerOrt, js: engineStats.eagerJs };
const samples = [];
let maxSessions = 0;
const measure = (i) => {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  samples.push({ i, heapUsed: m.heapUsed, rss: m.rss });
};
for (let i = 1; i <= 10000; i++) {
  const y = a.matmul(a).mul(0.01).add(a).sum(-1); // 64x64 matmul: a one-node ORT session
  const z = small.mul(i % 7).add(1).exp().sum(); // small ops: JS kernels
  const j = f(small.add(i % 3)); // a jit call: trace, lower-key lookup, cached session
  if (!Number.isFinite(z.item()) || !Number.isFinite(j.item()) || y.shape[0] !== 64) throw new Error('bad value');
  maxSessions = Math.max(maxSessions, sessionCacheSize());
  if (i % 2000 === 0) measure(i);
}
console.log(JSON.stringify({
  samples,
  maxSessions,
  sessions: sessionCacheSize(),
  eagerOrt: engineStats.eagerOrt - start.ort,
  eagerJs: engineStats.eagerJs - start.js,
}));
`;

const MB = 1024 * 1024;

describe('memory', () => {
  it('10,000 iterations of eager ORT ops, JS-kernel ops and jit calls do not grow memory without bound', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 16 * MB,
    });
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      samples: { i: number; heapUsed: number; rss: number }[];
      maxSessions: number;
      sessions: number;
      eagerOrt: number;
      eagerJs: number;
    };
    // The loop really exercised both eager paths.
    assert.ok(res.eagerOrt >= 10000, `only ${res.eagerOrt} eager ops ran on ORT`);
    assert.ok(res.eagerJs >= 40000, `only ${res.eagerJs} eager ops ran on the JS kernels`);
    const first = res.samples[0]!;
    const last = res.samples[res.samples.length - 1]!;
    assert.equal(first.i, 2000);
    assert.equal(last.i, 10000);
    const fmt = (s: typeof first) => `${s.i}: heap ${(s.heapUsed / MB).toFixed(1)} MB, rss ${(s.rss / MB).toFixed(1)} MB`;
    const trail = res.samples.map(fmt).join('; ');
    const heapGrowth = last.heapUsed - first.heapUsed;
    const rssGrowth = last.rss - first.rss;
    assert.ok(heapGrowth < 50 * MB, `heap grew by ${(heapGrowth / MB).toFixed(1)} MB between iteration 2,000 and 10,000 (${trail})`);
    assert.ok(rssGrowth < 50 * MB, `RSS grew by ${(rssGrowth / MB).toFixed(1)} MB between iteration 2,000 and 10,000 (${trail})`);
    // A handful of distinct (op, shape) pairs and one jitted graph: the cache holds a handful of sessions.
    assert.ok(res.maxSessions <= 12, `session cache reached ${res.maxSessions} sessions`);
  });
});

/**
 * Runs `script` in a child process (with --expose-gc) under an RSS watchdog: the child is killed
 * once its RSS passes `limitBytes` or after `timeoutMs`, so a regression fails fast instead of
 * exhausting the machine. Resolves to the child's last stdout line (parsed) and its peak RSS.
 */
function watchedChild(
  script: string,
  limitBytes: number,
  timeoutMs: number,
): Promise<{ result: unknown; peak: number; killed: string | null }> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let peak = 0;
    let killed: string | null = null;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const stop = (why: string) => {
      if (killed === null) killed = why;
      child.kill('SIGKILL');
    };
    const poll = setInterval(() => {
      let status: string;
      try {
        status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      } catch {
        return; // exited
      }
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      peak = Math.max(peak, rss);
      if (rss > limitBytes) stop(`RSS reached ${(rss / MB).toFixed(0)} MB (limit ${(limitBytes / MB).toFixed(0)} MB)`);
    }, 50);
    const timer = setTimeout(() => stop(`still running after ${timeoutMs} ms`), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      if (killed !== null) return resolve({ result: null, peak, killed });
      if (code !== 0) return reject(new Error(`child exited with ${code}: ${err}`));
      resolve({ result: JSON.parse(out.trim().split('\n').pop()!), peak, killed });
    });
  });
}

// Integrated gradients on the default model at 32 and then 256 steps: the peak RSS (VmHWM) after
// each, and the plans. The 256-step run once grew past 22 GB (each of the 256 stacked copies'
// logit gradients was padded back to the full stacked logits and kept alive: memory quadratic in
// the points per pass).
const igScript = `
import { readFileSync } from 'node:fs';
import { loadModel } from './src/index.js';
import { integratedGradients, logitDiffTensorMetric, backwardBytesPerRow, memoryConfig } from './src/analysis/index.js';
const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const model = await loadModel('default');
const tokens = model.toTokens('The quick brown fox jumps over the lazy dog and then runs far away')[0].slice(0, 14);
if (tokens.length !== 14) throw new Error('the prompt is ' + tokens.length + ' tokens');
const metric = logitDiffTensorMetric(tokens[5], tokens[6]);
const runs = [];
for (const steps of [32, 256]) {
  const ig = integratedGradients(model, [tokens], metric, { steps });
  runs.push({ steps, peak: hwm(), plan: ig.plan, delta: ig.delta, scale: ig.inputValue - ig.baselineValue });
}
console.log(JSON.stringify({ runs, bytesPerRow: backwardBytesPerRow(model.cfg, 14), budget: memoryConfig.memoryBudgetBytes, maxRows: memoryConfig.maxRows }));
`;

describe('memory of forward+backward sweeps', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  it('integrated gradients at 256 steps on the default model: planned within the budget, RSS growth from 32 steps bounded', async () => {
    // The old code reached 1.1 GB at 64 steps and 4 GB at 128: the watchdog stops it well before
    // 22 GB (or the timeout does, on a loaded machine, where building its graph alone took long).
    const LIMIT = 1536 * MB;
    const { result, peak, killed } = await watchedChild(igScript, LIMIT, 45_000);
    assert.equal(killed, null, `IG child stopped: ${killed} (peak ${(peak / MB).toFixed(0)} MB)`);
    const res = result as {
      runs: { steps: number; peak: number; plan: { size: number; count: number }; delta: number; scale: number }[];
      bytesPerRow: number;
      budget: number;
      maxRows: number;
    };
    const [r32, r256] = res.runs as [(typeof res.runs)[0], (typeof res.runs)[0]];
    const trail = res.runs.map((r) => `${r.steps} steps: peak ${(r.peak / MB).toFixed(0)} MB, ${r.plan.count} x ${r.plan.size}`).join('; ');
    // The plan: every pass within the budget (or the row cap), covering all the points.
    for (const r of res.runs) {
      assert.ok(r.plan.size * r.plan.count >= r.steps, trail);
      assert.ok(r.plan.size <= res.maxRows && (r.plan.size === 1 || r.plan.size * res.bytesPerRow <= res.budget), trail);
    }
    // And it computed something sensible: at 256 points the completeness error is small.
    assert.ok(Math.abs(r256.delta) < 0.05 * Math.abs(r256.scale), `completeness at 256 steps: ${r256.delta} of ${r256.scale}`);
    // Measured 205 MB and 352 MB (two passes of 128 points); the old code needed 433 MB and over 20 GB.
    assert.ok(r256.peak < 2048 * MB, `peak RSS ${(r256.peak / MB).toFixed(0)} MB (${trail})`);
    const growth = r256.peak - r32.peak;
    assert.ok(growth < 512 * MB, `peak RSS grew by ${(growth / MB).toFixed(0)} MB from 32 to 256 steps (${trail})`);
  });
});

// Ten jitted graphs of different shapes, each leaving an ORT arena of tens of MB behind (every
// session has its own): under a 32 MB cap on the measured arenas the least recently used
// sessions are released; without it every one is kept.
const arenaScript = (capMb: number) => `
import { jit, ortConfig, ortStats, randn, sessionArenaBytes, sessionCacheSize } from './src/index.js';
ortConfig.maxArenaBytes = ${capMb} * 2 ** 20;
const f = jit((x) => x.mul(2).exp().add(x.square()).tanh().mul(x).sum());
let largest = 0;
for (let i = 1; i <= 10; i++) {
  const x = randn([1_000_000 + i * 1000], { seed: i });
  const before = sessionArenaBytes();
  for (let r = 0; r < 3; r++) if (!Number.isFinite(f(x).item())) throw new Error('bad value');
  largest = Math.max(largest, sessionArenaBytes() - before);
}
console.log(JSON.stringify({ released: ortStats.released, arena: sessionArenaBytes(), sessions: sessionCacheSize(), largest }));
`;

describe('ORT arenas of cached sessions', () => {
  it('are measured, and the least recently used sessions are released past ortConfig.maxArenaBytes', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const run = (capMb: number) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', arenaScript(capMb)], {
        cwd: root,
        encoding: 'utf8',
        timeout: 40_000,
      });
      assert.equal(r.status, 0, `child failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { released: number; arena: number; sessions: number; largest: number };
    };
    const capped = run(32);
    const kept = run(1e6);
    const fmt = (r: typeof capped) => `${r.sessions} sessions, arenas ${(r.arena / MB).toFixed(0)} MB, ${r.released} released`;
    // Every session's graph holds several 4 MB values: its arena is measured above zero.
    assert.ok(kept.largest > 4 * MB, `largest arena measured: ${(kept.largest / MB).toFixed(1)} MB`);
    assert.equal(kept.released, 0, fmt(kept));
    assert.ok(kept.arena > 64 * MB, fmt(kept));
    assert.ok(capped.released >= 3, fmt(capped));
    assert.ok(capped.arena <= 32 * MB + capped.largest, fmt(capped));
  });
});
