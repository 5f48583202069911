/**
 * Memory planning for the sweeps: how many rows (stacked copies of a prompt batch) one pass may
 * run. A sweep runs its items (patches, interpolation points) as stacked copies of the batch, and
 * the memory of a pass grows with its rows, so each sweep estimates the bytes a row costs and fits
 * its chunks to a budget:
 *
 * - a forward pass (activation patching, ablation, path patching) holds the logits (ONNX
 *   Runtime's buffer, the copy read back and the pre-bias product), one layer's activations and
 *   the attention pattern: `forwardBytesPerRow`;
 * - a forward+backward pass (integrated gradients, EAP and EAP-IG) keeps every layer's
 *   activations for the backward pass and holds the logits' gradient next to the logits:
 *   `backwardBytesPerRow`, two to three times the forward figure.
 *
 * Both are linear fits, rounded up, to the peak RSS growth measured for passes of 64 rows (and
 * 128 on the default model) on the default model and on three random models stressing the
 * vocabulary (d_vocab 8192), the MLP (d_mlp 2048) and the attention pattern (128 positions): the
 * forward+backward estimate lies 10 to 25% above every measurement, the forward one 10 to 50%.
 * They include ONNX Runtime's arena, which keeps the peak of a session's runs (see
 * `ortConfig.maxArenaBytes` for how many such arenas are kept). The budget is
 * `memoryBudgetBytes` on each sweep's options, or the global `memoryConfig.memoryBudgetBytes`;
 * `maxBatch` sets the rows directly instead. Single forward+backward passes over the user's own
 * batch (`attributionPatching`, `eapNodeGradients`, `model.gradientsAt`) have nothing to split:
 * the metric may couple the rows.
 */
import type { ModelConfig } from '../model/config.js';

function envBudget(): number | null {
  const v = typeof process !== 'undefined' ? process.env.GLASSBOX_MEMORY_BUDGET : undefined;
  if (!v) return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?)?\s*$/i.exec(v);
  if (!m) throw new Error(`GLASSBOX_MEMORY_BUDGET must be bytes, or a number with K, M or G (binary units), got '${v}'`);
  const unit = (m[2] ?? '').slice(0, 1).toLowerCase();
  const scale = unit === 'k' ? 2 ** 10 : unit === 'm' ? 2 ** 20 : unit === 'g' ? 2 ** 30 : 1;
  return Math.floor(Number(m[1]) * scale);
}

/** Global defaults of the sweeps' memory planning. */
export const memoryConfig = {
  /**
   * Estimated bytes one pass of a sweep may use (see the module comment); a sweep's own
   * `memoryBudgetBytes` option overrides it. Default 256 MiB, or the environment variable
   * GLASSBOX_MEMORY_BUDGET (bytes, or e.g. '2G', '768M') when set. Larger passes are not faster
   * (integrated gradients on the default model ran 256 points in about the same time in passes
   * of 16 to 256 rows), but compile more slowly, and their ORT arena stays behind.
   */
  memoryBudgetBytes: envBudget() ?? 256 * 2 ** 20,
  /** Most rows per pass whatever the budget (larger graphs compile slowly for little gain). */
  maxRows: 256,
};

/** The options every sweep takes to size its passes. */
export interface MemoryOptions {
  /** Estimated bytes one pass may use; default `memoryConfig.memoryBudgetBytes`. */
  memoryBudgetBytes?: number;
  /** Most rows (items x batch) per pass; given, it replaces the budget. */
  maxBatch?: number;
}

/** Attention width: d_model, or the heads' concatenated size where that is larger. */
function width(cfg: ModelConfig): number {
  return Math.max(cfg.dModel, cfg.nHeads * cfg.dHead);
}

function mlpWidth(cfg: ModelConfig): number {
  return cfg.attnOnly ? 0 : cfg.dMlp;
}

/** Estimated bytes per row (one sequence of `seqLen` tokens) of a forward pass whose logits are read back. */
export function forwardBytesPerRow(cfg: ModelConfig, seqLen: number): number {
  const perPos = 3.5 * cfg.dVocab + (cfg.gatedMlp ? 4 : 3) * mlpWidth(cfg) + 4 * cfg.nHeads * seqLen + 8 * width(cfg);
  return Math.ceil(4 * seqLen * perPos);
}

