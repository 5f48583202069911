/**
 * Path patching (Wang et al. 2022, "Interpretability in the wild", the IOI paper; Goldowsky-Dill
 * et al. 2023): the effect of a sender component on the metric along the paths that enter
 * chosen receivers only. Implemented as TransformerLens / ARENA do, in two runs per sender:
 *
 *   run 1: the base prompt, with the sender's output (its slice of `attn.hook_z`, or
 *          `hook_mlp_out`) taken from the other prompt and every other head's output frozen to
 *          its base value (MLPs are recomputed unless `freezeMlps`, as in Wang et al., so paths
 *          through MLPs count as direct). The receivers' inputs are recorded: the per-head
 *          `attn.hook_q|k|v` (the head's input after W_Q / W_K / W_V) or the MLP's `hook_mlp_in`.
 *   run 2: the base prompt with only the receivers' inputs replaced by run 1's, everything else
 *          recomputed; the metric is read here. With the receiver 'logits' (the residual stream
 *          at the end: the sender's direct path), run 1's own logits are read.
 *
 * `direction: 'noising'` (default, as Wang et al.): the base is the clean prompt and the sender
 * carries its corrupted value. `'denoising'`: the base is the corrupted prompt and the sender
 * carries its clean value. Either way the result is normalised like activation patching,
 * (M - M(corrupted)) / (M(clean) - M(corrupted)): noising a path that carries the whole effect
 * gives 0 (no path: 1); denoising it gives 1 (no path: 0). Many senders share one forward pass
 * (each on its own stacked copy of the batch), as in the activation patching sweeps.
 */
import { Tensor, tensor, where } from '../tensor/index.js';
import type { HookFn, HookedTransformer } from '../model/hooked.js';
import { forwardPlan } from './memory.js';
import { checkHead, checkLayer } from './common.js';
import { preparePatching, type PatchingOptions, type PatchingProblem } from './patching.js';
import { repeatRows } from './attribution.js';
import { hookName } from '../model/hook-names.js';

/** A component that writes to the residual stream: an attention head or a layer's MLP. */
export type PathComponent = { layer: number; head: number } | { layer: number; mlp: true };

/**
 * A receiver: one input of a head (`head` indexes `hook_q`'s heads for 'q' and `hook_k` /
 * `hook_v`'s heads for 'k' / 'v', the KV heads under grouped-query attention), or a layer's MLP input.
 */
export type PathReceiver = { layer: number; head: number; input: 'q' | 'k' | 'v' } | { layer: number; mlp: true };

export interface PathPatchingOptions extends PatchingOptions {
  /** 'noising' (default; Wang et al.): clean base, corrupted sender. 'denoising': corrupted base, clean sender. */
  direction?: 'noising' | 'denoising';
  /** Freeze MLP outputs to their base values in run 1 too (default false: recomputed, as Wang et al.). */
  freezeMlps?: boolean;
}

function isMlp(c: PathComponent | PathReceiver): c is { layer: number; mlp: true } {
  return 'mlp' in c && c.mlp === true;
}

/**
 * Path patching of each sender (one component, or several patched together) along the paths into
 * `receivers` (a list of head / MLP inputs) or into 'logits'; returns the normalised metric per
 * sender (see the module comment).
 */
