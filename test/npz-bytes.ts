/**
 * .npy and .npz files built byte by byte from the formats' specifications (NumPy's NEP 1 for
 * .npy; PKWARE's APPNOTE for zip), so the readers are tested against bytes no glassbox code
 * wrote: the .npz reader (sae-npz.test.ts), Gemma Scope SAEs (sae-pretrained.test.ts) and
 * transcoders (clt.test.ts).
 */
import { crc32 as zlibCrc32, deflateRawSync } from 'node:zlib';

/** An .npy file: magic, version, little-endian header length, the header dict padded to 64 bytes with '\n', data. */
export function npyBytes(descr: string, shape: number[], data: Buffer, options: { version?: 1 | 2; fortran?: boolean } = {}): Buffer {
  const version = options.version ?? 1;
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': ${options.fortran ? 'True' : 'False'}, 'shape': ${shapeStr}, }`;
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = Buffer.from(dict + ' '.repeat(total - pre - dict.length - 1) + '\n', 'latin1');
  const preamble = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(preamble);
  if (version === 1) preamble.writeUInt16LE(header.length, 8);
  else preamble.writeUInt32LE(header.length, 8);
  return Buffer.concat([preamble, header, data]);
}

/** float32 values, little-endian. */
export const f32 = (values: number[]): Buffer => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
};

/** A zip member. */
export interface Member {
  name: string;
  data: Buffer;
  /** 0 stored, 8 deflated */
  method: 0 | 8;
  /** numpy's np.savez writes local headers with zip64 sizes (force_zip64=True) */
  zip64Local?: boolean;
}

/** A zip archive of `members` (PKWARE's APPNOTE): local headers, data, central directory, end record. */
export function zipBytes(members: Member[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const stored = m.method === 8 ? deflateRawSync(m.data) : m.data;
    const crc = zlibCrc32(m.data) >>> 0;
    const name = Buffer.from(m.name, 'utf8');
    const extra = m.zip64Local ? Buffer.alloc(20) : Buffer.alloc(0);
    if (m.zip64Local) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(m.data.length), 4);
      extra.writeBigUInt64LE(BigInt(stored.length), 12);
    }
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(m.zip64Local ? 45 : 20, 4);
    lh.writeUInt16LE(0, 6);
    lh.writeUInt16LE(m.method, 8);
    lh.writeUInt16LE(0, 10);
    lh.writeUInt16LE(0x21, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(m.zip64Local ? 0xffffffff : stored.length, 18);
    lh.writeUInt32LE(m.zip64Local ? 0xffffffff : m.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(extra.length, 28);
    const local = Buffer.concat([lh, name, extra, stored]);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0, 8);
    ch.writeUInt16LE(m.method, 10);
    ch.writeUInt16LE(0, 12);
    ch.writeUInt16LE(0x21, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(stored.length, 20);
    ch.writeUInt32LE(m.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt16LE(0, 30);
    ch.writeUInt16LE(0, 32);
    ch.writeUInt32LE(offset, 42);
    centrals.push(Buffer.concat([ch, name]));
    locals.push(local);
    offset += local.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(members.length, 8);
  eocd.writeUInt16LE(members.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

/** A float32 .npy (version 1, C order). */
export function npyF32(shape: number[], values: number[]): Buffer {
  return npyBytes('<f4', shape, f32(values));
}

/** An .npz as np.savez writes one: each array a stored (uncompressed) member `${key}.npy`. */
export function npzStored(arrays: Record<string, Buffer>): Buffer {
  return zipBytes(Object.entries(arrays).map(([key, data]) => ({ name: `${key}.npy`, data, method: 0 })));
}
