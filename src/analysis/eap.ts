/**
 * Edge attribution patching with integrated gradients (EAP-IG; Hanna, Pezzelle & Belinkov 2024,
 * "Have faith in faithfulness"), and plain EAP (Syed, Rager & Conmy 2023).
 *
 * The model is read as a graph whose edges run through the residual stream. Upstream nodes write
 * to it: the input embeddings ('input', `blocks.0.hook_resid_pre`), each attention head's output
 * ('L{l}H{h}': its slice of `hook_z` times its rows of W_O) and each MLP's output ('MLP{l}',
 * `hook_mlp_out`). Downstream nodes read from it: each head's query, key and value input
 * ('L{l}H{h}.q', '.k', '.v'; with grouped-query attention keys and values belong to the KV head:
 * 'L{l}KV{g}.k'), each MLP's input ('MLP{l}') and the logits ('logits', the final residual
 * stream). An edge u -> d exists when u writes before d reads. Its score is
 *
 *   (u_clean - u_corrupted) . (1/m) sum over k of dM/d(input of d) at z_corrupted + (k/m)(z_clean - z_corrupted)
 *
 * summed over batch and positions: the activation difference of the upstream node times the
 * gradient with respect to the downstream node's own input, averaged over m points on the
 * straight line from the corrupted to the clean input embeddings z (k = 0..m-1, as the reference
 * implementation, hannamw/EAP-IG, does; "EAP-IG-inputs"). Scores are divided by
 * M(clean) - M(corrupted), so they read like the normalised activation patching results.
 *
 * "The gradient with respect to the downstream node's input": the reference code splits the
 * residual stream into a copy per head input (TransformerLens's use_split_qkv_input) and reads
 * the gradient of each copy, which flows back through that head's own LayerNorm. This model has
 * no split inputs, so the same gradient is computed from the gradients at `attn.hook_q|k|v`
 * (per head, after W_Q / W_K / W_V) and `mlp.hook_pre` (and `hook_pre_linear` for gated MLPs),
 * mapped back through the weight matrix and through the norm's Jacobian at that point. By default
 * the Jacobian is exact, including the norm scale's dependence on its input, which makes the
 * result equal to the split-input gradient; `frozenNorm: true` instead treats the scale as a
 * constant (the approximation of EAP implementations that take the gradient at the normalised
 * input, e.g. with LayerNorm folded and its scale frozen). The logits node's gradient is the one
 * at the final `hook_resid_post` (through ln_final, exactly).
 *
 * Plain EAP (`method: 'EAP'`) takes a single gradient at the clean run (as Syed et al. and the
 * reference `get_scores_eap`), so its score estimates M(clean) - M(clean with the edge corrupted).
 * Not supported: models with norms after attention / MLP (Gemma 2), whose per-head outputs do
 * not add up to the residual stream, nor models whose norms act after the residual add (OPT-350m).
 */
import { Tensor, concat, einsum, tensor } from '../tensor/index.js';
import type { HookedTransformer, RunOptions } from '../model/hooked.js';
import type { NormParams } from '../model/forward.js';
import type { ModelConfig } from '../model/config.js';
import { promptTokens, type PromptInput } from './common.js';
import type { PatchingProblem } from './patching.js';
import { problemTensorMetric, type TensorMetric } from './attribution.js';
import { integrationPoints, pathIntegratedGradients, type IntegrationRule } from './integrated-gradients.js';
import { memoryOptionsOf, type ChunkPlan, type MemoryOptions } from './memory.js';
import { hookName } from '../model/hook-names.js';

/** The nodes and possible edges of a model's residual-stream graph. */
export interface EapGraph {
  /** 'input', then per layer 'L{l}H{h}' for each head and 'MLP{l}' (when the model has MLPs). */
  upstream: string[];
  /** Per layer 'L{l}H{h}.q' per head, '.k' and '.v' per KV head, 'MLP{l}'; then 'logits'. */
  downstream: string[];
  /** [n_upstream][n_downstream]: whether the upstream node writes before the downstream node reads. */
  edgeMask: boolean[][];
}

/** 'L{l}H{h}' with one KV head per query head; 'L{l}KV{g}' under grouped-query attention. */
function kvName(cfg: ModelConfig, l: number, g: number): string {
  return cfg.nKVHeads === cfg.nHeads ? `L${l}H${g}` : `L${l}KV${g}`;
}

