/**
 * Training cross-layer transcoders (and per-layer transcoder sets) on a model's activations, with
 * Anthropic's CLT recipe ("Circuit Tracing", Ameisen et al. 2025) and SAELens's machinery: the
 * activation store (its shuffle buffer, seeded, with an exact resume), its schedules, and the
 * training loop's run directory (checkpoints, metrics.jsonl, resume refusing other settings).
 *
 * The run, in order:
 * 1. the hooks: layer l reads `inputHook(l)` (default `blocks.l.ln2.hook_normalized`, what the
 *    MLP reads) and reconstructs `outputHook(l)` (default `blocks.l.hook_mlp_out`);
 * 2. the store: SAELens's ActivationStore over a view of the model with two extra hook points,
 *    `clt.hook_in` and `clt.hook_out`, each the concatenation of every layer's hook
 *    ([batch, pos, n_layers * d]); one forward pass collects all of them, and the store's batches
 *    are x [B, n_layers * d_in] and target [B, n_layers * d_out];
 * 3. the run directory: resume from the newest checkpoint (parameters, Adam state, the scaling
 *    factors, the store's position), or a fresh start: parameters from `initCltParams`, and the
 *    per-layer scaling factors (SAELens's expected_average_only_in, one per layer and side:
 *    sqrt(d) / mean ||activation||) estimated from the first batches;
 * 4. the loop, one compiled step each: the loss in the scaled space (below), Adam with the
 *    scheduled learning rate; a record every `logEvery` steps (loss, MSE, sparsity, per-layer L0
 *    and FVU), a checkpoint every `checkpointEvery` steps and at the end; an abort checkpoints and
 *    returns;
 * 5. the trained set in its inference form: thresholds made non-negative, the scaling factors
 *    folded into W_enc / W_dec / b_dec / W_skip, saved with `saveClt` into outDir.
 *
 * The loss of a batch, in the scaled space, summed over layers and averaged over rows:
 *   MSE       = sum_t ||y_t - y^_t||^2
 *   sparsity  = sum_s sum_i tanh(c * a_{s,i} * ||W_dec_{s,i}||)   (JumpReLU; Anthropic's penalty)
 *             = sum_s sum_i a_{s,i} * ||W_dec_{s,i}||               (ReLU; L1 with decoder norms)
 *             = 0                                                    (TopK: k fixes the sparsity)
 *   loss      = MSE + coefficient(step) * sparsity
 * where ||W_dec_{s,i}|| is the norm of feature i's decoder rows into every target it writes,
 * concatenated. JumpReLU thresholds learn through SAELens's straight-through estimator
 * (`jumpReluSte`, rectangle kernel of width `bandwidth`).
 */
import { Tensor, jit, scalar, stack, tensor, valueAndGrad } from '../../tensor/index.js';
import type { HookedTransformer } from '../../model/hooked.js';
import { hookName } from '../../model/hook-names.js';
import type { OptState } from '../../train/optim.js';
import { openTrainingRun } from '../../train/checkpoint.js';
import { RUN_CONTROL_OPTIONS, treeDigest } from '../../train/fingerprint.js';
import { makeProgress, metricsLogger, stepRate, type MetricsRecord } from '../../train/progress.js';
import { jumpReluSte } from '../ops.js';
import { activationStore, type ActivationStore, type DatasetStoreOptions } from '../training/activation-store.js';
import { coefficientSchedule, saeOptimizer, type SaeOptimizerOptions } from '../training/schedules.js';
import { saveClt } from './formats.js';
import {
  CrossLayerTranscoder,
  checkCltConfig,
  cltDecode,
  cltDecoderNorms,
  cltPreActs,
  initCltParams,
  targetCount,
  topkRows,
  type CltConfig,
  type CltParams,
} from './transcoder.js';
import type { TracingActivation } from './types.js';

