/**
 * SAE evaluation (SAELens's evals, streamed): runs a model over batches of token contexts and
 * measures, at the SAE's hook point,
 *
 * - sparsity: L0 (mean active features per token), L1, dead features (never fired over the
 *   evaluation tokens), dense features (firing density above a threshold, 10% by default) and a
 *   histogram of log10 feature density;
 * - reconstruction: MSE, explained variance (1 - FVU), cosine similarity of the reconstruction
 *   with the input, L2 norms and their ratio, the relative reconstruction bias;
 * - model performance: next-token cross-entropy with the activation as it is (clean), replaced by
 *   the SAE's reconstruction (no error term), and replaced by zeros, and the CE-loss-recovered
 *   score `(CE_zero - CE_sae) / (CE_zero - CE_clean)`; the same for the KL divergence from the
 *   clean next-token distribution, `(KL_zero - KL_sae) / KL_zero` (KL_clean is 0).
 *
 * A transcoder reads `hook_name` and is compared with the activation at `hook_name_out`, which its
 * reconstruction (or zeros) replaces. Per-head SAEs (`hook_head_index`) see, and replace, that
 * head's slice.
 *
 * Definitions (tokens are the evaluated positions, special tokens left out by default):
 * - `explainedVariance` = 1 - Σ‖x - x̂‖² / Σ‖x - μ‖², μ the mean activation over all evaluated
 *   tokens (the variance is merged across batches with Chan's parallel update, in float64);
 *   an SAE that outputs μ everywhere scores 0, one that outputs zeros scores 1 - Σ‖x‖²/Σ‖x - μ‖².
 * - `mse` = Σ‖x - x̂‖² / (tokens · d); `squaredErrorPerToken` = Σ‖x - x̂‖² / tokens (SAELens's mse_loss).
 * - `cosineSimilarity`: mean over tokens of x·x̂ / max(‖x‖‖x̂‖, 1e-8).
 * - `relativeReconstructionBias` = E[‖x̂‖²] / E[x·x̂] (1 when the reconstruction is not shrunk).
 * - CE and KL are averaged over every predicted position of every batch before the scores are
 *   formed (not per batch). A score whose denominator is 0 is null.
 */
import type { HookedTransformer } from '../model/hooked.js';
import { nextTokenLoss } from '../model/hooked.js';
import { jit, tensor, type Tensor } from '../tensor/index.js';
import { attachSae } from './attach.js';
import { refuseNonFiniteParams } from './common.js';
import { runSae, type Sae } from './sae.js';
import { contextBatches, planContexts, specialTokenIds, type ContextBatch, type TokenSource } from './contexts.js';

/** Options of `evaluateSae`. */
export interface EvaluateSaeOptions {
  /** Batches to evaluate (default 16; fewer when the source runs out). */
  batches?: number;
  /** Contexts per batch (default 8). */
  batchSize?: number;
  /** Tokens per context, BOS included (default: the SAE's context_size, else 128; at most the model's context). */
  contextSize?: number;
  /** Start each context with the model's BOS token (default: the SAE's prepend_bos when the model has a BOS token). */
  prependBos?: boolean;
  /**
   * Leave positions holding special tokens out of the sparsity and reconstruction metrics (their
   * activations are usually outliers): true (default) for the model's BOS, EOS and padding ids,
   * false for none, or a list of ids. CE and KL always use every position.
   */
  excludeSpecial?: boolean | readonly number[];
  /** Features firing on more than this fraction of tokens count as dense (default 0.1). */
  denseThreshold?: number;
  /** The log10-density histogram's range and bins (default -8 to 0 in 32 bins). */
  densityHistogram?: { min?: number; max?: number; bins?: number };
  /** Include each feature's firing density (d_sae numbers) in the report. */
  perFeature?: boolean;
  /** Skip the three model passes for CE / KL (sparsity and reconstruction only). */
  skipModelPerformance?: boolean;
  /** Names the token source in the report. */
  description?: string;
  /** Called after each batch with the batches done and the total. */
  onBatch?: (done: number, total: number) => void;
  /** Evaluate even when the SAE's cfg.json names another model (see `checkSaeModel`). */
  allowModelMismatch?: boolean;
}

