/** Tokenizer: tokenizer.json through @huggingface/tokenizers, with TransformerLens's BOS and padding conventions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, loadTokenizer } from '../src/io/tokenizer.js';
import type { ModelTokenizer } from '../src/model/hooked.js';

const DIR = fileURLToPath(new URL('./fixtures/tiny-bpe/', import.meta.url));
const tokenizerJson = (): Record<string, unknown> =>
  JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
const tokenizerConfig = (): Record<string, unknown> =>
  JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;

const EOT = 296; // <|endoftext|>: BOS and EOS
const PAD = 297; // <pad>

test('loads tokenizer.json + tokenizer_config.json: special tokens, vocabulary size', () => {
  const tok = loadTokenizer(DIR);
  assert.equal(tok.bosTokenId, EOT);
  assert.equal(tok.eosTokenId, EOT);
  assert.equal(tok.padTokenId, PAD);
  assert.equal(tok.vocabSize, 298);
  assert.equal(tok.addsBos, false);
  assert.equal(tok.paddingSide, 'right');
  assert.equal(tok.idToToken(265), 'Ġworld');
  assert.equal(tok.tokenToId('<pad>'), PAD);
  // it is what the model's toTokens / toStrTokens / toString need
  const asModel: ModelTokenizer = tok;
  assert.deepEqual(asModel.toStrTokens([279, 265]), ['Hello', ' world']);
});

test('encode prepends BOS by default; prependBos: false leaves it out', () => {
  const tok = loadTokenizer(DIR);
  assert.deepEqual(tok.encode('Hello world! the cat'), [EOT, 279, 265, 0, 258, 269]);
  assert.deepEqual(tok.encode('Hello world! the cat', { prependBos: true }), [EOT, 279, 265, 0, 258, 269]);
  assert.deepEqual(tok.encode('Hello world! the cat', { prependBos: false }), [279, 265, 0, 258, 269]);
  assert.deepEqual(tok.encode(''), [EOT]);
  assert.deepEqual(tok.encode('', { prependBos: false }), []);
  // special tokens in the text are single tokens
  assert.deepEqual(tok.encode('hi<pad>', { prependBos: false }), [71, 72, PAD]);
  assert.deepEqual(tok.encode('the cat sat on the mat', { maxLength: 4 }), [EOT, 257, 269, 220]);
  assert.throws(() => tok.encode('x', { maxLength: 0 }), /maxLength must be a positive integer/);
});

test('decode(encode(text)) gives the text back, byte-level characters included', () => {
  const tok = loadTokenizer(DIR);
  for (const text of ['Hello world! the cat', 'Hi , there .', "it's   spaced\n\nout\t!", 'héllo ✓ 日本語 🙂', '']) {
    assert.equal(tok.decode(tok.encode(text, { prependBos: false })), text, JSON.stringify(text));
    assert.equal(tok.decode(tok.encode(text)), `<|endoftext|>${text}`);
    assert.equal(tok.decode(tok.encode(text), { skipSpecialTokens: true }), text);
  }
  // Hugging Face's clean-up (" ." -> ".") only when asked
  assert.equal(tok.decode(tok.encode('Hi , there .', { prependBos: false }), { cleanUpTokenizationSpaces: true }), 'Hi, there.');
  assert.equal(tok.decode([]), '');
  assert.throws(() => tok.decode([1, 298]), /token id 298 is not in the vocabulary \(ids 0\.\.297\)/);
  assert.throws(() => tok.decode([-1]), RangeError);
});

test('toStrTokens decodes each token on its own', () => {
  const tok = loadTokenizer(DIR);
  assert.deepEqual(tok.toStrTokens(tok.encode('Hello world! the cat')), ['<|endoftext|>', 'Hello', ' world', '!', ' the', ' cat']);
  // '✓' is three bytes, three byte-level tokens: none is a character by itself
  assert.deepEqual(tok.toStrTokens(tok.encode('✓', { prependBos: false })), ['\uFFFD', '\uFFFD', '\uFFFD']);
});

test('batches pad on the right or the left, with attention masks', () => {
  const tok = loadTokenizer(DIR);
  const texts = ['Hello world', 'the cat sat on the mat'];
  const long = [EOT, 257, 269, 220, 82, 259, 277, 77, 258, 220, 76, 259];
  const right = tok.encodeBatch(texts);
  assert.deepEqual(right.ids, [[EOT, 279, 265, ...Array(9).fill(PAD)], long]);
  assert.deepEqual(right.attentionMask, [[1, 1, 1, ...Array(9).fill(0)], Array(12).fill(1)]);

  const left = tok.encodeBatch(texts, { paddingSide: 'left' });
  assert.deepEqual(left.ids, [[...Array(9).fill(PAD), EOT, 279, 265], long]);
  assert.deepEqual(left.attentionMask, [[...Array(9).fill(0), 1, 1, 1], Array(12).fill(1)]);

  const noBos = tok.encodeBatch(['Hello world', 'Hello'], { prependBos: false, paddingSide: 'left' });
  assert.deepEqual(noBos, {
    ids: [
      [279, 265],
      [PAD, 279],
    ],
    attentionMask: [
      [1, 1],
      [0, 1],
    ],
  });
  assert.deepEqual(tok.encodeBatch([]), { ids: [], attentionMask: [] });

  // padding_side from tokenizer_config.json
  const leftByConfig = new Tokenizer(tokenizerJson(), { ...tokenizerConfig(), padding_side: 'left' });
  assert.equal(leftByConfig.paddingSide, 'left');
  assert.deepEqual(leftByConfig.encodeBatch(['Hello', 'Hello world']).ids, [
    [PAD, EOT, 279],
    [EOT, 279, 265],
  ]);
});

test('a post-processor that adds BOS (Llama style) gets no second BOS', () => {
  const json = tokenizerJson();
  json.added_tokens = [
    ...(json.added_tokens as object[]),
    { id: 298, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ];
  json.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<s>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '<s>', type_id: 1 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<s>': { id: '<s>', ids: [298], tokens: ['<s>'] } },
  };
  const tok = new Tokenizer(json, { bos_token: '<s>', eos_token: '<|endoftext|>' });
  assert.equal(tok.addsBos, true);
  assert.equal(tok.bosTokenId, 298);
  assert.equal(tok.padTokenId, EOT); // no pad token: EOS stands in
  assert.equal(tok.vocabSize, 299);
  assert.deepEqual(tok.encode('Hello world'), [298, 279, 265]);
  assert.deepEqual(tok.encode('Hello world', { prependBos: false }), [279, 265]);
  assert.deepEqual(tok.toStrTokens(tok.encode('Hello world')), ['<s>', 'Hello', ' world']);
  assert.deepEqual(tok.encodeBatch(['Hello world', 'Hello'], { paddingSide: 'left' }).ids, [
    [298, 279, 265],
    [EOT, 298, 279],
  ]);

  // with no tokenizer_config.json, the token the post-processor prepends is the BOS
  const bare = new Tokenizer(json, {});
  assert.equal(bare.bosTokenId, 298);
  assert.equal(bare.addsBos, true);
  assert.deepEqual(bare.encode('Hello'), [298, 279]);
});

test('special tokens without tokenizer_config.json: special_tokens_map.json, the model config, or none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-tok-'));
  try {
    writeFileSync(join(dir, 'tokenizer.json'), readFileSync(join(DIR, 'tokenizer.json')));
    // none known: BOS must be asked for explicitly, or left out
    const none = loadTokenizer(dir);
    assert.equal(none.bosTokenId, null);
    assert.equal(none.padTokenId, null);
    assert.throws(() => none.encode('Hello'), /no BOS token is known .*prependBos: false/);
    assert.deepEqual(none.encode('Hello', { prependBos: false }), [279]);
    assert.throws(() => none.encodeBatch(['Hello', 'Hello world'], { prependBos: false }), /no pad \(or EOS\) token/);
    assert.deepEqual(loadTokenizer(dir, { bosToken: '<pad>' }).encode('Hello'), [PAD, 279]);
    assert.throws(() => loadTokenizer(dir, { bosToken: '<bos>' }), /the bos token "<bos>" is not in the vocabulary/);

    // config.json's ids (GPT-2's tokenizer_config.json names no special tokens; its config.json does)
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ model_type: 'gpt2', bos_token_id: EOT, eos_token_id: [EOT], pad_token_id: 0 }),
    );
    const fromModel = loadTokenizer(dir);
    assert.deepEqual([fromModel.bosTokenId, fromModel.eosTokenId, fromModel.padTokenId], [EOT, EOT, EOT]);
    assert.deepEqual(fromModel.encode('Hello'), [EOT, 279]);

    writeFileSync(
      join(dir, 'special_tokens_map.json'),
      JSON.stringify({ bos_token: { content: '<pad>' }, eos_token: '<|endoftext|>', pad_token: '<pad>' }),
    );
    const fromMap = loadTokenizer(dir);
    assert.deepEqual([fromMap.bosTokenId, fromMap.eosTokenId, fromMap.padTokenId], [PAD, EOT, PAD]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errors name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-tok-'));
  try {
    assert.throws(() => loadTokenizer(dir), /tokenizer\.json: missing/);
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    assert.throws(() => loadTokenizer(dir), /tokenizer\.json: not valid JSON/);
    writeFileSync(join(dir, 'tokenizer.json'), '{"version": "1.0"}');
    assert.throws(() => loadTokenizer(dir), /tokenizer\.json: no "model" object/);
    assert.throws(() => new Tokenizer(tokenizerJson(), { padding_side: 'middle' }), /padding_side must be 'left' or 'right'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
