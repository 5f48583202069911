/**
 * Interventions on transcoder features: set, scale or zero any features at given positions, in
 * the local replacement model (frozen attention patterns and norm scales, frozen error nodes;
 * features recomputed from their live inputs, so an intervention propagates through every later
 * feature) or in the real model with the transcoders spliced in (everything live: each MLP output
 * becomes the true output plus the change the intervention makes to its reconstruction, so with
 * no intervention the model is unchanged, and generation works past the prompt). `verifyGraph`
 * checks a graph's claims by ablating its most influential features.
 */
import { Tensor, tensor } from '../tensor/index.js';
import type { HookedTransformer, HookList } from '../model/hooked.js';
import type { TracingTranscoders } from '../sae/clt/types.js';
import { frozenHooks, prepareReplacement, type ReplacementContext } from './replacement.js';
import { logitVectors } from './attribute.js';
import { nodeAt, nodeLayout, pruneGraph, type Graph } from './graph.js';

/** One change to one feature. */
export interface FeatureIntervention {
  layer: number;
  feature: number;
  /** Token positions (default every position, generated ones included). */
  positions?: readonly number[];
  /** 'set': activation := value; 'scale': activation *= value; 'zero': activation := 0. */
  op: 'set' | 'scale' | 'zero';
  value?: number;
}

export interface InterveneOptions {
  /** 'replacement' (default): the local replacement model; 'model': the real model with the transcoders spliced in. */
  mode?: 'replacement' | 'model';
  /** Greedy new tokens to generate ('model' mode only; default 0). */
  maxNewTokens?: number;
}

export interface InterveneResult {
  /** Logits with the interventions, [1, n_pos, d_vocab]. */
  logits: Tensor;
  /** The model's own logits on the prompt, [1, n_pos, d_vocab]. */
  cleanLogits: Tensor;
  /** The final norm's output at the last position, [d_model] (to read logit nodes, see verifyGraph). */
  finalNormalized: Float32Array;
  /** Greedy continuation (token ids) when `maxNewTokens` > 0. */
  generated?: number[];
}

function checkInterventions(tc: TracingTranscoders, nPos: number, ivs: readonly FeatureIntervention[]): void {
  ivs.forEach((iv, i) => {
    const at = `intervention ${i}`;
    if (!Number.isInteger(iv.layer) || iv.layer < 0 || iv.layer >= tc.nLayers)
      throw new Error(`${at}: layer ${iv.layer} is outside 0..${tc.nLayers - 1}`);
    const w = tc.widths[iv.layer]!;
    if (!Number.isInteger(iv.feature) || iv.feature < 0 || iv.feature >= w)
      throw new Error(`${at}: feature ${iv.feature} is outside 0..${w - 1} of layer ${iv.layer}`);
    for (const p of iv.positions ?? [])
      if (!Number.isInteger(p) || p < 0 || p >= nPos) throw new Error(`${at}: position ${p} is outside the prompt's 0..${nPos - 1}`);
    if (!['set', 'scale', 'zero'].includes(iv.op)) throw new Error(`${at}: op must be 'set', 'scale' or 'zero', got '${iv.op}'`);
    if (iv.op !== 'zero' && !Number.isFinite(iv.value)) throw new Error(`${at}: '${iv.op}' needs a finite value, got ${iv.value}`);
  });
}

/**
 * Applies the interventions of `layer` to its activations [B, pos, w]. Interventions at given
 * positions apply only to a run over the whole prompt (`pos` = nPos), not to decoding steps.
 */
function applyInterventions(acts: Tensor, layer: number, width: number, nPos: number, ivs: readonly FeatureIntervention[]): Tensor {
  const pos = acts.shape[1]!;
  for (const iv of ivs) {
    if (iv.layer !== layer) continue;
    if (iv.positions && pos !== nPos) continue;
    const m = new Float32Array(pos * width);
    for (let p = 0; p < pos; p++) if (!iv.positions || iv.positions.includes(p)) m[p * width + iv.feature] = 1;
    const mask = tensor(m, [1, pos, width]);
    const keep = mask.neg().add(1);
    if (iv.op === 'zero') acts = acts.mul(keep);
    else if (iv.op === 'scale') acts = acts.mul(mask.mul(iv.value! - 1).add(1));
    else acts = acts.mul(keep).add(mask.mul(iv.value!));
  }
  return acts;
}

/** The hooks splicing the transcoders (with interventions) into a run; see the module comment. */
function interventionHooks(ctx: ReplacementContext, ivs: readonly FeatureIntervention[], mode: 'replacement' | 'model'): HookList {
  const tc = ctx.transcoders;
  const L = tc.nLayers;
  const inputs: Tensor[] = [];
  const live: Tensor[] = [];
  const changed: Tensor[] = [];
  const hooks: HookList = [
    ...(mode === 'replacement' ? frozenHooks(ctx) : []),
    ...Array.from(
      { length: L },
      (_, l) =>
        [
          tc.inputHook(l),
          (x: Tensor) => {
            inputs[l] = x;
            live[l] = tc.encode(l, x);
            changed[l] = applyInterventions(live[l]!, l, tc.widths[l]!, ctx.nPos, ivs);
          },
        ] as const,
    ),
    ...Array.from(
      { length: L },
      (_, t) =>
        [
          tc.outputHook(t),
          (x: Tensor) => {
            if (mode === 'replacement') return tc.decode(t, changed, inputs[t]).add(ctx.errors[t]!.expand(x.shape));
            return x.add(tc.decode(t, changed, inputs[t]).sub(tc.decode(t, live, inputs[t])));
          },
        ] as const,
    ),
  ];
  return hooks;
}

