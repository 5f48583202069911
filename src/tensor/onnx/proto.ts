/**
 * A minimal protobuf writer for the subset of `onnx.proto` that glassbox emits.
 *
 * Why hand-written: the ONNX messages we build (ModelProto, GraphProto, NodeProto, AttributeProto,
 * TensorProto, ValueInfoProto) use only varints, length-delimited fields and packed repeats, and a
 * ~150-line writer avoids shipping a full protobuf runtime plus the onnx.proto schema. Field numbers
 * are from onnx/onnx.proto (IR version 8).
 */

class Writer {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(256);
  private pos = 0;

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = new Uint8Array(Math.max(256, n));
    this.pos = 0;
  }

  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.reserve(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /** Fast path for small non-negative ints (the common case: tags, lengths, dims). */
  uvarint(value: number): void {
    if (value < 0 || value > 0xfffffff) return this.varint(value);
    this.reserve(5);
    while (value >= 0x80) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    this.buf[this.pos++] = value;
  }

  bytes(data: Uint8Array): void {
    this.uvarint(data.length);
    if (data.length > 4096) {
      this.chunks.push(this.buf.subarray(0, this.pos));
      this.chunks.push(data);
      this.buf = new Uint8Array(256);
      this.pos = 0;
      return;
    }
    this.reserve(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  float32(value: number): void {
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).setFloat32(0, value, true);
    this.pos += 4;
  }

  finish(): Uint8Array {
    this.chunks.push(this.buf.subarray(0, this.pos));
    const total = this.chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

const enc = new TextEncoder();

/** Encodes one message; each field helper writes tag + payload. */
export class Message {
  private w = new Writer();

  int(field: number, value: number | bigint): this {
    this.w.uvarint((field << 3) | 0);
    this.w.varint(value);
    return this;
  }
  float(field: number, value: number): this {
    this.w.uvarint((field << 3) | 5);
    this.w.float32(value);
    return this;
  }
  string(field: number, value: string): this {
    return this.raw(field, enc.encode(value));
  }
  raw(field: number, data: Uint8Array): this {
    this.w.uvarint((field << 3) | 2);
    this.w.bytes(data);
    return this;
  }
  message(field: number, msg: Message): this {
    return this.raw(field, msg.finish());
  }
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.raw(field, inner.finish());
  }
  packedFloats(field: number, values: readonly number[]): this {
    const inner = new Writer();
    for (const v of values) inner.float32(v);
    return this.raw(field, inner.finish());
  }
  finish(): Uint8Array {
    return this.w.finish();
  }
}

/** ONNX TensorProto.DataType codes. */
export const OnnxDataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
} as const;

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'tensor'; value: TensorProtoInit };

export interface TensorProtoInit {
  name?: string;
  dataType: number;
  dims: readonly number[];
  /** Little-endian bytes of the elements. */
  raw: Uint8Array;
}

export function tensorProto(t: TensorProtoInit): Message {
  const m = new Message();
  if (t.dims.length) m.packedInts(1, t.dims);
  m.int(2, t.dataType);
  if (t.name) m.string(8, t.name);
  m.raw(9, t.raw);
  return m;
}

export function attributeProto(name: string, a: AttrValue): Message {
  const m = new Message().string(1, name);
  switch (a.kind) {
    case 'float':
      return m.float(2, a.value).int(20, 1);
    case 'int':
      return m.int(3, a.value).int(20, 2);
    case 'string':
      return m.string(4, a.value).int(20, 3);
    case 'tensor':
      return m.message(5, tensorProto(a.value)).int(20, 4);
    case 'floats':
      return m.packedFloats(7, a.value).int(20, 6);
    case 'ints':
      return m.packedInts(8, a.value).int(20, 7);
  }
}

export interface NodeProtoInit {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attrs?: Record<string, AttrValue>;
}

export function nodeProto(n: NodeProtoInit): Message {
  const m = new Message();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  if (n.name) m.string(3, n.name);
  m.string(4, n.opType);
  if (n.attrs) for (const [k, v] of Object.entries(n.attrs)) m.message(5, attributeProto(k, v));
  if (n.domain) m.string(7, n.domain);
  return m;
}

/** A value's declared type; a string dim is symbolic (`dim_param`). */
export function valueInfoProto(name: string, dataType: number, dims: readonly (number | string)[]): Message {
  const shape = new Message();
  for (const d of dims) {
    const dim = new Message();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new Message().int(1, dataType).message(2, shape);
  const type = new Message().message(1, tensorType);
  return new Message().string(1, name).message(2, type);
}

export interface ModelProtoInit {
  nodes: Message[];
  initializers: Message[];
  inputs: Message[];
  outputs: Message[];
  opset: number;
  graphName?: string;
}

export function modelProto(m: ModelProtoInit): Uint8Array {
  const graph = new Message();
  for (const n of m.nodes) graph.message(1, n);
  graph.string(2, m.graphName ?? 'glassbox');
  for (const t of m.initializers) graph.message(5, t);
  for (const i of m.inputs) graph.message(11, i);
  for (const o of m.outputs) graph.message(12, o);
  const opset = new Message().string(1, '').int(2, m.opset);
  return new Message()
    .int(1, 9) // ir_version 9 (ONNX 1.14), paired with opset 20
    .string(2, 'glassbox')
    .message(7, graph)
    .message(8, opset)
    .finish();
}
