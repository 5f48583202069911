/**
 * Language-model windows from a token file (tokens.ts): random windows in shuffled epochs for
 * training, consecutive windows for validation.
 */
import { PRNG, permutation, tensor, type Tensor } from '../tensor/index.js';
import { TokenFile } from './tokens.js';
import type { DataSource, TokenBatch } from './data.js';

export interface TokenWindowOptions {
  seqLen: number;
  batchSize: number;
  seed?: number;
}

/**
 * Random windows of seqLen + 1 tokens from a token file, in epochs. Each epoch picks a random
 * phase (so window boundaries move between epochs) and a random order of the non-overlapping
 * windows at that phase; every window is seen once per epoch. Reads go to the file at offsets
 * (the OS page cache does the rest), so corpora larger than memory work.
 */
export function tokenWindows(source: TokenFile | string, options: TokenWindowOptions): DataSource<TokenBatch> & { file: TokenFile } {
  const file = typeof source === 'string' ? TokenFile.open(source) : source;
  const { seqLen, batchSize } = options;
  const seed = options.seed ?? 0;
  if (!(Number.isInteger(seqLen) && seqLen > 0)) throw new Error(`tokenWindows: seqLen must be a positive integer, got ${seqLen}`);
  if (!(Number.isInteger(batchSize) && batchSize > 0))
    throw new Error(`tokenWindows: batchSize must be a positive integer, got ${batchSize}`);
  if (file.length < 2 * (seqLen + 1))
    throw new Error(`tokenWindows: the token file holds ${file.length} tokens, too few for windows of ${seqLen + 1}`);
  let epoch = 0;
  let index = 0;
  let plan = epochPlan(file.length - 1, seqLen, seed, epoch);
  return {
    file,
    next() {
      const rows = new BigInt64Array(batchSize * (seqLen + 1));
      for (let r = 0; r < batchSize; r++) {
        if (index >= plan.order.length) {
          epoch++;
          index = 0;
          plan = epochPlan(file.length - 1, seqLen, seed, epoch);
        }
        const start = plan.phase + plan.order[index++]! * seqLen;
        const ids = file.read(start, seqLen + 1);
        for (let c = 0; c <= seqLen; c++) rows[r * (seqLen + 1) + c] = BigInt(ids[c]!);
      }
      return { tokens: tensor(rows, [batchSize, seqLen + 1], 'int64') };
    },
    getState: () => ({ epoch, index }),
    setState(s) {
      const st = s as { epoch: number; index: number };
      if (!Number.isInteger(st?.epoch) || !Number.isInteger(st?.index)) throw new Error('tokenWindows: bad saved state');
      epoch = st.epoch;
      index = st.index;
      plan = epochPlan(file.length - 1, seqLen, seed, epoch);
    },
  };
}

/** Consecutive non-overlapping windows from the start of the file (for validation), at most `maxWindows`. */
export function sequentialWindows(file: TokenFile, seqLen: number, maxWindows = Infinity): Tensor[] {
  const n = Math.min(maxWindows, Math.floor((file.length - 1) / seqLen));
  const out: Tensor[] = [];
  for (let i = 0; i < n; i++) {
    const ids = file.read(i * seqLen, seqLen + 1);
    out.push(
      tensor(
        BigInt64Array.from(ids, (v) => BigInt(v)),
        [1, seqLen + 1],
        'int64',
      ),
    );
  }
  return out;
}

/**
 * One seeded epoch of windows over a stream whose windows may start at positions 0 .. `starts` - 1
 * (a token stream's length, less the overlap of consecutive windows): a random phase in [0,
 * `stride`) and a random order (`permutation`) of the floor((starts - phase) / stride) windows
 * starting at phase, phase + stride, ... Each epoch moves the window boundaries and reorders them;
 * every window is seen once per epoch. `tokenWindows` and the SAE trainer's `tokenContexts` both
 * cut their epochs with it.
 */