/** What `evaluateSae` returns (plain JSON: NaN never appears, undefined scores are null). */
export interface SaeEvalReport {
  format: 'glassbox-sae-eval';
  version: 1;
  sae: {
    architecture: string;
    hookName: string;
    hookNameOut: string | null;
    hookHeadIndex: number | null;
    dIn: number;
    dSae: number;
    dOut: number;
    transcoder: boolean;
  };
  data: {
    description: string;
    contexts: number;
    contextSize: number;
    prependBos: boolean;
    /** Positions run through the model. */
    tokens: number;
    /** Positions the sparsity and reconstruction metrics count (special tokens left out). */
    tokensCounted: number;
    excludedTokenIds: number[];
  };
  sparsity: {
    l0: number;
    l1: number;
    deadFeatures: number;
    deadFraction: number;
    denseFeatures: number;
    denseFraction: number;
    denseThreshold: number;
    /** Live features by log10 firing density: counts[i] in [edges[i], edges[i+1]) (the ends clamp); dead features apart. */
    densityHistogram: { log10Edges: number[]; counts: number[]; dead: number };
    /** With `perFeature`: each feature's firing density over the counted tokens. */
    featureDensity?: number[];
  };
  reconstruction: {
    mse: number;
    squaredErrorPerToken: number;
    explainedVariance: number | null;
    fvu: number | null;
    cosineSimilarity: number;
    l2NormIn: number;
    l2NormOut: number;
    l2Ratio: number | null;
    relativeReconstructionBias: number | null;
  };
  modelPerformance: {
    ceLossClean: number;
    ceLossWithSae: number;
    ceLossWithAblation: number;
    /** (CE_zero - CE_sae) / (CE_zero - CE_clean): 1 when splicing the SAE in costs nothing, 0 when it is as bad as zeros. */
    ceLossScore: number | null;
    /** CE_sae - CE_clean. */
    ceLossDelta: number;
    klDivWithSae: number;
    klDivWithAblation: number;
    /** (KL_zero - KL_sae) / KL_zero. */
    klDivScore: number | null;
  } | null;
}

/** Running sums over the evaluated tokens, in float64. */
class Accumulator {
  tokens = 0;
  counted = 0;
  sqErr = 0;
  sqIn = 0;
  sqOut = 0;
  dot = 0;
  cos = 0;
  normIn = 0;
  normOut = 0;
  l0 = 0;
  l1 = 0;
  // Chan's parallel variance: count, mean [d], M2 (summed over dims).
  mean: Float64Array;
  m2 = 0;
  fires: Float64Array;
  ceClean = 0;
  ceSae = 0;
  ceZero = 0;
  predicted = 0;
  klSae = 0;
  klZero = 0;
  klPositions = 0;
  constructor(d: number, dSae: number) {
    this.mean = new Float64Array(d);
    this.fires = new Float64Array(dSae);
  }
}

/** The scalar sums `reconstructionSums` and `performanceSums` give, added into the accumulator's fields of the same names. */
const RECONSTRUCTION_SUMS = ['sqErr', 'sqIn', 'sqOut', 'dot', 'cos', 'normIn', 'normOut', 'l0', 'l1'] as const;
const PERFORMANCE_SUMS = ['ceClean', 'ceSae', 'ceZero', 'klSae', 'klZero'] as const;

const vec = (t: Tensor): Float32Array => t.cast('float32').dataSync() as Float32Array;
const num = (t: Tensor): number => vec(t)[0]!;
const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Per-batch reconstruction sums: x, x̂ [N, d], acts [N, d_sae], mask [N] (1 = counted). */
const reconstructionSums = jit((x: Tensor, xhat: Tensor, acts: Tensor, mask: Tensor, counted: Tensor) => {
  const m = mask.unsqueeze(1);
  const err = x.sub(xhat).square().sum(-1);
  const sqIn = x.square().sum(-1);
  const sqOut = xhat.square().sum(-1);
  const dot = x.mul(xhat).sum(-1);
  const normIn = sqIn.sqrt();
  const normOut = sqOut.sqrt();
  const cos = dot.div(normIn.mul(normOut).maximum(1e-8));
  const fired = acts.gt(0).cast('float32').mul(m);
  const batchMean = x.mul(m).sum(0).div(counted);
  const m2 = x.sub(batchMean).square().sum(-1).mul(mask).sum();
  const masked = (t: Tensor): Tensor => t.mul(mask).sum();
  return {
    sqErr: masked(err),
    sqIn: masked(sqIn),
    sqOut: masked(sqOut),
    dot: masked(dot),
    cos: masked(cos),
    normIn: masked(normIn),
    normOut: masked(normOut),
    l0: fired.sum(),
    l1: acts.abs().mul(m).sum(),
    fires: fired.sum(0),
    batchMean,
    m2,
  };
});

