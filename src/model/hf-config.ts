/**
 * Reading a Hugging Face `config.json` so that no field is silently ignored.
 *
 * A family reads the fields it implements through an {@link HfConfigReader}; each read is
 * recorded, and checked (type, integer, range, closed set of strings). When the family is done,
 * `finish()` refuses every field that nobody read and that is not known to leave the arithmetic
 * of inference unchanged (dropout, initialisation, token ids, bookkeeping). A config value that
 * glassbox does not implement therefore stops the load with an error naming the file and the
 * field, instead of running a model that computes something else.
 */

/** Fields that never change the arithmetic of an inference forward pass, for any family. */
const INERT_FIELDS = new Set([
  '_name_or_path',
  'architectures',
  'transformers_version',
  'dtype',
  'torch_dtype',
  'use_cache',
  'cache_implementation',
  'initializer_range',
  'initializer_factor',
  'init_std',
  'embedding_multiplier',
  'attention_dropout',
  'attn_pdrop',
  'embd_pdrop',
  'resid_pdrop',
  'hidden_dropout',
  'hidden_dropout_prob',
  'attention_probs_dropout_prob',
  'hidden_dropout_rate',
  'dropout',
  'classifier_dropout',
  'embed_dropout',
  'layerdrop',
  'output_attentions',
  'output_hidden_states',
  'return_dict',
  'torchscript',
  'id2label',
  'label2id',
  'problem_type',
  'tokenizer_class',
  'prefix',
  'task_specific_params',
  'pruned_heads',
  'chunk_size_feed_forward',
  'is_decoder',
  'is_encoder_decoder',
  'add_cross_attention',
  'tie_encoder_decoder',
  'cross_attention_hidden_size',
  'decoder_start_token_id',
  'sep_token_id',
  'finetuning_task',
  'model_type', // read by the loader to pick the family
  // Parallelism and implementation hints: the same arithmetic, split differently.
  'pretraining_tp',
  'slow_but_exact',
  '_attn_implementation',
  'attn_implementation',
  '_attn_implementation_autoset',
  'use_flash_attn',
  'gradient_checkpointing',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  // Generation defaults stored in transformers-4 configs: they choose tokens, not logits.
  'max_length',
  'min_length',
  'do_sample',
  'early_stopping',
  'num_beams',
  'num_beam_groups',
  'diversity_penalty',
  'temperature',
  'top_k',
  'top_p',
  'typical_p',
  'repetition_penalty',
  'length_penalty',
  'no_repeat_ngram_size',
  'encoder_no_repeat_ngram_size',
  'bad_words_ids',
  'num_return_sequences',
  'output_scores',
  'return_dict_in_generate',
  'forced_bos_token_id',
  'forced_eos_token_id',
  'remove_invalid_values',
  'exponential_decay_length_penalty',
  'suppress_tokens',
  'begin_suppress_tokens',
  'tf_legacy_loss',
  'use_bfloat16',
  // Training-only losses and router statistics (MoE auxiliary loss), not the forward's output.
  'router_aux_loss_coef',
  'output_router_logits',
  'router_jitter_noise',
  'z_loss_coef',
]);

export interface NumberRule {
  /** Must be an integer (dimensions, counts, token ids). */
  integer?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound (`> gt`). */
  gt?: number;
  /** Inclusive upper bound. */
  max?: number;
}

/** Upper bound on dimensions and counts: far above any real model, far below what breaks V8. */
export const MAX_DIM = 1 << 24;

/**
 * Upper bound on layer counts (the largest models have a few hundred): per-layer settings are
 * arrays built before any weight is read, and 2^24 layers took seconds and gigabytes to refuse.
 */
export const MAX_LAYERS = 1 << 16;

/**
 * A `config.json` (or one nested object of it, such as `rope_parameters` or `text_config`) being
 * read by a family. Every method that returns a value marks the field as read.
 */
export class HfConfigReader {
  readonly raw: Readonly<Record<string, unknown>>;
  /** The file, for messages. */
  readonly file: string;
  /** Where this object sits in the file ('' at the top, 'rope_parameters.' inside it). */
  readonly path: string;
  readonly #read = new Set<string>();
  readonly #children: HfConfigReader[] = [];
  /** A whole config (the top level, or a multimodal checkpoint's `text_config`): its inert fields are accepted. */
  readonly #isConfig: boolean;

