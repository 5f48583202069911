import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRNG, tensor } from '../src/tensor/index.js';
import { TokenFile, writeTokenFile } from '../src/train/tokens.js';
import { sequentialWindows, tokenWindows, withRepeatedSegments } from '../src/train/windows.js';
import { syntheticData, type DataSource, type TokenBatch } from '../src/train/data.js';

async function countingFile(n: number): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'glassbox-windows-')), 'tokens.bin');
  await writeTokenFile(path, [Array.from({ length: n }, (_, i) => i)], { vocabSize: n });
  return path;
}

const rows = (t: { tokens: { toArray(): unknown } }) => (t.tokens.toArray() as bigint[][]).map((r) => r.map(Number));

test('token windows: each epoch visits every window once, at a random phase, in a seeded order', async () => {
  const path = await countingFile(1000);
  const seqLen = 9;
  const src = tokenWindows(path, { seqLen, batchSize: 4, seed: 3 });
  // Each window holds seqLen + 1 consecutive ids (the file counts 0, 1, 2, ...).
  const starts: number[] = [];
  let epochEnd = false;
  while (!epochEnd) {
    for (const r of rows(src.next())) {
      r.forEach((v, i) => assert.equal(v, r[0]! + i));
      starts.push(r[0]!);
    }
    epochEnd = (src.getState() as { epoch: number }).epoch > 0;
  }
  const firstEpoch = starts.slice(0, Math.floor((1000 - 1 - (starts[0]! % seqLen)) / seqLen));
  const phase = firstEpoch[0]! % seqLen;
  assert.ok(
    firstEpoch.every((s) => s % seqLen === phase),
    'one phase per epoch',
  );
  assert.equal(new Set(firstEpoch).size, firstEpoch.length, 'no window twice in an epoch');
  assert.notDeepEqual(
    firstEpoch,
    [...firstEpoch].sort((a, b) => a - b),
    'shuffled',
  );
  // Same seed, same stream; another seed, another.
  const again = tokenWindows(path, { seqLen, batchSize: 4, seed: 3 });
  assert.deepEqual(rows(again.next()), rows(tokenWindows(path, { seqLen, batchSize: 4, seed: 3 }).next()));
  assert.notDeepEqual(
    rows(tokenWindows(path, { seqLen, batchSize: 4, seed: 4 }).next()),
    rows(tokenWindows(path, { seqLen, batchSize: 4, seed: 3 }).next()),
  );
});

test('token windows and synthetic data resume exactly from a saved state', async () => {
  const path = await countingFile(500);
  const a = tokenWindows(path, { seqLen: 7, batchSize: 5, seed: 1 });
  for (let i = 0; i < 17; i++) a.next(); // crosses an epoch boundary (about 71 windows per epoch)
  const saved = JSON.parse(JSON.stringify(a.getState()));
  const expected = [rows(a.next()), rows(a.next())];
  const b = tokenWindows(TokenFile.open(path), { seqLen: 7, batchSize: 5, seed: 1 });
  b.setState(saved);
  assert.deepEqual([rows(b.next()), rows(b.next())], expected);

  const make = (rng: PRNG) => rng.normal();
  const s1 = syntheticData(make, { seed: 9 });
  s1.next();
  const st = JSON.parse(JSON.stringify(s1.getState()));
  const next = [s1.next(), s1.next()];
  const s2 = syntheticData(make, { seed: 9 });
  s2.setState(st);
  assert.deepEqual([s2.next(), s2.next()], next);
});

test('sequential validation windows and clear errors', async () => {
  const path = await countingFile(100);
  const file = TokenFile.open(path);
  const w = sequentialWindows(file, 10, 3).map((t) => (t.toArray() as bigint[][])[0]!.map(Number));
  assert.deepEqual(
    w.map((r) => [r[0], r[r.length - 1]]),
    [
      [0, 10],
      [10, 20],
      [20, 30],
    ],
  );
  assert.throws(() => tokenWindows(file, { seqLen: 60, batchSize: 1 }), /holds 100 tokens, too few for windows of 61/);
  assert.throws(() => tokenWindows(file, { seqLen: 0, batchSize: 1 }), /seqLen must be a positive integer/);
  assert.throws(() => tokenWindows(join(tmpdir(), 'no-such-file.bin'), { seqLen: 4, batchSize: 1 }), /no-such-file\.bin/);
});

