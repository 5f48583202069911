/**
 * Explanations and the Neuronpedia export, against a local stub of an OpenAI-compatible
 * chat-completions server.
 *
 * The subject is the one-hot model of sae-features.test.ts: feature i fires exactly on token i
 * ("t{i}"). The stub explainer answers "the token tI" for the token marked most often, and the
 * stub scorer answers 1 exactly for the excerpts holding that token, so every explanation must
 * be "the token t{i}" and every detection score exactly 1 (all held-out activating contexts hold
 * t{i}; the non-activating ones, checked with the model, do not). Failures are scripted: 429 with
 * Retry-After, 500, a reply that never comes (timeout), malformed replies, a 400 that fails at
 * once; the key never reaches a file or an error message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PRNG } from '../src/index.js';
import { collectFeatures, featurePage, loadFeatureStore, saveFeatureStore } from '../src/sae/features/index.js';
import {
  ChatError,
  chatCompletion,
  detectionScore,
  explainFeatures,
  nonActivatingPool,
  parseDetection,
  parseExplanation,
  readExplanations,
  EXPLANATIONS_FILE,
} from '../src/sae/explain/index.js';
import { exportNeuronpedia } from '../src/sae/neuronpedia.js';
import { ONE_HOT, oneHotModel, tokenSae } from './sae-helpers.js';

const S = ONE_HOT.nCtx;

// ---- the stub server ----

type Script = 'ok' | '429' | '500' | 'hang' | 'not-json' | 'no-content' | '400' | 'empty';

interface StubRequest {
  authorization: string | undefined;
  body: { model: string; messages: { role: string; content: string }[] };
}

class StubChat {
  readonly requests: StubRequest[] = [];
  /** Scripted answers, taken one per request before the normal ones. */
  script: Script[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Milliseconds before each normal answer (lets requests overlap). */
  delayMs = 0;
  url = '';
  #server = http.createServer((req, res) => this.#handle(req, res));
  #hung: http.ServerResponse[] = [];

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
    return this;
  }
  async close(): Promise<void> {
    for (const r of this.#hung) r.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404).end('not found');
        return;
      }
      const body = JSON.parse(raw) as StubRequest['body'];
      this.requests.push({ authorization: req.headers.authorization, body });
      const step = this.script.shift() ?? 'ok';
      const send = (status: number, text: string, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(text);
      };
      const reply = (content: string): string => JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content } }] });
      switch (step) {
        case '429':
          return send(429, '{"error":"rate limited"}', { 'Retry-After': '0' });
        case '500':
          return send(500, '{"error":"overloaded"}');
        case 'hang':
          this.#hung.push(res);
          return;
        case 'not-json':
          return send(200, '<html>gateway</html>');
        case 'no-content':
          return send(200, JSON.stringify({ choices: [] }));
        case '400':
          // a server that echoes the request's key back
          return send(400, JSON.stringify({ error: `bad request from ${req.headers.authorization}` }));
        case 'empty':
          // readable as neither an explanation nor a 0/1 list: asked again
          return send(200, reply('  \n '));
      }
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      setTimeout(() => {
        this.inFlight--;
        send(200, reply(answer(body.messages)));
      }, this.delayMs);
    });
  }
}

