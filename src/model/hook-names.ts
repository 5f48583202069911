/**
 * Hook point names, TransformerLens's vocabulary (`utils.get_act_name`): `hookName('resid_pre', 3)`
 * is 'blocks.3.hook_resid_pre', `hookName('pattern', 0)` 'blocks.0.attn.hook_pattern'. Code names
 * hook points through these helpers instead of writing the strings, so the vocabulary is stated
 * once, here.
 */

/** The per-layer hook points, by TransformerLens's short name, and where each sits in a block. */
const BLOCK_HOOKS = {
  resid_pre: 'hook_resid_pre',
  resid_mid: 'hook_resid_mid',
  resid_post: 'hook_resid_post',
  attn_out: 'hook_attn_out',
  mlp_in: 'hook_mlp_in',
  mlp_out: 'hook_mlp_out',
  q: 'attn.hook_q',
  k: 'attn.hook_k',
  v: 'attn.hook_v',
  rot_q: 'attn.hook_rot_q',
  rot_k: 'attn.hook_rot_k',
  z: 'attn.hook_z',
  attn_scores: 'attn.hook_attn_scores',
  pattern: 'attn.hook_pattern',
  result: 'attn.hook_result',
  pre: 'mlp.hook_pre',
  pre_linear: 'mlp.hook_pre_linear',
  post: 'mlp.hook_post',
  router_logits: 'mlp.hook_router_logits',
  expert_weights: 'mlp.hook_expert_weights',
  expert_indices: 'mlp.hook_expert_indices',
} as const;

/** The hook points outside the blocks. */
const MODEL_HOOKS = { embed: 'hook_embed', pos_embed: 'hook_pos_embed' } as const;

/** A norm's hook points (`blocks.L.ln1.hook_scale`, `ln_final.hook_normalized`). */
const NORM_HOOKS = { scale: 'hook_scale', normalized: 'hook_normalized' } as const;

export type BlockHookKind = keyof typeof BLOCK_HOOKS;
export type ModelHookKind = keyof typeof MODEL_HOOKS;
export type NormHookKind = keyof typeof NORM_HOOKS;
/** The norms of a block ('ln1', 'ln2'; Gemma 2: also 'ln1_post', 'ln2_post'). */
export type BlockNorm = 'ln1' | 'ln2' | 'ln1_post' | 'ln2_post';

/**
 * The full name of a hook point: a block hook at `layer` ('resid_pre', 'pattern', 'post', ...),
 * a model hook ('embed', 'pos_embed'), or a norm's 'scale' / 'normalized' in `norm` of `layer`
 * ('ln1', 'ln2', ...) or in the final norm (`layer` null).
 */
export function hookName(kind: BlockHookKind, layer: number): string;
export function hookName(kind: ModelHookKind): string;
export function hookName(kind: NormHookKind, layer: number, norm: BlockNorm): string;
export function hookName(kind: NormHookKind, layer: null, norm: 'ln_final'): string;
export function hookName(kind: BlockHookKind | ModelHookKind | NormHookKind, layer?: number | null, norm?: string): string {
  if (kind in MODEL_HOOKS) return MODEL_HOOKS[kind as ModelHookKind];
  if (kind in NORM_HOOKS) {
    const where = layer === null || layer === undefined ? norm! : `blocks.${checkLayer(layer)}.${norm!}`;
    return `${where}.${NORM_HOOKS[kind as NormHookKind]}`;
  }
  return `blocks.${checkLayer(layer)}.${BLOCK_HOOKS[kind as BlockHookKind]}`;
}

/** The name of one expert's hook point in a mixture-of-experts MLP: 'blocks.L.mlp.experts.E.hook_post'. */
export function expertHookName(kind: 'gate' | 'pre' | 'post', layer: number, expert: number): string {
  return `blocks.${checkLayer(layer)}.mlp.experts.${checkLayer(expert)}.hook_${kind}`;
}

const LAYER = /^blocks\.(\d+)\./;

/** The layer a hook point belongs to ('blocks.3.attn.hook_z' -> 3), or null outside the blocks. */
export function layerOf(name: string): number | null {
  const m = LAYER.exec(name);
  return m ? Number(m[1]) : null;
}

function checkLayer(layer: number | null | undefined): number {
  if (typeof layer !== 'number' || !Number.isSafeInteger(layer) || layer < 0)
    throw new Error(`hookName: layer must be a non-negative integer, got ${String(layer)}`);
  return layer;
}
