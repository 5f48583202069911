/**
 * Tokenizer.encodeMany: Hugging Face's Rust tokenizers (the optional `tokenizers` package) give the
 * same ids as the JS implementation that `encode` uses, on tokenizers of every pipeline kind
 * (test/fixtures/tokenizers/make.py: Qwen-style byte-level BPE, Llama-2-style byte-fallback BPE,
 * Gemma-style Unigram, BERT WordPiece; plus the default model's and tiny-bpe), and apply the same
 * BOS and maxLength conventions.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer, loadTokenizer } from '../src/io/tokenizer.js';
import { rustTokenizers, rustTokenizersUnavailable } from '../src/io/rust-tokenizers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = (p: string): string => `${root}test/fixtures/${p}`;
const json = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

/** Each tokenizer with the config that names its special tokens as its model's tokenizer_config.json would. */
const TOKENIZERS: [string, () => Tokenizer][] = [
  ['default model (byte-level BPE)', () => loadTokenizer(`${root}models/default`)],
  ['tiny-bpe', () => loadTokenizer(fixture('tiny-bpe'))],
  [
    'qwen-bytelevel-bpe',
    () => new Tokenizer(json(fixture('tokenizers/qwen-bytelevel-bpe/tokenizer.json')), { eos_token: '<|endoftext|>' }),
  ],
  [
    'llama-bytefallback-bpe',
    () => new Tokenizer(json(fixture('tokenizers/llama-bytefallback-bpe/tokenizer.json')), { bos_token: '<s>', eos_token: '</s>' }),
  ],
  [
    'gemma-unigram',
    () =>
      new Tokenizer(json(fixture('tokenizers/gemma-unigram/tokenizer.json')), {
        bos_token: '<bos>',
        eos_token: '<eos>',
        pad_token: '<pad>',
      }),
  ],
  [
    'bert-wordpiece',
    () => new Tokenizer(json(fixture('tokenizers/bert-wordpiece/tokenizer.json')), { pad_token: '[PAD]', eos_token: '[SEP]' }),
  ],
];

const corpus = readFileSync(fixture('tokenizers/corpus.txt'), 'utf8');
const TEXTS: string[] = [
  '',
  ' ',
  'Hello world! the cat',
  '  leading and trailing spaces  ',
  'tabs\tand\nnewlines\r\n\n\nand more',
  "It's we'll they'd I'M — contractions, “quotes” and 'single' ones",
  'Numbers: 0 1 12 123 1234 12345 3.14159 -7 1e-5 0x1F',
  'Naïve café façade; ﬁ ligature; Å vs Å (NFC vs NFD); full-width ＡＢＣ',
  '数字とひらがな、中文。Ελληνικά русский עברית العربية',
  'Emoji 🙂🐋👩‍👩‍👧 and a lone surrogate-free astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'special tokens in text: <|endoftext|> <s> </s> <bos> [CLS] <pad>',
  'x'.repeat(300),
  ...corpus.split('\n\n').slice(0, 40),
  corpus,
];

const rust = rustTokenizers();

describe('Tokenizer.encodeMany (Rust tokenizers vs JS)', { skip: !rust && `not installed: ${rustTokenizersUnavailable()}` }, () => {
  for (const [name, make] of TOKENIZERS) {
    it(`${name}: the same ids as encode, with and without BOS, and with maxLength`, async () => {
      const tok = make();
      assert.deepEqual(tok.encodeManyEngine(), { engine: 'rust', reason: null });
      for (const options of [{}, { prependBos: false }, { maxLength: 5 }]) {
        const expected = TEXTS.map((t) => tok.encode(t, options));
        const got = await tok.encodeMany(TEXTS, { ...options, engine: 'rust' });
        assert.equal(got.length, TEXTS.length);
        for (let i = 0; i < TEXTS.length; i++)
          assert.deepEqual(got[i], expected[i], `text ${i} ${JSON.stringify(TEXTS[i]!.slice(0, 60))}, options ${JSON.stringify(options)}`);
        assert.deepEqual(await tok.encodeMany(TEXTS, { ...options, engine: 'js' }), expected);
        assert.deepEqual(await tok.encodeMany(TEXTS, options), expected); // 'auto'
      }
    });
  }

  it('the default model: BOS first, the empty text is BOS alone, the ids decode back to the text', async () => {
    const tok = loadTokenizer(`${root}models/default`);
    const [a, b] = await tok.encodeMany(['Hello world', ''], { engine: 'rust' });
    assert.deepEqual(a, tok.encode('Hello world'));
    assert.deepEqual(b, [tok.bosTokenId]);
    assert.equal(a![0], tok.bosTokenId);
    assert.equal(tok.decode(a!.slice(1)), 'Hello world');
  });
});

describe('Tokenizer.encodeMany refuses bad input, naming it', () => {
  const tok = loadTokenizer(fixture('tiny-bpe'));
  it('an unknown engine, a text that is not a string, a bad maxLength', async () => {
    await assert.rejects(tok.encodeMany(['a'], { engine: 'python' as 'js' }), /engine must be 'auto', 'rust' or 'js', got "python"/);
    await assert.rejects(tok.encodeMany(['a', 3 as unknown as string]), /encodeMany: texts\[1\] is not a string \(number\)/);
    await assert.rejects(tok.encodeMany([], { maxLength: 0 }), /maxLength must be a positive integer, got 0/);
  });
  it('no BOS known and prependBos: refused before any work, as encode refuses', async () => {
    const noBos = new Tokenizer(json(fixture('tokenizers/qwen-bytelevel-bpe/tokenizer.json')));
    await assert.rejects(noBos.encodeMany(['a']), /no BOS token is known/);
    assert.deepEqual(await noBos.encodeMany(['a'], { prependBos: false }), [noBos.encode('a', { prependBos: false })]);
  });
});