export function pathPatching(
  model: HookedTransformer,
  problem: PatchingProblem,
  senders: readonly (PathComponent | readonly PathComponent[])[],
  receivers: readonly PathReceiver[] | 'logits',
  options: PathPatchingOptions = {},
): number[] {
  const { cfg } = model;
  const { nLayers: L, nHeads: H, nKVHeads: KV } = cfg;
  const hasMlp = !cfg.attnOnly;
  const what = 'path patching';
  const senderLists = senders.map((s) => (Array.isArray(s) ? (s as readonly PathComponent[]) : [s as PathComponent]));
  for (const list of senderLists)
    for (const c of list) {
      checkLayer(model, c.layer, `${what} sender`);
      if (isMlp(c)) {
        if (!hasMlp) throw new Error(`${what}: this model has no MLPs`);
      } else checkHead(model, c.head, `${what} sender`);
    }

  // Receivers grouped by hook point: which heads of it (null: all of hook_mlp_in).
  const recv = new Map<string, boolean[] | null>();
  if (receivers !== 'logits') {
    if (receivers.length === 0) throw new Error(`${what}: no receivers`);
    for (const r of receivers) {
      checkLayer(model, r.layer, `${what} receiver`);
      if (isMlp(r)) {
        if (!hasMlp) throw new Error(`${what}: this model has no MLPs`);
        recv.set(hookName('mlp_in', r.layer), null);
        continue;
      }
      if (r.input !== 'q' && r.input !== 'k' && r.input !== 'v') throw new Error(`${what}: receiver input must be 'q', 'k' or 'v'`);
      const n = r.input === 'q' ? H : KV;
      if (!Number.isInteger(r.head) || r.head < 0 || r.head >= n)
        throw new Error(`${what}: receiver head ${r.head} is out of range for hook_${r.input} (${n} heads)`);
      const hook = `blocks.${r.layer}.attn.hook_${r.input}`;
      const m = recv.get(hook) ?? new Array<boolean>(n).fill(false);
      m[r.head] = true;
      recv.set(hook, m);
    }
  }

  const zHook = (l: number) => hookName('z', l);
  const mlpHook = (l: number) => hookName('mlp_out', l);
  const layers = Array.from({ length: L }, (_, l) => l);
  const names = [...layers.map(zHook), ...(hasMlp ? layers.map(mlpHook) : [])];
  const prep = preparePatching(model, problem, names);
  const run = prep.attentionMask ? { attentionMask: prep.attentionMask } : {};
  const corrCache = model.runWithCache(prep.corruptedTokens, { names, ...run }).cache;
  const noising = (options.direction ?? 'noising') === 'noising';
  if (options.direction !== undefined && options.direction !== 'noising' && options.direction !== 'denoising')
    throw new Error(`${what}: direction must be 'noising' or 'denoising'`);
  const baseTokens = noising ? prep.cleanTokens : prep.corruptedTokens;
  const baseCache = noising ? prep.cleanCache : corrCache;
  const srcCache = noising ? corrCache : prep.cleanCache;

  const [b, s] = baseTokens.shape as [number, number];
  // Up to two forward passes per chunk, one after the other: the forward estimate holds.
  const k = forwardPlan(model.cfg, b, s, senderLists.length, options).size;
  const tiled = repeatRows(baseTokens, k);
  const tiledMask = run.attentionMask ? { attentionMask: repeatRows(maskInt(run.attentionMask), k) } : {};
  const freeze = options.freezeMlps ?? false;
  const out: number[] = [];

  for (let start = 0; start < senderLists.length; start += k) {
    const chunk = senderLists.slice(start, start + k);
    const real = chunk.length;
    // Per layer: which (copy, head) take the sender value, and which copies' MLP does.
    const zMask = layers.map(() => new Uint8Array(k * H));
    const mMask = layers.map(() => new Uint8Array(k));
    chunk.forEach((list, i) => {
      for (const c of list) {
        if (isMlp(c)) mMask[c.layer]![i] = 1;
        else zMask[c.layer]![i * H + c.head] = 1;
      }
    });
    const hooks1: [string, HookFn][] = [];
    for (const l of layers) {
      const zm = tensor(zMask[l]!, [k, 1, 1, H, 1], 'bool');
      const src = srcCache.get(zHook(l)).unsqueeze(0); // [1, batch, pos, head, d_head]
      const base = baseCache.get(zHook(l)).unsqueeze(0);
      // Every head frozen to its base value, the senders to their other-prompt value.
      hooks1.push([zHook(l), (x) => where(zm, src, base).reshape(x.shape)]);
      if (hasMlp && (freeze || mMask[l]!.some((v) => v))) {
        const mm = tensor(mMask[l]!, [k, 1, 1, 1], 'bool');
        const msrc = srcCache.get(mlpHook(l)).unsqueeze(0);
        const mbase = baseCache.get(mlpHook(l)).unsqueeze(0);
        hooks1.push([mlpHook(l), (x) => where(mm, msrc, freeze ? mbase : x.reshape([k, b, ...x.shape.slice(1)])).reshape(x.shape)]);
      }
    }
    let logits: Tensor;
    if (receivers === 'logits') {
      logits = model.runWithHooks(tiled, { hooks: hooks1, ...tiledMask });
    } else {
      const r1 = model.hooked(tiled, { hooks: hooks1, cache: [...recv.keys()], ...tiledMask });
      const hooks2: [string, HookFn][] = [...recv].map(([hook, heads]) => {
        const v = r1.cache.get(hook);
        if (!heads) return [hook, () => v];
        const hm = tensor(
          Uint8Array.from(heads, (x) => (x ? 1 : 0)),
          [1, 1, heads.length, 1],
          'bool',
        );
        return [hook, (x: Tensor) => where(hm, v, x)];
      });
      logits = model.runWithHooks(tiled, { hooks: hooks2, ...tiledMask });
    }
    out.push(...prep.evaluate(logits, k).slice(0, real).map(prep.normalise));
  }
  return out;
}

function maskInt(mask: NonNullable<PatchingProblem['attentionMask']>): Tensor {
  return mask instanceof Tensor ? mask.cast('int64') : tensor(mask.flat(), [mask.length, mask[0]?.length ?? 0], 'int64');
}

/**
 * Path patching from every head (one at a time) into `receivers` (or 'logits'): [n_layers,
 * n_heads] normalised values. Heads at or after the receivers' layer have no path and read as the
 * base value (1 when noising, 0 when denoising).
 */
export function pathPatchingSweep(
  model: HookedTransformer,
  problem: PatchingProblem,
  receivers: readonly PathReceiver[] | 'logits',
  options: PathPatchingOptions = {},
): Tensor {
  const { nLayers: L, nHeads: H } = model.cfg;
  const senders: PathComponent[] = [];
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) senders.push({ layer: l, head: h });
  return tensor(pathPatching(model, problem, senders, receivers, options), [L, H]);
}
