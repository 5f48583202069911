/**
 * The activation store (SAELens's ActivationsStore): runs a model over contexts of a tokenized
 * corpus, keeps the activations at a hook point in a shuffle buffer, and streams them as
 * [batch, d_in] float32 batches for SAE training. Transcoders get paired batches: the input hook's
 * activation `x` and the output hook's `target`.
 *
 * The buffer is SAELens's mixing buffer: it is filled to `nBatchesInBuffer *
 * storeBatchSizePrompts * contextSize` activations, shuffled, the first half is served, the
 * second half stays and is mixed with the next fill. Everything is seeded, and the store is a
 * `DataSource`: its state names the contexts still to run and the activations still in the buffer
 * (by where they came from, not their values), so `setState` rebuilds the buffer by running the
 * model again on the contexts involved, and a resumed run sees exactly the batches of an
 * uninterrupted one.
 *
 * A step of the store, numbered as `next` runs it:
 * 1. serve rows from the first half of the buffer until it is spent;
 * 2. refill: move the rows still pending (the kept half) to the front, run the model on the next
 *    forward-pass groups of contexts (special-token positions left out) until the buffer is full;
 * 3. shuffle the whole buffer with a permutation seeded by the store's seed and the refill count,
 *    and serve its first half next.
 *
 * Activations can also be written to disk once and trained from without the model:
 * `activation-cache.ts`.
 */
import { existsSync } from 'node:fs';
import { PRNG, Tensor, permutation, tensor } from '../../tensor/index.js';
import { suggest, type HookedTransformer } from '../../model/hooked.js';
import type { DataSource } from '../../train/data.js';
import { TokenFile } from '../../train/tokens.js';
import { defaultCorpusContexts, specialTokenIds, textFileContexts, tokenContexts, type ContextSource } from '../contexts.js';

/** One training batch: the SAE's input [batch, d_in] and, for transcoders, the output to reconstruct [batch, d_out]. */
export interface ActivationBatch {
  x: Tensor;
  target?: Tensor;
}

/** What an SAE trained on a source records about it (SAELens's cfg metadata fields). */
export interface ActivationMetadata {
  model_name: string | null;
  hook_name: string | null;
  hook_name_out?: string | null;
  context_size: number | null;
  prepend_bos: boolean;
  dataset_path: string | null;
  exclude_special_tokens?: boolean | number[];
}

/** A stream of activation batches with its widths and provenance. */
export interface ActivationSource extends DataSource<ActivationBatch> {
  /** Rows per batch (SAELens's train_batch_size_tokens). */
  readonly batchSize: number;
  readonly dIn: number;
  /** Width of `target` (transcoders), else undefined. */
  readonly dOut: number | undefined;
  readonly metadata: ActivationMetadata;
}

/** Options of `ActivationStore`. */
export interface ActivationStoreOptions {
  /** The hook point whose activations the SAE reads, e.g. 'blocks.1.hook_resid_post'. */
  hookName: string;
  /** Transcoders: the hook point the decoder writes, e.g. 'blocks.1.hook_mlp_out' (batches get `target`). */
  hookNameOut?: string | null;
  /** Where the tokens come from. */
  contexts: ContextSource;
  /** Activations per batch (SAELens's train_batch_size_tokens, default 4096). */
  trainBatchSizeTokens?: number;
  /** Contexts per model forward pass (SAELens's store_batch_size_prompts, default 32). */
  storeBatchSizePrompts?: number;
  /** Buffer size in forward passes (SAELens's n_batches_in_buffer, default 20). */
  nBatchesInBuffer?: number;
  /**
   * Leave out positions holding special tokens (SAELens's exclude_special_tokens): true for the
   * model's BOS, EOS and padding ids, or a list of ids. Default false.
   */
  excludeSpecialTokens?: boolean | readonly number[];
  /** Seed of the buffer shuffles (default 0). */
  seed?: number;
  /** Recorded as model_name (default: the name the model was loaded as, `model.name`). */
  modelName?: string | null;
}