export function epochPlan(starts: number, stride: number, seed: number, epoch: number): { phase: number; order: Uint32Array } {
  const rng = epochRng(seed, epoch);
  const phase = rng.int(stride);
  return { phase, order: permutation(Math.floor((starts - phase) / stride), rng) };
}

/** How many windows `epochPlan(starts, stride, seed, epoch)` holds, without drawing the order. */
export function epochWindowCount(starts: number, stride: number, seed: number, epoch: number): number {
  return Math.floor((starts - epochRng(seed, epoch).int(stride)) / stride);
}

function epochRng(seed: number, epoch: number): PRNG {
  return new PRNG(((seed * 0x9e3779b1) ^ (epoch * 0x85ebca6b)) >>> 0);
}

/**
 * Rewrites a fraction of each batch's rows to end in a repeated segment: for a row of length L, a
 * length n is drawn from [L/8, L/2] and the row's last n tokens are replaced by the n tokens
 * before them, so the row reads [.. s, s] with s a segment of natural text. With `randomVocab`,
 * s is instead n tokens drawn uniformly from [0, randomVocab), so the row reads [text, r, r]:
 * the copy can then only be predicted by copying, never from the text's statistics. Natural text
 * rarely repeats within a context window, so a small model trained on it alone learns in-context
 * copying (induction heads) slowly; mixing in repeats is meant to teach it sooner (for the default
 * model it has not been enough; see `buildDefaultModel`'s options). The repeat distance n
 * varies from row to row because at a fixed distance a head can predict the copy by position
 * alone (attend n - 1 tokens back), which needs no induction. Rows, lengths and random tokens
 * come from a seeded generator whose state is part of the source's state, so resume stays exact.
 */
export function withRepeatedSegments(
  source: DataSource<TokenBatch>,
  options: { fraction: number; seed?: number; randomVocab?: number },
): DataSource<TokenBatch> {
  if (!(options.fraction >= 0 && options.fraction <= 1))
    throw new Error(`withRepeatedSegments: fraction must be in [0, 1], got ${options.fraction}`);
  if (options.randomVocab !== undefined && !(Number.isInteger(options.randomVocab) && options.randomVocab > 0))
    throw new Error(`withRepeatedSegments: randomVocab must be a positive integer, got ${options.randomVocab}`);
  return rewriteRows(source, options.seed ?? 0, (out, b, L, rng) => {
    const shortest = Math.max(1, Math.floor(L / 8));
    const longest = Math.max(shortest, Math.floor(L / 2));
    for (let r = 0; r < b; r++) {
      if (rng.uniform() >= options.fraction) continue;
      const n = shortest + rng.int(longest - shortest + 1);
      if (options.randomVocab) for (let c = L - 2 * n; c < L - n; c++) out[r * L + c] = BigInt(rng.int(options.randomVocab));
      for (let c = L - n; c < L; c++) out[r * L + c] = out[r * L + (c - n)]!;
    }
  });
}

/**
 * `source`'s batches [batch, L] with their rows rewritten in place by `rewrite(ids, batch, L, rng)`.
 * `rng` is a generator seeded with `seed` whose state is part of the source's state, so a resumed
 * run draws the same rewrites.
 */
export function rewriteRows(
  source: DataSource<TokenBatch>,
  seed: number,
  rewrite: (ids: BigInt64Array, batch: number, length: number, rng: PRNG) => void,
): DataSource<TokenBatch> {
  const rng = new PRNG(seed);
  return {
    next() {
      const { tokens } = source.next();
      const [b, L] = tokens.shape as [number, number];
      const out = new BigInt64Array(tokens.dataSync() as BigInt64Array);
      rewrite(out, b, L, rng);
      return { tokens: tensor(out, [b, L], 'int64') };
    },
    getState: () => ({ source: source.getState(), rng: rng.getState() }),
    setState(s) {
      const st = s as { source: unknown; rng: ReturnType<PRNG['getState']> };
      source.setState(st.source);
      rng.setState(st.rng);
    },
  };
}
