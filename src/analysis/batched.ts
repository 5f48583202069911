/**
 * Batched patching: many patched forward passes in one. The input is tiled k times along the
 * batch; one `runWithHooks` call then writes patch i into copy i through `where(mask, source, x)`,
 * with the mask built as a tensor ([k, 1, ...] over the activation's axes). Patches are run in
 * chunks of k to bound memory (k from `maxBatch` or the memory budget, see memory.ts); the last
 * chunk is padded with empty patches so that every chunk has the same shapes and reuses one
 * compiled session.
 */
import { Tensor, tensor, where } from '../tensor/index.js';
import type { HookFn, HookedTransformer, RunOptions } from '../model/hooked.js';
import { forwardBytesPerRow, forwardPlan, rowsPerPass, type MemoryOptions } from './memory.js';

/** One place a patch writes: a hook point, restricted to an index along each non-batch axis. */
export interface PatchSite {
  /** The hook point's name, e.g. 'blocks.1.attn.hook_z'. */
  hook: string;
  /**
   * One entry per axis after the batch axis: an index (negative counts from the end), or null for
   * the whole axis; axes past the end of the list are whole. E.g. for hook_z [batch, pos, head,
   * d_head], `[null, 3]` is head 3 at every position and `[5, 3]` is head 3 at position 5.
   */
  index?: readonly (number | null)[];
}

/** A patch: one site, or several changed together in the same forward pass. */
export type Patch = PatchSite | readonly PatchSite[];

/** What each patched hook point is replaced with. */
export interface PatchSource {
  /** The activation's shape without the batch axis. */
  shape: readonly number[];
  /** The values written at the patched sites: broadcastable to [batch, ...shape]. */
  values: Tensor;
}

export interface BatchOptions extends RunOptions, MemoryOptions {
  /**
   * Most rows per forward pass (patches x batch). Default: as many as the memory budget holds
   * (`memoryBudgetBytes`, default `memoryConfig.memoryBudgetBytes`; see memory.ts), at most 256.
   */
  maxBatch?: number;
}

/** Reads a chunk's logits [k * batch, pos, d_vocab] into one value per patch (k values). */
export type ChunkEvaluator = (logits: Tensor, k: number) => number[];

function sites(patch: Patch | null): readonly PatchSite[] {
  if (patch === null) return [];
  return Array.isArray(patch) ? (patch as readonly PatchSite[]) : [patch as PatchSite];
}

/**
 * The default number of rows per forward pass for a model and sequence length: as many as the
 * memory budget holds (`memoryConfig.memoryBudgetBytes` unless given), at most 256.
 */
export function defaultMaxBatch(model: HookedTransformer, seqLen: number, options: Pick<MemoryOptions, 'memoryBudgetBytes'> = {}): number {
  return rowsPerPass(forwardBytesPerRow(model.cfg, seqLen), options);
}