/** The JSON position of an ActivationStore (see the file comment). */
interface StoreState {
  format: 'glassbox-activation-store';
  version: 1;
  /** The next forward-pass group of contexts to run. */
  nextGroup: number;
  /** Buffer shuffles done so far. */
  refills: number;
  /** Rows still to serve before the next refill (the rest of `pending` is the kept half). */
  serve: number;
  /** Where each pending row came from (context index * contextSize + position), base64 float64, in buffer order. */
  pending: string;
  /** The settings the ids depend on; setState refuses a state from other settings. */
  layout: { contextSize: number; storeBatchSizePrompts: number; capacity: number; seed: number; hooks: string[] };
}

const encodeIds = (ids: Float64Array): string => Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength).toString('base64');
function decodeIds(s: string): Float64Array {
  const b = Buffer.from(s, 'base64');
  if (b.byteLength % 8 !== 0) throw new Error('activation store state: pending ids are not float64s');
  const out = new Float64Array(b.byteLength / 8);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** @internal A seed for refill r (or any other numbered shuffle), mixed from a store's seed. */
export function refillSeed(seed: number, r: number): number {
  return (Math.imul(seed ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(r + 1, 0x85ebca6b)) >>> 0;
}

/**
 * SAELens's ActivationsStore over a HookedTransformer: see the file comment. Batches are
 * `{ x: [trainBatchSizeTokens, d_in] }` (plus `target` with hookNameOut).
 */
export class ActivationStore implements ActivationSource {
  readonly batchSize: number;
  readonly storeBatchSizePrompts: number;
  readonly nBatchesInBuffer: number;
  /** Rows the buffer is filled to before each shuffle. */
  readonly capacity: number;
  readonly contexts: ContextSource;
  readonly hookName: string;
  readonly hookNameOut: string | null;
  readonly seed: number;
  readonly metadata: ActivationMetadata;
  /** Forward passes run so far (for tests and logs). */
  forwardPasses = 0;
  readonly #model: HookedTransformer;
  readonly #special: Set<number>;
  #dIn = 0;
  #dOut = 0;
  // The buffer: rows [ptr, n) are pending; [ptr, half) are served before the next refill.
  #x: Float32Array = new Float32Array(0);
  #y: Float32Array = new Float32Array(0);
  #ids = new Float64Array(0);
  #ptr = 0;
  #half = 0;
  #n = 0;
  #nextGroup = 0;
  #refills = 0;

  constructor(model: HookedTransformer, options: ActivationStoreOptions) {
    this.#model = model;
    this.hookName = checkHook(model, options.hookName, 'hookName');
    this.hookNameOut = options.hookNameOut ? checkHook(model, options.hookNameOut, 'hookNameOut') : null;
    this.contexts = options.contexts;
    this.batchSize = positiveInt('trainBatchSizeTokens', options.trainBatchSizeTokens ?? 4096);
    this.storeBatchSizePrompts = positiveInt('storeBatchSizePrompts', options.storeBatchSizePrompts ?? 32);
    this.nBatchesInBuffer = positiveInt('nBatchesInBuffer', options.nBatchesInBuffer ?? 20);
    this.capacity = this.nBatchesInBuffer * this.storeBatchSizePrompts * this.contexts.contextSize;
    this.seed = options.seed ?? 0;
    if (this.contexts.contextSize > model.cfg.nCtx)
      throw new Error(`contextSize ${this.contexts.contextSize} exceeds the model's context length ${model.cfg.nCtx}`);
    const ex = options.excludeSpecialTokens ?? false;
    this.#special = specialTokenIds(model, ex);
    this.metadata = {
      model_name: options.modelName ?? model.name ?? null,
      hook_name: this.hookName,
      ...(this.hookNameOut ? { hook_name_out: this.hookNameOut } : {}),
      context_size: this.contexts.contextSize,
      prepend_bos: this.contexts.prependBos,
      dataset_path: this.contexts.description,
      ...(ex === false ? {} : { exclude_special_tokens: ex === true ? true : [...ex] }),
    };
  }

  /** Width of the input hook's activation (flattened over heads for hook_z). */
  get dIn(): number {
    if (!this.#dIn) this.#probe();
    return this.#dIn;
  }

  /** Width of the output hook's activation (transcoders), else undefined. */
  get dOut(): number | undefined {
    if (!this.hookNameOut) return undefined;
    if (!this.#dOut) this.#probe();
    return this.#dOut;
  }

  #probe(): void {
    const names = this.hookNameOut ? [this.hookName, this.hookNameOut] : [this.hookName];
    const { cache } = this.#model.runWithCache([[0, 0]], { names });
    this.#dIn = rowWidth(cache.get(this.hookName));
    if (this.hookNameOut) this.#dOut = rowWidth(cache.get(this.hookNameOut));
  }

  #allocate(): void {
    if (this.#ids.length) return;
    const rows = this.capacity + this.storeBatchSizePrompts * this.contexts.contextSize;
    this.#x = new Float32Array(rows * this.dIn);
    if (this.hookNameOut) this.#y = new Float32Array(rows * this.dOut!);
    this.#ids = new Float64Array(rows);
  }

  /** Runs the model on forward-pass group `g` (contexts g*P .. g*P+P-1): activations [P*T, d] per hook and the token ids. */
  #runGroup(g: number): { x: Float32Array; y: Float32Array | null; tokens: Int32Array } {
    const P = this.storeBatchSizePrompts;
    const T = this.contexts.contextSize;
    const tokens = new Int32Array(P * T);
    for (let c = 0; c < P; c++) tokens.set(this.contexts.context(g * P + c), c * T);
    const names = this.hookNameOut ? [this.hookName, this.hookNameOut] : [this.hookName];
    const input = tensor(
      BigInt64Array.from(tokens, (v) => BigInt(v)),
      [P, T],
      'int64',
    );
    const { cache } = this.#model.runWithCache(input, { names });
    this.forwardPasses++;
    const x = cache.get(this.hookName).dataSync() as Float32Array;
    const y = this.hookNameOut ? (cache.get(this.hookNameOut).dataSync() as Float32Array) : null;
    return { x, y, tokens };
  }

  /** Appends group g's rows (special positions left out) at the end of the buffer. */
  #appendGroup(g: number): void {
    const { x, y, tokens } = this.#runGroup(g);
    const dIn = this.dIn;
    const dOut = this.dOut ?? 0;
    const base = g * this.storeBatchSizePrompts * this.contexts.contextSize;
    for (let r = 0; r < tokens.length; r++) {
      if (this.#special.has(tokens[r]!)) continue;
      const at = this.#n++;
      this.#x.set(x.subarray(r * dIn, (r + 1) * dIn), at * dIn);
      if (y) this.#y.set(y.subarray(r * dOut, (r + 1) * dOut), at * dOut);
      this.#ids[at] = base + r;
    }
  }

  /** Moves the pending rows to the front, fills to capacity, shuffles, and serves the first half next. */
  #refill(): void {
    this.#allocate();
    const dIn = this.dIn;
    const dOut = this.dOut ?? 0;
    if (this.#ptr > 0) {
      this.#x.copyWithin(0, this.#ptr * dIn, this.#n * dIn);
      if (dOut) this.#y.copyWithin(0, this.#ptr * dOut, this.#n * dOut);
      this.#ids.copyWithin(0, this.#ptr, this.#n);
      this.#n -= this.#ptr;
      this.#ptr = 0;
    }
    let empty = 0;
    while (this.#n < this.capacity) {
      const before = this.#n;
      this.#appendGroup(this.#nextGroup++);
      empty = this.#n === before ? empty + 1 : 0;
      if (empty >= 10) throw new Error('the activation store got no activations: every position holds an excluded special token');
    }
    // Shuffle [0, n): a seeded permutation, then gather.
    const n = this.#n;
    const perm = permutation(n, new PRNG(refillSeed(this.seed, this.#refills++)));
    this.#x = gatherRows(this.#x, perm, dIn);
    if (dOut) this.#y = gatherRows(this.#y, perm, dOut);
    const ids = new Float64Array(this.#ids.length);
    for (let i = 0; i < n; i++) ids[i] = this.#ids[perm[i]!]!;
    this.#ids = ids;
    this.#half = Math.floor(n / 2);
  }

  /** The next batch: { x: [batchSize, d_in] } (+ target [batchSize, d_out]). */
  next(): ActivationBatch {
    const B = this.batchSize;
    const dIn = this.dIn;
    const dOut = this.dOut ?? 0;
    const { x, y, batch } = batchRows(B, dIn, dOut);
    for (let r = 0; r < B;) {
      if (this.#ptr >= this.#half) this.#refill();
      const take = Math.min(B - r, this.#half - this.#ptr);
      x.set(this.#x.subarray(this.#ptr * dIn, (this.#ptr + take) * dIn), r * dIn);
      if (y) y.set(this.#y.subarray(this.#ptr * dOut, (this.#ptr + take) * dOut), r * dOut);
      this.#ptr += take;
      r += take;
    }
    return batch();
  }

  #layout(): StoreState['layout'] {
    return {
      contextSize: this.contexts.contextSize,
      storeBatchSizePrompts: this.storeBatchSizePrompts,
      capacity: this.capacity,
      seed: this.seed,
      hooks: this.hookNameOut ? [this.hookName, this.hookNameOut] : [this.hookName],
    };
  }

  getState(): StoreState {
    return {
      format: 'glassbox-activation-store',
      version: 1,
      nextGroup: this.#nextGroup,
      refills: this.#refills,
      serve: Math.max(0, this.#half - this.#ptr),
      pending: encodeIds(this.#ids.subarray(this.#ptr, this.#n)),
      layout: this.#layout(),
    };
  }

  /**
   * Restores a position from `getState`: the pending activations are computed again from the
   * contexts they came from (the same forward-pass groups, so the values are identical).
   */
  setState(state: unknown): void {
    const s = state as StoreState;
    if (s?.format !== 'glassbox-activation-store' || s.version !== 1 || typeof s.pending !== 'string')
      throw new Error('ActivationStore.setState: not an activation store state');
    if (JSON.stringify(s.layout) !== JSON.stringify(this.#layout()))
      throw new Error(
        `ActivationStore.setState: the state was saved by a store with other settings (${JSON.stringify(s.layout)}, this one: ${JSON.stringify(this.#layout())})`,
      );
    this.#allocate();
    const ids = decodeIds(s.pending);
    const dIn = this.dIn;
    const dOut = this.dOut ?? 0;
    const groupRows = this.storeBatchSizePrompts * this.contexts.contextSize;
    const byGroup = new Map<number, number[]>();
    for (let i = 0; i < ids.length; i++) {
      const g = Math.floor(ids[i]! / groupRows);
      let list = byGroup.get(g);
      if (!list) byGroup.set(g, (list = []));
      list.push(i);
    }
    for (const g of [...byGroup.keys()].sort((a, b) => a - b)) {
      const { x, y } = this.#runGroup(g);
      for (const i of byGroup.get(g)!) {
        const r = ids[i]! - g * groupRows;
        this.#x.set(x.subarray(r * dIn, (r + 1) * dIn), i * dIn);
        if (y) this.#y.set(y.subarray(r * dOut, (r + 1) * dOut), i * dOut);
      }
    }
    this.#ids.set(ids);
    this.#n = ids.length;
    this.#ptr = 0;
    this.#half = s.serve;
    this.#nextGroup = s.nextGroup;
    this.#refills = s.refills;
  }
}

function gatherRows(src: Float32Array, perm: Uint32Array, d: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(src.length);
  for (let i = 0; i < perm.length; i++) {
    const from = perm[i]! * d;
    out.set(src.subarray(from, from + d), i * d);
  }
  return out;
}

function rowWidth(t: Tensor): number {
  // [batch, pos, d] or [batch, pos, n_heads, d_head] (flattened, as SAEs on hook_z read it).
  return t.shape.slice(2).reduce((a, b) => a * b, 1);
}

function checkHook(model: HookedTransformer, name: string, what: string): string {
  if (!model.hookNames.includes(name))
    throw new Error(`${what}: '${name}' is not a hook point of the model${suggest(name, model.hookNames)}`);
  return name;
}

/** @internal `v`, checked to be a positive integer (the error names it). */
export function positiveInt(name: string, v: number): number {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`${name} must be a positive integer, got ${v}`);
  return v;
}

/**
 * @internal The rows of a batch to fill: x [rows, dIn] and, when dOut > 0, y [rows, dOut]
 * (row-major); `batch()` wraps them as the ActivationBatch they make.
 */
export function batchRows(
  rows: number,
  dIn: number,
  dOut: number,
): { x: Float32Array<ArrayBuffer>; y: Float32Array<ArrayBuffer> | null; batch: () => ActivationBatch } {
  const x = new Float32Array(rows * dIn);
  const y = dOut ? new Float32Array(rows * dOut) : null;
  return {
    x,
    y,
    batch: () => (y ? { x: tensor(x, [rows, dIn]), target: tensor(y, [rows, dOut]) } : { x: tensor(x, [rows, dIn]) }),
  };
}

/** @internal Tensors [n_i, d] stacked into one [sum n_i, d] float32 tensor (d from the last axis). */
export function concatRows(ts: readonly Tensor[]): Tensor {
  const d = ts[0]!.shape[ts[0]!.rank - 1]!;
  const n = ts.reduce((s, t) => s + t.size / d, 0);
  const out = new Float32Array(n * d);
  let o = 0;
  for (const t of ts) {
    out.set(t.cast('float32').dataSync() as Float32Array, o);
    o += t.size;
  }
  return tensor(out, [n, d]);
}

/** Options of `activationStore`: the store's options with the dataset named instead of given as contexts. */
export interface DatasetStoreOptions extends Omit<ActivationStoreOptions, 'contexts'> {
  /**
   * 'default' (the default model's training corpus), a token file (NAME.bin with NAME.bin.json),
   * a text file (tokenized when opened with the model's tokenizer), token ids in memory, or
   * contexts made elsewhere.
   */
  dataset: string | ArrayLike<number> | ContextSource;
  /** Tokens per context, the BOS included (SAELens's context_size, default min(128, the model's context)). */
  contextSize?: number;
  /** Start each context with the BOS token (SAELens's prepend_bos, default true when the model has one). */
  prependBos?: boolean;
  /** Random windows in reshuffled epochs (default) or consecutive windows in order. */
  shuffleContexts?: boolean;
}

/** An ActivationStore over a named dataset (see `DatasetStoreOptions.dataset`). */
export function activationStore(model: HookedTransformer, options: DatasetStoreOptions): ActivationStore {
  const { dataset } = options;
  const contextSize = options.contextSize ?? Math.min(128, model.cfg.nCtx);
  const bos = model.cfg.bosTokenId;
  const ctxOptions = {
    contextSize,
    prependBos: options.prependBos ?? bos !== null,
    bosTokenId: bos,
    shuffle: options.shuffleContexts ?? true,
    seed: options.seed ?? 0,
  };
  let contexts: ContextSource;
  if (typeof dataset === 'object' && dataset !== null && 'context' in dataset) contexts = dataset as ContextSource;
  else if (typeof dataset !== 'string') contexts = tokenContexts(dataset, ctxOptions);
  else if (dataset === 'default' || dataset === 'glassbox/default') {
    if (!model.tokenizer) throw new Error("dataset 'default' needs a model with a tokenizer");
    contexts = defaultCorpusContexts(model.tokenizer, { ...ctxOptions, eosTokenId: model.cfg.eosTokenId, vocabSize: model.cfg.dVocab });
  } else if (!existsSync(dataset))
    throw new Error(`${dataset}: no such file (a dataset is 'default', a token file NAME.bin or a text file)`);
  else if (existsSync(`${dataset}.json`) && dataset.endsWith('.bin')) contexts = tokenContexts(TokenFile.open(dataset), ctxOptions);
  else {
    if (!model.tokenizer) throw new Error(`${dataset}: a text dataset needs a model with a tokenizer`);
    contexts = textFileContexts(dataset, model.tokenizer, { ...ctxOptions, eosTokenId: model.cfg.eosTokenId });
  }
  return new ActivationStore(model, { ...options, contexts, modelName: options.modelName ?? null });
}