/** A source of [rows, L] batches of random ids in [offset, offset + 1e6): distinct almost everywhere. */
function randomRows(rows: number, L: number, seed: number, offset = 0): DataSource<TokenBatch> {
  return syntheticData(
    (rng) => ({
      tokens: tensor(
        Array.from({ length: rows }, () => Array.from({ length: L }, () => offset + rng.int(1_000_000))),
        undefined,
        'int64',
      ),
    }),
    { seed },
  );
}

test('repeated segments: chosen rows end in a copy of the segment before it, at a varying distance; resume is exact', () => {
  const L = 64;
  const rows = 32;
  // Distinct ids everywhere, so a repeat can only come from the rewrite.
  const source = randomRows(rows, L, 3);
  const plain = randomRows(rows, L, 3);
  const repeated = withRepeatedSegments(source, { fraction: 0.5, seed: 1 });
  const rowsOf = (t: { tokens: { toArray(): unknown } }) => (t.tokens.toArray() as bigint[][]).map((r) => r.map(Number));
  const distances = new Set<number>();
  let rewritten = 0;
  for (let batch = 0; batch < 4; batch++) {
    const got = rowsOf(repeated.next());
    const orig = rowsOf(plain.next());
    got.forEach((row, r) => {
      if (row.every((v, i) => v === orig[r]![i])) return;
      rewritten++;
      // The first position that differs starts the copy: its length n runs to the end.
      const start = row.findIndex((v, i) => v !== orig[r]![i]);
      const n = L - start;
      assert.ok(n >= L / 8 && n <= L / 2, `repeat length ${n}`);
      assert.deepEqual(row.slice(start), orig[r]!.slice(start - n, start), 'the tail copies the n tokens before it');
      assert.deepEqual(row.slice(0, start), orig[r]!.slice(0, start), 'the rest of the row is untouched');
      distances.add(n);
    });
  }
  assert.ok(rewritten > 0.3 * 4 * rows && rewritten < 0.7 * 4 * rows, `${rewritten} of ${4 * rows} rows rewritten at fraction 0.5`);
  assert.ok(distances.size > 10, `repeat distances vary: ${[...distances].sort((a, b) => a - b).join(' ')}`);

  const state = JSON.parse(JSON.stringify(repeated.getState()));
  const next = rowsOf(repeated.next());
  const resumed = withRepeatedSegments(randomRows(rows, L, 99), { fraction: 0.5, seed: 42 });
  resumed.setState(state);
  assert.deepEqual(rowsOf(resumed.next()), next);
});

test('withRepeatedSegments with randomVocab ends rows in a random segment followed by its copy', () => {
  const rows = 64;
  const L = 64;
  const V = 50;
  // Source tokens are all >= 1000, so every token below V in the output was drawn by the rewrite.
  const source = randomRows(rows, L, 5, 1000);
  const got = (withRepeatedSegments(source, { fraction: 0.5, seed: 2, randomVocab: V }).next().tokens.toArray() as bigint[][]).map((r) =>
    r.map(Number),
  );
  let rewritten = 0;
  const drawn = new Set<number>();
  for (const row of got) {
    const start = row.findIndex((v) => v < V);
    if (start < 0) continue;
    rewritten++;
    const n = (L - start) / 2;
    assert.ok(Number.isInteger(n) && n >= L / 8 && n <= L / 2, `segment length ${n}`);
    const segment = row.slice(start, start + n);
    assert.ok(
      segment.every((v) => v < V),
      'the first copy is all random tokens',
    );
    assert.deepEqual(row.slice(start + n), segment, 'then the same tokens again');
    assert.ok(
      row.slice(0, start).every((v) => v >= 1000),
      'the text before is untouched',
    );
    segment.forEach((v) => drawn.add(v));
  }
  assert.ok(rewritten > 0.3 * rows && rewritten < 0.7 * rows, `${rewritten} of ${rows} rows rewritten`);
  assert.ok(drawn.size > V / 2, `random tokens cover the vocabulary: ${drawn.size} of ${V}`);
  assert.throws(() => withRepeatedSegments(source, { fraction: 0.5, randomVocab: 0 }), /randomVocab must be a positive integer, got 0/);
});
