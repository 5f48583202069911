import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SafetensorsError,
  SafetensorsFile,
  jit,
  loadSafetensors,
  openCheckpoint,
  saveSafetensors,
  scalar,
  tensor,
  writeFileAtomic,
  zeros,
  type Tensor,
} from '../src/index.js';

const GPT2 = fileURLToPath(new URL('./fixtures/tl/gpt2/model.safetensors', import.meta.url));
const GPT2_REF_HF = fileURLToPath(new URL('./fixtures/hf/gpt2/ref.safetensors', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'glassbox-safetensors-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
/** A fresh empty directory under the test's temp root. */
function freshDir(): string {
  const d = join(root, `d${++counter}`);
  mkdirSync(d);
  return d;
}

/** Builds a safetensors file by hand: header object (serialised as is) + data bytes. */
function rawFile(path: string, header: unknown, data: Uint8Array | number = 0, headerText?: string): string {
  const json = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.byteLength));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  writeFileSync(path, Buffer.concat([len, json, body]));
  return path;
}

/** Asserts that `fn` throws a SafetensorsError whose message names `file` and matches `problem` (and the tensor when given). */
function assertFails(fn: () => unknown, file: string, problem: RegExp, tensorName?: string): SafetensorsError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SafetensorsError, `expected a SafetensorsError, got ${String(caught)}`);
  assert.ok(caught.message.startsWith(`${file}: `), `message should start with the file: ${caught.message}`);
  assert.equal(caught.file, file);
  assert.match(caught.message, problem);
  if (tensorName !== undefined) {
    assert.equal(caught.tensor, tensorName);
    assert.ok(caught.message.includes(`tensor '${tensorName}'`), `message should name the tensor: ${caught.message}`);
  }
  return caught;
}

function values(t: Tensor): unknown[] {
  return Array.from(t.dataSync() as ArrayLike<unknown>);
}

