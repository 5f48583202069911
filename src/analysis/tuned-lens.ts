/**
 * The tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the
 * Tuned Lens"): the logit lens with one learned affine "translator" per layer, trained so that
 * reading the residual stream at layer l through translator l, the final norm and the
 * unembedding gives the model's own final next-token distribution.
 *
 * As in the paper's code (the `tuned-lens` library), translator l acts residually,
 * h -> h + (h W_l + b_l), with W_l and b_l initialised to zero, so an untrained tuned lens is
 * exactly the logit lens (and weight decay pulls it towards the identity, not towards zero). It
 * reads `blocks.{l}.hook_resid_pre` for l = 0..n_layers-1 (the embeddings, then the output of
 * each block but the last); the last block's output needs no translator, it is the model's
 * output. The training loss is the paper's: for every layer, KL(final || lens) = sum_v p_final(v)
 * (log p_final(v) - log p_lens(v)), averaged over token positions, summed over layers (each
 * translator only sees its own term, so this trains them independently). The paper trains with
 * SGD + Nesterov momentum; glassbox uses Adam (AdamW when `weightDecay` is given) through the
 * `src/train` loop, which compiles forward, backward and update into one graph per step.
 *
 * Files: `saveTunedLens(dir)` writes `config.json` (the `tuned-lens` library's `TunedLensConfig`
 * fields: d_model, num_hidden_layers, bias, lens_type) and `params.safetensors` with the
 * library's state-dict names, `{l}.weight` [d_model, d_model] in PyTorch's `nn.Linear` layout
 * (out x in, i.e. W_l transposed) and `{l}.bias` [d_model].
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRNG, Tensor, stack, tensor, zeros } from '../tensor/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import type { HookedTransformer, TokenInput } from '../model/hooked.js';
import { adam, adamw } from '../train/optim.js';
import { fixedData, syntheticData, type DataSource, type TokenBatch } from '../train/data.js';
import { train } from '../train/loop.js';
import { runFingerprint, treeDigest, tensorDigest, withDefaults } from '../train/fingerprint.js';
import type { Schedule } from '../train/schedule.js';
import { applyFinalNorm, tokenRows, unembed, type PromptInput } from './common.js';
import { logitLens, type LogitLensResult } from './lens.js';
import { hookName } from '../model/hook-names.js';
import { parseJsonObject } from '../io/json.js';
import {
  checkTunedLens,
  translate,
  tunedLensFromParts,
  unembedDigestBytes,
  TUNED_LENS_CONFIG,
  TUNED_LENS_PARAMS,
  type TunedLens,
} from './tuned-lens-core.js';

export {
  translate,
  checkTunedLens,
  tunedLensFromParts,
  fetchTunedLens,
  unembedSha256,
  type TunedLens,
  type TunedLensTranslator,
} from './tuned-lens-core.js';

/** A tuned lens whose every translator is zero: exactly the logit lens (the paper's initialisation). */
export function initTunedLens(model: HookedTransformer): TunedLens {
  const { dModel: d, nLayers: n } = model.cfg;
  return { dModel: d, nLayers: n, translators: Array.from({ length: n }, () => ({ W: zeros([d, d]), b: zeros([d]) })) };
}

/**
 * The tuned lens's logits for residuals read at `blocks.{layer}.hook_resid_pre`: translator,
 * final norm (its statistics recomputed, as `applyFinalNorm`), unembedding.
 * [..., d_model] -> [..., d_vocab]. `layer` = n_layers reads the final residual stream
 * (the last block's resid_post) with no translator: the model's own logits.
 */
export function tunedLensLogits(model: HookedTransformer, lens: TunedLens, layer: number, resid: Tensor): Tensor {
  checkTunedLens(model, lens, 'tunedLensLogits');
  const n = model.cfg.nLayers;
  if (!Number.isInteger(layer) || layer < 0 || layer > n) throw new Error(`tunedLensLogits: layer ${layer} is out of range (0..${n})`);
  const h = layer === n ? resid : translate(lens.translators[layer]!, resid);
  return unembed(model, applyFinalNorm(model, h));
}

/** Where the training tokens come from. */
export type LensTokenData =
  /** A fixed set of [rows, pos] token ids; each step takes `batchSize` random rows (all, by default). */
  | TokenInput
  /** A batch of [batch, pos] token ids made from a seeded generator each step. */
  | ((rng: PRNG) => TokenInput)
  /** A data source of [batch, pos] tensors or `TokenBatch`es (e.g. `tokenWindows` from src/train). */
  | DataSource<Tensor | TokenBatch>;

