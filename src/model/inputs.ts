/**
 * Preparing a run's inputs: token ids and attention masks from what users pass, positions from
 * the mask (left padding starts real tokens at 0), the attention masks of each window, rotary
 * tables (one per RoPE the layers use), ALiBi distances, and the inputs of one KV-cache decoding
 * step. Also the checks on a run's tokens and on a mixture of experts' router ties.
 */
import { Tensor, tensor } from '../tensor/index.js';
import { ropeOf, type ModelConfig, type RopeId } from './config.js';
import type { ForwardInputs } from './forward.js';
import { ropeFrequencies } from './rope.js';

/** Token input: [batch, pos] ids as a tensor, nested arrays, or one row. */
export type TokenInput = Tensor | readonly (readonly number[])[] | readonly number[];

export interface RunOptions {
  /** [batch, pos] 1 for real tokens, 0 for padding (left or right). */
  attentionMask?: Tensor | readonly (readonly number[])[];
  /**
   * Run positions past the model's context (`cfg.nCtx`) where its positional scheme can compute
   * them (rotary, ALiBi; never learned positions). Default: `model.allowLongContext` (false
   * unless loaded with `allowLongContext: true`), so such runs are refused.
   */
  allowLongContext?: boolean;
}

/**
 * Refuses a run reaching `positions` positions (the longest row's real tokens) past the model's
 * context, unless `allow` and the positions can be computed (rotary or ALiBi). Learned position
 * embeddings have no row past the context, whatever `allow` says; dynamic RoPE scaling, which
 * rescales its frequencies for longer inputs, is allowed past it.
 */
export function checkContext(cfg: ModelConfig, positions: number, allow: boolean, what = `input of ${positions} positions`): void {
  if (positions <= cfg.nCtx) return;
  if (cfg.positional === 'learned')
    throw new Error(`${what} exceeds the model's context of ${cfg.nCtx} (it has learned position embeddings for ${cfg.nCtx} positions)`);
  // Dynamic (NTK) RoPE scaling exists to run past max_position_embeddings: its config opts in.
  if (!allow && cfg.ropeScaling?.type !== 'dynamic')
    throw new Error(
      `${what} exceeds the model's context of ${cfg.nCtx}; its ${cfg.positional} positions can run past it, ` +
        'but outside what the model was trained on: pass allowLongContext: true (CLI: --allow-long-context) to run it anyway',
    );
}

/** The longest row's real tokens (all positions without a mask). */
export function longestRow(tokens: Tensor, mask: Tensor | null): number {
  const [b, s] = tokens.shape as [number, number];
  if (!mask) return s;
  const m = mask.cast('int32').dataSync() as Int32Array;
  let longest = 0;
  for (let r = 0; r < b; r++) {
    let n = 0;
    for (let c = 0; c < s; c++) if (m[r * s + c] !== 0) n++;
    longest = Math.max(longest, n);
  }
  return longest;
}

export function toTokens(input: TokenInput): Tensor {
  if (input instanceof Tensor) {
    if (input.rank !== 2) throw new Error(`tokens must be [batch, pos], got shape [${input.shape}]`);
    if (input.dtype === 'int64') return input;
    // A float tensor's values must be whole: casting would truncate 1.7 to token 1.
    if (input.dtype === 'float32' || input.dtype === 'float64') checkIds(input.dataSync() as Float32Array | Float64Array, input.shape[1]!);
    return input.cast('int64');
  }
  const rows = (Array.isArray(input[0]) ? input : [input]) as readonly (readonly number[])[];
  const s = rows[0]?.length ?? 0;
  if (rows.some((r) => !Array.isArray(r) || r.length !== s))
    throw new Error('tokens: rows have different lengths; pad them and pass an attentionMask');
  const flat = rows.flat();
  checkIds(flat, s);
  return tensor(flat, [rows.length, s], 'int64');
}

/** Refuses token ids that are not safe integers (1e300, NaN, 1.5 were once run as other tokens). */
function checkIds(ids: ArrayLike<unknown>, s: number): void {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw new Error(
        `tokens: the id at row ${Math.floor(i / Math.max(s, 1))}, position ${i % Math.max(s, 1)} is ${String(v)}, not a token id (an integer)`,
      );
  }
}

