/**
 * 16-bit checkpoints: bf16 and fp16 safetensors read through the one-pass path (positioned reads,
 * widened chunk by chunk), single-file and sharded; weights kept at 2 bytes ('stored'), which
 * must give the float32 path's logits exactly; transposed views of weights.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SafetensorsError,
  SafetensorsFile,
  bfloat16ToFloat32,
  eagerConfig,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  jit,
  loadFromDirectory,
  openCheckpoint,
  saveSafetensors,
  tensor,
  Tensor as TensorClass,
  type HookedTransformer,
  type Tensor,
} from '../src/index.js';
import { _setReadChunkBytes } from '../src/io/float-read.js';
import { HookedTransformer as HT } from '../src/model/hooked.js';
import { bfloat16ToScaledFloat16, decodeStored } from '../src/tensor/stored.js';
import { _setWidenBlock } from '../src/tensor/onnx/lower.js';
import { clearSessionCache } from '../src/tensor/index.js';
import { PRNG } from '../src/tensor/prng.js';
import { FIXTURES_HF, readAll, readJson } from './fixture-utils.js';

const root = mkdtempSync(join(tmpdir(), 'glassbox-16bit-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => {
  const d = join(root, `d${++counter}`);
  mkdirSync(d);
  return d;
};

type Half = 'bfloat16' | 'float16';
const roundTo = (half: Half, x: Float32Array): Float32Array =>
  half === 'bfloat16' ? bfloat16ToFloat32(float32ToBfloat16(x)) : float16ToFloat32(float32ToFloat16(x));

/** The fixture family's checkpoint saved in `half` (optionally sharded), with its config. */
function halfCheckpoint(fam: string, half: Half, shards = 1): string {
  const dir = freshDir();
  const src = `${FIXTURES_HF}${fam}/`;
  copyFileSync(`${src}config.json`, join(dir, 'config.json'));
  const weights = readAll(`${src}model.safetensors`);
  if (shards === 1) {
    saveSafetensors(join(dir, 'model.safetensors'), weights, { dtype: half });
    return dir;
  }
  const names = [...weights.keys()].sort();
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = names.filter((_, i) => i % shards === s);
    saveSafetensors(join(dir, file), new Map(part.map((n) => [n, weights.get(n)!])), { dtype: half });
    for (const n of part) weightMap[n] = file;
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

/** The fixture model with every weight rounded to `half` and held in float32, built the old way (no fast path). */
function roundedModel(fam: string, half: Half): HookedTransformer {
  const w = readAll(`${FIXTURES_HF}${fam}/model.safetensors`);
  return HT.fromHf(readJson(`${FIXTURES_HF}${fam}/config.json`), {
    has: (n) => w.has(n),
    get: (n) => {
      const t = w.get(n)!;
      return tensor(roundTo(half, t.dataSync() as Float32Array), t.shape);
    },
  });
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync() as Float32Array;
  const y = b.dataSync() as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) m = Math.max(m, Math.abs(x[i]! - y[i]!) || Infinity);
  return m;
}

/** Every weight of a model with its name. */
function leaves(m: HookedTransformer): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  const walk = (x: unknown, path: string): void => {
    if (x && typeof x === 'object' && 'dtype' in x && 'shape' in x) out.push([path, x as Tensor]);
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) if (v !== undefined) walk(v, path ? `${path}.${k}` : k);
  };
  walk(m.params, '');
  return out;
}

function withChunk<T>(bytes: number, body: () => T): T {
  _setReadChunkBytes(bytes);
  try {
    return body();
  } finally {
    _setReadChunkBytes(1 << 20);
  }
}

function withViewsFrom<T>(min: number, body: () => T): T {
  const prev = eagerConfig.transposeViewMin;
  eagerConfig.transposeViewMin = min;
  try {
    return body();
  } finally {
    eagerConfig.transposeViewMin = prev;
  }
}

const ref = (fam: string): Map<string, Tensor> => readAll(`${FIXTURES_HF}${fam}/ref.safetensors`);
const ids = (t: Tensor): number[][] => {
  const [b, s] = t.shape as [number, number];
  const v = Array.from(t.dataSync() as BigInt64Array, Number);
  return Array.from({ length: b }, (_, i) => v.slice(i * s, (i + 1) * s));
};

