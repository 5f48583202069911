/**
 * Shape buckets: runs on inputs of many shapes padded to a few, so that they share a bounded
 * number of compiled sessions. Every new input shape of a hooked run (and of an eager op on a
 * result) compiles an ONNX Runtime session, and each session keeps an arena as large as its
 * runs' peak until it is released; a server that runs prompts of every length from 1 to 256
 * would otherwise compile and keep hundreds of them.
 *
 * Rows are padded on the right with an attention mask (0 on the padding) and batches are filled
 * with rows that are all padding. For a causal model this changes nothing at the real positions:
 * a real query attends only to earlier positions, which are all real, and position ids come from
 * the mask, so learned positions, rotary tables (including the scalings that depend on the
 * longest position) and ALiBi distances are those of the unpadded run. The padded positions
 * compute values that are never read. Results equal the unpadded run's up to float rounding
 * (kernels may sum in another order at another size; within 1e-5 in the tests). One exception is
 * kept apart: RoPE scalings that depend on the longest position of the whole batch (dynamic,
 * LongRoPE) make a row's numbers depend on the other rows, so for such models only rows of equal
 * length share a run.
 */
import { Tensor } from '../tensor/index.js';
import { ropeOf, type ModelConfig, type RopeId } from '../model/config.js';
import type { ActivationCache, HookedTransformer, NameFilter } from '../model/hooked.js';
import { bucketAtLeast } from './memory.js';

/** How runs are padded: to `length(n)` positions and `batch(rows)` rows. */
export interface ShapeBuckets {
  /** The padded length of a run whose longest row has `n` tokens (at least `n`). */
  length(n: number): number;
  /** The padded batch of a run of `rows` rows, 1 <= rows <= `maxBatch` (at least `rows`). */
  batch(rows: number): number;
  /** Most rows in one run: more rows are split into several runs. */
  maxBatch: number;
}

export interface ShapeBucketOptions {
  /**
   * The longest prompt (the model's context or a server's token limit): a bucket of its own, and
   * no prompt up to it is padded past it. Longer runs (a prompt and its generated tokens) are
   * padded to the buckets above it.
   */
  maxLength: number;
  /** The shortest padded length (default 16: shorter prompts cost next to nothing either way). */
  minLength?: number;
  /** Most rows per run (default 8); batches are padded to 1, 2, 4, 8, ... rows. */
  maxBatch?: number;
}

/**
 * Buckets of lengths 16, 24, 32, 48, 64, 96, ... (powers of two and 1.5 times them, so at most a
 * third of a run is padding), with `maxLength` a bucket itself, and batches of powers of two up to
 * `maxBatch`. Up to 256 tokens that is 9 lengths, up to 4096 17.
 */
export function shapeBuckets(options: ShapeBucketOptions): ShapeBuckets {
  const { maxLength } = options;
  const minLength = options.minLength ?? 16;
  const maxBatch = options.maxBatch ?? 8;
  for (const [name, v] of [
    ['maxLength', maxLength],
    ['minLength', minLength],
    ['maxBatch', maxBatch],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`shapeBuckets: ${name} must be a positive integer, got ${v}`);
  return {
    maxBatch,
    length(n) {
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`shapeBuckets: a run needs at least one token, got ${n}`);
      const b = bucketAtLeast(Math.max(n, minLength));
      return n <= maxLength ? Math.min(maxLength, b) : b;
    },
    batch(rows) {
      if (!Number.isSafeInteger(rows) || rows < 1 || rows > maxBatch)
        throw new Error(`shapeBuckets: a run has 1 to ${maxBatch} rows, got ${rows}`);
      let b = 1;
      while (b < rows) b *= 2;
      return Math.min(b, maxBatch);
    },
  };
}

/**
 * Token rows padded to `length` positions and `batch` rows: `tokens` [batch, length] and the
 * `attentionMask` (1 on real tokens). Rows are padded on the right (`side` 'left' pads before
 * them, as generation needs); rows added to fill the batch are all padding. Padding uses token
 * `padId` (default 0), which the mask hides.
 */
export function padRows(
  rows: readonly (readonly number[])[],
  length: number,
  batch = rows.length,
  options: { side?: 'left' | 'right'; padId?: number } = {},
): { tokens: Tensor; attentionMask: Tensor } {
  if (batch < rows.length) throw new Error(`padRows: ${rows.length} rows do not fit a batch of ${batch}`);
  const side = options.side ?? 'right';
  const padId = BigInt(options.padId ?? 0);
  const ids = new BigInt64Array(batch * length).fill(padId);
  const mask = new BigInt64Array(batch * length);
  rows.forEach((row, r) => {
    if (row.length > length) throw new Error(`padRows: row ${r} has ${row.length} tokens, more than the padded length ${length}`);
    const start = r * length + (side === 'left' ? length - row.length : 0);
    row.forEach((t, c) => {
      ids[start + c] = BigInt(t);
      mask[start + c] = 1n;
    });
  });
  return {
    tokens: Tensor._concrete([batch, length], 'int64', ids),
    attentionMask: Tensor._concrete([batch, length], 'int64', mask),
  };
}