export function maskTensor(mask: RunOptions['attentionMask'], tokens: Tensor): Tensor | null {
  if (!mask) return null;
  let m: Tensor;
  if (mask instanceof Tensor) m = mask;
  else {
    const rows = mask as readonly (readonly number[])[];
    const s = rows[0]?.length ?? 0;
    if (rows.some((r) => !Array.isArray(r) || r.length !== s)) throw new Error('attentionMask: rows have different lengths');
    m = tensor(
      rows.flat().map((v, i) => {
        if (v !== 0 && v !== 1)
          throw new Error(`attentionMask: the value at row ${Math.floor(i / s)}, position ${i % s} is ${v}, not 0 or 1`);
        return v;
      }),
      [rows.length, s],
      'int64',
    );
  }
  if (m.shape.length !== 2 || m.shape[0] !== tokens.shape[0] || m.shape[1] !== tokens.shape[1])
    throw new Error(`attentionMask has shape [${m.shape}], tokens have [${tokens.shape}]`);
  if (m.dtype !== 'bool') {
    const v = m.dataSync() as ArrayLike<number | bigint>;
    for (let i = 0; i < v.length; i++)
      if (Number(v[i]) !== 0 && Number(v[i]) !== 1)
        throw new Error(
          `attentionMask: the value at row ${Math.floor(i / m.shape[1]!)}, position ${i % m.shape[1]!} is ${v[i]}, not 0 or 1`,
        );
  }
  return m;
}

export function checkVocab(tokens: Tensor, dVocab: number): void {
  const ids = tokens.dataSync() as BigInt64Array;
  for (let i = 0; i < ids.length; i++)
    if (ids[i]! < 0n || ids[i]! >= BigInt(dVocab))
      throw new Error(`token id ${ids[i]} at position ${i} is outside the vocabulary (0..${dVocab - 1})`);
}

/** Whether (row, pos) is a real token under the attention mask (all are without one). */
export function realTokens(tokens: Tensor, mask: Tensor | null): (row: number, pos: number) => boolean {
  if (!mask) return () => true;
  const s = tokens.shape[1]!;
  const m = mask.cast('int32').dataSync() as Int32Array;
  return (r, c) => m[r * s + c] !== 0;
}

/** Positions (from the mask, so left padding starts real tokens at 0), masks and rotary tables. */
export function forwardInputs(cfg: ModelConfig, tokens: Tensor, mask: Tensor | null): Omit<ForwardInputs, 'tokens'> {
  const [b, s] = tokens.shape as [number, number];
  const valid = mask ? Array.from(mask.cast('int32').dataSync() as Int32Array, (v) => v !== 0) : new Array<boolean>(b * s).fill(true);
  const pos = new Float64Array(b * s);
  for (let r = 0; r < b; r++) {
    let p = 0;
    for (let c = 0; c < s; c++) {
      pos[r * s + c] = valid[r * s + c] ? p : Math.max(0, p - 1);
      if (valid[r * s + c]) p++;
    }
  }
  if (cfg.positional === 'learned' && pos.some((p) => p >= cfg.nCtx))
    throw new Error(`input of ${s} positions exceeds the model's context of ${cfg.nCtx}`);
  const masks = new Map<number | null, Tensor>();
  for (const w of new Set(cfg.slidingWindow)) {
    const m = new Uint8Array(b * s * s);
    for (let r = 0; r < b; r++)
      for (let q = 0; q < s; q++)
        for (let k = 0; k <= q; k++) {
          const inWindow = w === null || q - k < w;
          // A padded query attends to itself so no row is fully masked (its output is unused).
          const ok = (valid[r * s + k]! && inWindow) || (k === q && !valid[r * s + q]);
          m[(r * s + q) * s + k] = ok ? 1 : 0;
        }
    masks.set(w, tensor(m, [b, 1, s, s], 'bool'));
  }
  const out: Omit<ForwardInputs, 'tokens'> = { positions: tensor(pos, [b, s], 'int64'), masks };
  if (cfg.positional === 'rotary') out.rotary = rotaryTables(cfg, pos, b, s);
  if (cfg.positional === 'alibi') out.alibi = alibiDistances(pos, pos, b, s, s);
  return out;
}

/** [1, L, 1, 1] float: 1 at `slot`. */
export function oneHotSlot(slot: number, L: number): Tensor {
  const w = new Float32Array(L);
  w[slot] = 1;
  return tensor(w, [1, L, 1, 1]);
}

/** Inputs of one decoding step at cache slot t: position ids, masks over the L slots, rotary tables. */
export function decodeInputs(
  cfg: ModelConfig,
  t: number,
  L: number,
  s: number,
  validPrompt: boolean[],
  positions: number[],
): Omit<ForwardInputs, 'tokens'> {
  const b = positions.length;
  const masks = new Map<number | null, Tensor>();
  for (const w of new Set(cfg.slidingWindow)) {
    const m = new Uint8Array(b * L);
    for (let r = 0; r < b; r++)
      for (let j = 0; j <= t; j++) m[r * L + j] = (j >= s || validPrompt[r * s + j]) && (w === null || t - j < w) ? 1 : 0;
    masks.set(w, tensor(m, [b, 1, 1, L], 'bool'));
  }
  const out: Omit<ForwardInputs, 'tokens'> = { positions: tensor(positions, [b, 1], 'int64'), masks };
  if (cfg.positional === 'rotary') out.rotary = rotaryTables(cfg, Float64Array.from(positions), b, 1);
  if (cfg.positional === 'alibi') {
    // Key positions of the L slots: prompt slots count the real tokens before them, then one per generated token.
    const keyPos = new Float64Array(b * L);
    for (let r = 0; r < b; r++) {
      let p = 0;
      for (let j = 0; j < L; j++) {
        keyPos[r * L + j] = p;
        if (j >= s || validPrompt[r * s + j]) p++;
      }
    }
    out.alibi = alibiDistances(keyPos, Float64Array.from(positions), b, 1, L);
  }
  return out;
}