describe('bfloat16 rows as float16 times a power of two', () => {
  it('holds every bfloat16 value exactly: zeros, signs, bfloat16 subnormals, wide and narrow rows', () => {
    const rng = new PRNG(3);
    const rows = 40;
    const cols = 97;
    const bits = new Uint16Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      // Row r spans about r binades around 2^(r - 20); some rows are all bfloat16 subnormals.
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        if (r % 7 === 3)
          bits[i] = (rng.int(2) << 15) | rng.int(128); // subnormal or zero
        else if (c % 11 === 0)
          bits[i] = rng.int(2) << 15; // +0 / -0
        else {
          const e = 127 + (r - 20) - rng.int(Math.min(r, 32) + 1);
          bits[i] = (rng.int(2) << 15) | (Math.max(1, Math.min(254, e)) << 7) | rng.int(128);
        }
      }
    }
    const want = bfloat16ToFloat32(bits);
    const packed = bits.slice();
    const scale = bfloat16ToScaledFloat16(packed, rows, cols);
    assert.ok(scale, 'every row fits');
    assert.ok(
      scale.every((s) => Math.log2(s) === Math.round(Math.log2(s))),
      'multipliers are powers of two',
    );
    const got = decodeStored(
      { format: 'float16', data: packed, shape: [rows, cols], transposed: false, scale },
      (n) => new Float32Array(n),
    );
    for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]), `element ${i}: got ${got[i]}, want ${want[i]}`);
  });

  it('declines rows it cannot hold (infinities, NaN, more than 39 binades) and leaves the bits unchanged', () => {
    for (const row of [
      [0x3f80, 0x7f80], // 1, +inf
      [0x3f80, 0x7fc0], // 1, NaN
      [0x3f80, 0x3f80 - (40 << 7)], // 1 and 2^-40: the lowest set bit is 40 binades down
    ]) {
      const bits = Uint16Array.from(row);
      assert.equal(bfloat16ToScaledFloat16(bits, 1, bits.length), null);
      assert.deepEqual(Array.from(bits), row);
    }
    const ok = Uint16Array.from([0x3f80, 0x3f80 - (32 << 7)]); // 1 and 2^-32: 32 binades plus 7 mantissa bits = 39
    assert.ok(bfloat16ToScaledFloat16(ok, 1, 2));
  });
});

describe('16-bit safetensors: one-pass reads', () => {
  const values = Float32Array.from({ length: 7 * 9 }, (_, i) => Math.sin(i * 1.7) * 2 ** ((i % 13) - 6));
  for (const half of ['bfloat16', 'float16'] as const) {
    it(`${half}: float32 reads equal the widened values, across chunk boundaries`, () => {
      const file = join(freshDir(), 'x.safetensors');
      saveSafetensors(file, { w: tensor(values, [7, 9]), v: tensor(values.subarray(0, 5), [5]) }, { dtype: half });
      const want = roundTo(half, values);
      for (const chunk of [2, 6, 18, 1 << 20]) {
        const f = SafetensorsFile.open(file);
        const w = withChunk(chunk, () => f.read('w'));
        const v = withChunk(chunk, () => f.read('v'));
        f.close();
        assert.equal(w.dtype, 'float32');
        assert.deepEqual(w.storage, { dtype: 'float32', bytes: 7 * 9 * 4, transposedView: false });
        assert.deepEqual(Array.from(w.dataSync() as Float32Array), Array.from(want), `chunk ${chunk}`);
        assert.deepEqual(Array.from(v.dataSync() as Float32Array), Array.from(want.subarray(0, 5)), `chunk ${chunk}`);
      }
    });

    it(`${half}: 'stored' reads keep 2 bytes a value and the same values`, () => {
      const file = join(freshDir(), 'x.safetensors');
      saveSafetensors(file, { w: tensor(values, [7, 9]) }, { dtype: half });
      const f = SafetensorsFile.open(file);
      const w = f.read('w', { weightDtype: 'stored' });
      f.close();
      assert.equal(w.dtype, 'float32');
      // bfloat16 adds one float32 multiplier per row.
      assert.deepEqual(w.storage, { dtype: 'float16', bytes: 7 * 9 * 2 + (half === 'bfloat16' ? 7 * 4 : 0), transposedView: false });
      assert.deepEqual(Array.from(w.dataSync() as Float32Array), Array.from(roundTo(half, values)));
      assert.equal(w.storage.dtype, 'float16', 'reading the values does not keep a float32 copy');
    });
  }

  it('a bfloat16 tensor whose rows cannot be held at 2 bytes is widened to float32 instead', () => {
    const file = join(freshDir(), 'x.safetensors');
    saveSafetensors(file, { w: tensor([1, 2 ** -60, 3, 4], [2, 2]) }, { dtype: 'bfloat16' });
    const f = SafetensorsFile.open(file);
    const w = f.read('w', { weightDtype: 'stored' });
    f.close();
    assert.equal(w.storage.dtype, 'float32');
    assert.deepEqual(Array.from(w.dataSync() as Float32Array), [1, 2 ** -60, 3, 4]);
  });

  it('a sharded checkpoint reads each tensor from its shard with positioned reads, in chunks', () => {
    const single = halfCheckpoint('llama', 'bfloat16');
    const sharded = halfCheckpoint('llama', 'bfloat16', 3);
    const a = openCheckpoint(single);
    const b = openCheckpoint(sharded);
    assert.equal(b.sharded, true);
    assert.equal(new Set(b.keys().map((n) => b.fileOf(n))).size, 3);
    for (const name of a.keys()) {
      const want = a.read(name).dataSync();
      for (const chunk of [2, 1000, 1 << 20]) {
        const got = withChunk(chunk, () => b.read(name));
        assert.deepEqual(got.dataSync(), want, `${name}, chunk ${chunk}`);
        assert.deepEqual(
          withChunk(chunk, () => b.read(name, { weightDtype: 'stored' })).dataSync(),
          want,
          `${name} stored, chunk ${chunk}`,
        );
      }
    }
    a.close();
    b.close();
  });
});

