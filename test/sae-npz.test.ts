/**
 * The .npy / .npz reader against files built byte by byte here from the formats' specifications
 * (NumPy's NEP 1 for .npy; PKWARE's APPNOTE for zip): stored and deflated members, numpy's
 * zip64 local headers, v1/v2 headers, float32/float16/float64/int64/bool/big-endian data,
 * Fortran order; Gemma Scope's params.npz as a JumpReLU SAE; errors that name the file.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, type Tensor } from '../src/index.js';
import { NpzError, crc32, listNpz, loadGemmaScopeSae, loadNpy, loadNpz } from '../src/sae/index.js';
import { f32, npyBytes, zipBytes, type Member } from './npz-bytes.js';

const root = mkdtempSync(join(tmpdir(), 'glassbox-sae-npz-'));
after(() => rmSync(root, { recursive: true, force: true }));
let fileCount = 0;
const freshPath = (name: string): string => join(root, `${fileCount++}-${name}`);

const vec = (t: Tensor): number[] => Array.from(t.dataSync() as ArrayLike<number>, Number);

// ---- .npy, byte by byte ----

const f32be = (values: number[]): Buffer => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatBE(v, i * 4));
  return b;
};
/** float16 bits of values exactly representable in half precision (sign, 5-bit exponent, 10-bit mantissa). */
const f16 = (values: number[]): Buffer => {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => {
    let bits = 0;
    if (v !== 0) {
      const sign = v < 0 ? 0x8000 : 0;
      const a = Math.abs(v);
      const e = Math.floor(Math.log2(a));
      const mant = Math.round((a / 2 ** e - 1) * 1024);
      bits = sign | ((e + 15) << 10) | mant;
    }
    b.writeUInt16LE(bits, i * 2);
  });
  return b;
};

function writeFile(name: string, bytes: Buffer): string {
  const p = freshPath(name);
  writeFileSync(p, bytes);
  return p;
}

const A = [1.5, -2, 0.25, 3, 0, -0.5]; // [2, 3]

describe('.npy', () => {
  it('reads v1 and v2 headers: float32, float16, float64, int64, bool, big-endian', () => {
    const a32 = loadNpy(writeFile('a.npy', npyBytes('<f4', [2, 3], f32(A))));
    assert.deepEqual(a32.shape, [2, 3]);
    assert.equal(a32.dtype, 'float32');
    assert.deepEqual(vec(a32), A);
    const a16 = loadNpy(writeFile('h.npy', npyBytes('<f2', [6], f16(A), { version: 2 })));
    assert.equal(a16.dtype, 'float32');
    assert.deepEqual(vec(a16), A);
    const d = Buffer.alloc(16);
    d.writeDoubleLE(Math.PI, 0);
    d.writeDoubleLE(-1e300, 8);
    const a64 = loadNpy(writeFile('d.npy', npyBytes('<f8', [2], d)));
    assert.equal(a64.dtype, 'float64');
    assert.deepEqual(vec(a64), [Math.PI, -1e300]);
    const i = Buffer.alloc(16);
    i.writeBigInt64LE(-3n, 0);
    i.writeBigInt64LE(1n << 40n, 8);
    const ai = loadNpy(writeFile('i.npy', npyBytes('<i8', [2, 1], i)));
    assert.equal(ai.dtype, 'int64');
    assert.deepEqual(vec(ai), [-3, 2 ** 40]);
    const ab = loadNpy(writeFile('b.npy', npyBytes('|b1', [3], Buffer.from([1, 0, 1]))));
    assert.equal(ab.dtype, 'bool');
    assert.deepEqual(vec(ab), [1, 0, 1]);
    assert.deepEqual(vec(loadNpy(writeFile('be.npy', npyBytes('>f4', [2, 3], f32be(A))))), A);
    const scalar = loadNpy(writeFile('s.npy', npyBytes('<f4', [], f32([7]))));
    assert.deepEqual(scalar.shape, []);
  });

  it('Fortran order: transposed into row-major by default, or refused', () => {
    // Column-major storage of [[1.5, -2, 0.25], [3, 0, -0.5]].
    const colMajor = [1.5, 3, -2, 0, 0.25, -0.5];
    const p = writeFile('f.npy', npyBytes('<f4', [2, 3], f32(colMajor), { fortran: true }));
    const t = loadNpy(p);
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(vec(t), A);
    assert.throws(
      () => loadNpy(p, { fortranOrder: 'error' }),
      (e: Error) => e instanceof NpzError && e.message.startsWith(p) && /Fortran \(column-major\) order/.test(e.message),
    );
  });

  it('errors name the file: bad magic, truncated data, unsupported dtype', () => {
    const bad = Buffer.from(npyBytes('<f4', [2], f32([1, 2])));
    bad[1] = 0x4f;
    const pBad = writeFile('bad.npy', bad);
    assert.throws(
      () => loadNpy(pBad),
      (e: Error) => e.message.startsWith(pBad) && /bad magic 93 4f 55 4d 50 59/.test(e.message),
    );
    const full = npyBytes('<f4', [2, 3], f32(A));
    const pCut = writeFile('cut.npy', full.subarray(0, full.length - 5));
    assert.throws(
      () => loadNpy(pCut),
      (e: Error) =>
        e.message.startsWith(pCut) && /truncated array data: shape \(2, 3\) of '<f4' needs 24 bytes, but only 19/.test(e.message),
    );
    const pHdr = writeFile('hdr.npy', full.subarray(0, 30));
    assert.throws(() => loadNpy(pHdr), /truncated \.npy data: the header claims/);
    const pType = writeFile('c.npy', npyBytes('<c8', [1], Buffer.alloc(8)));
    assert.throws(() => loadNpy(pType), /unsupported dtype '<c8'/);
  });
});

