/**
 * The server under floods (issue 16, "The server"): a server on the default model in its own
 * process, on 127.0.0.1, gets prompts of every length, a series of patching jobs, large jobs and
 * steering requests with polls beside them, more jobs than it runs and more requests than it
 * queues. It must stay small (resident memory and compiled sessions bounded, since prompts run
 * padded to a few lengths and a sweep is one session), answer GET /api/model and event streams
 * at once while the model works (the model runs in a worker thread), refuse what is over its
 * limits at once, and stop a cancelled job within one pass.
 *
 * Every flood is bounded in count and time; the server process has a watchdog. The latency
 * bounds are generous (1 s on a loaded 2-core machine, where the measured values are tens of
 * milliseconds); the measured values are printed as test diagnostics.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HookedTransformer } from '../../src/index.js';
import { createServer } from '../../src/server/app.js';
import { tinyRandomModel } from '../tiny-models.js';

const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The generous latency bound of the requirements ("under 100 ms"; 1 s here, on a shared machine). */
const PROMPT_MS = 1000;

interface Server {
  url: string;
  child: ChildProcess;
  close(): Promise<void>;
}

/** Starts a server process (killed after `watchdogMs` whatever happens). */
async function startServer(options: object, watchdogMs = 240_000): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(options)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const watchdog = setTimeout(() => child.kill('SIGKILL'), watchdogMs);
  watchdog.unref();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve((JSON.parse(buf.slice(0, i)) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`the server process exited (code ${code}) before listening`)));
  });
  return {
    url,
    child,
    async close() {
      clearTimeout(watchdog);
      child.stdin!.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

type Json = Record<string, unknown>;

function client(base: string) {
  const timed = async (path: string, init?: RequestInit): Promise<{ status: number; body: Json; ms: number }> => {
    const t = performance.now();
    const r = await fetch(base + path, { ...init, signal: AbortSignal.timeout(120_000) });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as Json) : {}, ms: performance.now() - t };
  };
  return {
    get: (path: string) => timed(path),
    post: (path: string, payload: unknown) =>
      timed(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) }),
    del: (path: string) => timed(path, { method: 'DELETE' }),
    stats: async () =>
      (await timed('/api/stats')).body as { rss: number; compiles: number; sessions: number; jobs: number; queued: number },
  };
}