describe('reading many tensors on several threads', () => {
  for (const weightDtype of ['float32', 'stored'] as const)
    it(`a worker and the main thread read a sharded checkpoint's tensors (${weightDtype}), the same as one by one`, () => {
      const ckpt = openCheckpoint(halfCheckpoint('gemma2', 'bfloat16', 3));
      const names = ckpt.keys();
      const all = ckpt.readTensors(names, { weightDtype, threads: 2, minBytes: 0 });
      const byWorkers = ckpt.readTensors(names, { weightDtype, threads: 3, minBytes: 0, mainThreadReads: false });
      assert.deepEqual([...all.keys()], names);
      for (const n of names) {
        const one = ckpt.read(n, { weightDtype });
        assert.deepEqual(all.get(n)!.storage, one.storage, n);
        assert.deepEqual(all.get(n)!.dataSync(), one.dataSync(), n);
        assert.deepEqual(byWorkers.get(n)!.storage, one.storage, n);
        assert.deepEqual(byWorkers.get(n)!.dataSync(), one.dataSync(), n);
      }
      ckpt.close();
    });

  it('a file truncated after it was opened is an error naming the file and a tensor', () => {
    const dir = halfCheckpoint('llama', 'float16', 2);
    const ckpt = openCheckpoint(dir);
    const file = ckpt.fileOf(ckpt.keys()[0]!);
    truncateSync(file, statSync(file).size - 100);
    for (const mainThreadReads of [true, false])
      assert.throws(
        () => ckpt.readTensors(ckpt.keys(), { threads: 2, minBytes: 0, mainThreadReads }),
        (e: unknown) => e instanceof SafetensorsError && e.file === file && e.tensor !== undefined && /file ended/.test(e.message),
      );
    ckpt.close();
  });
});