/** Per-batch CE and KL sums from the clean, spliced and ablated logits [b, s, vocab]. */
const performanceSums = jit((clean: Tensor, sae: Tensor, zero: Tensor, tokens: Tensor) => {
  const ce = (l: Tensor): Tensor => nextTokenLoss(l, tokens, null, true).sum();
  const lpClean = clean.logSoftmax(-1);
  const pClean = lpClean.exp();
  const kl = (l: Tensor): Tensor => pClean.mul(lpClean.sub(l.logSoftmax(-1))).sum();
  return { ceClean: ce(clean), ceSae: ce(sae), ceZero: ce(zero), klSae: kl(sae), klZero: kl(zero) };
});

/** The activation's slice a per-head SAE sees ([..., n_heads, d] -> [..., d]); the whole activation otherwise. */
function headView(x: Tensor, head: number | null | undefined): Tensor {
  return head === null || head === undefined ? x : x.index([...Array<null>(x.rank - 2).fill(null), head]);
}

/** The hook point (and head) an SAE's output replaces, and the activation it is compared with. */
export function saeOutputPoint(sae: Sae): { name: string; head: number | null } {
  if (sae.isTranscoder) {
    if (!sae.cfg.hook_name_out) throw new Error(`${sae}: a transcoder needs hook_name_out (the activation it reconstructs)`);
    return { name: sae.cfg.hook_name_out, head: sae.cfg.hook_head_index_out ?? null };
  }
  if (!sae.cfg.hook_name) throw new Error(`${sae}: no hook_name; set one with sae.withConfig({ hook_name })`);
  return { name: sae.cfg.hook_name, head: sae.cfg.hook_head_index ?? null };
}

/** What one batch of an SAE run over a model gives: input, target and output [N, d], feature activations [N, d_sae]. */
export interface SaeBatchActivations {
  /** The SAE's input [N, d_in] (N = rows * contextSize, row-major). */
  input: Tensor;
  /** What the output is compared with [N, d_out]: the input for SAEs, the output hook's activation for transcoders. */
  target: Tensor;
  /** The SAE's output [N, d_out]. */
  output: Tensor;
  /** Feature activations [N, d_sae]. */
  acts: Tensor;
  /** The model's clean logits [rows, contextSize, vocab]. */
  logits: Tensor;
}

/**
 * Runs the model on a batch with its activations cached at the SAE's hook point(s), then the SAE
 * on them (no error term): the building block of evaluation and feature collection.
 */
export function runSaeOnBatch(model: HookedTransformer, sae: Sae, tokens: Tensor): SaeBatchActivations {
  const inName = sae.cfg.hook_name;
  if (!inName) throw new Error(`${sae}: no hook_name; set one with sae.withConfig({ hook_name })`);
  checkUsable(model, sae);
  const out = saeOutputPoint(sae);
  const names = sae.isTranscoder ? [inName, out.name] : [inName];
  const { logits, cache } = model.runWithCache(tokens, { names });
  const input = headView(cache.get(inName), sae.cfg.hook_head_index);
  const target = sae.isTranscoder ? headView(cache.get(out.name), out.head) : input;
  const positions = tokens.shape[0]! * tokens.shape[1]!;
  for (const [what, t, d] of [
    ['input', input, sae.dIn],
    ['target', target, sae.dOut],
  ] as const)
    if (t.size !== positions * d)
      throw new Error(
        `${sae}: its ${what} activation has shape [${t.shape}], not one vector of ${d} per token (${positions} tokens); set hook_head_index for per-head hook points`,
      );
  const run = runSae(sae, input, { cache: ['hook_sae_acts_post'] });
  const flat = (t: Tensor, d: number): Tensor => t.reshape([-1, d]);
  return {
    input: flat(input, sae.dIn),
    target: flat(target, sae.dOut),
    output: flat(run.output, sae.dOut),
    acts: flat(run.cache.get('hook_sae_acts_post'), sae.dSae),
    logits,
  };
}

