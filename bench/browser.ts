/**
 * The browser benchmark: the default model's forward pass and a residual patching sweep
 * (patchResidPre: every layer x position) timed in headless Chromium on onnxruntime-web's wasm
 * runtime, threads on (cross-origin isolated) and off, against the Node backend
 * (onnxruntime-node) in the same run, on the same inputs. Prints median times and browser/Node
 * ratios; writes them to bench/out/browser.json.
 *
 *   node --import tsx bench/browser.ts [reps]     (or: npm run bench:browser)
 *
 * Needs Chromium (`apt-get install chromium`, or CHROMIUM_PATH).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/index.js';
import { patchResidPre, toSingleToken } from '../src/analysis/index.js';
import { ROOT } from '../test/e2e/harness.js';
import { modelPageRunner } from '../test/browser/model-run.js';

const reps = Number(process.argv[2] ?? 7);
if (!Number.isInteger(reps) || reps < 1) throw new Error(`bench/browser.ts: reps must be a positive integer, got ${process.argv[2]}`);
const INPUT = {
  prompt: 'Then Ahab and Starbuck went on deck, and Starbuck said to',
  clean: 'Then Ahab and Starbuck went on deck, and Starbuck said to',
  corrupted: 'Then Ahab and Starbuck went on deck, and Ahab said to',
  answer: ' Ahab',
  wrong: ' Starbuck',
  reps,
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Node: the same calls as the page (test/browser/model-page.ts), warmed up by a first call each.
const model = await loadModel('default');
const tokens = model.toTokens(INPUT.prompt);
const problem = {
  clean: INPUT.clean,
  corrupted: INPUT.corrupted,
  answer: toSingleToken(model, INPUT.answer),
  wrong: toSingleToken(model, INPUT.wrong),
};
model.forward(tokens).dataSync();
patchResidPre(model, problem).dataSync();
const f: number[] = [];
const p: number[] = [];
for (let r = 0; r < reps; r++) {
  let t0 = performance.now();
  model.forward(tokens).dataSync();
  f.push(performance.now() - t0);
  t0 = performance.now();
  patchResidPre(model, problem).dataSync();
  p.push(performance.now() - t0);
}
const rows: { runtime: string; forwardMs: number; patchingMs: number; profile?: unknown }[] = [
  { runtime: 'onnxruntime-node (cpu)', forwardMs: median(f), patchingMs: median(p) },
];

// Threads on and off; each page also times the weights fed on every run (wasmConfig.maxResidentBytes
// 0, as the runtime did before it kept them resident in its sessions), interleaved with the
// resident runs so that both see the same load.
const runner = await modelPageRunner();
try {
  for (const isolated of [true, false]) {
    const r = await runner.run({ ...INPUT, compareFed: true }, isolated);
    rows.push({ runtime: r.runtime, forwardMs: r.forwardMs!, patchingMs: r.patchingMs!, profile: r.profile });
    rows.push({ runtime: `${r.runtime}, weights fed per run`, forwardMs: r.forwardFedMs!, patchingMs: r.patchingFedMs! });
  }
} finally {
  await runner.close();
}

const node = rows[0]!;
console.log(`default model, ${tokens[0]!.length} tokens; medians of ${reps} (after a warm-up call)`);
console.log('| runtime | forward ms | x Node | patchResidPre sweep ms | x Node |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows)
  console.log(
    `| ${r.runtime} | ${r.forwardMs.toFixed(2)} | ${(r.forwardMs / node.forwardMs).toFixed(2)} | ${r.patchingMs.toFixed(1)} | ${(r.patchingMs / node.patchingMs).toFixed(2)} |`,
  );
// Where one forward's and one sweep's time went in the page (ms; bytes copied in, and kept resident).
for (const r of rows.slice(1)) if (r.profile) console.log(`${r.runtime}: ${JSON.stringify(r.profile)}`);
mkdirSync(join(ROOT, 'bench/out'), { recursive: true });
writeFileSync(join(ROOT, 'bench/out/browser.json'), JSON.stringify({ reps, rows }, null, 2));
