/**
 * Feature stores of transcoder features (src/sae/clt/features.ts): every number of each layer's
 * store equals a direct computation on a tiny model (the encoder written out in plain JS loops
 * over the cached inputs, top contexts, counts, histograms and logit effects built by hand),
 * within 1e-4; the stores on disk read back through `FeatureStoreReader`; an interrupted
 * collection resumes to exactly the uninterrupted stores; a store of other transcoders is refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRNG, tensor } from '../src/index.js';
import { CrossLayerTranscoder, FeatureStoreReader, type CltConfig, type FeatureStats } from '../src/sae/index.js';
import { checkTranscoderStore, collectTranscoderFeatures, featureStoreDir, saveTranscoderFeatureStores } from '../src/sae/clt/features.js';
import { tinyRandomModel, TINY_VOCAB } from './tiny-models.js';

const TOL = 1e-4;
const S = 8;

/** A two-layer JumpReLU transcoder set (CLT or PLT) with random encoder biases, so some features fire and some do not. */
function randomTranscoders(crossLayer: boolean, seed: number): CrossLayerTranscoder {
  const cfg: CltConfig = {
    n_layers: 2,
    d_in: 16,
    d_out: 16,
    widths: [6, 5],
    activation: 'jumprelu',
    cross_layer: crossLayer,
    skip: false,
    hook_names_in: ['blocks.0.ln2.hook_normalized', 'blocks.1.hook_resid_mid'],
    hook_names_out: ['blocks.0.hook_mlp_out', 'blocks.1.hook_mlp_out'],
  };
  const base = CrossLayerTranscoder.init(cfg, { seed, threshold: 0.3, decoderNorm: 0.7 });
  const rng = new PRNG(seed + 7);
  const params = { ...base.params };
  cfg.widths.forEach((w, l) => {
    params[`b_enc.${l}`] = tensor(
      Float32Array.from({ length: w }, () => rng.normal() * 0.4),
      [w],
    );
  });
  return new CrossLayerTranscoder(cfg, params);
}

const model = tinyRandomModel(5, { nLayers: 2 });
const rng = new PRNG(11);
const CONTEXTS = 7;
const ids = Int32Array.from({ length: CONTEXTS * S }, () => rng.int(TINY_VOCAB));
const options = { contextSize: S, batchSize: 3, topK: 3, before: 2, after: 1, logitEffects: 4 };

/** Layer l's activations [contexts * S, width], from the cached input and the encoder written out by hand. */
function handActs(tc: CrossLayerTranscoder, l: number): Float32Array {
  const hook = tc.inputHook(l);
  const { cache } = model.runWithCache(tensor(ids, [CONTEXTS, S], 'int64'), { names: [hook] });
  const x = cache.get(hook).dataSync() as Float32Array;
  const W = tc.wEnc(l).dataSync() as Float32Array;
  const b = tc.bEnc(l).dataSync() as Float32Array;
  const th = tc.threshold(l)!.dataSync() as Float32Array;
  const [d, w] = [tc.dIn, tc.widths[l]!];
  const out = new Float32Array(CONTEXTS * S * w);
  for (let t = 0; t < CONTEXTS * S; t++)
    for (let f = 0; f < w; f++) {
      let pre = b[f]!;
      for (let i = 0; i < d; i++) pre += x[t * d + i]! * W[i * w + f]!;
      out[t * w + f] = pre > th[f]! && pre > 0 ? pre : 0;
    }
  return out;
}

/** The logit effects of every feature of layer l by hand: (sum_t W_dec[l->t]) diag(ln_final.w) W_U, [w, V]. */
function handLogits(tc: CrossLayerTranscoder, l: number): number[][] {
  const targets = tc.crossLayer ? Array.from({ length: tc.nLayers - l }, (_, i) => l + i) : [l];
  const w = tc.widths[l]!;
  const D = tc.dOut;
  const V = model.cfg.dVocab;
  const WU = model.params.unembed.W_U.dataSync() as Float32Array;
  const g = model.params.ln_final.w!.dataSync() as Float32Array;
  const dec = targets.map((t) => tc.wDec(l, t).dataSync() as Float32Array);
  return Array.from({ length: w }, (_, f) =>
    Array.from({ length: V }, (_, v) => {
      let s = 0;
      for (let i = 0; i < D; i++) {
        let row = 0;
        for (const W of dec) row += W[f * D + i]!;
        s += row * g[i]! * WU[i * V + v]!;
      }
      return s;
    }),
  );
}

