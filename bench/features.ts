/**
 * Feature collection benchmark: tokens per second of `collectFeatures` (the default model to
 * blocks.1.hook_resid_post, a TopK SAE of width FEATURES_WIDTH (default 16384, k 32), per feature
 * its top-20 contexts with a 16-token window of tokens and activations, a 60-bin log histogram,
 * fire counts, sums and maxima) against a PyTorch loop doing the same collection
 * (bench/features_torch.py: transformers' GPTNeoX from models/default, the same SAE weights, the
 * same contexts) on the same machine in the same run, 2 threads each, alternating for
 * FEATURES_ROUNDS rounds (default 2), each side's fastest round reported.
 *
 * Both sides read the same contexts: FEATURES_TOKENS tokens (default 131072) of the default
 * corpus's validation split, contexts of 128 with BOS first, batches of 8 contexts. The SAE is
 * random (seeded) and written to bench/out/features-sae for the PyTorch side. The two sides'
 * fire counts are compared (they should agree up to float rounding at the top-k boundary).
 *
 * Usage: node --import tsx bench/features.ts [python]   (python: one with torch and transformers;
 * without it, glassbox only). bash bench/features.sh sets the Python up.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ortConfig, tensor } from '../src/index.js';
import { loadModel } from '../src/model/index.js';
import { Sae, collectFeatures, defaultCorpusTokens, saveSae } from '../src/sae/index.js';

ortConfig.intraOpNumThreads = 2;

const WIDTH = Number(process.env.FEATURES_WIDTH ?? 16384);
const TOKENS = Number(process.env.FEATURES_TOKENS ?? 131072);
const CONTEXT = 128;
const BATCH = 8;
const HOOK = 'blocks.1.hook_resid_post';
const python = process.argv[2] ?? null;
const OUT = new URL('./out/', import.meta.url).pathname;

const model = await loadModel('default');
const corpus = defaultCorpusTokens(model.tokenizer!, { eosTokenId: model.cfg.eosTokenId });
const contexts = Math.floor(TOKENS / CONTEXT);
const batches = Math.ceil(contexts / BATCH);

// A random TopK SAE (k 32), its encoder bias slightly negative so activations are sparse as a trained one's.
const base = Sae.create({ architecture: 'topk', d_in: model.cfg.dModel, d_sae: WIDTH, k: 32, hook_name: HOOK }, { seed: 1 });
const sae = base.withParams({ ...base.params, b_enc: tensor(new Float32Array(WIDTH).fill(-0.01), [WIDTH]) });
mkdirSync(OUT, { recursive: true });
const saeDir = join(OUT, 'features-sae');
saveSae(sae, saeDir);
// The contexts both sides read (BOS first, then CONTEXT - 1 corpus tokens each, as planContexts cuts them).
const ids = new Int32Array(contexts * CONTEXT);
for (let c = 0; c < contexts; c++) {
  ids[c * CONTEXT] = model.cfg.bosTokenId!;
  ids.set(corpus.ids.subarray(c * (CONTEXT - 1), (c + 1) * (CONTEXT - 1)), c * CONTEXT + 1);
}
writeFileSync(join(OUT, 'features-tokens.bin'), new Uint8Array(ids.buffer));

interface Side {
  seconds: number;
  tokensPerSecond: number;
  fires: number;
}

function glassbox(): Side {
  const t0 = performance.now();
  const store = collectFeatures(model, sae, corpus.ids, {
    batches,
    batchSize: BATCH,
    contextSize: CONTEXT,
    prependBos: true,
    topK: 20,
    before: 10,
    after: 5,
    logitEffects: 0,
    // The PyTorch loop keeps no reservoir samples: FEATURES_SAMPLES=32 times glassbox's default collection.
    samples: Number(process.env.FEATURES_SAMPLES ?? 0),
  });
  const seconds = (performance.now() - t0) / 1000;
  const tokens = store.meta.corpus.tokens;
  if (tokens !== contexts * CONTEXT) throw new Error(`glassbox ran ${tokens} tokens, the PyTorch side ${contexts * CONTEXT}`);
  return { seconds, tokensPerSecond: tokens / seconds, fires: store.stats.fireCount.reduce((a, b) => a + b, 0) };
}

function torch(): Side | null {
  if (!python) return null;
  const out = execFileSync(
    python,
    [new URL('./features_torch.py', import.meta.url).pathname, saeDir, join(OUT, 'features-tokens.bin'), String(CONTEXT), String(BATCH)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    },
  );
  return JSON.parse(out) as Side;
}

// Alternate (PyTorch, glassbox) for FEATURES_ROUNDS rounds (default 2), so a load change on a
// shared machine hits both; each side's fastest round is reported (load only ever adds time).
const ROUNDS = Number(process.env.FEATURES_ROUNDS ?? 2);
let pt: Side | null = null;
let gb: Side | null = null;
const faster = (a: Side | null, b: Side | null) => (a === null || (b !== null && b.tokensPerSecond > a.tokensPerSecond) ? b : a);
for (let r = 0; r < ROUNDS; r++) {
  pt = faster(pt, torch());
  gb = faster(gb, glassbox());
  console.error(
    `round ${r + 1}: glassbox ${gb!.tokensPerSecond.toFixed(0)} tokens/s${pt ? `, PyTorch ${pt.tokensPerSecond.toFixed(0)} tokens/s` : ''} (best so far)`,
  );
}
if (!gb) throw new Error('FEATURES_ROUNDS must be at least 1');
const report = {
  width: WIDTH,
  tokens: contexts * CONTEXT,
  glassbox: gb,
  torch: pt,
  ratio: pt ? gb.tokensPerSecond / pt.tokensPerSecond : null,
};
writeFileSync(join(OUT, 'features.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(
  `feature collection, width ${WIDTH}, ${report.tokens} tokens: glassbox ${gb.tokensPerSecond.toFixed(0)} tokens/s (${gb.seconds.toFixed(1)} s)` +
    (pt ? `, PyTorch ${pt.tokensPerSecond.toFixed(0)} tokens/s (${pt.seconds.toFixed(1)} s): ${report.ratio!.toFixed(2)}x` : ''),
);
if (pt)
  console.log(`fire counts: glassbox ${gb.fires}, PyTorch ${pt.fires} (${(((gb.fires - pt.fires) / pt.fires) * 100).toFixed(3)}% apart)`);