/** The graph of upstream and downstream nodes that EAP scores (see the module comment). */
export function eapGraph(model: HookedTransformer): EapGraph {
  const { cfg } = model;
  const { nLayers: L, nHeads: H, nKVHeads: KV } = cfg;
  const hasMlp = !cfg.attnOnly;
  // Write and read times: the input is written at 0; layer l's attention reads and writes at
  // 2l + 1, its MLP reads at 2l + 2 (2l + 1 with a parallel residual) and writes at 2l + 2.
  const upstream: string[] = ['input'];
  const writes: number[] = [0];
  const downstream: string[] = [];
  const reads: number[] = [];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      upstream.push(`L${l}H${h}`);
      writes.push(2 * l + 1);
    }
    if (hasMlp) {
      upstream.push(`MLP${l}`);
      writes.push(2 * l + 2);
    }
    for (let h = 0; h < H; h++) downstream.push(`L${l}H${h}.q`);
    for (let g = 0; g < KV; g++) downstream.push(`${kvName(cfg, l, g)}.k`);
    for (let g = 0; g < KV; g++) downstream.push(`${kvName(cfg, l, g)}.v`);
    for (let i = 0; i < H + 2 * KV; i++) reads.push(2 * l + 1);
    if (hasMlp) {
      downstream.push(`MLP${l}`);
      reads.push(cfg.parallelResidual ? 2 * l + 1 : 2 * l + 2);
    }
  }
  downstream.push('logits');
  reads.push(2 * L + 1);
  const edgeMask = writes.map((w) => reads.map((r) => w < r));
  return { upstream, downstream, edgeMask };
}

/**
 * The vector-Jacobian product of a norm at input x [..., d_model] with the output gradient g
 * (broadcast against x): exact, or with the scale sqrt(mean(...) + eps) held constant.
 */
export function normVjp(cfg: ModelConfig, p: NormParams, x: Tensor, g: Tensor, frozen = false): Tensor {
  if (cfg.norm === 'none') return g;
  const w = p.w ? (cfg.normWeightOffset ? p.w.add(cfg.normWeightOffset) : p.w) : null;
  const u = w ? g.mul(w) : g;
  if (cfg.norm === 'layernorm') {
    const c = x.sub(x.mean(-1, true));
    const s = c.square().mean(-1, true).add(cfg.normEps).sqrt();
    const uc = u.sub(u.mean(-1, true));
    if (frozen) return uc.div(s);
    const n = c.div(s);
    return uc.sub(n.mul(u.mul(n).mean(-1, true))).div(s);
  }
  const s = x.square().mean(-1, true).add(cfg.normEps).sqrt();
  if (frozen) return u.div(s);
  const n = x.div(s);
  return u.sub(n.mul(u.mul(n).mean(-1, true))).div(s);
}

/** The MLP node's input gradient is taken through a dense MLP's W_in / W_gate. */
function refuseMoe(model: HookedTransformer): void {
  if (model.cfg.moe) throw new Error(`edge attribution patching: mixture-of-experts MLPs (${model.cfg.family}) are not supported`);
}

/** The hook points whose values and gradients give the downstream nodes' input gradients. */
function gradientMarks(model: HookedTransformer): string[] {
  const { cfg } = model;
  const marks: string[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    marks.push(hookName('resid_pre', l), hookName('q', l), hookName('k', l), hookName('v', l));
    if (!cfg.attnOnly) {
      marks.push(hookName('mlp_in', l), hookName('pre', l));
      if (cfg.gatedMlp) marks.push(hookName('pre_linear', l));
    }
  }
  marks.push(hookName('resid_post', cfg.nLayers - 1));
  return marks;
}

/**
 * Inside the traced graph: each downstream node's input gradient, summed over the `k` stacked
 * copies of the batch (rows = k * batch), [n_downstream, batch, pos, d_model] in `eapGraph`'s
 * order. Each part is summed over the copies before the parts are joined, so the largest
 * intermediate is one layer's [n_heads, rows, pos, d_model].
 */
