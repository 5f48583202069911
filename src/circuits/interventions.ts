/**
 * Interventions on transcoder features: set, scale or zero any features at given positions, in
 * the local replacement model (frozen attention patterns and norm scales, frozen error nodes;
 * features recomputed from their live inputs, so an intervention propagates through every later
 * feature) or in the real model with the transcoders spliced in (everything live: each MLP output
 * becomes the true output plus the change the intervention makes to its reconstruction, so with
 * no intervention the model is unchanged, and generation works past the prompt). In the real
 * model, `freeze` holds the clean run's attention patterns and / or norm scales fixed while the
 * features change (circuit-tracer's `feature_intervention` freezes attention by default), which
 * separates the graph's linear claims from attention and norms moving. `verifyGraph` (one check)
 * and `graphVerifier` (many checks of one graph, its influence and clean run computed once)
 * test a graph's claims by ablating its most influential features.
 */
import { Tensor, tensor } from '../tensor/index.js';
import type { HookedTransformer, HookList } from '../model/hooked.js';
import type { TracingTranscoders } from '../sae/clt/types.js';
import { frozenHooks, prepareReplacement, type FreezeSelection, type ReplacementContext } from './replacement.js';
import { logitVectors } from './attribute.js';
import { computeInfluence, featureNodeIndex, logitWeights, nodeAt, nodeLayout, normalizeAdjacency, type Graph } from './graph.js';

/**
 * What the real model ('model' mode) holds at the clean run's values while features change.
 * All three is the replacement model: with the error nodes frozen, each MLP's output is its
 * transcoder's reconstruction plus the clean error, as there.
 */