/**
 * Runs `prompt` with `interventions` applied to the transcoder features (see the module comment
 * for the two modes). An empty list in 'replacement' mode is the replacement model itself, whose
 * logits equal the model's.
 */
export function intervene(
  model: HookedTransformer,
  prompt: string | readonly number[],
  transcoders: TracingTranscoders,
  interventions: readonly FeatureIntervention[],
  options: InterveneOptions = {},
  prepared?: ReplacementContext,
): InterveneResult {
  const tokens = typeof prompt === 'string' ? model.toTokens(prompt)[0]! : [...prompt];
  const ctx = prepared ?? prepareReplacement(model, tokens, transcoders);
  const mode = options.mode ?? 'replacement';
  if (mode !== 'replacement' && mode !== 'model') throw new Error(`intervene: mode must be 'replacement' or 'model', got '${mode}'`);
  checkInterventions(transcoders, ctx.nPos, interventions);
  const maxNew = options.maxNewTokens ?? 0;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`intervene: maxNewTokens must be a non-negative integer, got ${maxNew}`);
  if (maxNew > 0 && mode === 'replacement')
    throw new Error("intervene: generation needs mode 'model' (the replacement model's frozen attention covers the prompt only)");
  const toks = tensor([...ctx.tokens], [1, ctx.nPos], 'int64');
  const { logits, cache } = model.hooked(toks, { hooks: interventionHooks(ctx, interventions, mode), cache: ['ln_final.hook_normalized'] });
  const d = model.cfg.dModel;
  const finalNormalized = cache
    .get('ln_final.hook_normalized')
    .slice([0, ctx.nPos - 1])
    .reshape([d])
    .dataSync() as Float32Array;
  const out: InterveneResult = { logits, cleanLogits: ctx.logits, finalNormalized: Float32Array.from(finalNormalized) };
  if (maxNew > 0) {
    const gen = model.generate(toks, {
      maxNewTokens: maxNew,
      temperature: 0,
      stopAtEos: false,
      hooks: interventionHooks(ctx, interventions, mode),
    });
    out.generated = gen.newTokens[0]!;
  }
  return out;
}

export interface VerifyOptions {
  /** Features to ablate: the `topFeatures` most influential on the logits (default 5). */
  topFeatures?: number;
  /** The logit node checked, by rank (default 0, the most probable token). */
  logitRank?: number;
  mode?: 'replacement' | 'model';
}

export interface VerifyResult {
  /** The ablated features: (layer, pos, feature) and their influence. */
  features: { layer: number; pos: number; feature: number; influence: number }[];
  /** The target logit's token. */
  token: number;
  /**
   * The graph's prediction of the change in the target logit node (the demeaned pre-softcap
   * logit): each ablated feature's activation goes to 0 and the change flows along the graph's
   * edges, every other feature's activation changing as its pre-activation does (the linear
   * regime of its activation function).
   */
  predicted: number;
  /** The change measured by ablating the features (in `mode`). */
  actual: number;
}

/**
 * Checks a graph's claims: zeroes its most influential features at their positions and compares
 * the change of the target logit node with the graph's linear prediction (see VerifyResult).
 */
export function verifyGraph(
  model: HookedTransformer,
  transcoders: TracingTranscoders,
  g: Graph,
  options: VerifyOptions = {},
): VerifyResult {
  const layout = nodeLayout(g);
  const top = options.topFeatures ?? 5;
  const rank = options.logitRank ?? 0;
  if (!Number.isInteger(rank) || rank < 0 || rank >= layout.nLogits)
    throw new Error(`verifyGraph: logitRank ${rank} is outside 0..${layout.nLogits - 1}`);
  const { influence } = pruneGraph(g, { nodeThreshold: 1, edgeThreshold: 1 });
  const chosen = Array.from({ length: layout.nFeatures }, (_, i) => i)
    .sort((a, b) => influence[b]! - influence[a]! || a - b)
    .slice(0, top);
  const n = layout.n;
  // Relative change of each feature's activation, propagated in node order (features are sorted
  // by layer, and a feature's sources are in earlier layers).
  const rel = new Float64Array(n);
  const ablate = new Set(chosen);
  for (let i = 0; i < layout.nFeatures; i++) {
    if (ablate.has(i)) {
      rel[i] = -1;
      continue;
    }
    let dPre = 0;
    for (let s = 0; s < layout.nFeatures; s++) if (rel[s]) dPre += g.adjacency[i * n + s]! * rel[s]!;
    const node = nodeAt(g, i, layout);
    rel[i] = node.kind === 'feature' && node.activation !== 0 ? Math.max(dPre / node.activation, -1) : 0;
  }
  const target = layout.logitStart + rank;
  let predicted = 0;
  for (let s = 0; s < layout.nFeatures; s++) predicted += g.adjacency[target * n + s]! * rel[s]!;
  const features = chosen.map((i) => {
    const f = nodeAt(g, i, layout) as Extract<ReturnType<typeof nodeAt>, { kind: 'feature' }>;
    return { layer: f.layer, pos: f.pos, feature: f.feature, influence: influence[i]! };
  });
  const token = g.logitTokens[rank]!;
  const res = intervene(
    model,
    g.inputTokens,
    transcoders,
    features.map((f) => ({ layer: f.layer, feature: f.feature, positions: [f.pos], op: 'zero' as const })),
    { mode: options.mode ?? 'replacement' },
  );
  const { vectors, offsets } = logitVectors(model, [token]);
  let z = offsets[0]!;
  for (let c = 0; c < vectors[0]!.length; c++) z += vectors[0]![c]! * res.finalNormalized[c]!;
  return { features, token, predicted, actual: z - g.values[target]! };
}
