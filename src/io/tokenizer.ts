/**
 * Tokenizers from Hugging Face `tokenizer.json` files (BPE, WordPiece, Unigram; byte-level,
 * Metaspace and the other pipelines), through `@huggingface/tokenizers`, with TransformerLens's
 * conventions on top:
 *
 * - `encode(text)` prepends BOS unless `prependBos: false`. A tokenizer whose post-processor
 *   already adds BOS (Llama, Gemma) does not get a second one, and `prependBos: false` removes
 *   the one it adds, so the result holds a BOS exactly when asked, whichever kind of tokenizer.
 * - `decode` does not "clean up tokenization spaces" (TransformerLens's `to_string` passes
 *   `clean_up_tokenization_spaces=False`), so decode(encode(text)) gives the text back.
 * - `toStrTokens` decodes each id on its own, like TransformerLens's `to_str_tokens`.
 * - Without a BOS or pad token, the EOS token stands in (as TransformerLens sets them).
 *
 * Special tokens come from `tokenizer_config.json`, then `special_tokens_map.json`, then the
 * model's `config.json` / `generation_config.json` ids (BOS, EOS), then the token the
 * post-processor prepends (BOS).
 *
 * `encodeMany(texts)` is the bulk path: in Node, where the optional `tokenizers` package (Hugging
 * Face's Rust tokenizers) loads, it encodes there, several times faster and on libuv's threads
 * (rust-tokenizers.ts); elsewhere it uses the JS implementation. Both give the same ids.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { nodeBuiltin } from '../tensor/node-builtin.js';
import { fsProblem } from './fs-problem.js';
import { parseJsonObject as parseJson } from './json.js';
import { rustTokenizers, rustTokenizersUnavailable, type RustTokenizer } from './rust-tokenizers.js';

export type PaddingSide = 'left' | 'right';

export interface EncodeOptions {
  /** Put the BOS token first (default true, as TransformerLens's `prepend_bos`). */
  prependBos?: boolean;
  /** Keep at most this many tokens (the first ones, BOS included). */
  maxLength?: number;
}

/** Which implementation `encodeMany` uses. */
export type TokenizerEngine = 'auto' | 'rust' | 'js';

export interface EncodeManyOptions extends EncodeOptions {
  /**
   * 'auto' (default): Hugging Face's Rust tokenizers where they load (Node with the `tokenizers`
   * package), else JS. 'rust': those or an error saying why not. 'js': `@huggingface/tokenizers`.
   */
  engine?: TokenizerEngine;
}

export interface EncodeBatchOptions extends EncodeOptions {
  /** Where the pad tokens go (default: the tokenizer's `padding_side`, else 'right'). */
  paddingSide?: PaddingSide;
}

/** A padded batch: `ids[b]` all have one length; `attentionMask[b][p]` is 1 on real tokens, 0 on padding. */
export interface EncodedBatch {
  ids: number[][];
  attentionMask: number[][];
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, ...) from the text (default false). */
  skipSpecialTokens?: boolean;
  /** Apply Hugging Face's `clean_up_tokenization_spaces` (" ." -> "." and so on; default false). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface TokenizerOptions {
  /** Overrides for the special tokens, by their text (null: none). */
  bosToken?: string | null;
  eosToken?: string | null;
  padToken?: string | null;
  /** Overrides `padding_side` from tokenizer_config.json. */
  paddingSide?: PaddingSide;
  /**
   * BOS/EOS ids from the model's config.json / generation_config.json, used when no token text
   * is known. (The model's pad_token_id is not used: Hugging Face tokenizers ignore it too.)
   */
  modelTokenIds?: { bos?: number | null; eos?: number | null };
  /** Named in error messages (default 'tokenizer.json'). */
  source?: string;
}

type Json = Record<string, unknown>;

/** The text of a special token as tokenizer_config.json writes it: a string or an AddedToken object. */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

function firstId(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (Array.isArray(v) && typeof v[0] === 'number' && Number.isInteger(v[0])) return v[0];
  return null;
}

