/**
 * Splicing SAEs into a model's forward pass (SAELens's HookedSAETransformer, as hook entries for
 * `model.runWithHooks`), and small hook functions that ablate or steer single features.
 *
 * ```ts
 * const hooks = attachSae(model, sae, { useErrorTerm: true, featureHooks: [['hook_sae_acts_post', zeroFeature(42)]] });
 * const logits = model.runWithHooks(tokens, { hooks });
 * ```
 */
import { suggest, type HookFn, type HookedTransformer } from '../model/hooked.js';
import type { Tensor } from '../tensor/index.js';
import { runSpec, saeForward, type Sae, type SaeHooks } from './sae.js';

/** Options of `attachSae`. */
export interface AttachSaeOptions {
  /**
   * Add the SAE's error term so the model's output is exactly unchanged unless `featureHooks`
   * change something (SAELens's use_error_term); without it the activation is replaced by the
   * SAE's reconstruction.
   */
  useErrorTerm?: boolean;
  /**
   * Hooks on the SAE's own hook points, e.g. `[['hook_sae_acts_post', zeroFeature(7)]]`. Their
   * ctx.name is '<hook_name>.<point>' (SAELens's naming).
   */
  featureHooks?: SaeHooks;
  /**
   * SAE hook points to mark as gradient targets: inside `model.gradientsAt` (or any
   * `valueAndGrad`) their value and gradient come back under '<hook_name>.<point>', e.g.
   * 'blocks.0.hook_resid_pre.hook_sae_acts_post' for feature attributions.
   */
  markGrad?: readonly string[];
  /** Attach even when the SAE's cfg.json names another model (`model_name`); see `checkSaeModel`. */
  allowModelMismatch?: boolean;
}

/** What `attachSae` needs of a model: its hook point names (and its name, when known). */
export type HookNamed = Pick<HookedTransformer, 'hookNames'> & { readonly name?: string | null };

/** TransformerLens names whose Hugging Face id differs by more than punctuation and the organisation. */
const MODEL_ALIASES: Record<string, string> = { gpt2small: 'gpt2' };

/**
 * A model name as compared: no organisation ('EleutherAI/'), revision ('@main'), '-hf' suffix,
 * case or punctuation, so 'EleutherAI/pythia-70m' and 'pythia-70m', or 'gpt2-small' (TransformerLens)
 * and 'openai-community/gpt2', are the same model.
 */
