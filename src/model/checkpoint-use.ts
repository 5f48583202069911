/**
 * Checks that a checkpoint's tensors are used exactly: the loader reads the weights through a
 * tracking reader, then refuses the tensors the family neither read nor declared skipped (a config
 * with fewer layers than its weights, biases the config says are absent). Before any weight is
 * read, a config that asks for more layers than the checkpoint holds is refused by the field that
 * says so. Optionally every tensor read is checked to hold only finite values.
 */
import type { Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { SkippedTensors, WeightReader } from './families/types.js';

/** How the loader reads a checkpoint's tensors. */
export interface WeightCheckOptions {
  /**
   * Refuse a tensor holding NaN or an infinity, naming it and the first such element (default
   * false: a full pass over every weight). The CLI's `--check-finite`.
   */
  checkFinite?: boolean;
}

/** The names of the layer-count field across families, for messages. */
const LAYER_FIELDS = ['n_layer', 'num_hidden_layers', 'num_layers', 'n_layers'];

/** The config field that gave the layer count ('text_config.num_hidden_layers', ...), for messages. */
export function layerField(hf: Record<string, unknown>): string {
  const text = hf.text_config;
  if (text && typeof text === 'object' && !Array.isArray(text)) {
    const hit = LAYER_FIELDS.find((f) => (text as Record<string, unknown>)[f] !== undefined);
    if (hit) return `text_config.${hit}`;
  }
  if (hf.model_type === 'glassbox') return 'glassbox_config.nLayers';
  return LAYER_FIELDS.find((f) => hf[f] !== undefined) ?? 'the layer count';
}

/** Layer indices in tensor names: `h.3.`, `layers.3.`, `blocks.3.`. */
const LAYER_INDEX = /(?:^|\.)(?:h|layers|blocks)\.(\d+)\./;

/**
 * Refuses, before any weight is read, a config asking for more layers than the checkpoint holds
 * (n_layer 1e6 against a 2-layer file would otherwise allocate a million layers' worth of reads
 * before the first missing tensor). Checkpoints whose names show no layer indices are left to the
 * family's reads.
 */
export function refuseMissingLayers(
  cfg: ModelConfig,
  names: readonly string[],
  skipped: readonly SkippedTensors[],
  source: string,
  configFile: string,
  field: string,
): void {
  let top = -1;
  for (const n of names) {
    if (skipped.some((s) => s.pattern.test(n))) continue;
    const m = LAYER_INDEX.exec(n);
    if (m) top = Math.max(top, Number(m[1]));
  }
  if (top >= 0 && cfg.nLayers > top + 1)
    throw new Error(
      `${configFile}: field '${field}' is ${cfg.nLayers}, but ${source} holds tensors for ${top + 1} layer${top === 0 ? '' : 's'} (0..${top})`,
    );
}

/** The index of the first NaN or infinite element, or -1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

/** ' at index i ([a, b])' for an element of a tensor of this shape. */
export function elementAt(shape: readonly number[], flat: number): string {
  const idx: number[] = [];
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(rest % shape[d]!);
    rest = Math.floor(rest / shape[d]!);
  }
  return `[${idx.join(', ')}]`;
}

/** Throws when `t` holds NaN or an infinity, naming `what` and the first such element. */
export function refuseNonFinite(t: Tensor, what: string): void {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') return;
  const data = t.dataSync() as Float32Array | Float64Array;
  const i = firstNonFinite(data);
  if (i >= 0)
    throw new Error(`${what} holds ${Number.isNaN(data[i]) ? 'NaN' : data[i]! > 0 ? 'Infinity' : '-Infinity'} at ${elementAt(t.shape, i)}`);
}

/**
 * A checkpoint tensor as a float32 weight: floating-point dtypes are widened; integer and boolean
 * tensors are refused (a weight stored as int32 is a damaged or mislabelled file).
 */
export function floatWeight(t: Tensor, what: string): Tensor {
  if (/^(u?int|bool)/.test(t.dtype))
    throw new Error(`${what} is stored as ${t.dtype}; model weights must be floating point (F32, F16, BF16 or F64)`);
  return t.cast('float32');
}

/** A reader that records the names read (and checks each tensor's values when asked). */
export function trackingReader(w: WeightReader, options: WeightCheckOptions): { reader: WeightReader; used: Set<string> } {
  const used = new Set<string>();
  const source = w.source ?? 'the checkpoint';
  const reader: WeightReader = {
    has: (n) => w.has(n),
    get: (n) => {
      const t = w.get(n);
      used.add(n);
      if (options.checkFinite) refuseNonFinite(t, `${source}: tensor '${n}'`);
      return t;
    },
  };
  return { reader, used };
}

/**
 * Refuses the checkpoint's tensors that were neither read nor skipped on purpose, naming them and,
 * when they belong to layers past the config's count, the field that set it.
 */
export function refuseUnused(
  cfg: ModelConfig,
  names: readonly string[],
  used: ReadonlySet<string>,
  skipped: readonly SkippedTensors[],
  source: string,
  configFile: string,
  field: string,
): void {
  const extra = names.filter((n) => !used.has(n) && !skipped.some((s) => s.pattern.test(n)));
  if (extra.length === 0) return;
  const beyond = extra.some((n) => {
    const m = LAYER_INDEX.exec(n);
    return m !== null && Number(m[1]) >= cfg.nLayers;
  });
  const shown = extra
    .slice(0, 6)
    .map((n) => `'${n}'`)
    .join(', ');
  throw new Error(
    `${source}: ${extra.length} tensor${extra.length === 1 ? '' : 's'} ${extra.length === 1 ? 'is' : 'are'} not used by the model ${configFile} describes: ` +
      `${shown}${extra.length > 6 ? `, and ${extra.length - 6} more` : ''}` +
      (beyond
        ? ` (the checkpoint has layers past ${cfg.nLayers - 1}, but field '${field}' is ${cfg.nLayers})`
        : ' (the config and the weights disagree; glassbox refuses rather than run on part of the checkpoint)'),
  );
}
