/**
 * One SAE training step, compiled: the loss and its gradients, the optimizer update with the
 * decoder constraint, and the bookkeeping SAELens's trainer does with the step's feature
 * activations (dead features, firing density, the running threshold). Nothing here names an
 * architecture: what differs between them comes from their training facts.
 */
import { Tensor, jit, scalar, valueAndGrad, zeros } from '../../tensor/index.js';
import type { OptState, Optimizer } from '../../train/optim.js';
import { stopGradient } from '../ops.js';
import { normalizeDecoderRows, removeParallelGradient } from '../transforms.js';
import type {
  SaeArchitecture,
  SaeDeadFeatureLoss,
  SaeParams,
  SaeRunningThreshold,
  SaeTrainingCoefficient,
  SaeTrainingLoss,
  SaeTrainingOptions,
} from '../types.js';
import type { ActivationBatch } from './activation-store.js';

/** Non-parameter training state, updated inside the compiled step and checkpointed with the optimizer state. */
export interface SaeStats {
  /** [d_sae] steps since each feature last fired (SAELens's n_forward_passes_since_fired). */
  n_forward_passes_since_fired: Tensor;
  /** [d_sae] firings in the current sampling window (SAELens's act_freq_scores). */
  act_freq_scores: Tensor;
  /** Scalar: activations in the current sampling window (SAELens's n_frac_active_tokens). */
  n_frac_active_tokens: Tensor;
  /** Scalar: the architecture's running threshold (BatchTopK's; SAELens's topk_threshold), else 0. */
  topk_threshold: Tensor;
}

/** Stats at the start of a run. */
export function freshStats(dSae: number): SaeStats {
  return {
    n_forward_passes_since_fired: zeros([dSae]),
    act_freq_scores: zeros([dSae]),
    n_frac_active_tokens: scalar(0),
    topk_threshold: scalar(0),
  };
}

/** The stats with the sampling window's counts reset (a new density window). */
export function resetDensityWindow(stats: SaeStats, dSae: number): SaeStats {
  return { ...stats, act_freq_scores: zeros([dSae]), n_frac_active_tokens: scalar(0) };
}

/** Each feature's firing density in the current sampling window. */
export function density(stats: SaeStats): Float32Array {
  const n = Math.max(1, stats.n_frac_active_tokens.item() as number);
  return Float32Array.from(stats.act_freq_scores.dataSync() as Float32Array, (v) => v / n);
}

/** How many densities are below `t`. */
export function countBelow(d: Float32Array, t: number): number {
  let n = 0;
  for (const v of d) if (v < t) n++;
  return n;
}

/** SAELens's sparsity log: mean log10 density, features below 1e-5 / 1e-6, dead features. */
export function densityRecord(d: Float32Array, deadThreshold: number): Record<string, number> {
  let logSum = 0;
  for (const v of d) logSum += Math.log10(v + 1e-10);
  return {
    'sparsity/mean_log10_feature_density': logSum / d.length,
    'sparsity/below_1e-5': countBelow(d, 1e-5),
    'sparsity/below_1e-6': countBelow(d, 1e-6),
    'sparsity/dead_features': countBelow(d, deadThreshold),
  };
}

/** What one step returns. */
export interface StepOut {
  params: SaeParams;
  opt: OptState;
  stats: SaeStats;
  loss: Tensor;
  /** The loss's metrics (the sparsity term scaled, L0 from the firing counts) plus the batch's explained_variance. */
  metrics: Record<string, Tensor>;
  /** Scalar: features dead after this step. */
  numDead: Tensor;
}

/** A compiled step: parameters, optimizer state and stats in; the learning rate and sparsity coefficient as inputs. */
export type SaeStep = (params: SaeParams, opt: OptState, stats: SaeStats, batch: ActivationBatch, lr: Tensor, coef: Tensor) => StepOut;

/** What `makeSaeSteps` builds the step from. */
export interface SaeStepSpec {
  arch: SaeArchitecture;
  /** The loss options: the run's config (`config`) and hyper-parameters, the coefficient at 1. */
  lossOptions: SaeTrainingOptions;
  /** The sparsity coefficient the schedule scales (null: none). */
  coefficient: SaeTrainingCoefficient | null;
  /** How the run revives dead features (null: it does not, and the dead mask is never computed). */
  deadFeatures: SaeDeadFeatureLoss | null;
  /** The running threshold, and its rate. */
  threshold: SaeRunningThreshold | null;
  thresholdLr: number;
  /** A feature is dead after this many steps without firing. */
  deadFeatureWindow: number;
  /** Keep decoder rows at unit norm. */
  normalizeDecoder: boolean;
  optimizer: Optimizer;
}

/**
 * The compiled step, in two variants: `plain`, and `withDead` for steps that start with dead
 * features (the same function when the run does nothing with them). One step:
 * 1. the dead mask (`withDead`): features that have not fired for deadFeatureWindow steps;
 * 2. the loss and its gradients: the architecture's loss (or its dead-feature loss) with the
 *    coefficient at 1, its sparsity term then scaled by the scheduled coefficient, the
 *    dead-feature metric logged as 0 while it is absent;
 * 3. the update: with a unit-norm decoder, the gradient's component along each decoder row is
 *    removed first and the rows are renormalised after;
 * 4. the bookkeeping from the step's activations: steps since each feature fired, firing counts
 *    and activations in the density window, L0 from the firing counts, the running threshold;
 * 5. the batch's explained variance, 1 - MSE / the target's total variance.
 */