describe('.npz', () => {
  const members = (method: 0 | 8): Member[] => [
    { name: 'a.npy', data: npyBytes('<f4', [2, 3], f32(A)), method },
    { name: 'h.npy', data: npyBytes('<f2', [3, 2], f16(A)), method, zip64Local: true },
  ];

  it('reads stored and deflated members, with numpy-style zip64 local headers', () => {
    for (const method of [0, 8] as const) {
      const p = writeFile(`m${method}.npz`, zipBytes(members(method)));
      const entries = listNpz(p);
      assert.deepEqual(
        entries.map((e) => [e.name, e.method]),
        [
          ['a', method],
          ['h', method],
        ],
      );
      const arrays = loadNpz(p);
      assert.deepEqual(arrays.get('a')!.shape, [2, 3]);
      assert.deepEqual(vec(arrays.get('a')!), A);
      assert.deepEqual(arrays.get('h')!.shape, [3, 2]);
      assert.deepEqual(vec(arrays.get('h')!), A);
      assert.deepEqual([...loadNpz(p, ['h']).keys()], ['h']);
    }
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  it('errors name the archive and member: truncation, bad magic, CRC, missing names, Fortran order', () => {
    const good = zipBytes(members(8));
    const pCut = writeFile('cut.npz', good.subarray(0, good.length - 30));
    assert.throws(
      () => loadNpz(pCut),
      (e: Error) => e instanceof NpzError && e.message.startsWith(pCut) && /no end-of-central-directory record/.test(e.message),
    );
    const pTiny = writeFile('tiny.npz', good.subarray(0, 10));
    assert.throws(() => loadNpz(pTiny), /fewer than an empty archive's 22 \(truncated\?\)/);
    // Data cut out of the middle: the directory survives, the member's bytes do not.
    const stored = zipBytes(members(0));
    const cd = stored.length - 22 - (46 + 5) * 2;
    const holed = Buffer.concat([stored.subarray(0, 60), stored.subarray(cd)]);
    const pHole = writeFile('hole.npz', holed);
    assert.throws(() => loadNpz(pHole), /run past the end|bad local header|lies past the end/);

    const badMagic = npyBytes('<f4', [1], f32([1]));
    badMagic[0] = 0x94;
    const pMagic = writeFile('magic.npz', zipBytes([{ name: 'W_enc.npy', data: badMagic, method: 0 }]));
    assert.throws(
      () => loadNpz(pMagic),
      (e: Error) => e.message.startsWith(`${pMagic}: member 'W_enc.npy': not .npy data: bad magic`),
    );

    const corrupt = zipBytes([{ name: 'a.npy', data: npyBytes('<f4', [2, 3], f32(A)), method: 0 }]);
    corrupt[30 + 5 + 128 + 4] ^= 0xff; // a data byte of the stored member
    const pCrc = writeFile('crc.npz', corrupt);
    assert.throws(() => loadNpz(pCrc), /member 'a\.npy': CRC-32 mismatch/);
    assert.equal(loadNpz(pCrc, undefined, { verifyCrc: false }).get('a')!.shape.length, 2);

    const p = writeFile('ok.npz', good);
    assert.throws(
      () => loadNpz(p, ['threshold']),
      (e: Error) => e.message.startsWith(p) && /no array named 'threshold' \(the archive holds: a, h\)/.test(e.message),
    );

    const pF = writeFile('fortran.npz', zipBytes([{ name: 'W.npy', data: npyBytes('<f4', [2, 3], f32(A), { fortran: true }), method: 8 }]));
    assert.throws(
      () => loadNpz(pF, undefined, { fortranOrder: 'error' }),
      (e: Error) => e.message.startsWith(`${pF}: member 'W.npy'`) && /Fortran/.test(e.message),
    );
  });
});

describe("Gemma Scope's params.npz", () => {
  it('loads as a JumpReLU SAE whose hook point comes from the path', () => {
    const dIn = 3;
    const dSae = 4;
    const W_enc = [0.5, -1, 0.25, 2, 1, 0.5, -0.5, 0, -1, 1, 1.5, 0.25]; // [3, 4]
    const W_dec = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 0.5, 0.5]; // [4, 3]
    const b_enc = [0.1, -0.2, 0.3, 0];
    const b_dec = [0.01, 0.02, 0.03];
    const threshold = [0.2, 0.5, 0.1, 1];
    const dir = join(root, 'gemma-scope-2b-pt-res', 'layer_12', 'width_16k', 'average_l0_82');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'params.npz'),
      zipBytes([
        { name: 'W_dec.npy', data: npyBytes('<f4', [dSae, dIn], f32(W_dec)), method: 0, zip64Local: true },
        { name: 'W_enc.npy', data: npyBytes('<f4', [dIn, dSae], f32(W_enc)), method: 0, zip64Local: true },
        { name: 'b_dec.npy', data: npyBytes('<f4', [dIn], f32(b_dec)), method: 8 },
        { name: 'b_enc.npy', data: npyBytes('<f4', [dSae], f32(b_enc)), method: 8 },
        { name: 'threshold.npy', data: npyBytes('<f4', [dSae], f32(threshold)), method: 0 },
      ]),
    );
    const sae = loadGemmaScopeSae(dir);
    assert.equal(sae.cfg.architecture, 'jumprelu');
    assert.equal(sae.cfg.hook_name, 'blocks.12.hook_resid_post');
    assert.equal(sae.cfg.hook_layer, 12);
    assert.equal(sae.cfg.model_name, 'gemma-2-2b');
    assert.equal(sae.cfg.apply_b_dec_to_input, false);
    assert.equal(sae.cfg.d_in, dIn);
    assert.equal(sae.cfg.d_sae, dSae);
    // Gemma Scope's encoder: pre = x W_enc + b_enc; acts = (pre > threshold) * ReLU(pre).
    const x = [2, -1, 0.5];
    const pre = b_enc.map((b, j) => b + x.reduce((s, v, i) => s + v * W_enc[i * dSae + j]!, 0));
    const acts = pre.map((v, j) => (v > threshold[j]! ? Math.max(0, v) : 0));
    const got = vec(sae.encode(tensor([x])));
    got.forEach((v, j) => assert.ok(Math.abs(v - acts[j]!) < 1e-6, `act ${j}: ${v} vs ${acts[j]}`));
    assert.ok(acts.some((v) => v === 0) && acts.some((v) => v > 0));
    const out = vec(sae.forward(tensor([x])));
    const expected = b_dec.map((b, c) => b + acts.reduce((s, a, j) => s + a * W_dec[j * dIn + c]!, 0));
    out.forEach((v, c) => assert.ok(Math.abs(v - expected[c]!) < 1e-6));
    const overridden = loadGemmaScopeSae(join(dir, 'params.npz'), { config: { hook_name: 'blocks.12.hook_resid_pre' } });
    assert.equal(overridden.cfg.hook_name, 'blocks.12.hook_resid_pre');
  });

  it('names the file when an array is missing or has the wrong shape', () => {
    const p = writeFile(
      'params.npz',
      zipBytes([{ name: 'W_enc.npy', data: npyBytes('<f4', [3, 4], f32(new Array(12).fill(0))), method: 0 }]),
    );
    assert.throws(
      () => loadGemmaScopeSae(p),
      (e: Error) => e.message.startsWith(p) && /no array named 'W_dec'/.test(e.message),
    );
    const q = writeFile(
      'params.npz',
      zipBytes([
        { name: 'W_enc.npy', data: npyBytes('<f4', [3, 4], f32(new Array(12).fill(0))), method: 0 },
        { name: 'W_dec.npy', data: npyBytes('<f4', [4, 3], f32(new Array(12).fill(0))), method: 0 },
        { name: 'b_enc.npy', data: npyBytes('<f4', [4], f32([0, 0, 0, 0])), method: 0 },
        { name: 'b_dec.npy', data: npyBytes('<f4', [3], f32([0, 0, 0])), method: 0 },
        { name: 'threshold.npy', data: npyBytes('<f4', [5], f32([0, 0, 0, 0, 0])), method: 0 },
      ]),
    );
    assert.throws(
      () => loadGemmaScopeSae(q),
      (e: Error) => e.message.startsWith(q) && /'threshold' has shape \[5\] but d_in 3, d_sae 4 imply \[4\]/.test(e.message),
    );
  });
});