describe('saveSafetensors / SafetensorsFile: round trip', () => {
  it('every native dtype, with empty and 0-d tensors, keeps dtype, shape and values', () => {
    const path = join(freshDir(), 'all.safetensors');
    const ts: Record<string, Tensor> = {
      f32: tensor([1.5, -2.25, 3e-8, Infinity, -0, NaN], [2, 3, 1]),
      f64: tensor(new Float64Array([Math.PI, -1e300, 5e-324]), [3]),
      i32: tensor(new Int32Array([2147483647, -2147483648, 0, 7]), [2, 2]),
      i64: tensor(new BigInt64Array([9007199254740993n, -5n, 0n]), [3]),
      bool: tensor([true, false, true, true, false, false], [3, 2]),
      scalar_f32: scalar(42.5),
      scalar_i64: scalar(7n, 'int64'),
      scalar_bool: scalar(true, 'bool'),
      empty_f32: zeros([0]),
      empty_i64: zeros([2, 0, 3], 'int64'),
      empty_bool: zeros([0, 4], 'bool'),
    };
    saveSafetensors(path, ts, { metadata: { format: 'pt', note: 'héllo' } });
    const f = SafetensorsFile.open(path);
    try {
      assert.deepEqual(f.keys(), Object.keys(ts).sort());
      assert.deepEqual(f.metadata, { format: 'pt', note: 'héllo' });
      assert.deepEqual(f.gaps, []);
      const codes: Record<string, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64', bool: 'BOOL' };
      for (const [name, t] of Object.entries(ts)) {
        const info = f.info(name);
        assert.equal(info.dtype, codes[t.dtype], name);
        assert.deepEqual(info.shape, t.shape, name);
        assert.equal(info.tensorDtype, t.dtype, name);
        const back = f.read(name);
        assert.equal(back.dtype, t.dtype, name);
        assert.deepEqual(back.shape, t.shape, name);
        assert.deepEqual(values(back), values(t), name);
      }
      assert.ok(Object.is(f.read('f32').dataSync()[4], -0), 'negative zero survives');
      assert.equal(f.info('i64').byteLength, 24);
      assert.equal(f.info('empty_i64').byteLength, 0);
    } finally {
      f.close();
    }
    const all = loadSafetensors(path);
    assert.equal(all.size, Object.keys(ts).length);
    assert.deepEqual(values(all.get('i64')!), [9007199254740993n, -5n, 0n]);
  });

  it('float16 and bfloat16 on request: floats narrow (round to nearest even), ints stay, reads widen to float32', () => {
    const path = join(freshDir(), 'half.safetensors');
    const exact = [0, 1, -2, 0.5, 65504, -(2 ** -14), 2 ** -24, -Infinity]; // exact in float16 (incl. a subnormal)
    const ts = { a: tensor(exact, [2, 4]), b: tensor(new Float64Array([1, 0.25])), ids: tensor(new Int32Array([5, 6])) };
    saveSafetensors(path, ts, { dtype: 'float16' });
    let f = SafetensorsFile.open(path);
    assert.equal(f.info('a').dtype, 'F16');
    assert.equal(f.info('b').dtype, 'F16');
    assert.equal(f.info('ids').dtype, 'I32');
    assert.equal(f.info('a').tensorDtype, 'float32');
    assert.equal(f.read('a').dtype, 'float32');
    assert.deepEqual(values(f.read('a')), exact);
    assert.deepEqual(values(f.read('b')), [1, 0.25]);
    assert.deepEqual(values(f.read('ids')), [5, 6]);
    f.close();

    saveSafetensors(path, { x: tensor([1, -3.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN, 1e38]) }, { dtype: 'bfloat16' });
    f = SafetensorsFile.open(path);
    assert.equal(f.info('x').dtype, 'BF16');
    assert.equal(f.info('x').byteLength, 12);
    const x = values(f.read('x')) as number[];
    // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even mantissa wins (1); 1 + 3*2^-8 rounds up to 1 + 2^-6.
    assert.deepEqual(x.slice(0, 4), [1, -3.5, 1, 1 + 2 ** -6]);
    assert.ok(Number.isNaN(x[4]));
    assert.ok(Math.abs(x[5]! - 1e38) / 1e38 < 2 ** -8);
    f.close();
  });

  it('float32 <-> float64 on request, and large tensors stream in chunks', () => {
    const path = join(freshDir(), 'big.safetensors');
    const n = 1_500_001; // more than one conversion chunk and one staging buffer
    const big = new Float32Array(n);
    for (let i = 0; i < n; i++) big[i] = Math.sin(i) * 100;
    saveSafetensors(path, { big: tensor(big), small: tensor([0.1]) }, { dtype: 'float64' });
    let f = SafetensorsFile.open(path);
    assert.equal(f.info('big').dtype, 'F64');
    const back = f.read('big').dataSync() as Float64Array;
    assert.equal(back.length, n);
    for (const i of [0, 1, 1 << 20, n - 1]) assert.equal(back[i], big[i]);
    f.close();

    saveSafetensors(path, { big: tensor(big) }, { dtype: 'float16' });
    f = SafetensorsFile.open(path);
    const half = f.read('big').dataSync() as Float32Array;
    for (const i of [0, 7, (1 << 20) + 3, n - 1])
      assert.ok(Math.abs(half[i]! - big[i]!) <= Math.abs(big[i]!) * 2 ** -11 + 1e-7, `element ${i}`);
    f.close();
    assert.equal(readFileSync(path).byteLength, 8 + f.headerLength + 2 * n);
  });

  it('the header is sorted, space-padded to 8 bytes, and the data is aligned by element size', () => {
    const path = join(freshDir(), 'layout.safetensors');
    saveSafetensors(
      path,
      { b: tensor([true], [1], 'bool'), '10': tensor([1, 2, 3]), '2': tensor(new BigInt64Array([1n])), a: tensor(new Float64Array([1])) },
      { metadata: { z: '1', a: '2' } },
    );
    const buf = readFileSync(path);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const text = buf.subarray(8, 8 + n).toString('utf8');
    assert.match(text, /^\{"__metadata__":\{"a":"2","z":"1"\},"10":\{.*\},"2":\{.*\},"a":\{.*\},"b":\{.*\}\} *$/);
    assert.equal(text.trimEnd().length + ((8 - (text.trimEnd().length % 8)) % 8), n);
    const h = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    // widest first, then by name: 8-byte 2 and a, then 4-byte 10, then 1-byte b
    assert.deepEqual(h['2']!.data_offsets, [0, 8]);
    assert.deepEqual(h['a']!.data_offsets, [8, 16]);
    assert.deepEqual(h['10']!.data_offsets, [16, 28]);
    assert.deepEqual(h['b']!.data_offsets, [28, 29]);
    assert.equal(buf.byteLength, 8 + n + 29);
    const f = SafetensorsFile.open(path, { strict: true });
    assert.deepEqual(f.keys(), ['10', '2', 'a', 'b']);
    assert.deepEqual(values(f.read('10')), [1, 2, 3]);
    f.close();
  });

  it('reads I16, I8 and U8 (widened to int32) and raw bytes', () => {
    const path = join(freshDir(), 'small-ints.safetensors');
    const i16 = new Int16Array([-32768, 32767, -1]);
    const data = Buffer.concat([Buffer.from(i16.buffer), Buffer.from([0x80, 0x7f, 0xff]), Buffer.from([0, 200, 255]), Buffer.from([2])]);
    rawFile(
      path,
      {
        s: { dtype: 'I16', shape: [3], data_offsets: [0, 6] },
        c: { dtype: 'I8', shape: [1, 3], data_offsets: [6, 9] },
        u: { dtype: 'U8', shape: [3], data_offsets: [9, 12] },
        flag: { dtype: 'BOOL', shape: [], data_offsets: [12, 13] },
      },
      data,
    );
    const f = SafetensorsFile.open(path);
    assert.equal(f.read('s').dtype, 'int32');
    assert.deepEqual(values(f.read('s')), [-32768, 32767, -1]);
    assert.deepEqual(f.read('c').shape, [1, 3]);
    assert.deepEqual(values(f.read('c')), [-128, 127, -1]);
    assert.deepEqual(values(f.read('u')), [0, 200, 255]);
    assert.equal(f.info('u').tensorDtype, 'int32');
    assert.equal(f.read('flag').dtype, 'bool');
    assert.equal(f.read('flag').toArray(), true); // any non-zero byte is true
    assert.deepEqual([...f.readBytes('c')], [0x80, 0x7f, 0xff]);
    f.close();
  });
});