export function modelKey(name: string): string {
  let n = name
    .trim()
    .replace(/@[^/]*$/, '')
    .replace(/[\\/]+$/, '');
  n = n.slice(Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\')) + 1).toLowerCase();
  n = n.replace(/-hf$/, '').replace(/[^a-z0-9]/g, '');
  return MODEL_ALIASES[n] ?? n;
}

/**
 * Refuses an SAE trained on another model: its cfg.json's `model_name` against the model's name
 * (what it was loaded as: 'default', a hub id, a directory's name), when both are known. Its
 * activations would be read at the same hook point of a model whose residual stream means
 * something else, and every number computed from them would be wrong without a sign.
 * `allowModelMismatch` (CLI: --allow-model-mismatch) lets it through (a fine-tune of the model,
 * a renamed copy).
 */
export function checkSaeModel(model: { readonly name?: string | null }, sae: Sae, options: { allowModelMismatch?: boolean } = {}): void {
  const want = sae.cfg.model_name;
  const have = model.name;
  if (options.allowModelMismatch || saeNamesModel(sae, [have])) return;
  throw new Error(
    `the SAE ${sae} was trained on model_name '${want}' (its cfg.json), but the model is '${have}'; ` +
      'pass allowModelMismatch: true (CLI: --allow-model-mismatch) if the model is the same one under another name',
  );
}

/**
 * Whether an SAE's cfg.json `model_name` may name the model known by `names` (the name it was
 * loaded as, and any other it answers to: the server adds its family), compared as `modelKey`s.
 * True when either side is unknown: no `model_name`, or no name given. `checkSaeModel` refuses
 * on it; the server (`serve --sae`) refuses on it with its own words.
 */
export function saeNamesModel(sae: Sae, names: readonly (string | null | undefined)[]): boolean {
  const want = sae.cfg.model_name;
  const known = names.filter((n): n is string => typeof n === 'string' && n !== '');
  return !want || known.length === 0 || known.some((n) => modelKey(n) === modelKey(want));
}

/**
 * Hook entries that run the model through `sae` at `sae.cfg.hook_name`: pass them (with any
 * others) to `model.runWithHooks`. A transcoder reads `hook_name` and replaces `hook_name_out`
 * (which must come later in the forward pass). A per-head SAE (`hook_head_index`) replaces that
 * head's slice of a [..., n_heads, d_head] activation.
 */
export function attachSae(model: HookNamed, sae: Sae, options: AttachSaeOptions = {}): [string, HookFn][] {
  const inName = sae.cfg.hook_name;
  if (!inName) throw new Error(`attachSae: ${sae} has no hook_name; set one with sae.withConfig({ hook_name })`);
  const check = (name: string, field: string): void => {
    if (!model.hookNames.includes(name))
      throw new Error(`attachSae: the SAE's ${field} '${name}' is not a hook point of this model${suggest(name, model.hookNames)}`);
  };
  check(inName, 'hook_name');
  checkSaeModel(model, sae, options);
  if (sae.architecture.batchDependent)
    throw new Error(
      `attachSae: a ${sae.cfg.architecture} SAE picks its features across the whole batch; convert it with toInferenceSae first`,
    );
  const spec = runSpec(sae, { hooks: options.featureHooks, markGrad: options.markGrad, useErrorTerm: options.useErrorTerm }, `${inName}.`);
  const head = sae.cfg.hook_head_index;
  const headOut = sae.isTranscoder ? (sae.cfg.hook_head_index_out ?? null) : head;

  /** The SAE's view of an activation: the head's slice for per-head SAEs. */
  const view = (x: Tensor, h: number | null): Tensor => (h === null ? x : x.index([...Array<null>(x.rank - 2).fill(null), h]));
  const replace = (x: Tensor, h: number | null, y: Tensor): Tensor =>
    h === null ? y : x.set([...Array<null>(x.rank - 2).fill(null), h], y.unsqueeze(-2));

  if (!sae.isTranscoder) {
    return [[inName, (x) => replace(x, head, saeForward(sae, view(x, head), null, spec).output)]];
  }
  const outName = sae.cfg.hook_name_out;
  if (!outName) throw new Error(`attachSae: the transcoder ${sae} has no hook_name_out`);
  check(outName, 'hook_name_out');
  if (model.hookNames.indexOf(outName) <= model.hookNames.indexOf(inName))
    throw new Error(`attachSae: the transcoder's hook_name_out '${outName}' must come after its hook_name '${inName}' in the forward pass`);
  // The input hook keeps the (traced) input; the output hook replaces the output with the transcoder's.
  let input: Tensor | null = null;
  return [
    [
      inName,
      (x) => {
        input = view(x, head);
      },
    ],
    [
      outName,
      (y) => {
        if (!input) throw new Error(`attachSae: the transcoder's output hook '${outName}' ran before its input hook '${inName}'`);
        const x = input;
        input = null;
        return replace(y, headOut, saeForward(sae, x, view(y, headOut), spec).output);
      },
    ],
  ];
}

/** The spec [..., index] on the last axis (other axes whole). */
function lastAxis(t: Tensor, index: number): (number | null)[] {
  const d = t.shape[t.rank - 1]!;
  if (!Number.isInteger(index) || index < -d || index >= d) throw new Error(`feature index ${index} is out of range for ${d} features`);
  return [...Array<null>(t.rank - 1).fill(null), index];
}

/** A hook (for hook_sae_acts_post) setting feature `index` to `value` everywhere: 0 ablates it, a large value clamps it on. */
export function setFeature(index: number, value = 0): HookFn {
  return (acts) => acts.set(lastAxis(acts, index), value);
}

/** A hook zero-ablating feature `index` (setFeature(index, 0)). */
export function zeroFeature(index: number): HookFn {
  return setFeature(index, 0);
}

/** A hook multiplying feature `index` by `factor` (0 ablates; 2 doubles it where it fires). */
export function scaleFeature(index: number, factor: number): HookFn {
  return (acts) => {
    const spec = lastAxis(acts, index);
    return acts.set(spec, acts.slice(spec).mul(factor));
  };
}

/** A hook adding `amount` to feature `index` everywhere (steering along its decoder row). */
export function addToFeature(index: number, amount: number): HookFn {
  return (acts) => {
    const spec = lastAxis(acts, index);
    return acts.set(spec, acts.slice(spec).add(amount));
  };
}
