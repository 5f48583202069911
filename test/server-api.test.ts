/**
 * The workbench's HTTP API (src/server): every endpoint's numbers equal the analysis library's
 * on the same model; bad input is a JSON error naming the problem (schema, ranges, limits,
 * malformed JSON, unknown routes, oversize bodies, other hosts and origins); static files come
 * only from the web root; patching jobs stream progress and a result over SSE and can be
 * cancelled mid-way while other requests are served; concurrent requests do not mix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import {
  attentionPattern,
  compareSteering,
  directLogitAttribution,
  headScores,
  inductionScores,
  logitLens,
  patchAttnOut,
  patchHeadOut,
  patchMlpOut,
  patchResidPre,
  steeringVector,
} from '../src/analysis/index.js';
import { createServer } from '../src/server/app.js';
import { isLoopbackHost, serve } from '../src/server/index.js';
import { tinyModel } from './server-helpers.js';

interface SseEvent {
  event: string;
  data: unknown;
}

/** Parses a text/event-stream body (comments skipped). */
function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length) out.push({ event, data: JSON.parse(data.join('\n')) });
  }
  return out;
}

/** Reads an SSE response as it arrives, calling `onEvent` for each event; resolves with all of them when the stream ends. */
async function readSse(res: Response, onEvent: (e: SseEvent) => void | Promise<void> = () => {}): Promise<SseEvent[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const all: SseEvent[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i + 2);
      buf = buf.slice(i + 2);
      for (const e of parseSse(block)) {
        all.push(e);
        await onEvent(e);
      }
    }
  }
  return all;
}

const model = tinyModel();
const L = model.cfg.nLayers;
const H = model.cfg.nHeads;

type Json = Record<string, unknown>;
const body = (r: LightMyRequestResponse): Json => JSON.parse(r.body) as Json;