/** Builds, for a chunk of k patches, the hooks that apply patch i to copy i of the batch. */
function chunkHooks(
  chunk: readonly (Patch | null)[],
  batch: number,
  sources: Readonly<Record<string, PatchSource>>,
  maskDims: ReadonlyMap<string, number[]>,
): [string, HookFn][] {
  const k = chunk.length;
  const hooks: [string, HookFn][] = [];
  for (const [hook, dims] of maskDims) {
    const src = sources[hook]!;
    const inner = dims.reduce((a, d) => a * d, 1);
    const mask = new Uint8Array(k * inner);
    chunk.forEach((patch, i) => {
      for (const site of sites(patch)) {
        if (site.hook !== hook) continue;
        const idx = dims.map((d, ax) => {
          const v = site.index?.[ax];
          if (v === null || v === undefined) return null;
          const n = src.shape[ax]!;
          return v < 0 ? v + n : v;
        });
        // Every coordinate of the mask's (collapsed) grid that the site selects.
        for (let flat = 0; flat < inner; flat++) {
          let rem = flat;
          let ok = true;
          for (let ax = dims.length - 1; ax >= 0; ax--) {
            const c = rem % dims[ax]!;
            rem = Math.floor(rem / dims[ax]!);
            if (idx[ax] !== null && idx[ax] !== c) ok = false;
          }
          if (ok) mask[i * inner + flat] = 1;
        }
      }
    });
    const maskT = tensor(mask, [k, 1, ...dims], 'bool');
    // Source as [1, batch or 1, ...shape]: broadcast over the k copies.
    const v = src.values.cast('float32');
    const values = v.rank === 0 ? v : v.rank === src.shape.length + 1 ? v.unsqueeze(0) : v.reshape([1, 1, ...v.shape]);
    if (values.rank > 1 && values.shape[1] !== 1 && values.shape[1] !== batch)
      throw new Error(`patch: the values for '${hook}' have ${values.shape[1]} rows, the input ${batch}`);
    hooks.push([
      hook,
      (x) => {
        if (x.rank !== src.shape.length + 1 || src.shape.some((d, i) => d !== x.shape[i + 1]))
          throw new Error(`patch: '${hook}' is [${x.shape}] in this run, but its patch was built for [batch, ${src.shape}]`);
        const xs = x.reshape([k, batch, ...x.shape.slice(1)]);
        return where(maskT, values, xs).reshape(x.shape);
      },
    ]);
  }
  return hooks;
}

/** Checks every site against the sources and returns, per hook, the mask grid's dims. */
function maskGrid(patches: readonly (Patch | null)[], sources: Readonly<Record<string, PatchSource>>): Map<string, number[]> {
  const dims = new Map<string, number[]>();
  for (const patch of patches)
    for (const site of sites(patch)) {
      const src = sources[site.hook];
      if (!src) throw new Error(`patch: no source values for hook '${site.hook}'`);
      const index = site.index ?? [];
      if (index.length > src.shape.length)
        throw new Error(
          `patch: ${index.length} indices for '${site.hook}', whose activation has ${src.shape.length} axes after the batch ([${src.shape}])`,
        );
      const d = dims.get(site.hook) ?? src.shape.map(() => 1);
      index.forEach((v, ax) => {
        if (v === null || v === undefined) return;
        const n = src.shape[ax]!;
        if (!Number.isInteger(v) || v < -n || v >= n)
          throw new Error(`patch: index ${v} is out of range for axis ${ax + 1} of '${site.hook}' (size ${n})`);
        d[ax] = n;
      });
      dims.set(site.hook, d);
    }
  return dims;
}

/** Repeats a [batch, pos] tensor's rows k times: [k * batch, pos]. */
function tileRows(t: Tensor, k: number): Tensor {
  const data = t.dataSync();
  const out = new (data.constructor as new (n: number) => typeof data)(data.length * k);
  for (let i = 0; i < k; i++) out.set(data as never, i * data.length);
  return tensor(out, [k * t.shape[0]!, ...t.shape.slice(1)], t.dtype);
}

function maskInput(mask: RunOptions['attentionMask'], tokens: Tensor): Tensor | undefined {
  if (!mask) return undefined;
  if (mask instanceof Tensor) return mask;
  const m = tensor(mask.flat(), [mask.length, mask[0]!.length], 'int64');
  if (m.shape[0] !== tokens.shape[0] || m.shape[1] !== tokens.shape[1])
    throw new Error(`attentionMask has shape [${m.shape}], tokens have [${tokens.shape}]`);
  return m;
}

/**
 * Runs the model once per patch on `tokens` [batch, pos], with the patch's sites replaced by the
 * sources' values, and returns `evaluate`'s value for each patch. Many patches share one forward
 * pass (see the module comment); `null` patches run the model unchanged.
 */
