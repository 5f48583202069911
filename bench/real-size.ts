/**
 * Real-size benchmark, glassbox side and report (bench/real-size.sh runs everything).
 *
 *   node --import tsx bench/real-size.ts side MODEL_DIR MODE OUT_PREFIX TORCH_PREFIX
 *     loads MODEL_DIR with weightDtype MODE ('float32' or 'stored'), runs forward and
 *     runWithCache (the residual stream: hook_resid_pre of every layer and the last layer's
 *     hook_resid_post, the n_layers + 1 tensors transformers returns as hidden_states) on the
 *     torch side's 128 tokens, compares logits with the torch side's, writes OUT_PREFIX.json.
 *   node --import tsx bench/real-size.ts report OUT_DIR MODEL...
 *     prints the table (markdown) of every side's results, with ratios glassbox / transformers.
 *
 * Each side runs in its own process (peak RSS is the process's, from getrusage).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { loadFromDirectory } from '../src/model/pretrained.js';
import { SafetensorsFile } from '../src/io/index.js';
import { Tensor } from '../src/tensor/index.js';

const REPS = 3;

interface Timed {
  first_ms: number;
  ms: number;
}

interface Side {
  side: 'glassbox' | 'transformers';
  mode: 'float32' | 'stored';
  load_ms: number;
  /** CPU time of the load (user + system, all threads): less sensitive than wall time to other work on the machine */
  load_cpu_ms: number;
  forward: Timed;
  cache: Timed & { tensors: number };
  peak_rss_mb: number;
  peak_rss_after_load_mb: number;
  max_abs_logit_diff?: number;
  weight_bytes?: number;
  attention?: string;
  loadavg?: number[];
}

function timed(fn: () => unknown, reps = REPS): Timed {
  let t = performance.now();
  fn();
  const first = performance.now() - t;
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return { first_ms: first, ms: ts[Math.floor(ts.length / 2)]! };
}