describe('16-bit checkpoints through loadFromDirectory', () => {
  // gpt2: Conv1D weights are [in, out] already (no views: the row multipliers scale a matmul's
  // input), and its fused q/k/v weights are split by eager slices, which widen them.
  for (const fam of ['llama', 'gemma2', 'gpt2']) {
    for (const half of ['bfloat16', 'float16'] as const) {
      it(`${fam} ${half}: the fast path gives the logits of the rounded float32 weights, near the float32 fixture's`, () => {
        const r = ref(fam);
        const tokens = ids(r.get('p0.input_ids')!);
        const want = roundedModel(fam, half).forward(tokens);
        const model = withChunk(64, () => loadFromDirectory(halfCheckpoint(fam, half)));
        assert.equal(maxAbsDiff(model.forward(tokens), want), 0);
        const sharded = withChunk(64, () => loadFromDirectory(halfCheckpoint(fam, half, 2)));
        assert.equal(maxAbsDiff(sharded.forward(tokens), want), 0, 'sharded');
        // Rounding the weights to 16 bits moves the logits a little from the float32 model's.
        const drift = maxAbsDiff(model.forward(tokens), r.get('p0.logits')!);
        assert.ok(drift < (half === 'bfloat16' ? 0.05 : 0.01), `drift ${drift}`);
      });

      it(`${fam} ${half}: 'stored' keeps every weight at 2 bytes and gives the float32 path's results`, () => {
        const dir = halfCheckpoint(fam, half);
        const wide = loadFromDirectory(dir);
        const small = loadFromDirectory(dir, { weightDtype: 'stored' });
        const r = ref(fam);
        const tokens = ids(r.get('batch_right.input_ids')!);
        const mask = ids(r.get('batch_right.attention_mask')!);
        const want = wide.forward(tokens, { attentionMask: mask });
        assert.equal(maxAbsDiff(small.forward(tokens, { attentionMask: mask }), want), 0);
        // Large weights are widened block by block of output columns in matmuls (here every
        // weight, in blocks of 100 values); the products are the same up to the matmul kernel's
        // summation order for narrower outputs.
        clearSessionCache();
        const prev = _setWidenBlock(100);
        try {
          assert.ok(maxAbsDiff(small.forward(tokens, { attentionMask: mask }), want) <= 1e-5, 'blocks');
        } finally {
          _setWidenBlock(prev);
          clearSessionCache();
        }
        const a = small.runWithCache(tokens, { attentionMask: mask });
        const b = wide.runWithCache(tokens, { attentionMask: mask });
        assert.deepEqual(a.cache.keys(), b.cache.keys());
        for (const k of b.cache.keys()) assert.ok(maxAbsDiff(a.cache.get(k), b.cache.get(k)) <= 1e-6, k);
        const gen = { maxNewTokens: 5, stopAtEos: false };
        assert.deepEqual(small.generate(tokens[0]!, gen).newTokens, wide.generate(tokens[0]!, gen).newTokens);

        let bytes16 = 0;
        let bytes32 = 0;
        const split = /^blocks\.\d+\.attn\.[Wb]_[QKV]$/;
        for (const [name, t] of leaves(small)) {
          const s = t.storage;
          if (fam === 'gpt2' && split.test(name)) {
            assert.equal(s.dtype, 'float32', name);
            continue;
          }
          assert.equal(t.dtype, 'float32', name);
          assert.equal(s.dtype, 'float16', `${name} is held in 16 bits`);
          const rows = half === 'bfloat16' ? (s.transposedView ? t.shape[1]! : t.rank === 2 ? t.shape[0]! : 1) : 0;
          assert.equal(s.bytes, t.size * 2 + rows * 4, `${name}: 2 bytes a value`);
          bytes16 += s.bytes;
        }
        for (const [, t] of leaves(wide)) bytes32 += t.storage.bytes;
        assert.ok(bytes16 < (fam === 'gpt2' ? 0.65 : 0.55) * bytes32, `${bytes16} vs ${bytes32} bytes`);
        const wo = small.params.blocks[0]!.attn.W_O;
        assert.equal(wo.storage.transposedView, fam !== 'gpt2', 'W_O [in, out] is a view of o_proj [out, in]');
        if (small.cfg.tiedEmbeddings) {
          const { W_E } = small.params.embed;
          const { W_U } = small.params.unembed;
          assert.equal(W_U.storage.transposedView, true);
          assert.equal(W_U._stored!.data, W_E._stored!.data, 'the tied unembedding shares the embedding');
        }
      });
    }
  }

  it('float32 checkpoints: weights are transposed views when large enough, with the same logits', () => {
    const fam = 'llama';
    const r = ref(fam);
    const tokens = ids(r.get('p0.input_ids')!);
    const dir = freshDir();
    copyFileSync(`${FIXTURES_HF}${fam}/config.json`, join(dir, 'config.json'));
    copyFileSync(`${FIXTURES_HF}${fam}/model.safetensors`, join(dir, 'model.safetensors'));
    const copies = loadFromDirectory(dir);
    const views = withViewsFrom(0, () => loadFromDirectory(dir));
    assert.equal(copies.params.blocks[0]!.mlp!.W_in.storage.transposedView, false);
    assert.equal(views.params.blocks[0]!.mlp!.W_in.storage.transposedView, true);
    assert.equal(views.params.blocks[0]!.mlp!.W_in.storage.bytes, copies.params.blocks[0]!.mlp!.W_in.storage.bytes);
    assert.ok(maxAbsDiff(views.forward(tokens), copies.forward(tokens)) <= 1e-6);
    assert.ok(maxAbsDiff(views.forward(tokens), r.get('p0.logits')!) < 1e-4);
    // Eager use decodes a view once; its values are the transpose.
    const w = views.params.blocks[1]!.attn.W_O;
    assert.deepEqual(w.dataSync(), copies.params.blocks[1]!.attn.W_O.dataSync());
    assert.deepEqual(w.transpose().storage, { dtype: 'float32', bytes: w.size * 4, transposedView: false });
  });
});