/**
 * Estimated bytes per row of a forward+backward pass: every layer's activations are kept for the
 * backward pass. `extraPerPosition` adds floats per position for what the pass computes from the
 * gradients (EAP's per-node input gradients).
 */
export function backwardBytesPerRow(cfg: ModelConfig, seqLen: number, extraPerPosition = 0): number {
  const perLayer = 12 * width(cfg) + (cfg.gatedMlp ? 4 : 3) * mlpWidth(cfg) + 4 * cfg.nHeads * seqLen;
  const perPos = 3 * cfg.dVocab + cfg.nLayers * perLayer + extraPerPosition;
  return Math.ceil(4 * seqLen * perPos);
}

/** Just the memory settings of `options` that are given (maxBatch, memoryBudgetBytes), to pass on to a sweep. */
export function memoryOptionsOf(options: MemoryOptions): MemoryOptions {
  return {
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
    ...(options.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
  };
}

/** The budget of `options` (or the global one), checked. */
export function memoryBudget(options: MemoryOptions = {}): number {
  const budget = options.memoryBudgetBytes ?? memoryConfig.memoryBudgetBytes;
  if (!(budget > 0) || !Number.isFinite(budget)) throw new Error(`memoryBudgetBytes must be a positive number, got ${budget}`);
  return budget;
}

/** Rows per pass: `maxBatch` when given, else as many rows of `bytesPerRow` as the budget holds (at least 1, at most `memoryConfig.maxRows`). */
export function rowsPerPass(bytesPerRow: number, options: MemoryOptions = {}): number {
  if (options.maxBatch !== undefined) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1)
      throw new Error(`maxBatch must be a positive integer, got ${options.maxBatch}`);
    return options.maxBatch;
  }
  return Math.max(1, Math.min(memoryConfig.maxRows, Math.floor(memoryBudget(options) / bytesPerRow)));
}

/** How a sweep's items are split into passes. */
export interface ChunkPlan {
  /** Items per pass: every pass has this many (the last one padded), so all share one compiled session. */
  size: number;
  /** Passes. */
  count: number;
}

/**
 * The smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers of two and 1.5 times them) that is at
 * least `k`: chunk sizes are rounded up to one where that fits, and shape buckets (buckets.ts)
 * pad lengths to one.
 */
export function bucketAtLeast(k: number): number {
  let p = 1;
  while (p < k) {
    if (p >= 2 && (p * 3) / 2 >= k) return (p * 3) / 2;
    p *= 2;
  }
  return p;
}

/**
 * Splits `items` items, each `rowsPerItem` rows, into passes of at most `maxRows` rows (one item
 * at least, whatever `maxRows`): one pass of all the items when they fit, else as few passes as
 * fit, of equal size, the size rounded up to a bucket (1, 2, 3, 4, 6, 8, 12, 16, 24, ...) where
 * the bucket still fits. The last pass is padded to the same size, so a sweep compiles one
 * session; the buckets let sweeps of different lengths share it, for padding under a third of
 * each pass.
 */
export function planChunks(items: number, rowsPerItem: number, maxRows: number): ChunkPlan {
  if (items <= 0) return { size: 0, count: 0 };
  const fit = Math.max(1, Math.floor(maxRows / rowsPerItem));
  if (items <= fit) return { size: items, count: 1 };
  const balanced = Math.ceil(items / Math.ceil(items / fit));
  const bucket = bucketAtLeast(balanced);
  const size = bucket <= fit ? bucket : balanced;
  return { size, count: Math.ceil(items / size) };
}

/** The passes of a forward sweep over `items` items, each a copy of a [batch, seqLen] prompt. */
export function forwardPlan(cfg: ModelConfig, batch: number, seqLen: number, items: number, options: MemoryOptions = {}): ChunkPlan {
  return planChunks(items, batch, rowsPerPass(forwardBytesPerRow(cfg, seqLen), options));
}

/** The passes of a forward+backward sweep over `items` items (see `backwardBytesPerRow` for `extraPerPosition`). */
export function backwardPlan(
  cfg: ModelConfig,
  batch: number,
  seqLen: number,
  items: number,
  options: MemoryOptions & { extraPerPosition?: number } = {},
): ChunkPlan {
  return planChunks(items, batch, rowsPerPass(backwardBytesPerRow(cfg, seqLen, options.extraPerPosition ?? 0), options));
}
