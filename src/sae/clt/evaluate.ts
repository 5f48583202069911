/**
 * Evaluating a transcoder set (CLT or PLT) on a model, over batches of token rows:
 * 1. a clean run caching every layer's input and MLP output hook: per layer, the fraction of the
 *    MLP output's variance the set leaves unexplained (FVU = sum ||y - y^||^2 / sum ||y - mean y||^2,
 *    over every measured position) and L0 (active features per position), from the clean inputs;
 * 2. the spliced run: every MLP output replaced by the set's reconstruction, computed inside the
 *    model's forward pass (`model.hooked` hooks: each input hook encodes, each output hook
 *    decodes from every earlier layer's features), so later layers see the replaced stream;
 * 3. the zero-ablated run: every MLP output replaced by zeros;
 * 4. CE-loss recovered = (CE_zero - CE_spliced) / (CE_zero - CE_clean), next-token cross-entropy
 *    averaged over every predicted position; and the KL divergence of the spliced run from clean.
 * Positions holding the model's special tokens (BOS / EOS / padding ids) are left out of FVU and
 * L0 (as training leaves them out) unless `excludeSpecialTokens` is false.
 */
import { tensor, type Tensor } from '../../tensor/index.js';
import { nextTokenLoss, type HookedTransformer, type HookList } from '../../model/hooked.js';
import { specialTokenIds } from '../contexts.js';
import type { TracingTranscoders } from './types.js';

/** What `evaluateClt` measures. */
export interface CltEvalReport {
  /** Per layer: fraction of variance unexplained of the MLP output (clean inputs). */
  fvu: number[];
  /** Per layer: mean active features per position. */
  l0: number[];
  ceClean: number;
  ceSpliced: number;
  ceZeroAblation: number;
  /** (ceZeroAblation - ceSpliced) / (ceZeroAblation - ceClean). */
  ceLossRecovered: number;
  /** Mean KL(clean || spliced) per predicted position. */
  klSpliced: number;
  /** Positions FVU and L0 were measured over. */
  positions: number;
}

/** Options of `evaluateClt`. */
export interface EvaluateCltOptions {
  /** Rows per forward pass (default 8). */
  batchSize?: number;
  /** Leave special-token positions out of FVU and L0 (default true). */
  excludeSpecialTokens?: boolean;
}

/**
 * The hooks that replace every MLP output of `model` by `clt`'s reconstruction (see the file
 * comment, step 2): for `model.hooked(tokens, { hooks })`.
 */
export function spliceHooks(clt: TracingTranscoders): HookList {
  const inputs: Tensor[] = [];
  const acts: Tensor[] = [];
  const hooks: [string, (x: Tensor) => Tensor | void][] = [];
  for (let l = 0; l < clt.nLayers; l++) {
    hooks.push([
      clt.inputHook(l),
      (x: Tensor) => {
        inputs[l] = x;
        acts[l] = clt.encode(l, x);
      },
    ]);
    hooks.push([clt.outputHook(l), () => clt.decode(l, acts, inputs[l])]);
  }
  return hooks;
}

/** Hooks that zero every MLP output `clt` writes. */
export function zeroAblationHooks(clt: TracingTranscoders): HookList {
  return Array.from({ length: clt.nLayers }, (_, l) => [clt.outputHook(l), (x: Tensor) => x.mul(0)] as const);
}