function downstreamGrads(model: HookedTransformer, t: Record<string, { value: Tensor; grad: Tensor }>, frozen: boolean, k: number): Tensor {
  const { cfg, params } = model;
  const { dModel: d, nHeads: H, nKVHeads: KV, dHead: dh } = cfg;
  const parts: Tensor[] = [];
  /** [n, rows, pos, d_model] -> [n, batch, pos, d_model], summed over the copies. */
  const add = (g: Tensor): void => {
    const [n, rows, ...rest] = g.shape as [number, number, ...number[]];
    parts.push(k === 1 ? g : g.reshape([n, k, rows / k, ...rest]).sum(1));
  };
  const perHead = (W: Tensor, n: number) => W.reshape([d, n, dh]).permute([1, 2, 0]); // [n, d_head, d_model]
  // OLMo 2 has no norm before attention and the MLP.
  const preNormVjp = (p: NormParams, x: Tensor, g: Tensor) => (cfg.preNorms === false ? g : normVjp(cfg, p, x, g, frozen));
  for (let l = 0; l < cfg.nLayers; l++) {
    const blk = params.blocks[l]!;
    const x = t[hookName('resid_pre', l)]!.value.unsqueeze(2); // [rows, pos, 1, d_model]
    for (const [hook, W, n] of [
      ['hook_q', blk.attn.W_Q, H],
      ['hook_k', blk.attn.W_K, KV],
      ['hook_v', blk.attn.W_V, KV],
    ] as const) {
      const g = t[`blocks.${l}.attn.${hook}`]!.grad; // [rows, pos, n, d_head]
      const gIn = einsum('bphe,hed->bphd', g, perHead(W, n)); // d M / d (norm output), per head
      add(preNormVjp(blk.ln1, x, gIn).permute([2, 0, 1, 3])); // [n, rows, pos, d_model]
    }
    if (!cfg.attnOnly) {
      const mlp = blk.mlp!;
      const xm = t[hookName('mlp_in', l)]!.value;
      const gPre = t[hookName('pre', l)]!.grad;
      let gIn = gPre.matmul((cfg.gatedMlp ? mlp.W_gate! : mlp.W_in).transpose());
      if (cfg.gatedMlp) gIn = gIn.add(t[hookName('pre_linear', l)]!.grad.matmul(mlp.W_in.transpose()));
      add(preNormVjp(blk.ln2, xm, gIn).unsqueeze(0));
    }
  }
  add(t[hookName('resid_post', cfg.nLayers - 1)]!.grad.unsqueeze(0));
  return concat(parts, 0);
}

/**
 * The gradient of `metric` with respect to each downstream node's own input (see the module
 * comment) on one forward+backward pass over `tokens`: [n_downstream, batch, pos, d_model] in
 * `eapGraph`'s order. By construction the residual stream's gradient splits into them: for a
 * sequential block, dM/d resid_pre = sum over the layer's q, k, v nodes + dM/d resid_mid, and
 * dM/d resid_mid = the MLP node + dM/d resid_post (exactly, unless `frozenNorm`).
 */
export function eapNodeGradients(
  model: HookedTransformer,
  tokens: PromptInput,
  metric: TensorMetric,
  options: { attentionMask?: RunOptions['attentionMask']; frozenNorm?: boolean } = {},
): Tensor {
  refuseMoe(model);
  const toks = promptTokens(model, tokens);
  const { grads: out } = model.hooked(toks, {
    grads: gradientMarks(model),
    metric,
    ...(options.attentionMask ? { attentionMask: options.attentionMask } : {}),
    reduce: (t) => downstreamGrads(model, t, options.frozenNorm ?? false, 1),
  });
  return out;
}

export interface EapOptions extends MemoryOptions {
  /** 'EAP-IG' (default): gradients averaged along the input interpolation; 'EAP': one gradient at the clean run. */
  method?: 'EAP-IG' | 'EAP';
  /** Interpolation points of EAP-IG (default 5). */
  steps?: number;
  /** Default 'riemann_left' (k/m for k = 0..m-1, as the reference implementation). */
  rule?: IntegrationRule;
  /** Treat each norm's scale as a constant when mapping gradients back through it (default false: exact). */
  frozenNorm?: boolean;
  /** A differentiable metric instead of the problem's. */
  metric?: TensorMetric;
  /** Most rows (points x batch) per forward+backward pass; default: as many as the memory budget holds (see memory.ts). */
  maxBatch?: number;
}