const MB = 2 ** 20;
const ids = (n: number, seed = 0) => Array.from({ length: n }, (_, i) => (i * 37 + seed * 101 + 7) % 4000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls GET /api/model every 20 ms until `until` settles; returns the latencies. */
async function pollModel(api: ReturnType<typeof client>, until: Promise<unknown>): Promise<number[]> {
  let settled = false;
  void until.finally(() => (settled = true));
  const out: number[] = [];
  while (!settled) {
    const r = await api.get('/api/model');
    assert.equal(r.status, 200);
    out.push(r.ms);
    await sleep(20);
  }
  return out;
}

const fmt = (ms: number[]) =>
  `max ${Math.max(...ms).toFixed(1)} ms, median ${[...ms].sort((a, b) => a - b)[ms.length >> 1]!.toFixed(1)} ms over ${ms.length}`;

describe('server faults: memory under prompts of every length and a series of jobs', () => {
  let server: Server;
  let api: ReturnType<typeof client>;
  before(async () => {
    server = await startServer({});
    api = client(server.url);
  });
  after(() => server.close());

  it('prompts of 1 to 256 tokens compile sessions for 9 lengths, and memory stays bounded', async (t: TestContext) => {
    const first = await api.post('/api/forward', { prompt: ids(1), topK: 3 });
    assert.equal(first.status, 200);
    const s0 = await api.stats();
    const lengths = [...Array.from({ length: 52 }, (_, i) => 1 + 5 * i), 16, 17, 255, 256];
    for (const n of lengths) {
      const r = await api.post('/api/forward', { prompt: ids(n, n), topK: 3 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((r.body.top as unknown[]).length, n);
    }
    const s1 = await api.stats();
    const perBucket = s0.compiles;
    t.diagnostic(
      `${lengths.length} lengths: ${s1.compiles} compiles (${perBucket} for the first), RSS ${(s0.rss / MB).toFixed(0)} -> ${(s1.rss / MB).toFixed(0)} MB`,
    );
    // 1..16 is the first bucket; 24, 32, 48, 64, 96, 128, 192 and 256 the other eight
    assert.ok(s1.compiles <= 9 * perBucket, `${s1.compiles} compiles for ${lengths.length} lengths, ${perBucket} per length bucket`);
    // unbucketed, each length kept its own sessions: 1..256 grew the server from 158 MB to 3.1 GB
    assert.ok(s1.rss - s0.rss < 300 * MB, `RSS grew by ${((s1.rss - s0.rss) / MB).toFixed(0)} MB`);
  });

  it('20 patching jobs of different lengths leave the server small, one session per length bucket', async (t: TestContext) => {
    const s0 = await api.stats();
    let sweepCompiles = 0;
    for (let j = 0; j < 20; j++) {
      const n = 4 + j;
      const clean = ids(n, j);
      const corrupted = clean.map((x, i) => (i === n - 2 ? (x + 1) % 4000 : x));
      const before = await api.stats();
      const start = await api.post('/api/patching', { clean, corrupted, answer: 5, wrong: 6, kinds: ['resid_pre', 'head_out'] });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      for (;;) {
        const s = await api.get(`/api/jobs/${start.body.jobId as string}`);
        if (s.body.status !== 'running') {
          assert.equal(s.body.status, 'done', JSON.stringify(s.body));
          break;
        }
        await sleep(30);
      }
      if (j === 0) sweepCompiles = (await api.stats()).compiles - before.compiles;
    }
    await sleep(200);
    const s1 = await api.stats();
    t.diagnostic(
      `20 jobs: ${s1.compiles - s0.compiles} compiles (${sweepCompiles} for the first), RSS ${(s0.rss / MB).toFixed(0)} -> ${(s1.rss / MB).toFixed(0)} MB, ${s1.sessions} sessions kept`,
    );
    // lengths 4..23 fall in the 16 and 24 buckets: the first job's sessions, and the second bucket's
    assert.ok(sweepCompiles <= 8, `the first job compiled ${sweepCompiles} sessions`);
    assert.ok(s1.compiles - s0.compiles <= 2 * sweepCompiles, `20 jobs compiled ${s1.compiles - s0.compiles} sessions`);
    // unbucketed, one session per (layer, position): 20 jobs left the server at 5.0 GB
    assert.ok(s1.rss - s0.rss < 300 * MB, `RSS grew by ${((s1.rss - s0.rss) / MB).toFixed(0)} MB`);
  });
});

describe('server faults: the session budget', () => {
  it('the worker keeps at most maxSessions sessions, releasing the least recently used past sessionBudgetBytes', async (t: TestContext) => {
    const budget = 32 * MB;
    const server = await startServer({ server: { sessionBudgetBytes: budget, maxSessions: 6 } });
    try {
      const api = client(server.url);
      let maxSessions = 0;
      let maxArena = 0;
      for (const n of [3, 20, 30, 40, 60, 90, 120, 180, 250, 3, 250]) {
        for (const [path, body] of [
          ['/api/forward', { prompt: ids(n, n), topK: 2 }],
          ['/api/attention', { prompt: ids(n, n), layer: 1 }],
          ['/api/logit-lens', { prompt: ids(n, n), topK: 2 }],
        ] as const) {
          const r = await api.post(path, body);
          assert.equal(r.status, 200, JSON.stringify(r.body));
          const st = await api.stats();
          maxSessions = Math.max(maxSessions, st.sessions);
          maxArena = Math.max(maxArena, (st as unknown as { arenaBytes: number }).arenaBytes);
        }
      }
      const st = (await api.stats()) as unknown as { released: number; compiles: number; rss: number };
      t.diagnostic(
        `${st.compiles} compiles, ${st.released} released, at most ${maxSessions} sessions and ${(maxArena / MB).toFixed(0)} MB of arenas kept; RSS ${(st.rss / MB).toFixed(0)} MB`,
      );
      assert.ok(maxSessions <= 6, `${maxSessions} sessions kept`);
      assert.ok(st.released > 0, 'sessions were released');
      // the session just run is kept whatever its arena: the largest here, the lens over 256
      // positions, holds about 21 MB of logits
      assert.ok(maxArena <= budget + 32 * MB, `${(maxArena / MB).toFixed(0)} MB of arenas kept`);
    } finally {
      await server.close();
    }
  });
});

describe('server faults: a busy server stays responsive and refuses at once', () => {
  let server: Server;
  let api: ReturnType<typeof client>;
  before(async () => {
    server = await startServer({ server: { maxJobs: 2, maxQueued: 6 } });
    api = client(server.url);
  });
  after(() => server.close());

  /** A long job: every kind on a 200-token prompt (2424 patched runs). */
  const bigJob = () => {
    const clean = ids(200, 3);
    const corrupted = clean.map((x, i) => (i === 190 ? (x + 1) % 4000 : x));
    return api.post('/api/patching', { clean, corrupted, answer: 5, wrong: 6, kinds: ['resid_pre', 'attn_out', 'mlp_out', 'head_out'] });
  };

  it('GET /api/model answers at once while a large steering request runs', async (t: TestContext) => {
    const prompts = Array.from({ length: 16 }, (_, i) => ids(120, i));
    const steer = api.post('/api/steer', {
      positive: prompts.slice(0, 8),
      negative: prompts.slice(8),
      layer: 2,
      prompt: ids(100, 99),
      maxNewTokens: 64,
    });
    const lat = await pollModel(api, steer);
    const r = await steer;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    t.diagnostic(`steering took ${r.ms.toFixed(0)} ms; GET /api/model meanwhile: ${fmt(lat)}`);
    assert.ok(lat.length >= 3, `polled ${lat.length} times`);
    assert.ok(Math.max(...lat) < PROMPT_MS, fmt(lat));
  });

  it('while jobs run: /api/model and event streams answer at once, jobs over the limit are 429s at once, cancel stops a job within one pass', async (t: TestContext) => {
    const a = await bigJob();
    assert.equal(a.status, 202, JSON.stringify(a.body));
    const jobA = a.body.jobId as string;
    // the event stream connects and sends the current progress at once
    const tEvents = performance.now();
    const stream = await fetch(`${server.url}/api/jobs/${jobA}/events`, { signal: AbortSignal.timeout(120_000) });
    const reader = stream.body!.getReader();
    const firstChunk = new TextDecoder().decode((await reader.read()).value);
    const eventsMs = performance.now() - tEvents;
    assert.match(firstChunk, /^event: progress\ndata: \{"done":\d+,"total":2424\}/);
    // /api/model while the job runs
    const lat: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await api.get('/api/model');
      assert.equal(r.status, 200);
      lat.push(r.ms);
      await sleep(25);
    }
    // 20 more jobs at once: one fits (maxJobs 2), the others are 429s at once
    const flood = await Promise.all(Array.from({ length: 20 }, () => bigJob()));
    const refused = flood.filter((r) => r.status === 429);
    const accepted = flood.filter((r) => r.status === 202);
    assert.equal(accepted.length, 1, flood.map((r) => r.status).join(','));
    assert.equal(refused.length, 19);
    for (const r of refused) assert.match(r.body.message as string, /2 jobs are running, the most this server runs at once/);
    const refusedMs = refused.map((r) => r.ms);
    // requests beyond maxQueued (6) waiting for the model: 429s at once, the others answered right
    const reqs = await Promise.all(Array.from({ length: 24 }, (_, i) => api.post('/api/forward', { prompt: ids(5 + (i % 3)), topK: 2 })));
    const busy = reqs.filter((r) => r.status === 429);
    assert.ok(busy.length >= 10, `${busy.length} of 24 refused`);
    for (const r of busy) assert.match(r.body.message as string, /the model is busy: \d+ requests are waiting for it/);
    const served = reqs.filter((r) => r.status === 200);
    assert.ok(served.length >= 1);
    for (const r of served) {
      const same = await api.post('/api/forward', { prompt: r.body.tokens, topK: 2 });
      assert.deepEqual(r.body, same.body, 'an answer under load equals the answer alone');
    }
    const busyMs = busy.map((r) => r.ms);
    // cancel both jobs: answered at once, and the worker is free again after the pass it was in
    const before = (await api.get(`/api/jobs/${jobA}`)).body.done as number;
    const cancels = [await api.del(`/api/jobs/${jobA}`), await api.del(`/api/jobs/${accepted[0]!.body.jobId as string}`)];
    for (const c of cancels) assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal(cancels[0]!.body.status, 'cancelled');
    const tFree = performance.now();
    const next = await api.post('/api/forward', { prompt: ids(4), topK: 1 });
    const freeMs = performance.now() - tFree;
    assert.equal(next.status, 200);
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.match(rest, /event: cancelled\n/);
    await sleep(300);
    const after = await api.get(`/api/jobs/${jobA}`);
    assert.equal(after.body.status, 'cancelled');
    assert.equal(after.body.done, cancels[0]!.body.done, 'no pass is counted after the cancel');
    assert.ok((after.body.done as number) >= before && (after.body.done as number) < 2424);
    const cancelMs = cancels.map((c) => c.ms);
    t.diagnostic(
      `event stream connected in ${eventsMs.toFixed(1)} ms; GET /api/model while a job ran: ${fmt(lat)}; ` +
        `19 jobs over the limit refused in ${fmt(refusedMs)}; ${busy.length} requests over the queue refused in ${fmt(busyMs)}; ` +
        `cancels answered in ${fmt(cancelMs)}; the next request answered ${freeMs.toFixed(0)} ms after the cancels`,
    );
    assert.ok(eventsMs < PROMPT_MS, `event stream: ${eventsMs} ms`);
    assert.ok(Math.max(...lat) < PROMPT_MS, fmt(lat));
    assert.ok(Math.max(...refusedMs) < PROMPT_MS, `429s: ${fmt(refusedMs)}`);
    assert.ok(Math.max(...busyMs) < PROMPT_MS, `queue 429s: ${fmt(busyMs)}`);
    assert.ok(Math.max(...cancelMs) < PROMPT_MS, `cancels: ${fmt(cancelMs)}`);
    // one pass of this job (2 rows of 256 positions) and a forward pass, generously
    assert.ok(freeMs < 5 * PROMPT_MS, `the worker was busy ${freeMs} ms after the cancels`);
    const st = await api.stats();
    assert.equal(st.jobs, 0);
  });
});

describe('server faults: a model worker that cannot start', () => {
  it('requests that need the model are 500s naming the failure, then 503s; the rest of the API answers', async () => {
    const model = tinyRandomModel(1);
    // Weights the worker cannot build a model from: the HTTP thread's checks pass, the worker's model fails.
    const broken = Object.assign(Object.create(Object.getPrototypeOf(model) as object) as HookedTransformer, {
      cfg: model.cfg,
      hookNames: model.hookNames,
      tokenizer: null,
      params: { embed: {} },
    });
    const app = createServer({ model: broken, webRoot: null });
    try {
      // The worker fails as it starts: a request that reaches it first is a 500 naming the failure; one
      // that arrives after the failure is known (the worker may fail before the first request) a 503 naming it.
      const first = await app.inject({ method: 'POST', url: '/api/forward', payload: { prompt: [1, 2, 3] } });
      assert.ok(first.statusCode === 500 || first.statusCode === 503, first.body);
      assert.match(
        (JSON.parse(first.body) as Json).message as string,
        first.statusCode === 500
          ? /^the model worker stopped: .*gather/
          : /the model worker has stopped \(.*gather.*\); restart the server/,
      );
      const again = await app.inject({ method: 'POST', url: '/api/forward', payload: { prompt: [1, 2, 3] } });
      assert.equal(again.statusCode, 503, again.body);
      assert.match((JSON.parse(again.body) as Json).message as string, /the model worker has stopped \(.+\); restart the server/);
      const job = await app.inject({
        method: 'POST',
        url: '/api/patching',
        payload: { clean: [1, 2], corrupted: [1, 3], answer: 4, wrong: 5 },
      });
      assert.equal(job.statusCode, 503, job.body);
      assert.equal((await app.inject({ url: '/api/model' })).statusCode, 200);
      assert.equal(JSON.parse((await app.inject({ url: '/api/stats' })).body).jobs, 0, 'the refused job gave its slot back');
    } finally {
      await app.close();
    }
  });
});