/** Evaluates `clt` on `model` over `rows` (token id rows of one length): see the file comment. */
export function evaluateClt(
  model: HookedTransformer,
  clt: TracingTranscoders,
  rows: readonly (readonly number[])[],
  options: EvaluateCltOptions = {},
): CltEvalReport {
  const L = clt.nLayers;
  if (rows.length === 0) throw new Error('evaluateClt: no token rows to evaluate on');
  const T = rows[0]!.length;
  if (T < 2 || rows.some((r) => r.length !== T))
    throw new Error(`evaluateClt: the rows must all have one length of at least 2 tokens (the first has ${T})`);
  for (let l = 0; l < L; l++)
    for (const h of [clt.inputHook(l), clt.outputHook(l)])
      if (!model.hookNames.includes(h)) throw new Error(`evaluateClt: the transcoders' hook '${h}' is not a hook point of the model`);
  const special = options.excludeSpecialTokens === false ? new Set<number>() : specialTokenIds(model, true);
  const B = options.batchSize ?? 8;
  const d = clt.dOut;
  const errSq = new Float64Array(L);
  const ySq = new Float64Array(L);
  const ySum = Array.from({ length: L }, () => new Float64Array(d));
  const active = new Float64Array(L);
  let n = 0;
  let ceClean = 0;
  let ceSpliced = 0;
  let ceZero = 0;
  let kl = 0;
  let predicted = 0;
  const names = Array.from({ length: L }, (_, l) => [clt.inputHook(l), clt.outputHook(l)]).flat();
  for (let start = 0; start < rows.length; start += B) {
    const batch = rows.slice(start, start + B);
    const flat = batch.flat();
    const tokens = tensor(
      BigInt64Array.from(flat, (v) => BigInt(v)),
      [batch.length, T],
      'int64',
    );
    const keep = flat.map((t) => !special.has(t));
    // 1. Clean run: FVU and L0 from the clean inputs.
    const { logits: clean, cache } = model.runWithCache(tokens, { names });
    const acts = Array.from({ length: L }, (_, l) => clt.encode(l, cache.get(clt.inputHook(l))));
    for (let t = 0; t < L; t++) {
      const recon = clt.decode(t, acts, cache.get(clt.inputHook(t))).dataSync() as Float32Array;
      const y = cache.get(clt.outputHook(t)).dataSync() as Float32Array;
      const a = acts[t]!.dataSync() as Float32Array;
      const w = clt.widths[t]!;
      for (let p = 0; p < keep.length; p++) {
        if (!keep[p]) continue;
        for (let i = 0; i < d; i++) {
          const yi = y[p * d + i]!;
          const e = recon[p * d + i]! - yi;
          errSq[t]! += e * e;
          ySq[t]! += yi * yi;
          ySum[t]![i]! += yi;
        }
        for (let i = 0; i < w; i++) if (a[p * w + i]! > 0) active[t]!++;
      }
    }
    n += keep.filter(Boolean).length;
    // 2.-4. Spliced and zero-ablated runs.
    const spliced = model.hooked(tokens, { hooks: spliceHooks(clt) }).logits;
    const zero = model.hooked(tokens, { hooks: zeroAblationHooks(clt) }).logits;
    const m = batch.length * (T - 1);
    const ce = (l: Tensor): number => (nextTokenLoss(l, tokens, null, false).item() as number) * m;
    ceClean += ce(clean);
    ceSpliced += ce(spliced);
    ceZero += ce(zero);
    const lpClean = clean.slice([null, { start: 0, end: T - 1 }]).logSoftmax(-1);
    const lpSpliced = spliced.slice([null, { start: 0, end: T - 1 }]).logSoftmax(-1);
    kl += lpClean.exp().mul(lpClean.sub(lpSpliced)).sum().item() as number;
    predicted += m;
  }
  if (n === 0) throw new Error('evaluateClt: every position holds a special token; nothing to measure');
  const fvu = Array.from({ length: L }, (_, t) => {
    let meanSq = 0;
    for (const s of ySum[t]!) meanSq += (s / n) * (s / n);
    const tss = ySq[t]! - n * meanSq;
    return errSq[t]! / Math.max(tss, 1e-30);
  });
  const report = {
    fvu,
    l0: Array.from(active, (a) => a / n),
    ceClean: ceClean / predicted,
    ceSpliced: ceSpliced / predicted,
    ceZeroAblation: ceZero / predicted,
    ceLossRecovered: 0,
    klSpliced: kl / predicted,
    positions: n,
  };
  report.ceLossRecovered = (report.ceZeroAblation - report.ceSpliced) / (report.ceZeroAblation - report.ceClean);
  return report;
}

/** The report as a few lines of text. */
export function formatCltEval(r: CltEvalReport): string {
  const f = (v: number): string => v.toFixed(4);
  return [
    `FVU per layer: ${r.fvu.map(f).join(' ')}`,
    `L0 per layer: ${r.l0.map((v) => v.toFixed(1)).join(' ')}`,
    `CE clean ${f(r.ceClean)}, spliced ${f(r.ceSpliced)}, zero-ablated ${f(r.ceZeroAblation)}: CE-loss recovered ${(100 * r.ceLossRecovered).toFixed(1)}%`,
    `KL(clean || spliced) ${f(r.klSpliced)} per position, over ${r.positions} positions`,
  ].join('\n');
}