export interface InterventionFreeze extends FreezeSelection {
  /** Each MLP's error (true output minus reconstruction) stays the clean run's, so the true MLP's own response drops out. */
  errors?: boolean;
}

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
  /**
   * 'model' mode only: hold the clean run's attention patterns, norm scales and / or MLP error
   * terms fixed while the features change (default: none; all three is the replacement model).
   * Covers the prompt only, so no generation with it.
   */
  freeze?: InterventionFreeze;
  /** Greedy new tokens to generate ('model' mode only; default 0). */
  maxNewTokens?: number;
  /** Hook points whose values in the intervened run come back in `cached` (e.g. attention patterns). */
  cache?: readonly string[];
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
  /** The values at the `cache` hook points in the intervened run, by name. */
  cached: Map<string, Tensor>;
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
function interventionHooks(
  ctx: ReplacementContext,
  ivs: readonly FeatureIntervention[],
  mode: 'replacement' | 'model',
  freeze: InterventionFreeze = {},
): HookList {
  const tc = ctx.transcoders;
  const L = tc.nLayers;
  const inputs: Tensor[] = [];
  const live: Tensor[] = [];
  const changed: Tensor[] = [];
  const hooks: HookList = [
    ...(mode === 'replacement' ? frozenHooks(ctx) : frozenHooks(ctx, freeze)),
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
            if (mode === 'replacement' || freeze.errors) return tc.decode(t, changed, inputs[t]).add(ctx.errors[t]!.expand(x.shape));
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
  const freeze = options.freeze ?? {};
  for (const key of Object.keys(freeze))
    if (key !== 'attention' && key !== 'norms' && key !== 'errors')
      throw new Error(`intervene: freeze.${key} is not an option (freeze.attention, freeze.norms, freeze.errors)`);
  const freezing = freeze.attention === true || freeze.norms === true || freeze.errors === true;
  if (freezing && mode !== 'model')
    throw new Error("intervene: freeze applies to mode 'model' (the replacement model already freezes attention, norms and errors)");
  if (freezing && maxNew > 0)
    throw new Error('intervene: generation with frozen attention or norms is not supported (the frozen values cover the prompt only)');
  const extra = options.cache ?? [];
  const toks = tensor([...ctx.tokens], [1, ctx.nPos], 'int64');
  const { logits, cache } = model.hooked(toks, {
    hooks: interventionHooks(ctx, interventions, mode, freeze),
    cache: [...new Set(['ln_final.hook_normalized', ...extra])],
  });
  const d = model.cfg.dModel;
  const finalNormalized = cache
    .get('ln_final.hook_normalized')
    .slice([0, ctx.nPos - 1])
    .reshape([d])
    .dataSync() as Float32Array;
  const out: InterveneResult = {
    logits,
    cleanLogits: ctx.logits,
    finalNormalized: Float32Array.from(finalNormalized),
    cached: new Map(extra.map((name) => [name, cache.get(name)] as const)),
  };
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
  /** 'model' mode: the clean values held fixed during the ablation (see InterveneOptions.freeze). */
  freeze?: InterventionFreeze;
  /** Features at these positions are never chosen (e.g. [0]: leave the BOS's features alone). */
  excludePositions?: readonly number[];
  /** Ablate exactly these feature nodes of the graph instead of the most influential ones. */
  features?: readonly { layer: number; pos: number; feature: number }[];
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

export interface GraphVerifierOptions {
  /**
   * Each node's influence on the logits, [n] (e.g. `pruneGraph(g).influence`, which does not
   * depend on the thresholds); computed once here when absent.
   */
  influence?: Float64Array;
  /** The prompt's clean run (`prepareReplacement`), reused by every check; made once here when absent. */
  prepared?: ReplacementContext;
}

/**
 * Checks of one graph's claims, many at a time: returns a function that zeroes the graph's most
 * influential features at their positions and compares the change of the target logit node with
 * the graph's linear prediction (see VerifyResult). Phases:
 * 1. once: node influence on the logits (unless given), the features ranked by it, the clean run;
 * 2. per check: the chosen features (top k, less any at `excludePositions`); the prediction, by
 *    propagating each feature's relative change in node order; the measured change, one run.
 */
export function graphVerifier(
  model: HookedTransformer,
  transcoders: TracingTranscoders,
  g: Graph,
  options: GraphVerifierOptions = {},
): (check?: VerifyOptions) => VerifyResult {
  // 1. Once per graph.
  const layout = nodeLayout(g);
  const n = layout.n;
  const influence = options.influence ?? computeInfluence(normalizeAdjacency(g.adjacency, n), n, logitWeights(g, layout));
  if (influence.length !== n) throw new Error(`graphVerifier: influence has ${influence.length} entries; the graph has ${n} nodes`);
  const ranked = Array.from({ length: layout.nFeatures }, (_, i) => i).sort((a, b) => influence[b]! - influence[a]! || a - b);
  const nodes = Array.from(
    { length: layout.nFeatures },
    (_, i) => nodeAt(g, i, layout) as Extract<ReturnType<typeof nodeAt>, { kind: 'feature' }>,
  );
  const ctx = options.prepared ?? prepareReplacement(model, g.inputTokens, transcoders);
  if (ctx.tokens.length !== g.inputTokens.length || ctx.tokens.some((t, i) => t !== g.inputTokens[i]))
    throw new Error("graphVerifier: the prepared run's prompt is not the graph's prompt");

  // 2. Per check.
  return (check = {}) => {
    const top = check.topFeatures ?? 5;
    if (!Number.isInteger(top) || top < 0) throw new Error(`verifyGraph: topFeatures must be a non-negative integer, got ${top}`);
    const rank = check.logitRank ?? 0;
    if (!Number.isInteger(rank) || rank < 0 || rank >= layout.nLogits)
      throw new Error(`verifyGraph: logitRank ${rank} is outside 0..${layout.nLogits - 1}`);
    const excluded = new Set(check.excludePositions ?? []);
    for (const p of excluded)
      if (!Number.isInteger(p) || p < 0 || p >= layout.nPos)
        throw new Error(`verifyGraph: excludePositions has ${p}, outside the prompt's 0..${layout.nPos - 1}`);
    const chosen = check.features
      ? check.features.map((f, j) => {
          const i = featureNodeIndex(g, f.layer, f.pos, f.feature);
          if (i < 0)
            throw new Error(
              `verifyGraph: features[${j}] (layer ${f.layer}, position ${f.pos}, feature ${f.feature}) is not a node of the graph`,
            );
          return i;
        })
      : ranked.filter((i) => !excluded.has(nodes[i]!.pos)).slice(0, top);
    // Relative change of each feature's activation, propagated in node order (features are sorted
    // by layer, and a feature's sources are in earlier layers).
    const rel = new Float64Array(n);
    const ablate = new Set(chosen);
    const changed: number[] = [];
    for (let i = 0; i < layout.nFeatures; i++) {
      if (ablate.has(i)) {
        rel[i] = -1;
        changed.push(i);
        continue;
      }
      let dPre = 0;
      for (const s of changed) dPre += g.adjacency[i * n + s]! * rel[s]!;
      const activation = nodes[i]!.activation;
      rel[i] = activation !== 0 ? Math.max(dPre / activation, -1) : 0;
      if (rel[i]) changed.push(i);
    }
    const target = layout.logitStart + rank;
    let predicted = 0;
    for (const s of changed) predicted += g.adjacency[target * n + s]! * rel[s]!;
    const features = chosen.map((i) => {
      const f = nodes[i]!;
      return { layer: f.layer, pos: f.pos, feature: f.feature, influence: influence[i]! };
    });
    const token = g.logitTokens[rank]!;
    const res = intervene(
      model,
      g.inputTokens,
      transcoders,
      features.map((f) => ({ layer: f.layer, feature: f.feature, positions: [f.pos], op: 'zero' as const })),
      { mode: check.mode ?? 'replacement', ...(check.freeze ? { freeze: check.freeze } : {}) },
      ctx,
    );
    const { vectors, offsets } = logitVectors(model, [token]);
    let z = offsets[0]!;
    for (let c = 0; c < vectors[0]!.length; c++) z += vectors[0]![c]! * res.finalNormalized[c]!;
    return { features, token, predicted, actual: z - g.values[target]! };
  };
}

/**
 * Checks a graph's claims: zeroes its most influential features at their positions and compares
 * the change of the target logit node with the graph's linear prediction (see VerifyResult). For
 * several checks of one graph, `graphVerifier` computes the influence and the clean run once.
 */
export function verifyGraph(
  model: HookedTransformer,
  transcoders: TracingTranscoders,
  g: Graph,
  options: VerifyOptions = {},
): VerifyResult {
  return graphVerifier(model, transcoders, g)(options);
}
