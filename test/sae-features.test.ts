/**
 * Feature collection and the feature store: on a model whose embeddings are one-hot, an SAE whose
 * feature i fires exactly on token i (activation 0.5 + (p + 1) / 64 at position p) has top
 * contexts centred on token i with those activations, densities equal to token frequencies and
 * histograms one bins by hand; the streaming heaps keep exactly the brute-force top-k (ties to the
 * earlier context) however the stream is chunked; logit effects are the decoder rows through
 * diag(ln_final.w) W_U; a saved store loads back to the same pages, and corrupt or mismatched
 * files are refused with errors naming the file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRNG } from '../src/index.js';
import {
  FeatureCollector,
  collectFeatures,
  featurePage,
  formatFeaturePage,
  histogramEdges,
  loadFeatureStore,
  logitEffects,
  saveFeatureStore,
  type FeatureStore,
} from '../src/sae/features/index.js';
import { ONE_HOT, oneHotModel, tokenSae } from './sae-helpers.js';

const { vocab: V, nCtx: S } = ONE_HOT;

/** 10 contexts of tokens 0..9 (10 and 11 never occur). */
function stream(): Int32Array {
  const rng = new PRNG(11);
  return Int32Array.from({ length: 10 * S }, () => rng.int(10));
}

const actAt = (p: number): number => Math.fround(0.5 + (p + 1) / 64);