describe('SafetensorsFile: real checkpoints', () => {
  it('reads the gpt2 fixture: shapes from the header, finite values, bytes as on disk', () => {
    const f = SafetensorsFile.open(GPT2);
    try {
      assert.equal(f.size, 28);
      assert.deepEqual(f.metadata, { format: 'pt' });
      assert.deepEqual(f.info('transformer.wte.weight'), {
        dtype: 'F32',
        shape: [320, 64],
        byteLength: 320 * 64 * 4,
        tensorDtype: 'float32',
      });
      assert.deepEqual(f.info('transformer.h.0.attn.c_attn.weight').shape, [64, 192]);
      const wte = f.read('transformer.wte.weight');
      assert.deepEqual(wte.shape, [320, 64]);
      const d = wte.dataSync() as Float32Array;
      assert.ok(d.every(Number.isFinite));
      assert.ok(d.some((v) => v !== 0));
      // the same bytes as a whole-file read puts at the header's offsets
      const buf = readFileSync(GPT2);
      const n = Number(buf.readBigUInt64LE(0));
      const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
      const [b, e] = h['transformer.wte.weight']!.data_offsets;
      assert.deepEqual(Buffer.from(f.readBytes('transformer.wte.weight')), buf.subarray(8 + n + b, 8 + n + e));
      for (const k of f.keys()) assert.ok((f.read(k).dataSync() as Float32Array).every(Number.isFinite), k);
    } finally {
      f.close();
    }
  });

  it('reads token ids from a Hugging Face reference file', () => {
    const f = SafetensorsFile.open(GPT2_REF_HF);
    try {
      const ids = f.read('p0.input_ids');
      assert.equal(f.info('p0.input_ids').dtype, 'I32'); // the fixtures store ids as I32 (int64 round trips are tested above)
      assert.deepEqual(ids.shape, [1, 16]);
      assert.ok(values(ids).every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 512));
      assert.deepEqual(f.read('batch_left.loss').shape, []);
      assert.deepEqual(f.gaps, []);
    } finally {
      f.close();
    }
  });

  it('an unknown name lists the nearest names', () => {
    const f = SafetensorsFile.open(GPT2);
    const err = assertFails(
      () => f.read('h.0.attn.c_attn.weight'),
      GPT2,
      /not in this file \(28 tensors; nearest: 'transformer\.h\.0\.attn\.c_attn\.weight'/,
    );
    assert.equal(err.tensor, 'h.0.attn.c_attn.weight');
    assertFails(() => f.info('transformer.wte.weigth'), GPT2, /nearest: 'transformer\.wte\.weight'/, 'transformer.wte.weigth');
    f.close();
    assertFails(() => f.read('transformer.wte.weight'), GPT2, /closed/, 'transformer.wte.weight');
    assert.deepEqual(f.info('transformer.wpe.weight').shape, [64, 64]); // the header stays available
  });
});