/** Refuses SAEs that cannot run one token at a time, or that do not fit the model, with the reason. */
function checkUsable(model: HookedTransformer, sae: Sae): void {
  if (sae.architecture.batchDependent)
    throw new Error(`${sae}: a ${sae.cfg.architecture} SAE picks features across the batch; convert it with toInferenceSae first`);
  for (const name of [sae.cfg.hook_name, sae.isTranscoder ? sae.cfg.hook_name_out : null])
    if (name && !model.hookNames.includes(name)) throw new Error(`${sae}: '${name}' is not a hook point of this model`);
}

/** The default context size: the SAE's, else 128, at most the model's context (unless it allows long contexts). */
export function defaultContextSize(model: HookedTransformer, sae: Sae, requested?: number): number {
  const want = requested ?? sae.cfg.context_size ?? 128;
  return model.cfg.positional === 'learned' || !model.allowLongContext ? Math.min(want, model.cfg.nCtx) : want;
}

/** Whether contexts start with BOS by default: the SAE's prepend_bos, when the model has a BOS token. */
export function defaultPrependBos(model: HookedTransformer, sae: Sae, requested?: boolean): boolean {
  return requested ?? (sae.cfg.prepend_bos && model.cfg.bosTokenId !== null);
}

/** The special-token mask of a batch [N]: 1 where the position is counted. */
function countedMask(batch: ContextBatch, excluded: ReadonlySet<number>): { mask: Float32Array; counted: number } {
  const mask = new Float32Array(batch.ids.length);
  let counted = 0;
  for (let i = 0; i < mask.length; i++)
    if (!excluded.has(batch.ids[i]!)) {
      mask[i] = 1;
      counted++;
    }
  return { mask, counted };
}

/**
 * Evaluates `sae` on `model` over batches of contexts from `tokens` (see the file comment for the
 * metrics and their definitions). Streams: one batch of activations is held at a time.
 * 1. plan the contexts (`planContexts`: the SAE's context size and BOS handling by default);
 * 2. per batch, run the model to the SAE's hook point(s) and the SAE (`runSaeOnBatch`), and sum
 *    the reconstruction and sparsity terms over the counted positions (special tokens left out),
 *    merging the batch's mean and variance into the running ones (Chan et al.);
 * 3. per batch, unless skipModelPerformance, run the model again with the SAE spliced in and with
 *    the activation zeroed, and sum the next-token CE of the three runs and the KL of the last two
 *    from the clean one;
 * 4. turn the sums into the report (`report`): per-token means, scores, the density histogram.
 */
export function evaluateSae(model: HookedTransformer, sae: Sae, tokens: TokenSource, options: EvaluateSaeOptions = {}): SaeEvalReport {
  checkUsable(model, sae);
  refuseNonFiniteParams(sae.params, 'evaluateSae');
  const inName = sae.cfg.hook_name!;
  const outPoint = saeOutputPoint(sae);
  const plan = planContexts(tokens, {
    contextSize: defaultContextSize(model, sae, options.contextSize),
    batchSize: options.batchSize ?? 8,
    batches: options.batches ?? 16,
    prependBos: defaultPrependBos(model, sae, options.prependBos),
    bosTokenId: model.cfg.bosTokenId,
    ...(options.description !== undefined ? { description: options.description } : {}),
  });
  const excluded = specialTokenIds(model, options.excludeSpecial ?? true);
  const denseThreshold = options.denseThreshold ?? 0.1;
  const acc = new Accumulator(sae.dOut, sae.dSae);
  const splice = attachSae(model, sae, { allowModelMismatch: options.allowModelMismatch ?? false });
  const zeroHook: [string, (x: Tensor) => Tensor] = [
    outPoint.name,
    (x) => (outPoint.head === null ? x.mul(0) : x.set([...Array<null>(x.rank - 2).fill(null), outPoint.head], 0)),
  ];
  const totalBatches = Math.ceil(plan.contexts / plan.batchSize);
  let done = 0;
  for (const batch of contextBatches(plan)) {
    const run = runSaeOnBatch(model, sae, batch.tokens);
    const { mask, counted } = countedMask(batch, excluded);
    acc.tokens += batch.ids.length;
    if (counted > 0) {
      const s = reconstructionSums(run.target, run.output, run.acts, tensor(mask, [mask.length]), tensor([counted]));
      for (const k of RECONSTRUCTION_SUMS) acc[k] += num(s[k]);
      const fires = vec(s.fires);
      for (let f = 0; f < fires.length; f++) acc.fires[f]! += fires[f]!;
      // Chan et al.: merge (n_a, mean_a, M2_a) with the batch's (n_b, mean_b, M2_b).
      const bm = vec(s.batchMean);
      const na = acc.counted;
      const nb = counted;
      const n = na + nb;
      let shift = 0;
      for (let j = 0; j < bm.length; j++) {
        const delta = bm[j]! - acc.mean[j]!;
        shift += delta * delta;
        acc.mean[j]! += (delta * nb) / n;
      }
      acc.m2 += num(s.m2) + (shift * na * nb) / n;
      acc.counted = n;
    }
    if (!options.skipModelPerformance) {
      const spliced = model.runWithHooks(batch.tokens, { hooks: splice });
      const zeroed = model.runWithHooks(batch.tokens, { hooks: [zeroHook] });
      const p = performanceSums(run.logits, spliced, zeroed, batch.tokens);
      for (const k of PERFORMANCE_SUMS) acc[k] += num(p[k]);
      acc.predicted += batch.rows * (batch.contextSize - 1);
      acc.klPositions += batch.rows * batch.contextSize;
    }
    options.onBatch?.(++done, totalBatches);
  }
  return report(sae, inName, plan, excluded, acc, denseThreshold, options);
}