/** The stub's "model": explain by the most marked token; detect by whether the excerpt holds it. */
function answer(messages: { role: string; content: string }[]): string {
  const system = messages[0]?.content ?? '';
  const user = messages[1]?.content ?? '';
  if (system.includes('Explain in one short phrase')) {
    const counts = new Map<string, number>();
    for (const m of user.matchAll(/<<(t\d+)>>/g)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    const best = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'nothing';
    return `Explanation: "the token ${best}"`;
  }
  const token = /Explanation: the token (t\d+)/.exec(user)?.[1] ?? 'none';
  const lines = user.split('\n').filter((l) => /^\d+\. /.test(l));
  const has = (text: string): boolean => (text.match(/t\d+/g) ?? ([] as string[])).includes(token);
  return `Here you go: [${lines.map((l) => (has(l.replace(/^\d+\. /, '')) ? 1 : 0)).join(', ')}]`;
}

// ---- fixtures ----

const tmp = mkdtempSync(join(tmpdir(), 'glassbox-explain-'));
const stub = new StubChat();
const KEY = 'sk-test-secret-4242';
const model = oneHotModel(2);
const sae = tokenSae();
const rng = new PRNG(11);
const ids = Int32Array.from({ length: 40 * S }, () => rng.int(10));
const store = collectFeatures(model, sae, ids, { topK: 8, before: 3, after: 2, contextSize: S, batchSize: 8, modelName: 'tiny-onehot' });
const storeDir = join(tmp, 'store');
saveFeatureStore(store, storeDir);
const pool = nonActivatingPool(model, sae, store, { size: 24 });
const base = { model: 'stub-model', apiKey: KEY, backoffMs: 1, maxBackoffMs: 5, timeoutMs: 2000, seed: 1 };

before(async () => {
  await stub.start();
});
after(async () => {
  await stub.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the pool of non-activating contexts', () => {
  it('holds, for feature i, only windows without token i (checked with the model)', () => {
    assert.ok(pool.windows.length >= 12);
    for (let f = 0; f < 10; f++) {
      const picked = pool.pick(f, 5);
      assert.ok(picked.length > 0, `feature ${f} has non-activating windows`);
      for (const w of picked) assert.ok(!w.tokens.includes(`t${f}`), `feature ${f}: ${w.tokens.join('')}`);
    }
    // feature 10 never fires: every window qualifies
    assert.equal(pool.pick(10, 100).length, pool.windows.length);
  });
});

describe('parsing and scoring', () => {
  it('reads explanations and 0/1 lists, and computes balanced accuracy by hand', () => {
    assert.equal(parseExplanation('\n  Explanation: "the word cat"\nmore'), 'the word cat');
    assert.equal(parseExplanation('   \n'), null);
    assert.equal(parseExplanation('the token " the"'), 'the token " the"');
    assert.deepEqual(parseDetection('sure: [1, 0, true, "0"]', 4), [1, 0, 1, 0]);
    assert.equal(parseDetection('[1, 0]', 3), null);
    assert.equal(parseDetection('[1, 2, 0]', 3), null);
    assert.equal(parseDetection('no list', 1), null);
    // 3 of 4 positives found (TPR 0.75), 1 of 2 negatives right (TNR 0.5): (0.75 + 0.5) / 2
    const s = detectionScore([1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 0]);
    assert.equal(s.balanced_accuracy, 0.625);
    assert.deepEqual([s.true_positives, s.false_negatives, s.true_negatives, s.false_positives], [3, 1, 1, 1]);
  });
});

describe('chatCompletion', () => {
  it('retries 429 (Retry-After), 500, a timeout and malformed replies, then answers', async () => {
    stub.script = ['429', '500', 'hang', 'not-json', 'no-content'];
    const retries: string[] = [];
    const before = stub.requests.length;
    const text = await chatCompletion(
      [
        { role: 'system', content: 'Explain in one short phrase' },
        { role: 'user', content: 'Example 1: a<<t3>>b' },
      ],
      { apiBase: stub.url, ...base, retries: 8, timeoutMs: 1000, onRetry: (r) => retries.push(r.reason) },
    );
    assert.equal(text, 'Explanation: "the token t3"');
    // each scripted failure was retried, in order (a slow machine may add timeouts between them)
    const kinds = [
      /HTTP 429/,
      /HTTP 500/,
      /no reply within 1000 ms/,
      /no choices\[0\]\.message\.content.*gateway/,
      /no choices\[0\]\.message\.content.*choices/,
    ];
    let at = 0;
    for (const reason of retries) if (at < kinds.length && kinds[at]!.test(reason)) at++;
    assert.equal(at, kinds.length, retries.join('\n'));
    assert.equal(stub.requests.length - before, retries.length + 1);
    assert.equal(stub.requests.at(-1)!.authorization, `Bearer ${KEY}`);
  });

  it('fails at once on a 400, with the echoed key scrubbed; gives up after its retries', async () => {
    stub.script = ['400'];
    const before = stub.requests.length;
    await assert.rejects(chatCompletion([{ role: 'user', content: 'x' }], { apiBase: stub.url, ...base }), (e: unknown) => {
      assert.ok(e instanceof ChatError && e.kind === 'http' && e.status === 400);
      assert.ok(!(e as Error).message.includes(KEY), (e as Error).message);
      assert.match((e as Error).message, /Bearer \*\*\*/);
      return true;
    });
    assert.equal(stub.requests.length - before, 1);
    stub.script = ['500', '500', '500'];
    await assert.rejects(
      chatCompletion([{ role: 'user', content: 'x' }], { apiBase: stub.url, ...base, retries: 2 }),
      /HTTP 500.*gave up after 3 attempt/,
    );
    await assert.rejects(chatCompletion([{ role: 'user', content: 'x' }], { apiBase: 'not a url', ...base }), /not a URL/);
  });
});

describe('explainFeatures', () => {
  it('explains every live feature, scores each by detection (1.0 here, by construction), resumes, and keeps the key out of the file', async () => {
    stub.script = ['429', 'empty', '400'];
    stub.delayMs = 5;
    const progress: number[] = [];
    const first = await explainFeatures(store, storeDir, {
      apiBase: stub.url,
      ...base,
      concurrency: 3,
      explainContexts: 4,
      scoreContexts: 3,
      nonActivating: pool.pick,
      onProgress: (p) => progress.push(p.done),
    });
    stub.delayMs = 0;
    // the 400 failed one feature at once; it is not written, so the next run retries it
    assert.equal(first.failed.length, 1);
    assert.match(first.failed[0]!.error, /HTTP 400/);
    assert.equal(first.explained.length, 9);
    assert.ok(stub.maxInFlight <= 3, `at most 3 requests in flight, saw ${stub.maxInFlight}`);
    assert.deepEqual(
      progress,
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
    const fileText = readFileSync(join(storeDir, EXPLANATIONS_FILE), 'utf8');
    assert.ok(!fileText.includes(KEY));
    assert.equal(readExplanations(storeDir).size, 9);

    const second = await explainFeatures(store, storeDir, {
      apiBase: stub.url,
      ...base,
      scoreContexts: 3,
      explainContexts: 4,
      nonActivating: pool.pick,
    });
    assert.equal(second.skipped, 9);
    assert.equal(second.explained.length, 1);
    assert.equal(second.failed.length, 0);

    const all = readExplanations(storeDir);
    assert.deepEqual(
      [...all.keys()].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    for (const [f, e] of all) {
      assert.equal(e.explanation, `the token t${f}`);
      assert.equal(e.explainer.model, 'stub-model');
      assert.equal(e.explainer.api_base, stub.url);
      const held = Math.min(3, featurePage(store, f).contexts.length - 4);
      assert.ok(e.score !== null);
      assert.equal(e.score.balanced_accuracy, 1);
      assert.equal(e.score.true_positives, held);
      assert.equal(e.score.true_negatives, held);
    }

    const before = stub.requests.length;
    const third = await explainFeatures(store, storeDir, { apiBase: stub.url, ...base, nonActivating: pool.pick });
    assert.equal(third.skipped, 10);
    assert.equal(stub.requests.length, before, 'a finished run makes no request');
  });

  it('refuses a malformed explanations.jsonl naming the line and field', () => {
    const dir = join(tmp, 'bad');
    saveFeatureStore(store, dir);
    writeFileSync(
      join(dir, EXPLANATIONS_FILE),
      '{"feature": 1, "explanation": "x", "score": null, "explainer": {"model": "m", "api_base": "u"}, "created_at": ""}\n{"feature": -2}\n',
    );
    assert.throws(() => readExplanations(dir), /explanations\.jsonl:2: 'feature' must be an integer >= 0/);
  });
});

describe('exportNeuronpedia', () => {
  it("writes the bulk-import layout SAEDashboard's exporter writes, with the store's numbers and the explanations", () => {
    delete process.env.NEURONPEDIA_CREATOR_ID; // the default creator id is checked below
    const loaded = loadFeatureStore(storeDir);
    const out = join(tmp, 'np');
    const r = exportNeuronpedia(loaded, storeDir, out, { sourceSet: 'glassbox-res-test', batchSize: 4, createdAt: new Date(0) });
    assert.equal(r.sourceId, '0-glassbox-res-test');
    assert.equal(r.dir, join(out, 'tiny-onehot', '0-glassbox-res-test'));
    const ls = (sub: string): string[] => readdirSync(join(r.dir, sub)).sort();
    assert.deepEqual(ls('.'), [
      'activations',
      'explanations',
      'features',
      'model.jsonl',
      'release.jsonl',
      'source.jsonl',
      'sourceset.jsonl',
    ]);
    assert.deepEqual(ls('features'), ['batch-0.jsonl.gz', 'batch-1.jsonl.gz', 'batch-2.jsonl.gz']);
    const rows = (rel: string): Record<string, unknown>[] => {
      const raw = readFileSync(join(r.dir, rel));
      const text = rel.endsWith('.gz') ? gunzipSync(raw).toString() : raw.toString();
      return text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const source = rows('source.jsonl')[0]!;
    assert.equal(source.id, '0-glassbox-res-test');
    assert.equal(source.setName, 'glassbox-res-test');
    assert.equal(source.num_tokens_in_prompt, S);
    assert.equal(rows('sourceset.jsonl')[0]!.name, 'glassbox-res-test');
    assert.equal(rows('model.jsonl')[0]!.id, 'tiny-onehot');
    const features = ['features/batch-0.jsonl.gz', 'features/batch-1.jsonl.gz', 'features/batch-2.jsonl.gz'].flatMap(rows);
    // 10 live features; 10 and 11 never fire and are left out, as SAEDashboard skips dead ones
    assert.deepEqual(
      features.map((f) => f.index),
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    );
    // the fields neuronpedia_export.py's Feature row has
    for (const k of [
      'modelId',
      'layer',
      'index',
      'maxActApprox',
      'hookName',
      'pos_str',
      'pos_values',
      'neg_str',
      'neg_values',
      'frac_nonzero',
      'freq_hist_data_bar_heights',
      'freq_hist_data_bar_values',
      'decoder_weights_dist',
      'neuron_alignment_indices',
      'correlated_features_indices',
    ])
      assert.ok(k in features[0]!, k);
    const page3 = featurePage(loaded, 3);
    const f3 = features[3]!;
    assert.equal(f3.layer, '0-glassbox-res-test');
    assert.equal(f3.maxActApprox, page3.maxActivation);
    assert.equal(f3.frac_nonzero, page3.density);
    assert.deepEqual(
      f3.pos_str,
      page3.logitEffects!.positive.map((x) => x.str),
    );
    assert.equal(
      (f3.freq_hist_data_bar_heights as number[]).reduce((a, b) => a + b, 0),
      page3.fireCount,
    );
    const acts = rows('activations/batch-0.jsonl.gz').filter((a) => a.index === '3');
    assert.equal(acts.length, page3.contexts.length);
    const a0 = acts[0]!;
    assert.deepEqual(
      a0.tokens,
      page3.contexts[0]!.tokens.map((t) => t.str),
    );
    assert.deepEqual(
      a0.values,
      page3.contexts[0]!.tokens.map((t) => t.act),
    );
    assert.equal(a0.maxValue, page3.contexts[0]!.activation);
    assert.equal((a0.tokens as string[])[a0.maxValueTokenIndex as number], 't3');
    for (const k of ['id', 'tokens', 'index', 'layer', 'modelId', 'maxValue', 'maxValueTokenIndex', 'minValue', 'values', 'creatorId'])
      assert.ok(k in a0, k);
    const expl = rows('explanations/batch-0.jsonl.gz');
    const e3 = expl.find((e) => e.index === '3')!;
    assert.equal(e3.description, 'the token t3');
    assert.equal(e3.explanationModelName, 'stub-model');
    assert.equal(e3.typeName, 'glassbox-detection');
    assert.equal(e3.authorId, 'clkht01d40000jv08hvalcvly');
    assert.deepEqual(e3.scores, [{ type: 'detection-balanced-accuracy', value: 1 }]);
    assert.ok(!existsSync(join(out, 'tiny-onehot', '0-glassbox-res-test', 'explanations', 'batch-3.jsonl.gz')));
  });
});