function side(dir: string, mode: 'float32' | 'stored', out: string, torchPrefix: string): void {
  // The transformers side's tokens (the same 128 tokens on both sides); without it (float32 runs
  // skipped for memory), seeded tokens and no logit comparison.
  const hasTorch = existsSync(`${torchPrefix}.json`);
  const torchTokens = hasTorch ? (JSON.parse(readFileSync(`${torchPrefix}.json`, 'utf8')) as { tokens: number[] }).tokens : null;
  const before = loadavg();
  const cpu0 = process.cpuUsage();
  const t = performance.now();
  const model = loadFromDirectory(dir, { weightDtype: mode });
  const loadMs = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const rssAfterLoad = process.resourceUsage().maxRSS / 1024;
  const tokens = [torchTokens ?? Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % model.cfg.dVocab)];
  const L = model.cfg.nLayers;
  const names = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${L - 1}.hook_resid_post`];
  const forward = timed(() => model.forward(tokens));
  const cache = timed(() => model.runWithCache(tokens, { names }));
  // Logits against transformers' at the positions it saved.
  let diff: number | undefined;
  if (hasTorch) {
    const ref = SafetensorsFile.open(`${torchPrefix}.safetensors`);
    const want = ref.read('logits').dataSync() as Float32Array;
    const positions = Array.from(ref.read('positions').dataSync() as BigInt64Array, Number);
    ref.close();
    const logits = model.forward(tokens);
    const V = model.cfg.dVocab;
    diff = 0;
    positions.forEach((p, k) => {
      const row = logits.index([0, p]).dataSync() as Float32Array;
      for (let v = 0; v < V; v++) diff = Math.max(diff!, Math.abs(row[v]! - want[k * V + v]!));
    });
  }
  // Bytes the weights hold (a tied unembedding is a view of the embedding: counted once).
  const seen = new Set<ArrayBufferLike>();
  let weightBytes = 0;
  const walk = (x: unknown): void => {
    if (x instanceof Tensor) {
      const buf = (x._stored?.data ?? x._data)?.buffer;
      if (buf && !seen.has(buf)) {
        seen.add(buf);
        weightBytes += x.storage.bytes;
      }
    } else if (x && typeof x === 'object') for (const v of Object.values(x)) walk(v);
  };
  walk(model.params);
  const result: Side = {
    side: 'glassbox',
    mode,
    load_ms: loadMs,
    load_cpu_ms: (cpu.user + cpu.system) / 1000,
    forward,
    cache: { ...cache, tensors: names.length },
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    peak_rss_after_load_mb: rssAfterLoad,
    ...(diff !== undefined ? { max_abs_logit_diff: diff } : {}),
    weight_bytes: weightBytes,
    loadavg: [before[0]!, loadavg()[0]!],
  };
  writeFileSync(`${out}.json`, JSON.stringify(result));
  console.error(
    `${dir} ${mode}: load ${(loadMs / 1000).toFixed(1)} s, forward ${(forward.ms / 1000).toFixed(2)} s, ` +
      `peak RSS ${(result.peak_rss_mb / 1024).toFixed(2)} GB, |dlogits| ${diff?.toExponential(1) ?? '-'}`,
  );
}

function report(outDir: string, models: string[]): void {
  const s = (ms: number): string => (ms / 1000).toFixed(2);
  const r = (a: number, b: number): string => (a / b).toFixed(2);
  const gb = (mb: number): string => (mb / 1024).toFixed(2);
  const lines: string[] = [];
  lines.push(
    `Real-size checkpoints (random bf16 weights), batch 1, 128 tokens; ratio = glassbox / transformers (float32). ` +
      `${cpus().length} cores (${cpus()[0]?.model ?? '?'}).`,
  );
  lines.push('');
  lines.push('| model | weights | load s | load CPU s | forward s | runWithCache s | peak RSS GB | max abs logit diff |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const model of models) {
    const file = (name: string): Side | null => {
      const p = join(outDir, `${model}.${name}.json`);
      return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Side) : null;
    };
    const torch = file('torch');
    if (torch)
      lines.push(
        `| ${model} | transformers, float32 | ${s(torch.load_ms)} | ${s(torch.load_cpu_ms)} | ${s(torch.forward.ms)} | ${s(torch.cache.ms)} | ${gb(torch.peak_rss_mb)} | |`,
      );
    for (const mode of ['float32', 'stored'] as const) {
      const g = file(mode);
      if (!g) continue;
      const cell = (a: number, b: number | undefined, f: (x: number) => string): string =>
        b === undefined ? f(a) : `${f(a)} (${r(a, b)})`;
      lines.push(
        `| ${model} | glassbox, ${mode === 'stored' ? '2-byte (stored)' : 'float32'} | ${cell(g.load_ms, torch?.load_ms, s)} | ` +
          `${cell(g.load_cpu_ms, torch?.load_cpu_ms, s)} | ` +
          `${cell(g.forward.ms, torch?.forward.ms, s)} | ${cell(g.cache.ms, torch?.cache.ms, s)} | ` +
          `${cell(g.peak_rss_mb, torch?.peak_rss_mb, gb)} | ${g.max_abs_logit_diff?.toExponential(1) ?? ''} |`,
      );
    }
  }
  lines.push('');
  lines.push('| model | side | first forward s | first runWithCache s | RSS after load GB | weights GB | load average (start, end) |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const model of models)
    for (const name of ['torch', 'float32', 'stored']) {
      const p = join(outDir, `${model}.${name}.json`);
      if (!existsSync(p)) continue;
      const x = JSON.parse(readFileSync(p, 'utf8')) as Side;
      const label = name === 'torch' ? 'transformers, float32' : `glassbox, ${name === 'stored' ? '2-byte (stored)' : 'float32'}`;
      lines.push(
        `| ${model} | ${label} | ${s(x.forward.first_ms)} | ${s(x.cache.first_ms)} | ${gb(x.peak_rss_after_load_mb)} | ` +
          `${x.weight_bytes !== undefined ? (x.weight_bytes / 2 ** 30).toFixed(2) : ''} | ${x.loadavg?.map((v) => v.toFixed(1)).join(', ') ?? ''} |`,
      );
    }
  lines.push('');
  lines.push(
    'Forward and runWithCache: median of 3 after a first call (the first glassbox call also compiles the session). ' +
      'runWithCache caches the residual stream (n_layers + 1 tensors; transformers: output_hidden_states=True). ' +
      'Peak RSS: the whole process (load, forward, cache); transformers maps the safetensors file, whose pages count in its RSS.',
  );
  console.log(lines.join('\n'));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'side') side(args[0]!, args[1] as 'float32' | 'stored', args[2]!, args[3]!);
else if (cmd === 'report') report(args[0]!, args.slice(1));
else throw new Error('usage: real-size.ts side MODEL_DIR MODE OUT_PREFIX TORCH_PREFIX | report OUT_DIR MODEL...');
