/**
 * Tokenizer benchmark: tokens per second of glassbox's Tokenizer in Node (the JS implementation,
 * `encode` text by text; the Rust tokenizers binding, `encodeMany`) against Hugging Face's Rust
 * tokenizers from Python (`encode` one by one and `encode_batch`), on the same texts and
 * tokenizer.json files, in one run (`npm run bench:tokenizers`).
 *
 * 1. texts: the repository's Markdown (README.md, docs/, bench/README.md) cut into paragraphs,
 *    written to bench/out/tokenizer-texts.json;
 * 2. Python (bench/tokenizers_py.py) times its side and prints JSON;
 * 3. this script times glassbox's side (median of 5 after a warm-up) and prints tokens/s and the
 *    ratio of each Node path's speed to Python's batch speed (above 1: Node faster).
 * Usage: node --import tsx bench/tokenizers.ts texts|report [python.json]
 */
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../src/io/tokenizer.js';
import { rustTokenizersUnavailable } from '../src/io/rust-tokenizers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const textsPath = `${root}bench/out/tokenizer-texts.json`;
/** The tokenizer.json files timed (the default model's and the pipeline fixtures). */
export const TOKENIZER_FILES = [
  'models/default/tokenizer.json',
  ...['qwen-bytelevel-bpe', 'llama-bytefallback-bpe', 'gemma-unigram', 'bert-wordpiece'].map(
    (n) => `test/fixtures/tokenizers/${n}/tokenizer.json`,
  ),
];

async function medianS(fn: () => unknown, reps = 5): Promise<number> {
  await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await fn();
    t.push((performance.now() - s) / 1000);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

if (process.argv[2] === 'texts') {
  const files = [
    'README.md',
    'bench/README.md',
    ...readdirSync(`${root}docs`)
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const texts = files.flatMap((f) => readFileSync(`${root}${f}`, 'utf8').split(/\n\s*\n/)).filter((t) => t.trim() !== '');
  mkdirSync(`${root}bench/out`, { recursive: true });
  writeFileSync(textsPath, JSON.stringify(texts));
  console.log(TOKENIZER_FILES.map((f) => `${root}${f}`).join(' '));
} else {
  const py = JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as {
    tokenizers: string;
    results: Record<string, { tokens: number; encode_s: number; encode_batch_s: number }>;
  };
  const texts = JSON.parse(readFileSync(textsPath, 'utf8')) as string[];
  const chars = texts.reduce((s, t) => s + t.length, 0);
  const load0 = loadavg()[0]!;
  const rows: string[] = [];
  for (const file of TOKENIZER_FILES) {
    const p = py.results[`${root}${file}`];
    if (!p) throw new Error(`bench/tokenizers_py.py gave no result for ${file}`);
    const tok = new Tokenizer(JSON.parse(readFileSync(`${root}${file}`, 'utf8')) as Record<string, unknown>, {}, { source: file });
    const opts = { prependBos: false } as const;
    const jsIds = texts.map((t) => tok.encode(t, opts));
    const tokens = jsIds.reduce((s, r) => s + r.length, 0);
    const jsS = await medianS(() => texts.map((t) => tok.encode(t, opts)));
    const engine = tok.encodeManyEngine();
    const rustS = engine.engine === 'rust' ? await medianS(() => tok.encodeMany(texts, { ...opts, engine: 'rust' })) : null;
    const rate = (s: number | null): string => (s === null ? '-' : `${(tokens / s / 1e3).toFixed(0)}k`);
    const ratio = (s: number | null): string => (s === null ? '-' : (p.encode_batch_s / s).toFixed(2));
    const name = file.replace(/^test\/fixtures\/tokenizers\/|\/tokenizer\.json$/g, '');
    const same = tokens === p.tokens ? '' : ` (Python counted ${p.tokens} tokens)`;
    rows.push(
      `| ${name} | ${tokens}${same} | ${rate(p.encode_s)} | ${rate(p.encode_batch_s)} | ${rate(jsS)} (${ratio(jsS)}) | ${rate(rustS)} (${ratio(rustS)}) |`,
    );
  }
  const rust = rustTokenizersUnavailable();
  console.log(
    `\nTokens per second, ${texts.length} paragraphs (${(chars / 1e3).toFixed(0)} k characters) of the repository's Markdown; Python tokenizers ${py.tokenizers}; ${cpus().length} CPUs, load ${load0.toFixed(1)}-${loadavg()[0]!.toFixed(1)}.` +
      ` In parentheses: speed / Python encode_batch's (above 1: faster).${rust ? ` Rust binding not loaded: ${rust}.` : ''}\n`,
  );
  console.log('| tokenizer | tokens | Python encode | Python encode_batch | glassbox encode (JS) | glassbox encodeMany (Rust) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}
