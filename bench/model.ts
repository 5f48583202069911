/**
 * Model benchmark: a GPT-2-small-shaped HookedTransformer (12 layers, d_model 768, vocab 50257,
 * random weights), batch 1, 128 tokens: forward, runWithCache of every hook, and greedy
 * generation of 32 tokens, against Hugging Face transformers' GPT2LMHeadModel (bench/model_torch.py)
 * on the same machine in the same run. Usage: node --import tsx bench/model.ts [torch.json]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gpt2Config } from '../src/model/families/gpt2.js';
import { HookedTransformer } from '../src/model/hooked.js';
import { initParams } from '../src/model/init.js';
import { PRNG } from '../src/index.js';

function medianMs(fn: () => unknown, reps: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)]!;
}

const torch = process.argv[2]
  ? (JSON.parse(readFileSync(process.argv[2], 'utf8')) as Record<string, { ms: number; tokens_per_s?: number }>)
  : {};
const cfg = gpt2Config({ nLayers: 12, dModel: 768, nHeads: 12, dVocab: 50257, nCtx: 1024 });
const model = new HookedTransformer(cfg, initParams(cfg, { seed: 0 }));
const rng = new PRNG(1);
const tokens = [Array.from({ length: 128 }, () => rng.int(50257))];

const rows: { case: string; glassboxMs: number; torchMs: number | null; ratio: number | null; note: string }[] = [];
const add = (name: string, ms: number, note = ''): void => {
  const ref = torch[name]?.ms ?? null;
  rows.push({ case: name, glassboxMs: ms, torchMs: ref, ratio: ref ? ms / ref : null, note });
};
add(
  'forward',
  medianMs(() => model.forward(tokens), 10),
);
add(
  'run_with_cache_all',
  medianMs(() => model.runWithCache(tokens), 10),
  `${model.runWithCache([[0]]).cache.keys().length} hook points (all but attn.hook_result)`,
);
const prompt = tokens[0]!.slice(0, 16);
const genMs = medianMs(() => model.generate(prompt, { maxNewTokens: 32, stopAtEos: false }), 3, 1);
const tps = 32 / (genMs / 1000);
add(
  'generate_32',
  genMs,
  `${tps.toFixed(1)} tokens/s${torch.generate_32?.tokens_per_s ? ` vs ${torch.generate_32.tokens_per_s.toFixed(1)}` : ''}`,
);

console.log('\nHookedTransformer vs Hugging Face GPT2LMHeadModel (ratio = glassbox time / PyTorch time)\n');
console.log('| case | glassbox ms | PyTorch ms | ratio | note |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.case} | ${r.glassboxMs.toFixed(1)} | ${r.torchMs?.toFixed(1) ?? '-'} | ${r.ratio?.toFixed(2) ?? '-'} | ${r.note} |`);
mkdirSync(new URL('./out/', import.meta.url), { recursive: true });
writeFileSync(new URL('./out/model.json', import.meta.url), JSON.stringify({ rows, torch }, null, 2));