function assertStoreMatches(stats: FeatureStats, acts: Float32Array, w: number): void {
  const edges = stats.histogram.edges;
  for (let f = 0; f < w; f++) {
    let fires = 0;
    let sum = 0;
    let max = 0;
    const hist = new Array<number>(stats.histogram.bins).fill(0);
    const best: { v: number; c: number; p: number }[] = [];
    for (let c = 0; c < CONTEXTS; c++) {
      let bv = 0;
      let bp = -1;
      for (let p = 0; p < S; p++) {
        const a = acts[(c * S + p) * w + f]!;
        if (!(a > 0)) continue;
        fires++;
        sum += a;
        max = Math.max(max, a);
        let bin = edges.findIndex((e, i) => i > 0 && a < e) - 1;
        if (bin < 0) bin = a < edges[0]! ? 0 : stats.histogram.bins - 1;
        hist[bin]!++;
        if (a > bv) [bv, bp] = [a, p];
      }
      if (bp >= 0) best.push({ v: bv, c, p: bp });
    }
    best.sort((a, b) => b.v - a.v || a.c - b.c);
    assert.equal(stats.fireCount[f], fires, `feature ${f}: fire count`);
    assert.ok(Math.abs(stats.actSum[f]! - sum) <= TOL * Math.max(1, sum), `feature ${f}: sum ${stats.actSum[f]} vs ${sum}`);
    assert.ok(Math.abs(stats.maxAct[f]! - max) <= TOL, `feature ${f}: max ${stats.maxAct[f]} vs ${max}`);
    assert.deepEqual(Array.from(stats.histogramCounts.subarray(f * hist.length, (f + 1) * hist.length)), hist, `feature ${f}: histogram`);
    const k = stats.topK;
    for (let i = 0; i < k; i++) {
      const o = f * k + i;
      const e = best[i];
      if (!e) {
        assert.equal(stats.topContexts[o], -1, `feature ${f} entry ${i}: empty`);
        continue;
      }
      assert.equal(stats.topContexts[o], e.c, `feature ${f} entry ${i}: context`);
      assert.equal(stats.topPositions[o], e.p, `feature ${f} entry ${i}: position`);
      assert.ok(Math.abs(stats.topValues[o]! - e.v) <= TOL, `feature ${f} entry ${i}: value`);
      for (let j = 0; j < stats.window; j++) {
        const q = e.p - stats.before + j;
        const inside = q >= 0 && q < S;
        assert.equal(stats.topTokens[o * stats.window + j], inside ? ids[e.c * S + q] : -1, `feature ${f} entry ${i} token ${j}`);
        const a = inside ? acts[(e.c * S + q) * w + f]! : 0;
        assert.ok(Math.abs(stats.topActs[o * stats.window + j]! - a) <= TOL, `feature ${f} entry ${i} act ${j}`);
      }
    }
  }
}