describe('SafetensorsFile: corrupt files are rejected with the file, the tensor and the problem', () => {
  const dir = freshDir();
  const good = (name: string): string => {
    const p = join(dir, name);
    saveSafetensors(p, { 'h.0.w': tensor([1, 2, 3, 4, 5, 6], [2, 3]), 'h.1.w': tensor([7, 8]) });
    return p;
  };

  it('truncated file', () => {
    const p = good('truncated.safetensors');
    truncateSync(p, readFileSync(p).byteLength - 4);
    assertFails(
      () => SafetensorsFile.open(p),
      p,
      /data_offsets \[\d+, \d+\] run past the end of the data section \(\d+ bytes\): the file is truncated/,
    );
    const tiny = join(dir, 'tiny.safetensors');
    writeFileSync(tiny, Buffer.from([1, 2, 3]));
    assertFails(() => SafetensorsFile.open(tiny), tiny, /the file is 3 bytes, too short/);
  });

  it('truncated after opening: the read fails naming the tensor', () => {
    const p = good('shrinks.safetensors');
    const f = SafetensorsFile.open(p);
    truncateSync(p, f.fileSize - 4);
    assert.deepEqual(values(f.read('h.0.w')), [1, 2, 3, 4, 5, 6]);
    assertFails(() => f.read('h.1.w'), p, /the file ended after 4 of the tensor's 8 bytes/, 'h.1.w');
    f.close();
  });

  it('header length past the end of the file, or absurdly large', () => {
    const p = join(dir, 'hlen.safetensors');
    const buf = Buffer.alloc(40, 0x20);
    buf.writeBigUInt64LE(1000n);
    writeFileSync(p, buf);
    assertFails(() => SafetensorsFile.open(p), p, /header length 1000 runs past the end of the file \(40 bytes/);
    const lfs = join(dir, 'lfs.safetensors');
    writeFileSync(lfs, 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
    assertFails(() => SafetensorsFile.open(lfs), lfs, /exceeds the 100000000-byte limit.*Git LFS pointer/);
    const p2 = rawFile(join(dir, 'cap.safetensors'), {});
    assertFails(() => SafetensorsFile.open(p2, { maxHeaderBytes: 1 }), p2, /header length 2 exceeds the 1-byte limit/);
  });

  it('invalid JSON, not an object, not UTF-8, bad metadata', () => {
    const p = rawFile(join(dir, 'json.safetensors'), null, 0, '{"a": {"dtype": "F32",');
    assertFails(() => SafetensorsFile.open(p), p, /the header is not valid JSON/);
    const q = rawFile(join(dir, 'array.safetensors'), null, 0, '[1, 2]');
    assertFails(() => SafetensorsFile.open(q), q, /does not start with '\{'/);
    const u = join(dir, 'utf8.safetensors');
    const bad = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x20]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(8n);
    writeFileSync(u, Buffer.concat([len, bad]));
    assertFails(() => SafetensorsFile.open(u), u, /not valid UTF-8/);
    const m = rawFile(join(dir, 'meta.safetensors'), { __metadata__: { step: 3 } });
    assertFails(() => SafetensorsFile.open(m), m, /__metadata__ must map strings to strings, but 'step' holds 3/);
  });

  it('offsets outside the data section', () => {
    const p = rawFile(join(dir, 'offsets.safetensors'), { x: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 8);
    assertFails(() => SafetensorsFile.open(p), p, /data_offsets \[4, 12\] run past the end of the data section \(8 bytes\)/, 'x');
    const q = rawFile(join(dir, 'offsets2.safetensors'), { x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8);
    assertFails(() => SafetensorsFile.open(q), q, /data_offsets \[8,0\] is not a pair \[begin, end\]/, 'x');
    const r = rawFile(join(dir, 'offsets3.safetensors'), { x: { dtype: 'F32', shape: [2], data_offsets: [-1, 7] } }, 8);
    assertFails(() => SafetensorsFile.open(r), r, /is not a pair/, 'x');
  });

  it('overlapping tensors', () => {
    const p = rawFile(
      join(dir, 'overlap.safetensors'),
      {
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] },
        z: { dtype: 'F32', shape: [0], data_offsets: [8, 8] },
      },
      20,
    );
    assertFails(() => SafetensorsFile.open(p), p, /tensors 'a' \[0, 16\] and 'b' \[12, 20\] overlap/);
  });

  it('shape and byte length disagree', () => {
    const p = rawFile(
      join(dir, 'model.safetensors'),
      { 'h.0.attn.c_attn.weight': { dtype: 'F32', shape: [5, 6], data_offsets: [0, 100] } },
      100,
    );
    assertFails(
      () => SafetensorsFile.open(p),
      p,
      /^.*: tensor 'h\.0\.attn\.c_attn\.weight': data_offsets \[0, 100\] hold 100 bytes but float32\[5, 6\] needs 120$/,
      'h.0.attn.c_attn.weight',
    );
    const q = rawFile(join(dir, 'shape.safetensors'), { x: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8);
    assertFails(() => SafetensorsFile.open(q), q, /shape \[2,-1\] is not a list of non-negative integers/, 'x');
    const r = rawFile(join(dir, 'shape2.safetensors'), { x: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, 8);
    assertFails(() => SafetensorsFile.open(r), r, /is not a list of non-negative integers/, 'x');
  });

  it('unknown dtype', () => {
    const p = rawFile(join(dir, 'dtype.safetensors'), { q: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, 4);
    assertFails(() => SafetensorsFile.open(p), p, /unknown or unsupported dtype "F8_E4M3" \(glassbox reads F32, F16, BF16/, 'q');
    const q = rawFile(join(dir, 'nodtype.safetensors'), { q: { shape: [4], data_offsets: [0, 4] } }, 4);
    assertFails(() => SafetensorsFile.open(q), q, /has no dtype/, 'q');
  });

  it('gaps are reported, and rejected in strict mode', () => {
    const p = rawFile(
      join(dir, 'gaps.safetensors'),
      { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, b: { dtype: 'U8', shape: [2], data_offsets: [8, 10] } },
      new Uint8Array([0, 0, 0, 0, 0, 0, 0x80, 0x3f, 1, 2, 9, 9]),
    );
    const f = SafetensorsFile.open(p);
    assert.deepEqual(f.gaps, [
      { start: 0, end: 4, after: undefined },
      { start: 10, end: 12, after: 'b' },
    ]);
    assert.deepEqual(values(f.read('a')), [1]);
    f.close();
    assertFails(
      () => SafetensorsFile.open(p, { strict: true }),
      p,
      /bytes \[0, 4\) of the data section belong to no tensor \(and 1 more gaps\)/,
    );
  });

  it('a missing file', () => {
    const p = join(dir, 'nope.safetensors');
    assertFails(() => SafetensorsFile.open(p), p, /cannot open the file \(ENOENT/);
  });
});

describe('openCheckpoint', () => {
  function sharded(): { dir: string; index: string } {
    const dir = freshDir();
    saveSafetensors(
      join(dir, 'model-00001-of-00002.safetensors'),
      { 'a.w': tensor([1, 2], [1, 2]), 'a.b': tensor([3]) },
      { metadata: { format: 'pt' } },
    );
    saveSafetensors(join(dir, 'model-00002-of-00002.safetensors'), { 'b.w': tensor(new BigInt64Array([4n, 5n])), unmapped: tensor([0]) });
    const index = join(dir, 'model.safetensors.index.json');
    writeFileAtomic(
      index,
      JSON.stringify({
        metadata: { total_size: 28 },
        weight_map: {
          'a.w': 'model-00001-of-00002.safetensors',
          'a.b': 'model-00001-of-00002.safetensors',
          'b.w': 'model-00002-of-00002.safetensors',
        },
      }),
    );
    return { dir, index };
  }

  it('a sharded checkpoint: one set of names over all shards', () => {
    const { dir, index } = sharded();
    for (const validate of ['eager', 'lazy'] as const) {
      const ck = openCheckpoint(dir, { validate });
      assert.equal(ck.sharded, true);
      assert.equal(ck.path, index);
      assert.deepEqual(ck.keys(), ['a.b', 'a.w', 'b.w']);
      assert.equal(ck.has('unmapped'), false);
      assert.deepEqual(ck.metadata, { total_size: 28 });
      assert.deepEqual(ck.files, [join(dir, 'model-00001-of-00002.safetensors'), join(dir, 'model-00002-of-00002.safetensors')]);
      assert.equal(ck.fileOf('b.w'), join(dir, 'model-00002-of-00002.safetensors'));
      assert.deepEqual(ck.info('a.w'), { dtype: 'F32', shape: [1, 2], byteLength: 8, tensorDtype: 'float32' });
      assert.deepEqual(ck.read('a.w').toArray(), [[1, 2]]);
      assert.deepEqual(values(ck.read('b.w')), [4n, 5n]);
      assert.deepEqual([...ck.readBytes('a.b')], [0, 0, 0x40, 0x40]);
      assertFails(() => ck.read('b.x'), index, /not in this checkpoint \(3 tensors; nearest: 'b\.w'/, 'b.x');
      ck.close();
      assertFails(() => ck.read('a.w'), index, /closed/, 'a.w');
    }
    // the index itself can be named
    const ck = openCheckpoint(index);
    assert.deepEqual(values(ck.read('a.b')), [3]);
    ck.close();
  });

  it('a single-file checkpoint, by directory or by path', () => {
    const dir = freshDir();
    const file = join(dir, 'model.safetensors');
    saveSafetensors(file, { w: tensor([1, 2, 3]) }, { metadata: { format: 'pt' } });
    for (const p of [dir, file]) {
      const ck = openCheckpoint(p);
      assert.equal(ck.sharded, false);
      assert.equal(ck.path, file);
      assert.deepEqual(ck.keys(), ['w']);
      assert.deepEqual(ck.metadata, { format: 'pt' });
      assert.deepEqual(values(ck.read('w')), [1, 2, 3]);
      ck.close();
    }
    const fixtureDir = fileURLToPath(new URL('./fixtures/tl/gpt2/', import.meta.url));
    const ck = openCheckpoint(fixtureDir);
    assert.deepEqual(ck.info('transformer.wte.weight').shape, [320, 64]);
    ck.close();
  });

  it('a directory with no checkpoint says what it found', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.safetensors'), '');
    writeFileSync(join(dir, 'b.safetensors'), '');
    assertFails(
      () => openCheckpoint(dir),
      dir,
      /no model\.safetensors or model\.safetensors\.index\.json in this directory \(found 'a\.safetensors', 'b\.safetensors'/,
    );
    const other = freshDir();
    saveSafetensors(join(other, 'sae_weights.safetensors'), { W_enc: tensor([1]) });
    const ck = openCheckpoint(other);
    assert.deepEqual(ck.keys(), ['W_enc']);
    ck.close();
    assertFails(() => openCheckpoint(join(other, 'missing')), join(other, 'missing'), /cannot open the checkpoint \(ENOENT/);
  });

  it('a missing shard names the index, the shard and a tensor', () => {
    const { dir, index } = sharded();
    rmSync(join(dir, 'model-00002-of-00002.safetensors'));
    for (const validate of ['eager', 'lazy'] as const)
      assertFails(
        () => openCheckpoint(dir, { validate }),
        index,
        /shard 'model-00002-of-00002\.safetensors' does not exist \(looked for .*\); it should hold 1 tensor$/,
        'b.w',
      );
  });

  it('a tensor missing from its shard names the index, the shard and the tensor', () => {
    const { dir, index } = sharded();
    saveSafetensors(join(dir, 'model-00002-of-00002.safetensors'), { 'b.v': tensor([1]) });
    assertFails(
      () => openCheckpoint(dir),
      index,
      /tensor 'b\.w': the index maps it to shard 'model-00002-of-00002\.safetensors', which has no such tensor \(nearest there: 'b\.v'\)/,
      'b.w',
    );
    // lazily: opening works; the first touch of that shard fails, the other shard still reads
    const ck = openCheckpoint(dir, { validate: 'lazy' });
    assert.deepEqual(values(ck.read('a.b')), [3]);
    assertFails(() => ck.info('b.w'), index, /which has no such tensor/, 'b.w');
    ck.close();
  });

  it('a corrupt shard or index is reported', () => {
    const { dir, index } = sharded();
    const shard = join(dir, 'model-00001-of-00002.safetensors');
    truncateSync(shard, 20);
    assertFails(() => openCheckpoint(dir), shard, /header length \d+ runs past the end of the file/);
    writeFileSync(index, '{"weight_map": ');
    assertFails(() => openCheckpoint(dir), index, /cannot read the index/);
    writeFileSync(index, '{"metadata": {}}');
    assertFails(() => openCheckpoint(dir), index, /no "weight_map" object/);
    writeFileSync(index, JSON.stringify({ weight_map: { x: '../elsewhere.safetensors' } }));
    assertFails(() => openCheckpoint(dir), index, /outside the checkpoint directory/, 'x');
  });
});

describe('saveSafetensors: atomic writes and input checks', () => {
  it('a failure mid-write leaves the destination unchanged and no temporary file', () => {
    const dir = freshDir();
    const path = join(dir, 'weights.safetensors');
    saveSafetensors(path, { old: tensor([1, 2, 3]) });
    const before = readFileSync(path);
    const broken = tensor([4, 5, 6]);
    Object.defineProperty(broken, 'dataSync', {
      value: () => {
        throw new Error('storage went away');
      },
    });
    // 'm' is written before 'x' (same element size, sorted by name), so the failure is mid-file
    assertFails(
      () => saveSafetensors(path, { m: tensor(new Float32Array(1000)), x: broken }),
      path,
      /cannot write its values \(storage went away\); the destination was left unchanged/,
      'x',
    );
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(readdirSync(dir), ['weights.safetensors']);
    // a fresh destination is not created either
    const fresh = join(dir, 'fresh.safetensors');
    assertFails(() => saveSafetensors(fresh, { x: broken }), fresh, /storage went away/, 'x');
    assert.equal(existsSync(fresh), false);
    assert.deepEqual(readdirSync(dir), ['weights.safetensors']);
    // and the old file still reads
    assert.deepEqual(values(loadSafetensors(path).get('old')!), [1, 2, 3]);
  });

  it('overwrites an existing file in place of the old one', () => {
    const dir = freshDir();
    const path = join(dir, 'w.safetensors');
    saveSafetensors(path, { a: tensor([1]) });
    saveSafetensors(path, { b: tensor([2, 3]) });
    assert.deepEqual([...loadSafetensors(path).keys()], ['b']);
    assert.deepEqual(readdirSync(dir), ['w.safetensors']);
  });

  it('rejects what it cannot save, before touching the disk', () => {
    const dir = freshDir();
    const path = join(dir, 'bad.safetensors');
    assertFails(() => saveSafetensors(path, { __metadata__: tensor([1]) }), path, /reserved/);
    assertFails(() => saveSafetensors(path, { x: [1, 2] as unknown as Tensor }), path, /not a Tensor/, 'x');
    assertFails(
      () => saveSafetensors(path, { x: tensor([1]) }, { metadata: { n: 1 as unknown as string } }),
      path,
      /metadata must map strings to strings/,
    );
    assertFails(() => saveSafetensors(path, { x: tensor([1]) }, { dtype: 'int8' as 'float16' }), path, /dtype "int8" is not one of/);
    assert.throws(
      () =>
        jit((t: Tensor) => {
          saveSafetensors(path, { t });
          return t;
        })(tensor([1, 2])),
      /tensor 't': cannot save a tracer/,
    );
    const nodir = join(dir, 'missing', 'x.safetensors');
    assertFails(() => saveSafetensors(nodir, { x: tensor([1]) }), nodir, /cannot write the file \(ENOENT/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('accepts a Map and writes an empty file', () => {
    const dir = freshDir();
    const path = join(dir, 'm.safetensors');
    saveSafetensors(path, new Map([['k', tensor([1, 2])]]));
    assert.deepEqual(values(loadSafetensors(path).get('k')!), [1, 2]);
    saveSafetensors(path, {});
    const f = SafetensorsFile.open(path, { strict: true });
    assert.deepEqual(f.keys(), []);
    assert.equal(f.fileSize, 16); // '{}' padded to 8 bytes
    f.close();
  });
});