export function makeSaeSteps(spec: SaeStepSpec): { plain: SaeStep; withDead: SaeStep } {
  const { arch, lossOptions, coefficient, deadFeatures, threshold, thresholdLr, deadFeatureWindow: window } = spec;
  const term = coefficient?.term ?? null;
  const lossFn = deadFeatures?.loss ?? ((p: SaeParams, x: Tensor, o: SaeTrainingOptions) => arch.trainingLoss(p, x, o));
  const lossOf = (p: SaeParams, x: Tensor, target: Tensor | undefined, dead: Tensor | undefined): SaeTrainingLoss => {
    const opts: SaeTrainingOptions = { ...lossOptions, ...(target ? { target } : {}), ...(dead ? { deadMask: dead } : {}) };
    const r = lossFn(p, x, opts);
    if (deadFeatures && !r.metrics[deadFeatures.metric]) r.metrics[deadFeatures.metric] = scalar(0);
    return r;
  };
  const makeStep = (withDead: boolean): SaeStep =>
    jit((p: SaeParams, opt: OptState, stats: SaeStats, batch: ActivationBatch, lrT: Tensor, coef: Tensor): StepOut => {
      // 1. The dead mask.
      const dead = withDead ? stats.n_forward_passes_since_fired.gt(window) : undefined;
      // 2. The loss and its gradients.
      const [[loss, aux], grads] = valueAndGrad(
        (pp: SaeParams) => {
          const r = lossOf(pp, batch.x, batch.target, dead);
          let total = r.loss;
          const metrics = { ...r.metrics };
          if (term && metrics[term]) {
            // The architecture's term was computed with coefficient 1; the schedule's coefficient is an input.
            total = total.add(metrics[term]!.mul(coef.sub(1)));
            metrics[term] = metrics[term]!.mul(coef);
          }
          return [total, { metrics, acts: stopGradient(r.featureActs) }];
        },
        { hasAux: true },
      )(p) as unknown as [[Tensor, { metrics: Record<string, Tensor>; acts: Tensor }], SaeParams];
      // 3. The update, with the decoder constraint.
      let g = grads;
      if (spec.normalizeDecoder) g = { ...g, W_dec: removeParallelGradient(g.W_dec!, p.W_dec!) };
      const next = spec.optimizer.update(p, g, opt, lrT);
      let params = next.params;
      if (spec.normalizeDecoder) params = { ...params, W_dec: normalizeDecoderRows(params.W_dec!) };
      // 4. Dead-feature and density bookkeeping from this step's activations.
      const acts = aux.acts;
      const d = acts.shape[acts.rank - 1]!;
      const fired = acts.reshape([-1, d]).gt(0).cast('float32').sum(0);
      const since = stats.n_forward_passes_since_fired.add(1).where(fired.eq(0), scalar(0));
      const rows = acts.size / d;
      const metrics = { ...aux.metrics };
      // Activations are non-negative, so L0 is the firing count: the architecture's own l0 graph is then unused (and pruned).
      if (metrics.l0) metrics.l0 = fired.sum().div(rows);
      const nextThreshold = threshold ? threshold.update(stats.topk_threshold, metrics, thresholdLr) : stats.topk_threshold;
      // 5. Explained variance of this batch: 1 - MSE / total variance of the target.
      const target = batch.target ?? batch.x;
      const tss = target.sub(target.mean(0)).square().sum(-1).mean();
      if (metrics.mse_loss) metrics.explained_variance = scalar(1).sub(metrics.mse_loss.div(tss.maximum(1e-12)));
      return {
        params,
        opt: next.state,
        stats: {
          n_forward_passes_since_fired: since,
          act_freq_scores: stats.act_freq_scores.add(fired),
          n_frac_active_tokens: stats.n_frac_active_tokens.add(rows),
          topk_threshold: nextThreshold,
        },
        loss,
        metrics,
        numDead: since.gt(window).cast('float32').sum(),
      };
    }) as SaeStep;
  const plain = makeStep(false);
  return { plain, withDead: deadFeatures ? makeStep(true) : plain };
}

/**
 * The middle of a step's training record, in SAELens's names and metrics.jsonl's order: the loss,
 * the loss's metrics (losses/..., metrics/l0, metrics/explained_variance), the passes since
 * firing and dead features, the learning rate, the coefficient (when there is one) and the
 * running threshold (when there is one).
 */
export function stepRecord(
  out: StepOut,
  o: { loss: number; lr: number; coefficient: SaeTrainingCoefficient | null; coef: number; threshold: boolean },
): Record<string, number> {
  const record: Record<string, number> = { 'losses/overall_loss': o.loss };
  for (const [k, v] of Object.entries(out.metrics)) {
    const val = v.item() as number;
    if (k === 'l0') record['metrics/l0'] = val;
    else if (k === 'explained_variance') record['metrics/explained_variance'] = val;
    else record[`losses/${k}`] = val;
  }
  const since = out.stats.n_forward_passes_since_fired.dataSync() as Float32Array;
  record['sparsity/mean_passes_since_fired'] = since.reduce((s, v) => s + v, 0) / since.length;
  record['sparsity/dead_features'] = out.numDead.item() as number;
  record['details/current_learning_rate'] = o.lr;
  if (o.coefficient) record[`details/current_${o.coefficient.name}_coefficient`] = o.coef;
  if (o.threshold) record['details/topk_threshold'] = out.stats.topk_threshold.item() as number;
  return record;
}