describe('collectTranscoderFeatures', () => {
  for (const crossLayer of [true, false]) {
    it(`${crossLayer ? 'a CLT' : 'a PLT set'}: each layer's store equals the direct computation within 1e-4; the stores read back page by page`, () => {
      const tc = randomTranscoders(crossLayer, 3);
      const stores = collectTranscoderFeatures(model, tc, ids, options);
      assert.equal(stores.length, 2);
      let fired = 0;
      stores.forEach((store, l) => {
        const acts = handActs(tc, l);
        fired += store.stats.fireCount.reduce((a, b) => a + b, 0);
        assert.equal(store.stats.tokens, CONTEXTS * S);
        assertStoreMatches(store.stats, acts, tc.widths[l]!);
        const logits = handLogits(tc, l);
        const n = store.logits!.n;
        assert.equal(n, 4);
        assert.match(store.logits!.path, crossLayer && l === 0 ? /sum_\{t=0\.\.1\} W_dec\[0->t\]/ : new RegExp(`W_dec\\[${l}->${l}\\]`));
        for (let f = 0; f < tc.widths[l]!; f++) {
          const sorted = [...logits[f]!].sort((a, b) => b - a);
          for (let j = 0; j < n; j++) {
            assert.ok(Math.abs(store.logits!.posValues[f * n + j]! - sorted[j]!) <= TOL, `layer ${l} feature ${f}: top logit ${j}`);
            assert.ok(
              Math.abs(store.logits!.negValues[f * n + j]! - sorted.at(-1 - j)!) <= TOL,
              `layer ${l} feature ${f}: bottom logit ${j}`,
            );
            assert.ok(Math.abs(logits[f]![store.logits!.posIds[f * n + j]!]! - sorted[j]!) <= TOL, `layer ${l} feature ${f}: top id ${j}`);
          }
        }
        assert.equal(store.meta.transcoders?.layer, l);
        assert.equal(store.meta.sae.hook_name, tc.inputHook(l));
      });
      assert.ok(fired > 0, 'some features fire');

      const dir = mkdtempSync(join(tmpdir(), 'gb-clt-features-'));
      try {
        saveTranscoderFeatureStores(stores, dir);
        for (let l = 0; l < 2; l++) {
          const reader = FeatureStoreReader.open(featureStoreDir(dir, l));
          try {
            checkTranscoderStore(reader.meta, tc, l, 'store');
            const f = Array.from(stores[l]!.stats.fireCount).findIndex((c) => c > 0);
            const page = reader.page(f);
            assert.equal(page.fireCount, stores[l]!.stats.fireCount[f]);
            assert.ok(Math.abs(page.maxActivation - stores[l]!.stats.maxAct[f]!) <= TOL);
            assert.equal(page.contexts[0]!.context, stores[l]!.stats.topContexts[f * 3]);
          } finally {
            reader.close();
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('refuses a store of other transcoders or another layer, naming the file and the field', () => {
    const tc = randomTranscoders(true, 3);
    const other = randomTranscoders(true, 4);
    const [store0] = collectTranscoderFeatures(model, tc, ids, { ...options, batches: 1, logitEffects: 0 });
    assert.throws(
      () => checkTranscoderStore(store0!.meta, other, 0, 'x/features.json'),
      /x\/features\.json: field 'transcoders\.weights_sha256'.*other transcoders/,
    );
    assert.throws(() => checkTranscoderStore(store0!.meta, tc, 1, 'x/features.json'), /x\/features\.json: field 'transcoders\.layer' is 0/);
    const { transcoders: _, ...saeMeta } = store0!.meta;
    assert.throws(() => checkTranscoderStore(saeMeta, tc, 0, 'x/features.json'), /field 'transcoders' is missing/);
  });

  it('an interrupted collection resumes to exactly the uninterrupted stores; the checkpoint is then removed', () => {
    const tc = randomTranscoders(true, 3);
    const full = collectTranscoderFeatures(model, tc, ids, options);
    const dir = mkdtempSync(join(tmpdir(), 'gb-clt-resume-'));
    const checkpoint = { dir: join(dir, '.checkpoint'), everyBatches: 1 };
    try {
      assert.throws(
        () =>
          collectTranscoderFeatures(model, tc, ids, {
            ...options,
            checkpoint,
            onBatch: (done) => {
              if (done === 2) throw new Error('stopped');
            },
          }),
        /stopped/,
      );
      assert.throws(() => collectTranscoderFeatures(model, tc, ids, { ...options, checkpoint }), /holds a checkpoint.*--resume/);
      assert.throws(
        () => collectTranscoderFeatures(model, randomTranscoders(true, 4), ids, { ...options, checkpoint, resume: true }),
        /checkpoint is of another run/,
      );
      const resumed = collectTranscoderFeatures(model, tc, ids, { ...options, checkpoint, resume: true });
      resumed.forEach((s, l) => {
        for (const k of Object.keys(s.stats) as (keyof FeatureStats)[]) {
          const x = s.stats[k];
          const y = full[l]!.stats[k];
          if (ArrayBuffer.isView(x)) assert.deepEqual(Array.from(x as Float64Array), Array.from(y as Float64Array), `layer ${l} ${k}`);
          else assert.deepEqual(x, y, `layer ${l} ${k}`);
        }
      });
      assert.ok(!existsSync(checkpoint.dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