/** One scored edge. */
export interface EapEdge {
  from: string;
  to: string;
  /** Normalised score (divided by M(clean) - M(corrupted)). */
  score: number;
}

export interface EapResult extends EapGraph {
  /** [n_upstream, n_downstream] normalised scores, 0 where there is no edge. */
  scores: Tensor;
  /** Every real edge, by decreasing |score|. */
  edges: EapEdge[];
  /** The raw metric on the clean and on the corrupted prompt. */
  cleanValue: number;
  corruptedValue: number;
  /** How the interpolation points were split into forward+backward passes. */
  plan: ChunkPlan;
}

/**
 * Scores every edge of the model's graph for a clean/corrupted problem with EAP-IG (or EAP).
 * Costs two cached forward passes and `steps` forward+backward points (stacked into as few passes
 * as `maxBatch` or the memory budget allows).
 */
export function edgeAttributionPatching(model: HookedTransformer, problem: PatchingProblem, options: EapOptions = {}): EapResult {
  const { cfg } = model;
  if (cfg.postNorms)
    throw new Error('edge attribution patching: models with post-attention / post-MLP norms (Gemma 2, OLMo 2) are not supported');
  if (cfg.normAfterAdd)
    throw new Error('edge attribution patching: models whose norms act after the residual add (OPT-350m) are not supported');
  refuseMoe(model);
  const { nLayers: L, nHeads: H, dHead: dh, dModel: d } = cfg;
  const graph = eapGraph(model);
  const clean = promptTokens(model, problem.clean);
  const corrupted = promptTokens(model, problem.corrupted);
  if (clean.shape[0] !== corrupted.shape[0] || clean.shape[1] !== corrupted.shape[1])
    throw new Error(
      `edge attribution patching: clean [${clean.shape}] and corrupted [${corrupted.shape}] prompts must have the same shape`,
    );
  const [b, s] = clean.shape as [number, number];
  const metric = problemTensorMetric(model, problem, options.metric);
  const run = problem.attentionMask ? { attentionMask: problem.attentionMask } : {};

  const input = 'blocks.0.hook_resid_pre';
  const names = [
    input,
    ...Array.from({ length: L }, (_, l) => [hookName('z', l), ...(cfg.attnOnly ? [] : [hookName('mlp_out', l)])]).flat(),
  ];
  const cleanRun = model.runWithCache(clean, { names, ...run });
  const corrRun = model.runWithCache(corrupted, { names, ...run });
  const cleanValue = metric(cleanRun.logits).item();
  const corruptedValue = metric(corrRun.logits).item();
  const span = cleanValue - corruptedValue;
  if (!(Math.abs(span) > 1e-12))
    throw new Error(
      `edge attribution patching: the metric is the same on the clean and corrupted prompts (${cleanValue}); nothing to recover`,
    );

  // Upstream activation differences (clean - corrupted), [n_upstream, batch * pos * d_model].
  const diff = (name: string) => cleanRun.cache.get(name).sub(corrRun.cache.get(name));
  const ups: Tensor[] = [diff(input).unsqueeze(0)];
  for (let l = 0; l < L; l++) {
    const wO = model.params.blocks[l]!.attn.W_O.reshape([H, dh, d]);
    ups.push(einsum('bphe,hed->hbpd', diff(hookName('z', l)), wO)); // each head's output in the residual stream
    if (!cfg.attnOnly) ups.push(diff(hookName('mlp_out', l)).unsqueeze(0));
  }
  const U = concat(ups, 0).reshape([graph.upstream.length, b * s * d]);

  // Downstream input gradients, averaged along the path, [n_downstream, batch * pos * d_model].
  const method = options.method ?? 'EAP-IG';
  const { alphas, weights } =
    method === 'EAP' ? { alphas: [1], weights: [1] } : integrationPoints(options.steps ?? 5, options.rule ?? 'riemann_left');
  const frozen = options.frozenNorm ?? false;
  let plan: ChunkPlan = { size: 0, count: 0 };
  const { grads } = pathIntegratedGradients(model, clean, {
    hook: input,
    base: corrRun.cache.get(input),
    target: cleanRun.cache.get(input),
    metric,
    alphas,
    weights,
    ...run,
    ...memoryOptionsOf(options),
    // Each downstream node's input gradient, [rows, pos, d_model], before the sum over copies.
    extraPerPosition: 1.25 * graph.downstream.length * d,
    onPlan: (p) => (plan = p),
    extraMarks: gradientMarks(model).filter((n) => n !== input),
    // The weights of the points are in the metric, so the gradients just add up over the copies.
    reduce: (t, k) => ({ grads: downstreamGrads(model, t, frozen, k).reshape([graph.downstream.length, b * s * d]) }),
  });
  const raw = U.matmul(grads.transpose()).div(span); // [n_up, n_down]
  const maskT = tensor(
    graph.edgeMask.flat().map((m) => (m ? 1 : 0)),
    [graph.upstream.length, graph.downstream.length],
  );
  const scores = raw.mul(maskT);
  const vals = scores.dataSync() as Float32Array;
  const nd = graph.downstream.length;
  const edges: EapEdge[] = [];
  graph.edgeMask.forEach((row, i) =>
    row.forEach((ok, j) => {
      if (ok) edges.push({ from: graph.upstream[i]!, to: graph.downstream[j]!, score: vals[i * nd + j]! });
    }),
  );
  edges.sort((x, y) => Math.abs(y.score) - Math.abs(x.score));
  return { ...graph, scores, edges, cleanValue, corruptedValue, plan };
}