/** The axes of a cached activation that run over positions: query and key for attention scores and patterns, else axis 1. */
export function positionAxes(name: string): number[] {
  return /attn\.hook_(attn_scores|pattern)$/.test(name) ? [2, 3] : [1];
}

/**
 * A copy of the box `ranges` ([start, end) per axis; missing axes whole) of `t`, made in JS, so it
 * compiles nothing whatever the box is (an eager slice compiles one session per shape).
 */
export function boxSlice(t: Tensor, ranges: readonly (readonly [number, number])[]): Tensor {
  const shape = t.shape;
  const r = shape.map((d, i) => ranges[i] ?? ([0, d] as const));
  r.forEach(([a, b], i) => {
    if (!(Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a <= b && b <= shape[i]!))
      throw new Error(`boxSlice: range [${a}, ${b}) is outside axis ${i} of [${shape}]`);
  });
  const out = r.map(([a, b]) => b - a);
  const src = t._storage();
  const size = out.reduce((a, b) => a * b, 1);
  const dst = new (src.constructor as new (n: number) => typeof src)(size) as typeof src & { set(a: ArrayLike<unknown>, o: number): void };
  if (size > 0) {
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const last = out.length - 1;
    const inner = last >= 0 ? out[last]! : 1;
    const idx = new Array<number>(Math.max(0, last)).fill(0);
    for (let o = 0; o < size / inner; o++) {
      let off = last >= 0 ? r[last]![0] : 0;
      for (let i = 0; i < idx.length; i++) off += (r[i]![0] + idx[i]!) * strides[i]!;
      dst.set(src.subarray(off, off + inner) as ArrayLike<unknown>, o * inner);
      for (let i = idx.length - 1; i >= 0; i--) {
        if (++idx[i]! < out[i]!) break;
        idx[i] = 0;
      }
    }
  }
  return Tensor._concrete(out, t.dtype, dst);
}

/**
 * Row `row` of a cached activation of a padded run, its position axes (`positionAxes`) cut to
 * the row's first `n` positions and the batch axis dropped: e.g. [pos, d_model] or [head, q, k].
 */
export function rowSlice(name: string, act: Tensor, row: number, n: number): Tensor {
  const axes = positionAxes(name);
  const box = boxSlice(
    act,
    act.shape.map((d, i): [number, number] => (i === 0 ? [row, row + 1] : axes.includes(i) ? [0, n] : [0, d])),
  );
  return Tensor._concrete(box.shape.slice(1), box.dtype, box._storage());
}

/**
 * Whether a row's numbers depend on the other rows of its batch: RoPE scalings computed from the
 * batch's longest position (dynamic, LongRoPE; transformers' `max(position_ids) + 1`).
 */
export function batchCoupled(cfg: ModelConfig): boolean {
  if (cfg.positional !== 'rotary') return false;
  return [...new Set<RopeId>(cfg.layerRope ?? ['global'])].some((id) => {
    const type = ropeOf(cfg, id).type;
    return type === 'dynamic' || type === 'longrope';
  });
}

/**
 * Runs token rows of any lengths through `runWithCache` for `names`, padded to `buckets`: rows are
 * grouped by padded length (and by length too where the model's RoPE couples the rows of a
 * batch, see `batchCoupled`), up to `buckets.maxBatch` to a run. Returns `get(row, name)`: that
 * row's activation cut to its own length (see `rowSlice`), equal to the activation of the row
 * run alone.
 */
export function bucketedCache(
  model: HookedTransformer,
  rows: readonly (readonly number[])[],
  names: NameFilter,
  buckets: ShapeBuckets,
): { get(row: number, name: string): Tensor } {
  const coupled = batchCoupled(model.cfg);
  const groups = new Map<string, { len: number; idx: number[] }>();
  rows.forEach((r, i) => {
    const len = buckets.length(r.length);
    const key = coupled ? `${len}:${r.length}` : `${len}`;
    const g = groups.get(key) ?? { len, idx: [] };
    g.idx.push(i);
    groups.set(key, g);
  });
  const where: { cache: ActivationCache; j: number }[] = new Array(rows.length);
  for (const { len, idx } of groups.values())
    for (let start = 0; start < idx.length; start += buckets.maxBatch) {
      const part = idx.slice(start, start + buckets.maxBatch);
      const padded = padRows(
        part.map((i) => rows[i]!),
        len,
        buckets.batch(part.length),
      );
      const { cache } = model.runWithCache(padded.tokens, { names, attentionMask: padded.attentionMask });
      part.forEach((i, j) => (where[i] = { cache, j }));
    }
  return {
    get(row, name) {
      const w = where[row];
      if (!w) throw new Error(`bucketedCache: no row ${row}`);
      return rowSlice(name, w.cache.get(name), w.j, rows[row]!.length);
    },
  };
}