export interface TrainTunedLensOptions {
  /** Optimizer steps (default 250, as the paper). */
  steps?: number;
  /** Adam learning rate or schedule (default 1e-3). */
  lr?: number | Schedule;
  /** Decoupled weight decay (AdamW; default 0: plain Adam). */
  weightDecay?: number;
  /** Rows per step when `data` is a fixed set of token rows (default all of them). */
  batchSize?: number;
  /** Seed of the row sampler or of a generator function (default 0). */
  seed?: number;
  clipGradNorm?: number;
  /** Start from these translators (default zero: the logit lens). */
  init?: TunedLens;
  /** Run directory for metrics and checkpoints (see `train`); with `resume`, continues a run. */
  outDir?: string;
  resume?: boolean;
  progress?: boolean | 'auto';
  onLog?: (record: Record<string, number | string>) => void;
}

/**
 * The options outside a tuned-lens run's fingerprint (every other one is checked on resume): how
 * long to train (a schedule is compared by its values over the steps done), where, and what is
 * shown.
 */
export const TUNED_LENS_NOT_FINGERPRINTED = [
  'steps',
  'outDir',
  'resume',
  'progress',
  'onLog',
] as const satisfies readonly (keyof TrainTunedLensOptions)[];

/**
 * What a tuned-lens run's checkpoints record: the model (its config and a digest of its weights),
 * the training tokens (a digest of a fixed set; a generator or data source only by kind, its
 * position being saved) and every option but `TUNED_LENS_NOT_FINGERPRINTED`.
 */
function tunedLensFingerprint(model: HookedTransformer, data: LensTokenData, options: TrainTunedLensOptions): Record<string, unknown> {
  return {
    tunedLens: true,
    model: { cfg: model.cfg, paramsSha256: treeDigest(model.params) },
    data:
      typeof data === 'function'
        ? 'a generator of token batches'
        : isDataSource(data)
          ? 'a data source'
          : { tokensSha256: tensorDigest(promptTokensOf(data as TokenInput)) },
    ...runFingerprint(withDefaults<TrainTunedLensOptions>({ lr: 1e-3, weightDecay: 0, seed: 0 }, options), TUNED_LENS_NOT_FINGERPRINTED, {
      lr: (lr: number | Schedule) => (typeof lr === 'number' ? lr : 'a schedule (compared by its values over the steps done)'),
      init: (lens: TunedLens) => `sha256:${treeDigest(lens.translators)}`,
    }),
  };
}

/**
 * Trains a tuned lens on `model` (Belrose et al. 2023): every step caches the residual stream of
 * a batch of tokens with `runWithCache` (the model is frozen), then one compiled Adam step lowers
 * sum over layers of mean over tokens of KL(final distribution || lens distribution at layer l).
 * Logged metrics: `loss` (the sum) and `kl_{l}` per layer.
 */
export async function trainTunedLens(
  model: HookedTransformer,
  data: LensTokenData,
  options: TrainTunedLensOptions = {},
): Promise<{ lens: TunedLens; lastLoss: number; history: Record<string, number | string>[] }> {
  const n = model.cfg.nLayers;
  const init = options.init ?? initTunedLens(model);
  checkTunedLens(model, init, 'trainTunedLens');
  const tokens = tokenSource(data, options);
  const names = lensHookNames(model);
  const source: DataSource<LensBatch> = {
    next: () => {
      const toks = tokens.next();
      const { logits, cache } = model.runWithCache(toks, { names });
      const resid = stack(
        Array.from({ length: n }, (_, l) => flatTokens(cache.get(names[l]!))),
        0,
      ); // [n_layers, N, d_model]
      return { resid, logp: flatTokens(logits).logSoftmax(-1) };
    },
    getState: () => tokens.getState(),
    setState: (s) => tokens.setState(s),
  };
  const wd = options.weightDecay ?? 0;
  const result = await train({
    params: { translators: init.translators.map((t) => ({ W: t.W, b: t.b })) },
    loss: (p, batch: LensBatch) => {
      const kls = p.translators.map((t, l) => klToFinal(model, batch.logp, translate(t, batch.resid.index([l]))));
      const metrics: Record<string, Tensor> = {};
      kls.forEach((k, l) => (metrics[`kl_${l}`] = k));
      return { loss: kls.reduce((a, b) => a.add(b)), metrics };
    },
    optimizer: wd > 0 ? adamw({ weightDecay: wd }) : adam(),
    data: source,
    steps: options.steps ?? 250,
    lr: options.lr ?? 1e-3,
    ...(options.clipGradNorm !== undefined ? { clipGradNorm: options.clipGradNorm } : {}),
    ...(options.outDir !== undefined ? { outDir: options.outDir, config: tunedLensFingerprint(model, data, options) } : {}),
    ...(options.resume !== undefined ? { resume: options.resume } : {}),
    ...(options.onLog ? { onLog: options.onLog } : {}),
    progress: options.progress ?? false,
  });
  return {
    lens: { dModel: model.cfg.dModel, nLayers: n, translators: result.params.translators },
    lastLoss: result.lastLoss,
    history: result.history,
  };
}