function report(
  sae: Sae,
  inName: string,
  plan: { description: string; contexts: number; contextSize: number; prependBos: boolean },
  excluded: ReadonlySet<number>,
  acc: Accumulator,
  denseThreshold: number,
  options: EvaluateSaeOptions,
): SaeEvalReport {
  const n = acc.counted;
  const density = Array.from(acc.fires, (c) => (n > 0 ? c / n : 0));
  const dead = density.filter((_d, i) => acc.fires[i] === 0).length;
  const dense = density.filter((d) => d > denseThreshold).length;
  const h = options.densityHistogram ?? {};
  const lo = h.min ?? -8;
  const hi = h.max ?? 0;
  const bins = h.bins ?? 32;
  if (!(hi > lo) || !(Number.isInteger(bins) && bins >= 1))
    throw new Error(`densityHistogram: need max > min and a positive integer number of bins (got ${lo}, ${hi}, ${bins})`);
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (let f = 0; f < density.length; f++) {
    if (acc.fires[f] === 0) continue;
    const b = Math.floor(((Math.log10(density[f]!) - lo) / (hi - lo)) * bins);
    counts[Math.min(bins - 1, Math.max(0, b))]!++;
  }
  const perTok = (v: number): number => (n > 0 ? v / n : 0);
  const tss = acc.m2;
  const fvu = tss > 0 ? acc.sqErr / tss : NaN;
  const rep: SaeEvalReport = {
    format: 'glassbox-sae-eval',
    version: 1,
    sae: {
      architecture: sae.cfg.architecture,
      hookName: inName,
      hookNameOut: sae.isTranscoder ? (sae.cfg.hook_name_out ?? null) : null,
      hookHeadIndex: sae.cfg.hook_head_index ?? null,
      dIn: sae.dIn,
      dSae: sae.dSae,
      dOut: sae.dOut,
      transcoder: sae.isTranscoder,
    },
    data: {
      description: plan.description,
      contexts: plan.contexts,
      contextSize: plan.contextSize,
      prependBos: plan.prependBos,
      tokens: acc.tokens,
      tokensCounted: n,
      excludedTokenIds: [...excluded].sort((a, b) => a - b),
    },
    sparsity: {
      l0: perTok(acc.l0),
      l1: perTok(acc.l1),
      deadFeatures: dead,
      deadFraction: dead / sae.dSae,
      denseFeatures: dense,
      denseFraction: dense / sae.dSae,
      denseThreshold,
      densityHistogram: { log10Edges: edges, counts, dead },
    },
    reconstruction: {
      mse: perTok(acc.sqErr) / sae.dOut,
      squaredErrorPerToken: perTok(acc.sqErr),
      explainedVariance: finiteOrNull(1 - fvu),
      fvu: finiteOrNull(fvu),
      cosineSimilarity: perTok(acc.cos),
      l2NormIn: perTok(acc.normIn),
      l2NormOut: perTok(acc.normOut),
      l2Ratio: finiteOrNull(acc.normOut / acc.normIn),
      relativeReconstructionBias: finiteOrNull(acc.sqOut / acc.dot),
    },
    modelPerformance: null,
  };
  if (options.perFeature) rep.sparsity.featureDensity = density;
  if (!options.skipModelPerformance && acc.predicted > 0) {
    const ceClean = acc.ceClean / acc.predicted;
    const ceSae = acc.ceSae / acc.predicted;
    const ceZero = acc.ceZero / acc.predicted;
    const klSae = acc.klSae / acc.klPositions;
    const klZero = acc.klZero / acc.klPositions;
    rep.modelPerformance = {
      ceLossClean: ceClean,
      ceLossWithSae: ceSae,
      ceLossWithAblation: ceZero,
      ceLossScore: ceZero !== ceClean ? finiteOrNull((ceZero - ceSae) / (ceZero - ceClean)) : null,
      ceLossDelta: ceSae - ceClean,
      klDivWithSae: klSae,
      klDivWithAblation: klZero,
      klDivScore: klZero !== 0 ? finiteOrNull((klZero - klSae) / klZero) : null,
    };
  }
  return rep;
}

