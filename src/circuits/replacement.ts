/**
 * The local replacement model of one prompt (Ameisen et al. 2025): the model with every MLP
 * replaced by transcoder features plus an error node (the true MLP output minus the transcoder's
 * reconstruction, a constant), and the attention patterns and normalisation denominators frozen
 * at their values on the prompt. On the prompt it computes the model's logits (exactly, up to
 * float rounding), and with the non-linearities frozen the residual stream is affine in the node
 * contributions (token embeddings, feature decoder writes, errors), which is what attribution needs.
 *
 * Every run here is one `model.hooked` call: hooks on `*.hook_scale` and `attn.hook_pattern`
 * return the clean run's values, hooks on `blocks.l.hook_mlp_out` return the replacement's output.
 */
import { Tensor, tensor } from '../tensor/index.js';
import type { HookedTransformer, HookList } from '../model/hooked.js';
import { hookName } from '../model/hook-names.js';
import type { TracingTranscoders } from '../sae/clt/types.js';

/** The clean run of one prompt and the transcoders' view of it; every tensor has batch 1. */
export interface ReplacementContext {
  model: HookedTransformer;
  transcoders: TracingTranscoders;
  /** Prompt token ids, [n_pos]. */
  tokens: number[];
  nPos: number;
  /** The model's logits on the prompt, [1, n_pos, d_vocab]. */
  logits: Tensor;
  /** Frozen values by hook name: every norm's hook_scale [1, pos, 1] and attention pattern [1, heads, pos, pos]. */
  frozen: Map<string, Tensor>;
  /** Each layer's transcoder input (at `inputHook(l)`), [1, pos, d_in]. */
  inputs: Tensor[];
  /** Each layer's true MLP output (at `outputHook(l)`), [1, pos, d_model]. */
  mlpOut: Tensor[];
  /** Each layer's feature activations, [1, pos, widths[l]]. */
  acts: Tensor[];
  /** Each layer's error node values: true MLP output minus reconstruction, [1, pos, d_model]. */
  errors: Tensor[];
  /** The token embeddings (hook_embed), [1, pos, d_model]. */
  embed: Tensor;
  /** The final norm's output as `ln_final.hook_normalized` holds it, [1, pos, d_model]. */
  finalNormalized: Tensor;
}

/** What `checkTracingPair` reads of a transcoder set: its layers, widths and hook points (no weights; see `readTranscoderShape`). */
export type TracingShape = Pick<TracingTranscoders, 'nLayers' | 'dIn' | 'dOut' | 'widths' | 'inputHook' | 'outputHook'>;

/** Refuses a model / transcoder pair attribution cannot handle, naming what is wrong. */
export function checkTracingPair(model: HookedTransformer, tc: TracingShape): void {
  const cfg = model.cfg;
  const where = `attribution on ${model.toString()}`;
  if (cfg.attnOnly) throw new Error(`${where}: the model has no MLPs for transcoders to replace`);
  if (cfg.norm === 'none')
    throw new Error(`${where}: models without norms are not supported (no ln_final.hook_normalized to read the logits at)`);
  if (cfg.normAfterAdd) throw new Error(`${where}: norms after the residual add (OPT-350m) are not supported`);
  if (tc.nLayers !== cfg.nLayers) throw new Error(`${where}: the transcoders cover ${tc.nLayers} layers, the model has ${cfg.nLayers}`);
  if (tc.dIn !== cfg.dModel || tc.dOut !== cfg.dModel)
    throw new Error(
      `${where}: the transcoders read d_in ${tc.dIn} and write d_out ${tc.dOut}; both must be the model's d_model ${cfg.dModel}`,
    );
  if (tc.widths.length !== tc.nLayers)
    throw new Error(`${where}: the transcoders list ${tc.widths.length} widths for ${tc.nLayers} layers`);
  const names = new Set(model.hookNames);
  for (let l = 0; l < tc.nLayers; l++) {
    const inp = tc.inputHook(l);
    if (!names.has(inp)) throw new Error(`${where}: transcoder layer ${l} reads '${inp}', which is not a hook point of this model`);
    const out = tc.outputHook(l);
    if (out !== hookName('mlp_out', l))
      throw new Error(`${where}: transcoder layer ${l} writes '${out}'; only ${hookName('mlp_out', l)} is supported`);
  }
}

/** Hook names whose values the replacement model freezes: every norm scale and attention pattern. */
export function frozenHookNames(model: HookedTransformer): string[] {
  return model.hookNames.filter((n) => n.endsWith('.hook_scale') || n.endsWith('attn.hook_pattern'));
}

/**
 * Phase 1 of `attribute` (and the start of every intervention): the clean forward pass with the
 * frozen values, the transcoder inputs and MLP outputs cached; then the feature activations,
 * reconstructions and error nodes.
 */
export function prepareReplacement(model: HookedTransformer, tokens: readonly number[], tc: TracingTranscoders): ReplacementContext {
  checkTracingPair(model, tc);
  if (tokens.length === 0) throw new Error('attribution: the prompt has no tokens');
  const L = tc.nLayers;
  const frozenNames = frozenHookNames(model);
  const inputNames = Array.from({ length: L }, (_, l) => tc.inputHook(l));
  const outNames = Array.from({ length: L }, (_, l) => tc.outputHook(l));
  const finalName = 'ln_final.hook_normalized';
  const toks = tensor([...tokens], [1, tokens.length], 'int64');
  const { logits, cache } = model.hooked(toks, {
    cache: [...new Set([...frozenNames, ...inputNames, ...outNames, hookName('embed'), finalName])],
  });
  const frozen = new Map(frozenNames.map((n) => [n, cache.get(n)] as const));
  const inputs = inputNames.map((n) => cache.get(n));
  const mlpOut = outNames.map((n) => cache.get(n));
  const acts = inputs.map((x, l) => tc.encode(l, x));
  const errors = mlpOut.map((m, t) => m.sub(tc.decode(t, acts, inputs[t])));
  return {
    model,
    transcoders: tc,
    tokens: [...tokens],
    nPos: tokens.length,
    logits,
    frozen,
    inputs,
    mlpOut,
    acts,
    errors,
    embed: cache.get(hookName('embed')),
    finalNormalized: cache.get(finalName),
  };
}

/** Which of the clean run's values a run holds fixed (both by default, the replacement model's setting). */
export interface FreezeSelection {
  /** Every attention pattern (`attn.hook_pattern`). */
  attention?: boolean;
  /** Every norm's scale (`hook_scale`: LayerNorm / RMSNorm denominators, the final norm's included). */
  norms?: boolean;
}

/** Hooks returning the frozen norm scales and attention patterns (broadcast over the batch), or the selected ones. */
export function frozenHooks(ctx: ReplacementContext, which: FreezeSelection = { attention: true, norms: true }): HookList {
  return [...ctx.frozen]
    .filter(([name]) => (name.endsWith('.hook_scale') ? which.norms : which.attention) === true)
    .map(([name, value]) => [name, (x: Tensor) => value.expand(x.shape)] as const);
}

/** The skip path of layer l's transcoder on its input x [..., d_in] (zero when it has none). */
export function skipPath(tc: TracingTranscoders, layer: number, x: Tensor): Tensor | null {
  const w = tc.wSkip(layer);
  return w ? x.matmul(w.transpose()) : null;
}