/** The view's hook point holding every layer's encoder input, concatenated: [batch, pos, n_layers * d_in]. */
export const CLT_HOOK_IN = 'clt.hook_in';
/** The view's hook point holding every layer's target, concatenated: [batch, pos, n_layers * d_out]. */
export const CLT_HOOK_OUT = 'clt.hook_out';

/**
 * A view of `model` with two more hook points for the activation store: `clt.hook_in` (the
 * hooks `inputs`, concatenated along the last axis) and `clt.hook_out` (`targets`, likewise).
 * A `runWithCache` asking for either runs the model once, caching every hook they need. Everything
 * else is the model's own.
 */
export function multiHookView(model: HookedTransformer, inputs: readonly string[], targets: readonly string[]): HookedTransformer {
  const groups: Record<string, readonly string[]> = { [CLT_HOOK_IN]: inputs, [CLT_HOOK_OUT]: targets };
  const hookNames = [...model.hookNames, CLT_HOOK_IN, CLT_HOOK_OUT];
  const runWithCache = (input: unknown, options: { names?: readonly string[] } = {}): unknown => {
    const asked = options.names ?? [];
    const real = new Set<string>();
    for (const n of asked) for (const h of groups[n] ?? [n]) real.add(h);
    const { logits, cache } = model.runWithCache(input as Parameters<HookedTransformer['runWithCache']>[0], {
      ...options,
      names: [...real],
    });
    const get = (name: string): Tensor => {
      const group = groups[name];
      if (!group) return cache.get(name);
      return concatLast(group.map((h) => cache.get(h)));
    };
    return { logits, cache: { get } };
  };
  return new Proxy(model, {
    get(target, prop) {
      if (prop === 'hookNames') return hookNames;
      if (prop === 'runWithCache') return runWithCache;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Tensors [..., d_i] (same leading shape) joined along the last axis on the host: [..., sum d_i] float32. */
function concatLast(ts: readonly Tensor[]): Tensor {
  const lead = ts[0]!.shape.slice(0, -1);
  const rows = lead.reduce((a, b) => a * b, 1);
  const widths = ts.map((t) => t.shape[t.rank - 1]!);
  const total = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * total);
  let col = 0;
  ts.forEach((t, i) => {
    const d = widths[i]!;
    const data = t.cast('float32').dataSync() as Float32Array;
    for (let r = 0; r < rows; r++) out.set(data.subarray(r * d, (r + 1) * d), r * total + col);
    col += d;
  });
  return tensor(out, [...lead, total]);
}

/** Options of `trainClt`. Names follow SAELens's runner config in camelCase where one exists. */
export interface TrainCltOptions extends Omit<DatasetStoreOptions, 'hookName' | 'hookNameOut'>, SaeOptimizerOptions {
  /** Features per layer. */
  dSae: number;
  /** 'jumprelu' (default), 'relu' or 'topk'. */
  activation?: TracingActivation;
  /** TopK: features per token and layer. */
  k?: number;
  /** A CLT (default true) or a set of per-layer transcoders (false). */
  crossLayer?: boolean;
  /** A linear skip path per layer (default false). */
  skip?: boolean;
  /** Layer l's encoder input (default `blocks.l.ln2.hook_normalized`). */
  inputHook?: (layer: number) => string;
  /** Layer l's reconstruction target (default `blocks.l.hook_mlp_out`). */
  outputHook?: (layer: number) => string;
  totalTrainingSteps: number;
  /** Learning rate (default 2e-4); its SAELens schedule and Adam's betas are `SaeOptimizerOptions`. */
  lr?: number;
  /** The sparsity coefficient (default 1 for JumpReLU's tanh, 1e-3 for ReLU's L1) and its linear warm-up from 0. */
  sparsityCoefficient?: number;
  sparsityWarmUpSteps?: number;
  /** c in tanh(c * a * ||W_dec||) (default 4). */
  tanhScale?: number;
  /** JumpReLU's straight-through kernel width (default 0.05). */
  bandwidth?: number;
  /** Initial JumpReLU threshold (default 0.03) and decoder norm (default 0.1). */
  initThreshold?: number;
  initDecoderNorm?: number;
  /** Per-layer input / target scaling (default 'expected_average_only_in'), folded into the saved weights. */
  normalizeActivations?: 'none' | 'expected_average_only_in';
  /** Batches the scaling factors are estimated from (default 10). */
  nBatchesForNormEstimate?: number;
  /** Run directory: metrics.jsonl, checkpoints/, and the final set (cfg.json, sae_weights.safetensors). */
  outDir?: string;
  resume?: boolean;
  /** Checkpoint every N steps (default a tenth of the run) and at the end; checkpoints kept (default 2). */
  checkpointEvery?: number;
  keepCheckpoints?: number;
  /** A record every N steps (default 10). */
  logEvery?: number;
  onLog?: (record: MetricsRecord) => void;
  progress?: boolean | 'auto';
  /** When aborted, the run checkpoints (with outDir) and returns with interrupted: true. */
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
}

/** What `trainClt` returns. */
export interface TrainCltResult {
  /** The trained set in its inference form (scaling folded). */
  clt: CrossLayerTranscoder;
  /** The parameters in the training (scaled) space, as checkpointed. */
  trainingParams: CltParams;
  /** Per-layer scaling factors of the inputs and targets (1 when not normalising). */
  scaleIn: number[];
  scaleOut: number[];
  step: number;
  startStep: number;
  history: MetricsRecord[];
  interrupted: boolean;
  /** Seconds of training, resumed runs included. */
  elapsed: number;
  store: ActivationStore;
}

/** The options that do not change what a run computes (left out of its fingerprint). */
const NOT_FINGERPRINTED = new Set<string>([...RUN_CONTROL_OPTIONS, 'inputHook', 'outputHook', 'dataset']);

/** The compiled step's outputs. */
interface CltStepOut {
  params: CltParams;
  opt: OptState;
  loss: Tensor;
  mse: Tensor;
  sparsity: Tensor;
  /** [n_layers] mean active features per row. */
  l0: Tensor;
  /** [n_layers] fraction of the target's variance unexplained, this batch. */
  fvu: Tensor;
}

/** The loss of `trainClt` (see the file comment), for rows x [B, L, d_in] and targets y [B, L, d_out] in the scaled space. */
export function cltTrainingLoss(
  cfg: CltConfig,
  params: CltParams,
  x: Tensor,
  y: Tensor,
  o: { bandwidth: number; tanhScale: number },
): { mse: Tensor; sparsity: Tensor; l0: Tensor; fvu: Tensor } {
  const L = cfg.n_layers;
  const xs = Array.from({ length: L }, (_, l) => x.index([null, l]));
  const acts = xs.map((xl, l) => {
    const pre = cltPreActs(params, l, xl);
    if (cfg.activation === 'relu') return pre.relu();
    if (cfg.activation === 'topk') return topkRows(pre, cfg.k!);
    return jumpReluSte(pre, params[`threshold.${l}`]!.relu(), o.bandwidth);
  });
  const errs: Tensor[] = [];
  const fvus: Tensor[] = [];
  for (let t = 0; t < L; t++) {
    const yt = y.index([null, t]);
    const err = cltDecode(cfg, params, t, acts, xs[t]).sub(yt).square().sum(-1).mean();
    errs.push(err);
    const tss = yt.sub(yt.mean(0)).square().sum(-1).mean();
    fvus.push(err.div(tss.maximum(1e-12)));
  }
  const mse = errs.reduce((a, b) => a.add(b));
  let sparsity: Tensor = scalar(0, x.dtype);
  if (cfg.activation !== 'topk')
    for (let s = 0; s < L; s++) {
      const weighted = acts[s]!.mul(cltDecoderNorms(params, s));
      const term = (cfg.activation === 'jumprelu' ? weighted.mul(o.tanhScale).tanh() : weighted).sum(-1).mean();
      sparsity = s === 0 ? term : sparsity.add(term);
    }
  const l0 = acts.map((a) => a.gt(0).cast('float32').sum(-1).mean());
  return { mse, sparsity, l0: stack(l0), fvu: stack(fvus.map((f) => f.detach())) };
}

/**
 * Trains a CLT (or PLT set) on `model`: see the file comment. The result holds the trained set in
 * its inference form; with `outDir` it is also saved there, beside metrics.jsonl and checkpoints/.
 */
export async function trainClt(model: HookedTransformer, o: TrainCltOptions): Promise<TrainCltResult> {
  // 1. Hooks and the config.
  const L = model.cfg.nLayers;
  const inputs = Array.from({ length: L }, (_, l) => (o.inputHook ? o.inputHook(l) : `blocks.${l}.ln2.hook_normalized`));
  const targets = Array.from({ length: L }, (_, l) => (o.outputHook ? o.outputHook(l) : hookName('mlp_out', l)));
  for (const h of [...inputs, ...targets])
    if (!model.hookNames.includes(h)) throw new Error(`trainClt: '${h}' is not a hook point of the model`);
  const activation = o.activation ?? 'jumprelu';
  const steps = o.totalTrainingSteps;
  if (!(Number.isInteger(steps) && steps > 0)) throw new Error(`trainClt: totalTrainingSteps must be a positive integer, got ${steps}`);

  // 2. The store over the multi-hook view (one forward pass per group of contexts).
  const view = multiHookView(model, inputs, targets);
  const store = activationStore(view, {
    ...o,
    excludeSpecialTokens: o.excludeSpecialTokens ?? true,
    hookName: CLT_HOOK_IN,
    hookNameOut: CLT_HOOK_OUT,
  });
  const dIn = store.dIn / L;
  const dOut = store.dOut! / L;
  const cfg: CltConfig = {
    n_layers: L,
    d_in: dIn,
    d_out: dOut,
    widths: new Array<number>(L).fill(o.dSae),
    activation,
    ...(activation === 'topk' ? { k: o.k } : {}),
    cross_layer: o.crossLayer ?? true,
    skip: o.skip ?? false,
    hook_names_in: inputs,
    hook_names_out: targets,
    model_name: o.modelName ?? null,
    dataset_path: store.metadata.dataset_path,
    context_size: store.metadata.context_size,
    prepend_bos: store.metadata.prepend_bos,
  };
  checkCltConfig(cfg, 'trainClt');
  const lr = o.lr ?? 2e-4;
  const { lrAt, optimizer } = saeOptimizer(o, lr, steps);
  const coefAt = coefficientSchedule(o.sparsityCoefficient ?? (activation === 'relu' ? 1e-3 : 1), o.sparsityWarmUpSteps ?? 0);
  const lossOptions = { bandwidth: o.bandwidth ?? 0.05, tanhScale: o.tanhScale ?? 4 };
  const normalize = o.normalizeActivations ?? 'expected_average_only_in';

  // 3. The run directory: resume, or a fresh start.
  const initial = initCltParams(cfg, { seed: o.seed ?? 0, threshold: o.initThreshold, decoderNorm: o.initDecoderNorm });
  const fingerprint = {
    format: 'glassbox-clt-train',
    cfg,
    options: Object.fromEntries(Object.entries(o).filter(([k, v]) => !NOT_FINGERPRINTED.has(k) && typeof v !== 'function')),
    dataset: typeof o.dataset === 'string' ? o.dataset : store.metadata.dataset_path,
    store: { batchSize: store.batchSize, dIn: store.dIn, dOut: store.dOut },
  };
  const schedules = { lr: lrAt, sparsity_coefficient: coefAt };
  const opened = openTrainingRun(
    {
      outDir: o.outDir,
      resume: o.resume,
      config: fingerprint,
      optimizer,
      run: o.outDir ? { params: `sha256:${treeDigest(initial)}` } : {},
      schedules,
      onWarning: o.onWarning,
      data: store,
      keep: o.keepCheckpoints ?? 2,
    },
    initial,
    optimizer.init(initial),
  );
  let { params, optState: opt, step } = opened.start;
  const elapsedBefore = opened.start.elapsed;
  let scaleIn = new Array<number>(L).fill(1);
  let scaleOut = new Array<number>(L).fill(1);
  if (opened.start.resumed) {
    const extra = opened.start.extra as { scaleIn?: number[]; scaleOut?: number[] } | undefined;
    if (!extra?.scaleIn || !extra.scaleOut)
      throw new Error(`${opened.ckptRoot}: the checkpoint records no scaling factors (extra.scaleIn / extra.scaleOut)`);
    scaleIn = extra.scaleIn;
    scaleOut = extra.scaleOut;
  } else if (normalize === 'expected_average_only_in') {
    const n = Math.max(1, o.nBatchesForNormEstimate ?? 10);
    const sumIn = new Float64Array(L);
    const sumOut = new Float64Array(L);
    let rows = 0;
    for (let i = 0; i < n; i++) {
      const b = store.next();
      accumulateNorms(b.x, L, sumIn);
      accumulateNorms(b.target!, L, sumOut);
      rows += b.x.shape[0]!;
    }
    scaleIn = Array.from(sumIn, (s) => Math.sqrt(dIn) / Math.max(1e-12, s / rows));
    scaleOut = Array.from(sumOut, (s) => Math.sqrt(dOut) / Math.max(1e-12, s / rows));
  } else if (normalize !== 'none')
    throw new Error(`trainClt: normalizeActivations must be 'none' or 'expected_average_only_in', got '${String(normalize)}'`);
  const startStep = step;
  const history = opened.history;
  const log = metricsLogger(history, opened.metricsFile, o.onLog);

  // 4. The compiled step and the loop.
  const scaleInT = tensor(Float32Array.from(scaleIn), [1, L, 1]);
  const scaleOutT = tensor(Float32Array.from(scaleOut), [1, L, 1]);
  const compiled = jit((p: CltParams, s: OptState, x: Tensor, y: Tensor, lrT: Tensor, coef: Tensor): CltStepOut => {
    const xs = x.reshape([-1, L, dIn]).mul(scaleInT);
    const ys = y.reshape([-1, L, dOut]).mul(scaleOutT);
    const [[loss, aux], grads] = valueAndGrad(
      (pp: CltParams) => {
        const r = cltTrainingLoss(cfg, pp, xs, ys, lossOptions);
        return [r.mse.add(r.sparsity.mul(coef)), r];
      },
      { hasAux: true },
    )(p) as unknown as [[Tensor, { mse: Tensor; sparsity: Tensor; l0: Tensor; fvu: Tensor }], CltParams];
    const next = optimizer.update(p, grads, s, lrT);
    return { params: next.params, opt: next.state, loss, mse: aux.mse, sparsity: aux.sparsity, l0: aux.l0, fvu: aux.fvu };
  }) as (p: CltParams, s: OptState, x: Tensor, y: Tensor, lrT: Tensor, coef: Tensor) => CltStepOut;

  const every = o.checkpointEvery ?? Math.max(1, Math.ceil(steps / 10));
  const logEvery = o.logEvery ?? 10;
  const t0 = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - t0) / 1000;
  const checkpoint = (): void => opened.checkpoint({ step, params, optState: opt, elapsed: elapsed(), extra: { scaleIn, scaleOut } });
  const progress = await makeProgress(o.progress ?? 'auto', step, steps, 'clt');
  const rate = stepRate();
  let interrupted = false;
  try {
    while (step < steps) {
      if (o.signal?.aborted) {
        interrupted = true;
        checkpoint();
        break;
      }
      const batch = store.next();
      const out = compiled(params, opt, batch.x, batch.target!, scalar(lrAt(step)), scalar(coefAt(step)));
      params = out.params;
      opt = out.opt;
      step++;
      const loss = out.loss.item() as number;
      if (!Number.isFinite(loss)) throw new Error(`trainClt: the loss is ${loss} at step ${step}; lower lr or the sparsity coefficient`);
      progress.update(step, { loss, rate: rate(), unit: 'steps/s' });
      if (step % logEvery === 0 || step === steps) {
        const record: MetricsRecord = {
          step,
          'losses/overall_loss': loss,
          'losses/mse_loss': out.mse.item() as number,
          'losses/sparsity_loss': out.sparsity.item() as number,
          'details/current_learning_rate': lrAt(step - 1),
          'details/current_sparsity_coefficient': coefAt(step - 1),
        };
        const l0 = out.l0.dataSync() as Float32Array;
        const fvu = out.fvu.dataSync() as Float32Array;
        for (let l = 0; l < L; l++) {
          record[`metrics/l0/layer_${l}`] = l0[l]!;
          record[`metrics/fvu/layer_${l}`] = fvu[l]!;
        }
        record.elapsed = elapsed();
        log(record);
      }
      if (step % every === 0 || step === steps) checkpoint();
    }
  } finally {
    progress.stop();
  }

  // 5. The inference form.
  const clt = new CrossLayerTranscoder(cfg, foldScaling(cfg, params, scaleIn, scaleOut), { where: 'trainClt' });
  if (o.outDir && !interrupted) saveClt(clt, o.outDir);
  return { clt, trainingParams: params, scaleIn, scaleOut, step, startStep, history, interrupted, elapsed: elapsed(), store };
}

/** Adds each layer's row norms of rows [B, L * d] into sums[L]. */
function accumulateNorms(t: Tensor, L: number, sums: Float64Array): void {
  const data = t.dataSync() as Float32Array;
  const B = t.shape[0]!;
  const d = t.shape[1]! / L;
  for (let r = 0; r < B; r++)
    for (let l = 0; l < L; l++) {
      let s = 0;
      for (let i = 0; i < d; i++) {
        const v = data[r * L * d + l * d + i]!;
        s += v * v;
      }
      sums[l]! += Math.sqrt(s);
    }
}

/**
 * Parameters trained on scaled activations (x_l * scaleIn[l] -> y_t * scaleOut[t]) as parameters of
 * the raw ones: W_enc_l * scaleIn[l]; W_dec_{s->t}, b_dec_t / scaleOut[t]; W_skip_t * scaleIn[t] /
 * scaleOut[t]; thresholds made non-negative (training uses ReLU(threshold)).
 */
export function foldScaling(cfg: CltConfig, params: CltParams, scaleIn: readonly number[], scaleOut: readonly number[]): CltParams {
  const p: CltParams = {};
  for (let l = 0; l < cfg.n_layers; l++) {
    p[`W_enc.${l}`] = params[`W_enc.${l}`]!.mul(scaleIn[l]!);
    p[`b_enc.${l}`] = params[`b_enc.${l}`]!;
    if (cfg.activation === 'jumprelu') p[`threshold.${l}`] = params[`threshold.${l}`]!.relu();
    const nT = targetCount(cfg, l);
    const inv = Float32Array.from({ length: nT }, (_, j) => 1 / scaleOut[cfg.cross_layer ? l + j : l]!);
    p[`W_dec.${l}`] = params[`W_dec.${l}`]!.mul(tensor(inv, [1, nT, 1]));
    p[`b_dec.${l}`] = params[`b_dec.${l}`]!.div(scaleOut[l]!);
    if (cfg.skip) p[`W_skip.${l}`] = params[`W_skip.${l}`]!.mul(scaleIn[l]! / scaleOut[l]!);
  }
  // Materialise (the products above are lazy only in traced code; concrete here).
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.cast('float32')]));
}