function close(actual: unknown, expected: number, tol = 1e-4, what = ''): void {
  assert.equal(typeof actual, 'number', `${what}: ${String(actual)} is not a number`);
  assert.ok(Math.abs((actual as number) - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

function closeGrid(actual: unknown, expected: ArrayLike<number>, shape: number[], tol = 1e-4, what = ''): void {
  const flat = (actual as unknown[]).flat(shape.length - 1) as number[];
  assert.equal(flat.length, expected.length, `${what}: size`);
  flat.forEach((v, i) => close(v, expected[i]!, tol, `${what}[${i}]`));
}

const values = (t: { cast(d: 'float32'): { dataSync(): unknown } }) => t.cast('float32').dataSync() as Float32Array;

describe('server API: endpoints agree with the library', () => {
  let app: FastifyInstance;
  before(() => {
    app = createServer({ model, modelName: 'tiny', webRoot: null });
  });
  after(() => app.close());
  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as Json });

  it('GET /api/model: config, hook names, tokenizer, limits', async () => {
    const r = await app.inject({ url: '/api/model' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const b = body(r);
    assert.equal(b.name, 'tiny');
    assert.equal(b.family, 'gpt2');
    assert.equal(b.nLayers, 2);
    assert.equal(b.nHeads, 4);
    assert.equal(b.dModel, 32);
    assert.equal(b.dVocab, 298);
    assert.equal(b.nCtx, 32);
    assert.equal(b.hasTokenizer, true);
    assert.deepEqual(b.hookNames, [...model.hookNames]);
    assert.equal((b.limits as Json).maxTokens, 32);
  });

  it('POST /api/tokenize: text (with and without BOS) and token ids', async () => {
    let b = body(await post('/api/tokenize', { prompt: 'Hello world! the cat' }));
    assert.deepEqual(b.tokens, model.toTokens('Hello world! the cat')[0]);
    assert.deepEqual(b.strTokens, ['<|endoftext|>', 'Hello', ' world', '!', ' the', ' cat']);
    b = body(await post('/api/tokenize', { prompt: 'Hello world', prependBos: false }));
    assert.deepEqual(b.tokens, [279, 265]);
    b = body(await post('/api/tokenize', { prompt: [279, 265] }));
    assert.deepEqual(b.strTokens, ['Hello', ' world']);
  });

  it('POST /api/forward: top-k next tokens per position', async () => {
    const r = await post('/api/forward', { prompt: 'Hello world the cat', topK: 3 });
    assert.equal(r.statusCode, 200);
    const b = body(r);
    const ids = model.toTokens('Hello world the cat')[0]!;
    assert.deepEqual(b.tokens, ids);
    const { values: p, indices } = model.forward([ids]).index([0]).softmax(-1).topk(3, -1);
    const probs = values(p);
    const idx = Array.from(indices.dataSync() as BigInt64Array, Number);
    const top = b.top as { token: number; str: string; prob: number }[][];
    assert.equal(top.length, ids.length);
    top.forEach((row, pos) =>
      row.forEach((t, j) => {
        assert.equal(t.token, idx[pos * 3 + j]);
        assert.equal(t.str, model.toStrTokens([t.token])[0]);
        close(t.prob, probs[pos * 3 + j]!, 1e-5, `top[${pos}][${j}]`);
      }),
    );
    // each token's probability as predicted from the tokens before it: exp(−loss) of the library's per-token loss
    const loss = values(model.loss([ids], { perToken: true }));
    const tokenProbs = b.tokenProbs as (number | null)[];
    assert.equal(tokenProbs.length, ids.length);
    assert.equal(tokenProbs[0], null);
    assert.equal(loss.length, ids.length - 1);
    loss.forEach((l, i) => close(tokenProbs[i + 1]!, Math.exp(-l), 1e-5, `tokenProbs[${i + 1}]`));
    // default top-k is 5; token-id prompts work the same
    const b2 = body(await post('/api/forward', { prompt: ids }));
    assert.equal((b2.top as unknown[][])[0]!.length, 5);
    assert.deepEqual(
      (b2.top as { token: number }[][]).map((r) => r.slice(0, 3).map((t) => t.token)),
      top.map((r) => r.map((t) => t.token)),
    );
  });

  it('POST /api/attention: every head, or one head, of a layer', async () => {
    const prompt = 'Hello world the cat the hat';
    const b = body(await post('/api/attention', { prompt, layer: 1 }));
    const s = model.toTokens(prompt)[0]!.length;
    assert.deepEqual(b.heads, [0, 1, 2, 3]);
    assert.equal(b.layer, 1);
    assert.equal((b.strTokens as string[]).length, s);
    const pattern = b.pattern as number[][][];
    assert.equal(pattern.length, H);
    for (let h = 0; h < H; h++) closeGrid(pattern[h], values(attentionPattern(model, prompt, 1, h)), [s, s], 1e-5, `head ${h}`);
    const one = body(await post('/api/attention', { prompt, layer: 0, head: 2 }));
    assert.deepEqual(one.heads, [2]);
    closeGrid((one.pattern as number[][][])[0], values(attentionPattern(model, prompt, 0, 2)), [s, s], 1e-5, 'L0H2');
  });

  it('POST /api/logit-lens: top-k per layer and position', async () => {
    const prompt = 'Hello world the cat';
    const b = body(await post('/api/logit-lens', { prompt, topK: 2 }));
    const ref = logitLens(model, prompt, { topK: 2 });
    assert.deepEqual(b.labels, ref.labels);
    assert.deepEqual(b.tokens, ref.tokens);
    const top = b.top as { token: number; str: string; prob: number }[][][];
    assert.equal(top.length, L + 1);
    ref.top.forEach((layer, l) =>
      layer.forEach((preds, p) =>
        preds.forEach((q, j) => {
          assert.equal(top[l]![p]![j]!.token, q.token);
          assert.equal(top[l]![p]![j]!.str, q.str);
          close(top[l]![p]![j]!.prob, q.prob, 1e-5);
        }),
      ),
    );
    // A tracked token: its probability and rank at every layer and position, from the library's lens logits.
    const t = body(await post('/api/logit-lens', { prompt, topK: 2, track: ' cat' }));
    const tracked = t.tracked as { token: number; str: string; prob: number[][]; rank: number[][] };
    assert.equal(tracked.token, 269);
    assert.equal(tracked.str, ' cat');
    const V = ref.logits.shape[2]!;
    const probs = values(ref.logits.softmax(-1));
    ref.labels.forEach((_, l) =>
      ref.tokens.forEach((_, p) => {
        const row = probs.slice((l * ref.tokens.length + p) * V, (l * ref.tokens.length + p + 1) * V);
        close(tracked.prob[l]![p]!, row[269]!, 1e-5, `prob[${l}][${p}]`);
        assert.equal(tracked.rank[l]![p]!, 1 + row.filter((x) => x > row[269]!).length, `rank[${l}][${p}]`);
      }),
    );
    // where ' cat' is the top-1, its rank is 1
    top.forEach((layer, l) => layer.forEach((preds, p) => preds[0]!.token === 269 && assert.equal(tracked.rank[l]![p], 1)));
    assert.equal(b.tracked, undefined);
    const bad = await post('/api/logit-lens', { prompt, track: ' cat dog' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /track/);
  });

  it('POST /api/dla: components, head grid and total for an answer (text or id) against a wrong token', async () => {
    const prompt = 'Hello world the';
    const b = body(await post('/api/dla', { prompt, answer: ' cat', wrong: 270 }));
    const ref = directLogitAttribution(model, prompt, { answer: 269, wrong: 270 });
    assert.deepEqual(b.answer, { token: 269, str: ' cat' });
    assert.equal((b.wrong as Json).token, 270);
    assert.equal(b.pos, 3);
    const comps = b.components as { label: string; value: number }[];
    assert.deepEqual(
      comps.map((c) => c.label),
      ref.labels,
    );
    comps.forEach((c, i) => close(c.value, ref.values[i]!, 1e-5, c.label));
    close(b.total, ref.total.item(), 1e-5, 'total');
    close(b.logitDiff, ref.logitDiff.item(), 1e-5, 'logitDiff');
    close(b.total, b.logitDiff as number, 1e-3, 'total = logitDiff');
    const heads = b.heads as number[][];
    assert.equal(heads.length, L);
    close(heads[1]![2], ref.values[ref.labels.indexOf('L1H2')]!, 1e-5, 'L1H2');
    // no wrong token, another position
    const b2 = body(await post('/api/dla', { prompt, answer: 269, pos: 1 }));
    const ref2 = directLogitAttribution(model, prompt, { answer: 269, pos: 1 });
    close(b2.total, ref2.total.item(), 1e-5);
    assert.equal(b2.wrong, null);
  });

  it('POST /api/heads: previous-token, duplicate-token and induction scores', async () => {
    const b = body(await post('/api/heads', { seqLen: 6, batch: 3, seed: 7 }));
    const ind = inductionScores(model, { seqLen: 6, batch: 3, seed: 7 });
    const other = headScores(model, ind.tokens, ['previousToken', 'duplicateToken']);
    assert.equal(b.scoredOn, 'repeated');
    assert.deepEqual((b.repeated as Json).tokens, ind.tokens);
    closeGrid(b.induction, values(ind.scores), [L, H], 1e-5, 'induction');
    closeGrid(b.previousToken, values(other.previousToken!), [L, H], 1e-5, 'previousToken');
    closeGrid(b.duplicateToken, values(other.duplicateToken!), [L, H], 1e-5, 'duplicateToken');
    // previous/duplicate on a prompt; a prompt without repeats has no duplicate-token score (null)
    const p = body(await post('/api/heads', { prompt: 'Hello world the cat', seqLen: 4 }));
    assert.equal(p.scoredOn, 'prompt');
    const ref = headScores(model, 'Hello world the cat', ['previousToken']);
    closeGrid(p.previousToken, values(ref.previousToken!), [L, H], 1e-5, 'prompt previousToken');
    assert.ok((p.duplicateToken as unknown[][]).flat().every((v) => v === null));
    // a seed gives the same scores again; the default seqLen fits the token limit
    assert.deepEqual(body(await post('/api/heads', { seqLen: 6, batch: 3, seed: 7 })).induction, b.induction);
    const d = body(await post('/api/heads', {}));
    assert.equal((d.repeated as Json).seqLen, 15);
  });

  it('POST /api/steer: steered and unsteered continuations, as compareSteering', async () => {
    const req = { positive: ['Hello world', [296, 279]], negative: ['the cat'], layer: 1, prompt: 'Hello', maxNewTokens: 6, scale: 4 };
    const r = await post('/api/steer', req);
    assert.equal(r.statusCode, 200, r.body);
    const b = body(r);
    const vec = steeringVector(model, [model.toTokens('Hello world')[0]!, [296, 279]], model.toTokens('the cat'), { layer: 1 });
    const [ref] = compareSteering(model, 'Hello', vec, { layer: 1, scale: 4, maxNewTokens: 6 });
    assert.equal(b.hook, 'blocks.1.hook_resid_pre');
    assert.deepEqual((b.prompt as Json).tokens, ref!.prompt);
    assert.deepEqual((b.unsteered as Json).tokens, ref!.unsteered);
    assert.deepEqual((b.steered as Json).tokens, ref!.steered);
    assert.equal((b.steered as Json).text, ref!.steeredText);
    assert.notDeepEqual(ref!.steered, ref!.unsteered, 'the steering changes the continuation');
    close(b.vectorNorm, vec.square().sum().sqrt().item(), 1e-5);
    // scale 0 is plain generation
    const z = body(await post('/api/steer', { ...req, scale: 0, hook: 'resid_post', position: 'mean' }));
    assert.deepEqual((z.steered as Json).tokens, (z.unsteered as Json).tokens);
    assert.equal(z.hook, 'blocks.1.hook_resid_post');
  });
});

describe('server API: bad requests are JSON errors', () => {
  let app: FastifyInstance;
  before(() => {
    app = createServer({ model, webRoot: null, bodyLimit: 4096 });
  });
  after(() => app.close());
  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as Json });

  async function expectError(r: LightMyRequestResponse | Promise<LightMyRequestResponse>, status: number, message: RegExp) {
    const res = await r;
    assert.equal(res.statusCode, status, res.body);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const b = body(res);
    assert.equal(b.statusCode, status);
    assert.equal(typeof b.error, 'string');
    assert.match(String(b.message), message);
  }

  it('malformed JSON, empty and non-JSON bodies, oversize bodies', async () => {
    const json = { 'content-type': 'application/json' };
    await expectError(app.inject({ method: 'POST', url: '/api/forward', payload: '{"prompt": "x"', headers: json }), 400, /malformed JSON/);
    await expectError(app.inject({ method: 'POST', url: '/api/forward', payload: '', headers: json }), 400, /malformed JSON|empty/i);
    await expectError(app.inject({ method: 'POST', url: '/api/forward' }), 400, /body must be object/);
    await expectError(
      app.inject({ method: 'POST', url: '/api/forward', payload: 'prompt=x', headers: { 'content-type': 'text/plain' } }),
      415,
      /application\/json/,
    );
    await expectError(post('/api/forward', { prompt: 'x'.repeat(5000) }), 413, /limit of 4096 bytes/);
  });

  it('wrong types, extra fields, missing fields, out-of-range numbers', async () => {
    await expectError(post('/api/forward', { prompt: 5 }), 400, /prompt must be string,array/);
    await expectError(post('/api/forward', { prompt: 'x', topK: 0 }), 400, /topK must be >= 1/);
    await expectError(post('/api/forward', { prompt: 'x', topK: 2.5 }), 400, /topK must be integer/);
    await expectError(post('/api/forward', { prompt: 'x', extra: true }), 400, /additional properties/);
    await expectError(post('/api/forward', { text: 'x' }), 400, /required property 'prompt'/);
    await expectError(post('/api/forward', { prompt: [] }), 400, /fewer than 1 items/);
    await expectError(post('/api/forward', { prompt: [1, -2] }), 400, /prompt\/1 must be >= 0/);
    await expectError(post('/api/forward', { prompt: [1, '2'] }), 400, /must be integer/);
    await expectError(post('/api/attention', { prompt: 'x', layer: '1' }), 400, /layer must be integer/);
    await expectError(
      post('/api/patching', { clean: 'x', corrupted: 'y', answer: 1, wrong: 2, kinds: ['resid_post'] }),
      400,
      /allowed values/,
    );
    await expectError(post('/api/steer', { positive: [], negative: ['x'], layer: 0, prompt: 'x' }), 400, /fewer than 1 items/);
    await expectError(post('/api/steer', { positive: ['a'], negative: ['b'], layer: 0, prompt: 'x', maxNewTokens: 1000 }), 400, /<= 128/);
  });

  it('layers, heads, positions and token ids outside the model, with the valid range', async () => {
    await expectError(
      post('/api/attention', { prompt: 'Hello', layer: 2 }),
      400,
      /layer 2 is out of range: the model has 2 layers \(0\.\.1\)/,
    );
    await expectError(post('/api/attention', { prompt: 'Hello', layer: 0, head: 4 }), 400, /head 4 is out of range.*\(0\.\.3\)/);
    await expectError(post('/api/forward', { prompt: [1, 298] }), 400, /token id 298 is outside the vocabulary \(0\.\.297\)/);
    await expectError(post('/api/dla', { prompt: 'Hello world', answer: 400 }), 400, /answer: token id 400/);
    await expectError(post('/api/dla', { prompt: 'Hello world', answer: ' catdog' }), 400, /is 2 tokens \(269, 287\), not one/);
    await expectError(
      post('/api/dla', { prompt: 'Hello world', answer: ' cat', pos: 3 }),
      400,
      /pos 3 is out of range for a prompt of 3 tokens/,
    );
    await expectError(post('/api/steer', { positive: ['a'], negative: ['b'], layer: 5, prompt: 'x' }), 400, /layer 5 is out of range/);
    await expectError(
      post('/api/steer', { positive: ['a'], negative: ['b'], layer: 0, prompt: 'x', hook: 'resid_prex' }),
      400,
      /unknown hook point 'blocks\.0\.hook_resid_prex'/,
    );
    await expectError(
      post('/api/steer', { positive: ['a'], negative: ['b'], layer: 0, prompt: 'x', hook: 'blocks.0.attn.hook_pattern' }),
      400,
      /not a residual-stream hook/,
    );
  });

  it('prompts over the token limit are rejected with the limit', async () => {
    await expectError(post('/api/forward', { prompt: 'the cat '.repeat(20) }), 413, /is 42 tokens long; the limit is 32 tokens/);
    await expectError(post('/api/tokenize', { prompt: new Array(33).fill(5) }), 413, /the limit is 32 tokens/);
    await expectError(post('/api/heads', { seqLen: 16 }), 413, /seqLen at most 15/);
    await expectError(
      post('/api/steer', { positive: ['a'], negative: [new Array(40).fill(1)], layer: 0, prompt: 'x' }),
      413,
      /negative\[0\] is 40 tokens long; the limit is 32/,
    );
    await expectError(
      post('/api/steer', { positive: ['a'], negative: ['b'], layer: 0, prompt: new Array(30).fill(1), maxNewTokens: 5 }),
      400,
      /exceed the model's context of 32 tokens/,
    );
    const small = createServer({ model, webRoot: null, maxTokens: 4 });
    await expectError(
      small.inject({ method: 'POST', url: '/api/forward', payload: { prompt: 'Hello world the cat' } }),
      413,
      /limit is 4 tokens/,
    );
    await small.close();
    assert.throws(() => createServer({ model, maxTokens: 33 }), /exceeds the model's context of 32/);
  });

  it('patching problems that cannot be run are 400s before any job starts', async () => {
    await expectError(
      post('/api/patching', { clean: 'Hello world the cat', corrupted: 'the cat', answer: ' cat', wrong: ' hat' }),
      400,
      /same number of tokens/,
    );
    await expectError(
      post('/api/patching', { clean: 'Hello world the cat', corrupted: 'Hello world the cat', answer: ' cat', wrong: ' hat' }),
      400,
      /the metric is the same on the clean and corrupted prompts/,
    );
  });

  it('unknown routes and jobs are JSON 404s', async () => {
    await expectError(post('/api/nope', {}), 404, /no route POST \/api\/nope/);
    await expectError(app.inject({ url: '/api/nope' }), 404, /no route GET \/api\/nope/);
    await expectError(app.inject({ method: 'DELETE', url: '/api/model' }), 404, /no route DELETE/);
    await expectError(app.inject({ url: '/api/jobs/0000' }), 404, /no job '0000'/);
    await expectError(app.inject({ url: '/api/jobs/0000/events' }), 404, /no job/);
    await expectError(app.inject({ method: 'DELETE', url: '/api/jobs/0000' }), 404, /no job/);
    await expectError(app.inject({ url: '/api/jobs/a%20b' }), 400, /must match pattern/);
  });

  it('answers only to local host names and same-site or local origins', async () => {
    await expectError(
      app.inject({ url: '/api/model', headers: { host: 'evil.example:7860' } }),
      403,
      /host 'evil.example:7860' is not allowed/,
    );
    await expectError(app.inject({ url: '/', headers: { host: 'attacker.test' } }), 403, /not allowed/);
    await expectError(
      app.inject({ method: 'POST', url: '/api/forward', payload: { prompt: 'x' }, headers: { origin: 'https://evil.example' } }),
      403,
      /cross-origin requests from https:\/\/evil\.example/,
    );
    for (const host of ['localhost:7860', '127.0.0.1:7860', '[::1]:7860'])
      assert.equal((await app.inject({ url: '/api/model', headers: { host } })).statusCode, 200, host);
    const ok = await app.inject({ url: '/api/model', headers: { host: 'localhost:7860', origin: 'http://localhost:5173' } });
    assert.equal(ok.statusCode, 200);
    const named = createServer({ model, webRoot: null, allowedHosts: ['workbench.lan'] });
    assert.equal((await named.inject({ url: '/api/model', headers: { host: 'workbench.lan:7860' } })).statusCode, 200);
    assert.equal((await named.inject({ url: '/api/model', headers: { host: 'localhost:7860' } })).statusCode, 200);
    await expectError(named.inject({ url: '/api/model', headers: { host: 'rebound.evil.example' } }), 403, /not allowed/);
    await named.close();
    // Listening beyond loopback needs the list; refused before anything listens.
    await assert.rejects(serve({ model, host: '0.0.0.0', port: 0, print: null }), /0\.0\.0\.0 exposes the server.*--allowed-hosts/);
  });
});

describe('server: the web app and path traversal', () => {
  let dir: string;
  let app: FastifyInstance;
  let port: number;
  const SECRET = 'TOP-SECRET-OUTSIDE-WEBROOT';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glassbox-web-'));
    mkdirSync(join(dir, 'dist', 'assets'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><title>workbench</title>INDEX');
    writeFileSync(join(dir, 'dist', 'assets', 'app.js'), 'console.log("app")');
    writeFileSync(join(dir, 'dist', '.env'), SECRET);
    writeFileSync(join(dir, 'secret.txt'), SECRET);
    writeFileSync(join(dir, 'package.json'), SECRET);
    app = createServer({ model, webRoot: join(dir, 'dist') });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A request with the path sent as is (no client-side normalisation of '..'). */
  const raw = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      });
      req.on('error', reject);
    });

  it('serves index.html, assets, and index.html for client-side routes', async () => {
    const root = await app.inject({ url: '/' });
    assert.equal(root.statusCode, 200);
    assert.match(root.body, /INDEX/);
    const route = await app.inject({ url: '/patching/view?x=1' });
    assert.equal(route.statusCode, 200);
    assert.match(route.body, /INDEX/);
    const js = await app.inject({ url: '/assets/app.js' });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    const missing = await app.inject({ url: '/assets/missing.js' });
    assert.equal(missing.statusCode, 404);
    assert.equal(body(missing).statusCode, 404);
  });

  it('never returns a file outside the web root, nor a dotfile', async () => {
    const paths = [
      '/../secret.txt',
      '/../package.json',
      '/%2e%2e/package.json',
      '/%2E%2E/secret.txt',
      '/..%2fsecret.txt',
      '/%2e%2e%2fsecret.txt',
      '/assets/../../secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/assets/..%5c..%5csecret.txt',
      '/..\\secret.txt',
      '/api/../../secret.txt',
      '/api/../../etc/passwd',
      '/../../../../../../etc/passwd',
      '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '//etc/passwd',
      `/${encodeURIComponent(join(dir, 'secret.txt'))}`,
      '/%252e%252e/secret.txt',
      '/.env',
      '/%2eenv',
      '/assets/%00../../secret.txt',
    ];
    for (const p of paths) {
      for (const r of [await raw(p), await app.inject({ url: p }).then((x) => ({ status: x.statusCode, body: x.body }))]) {
        assert.ok(!r.body.includes(SECRET), `${p} leaked a file outside the web root`);
        assert.ok(!r.body.includes('root:'), `${p} leaked /etc/passwd`);
        assert.ok(r.status === 200 ? r.body.includes('INDEX') : r.status >= 400, `${p}: ${r.status} ${r.body.slice(0, 80)}`);
      }
    }
  });

  it('without a built web app, says how to build it', async () => {
    const bare = createServer({ model, webRoot: join(dir, 'nothing-here') });
    for (const url of ['/', '/some/route']) {
      const r = await bare.inject({ url });
      assert.equal(r.statusCode, 200);
      assert.match(r.body, /has not been built/);
    }
    assert.equal((await bare.inject({ url: '/api/model' })).statusCode, 200);
    await bare.close();
  });
});

describe('server: patching jobs', () => {
  let app: FastifyInstance;
  before(() => {
    // A pass budget of 1 MiB runs 8 patched rows per pass, so the sweep takes several passes.
    app = createServer({ model, webRoot: null, passBudgetBytes: 2 ** 20 });
  });
  after(() => app.close());
  const problem = { clean: 'Hello world the cat', corrupted: 'Hello world the hat', answer: ' cat', wrong: ' hat' };
  const libProblem = { clean: problem.clean, corrupted: problem.corrupted, answer: 269, wrong: 276 };

  it('streams progress and the result; numbers equal the patching sweeps', async () => {
    assert.equal(model.toTokens(' hat', { prependBos: false })[0]![0], 276);
    const start = await app.inject({
      method: 'POST',
      url: '/api/patching',
      payload: { ...problem, kinds: ['resid_pre', 'head_out', 'attn_out', 'mlp_out'] },
    });
    assert.equal(start.statusCode, 202, start.body);
    const { jobId, total, events } = body(start) as { jobId: string; total: number; events: string };
    const s = 5;
    assert.equal(total, L * s * 3 + L * H);
    assert.equal(events, `/api/jobs/${jobId}/events`);
    const stream = await app.inject({ url: events });
    assert.equal(stream.statusCode, 200);
    assert.match(String(stream.headers['content-type']), /text\/event-stream/);
    const evs = parseSse(stream.body);
    const progress = evs.filter((e) => e.event === 'progress').map((e) => (e.data as { done: number }).done);
    assert.equal(progress.length, 1 + Math.ceil(total / 8), `the start, then one progress event per pass: ${progress}`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]! >= progress[i - 1]!, 'progress only grows');
    assert.equal(progress.at(-1), total);
    const last = evs.at(-1)!;
    assert.equal(last.event, 'result');
    const res = last.data as Json;
    closeGrid(res.residPre, values(patchResidPre(model, libProblem)), [L, s], 1e-4, 'residPre');
    closeGrid(res.attnOut, values(patchAttnOut(model, libProblem)), [L, s], 1e-4, 'attnOut');
    closeGrid(res.mlpOut, values(patchMlpOut(model, libProblem)), [L, s], 1e-4, 'mlpOut');
    closeGrid(res.headOut, values(patchHeadOut(model, libProblem)), [L, H], 1e-4, 'headOut');
    // the prompts differ only at the last position: patching it at layer 0 restores the clean run
    closeGrid((res.residPre as number[][])[0], [0, 0, 0, 0, 1], [s], 1e-4, 'residPre[0]');
    // Each progress event after a pass carries the result so far: the finished runs (in sweep order:
    // kind, layer, position or head) as in the result, the others null.
    const sweep = (r: Json) => (['residPre', 'headOut', 'attnOut', 'mlpOut'] as const).flatMap((k) => (r[k] as (number | null)[][]).flat());
    const final = sweep(res);
    const partials = evs.filter((e) => e.event === 'progress' && (e.data as { done: number }).done > 0);
    assert.equal(partials.length, Math.ceil(total / 8));
    for (const e of partials) {
      const { done, partial } = e.data as { done: number; partial: Json };
      assert.equal(partial.cleanValue, res.cleanValue);
      assert.deepEqual(sweep(partial), [...final.slice(0, done), ...Array<null>(total - done).fill(null)], `partial at ${done}`);
    }
    assert.deepEqual(res.strTokens, ['<|endoftext|>', 'Hello', ' world', ' the', ' cat']);
    // GET gives the same result; a finished job cannot be cancelled; its events replay
    const status = body(await app.inject({ url: `/api/jobs/${jobId}` }));
    assert.equal(status.status, 'done');
    assert.equal(status.done, total);
    assert.deepEqual(status.result, res);
    const del = await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}` });
    assert.equal(del.statusCode, 409);
    const replay = parseSse((await app.inject({ url: events })).body);
    assert.deepEqual(replay.at(-1), last);
  });

  it('head_out_by_pos: [layer][pos][head] equal to patchHeadOut by position; its partial results fill in in sweep order', async () => {
    const start = body(await app.inject({ method: 'POST', url: '/api/patching', payload: { ...problem, kinds: ['head_out_by_pos'] } }));
    const s = 5;
    assert.equal(start.total, L * s * H);
    const evs = parseSse((await app.inject({ url: start.events as string })).body);
    const res = evs.at(-1)!.data as Json;
    assert.equal(evs.at(-1)!.event, 'result');
    assert.ok(!('residPre' in res) && !('headOut' in res));
    const byPos = res.headOutByPos as number[][][];
    assert.equal(byPos.length, L);
    byPos.forEach((rows, l) =>
      closeGrid(
        rows,
        values(patchHeadOut(model, libProblem, { perPosition: true })).slice(l * s * H, (l + 1) * s * H),
        [s, H],
        1e-4,
        `L${l}`,
      ),
    );
    const partial = evs.find((e) => e.event === 'progress' && (e.data as { done: number }).done > 0)!.data as {
      done: number;
      partial: Json;
    };
    const flat = (partial.partial.headOutByPos as (number | null)[][][]).flat(2);
    assert.deepEqual(flat, [...byPos.flat(2).slice(0, partial.done), ...Array<null>(L * s * H - partial.done).fill(null)]);
  });

  it('default kinds are resid_pre and head_out', async () => {
    const start = body(await app.inject({ method: 'POST', url: '/api/patching', payload: { ...problem, pos: -1 } }));
    const evs = parseSse((await app.inject({ url: start.events as string })).body);
    const res = evs.at(-1)!.data as Json;
    assert.ok('residPre' in res && 'headOut' in res);
    assert.ok(!('attnOut' in res) && !('mlpOut' in res));
  });
});

describe('server: concurrency and cancellation on a listening server', () => {
  let app: FastifyInstance;
  let base: string;
  const deep = tinyModel({ nLayers: 12, seed: 3 });
  before(async () => {
    app = createServer({ model: deep, webRoot: null, passBudgetBytes: 2 ** 20 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  after(() => app.close());
  const postJson = (path: string, payload: unknown) =>
    fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });

  it('ten different requests at once each get their own answer', async () => {
    const prompts = [
      'Hello world',
      'the cat',
      'the hat the cat',
      'Hello',
      'cat cat cat',
      'The dog',
      'In the beginning',
      'hello world the cat sat',
      'a b f o',
      'He was lazy',
    ];
    const sequential: unknown[] = [];
    for (const prompt of prompts) sequential.push(await (await postJson('/api/forward', { prompt, topK: 4 })).json());
    const parallel = await Promise.all(prompts.map((prompt) => postJson('/api/forward', { prompt, topK: 4 }).then((r) => r.json())));
    assert.deepEqual(parallel, sequential);
    // mixed endpoints at once
    const mixed = await Promise.all([
      postJson('/api/attention', { prompt: 'Hello world', layer: 3 }).then((r) => r.json()),
      postJson('/api/logit-lens', { prompt: 'the cat', topK: 1 }).then((r) => r.json()),
      postJson('/api/forward', { prompt: 'Hello world', topK: 4 }).then((r) => r.json()),
      postJson('/api/attention', { prompt: 'Hello world', layer: 3 }).then((r) => r.json()),
    ]);
    assert.deepEqual(mixed[2], sequential[0]);
    assert.deepEqual(mixed[0], mixed[3]);
  });

  it('a job runs between other requests and stops when cancelled', async () => {
    const start = await postJson('/api/patching', {
      clean: 'Hello world the cat the hat',
      corrupted: 'Hello world the hat the hat',
      answer: ' hat',
      wrong: ' cat',
      kinds: ['resid_pre', 'head_out', 'attn_out', 'mlp_out'],
    });
    assert.equal(start.status, 202);
    const { jobId, total } = (await start.json()) as { jobId: string; total: number };
    const stream = await fetch(`${base}/api/jobs/${jobId}/events`);
    assert.equal(stream.status, 200);
    let cancelledAt = -1;
    let forwardOk = false;
    const evs: SseEvent[] = await readSse(stream, async (e) => {
      if (e.event !== 'progress' || cancelledAt >= 0) return;
      const done = (e.data as { done: number }).done;
      if (done === 0) return;
      // the job is running: other requests are answered between its chunks
      const f = await postJson('/api/forward', { prompt: 'Hello world', topK: 2 });
      forwardOk = f.status === 200;
      const st = (await (await fetch(`${base}/api/jobs/${jobId}`)).json()) as { status: string; done: number };
      assert.equal(st.status, 'running');
      const del = await fetch(`${base}/api/jobs/${jobId}`, { method: 'DELETE' });
      assert.equal(del.status, 200);
      const d = (await del.json()) as { status: string; done: number };
      assert.equal(d.status, 'cancelled');
      cancelledAt = d.done;
    });
    assert.ok(forwardOk, 'a forward request succeeded while the job ran');
    assert.ok(cancelledAt > 0 && cancelledAt < total, `cancelled mid-way (${cancelledAt} of ${total})`);
    assert.equal(evs.at(-1)!.event, 'cancelled');
    assert.ok(!evs.some((e) => e.event === 'result'));
    // the job does no more work after the cancel
    await new Promise((r) => setTimeout(r, 300));
    const st = (await (await fetch(`${base}/api/jobs/${jobId}`)).json()) as { status: string; done: number; result?: unknown };
    assert.equal(st.status, 'cancelled');
    assert.equal(st.done, cancelledAt);
    assert.equal(st.result, undefined);
    // the finished part is kept: the cancelled event's and GET's partial result, cancelledAt cells filled in sweep order
    const kept = (evs.at(-1)!.data as { partial: Json }).partial;
    assert.deepEqual((st as { partial?: unknown }).partial, kept);
    const cells = (['residPre', 'headOut', 'attnOut', 'mlpOut'] as const).flatMap((k) => (kept[k] as (number | null)[][]).flat());
    assert.equal(cells.length, total);
    assert.ok(cells.slice(0, cancelledAt).every((v) => typeof v === 'number'));
    assert.ok(cells.slice(cancelledAt).every((v) => v === null));
    // the server still works
    assert.equal((await postJson('/api/tokenize', { prompt: 'Hello' })).status, 200);
  });
});

describe('serve()', () => {
  it('loads the model once, listens on 127.0.0.1 and prints the URL', async () => {
    const lines: string[] = [];
    const warnings: string[] = [];
    const running = await serve({
      model,
      modelName: 'tiny',
      port: 0,
      webRoot: null,
      print: { log: (l) => lines.push(l), warn: (l) => warnings.push(l) },
    });
    try {
      assert.equal(running.host, '127.0.0.1');
      assert.match(running.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      assert.equal(lines.length, 1);
      assert.ok(lines[0]!.includes(running.url));
      assert.deepEqual(warnings, []);
      const info = (await (await fetch(`${running.url}api/model`)).json()) as Json;
      assert.equal(info.name, 'tiny');
    } finally {
      await running.close();
    }
    assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('localhost') && isLoopbackHost('::1'));
    assert.ok(!isLoopbackHost('0.0.0.0') && !isLoopbackHost('::') && !isLoopbackHost('192.168.1.2'));
    await assert.rejects(serve({ model, port: 70000, print: null }), /port must be an integer in 0\.\.65535/);
  });
});