/** Whether a decoding step at these positions is the first past LongRoPE's pre-training context. */
export function crossesLongRope(cfg: ModelConfig, positions: readonly number[]): boolean {
  const rope = cfg.ropeScaling;
  return rope?.type === 'longrope' && Math.max(...positions) === rope.originalMaxPositions;
}

/**
 * ALiBi's input [b, 1, q, k]: key position minus query position, clamped at 0 (keys after the
 * query are masked anyway). Positions come from the attention mask, so left padding does not
 * move them. BLOOM adds slope * key position, which differs by slope * query position, a
 * constant per query row that softmax cancels; the relative form is TransformerLens's, so
 * hook_attn_scores matches it.
 */
export function alibiDistances(keyPos: Float64Array, queryPos: Float64Array, b: number, q: number, k: number): Tensor {
  const d = new Float32Array(b * q * k);
  for (let r = 0; r < b; r++)
    for (let i = 0; i < q; i++) for (let j = 0; j < k; j++) d[(r * q + i) * k + j] = Math.min(0, keyPos[r * k + j]! - queryPos[r * q + i]!);
  return tensor(d, [b, 1, q, k]);
}

/**
 * cos/sin tables [b, s, 1, rotary_dim] for the given positions, one per RoPE the layers use, with
 * the config's RoPE scaling. Dynamic scaling and LongRoPE depend on the longest position of the
 * whole batch, as transformers' `max(position_ids) + 1`. Frequency j sits at dims j and
 * j + rotary_dim/2 (GPT-NeoX "rotate half" layout), or at dims 2j and 2j+1 (GPT-J's adjacent pairs).
 */
export function rotaryTables(cfg: ModelConfig, pos: Float64Array, b: number, s: number): Map<RopeId, { cos: Tensor; sin: Tensor }> {
  const rd = cfg.rotaryDim;
  let maxPos = 0;
  for (const p of pos) maxPos = Math.max(maxPos, p);
  const tables = new Map<RopeId, { cos: Tensor; sin: Tensor }>();
  const pairs = cfg.rotaryAdjacentPairs ?? false;
  for (const id of new Set<RopeId>(cfg.layerRope ?? ['global'])) {
    const { invFreq, attentionScaling } = ropeFrequencies(ropeOf(cfg, id), rd, maxPos + 1);
    const scale = Math.fround(attentionScaling);
    const cos = new Float32Array(b * s * rd);
    const sin = new Float32Array(b * s * rd);
    for (let i = 0; i < b * s; i++)
      for (let j = 0; j < rd / 2; j++) {
        // HF computes position * inv_freq in float32, then cos and sin, then scales them in float32.
        const angle = Math.fround(pos[i]! * invFreq[j]!);
        const [d1, d2] = pairs ? [2 * j, 2 * j + 1] : [j, j + rd / 2];
        cos[i * rd + d1] = cos[i * rd + d2] = Math.fround(Math.fround(Math.cos(angle)) * scale);
        sin[i * rd + d1] = sin[i * rd + d2] = Math.fround(Math.fround(Math.sin(angle)) * scale);
      }
    tables.set(id, { cos: tensor(cos, [b, s, 1, rd]), sin: tensor(sin, [b, s, 1, rd]) });
  }
  return tables;
}

/**
 * Refuses a mixture-of-experts pass in which a real token's router probabilities tie at the
 * top-k boundary (`routerTies`, one bool [batch, pos] per layer; see `moe` in forward.ts):
 * transformers picks among tied experts by torch.topk's sort order, which glassbox does not
 * reproduce, so its output for that token would not be transformers'.
 */
export function refuseRouterTies(ties: Tensor[] | undefined, real: (row: number, pos: number) => boolean): void {
  ties?.forEach((t, l) => {
    const s = t.shape[1]!;
    const v = t.dataSync() as Uint8Array;
    for (let i = 0; i < v.length; i++) {
      const [r, c] = [Math.floor(i / s), i % s];
      if (v[i] && real(r, c))
        throw new Error(
          `mixture of experts: at layer ${l}, batch row ${r}, position ${c} the router gives the k-th and (k+1)-th experts ` +
            "the same probability; transformers breaks such ties by the order of torch.topk's sort, which glassbox does not " +
            'reproduce, so it refuses rather than route differently (a hook on mlp.hook_expert_indices that sets other experts there is accepted)',
        );
    }
  });
}