describe('transposed views and 16-bit tensors in the engine', () => {
  it('a view used eagerly, inside jit, captured, transposed back and reshaped equals the copy', () => {
    withViewsFrom(0, () => {
      const w = tensor(
        Array.from({ length: 12 }, (_, i) => i - 5.5),
        [3, 4],
      );
      const v = w.transpose();
      assert.equal(v.storage.transposedView, true);
      const copy = withViewsFrom(1 << 30, () => w.transpose());
      assert.equal(copy.storage.transposedView, false);
      const x = tensor([1, 2, 3], [1, 3]);
      const f = jit((a: Tensor, b: Tensor) => a.matmul(b.transpose()).mul(2));
      assert.deepEqual(f(tensor([[1, 2, 3, 4]]), w.transpose().transpose()).dataSync(), f(tensor([[1, 2, 3, 4]]), w).dataSync());
      const g = jit((a: Tensor) => a.matmul(v.transpose()));
      assert.deepEqual(g(x).dataSync(), jit((a: Tensor) => a.matmul(copy.transpose()))(x).dataSync());
      assert.deepEqual(v.reshape([2, 6]).dataSync(), copy.reshape([2, 6]).dataSync());
      assert.deepEqual(v.add(1).dataSync(), copy.add(1).dataSync());
      assert.deepEqual(v.transpose().dataSync(), w.dataSync());
    });
  });
});

describe('16-bit tensors inside jit', () => {
  const half = (values: number[], shape: number[], scale: number[] | null): Tensor =>
    TensorClass._fromStored(shape, 'float32', {
      format: 'float16',
      data: float32ToFloat16(Float32Array.from(values)),
      shape,
      transposed: false,
      scale: scale ? Float32Array.from(scale) : null,
    });

  it('gathers rows and single values, and matmuls, with the values of the decoded tensor', () => {
    const m = half([1, -2, 3, 0.5, 4, -8], [3, 2], [0.25, 2, 0.5]);
    const v = half([1, 2, 3, 4], [4], [0.125]);
    const decodedM = tensor(m.dataSync() as Float32Array, [3, 2]);
    const decodedV = tensor(v.dataSync() as Float32Array, [4]);
    assert.deepEqual(Array.from(decodedM.dataSync() as Float32Array), [0.25, -0.5, 6, 1, 2, -4]);
    const idx = tensor([2, 0, -1], [3], 'int64');
    const f = jit((a: Tensor, b: Tensor, x: Tensor, y: Tensor) => ({
      rows: a.gather(idx, 0),
      vals: b.gather(idx, 0),
      out: x.matmul(a.transpose()), // multipliers on the output columns
      in: y.matmul(a), // multipliers on the input columns
    }));
    const x = tensor([[1, 2]]);
    const y = tensor([[1, 2, 3]]);
    const got = f(m, v, x, y);
    const want = f(decodedM, decodedV, x, y);
    for (const k of ['rows', 'vals', 'out', 'in'] as const) assert.deepEqual(got[k].dataSync(), want[k].dataSync(), k);
  });
});

describe('glassbox --weight-dtype', () => {
  const ROOT = fileURLToPath(new URL('..', import.meta.url));
  const glassbox = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });

  it("'stored' gives the same top tokens as 'float32'; other values are refused", () => {
    const dir = halfCheckpoint('llama', 'bfloat16');
    const wide = glassbox('run', dir, '--tokens', '1,5,9,200', '--weight-dtype', 'float32');
    const small = glassbox('--weight-dtype', 'stored', 'run', dir, '--tokens', '1,5,9,200');
    assert.equal(wide.status, 0, wide.stderr);
    assert.equal(small.status, 0, small.stderr);
    assert.equal(small.stdout, wide.stdout);
    assert.equal(small.stdout.trim().split('\n').length, 10);
    const bad = glassbox('run', dir, '--tokens', '1', '--weight-dtype', 'bf16');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--weight-dtype must be one of float32, stored, got 'bf16'/);
  });
});