describe('collectFeatures: a feature per token', () => {
  const model = oneHotModel(2);
  const sae = tokenSae();
  const ids = stream();
  const options = { topK: 4, before: 3, after: 2, contextSize: S, batchSize: 3 };
  const store = collectFeatures(model, sae, ids, options);

  it('the top contexts of feature i are centred on token i, best first, with its activations', () => {
    for (let f = 0; f < V; f++) {
      // Brute force: in each context, the last occurrence of f is its max; rank by activation, then context.
      const cands: { v: number; c: number; p: number }[] = [];
      for (let c = 0; c < 10; c++) {
        let last = -1;
        for (let p = 0; p < S; p++) if (ids[c * S + p] === f) last = p;
        if (last >= 0) cands.push({ v: actAt(last), c, p: last });
      }
      cands.sort((a, b) => b.v - a.v || a.c - b.c);
      const page = featurePage(store, f);
      assert.equal(page.contexts.length, Math.min(4, cands.length), `feature ${f}`);
      page.contexts.forEach((ctx, j) => {
        const want = cands[j]!;
        assert.equal(ctx.context, want.c);
        assert.equal(ctx.position, want.p);
        assert.equal(ctx.activation, want.v);
        const centre = ctx.tokens[ctx.maxIndex]!;
        assert.equal(centre.id, f);
        assert.equal(centre.str, `t${f}`);
        assert.equal(centre.act, want.v);
        // The window: 3 before, 2 after, clipped at the context's ends, activations only on token f.
        const lo = Math.max(0, want.p - 3);
        const hi = Math.min(S - 1, want.p + 2);
        assert.equal(ctx.tokens.length, hi - lo + 1);
        assert.equal(ctx.maxIndex, want.p - lo);
        ctx.tokens.forEach((t, w) => {
          const q = lo + w;
          assert.equal(t.id, ids[want.c * S + q]);
          assert.equal(t.act, t.id === f ? actAt(q) : 0);
        });
      });
    }
  });

  it('density, counts, max and histograms match the token counts', () => {
    const edges = histogramEdges({ min: 1e-3, max: 1e3, bins: 60 });
    for (let f = 0; f < V; f++) {
      const page = featurePage(store, f);
      let n = 0;
      let sum = 0;
      let max = 0;
      const hist = new Array<number>(60).fill(0);
      for (let i = 0; i < ids.length; i++)
        if (ids[i] === f) {
          const a = actAt(i % S);
          n++;
          sum += a;
          max = Math.max(max, a);
          hist[edges.findIndex((e, j) => a >= e && a < edges[j + 1]!)]!++;
        }
      assert.equal(page.fireCount, n);
      assert.equal(page.density, Math.fround(n / ids.length));
      assert.equal(page.maxActivation, max);
      if (n > 0) assert.ok(Math.abs(page.meanActivation! - sum / n) < 1e-6);
      else assert.equal(page.meanActivation, null);
      assert.deepEqual(page.histogram.counts, hist);
    }
    assert.equal(featurePage(store, 10).contexts.length, 0);
    assert.equal(store.meta.corpus.tokens, 160);
    assert.equal(store.meta.corpus.contexts, 10);
  });

  it('logit effects are W_dec[i] through diag(ln_final.w) W_U', () => {
    const w = Array.from(model.params.ln_final.w!.dataSync() as Float32Array);
    const W_U = model.params.unembed.W_U.dataSync() as Float32Array;
    for (const f of [0, 5, 11]) {
      const eff = Array.from({ length: V }, (_, t) => w[f]! * W_U[f * V + t]!);
      const order = eff.map((v, t) => [v, t] as const).sort((a, b) => b[0] - a[0]);
      const page = featurePage(store, f);
      assert.equal(page.logitEffects!.positive.length, 10);
      assert.equal(page.logitEffects!.positive[0]!.id, order[0]![1]);
      assert.ok(Math.abs(page.logitEffects!.positive[0]!.value - order[0]![0]) < 1e-5);
      assert.equal(page.logitEffects!.negative[0]!.id, order[V - 1]![1]);
      assert.equal(page.logitEffects!.negative[0]!.str, `t${order[V - 1]![1]}`);
    }
    const le = logitEffects(model, sae.withConfig({ hook_name: 'blocks.0.attn.hook_pattern' }), 3);
    assert.ok('reason' in le && /does not write linearly/.test(le.reason));
  });

  it('streaming one context at a time gives the same store as one big batch', () => {
    const one = collectFeatures(model, sae, ids, { ...options, batchSize: 1 });
    const all = collectFeatures(model, sae, ids, { ...options, batchSize: 10 });
    assertSameStore(one, store);
    assertSameStore(all, store);
  });

  it('saves and loads back to the same pages', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-features-'));
    try {
      saveFeatureStore(store, dir);
      const back = loadFeatureStore(dir);
      assertSameStore(back, store);
      for (let f = 0; f < V; f++) assert.deepEqual(featurePage(back, f), featurePage(store, f));
      assert.match(formatFeaturePage(featurePage(back, 3)), /\[\[t3\]\]/);
      assert.throws(() => featurePage(back, V), /out of range/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function assertSameStore(a: FeatureStore, b: FeatureStore): void {
  const { tensorsSha256: _x, ...ma } = a.meta;
  const { tensorsSha256: _y, ...mb } = b.meta;
  assert.deepEqual(ma, mb);
  for (const k of Object.keys(b.stats) as (keyof FeatureStore['stats'])[]) assert.deepEqual(a.stats[k], b.stats[k], `stats.${k}`);
  assert.deepEqual(a.density, b.density);
  assert.deepEqual(a.logits, b.logits);
}

describe('FeatureCollector: the heaps keep exactly the top k', () => {
  // Random activations on few levels (many ties), 7 features, contexts of 5.
  const rng = new PRNG(3);
  const dSae = 7;
  const C = 40;
  const L = 5;
  const ids = Int32Array.from({ length: C * L }, () => rng.int(9));
  const acts = Float32Array.from({ length: C * L * dSae }, () => (rng.uniform() < 0.6 ? 0 : (1 + rng.int(6)) / 4));
  const opts = { topK: 3, before: 1, after: 1, excludedTokenIds: [8] };

  const feed = (chunk: number): ReturnType<FeatureCollector['stats']> => {
    const c = new FeatureCollector(dSae, opts);
    for (let s = 0; s < C; s += chunk) {
      const e = Math.min(C, s + chunk);
      c.add(ids.subarray(s * L, e * L), acts.subarray(s * L * dSae, e * L * dSae), L);
    }
    return c.stats();
  };

  it('matches a brute-force ranking (ties to the earlier context, then the earlier position)', () => {
    const st = feed(40);
    for (let f = 0; f < dSae; f++) {
      const cands: { v: number; c: number; p: number }[] = [];
      for (let c = 0; c < C; c++) {
        let best = 0;
        let pos = -1;
        for (let p = 0; p < L; p++) {
          const t = c * L + p;
          const a = acts[t * dSae + f]!;
          if (ids[t] !== 8 && a > best) {
            best = a;
            pos = p;
          }
        }
        if (pos >= 0) cands.push({ v: best, c, p: pos });
      }
      cands.sort((a, b) => b.v - a.v || a.c - b.c);
      for (let j = 0; j < 3; j++) {
        const o = f * 3 + j;
        assert.equal(st.topContexts[o], cands[j]?.c ?? -1, `feature ${f} rank ${j}`);
        if (cands[j]) {
          assert.equal(st.topValues[o], cands[j]!.v);
          assert.equal(st.topPositions[o], cands[j]!.p);
        }
      }
      // Counts leave out token 8.
      let n = 0;
      for (let t = 0; t < C * L; t++) if (ids[t] !== 8 && acts[t * dSae + f]! > 0) n++;
      assert.equal(st.fireCount[f], n);
    }
  });

  it('gives the same result for every chunking', () => {
    const ref = feed(40);
    for (const chunk of [1, 3, 7]) assert.deepEqual(feed(chunk), ref);
  });

  it('refuses contexts out of order and activations of the wrong size', () => {
    const c = new FeatureCollector(dSae, opts);
    c.add(ids.subarray(0, 2 * L), acts.subarray(0, 2 * L * dSae), L, 5);
    assert.throws(() => c.add(ids.subarray(0, L), acts.subarray(0, L * dSae), L, 6), /context 6 was already passed/);
    assert.throws(() => c.add(ids.subarray(0, L), acts.subarray(0, 3), L), /expected/);
  });
});

describe('loadFeatureStore: corrupt and mismatched files', () => {
  const model = oneHotModel(2);
  const sae = tokenSae();
  const ids = stream();
  const make = (topK: number): string => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-features-bad-'));
    saveFeatureStore(collectFeatures(model, sae, ids, { topK, contextSize: S, batchSize: 5 }), dir);
    return dir;
  };

  it('names the file in every error', () => {
    const a = make(2);
    const b = make(3);
    const json = join(a, 'features.json');
    const tensors = join(a, 'features.safetensors');
    const good = readFileSync(json, 'utf8');
    const goodTensors = readFileSync(tensors);
    try {
      // features.json is not JSON.
      writeFileSync(json, '{ not json');
      assert.throws(
        () => loadFeatureStore(a),
        (e: Error) => e.message.startsWith(json) && /cannot read/.test(e.message),
      );
      // Another format, another version.
      writeFileSync(json, JSON.stringify({ ...JSON.parse(good), format: 'other' }));
      assert.throws(
        () => loadFeatureStore(a),
        (e: Error) => e.message.startsWith(json) && /not a glassbox feature store/.test(e.message),
      );
      writeFileSync(json, JSON.stringify({ ...JSON.parse(good), version: 99 }));
      assert.throws(
        () => loadFeatureStore(a),
        (e: Error) => e.message.startsWith(json) && /version 99/.test(e.message),
      );
      // JSON and tensors from different runs.
      copyFileSync(join(b, 'features.json'), json);
      assert.throws(
        () => loadFeatureStore(a),
        (e: Error) => e.message.startsWith(tensors) && /does not match/.test(e.message),
      );
      writeFileSync(json, good);
      // A truncated tensors file.
      truncateSync(tensors, 100);
      assert.throws(
        () => loadFeatureStore(a),
        (e: Error) => e.message.startsWith(tensors),
      );
      writeFileSync(tensors, goodTensors);
      // The JSON's shapes do not fit the tensors (sha256 still right).
      writeFileSync(json, JSON.stringify({ ...JSON.parse(good), top_k: 5 }));
      assert.throws(
        () => loadFeatureStore(a),
        (e: Error) =>
          e.message.startsWith(tensors) &&
          /'top_tokens' is int32 \[12, 2, 16\], but .*features\.json implies int32 \[12, 5, 16\]/.test(e.message),
      );
      writeFileSync(json, good);
      // A missing tensors file, a missing directory.
      rmSync(tensors);
      assert.throws(
        () => loadFeatureStore(a),
        (e: Error) => e.message.startsWith(tensors) && /not found/.test(e.message),
      );
      assert.throws(() => loadFeatureStore(join(a, 'nope')), /nope\/features\.json: not found/);
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  });
});