/** A circuit: a set of edges and the nodes they touch. */
export interface EapCircuit {
  edges: EapEdge[];
  /** Components (upstream names, plus 'logits') the edges touch, in graph order. */
  nodes: string[];
}

/** The component a downstream node belongs to ('L1H0.k' -> ['L1H0'], a KV head -> its query heads). */
function componentsOf(cfg: ModelConfig | null, down: string): string[] {
  if (down === 'logits' || /^MLP\d+$/.test(down)) return [down];
  const kv = /^L(\d+)KV(\d+)\./.exec(down);
  if (kv && cfg) {
    const r = cfg.nHeads / cfg.nKVHeads;
    return Array.from({ length: r }, (_, i) => `L${kv[1]}H${Number(kv[2]) * r + i}`);
  }
  return [down.replace(/\.[qkv]$/, '')];
}

/**
 * The circuit of the `n` highest-scoring edges (by |score| unless `absolute` is false), as
 * hannamw/EAP-IG's `apply_topn`. With `prune` (default true), edges that cannot lie on a path
 * from the input to the logits inside the circuit are then removed, repeatedly: those whose
 * upstream component has no incoming edge (the input excepted) or whose downstream component
 * has no outgoing edge (the logits excepted). Under grouped-query attention pass the model (a KV
 * head's edges feed each query head of its group).
 */
export function eapCircuit(
  result: EapResult,
  n: number,
  options: { absolute?: boolean; prune?: boolean; model?: HookedTransformer } = {},
): EapCircuit {
  if (!Number.isInteger(n) || n < 0) throw new Error(`eapCircuit: n must be a non-negative integer, got ${n}`);
  const absolute = options.absolute ?? true;
  const ranked = absolute ? result.edges : [...result.edges].sort((x, y) => y.score - x.score);
  const kvHeads = result.downstream.some((dn) => /KV\d+\./.test(dn));
  if (kvHeads && !options.model)
    throw new Error('eapCircuit: pass the model for a grouped-query attention graph (to map KV heads to heads)');
  const comps = (dn: string): string[] => componentsOf(options.model?.cfg ?? null, dn);
  let edges = ranked.slice(0, n);
  if (options.prune ?? true) {
    for (;;) {
      const fed = new Set<string>(['input']);
      const feeding = new Set<string>(['logits']);
      for (const e of edges) {
        for (const c of comps(e.to)) fed.add(c);
        feeding.add(e.from);
      }
      const kept = edges.filter((e) => fed.has(e.from) && comps(e.to).some((c) => feeding.has(c)));
      if (kept.length === edges.length) break;
      edges = kept;
    }
  }
  const touched = new Set<string>();
  for (const e of edges) {
    touched.add(e.from);
    for (const c of comps(e.to)) touched.add(c);
  }
  return { edges, nodes: [...result.upstream, 'logits'].filter((c) => touched.has(c)) };
}