export function runPatches(
  model: HookedTransformer,
  tokens: Tensor,
  patches: readonly (Patch | null)[],
  sources: Readonly<Record<string, PatchSource>>,
  evaluate: ChunkEvaluator,
  options: BatchOptions = {},
): number[] {
  const out: number[] = [];
  for (const pass of patchPasses(model, tokens, patches, sources, evaluate, options)) out.push(...pass.values);
  return out;
}

/** One forward pass of `patchPasses`. */
export interface PatchPass {
  /** The values of this pass's patches (the next ones in order). */
  values: number[];
  /** Patches done so far, this pass's included. */
  done: number;
}

/**
 * `runPatches` one forward pass at a time: a generator that runs a pass each time it is resumed
 * and yields its values, so a caller can report progress, yield to other work or stop between
 * passes. Every pass has the same shapes, hooks on every hook point the patches name (a site
 * patched in no row of a pass is kept by an all-false mask), so one compiled session serves the
 * whole sweep, whatever layers and positions it covers: layers and positions are inputs (the
 * masks), not part of the graph. `passSize` sets the patches per pass exactly (default: the
 * memory plan's), so sweeps of other lengths on the same shapes share the session too.
 */
export function* patchPasses(
  model: HookedTransformer,
  tokens: Tensor,
  patches: readonly (Patch | null)[],
  sources: Readonly<Record<string, PatchSource>>,
  evaluate: ChunkEvaluator,
  options: BatchOptions & { passSize?: number } = {},
): Generator<PatchPass, void, void> {
  if (patches.length === 0) return;
  const [b, s] = tokens.shape as [number, number];
  const grid = maskGrid(patches, sources);
  if (options.passSize !== undefined && !(Number.isSafeInteger(options.passSize) && options.passSize >= 1))
    throw new Error(`passSize must be a positive integer, got ${options.passSize}`);
  const k = options.passSize ?? forwardPlan(model.cfg, b, s, patches.length, options).size;
  const tiled = tileRows(tokens, k);
  const mask = maskInput(options.attentionMask, tokens);
  const tiledMask = mask ? tileRows(mask.cast('int64'), k) : undefined;
  for (let start = 0; start < patches.length; start += k) {
    const chunk: (Patch | null)[] = patches.slice(start, start + k);
    const real = chunk.length;
    while (chunk.length < k) chunk.push(null);
    const hooks = chunkHooks(chunk, b, sources, grid);
    const logits = hooks.length
      ? model.runWithHooks(tiled, { hooks, ...(tiledMask ? { attentionMask: tiledMask } : {}) })
      : model.forward(tiled, tiledMask ? { attentionMask: tiledMask } : {});
    const vals = evaluate(logits, k);
    if (vals.length !== k) throw new Error(`runPatches: the evaluator returned ${vals.length} values for ${k} patches`);
    yield { values: vals.slice(0, real), done: start + real };
  }
}

/** Hooks for `runWithHooks` that apply one patch to a run on a batch of `batch` rows. */
export function patchHooks(batch: number, patch: Patch, sources: Readonly<Record<string, PatchSource>>): [string, HookFn][] {
  return chunkHooks([patch], batch, sources, maskGrid([patch], sources));
}

/** The logits [batch, pos, d_vocab] of one patched run. */
export function patchedLogits(
  model: HookedTransformer,
  tokens: Tensor,
  patch: Patch,
  sources: Readonly<Record<string, PatchSource>>,
  options: RunOptions = {},
): Tensor {
  const hooks = patchHooks(tokens.shape[0]!, patch, sources);
  return hooks.length ? model.runWithHooks(tokens, { ...options, hooks }) : model.forward(tokens, options);
}

/** An evaluator applying a metric to each patch's slice of the logits. */
export function sliceEvaluator(batch: number, metric: (logits: Tensor) => number): ChunkEvaluator {
  return (logits, k) => Array.from({ length: k }, (_, i) => metric(logits.slice([{ start: i * batch, end: (i + 1) * batch }])));
}