interface LensBatch {
  /** [n_layers, N, d_model]: resid_pre of each layer at N token positions. */
  resid: Tensor;
  /** [N, d_vocab]: the model's final log-probabilities at the same positions. */
  logp: Tensor;
}

/** Mean over rows of KL(p || q) with p = exp(logp) and q from the lens residual h [N, d_model]. */
function klToFinal(model: HookedTransformer, logp: Tensor, h: Tensor): Tensor {
  const logq = unembed(model, applyFinalNorm(model, h)).logSoftmax(-1);
  return logp.exp().mul(logp.sub(logq)).sum(-1).mean();
}

/** [batch, pos, ...rest] -> [batch * pos, ...rest]. */
function flatTokens(x: Tensor): Tensor {
  const [b, s, ...rest] = x.shape;
  return x.reshape([b! * s!, ...rest]);
}

function lensHookNames(model: HookedTransformer): string[] {
  const n = model.cfg.nLayers;
  return [...Array.from({ length: n }, (_, l) => hookName('resid_pre', l)), hookName('resid_post', n - 1)];
}

function isDataSource(x: unknown): x is DataSource<Tensor | TokenBatch> {
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof Tensor) &&
    !Array.isArray(x) &&
    typeof (x as { next?: unknown }).next === 'function'
  );
}

