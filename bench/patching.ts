/**
 * Activation patching benchmark: the full residual-stream sweep (every layer x every position,
 * 12 x 20 = 240 patches) on a GPT-2-small-shaped model (random weights) over a 20-token prompt
 * pair. glassbox runs the patches batched (many patched copies of the corrupted prompt per
 * forward, one compiled session); the PyTorch reference (bench/patching_torch.py) runs one forward
 * per patch, as TransformerLens does. Both use the same weights' shape but not the same values,
 * so only times are compared. Usage: node --import tsx bench/patching.ts spec.json [torch.json]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gpt2Config } from '../src/model/families/gpt2.js';
import { HookedTransformer } from '../src/model/hooked.js';
import { initParams } from '../src/model/init.js';
import { patchResidPre } from '../src/analysis/patching.js';
import { ortConfig } from '../src/tensor/index.js';

ortConfig.intraOpNumThreads = 2; // as the PyTorch side (torch.set_num_threads(2))

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { clean: number[]; corrupted: number[]; answer: number; wrong: number };
const torch = process.argv[3]
  ? (JSON.parse(readFileSync(process.argv[3], 'utf8')) as { sweep_ms: number; forwards: number; torch: string })
  : null;
const cfg = gpt2Config({ nLayers: 12, dModel: 768, nHeads: 12, dVocab: 50257, nCtx: 1024 });
const model = new HookedTransformer(cfg, initParams(cfg, { seed: 0 }));
const problem = { clean: [spec.clean], corrupted: [spec.corrupted], answer: spec.answer, wrong: spec.wrong };

const run = () => patchResidPre(model, problem);
run(); // warm-up: compiles the sessions
const times: number[] = [];
let result = run();
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  result = run();
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const ms = times[1]!;
const layer0 = (result.toArray() as number[][])[0]!;
const row = {
  case: 'resid_pre patching sweep, 12 layers x 20 positions',
  glassboxMs: ms,
  torchMs: torch?.sweep_ms ?? null,
  // Above 1: glassbox's batched sweep is faster than PyTorch's one-forward-per-patch sweep.
  speedup: torch ? torch.sweep_ms / ms : null,
  note: `glassbox batched; PyTorch ${torch?.torch ?? '?'} one forward per patch (${torch?.forwards ?? '?'} forwards)`,
};
console.table([row]);
// Sanity: at layer 0 only the position where the prompts differ carries the effect (≈ 1 there, ≈ 0 elsewhere).
console.log('layer 0 row (clean = 1, corrupted = 0):', layer0.map((v) => v.toFixed(2)).join(' '));
mkdirSync('bench/out', { recursive: true });
writeFileSync('bench/out/patching.json', JSON.stringify({ rows: [row] }, null, 2));