/**
 * The text files of a model folder, by name ('tokenizer.json', 'config.json', ...): a directory
 * on disk in Node (`loadTokenizer`), fetched or dropped files in a browser. `read` returns null
 * for a file that is not there; `where` names a file in error messages.
 */
export interface TextFileSource {
  read(name: string): string | null;
  where(name: string): string;
}

function readOptionalJson(files: TextFileSource, name: string): Json | null {
  const text = files.read(name);
  return text === null ? null : parseJson(text, files.where(name));
}

export class Tokenizer {
  /** Token ids of the special tokens (null where the tokenizer has none). */
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  /** Number of ids: the largest id in the vocabulary (added tokens included) plus one. */
  readonly vocabSize: number;
  /** True when the tokenizer's own post-processor puts BOS first (Llama, Gemma); false for GPT-2 and the like. */
  readonly addsBos: boolean;
  /** Default side for padding in `encodeBatch`. */
  readonly paddingSide: PaddingSide;
  readonly #tok: HfTokenizer;
  readonly #source: string;
  /** tokenizer.json as given (with the null keys filled in), for building the Rust tokenizer on first use. */
  readonly #json: Json;
  /** The Rust tokenizer (built on the first `encodeMany`), or why there is none. */
  #rust: { tok: RustTokenizer } | { error: string } | undefined;