  constructor(raw: unknown, file: string, path = '', isConfig = path === '') {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw new Error(`${file}: ${path ? `field '${path.slice(0, -1)}'` : 'the config'} must be a JSON object, got ${describe(raw)}`);
    this.raw = raw as Record<string, unknown>;
    this.file = file;
    this.path = path;
    this.#isConfig = isConfig;
  }

  /** The model_type (checked to be a string). */
  get modelType(): string {
    return this.str('model_type');
  }

  /** Whether the field is present with a non-null value. Does not mark it read. */
  has(name: string): boolean {
    return this.raw[name] !== undefined && this.raw[name] !== null;
  }

  /** Marks fields read without using their value: the family knows they change nothing. */
  ignore(...names: string[]): void {
    for (const n of names) this.#read.add(n);
  }

  /** An error about one field, naming the file and the field. */
  error(name: string, problem: string): Error {
    return new Error(`${this.file}: field '${this.path}${name}' ${problem}`);
  }

  /** The first of `names` present (non-null), or undefined; marks all of them read. */
  #first(names: readonly string[]): [string, unknown] | undefined {
    for (const n of names) this.#read.add(n);
    for (const n of names) if (this.has(n)) return [n, this.raw[n]];
    return undefined;
  }

  #checkNumber(name: string, v: unknown, rule: NumberRule): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.error(name, `must be a finite number, got ${describe(v)}`);
    if (rule.integer && !Number.isSafeInteger(v)) throw this.error(name, `must be an integer, got ${v}`);
    if (rule.min !== undefined && v < rule.min) throw this.error(name, `must be at least ${rule.min}, got ${v}`);
    if (rule.gt !== undefined && !(v > rule.gt)) throw this.error(name, `must be greater than ${rule.gt}, got ${v}`);
    if (rule.max !== undefined && v > rule.max) throw this.error(name, `must be at most ${rule.max}, got ${v}`);
    return v;
  }

  /** A required number, under the first of `names` present. */
  num(names: string | readonly string[], rule: NumberRule = {}): number {
    const list = typeof names === 'string' ? [names] : names;
    const hit = this.#first(list);
    if (!hit) throw new Error(`${this.file}: missing numeric field ${list.map((n) => `'${this.path}${n}'`).join(' or ')}`);
    return this.#checkNumber(hit[0], hit[1], rule);
  }

  /** An optional number (absent or null: `fallback`). */
  optNum<T extends number | null>(names: string | readonly string[], fallback: T, rule: NumberRule = {}): number | T {
    const hit = this.#first(typeof names === 'string' ? [names] : names);
    return hit ? this.#checkNumber(hit[0], hit[1], rule) : fallback;
  }

  /** A positive integer dimension or count. */
  dim(names: string | readonly string[]): number {
    return this.num(names, { integer: true, min: 1, max: MAX_DIM });
  }

  /** A layer count: a positive integer up to MAX_LAYERS. */
  layers(names: string | readonly string[]): number {
    return this.num(names, { integer: true, min: 1, max: MAX_LAYERS });
  }

  /** An optional layer count. */
  optLayers<T extends number | null>(names: string | readonly string[], fallback: T): number | T {
    return this.optNum(names, fallback, { integer: true, min: 1, max: MAX_LAYERS });
  }

  /** An optional positive integer dimension or count. */
  optDim<T extends number | null>(names: string | readonly string[], fallback: T): number | T {
    return this.optNum(names, fallback, { integer: true, min: 1, max: MAX_DIM });
  }

  /** A boolean (absent or null: `fallback`). */
  bool(name: string, fallback: boolean): boolean {
    const hit = this.#first([name]);
    if (!hit) return fallback;
    if (typeof hit[1] !== 'boolean') throw this.error(name, `must be true or false, got ${describe(hit[1])}`);
    return hit[1];
  }

  /** A string from a closed set (absent or null: `fallback`, which is required when undefined). */
  str<T extends string>(names: string | readonly string[], allowed?: readonly T[], fallback?: T): T {
    const list = typeof names === 'string' ? [names] : names;
    const hit = this.#first(list);
    if (!hit) {
      if (fallback !== undefined) return fallback;
      throw new Error(`${this.file}: missing field ${list.map((n) => `'${this.path}${n}'`).join(' or ')}`);
    }
    if (typeof hit[1] !== 'string') throw this.error(hit[0], `must be a string, got ${describe(hit[1])}`);
    if (allowed && !allowed.includes(hit[1] as T))
      throw this.error(hit[0], `is '${hit[1]}', which glassbox does not implement (implemented: ${allowed.join(', ')})`);
    return hit[1] as T;
  }

  /** A token id field, which may be a number or a list of numbers: the first one, or null. */
  tokenId(name: string): number | null {
    const hit = this.#first([name]);
    if (!hit) return null;
    const v = Array.isArray(hit[1]) ? hit[1][0] : hit[1];
    if (v === undefined) return null;
    return this.#checkNumber(name, v, { integer: true, min: 0 });
  }

  /** A list of numbers (absent or null: null). */
  numList(name: string, rule: NumberRule = {}): number[] | null {
    const hit = this.#first([name]);
    if (!hit) return null;
    if (!Array.isArray(hit[1])) throw this.error(name, `must be a list of numbers, got ${describe(hit[1])}`);
    return hit[1].map((v, i) => this.#checkNumber(`${name}[${i}]`, v, rule));
  }

  /** A list of strings from a closed set (absent or null: null). */
  strList<T extends string>(name: string, allowed: readonly T[]): T[] | null {
    const hit = this.#first([name]);
    if (!hit) return null;
    if (!Array.isArray(hit[1])) throw this.error(name, `must be a list of strings, got ${describe(hit[1])}`);
    return hit[1].map((v, i) => {
      if (typeof v !== 'string' || !allowed.includes(v as T))
        throw this.error(`${name}[${i}]`, `is ${describe(v)}, which glassbox does not implement (implemented: ${allowed.join(', ')})`);
      return v as T;
    });
  }

  /**
   * A nested object as a reader of its own (absent or null: null). Its unread fields are refused
   * by this reader's `finish()`, with their full path.
   */
  sub(name: string): HfConfigReader | null {
    return this.#sub(name, false);
  }

  /**
   * A nested whole config (a multimodal checkpoint's `text_config`), read like `sub` but accepting
   * the fields that are inert in any config (dtype, dropout, initialisation, ...). Absent or null:
   * an empty one, so its fields take their defaults.
   */
  subConfig(name: string): HfConfigReader {
    return this.#sub(name, true) ?? new HfConfigReader({}, this.file, `${this.path}${name}.`, true);
  }

  #sub(name: string, isConfig: boolean): HfConfigReader | null {
    const hit = this.#first([name]);
    if (!hit) return null;
    const child = new HfConfigReader(hit[1], this.file, `${this.path}${name}.`, isConfig);
    this.#children.push(child);
    return child;
  }

  /**
   * Refuses the field when present with a value other than one of `allowed` (fields glassbox
   * implements only at their default, e.g. `use_bidirectional_attention: false`).
   */
  expect(name: string, allowed: readonly unknown[], why = 'glassbox implements only'): void {
    const hit = this.#first([name]);
    if (hit && !allowed.some((a) => a === hit[1]))
      throw this.error(name, `is ${describe(hit[1])}; ${why} ${allowed.map((a) => JSON.stringify(a)).join(' or ')}`);
  }

  /** The fields present, non-null, never read and not known to be inert, with their paths. */
  unread(): string[] {
    const own = Object.keys(this.raw).filter(
      (k) => !this.#read.has(k) && this.raw[k] !== null && this.raw[k] !== undefined && !(this.#isConfig && INERT_FIELDS.has(k)),
    );
    return [...own.map((k) => `${this.path}${k}`), ...this.#children.flatMap((c) => c.unread())];
  }

  /** Refuses every field that was not read and is not inert. Call once the family has read the config. */
  finish(): void {
    const left = this.unread();
    if (left.length === 0) return;
    const fam = typeof this.raw.model_type === 'string' ? ` for model_type '${this.raw.model_type}'` : '';
    const shown = left.map((k) => `'${k}' (${describe(valueAt(this.raw, k.slice(this.path.length)))})`);
    throw new Error(
      `${this.file}: ${left.length === 1 ? 'field' : 'fields'} ${shown.join(', ')} ${left.length === 1 ? 'is' : 'are'} not implemented by glassbox${fam}; ` +
        'refusing to run a model whose arithmetic would differ from the checkpoint',
    );
  }
}

function valueAt(raw: Readonly<Record<string, unknown>>, path: string): unknown {
  let v: unknown = raw;
  for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

/** A short description of a JSON value for messages. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
