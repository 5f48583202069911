/** Token files (src/train/tokens.ts): nanoGPT-style .bin + .bin.json, streamed atomic writes, random-access reads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '../src/io/tokenizer.js';
import { trainBpe } from '../src/recipes/bpe.js';
import { TokenFile, tokenizeToFile, writeTokenFile } from '../src/train/tokens.js';

function withTempDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-tokens-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'uint16: chunks of any kind are written back to back, read back at any offset, sidecar as documented',
  withTempDir(async (dir) => {
    const path = join(dir, 'train.bin');
    const chunks = [[1, 2, 3], new Uint16Array([4, 4095, 0]), new Int32Array([]), Uint32Array.of(4095, 7)];
    const { length } = await writeTokenFile(path, chunks, { vocabSize: 4096, eosTokenId: 4095, source: { corpus: 'test', n: 1 } });
    assert.equal(length, 8);
    assert.deepEqual(JSON.parse(readFileSync(`${path}.json`, 'utf8')), {
      dtype: 'uint16',
      length: 8,
      vocabSize: 4096,
      eosTokenId: 4095,
      source: { corpus: 'test', n: 1 },
    });
    // raw little-endian uint16, nothing else
    assert.deepEqual([...readFileSync(path)], [1, 0, 2, 0, 3, 0, 4, 0, 255, 15, 0, 0, 255, 15, 7, 0]);
    assert.deepEqual(readdirSync(dir).sort(), ['train.bin', 'train.bin.json'], 'no temporary files left');

    const file = TokenFile.open(path);
    assert.equal(file.length, 8);
    assert.equal(file.vocabSize, 4096);
    assert.equal(file.dtype, 'uint16');
    assert.equal(file.eosTokenId, 4095);
    assert.deepEqual(file.source, { corpus: 'test', n: 1 });
    assert.deepEqual(file.read(0, 8), Int32Array.from([1, 2, 3, 4, 4095, 0, 4095, 7]));
    assert.deepEqual(file.read(3, 2), Int32Array.from([4, 4095]));
    assert.deepEqual(file.read(8, 0), new Int32Array(0));
    assert.throws(() => file.read(7, 2), /train\.bin: cannot read 2 tokens at 7 \(the file has 8\)/);
    assert.throws(() => file.read(-1, 1), RangeError);
    assert.throws(() => file.read(0.5, 1), RangeError);
    file.close();
    file.close();
    assert.throws(() => file.read(0, 1), /read after close\(\)/);
  }),
);

test(
  'uint32 above 65536 ids; async chunks; more tokens than one staging buffer',
  withTempDir(async (dir) => {
    const path = join(dir, 'big.bin');
    async function* chunks(): AsyncGenerator<number[]> {
      yield [70000, 65536, 0];
      yield [99999];
    }
    assert.deepEqual(await writeTokenFile(path, chunks(), { vocabSize: 100000 }), { length: 4 });
    assert.equal(statSync(path).size, 16);
    const meta = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(meta, { dtype: 'uint32', length: 4, vocabSize: 100000 });
    const file = TokenFile.open(path);
    assert.equal(file.dtype, 'uint32');
    assert.equal(file.eosTokenId, undefined);
    assert.deepEqual(file.read(0, 4), Int32Array.from([70000, 65536, 0, 99999]));
    assert.deepEqual(file.read(1, 2), Int32Array.from([65536, 0]));
    file.close();

    // 65536 ids still fit uint16
    await writeTokenFile(join(dir, 'edge.bin'), [[65535]], { vocabSize: 65536 });
    const edge = TokenFile.open(join(dir, 'edge.bin'));
    assert.equal(edge.dtype, 'uint16');
    assert.deepEqual(edge.read(0, 1), Int32Array.of(65535));
    edge.close();

    // 2.5 staging buffers (1M tokens each), in uneven chunks
    const n = 2_500_000;
    const value = (i: number): number => (i * 7919) % 50257;
    function* many(): Generator<Uint16Array> {
      for (let start = 0; start < n; start += 333_333) {
        const chunk = new Uint16Array(Math.min(333_333, n - start));
        for (let i = 0; i < chunk.length; i++) chunk[i] = value(start + i);
        yield chunk;
      }
    }
    const longPath = join(dir, 'long.bin');
    assert.deepEqual(await writeTokenFile(longPath, many(), { vocabSize: 50257 }), { length: n });
    assert.equal(statSync(longPath).size, 2 * n);
    const long = TokenFile.open(longPath);
    for (const start of [0, 1_048_575, 1_048_576, 2_097_000, n - 10]) {
      const got = long.read(start, 10);
      assert.deepEqual(
        [...got],
        Array.from({ length: 10 }, (_, i) => value(start + i)),
        `at ${start}`,
      );
    }
    long.close();
  }),
);

test(
  'a bad id fails the write and leaves existing files as they were, with no temporary files',
  withTempDir(async (dir) => {
    const path = join(dir, 'data.bin');
    await writeTokenFile(path, [[1, 2]], { vocabSize: 10 });
    const before = readFileSync(path);
    const beforeMeta = readFileSync(`${path}.json`, 'utf8');
    await assert.rejects(
      writeTokenFile(
        path,
        [
          [3, 4],
          [5, 10],
        ],
        { vocabSize: 10 },
      ),
      /data\.bin: token 3 is 10, not an id below vocabSize 10/,
    );
    await assert.rejects(writeTokenFile(path, [[-1]], { vocabSize: 10 }), /token 0 is -1/);
    await assert.rejects(writeTokenFile(path, [[1.5]], { vocabSize: 10 }), /token 0 is 1\.5/);
    async function* failing(): AsyncGenerator<number[]> {
      yield [1];
      throw new Error('source failed');
    }
    await assert.rejects(writeTokenFile(path, failing(), { vocabSize: 10 }), /source failed/);
    await assert.rejects(writeTokenFile(path, [[1]], { vocabSize: 0 }), /vocabSize must be an integer/);
    await assert.rejects(writeTokenFile(path, [[1]], { vocabSize: 10, eosTokenId: 10 }), /eosTokenId must be an id below vocabSize 10/);
    assert.deepEqual(readFileSync(path), before);
    assert.equal(readFileSync(`${path}.json`, 'utf8'), beforeMeta);
    assert.deepEqual(readdirSync(dir).sort(), ['data.bin', 'data.bin.json']);

    // an empty file is a valid file
    const empty = join(dir, 'empty.bin');
    assert.deepEqual(await writeTokenFile(empty, [], { vocabSize: 10 }), { length: 0 });
    const file = TokenFile.open(empty);
    assert.equal(file.length, 0);
    assert.deepEqual(file.read(0, 0), new Int32Array(0));
    file.close();
  }),
);

test(
  'corrupt or mismatched files: the error names the file and the problem',
  withTempDir(async (dir) => {
    const path = join(dir, 'x.bin');
    await writeTokenFile(path, [[1, 2, 3, 4]], { vocabSize: 300 });
    const meta = (m: unknown): void => writeFileSync(`${path}.json`, typeof m === 'string' ? m : JSON.stringify(m));

    assert.throws(() => TokenFile.open(join(dir, 'nope.bin')), /nope\.bin: token file missing/);
    truncateSync(path, 7);
    assert.throws(
      () => TokenFile.open(path),
      /x\.bin: 7 bytes, but .*x\.bin\.json says 4 uint16 tokens \(8 bytes\): the two files do not belong together, or one is truncated/,
    );
    truncateSync(path, 8);
    meta({ dtype: 'uint32', length: 4, vocabSize: 300 });
    assert.throws(() => TokenFile.open(path), /8 bytes, but .* says 4 uint32 tokens \(16 bytes\)/);
    meta('{"dtype": "uint16", "length": 4,');
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: not valid JSON/);
    meta([1, 2]);
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: expected a JSON object/);
    meta({ dtype: 'int16', length: 4, vocabSize: 300 });
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: dtype must be "uint16" or "uint32", got "int16"/);
    meta({ dtype: 'uint16', length: -4, vocabSize: 300 });
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: length must be a non-negative integer, got -4/);
    meta({ dtype: 'uint16', length: 4 });
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: vocabSize must be an integer/);
    meta({ dtype: 'uint16', length: 4, vocabSize: 70000 });
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: dtype uint16 cannot hold the ids of a vocabulary of 70000/);
    meta({ dtype: 'uint16', length: 4, vocabSize: 300, eosTokenId: 300 });
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: eosTokenId must be an id below vocabSize 300, got 300/);
    rmSync(`${path}.json`);
    assert.throws(() => TokenFile.open(path), /x\.bin\.json: missing \(a token file .*x\.bin needs its sidecar/);
  }),
);

test(
  'tokenizeToFile: each document encoded, EOS after each, readable back into the documents',
  withTempDir(async (dir) => {
    // a stand-in tokenizer: one id per character code
    const byChar = { encode: (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0)) };
    const path = join(dir, 'chars.bin');
    const result = await tokenizeToFile(byChar, ['ab', '', 'c'], path, { vocabSize: 256, eosTokenId: 0, source: 'chars' });
    assert.deepEqual(result, { length: 6, documents: 3 });
    const chars = TokenFile.open(path);
    assert.deepEqual([...chars.read(0, 6)], [97, 98, 0, 0, 99, 0]);
    assert.equal(chars.source, 'chars');
    chars.close();
    // without eosTokenId, documents are simply concatenated
    assert.deepEqual(await tokenizeToFile(byChar, ['ab', 'c'], join(dir, 'plain.bin'), { vocabSize: 256 }), { length: 3, documents: 2 });
    await assert.rejects(
      tokenizeToFile(byChar, ['é'], join(dir, 'bad.bin'), { vocabSize: 128 }),
      /token 0 is 233, not an id below vocabSize 128/,
    );

    // a trained byte-level BPE through glassbox's Tokenizer
    const texts = ['Call me Ishmael.', 'Some years ago, never mind how long precisely.', 'The whale! The whale!'];
    const json = trainBpe(texts, { vocabSize: 320, minFrequency: 1 });
    const tok = new Tokenizer(json);
    const eos = tok.tokenToId('<|endoftext|>')!;
    const bpePath = join(dir, 'bpe.bin');
    const { length } = await tokenizeToFile({ encode: (t) => tok.encode(t, { prependBos: false }) }, texts, bpePath, {
      vocabSize: tok.vocabSize,
      eosTokenId: eos,
    });
    const file = TokenFile.open(bpePath);
    assert.equal(file.length, length);
    const ids = [...file.read(0, file.length)];
    file.close();
    assert.equal(ids.filter((id) => id === eos).length, 3);
    assert.equal(ids.at(-1), eos);
    assert.equal(tok.decode(ids), texts.map((t) => `${t}<|endoftext|>`).join(''));

    // the bulk path (encodeMany: the Rust tokenizers where they load) writes the same file, across
    // several batches of 256 documents and a partial last one
    const many = Array.from({ length: 600 }, (_, i) => texts[i % texts.length]!.repeat(1 + (i % 3)));
    const one = await tokenizeToFile({ encode: (t) => tok.encode(t, { prependBos: false }) }, many, join(dir, 'one.bin'), {
      vocabSize: tok.vocabSize,
      eosTokenId: eos,
    });
    let calls = 0;
    const bulk = await tokenizeToFile(
      {
        encode: () => assert.fail('encode is not called when encodeMany is given'),
        encodeMany: (ts) => (calls++, tok.encodeMany(ts, { prependBos: false })),
      },
      many,
      join(dir, 'bulk.bin'),
      { vocabSize: tok.vocabSize, eosTokenId: eos },
    );
    assert.deepEqual(bulk, one);
    assert.equal(calls, 3);
    assert.deepEqual(readFileSync(join(dir, 'bulk.bin')), readFileSync(join(dir, 'one.bin')));
  }),
);