/** The report as readable lines (what `glassbox sae eval` prints). */
export function formatEvalReport(r: SaeEvalReport): string {
  const f = (v: number | null, digits = 4): string => (v === null ? 'n/a' : Math.abs(v) >= 1e4 ? v.toExponential(3) : v.toFixed(digits));
  const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;
  const lines = [
    `SAE          ${r.sae.architecture}, d_in ${r.sae.dIn}, d_sae ${r.sae.dSae}${r.sae.transcoder ? `, d_out ${r.sae.dOut}` : ''}`,
    `hook         ${r.sae.hookName}${r.sae.hookNameOut ? ` -> ${r.sae.hookNameOut}` : ''}${r.sae.hookHeadIndex !== null ? ` (head ${r.sae.hookHeadIndex})` : ''}`,
    `data         ${r.data.description}`,
    `             ${r.data.contexts} contexts of ${r.data.contextSize}${r.data.prependBos ? ' (BOS first)' : ''}: ${r.data.tokens} tokens, ${r.data.tokensCounted} counted`,
    '',
    'sparsity',
    `  L0                 ${f(r.sparsity.l0, 2)}`,
    `  L1                 ${f(r.sparsity.l1, 2)}`,
    `  dead features      ${r.sparsity.deadFeatures} (${pct(r.sparsity.deadFraction)})`,
    `  dense features     ${r.sparsity.denseFeatures} (${pct(r.sparsity.denseFraction)}, density > ${r.sparsity.denseThreshold})`,
    '',
    'reconstruction',
    `  explained variance ${f(r.reconstruction.explainedVariance)}`,
    `  MSE                ${f(r.reconstruction.mse, 6)}`,
    `  cosine similarity  ${f(r.reconstruction.cosineSimilarity)}`,
    `  L2 ratio           ${f(r.reconstruction.l2Ratio)}`,
  ];
  const m = r.modelPerformance;
  if (m)
    lines.push(
      '',
      'model performance',
      `  CE loss recovered  ${f(m.ceLossScore)}`,
      `  CE clean           ${f(m.ceLossClean)}`,
      `  CE with SAE        ${f(m.ceLossWithSae)}`,
      `  CE zero-ablated    ${f(m.ceLossWithAblation)}`,
      `  KL score           ${f(m.klDivScore)}`,
      `  KL with SAE        ${f(m.klDivWithSae)}`,
      `  KL zero-ablated    ${f(m.klDivWithAblation)}`,
    );
  const hist = r.sparsity.densityHistogram;
  const top = Math.max(1, hist.dead, ...hist.counts);
  lines.push('', 'feature density (log10)');
  const bar = (c: number): string => '#'.repeat(Math.round((30 * c) / top));
  lines.push(`  ${'dead'.padStart(13)} ${String(hist.dead).padStart(6)} ${bar(hist.dead)}`);
  hist.counts.forEach((c, i) => {
    if (c === 0) return;
    lines.push(
      `  ${`[${hist.log10Edges[i]!.toFixed(2)},${hist.log10Edges[i + 1]!.toFixed(2)})`.padStart(13)} ${String(c).padStart(6)} ${bar(c)}`,
    );
  });
  return lines.join('\n');
}
