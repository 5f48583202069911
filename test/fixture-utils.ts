/** Loads the reference fixtures in test/fixtures (tiny models and TransformerLens / HF outputs). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { fromStorage, type Tensor } from '../src/index.js';
import { HookedTransformer } from '../src/model/hooked.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/tl/', import.meta.url));
export const FIXTURES_HF = fileURLToPath(new URL('./fixtures/hf/', import.meta.url));

const DT = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', F64: 'float64', BOOL: 'bool' } as const;

/** Small fixture files only: reads the whole file (the library's reader streams). */
export function readAll(path: string): Map<string, Tensor> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: keyof typeof DT; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, Tensor>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const bytes = buf.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]);
    out.set(k, fromStorage(new Uint8Array(bytes), DT[v.dtype], v.shape));
  }
  return out;
}

export function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

export function loadFixtureModel(root: string, fam: string): HookedTransformer {
  const w = readAll(`${root}${fam}/model.safetensors`);
  return HookedTransformer.fromHf(readJson(`${root}${fam}/config.json`), {
    has: (n) => w.has(n),
    get: (n) => {
      const t = w.get(n);
      if (!t) throw new Error(`${fam}/model.safetensors: no tensor '${n}'`);
      return t;
    },
  });
}

/** Max |a - b| over elements where `rowMask` (over the leading [batch, pos]) is set; equal infinities count as 0. */
export function maxDiff(a: Tensor, b: Tensor, rowMask?: number[][]): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync() as Float32Array;
  const y = b.dataSync() as Float32Array;
  const [B, P] = a.shape as [number, number];
  const inner = x.length / (B * P);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const row = Math.floor(i / inner);
    if (rowMask && !rowMask[Math.floor(row / P)]![row % P]) continue;
    if (x[i] === y[i]) continue;
    const d = Math.abs(x[i]! - y[i]!);
    m = Math.max(m, Number.isNaN(d) ? Infinity : d);
  }
  return m;
}
