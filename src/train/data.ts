/**
 * Seeded, deterministic data sources for training. Each one's position is a small JSON state, so
 * a checkpoint records it and a resumed run sees exactly the batches an uninterrupted run would.
 */
import { PRNG, type Tensor } from '../tensor/index.js';

/** A stream of batches whose position can be saved and restored. */
export interface DataSource<B> {
  next(): B;
  /** JSON-serialisable position in the stream. */
  getState(): unknown;
  setState(state: unknown): void;
}

/**
 * Batches made by a function of a seeded generator (synthetic tasks). The state is the
 * generator's state, so the stream continues exactly after a restore.
 */
export function syntheticData<B>(make: (rng: PRNG) => B, options: { seed?: number } = {}): DataSource<B> {
  const rng = new PRNG(options.seed ?? 0);
  return {
    next: () => make(rng),
    getState: () => rng.getState(),
    setState: (s) => rng.setState(s as ReturnType<PRNG['getState']>),
  };
}

/** The same batch every step (full-batch training, e.g. grokking). */
export function fixedData<B>(batch: B): DataSource<B> {
  return { next: () => batch, getState: () => null, setState: () => undefined };
}

/** A language-model batch: `tokens` [batch, seqLen + 1] int64; inputs are [:, :-1], targets [:, 1:]. */
export interface TokenBatch {
  tokens: Tensor;
}