/** Any `LensTokenData` as a data source of [batch, pos] int64 token tensors. */
function tokenSource(data: LensTokenData, options: { batchSize?: number; seed?: number }): DataSource<Tensor> {
  const asTokens = (x: TokenInput | TokenBatch): Tensor => {
    if (!(x instanceof Tensor) && !Array.isArray(x) && typeof x === 'object' && 'tokens' in x) x = x.tokens;
    return promptTokensOf(x as TokenInput);
  };
  if (typeof data === 'function') {
    const make = data;
    return syntheticData((rng) => asTokens(make(rng)), { seed: options.seed ?? 0 });
  }
  if (isDataSource(data)) {
    const src = data;
    return { next: () => asTokens(src.next()), getState: () => src.getState(), setState: (s) => src.setState(s) };
  }
  const all = asTokens(data as TokenInput);
  const rows = all.shape[0]!;
  const bs = options.batchSize ?? rows;
  if (!Number.isInteger(bs) || bs < 1 || bs > rows)
    throw new Error(`trainTunedLens: batchSize ${bs} must be between 1 and the ${rows} rows of data`);
  if (bs === rows) return fixedData(all);
  const ids = tokenRows(all);
  const s = all.shape[1]!;
  return syntheticData(
    (rng) => {
      // bs distinct rows, by a partial Fisher-Yates shuffle.
      const order = Array.from({ length: rows }, (_, i) => i);
      for (let i = 0; i < bs; i++) {
        const j = i + rng.int(rows - i);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      return tensor(
        order.slice(0, bs).flatMap((r) => ids[r]!),
        [bs, s],
        'int64',
      );
    },
    { seed: options.seed ?? 0 },
  );
}

/** [batch, pos] int64 ids of token input (no text: a lens trains on token ids). */
function promptTokensOf(x: TokenInput): Tensor {
  if (x instanceof Tensor) {
    if (x.rank !== 2) throw new Error(`tuned lens: tokens must be [batch, pos], got shape [${x.shape}]`);
    return x.cast('int64');
  }
  const rows = (Array.isArray(x[0]) ? x : [x]) as readonly (readonly number[])[];
  const s = rows[0]?.length ?? 0;
  if (s === 0) throw new Error('tuned lens: empty token batch');
  if (rows.some((r) => r.length !== s)) throw new Error('tuned lens: token rows have different lengths');
  return tensor(rows.flat(), [rows.length, s], 'int64');
}

/** Per-layer mean KL divergence to the model's final distribution, for the logit and tuned lenses. */
export interface LensKlResult {
  /** '0_pre', ..., '{n-1}_pre', 'final_post' (as `logitLens`). */
  labels: string[];
  /** Mean over token positions of KL(final || logit lens) per layer, in nats (0 for 'final_post'). */
  logitLens: number[];
  /** The same for the tuned lens, when one is given. */
  tunedLens: number[] | null;
}

/**
 * The paper's comparison (Belrose et al. 2023, fig. 2): at each layer, the mean over every token
 * position of `tokens` ([batch, pos]) of KL(final distribution || lens distribution), for the
 * logit lens and (when `lens` is given) the tuned lens. Lower is closer to the model's output.
 */
export function compareLenses(model: HookedTransformer, tokens: TokenInput, lens?: TunedLens): LensKlResult {
  if (lens) checkTunedLens(model, lens, 'compareLenses');
  const n = model.cfg.nLayers;
  const names = lensHookNames(model);
  const { logits, cache } = model.runWithCache(promptTokensOf(tokens), { names });
  const logp = flatTokens(logits).logSoftmax(-1);
  const logitKl: number[] = [];
  const tunedKl: number[] = [];
  for (let l = 0; l < n; l++) {
    const h = flatTokens(cache.get(names[l]!));
    logitKl.push(lensKlValue(model, logp, h));
    if (lens) tunedKl.push(lensKlValue(model, logp, translate(lens.translators[l]!, h)));
  }
  logitKl.push(0);
  tunedKl.push(0);
  return {
    labels: [...Array.from({ length: n }, (_, l) => `${l}_pre`), 'final_post'],
    logitLens: logitKl,
    tunedLens: lens ? tunedKl : null,
  };
}

function lensKlValue(model: HookedTransformer, logp: Tensor, h: Tensor): number {
  return Math.max(0, klToFinal(model, logp, h).item());
}

/**
 * The tuned lens of one prompt, shaped as `logitLens`'s result: at each layer ('0_pre' ...
 * 'final_post') and position, the `topK` (default 5) most likely next tokens under the tuned
 * lens, and its logits [n_layers + 1, pos, d_vocab]; the last layer is the model's output.
 */
export function tunedLens(model: HookedTransformer, lens: TunedLens, input: PromptInput, options: { topK?: number } = {}): LogitLensResult {
  return logitLens(model, input, { ...options, tunedLens: lens });
}

/** SHA-256 (hex) of the model's unembedding as `unembed_sha256` records it (`unembedDigestBytes`). */
export function unembedSha256Sync(model: HookedTransformer): string {
  return createHash('sha256').update(unembedDigestBytes(model)).digest('hex');
}

const CONFIG_FILE = TUNED_LENS_CONFIG;
const PARAMS_FILE = TUNED_LENS_PARAMS;

/**
 * Writes the lens to `dir` (created if needed), each file atomically: `params.safetensors`
 * (`{l}.weight` [d_model, d_model] as PyTorch's out x in, `{l}.bias` [d_model]) and then
 * `config.json` (the tuned-lens library's config fields plus `format: 'glassbox-tuned-lens'`, and
 * with `model` the hash of its unembedding, `unembed_sha256`, which loading checks).
 */
export function saveTunedLens(dir: string, lens: TunedLens, options: { baseModel?: string; model?: HookedTransformer } = {}): void {
  if (options.model) checkTunedLens(options.model, lens, 'saveTunedLens');
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, Tensor> = {};
  lens.translators.forEach((t, l) => {
    tensors[`${l}.weight`] = t.W.transpose().cast('float32');
    tensors[`${l}.bias`] = t.b.cast('float32');
  });
  saveSafetensors(join(dir, PARAMS_FILE), tensors, { metadata: { format: 'pt' } });
  const config = {
    base_model_name_or_path: options.baseModel ?? '',
    d_model: lens.dModel,
    num_hidden_layers: lens.nLayers,
    bias: true,
    base_model_revision: null,
    unembed_hash: null,
    ...(options.model ? { unembed_sha256: unembedSha256Sync(options.model) } : {}),
    lens_type: 'linear_tuned_lens',
    format: 'glassbox-tuned-lens',
    version: 1,
  };
  writeFileAtomic(join(dir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
}

/**
 * Reads a lens written by `saveTunedLens` (or the tuned-lens library's `config.json` with its
 * `params.pt` state dict converted to `params.safetensors`) and checks it against `model`: an
 * error names the file whose d_model, layer count or tensor shapes do not match, or whose
 * `unembed_sha256` (when recorded) is not the model's: a lens trained for other weights.
 */
export function loadTunedLens(dir: string, model: HookedTransformer): TunedLens {
  const cfgPath = join(dir, CONFIG_FILE);
  const paramsPath = join(dir, PARAMS_FILE);
  if (!existsSync(cfgPath)) throw new Error(`${cfgPath}: no such file (a tuned lens directory holds ${CONFIG_FILE} and ${PARAMS_FILE})`);
  const cfg = parseJsonObject(readFileSync(cfgPath, 'utf8'), cfgPath);
  if (!existsSync(paramsPath)) throw new Error(`${paramsPath}: no such file`);
  const digest = typeof cfg.unembed_sha256 === 'string' ? unembedSha256Sync(model) : undefined;
  return tunedLensFromParts(cfg, loadSafetensors(paramsPath), model, { config: cfgPath, params: paramsPath }, digest);
}