  /**
   * From parsed `tokenizer.json` and `tokenizer_config.json` (merge `special_tokens_map.json`
   * into the config first if the model has one; `loadTokenizer` does).
   */
  constructor(tokenizerJson: Json, config: Json = {}, options: TokenizerOptions = {}) {
    this.#source = options.source ?? 'tokenizer.json';
    const tj = { ...tokenizerJson };
    // The library wants these keys present; tokenizer.json written by `tokenizers` always has
    // them, hand-written ones sometimes leave the null ones out.
    for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (!(k in tj)) tj[k] = null;
    if (!('added_tokens' in tj)) tj.added_tokens = [];
    if (!tj.model || typeof tj.model !== 'object')
      throw new Error(`${this.#source}: no "model" object (not a Hugging Face tokenizer.json?)`);
    this.#json = tj;
    try {
      this.#tok = new HfTokenizer(tj, config);
    } catch (e) {
      throw new Error(`${this.#source}: cannot build the tokenizer (${e instanceof Error ? e.message : String(e)})`);
    }

    let max = -1;
    for (const id of this.#tok.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;

    const idOf = (what: string, text: string | null | undefined): number | null => {
      if (text === null || text === undefined) return null;
      const id = this.#tok.token_to_id(text);
      if (id === undefined) throw new Error(`${this.#source}: the ${what} token ${JSON.stringify(text)} is not in the vocabulary`);
      return id;
    };
    const pick = (what: 'bos' | 'eos' | 'pad'): number | null => {
      const override = options[`${what}Token`];
      if (override !== undefined) return idOf(what, override);
      const fromConfig = tokenText(config[`${what}_token`]);
      if (fromConfig !== null) return idOf(what, fromConfig);
      const fromModel = what === 'pad' ? null : options.modelTokenIds?.[what];
      return fromModel !== null && fromModel !== undefined && this.#tok.id_to_token(fromModel) !== undefined ? fromModel : null;
    };

    let bos = pick('bos');
    const eos = pick('eos');
    let pad = pick('pad');

    // Does the post-processor put a special token first? (TransformerLens asks whether encoding
    // "" gives any token.) If no BOS is named anywhere, that token is the BOS.
    const probe = this.#tok.encode('', { add_special_tokens: true }).ids;
    const bare = this.#tok.encode('', { add_special_tokens: false }).ids;
    let addsBos = false;
    if (probe.length > bare.length) {
      const first = probe[0]!;
      if (bos === null && options.bosToken === undefined) bos = first;
      addsBos = first === bos;
    }
    // TransformerLens: bos_token and pad_token default to eos_token.
    if (bos === null && options.bosToken === undefined) bos = eos;
    if (pad === null && options.padToken === undefined) pad = eos;

    this.bosTokenId = bos;
    this.eosTokenId = eos;
    this.padTokenId = pad;
    this.addsBos = addsBos;
    const side = options.paddingSide ?? config.padding_side;
    if (side !== undefined && side !== 'left' && side !== 'right')
      throw new Error(`${this.#source}: padding_side must be 'left' or 'right', got ${JSON.stringify(side)}`);
    this.paddingSide = side ?? 'right';
  }

  /** Token ids of `text`; BOS first unless `prependBos: false`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.#finish(this.#tok.encode(text, { add_special_tokens: true }).ids, options);
  }

  /**
   * Token ids of each text, as `encode` gives them (BOS and `maxLength` alike), in the Rust
   * tokenizers where they load (see `engine`): the fast path for many texts.
   */
  async encodeMany(texts: readonly string[], options: EncodeManyOptions = {}): Promise<number[][]> {
    const engine = options.engine ?? 'auto';
    if (engine !== 'auto' && engine !== 'rust' && engine !== 'js')
      throw new RangeError(`engine must be 'auto', 'rust' or 'js', got ${JSON.stringify(engine)}`);
    for (let i = 0; i < texts.length; i++)
      if (typeof texts[i] !== 'string') throw new TypeError(`encodeMany: texts[${i}] is not a string (${typeof texts[i]})`);
    this.#finish([], options); // refuses bad options (maxLength, no BOS) before any work
    const rust = engine === 'js' ? null : this.#rustTokenizer();
    if (rust && 'error' in rust) {
      if (engine === 'rust') throw new Error(`${this.#source}: ${rust.error}`);
      return texts.map((t) => this.encode(t, options));
    }
    if (!rust) return texts.map((t) => this.encode(t, options));
    const encodings = await rust.tok.encodeBatch([...texts], { addSpecialTokens: true });
    return encodings.map((e) => this.#finish(e.getIds(), options));
  }

  /** Which implementation `encodeMany` uses by default ('rust' or 'js'), and why not Rust when not. */
  encodeManyEngine(): { engine: 'rust' | 'js'; reason: string | null } {
    const rust = this.#rustTokenizer();
    return 'error' in rust ? { engine: 'js', reason: rust.error } : { engine: 'rust', reason: null };
  }

  #rustTokenizer(): { tok: RustTokenizer } | { error: string } {
    if (this.#rust) return this.#rust;
    const mod = rustTokenizers();
    if (!mod) return (this.#rust = { error: rustTokenizersUnavailable() ?? 'the Rust tokenizers binding did not load' });
    try {
      this.#rust = { tok: mod.Tokenizer.fromString(JSON.stringify(this.#json)) };
    } catch (e) {
      this.#rust = { error: `the Rust tokenizers refused this tokenizer.json (${e instanceof Error ? e.message : String(e)})` };
    }
    return this.#rust;
  }

  /** TransformerLens's BOS convention and `maxLength` on the ids the tokenizer's pipeline gives. */
  #finish(pipelineIds: number[], options: EncodeOptions): number[] {
    const prependBos = options.prependBos ?? true;
    let ids = pipelineIds;
    if (this.addsBos) {
      if (!prependBos && ids[0] === this.bosTokenId) ids = ids.slice(1);
    } else if (prependBos) {
      if (this.bosTokenId === null) {
        throw new Error(
          `${this.#source}: no BOS token is known (tokenizer_config.json names none); pass prependBos: false or name one with the bosToken option`,
        );
      }
      ids = [this.bosTokenId, ...ids];
    }
    if (options.maxLength !== undefined) {
      if (!Number.isInteger(options.maxLength) || options.maxLength < 1)
        throw new RangeError(`maxLength must be a positive integer, got ${options.maxLength}`);
      if (ids.length > options.maxLength) ids = ids.slice(0, options.maxLength);
    }
    return ids;
  }

  /** Encodes each text and pads them to one length with the pad token. */
  encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): EncodedBatch {
    const side = options.paddingSide ?? this.paddingSide;
    const rows = texts.map((t) => this.encode(t, options));
    const len = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const ids: number[][] = [];
    const attentionMask: number[][] = [];
    for (const r of rows) {
      const n = len - r.length;
      if (n > 0 && this.padTokenId === null) {
        throw new Error(
          `${this.#source}: the texts have different lengths and the tokenizer has no pad (or EOS) token; name one with the padToken option`,
        );
      }
      const padIds = new Array<number>(n).fill(this.padTokenId ?? 0);
      const ones = new Array<number>(r.length).fill(1);
      const zeros = new Array<number>(n).fill(0);
      ids.push(side === 'left' ? [...padIds, ...r] : [...r, ...padIds]);
      attentionMask.push(side === 'left' ? [...zeros, ...ones] : [...ones, ...zeros]);
    }
    return { ids, attentionMask };
  }

  /** The text of `ids`. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids) this.#checkId(id);
    return this.#tok.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? false,
    });
  }

  /** Each id decoded on its own (a byte-level token that is part of a character shows as U+FFFD). */
  toStrTokens(ids: readonly number[]): string[] {
    return ids.map((id) => this.decode([id]));
  }

  /** The vocabulary entry of `id` as stored (e.g. 'Ġworld' in a byte-level BPE). */
  idToToken(id: number): string | undefined {
    return this.#tok.id_to_token(id);
  }

  /** The id of a vocabulary entry (undefined if absent). */
  tokenToId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }

  #checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.#tok.id_to_token(id) === undefined) {
      throw new RangeError(`${this.#source}: token id ${id} is not in the vocabulary (ids 0..${this.vocabSize - 1})`);
    }
  }
}

/**
 * Loads the tokenizer of a Hugging Face model directory: `tokenizer.json` (required) with
 * `tokenizer_config.json` and `special_tokens_map.json` when present, and the BOS/EOS/pad ids of
 * `config.json` / `generation_config.json` as a last resort for the special tokens.
 */
export function loadTokenizer(dir: string, options: TokenizerOptions = {}): Tokenizer {
  // Node's fs through getBuiltinModule, not an import, so that this file (the Tokenizer class)
  // bundles for a browser, which reads the same files with `tokenizerFromFiles`.
  const fs = nodeBuiltin('node:fs');
  const nodePath = nodeBuiltin('node:path');
  if (!fs || !nodePath) throw new Error(`loadTokenizer(${dir}): reading a directory needs Node.js; in a browser use tokenizerFromFiles`);
  const where = (name: string) => nodePath.join(dir, name);
  return tokenizerFromFiles(
    {
      where,
      read: (name) => {
        const path = where(name);
        // lstat, not existsSync: a link loop, a dangling link or a directory in a file's place is
        // named, not read as "no such file".
        try {
          fs.lstatSync(path);
        } catch {
          return null;
        }
        try {
          return fs.readFileSync(path, 'utf8');
        } catch (e) {
          throw new Error(`${path}: ${fsProblem(e)}`);
        }
      },
    },
    options,
  );
}

/**
 * The tokenizer of a model folder given as files (`tokenizer.json` required; the others as for
 * `loadTokenizer`).
 */
export function tokenizerFromFiles(files: TextFileSource, options: TokenizerOptions = {}): Tokenizer {
  const path = files.where('tokenizer.json');
  const text = files.read('tokenizer.json');
  if (text === null) throw new Error(`${path}: missing (glassbox reads the fast-tokenizer file tokenizer.json)`);
  const tokenizerJson = parseJson(text, path);
  const config: Json = {
    ...(readOptionalJson(files, 'special_tokens_map.json') ?? {}),
    ...(readOptionalJson(files, 'tokenizer_config.json') ?? {}),
  };
  const modelCfg = readOptionalJson(files, 'config.json') ?? {};
  const genCfg = readOptionalJson(files, 'generation_config.json') ?? {};
  const modelTokenIds = {
    bos: firstId(modelCfg.bos_token_id) ?? firstId(genCfg.bos_token_id),
    eos: firstId(modelCfg.eos_token_id) ?? firstId(genCfg.eos_token_id),
  };
  return new Tokenizer(tokenizerJson, config, { source: path, modelTokenIds, ...options });
}
