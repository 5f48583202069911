/**
 * The transformer forward pass, for every family, in one readable function. Family differences
 * come from the config (see config.ts) and are named where they act. Every activation passes
 * through a hook point with its TransformerLens name, so it can be read, replaced or marked for
 * gradients; the whole pass is traced into one ONNX Runtime session by the caller.
 *
 * Weight layout (chosen for fast matmuls; TransformerLens shapes are available from the model):
 *   W_Q [d_model, n_heads*d_head]     W_K, W_V [d_model, n_kv_heads*d_head]
 *   W_O [n_heads*d_head, d_model]     W_in, W_gate [d_model, d_mlp]   W_out [d_mlp, d_model]
 *   W_E [d_vocab, d_model]            W_pos [n_ctx, d_model]          W_U [d_model, d_vocab]
 *   mixture of experts: W_router [d_model, n_experts]   W_in, W_gate [n_experts, d_model, d_mlp]
 *                       W_out [n_experts, d_mlp, d_model]
 */
import { concat, scalar, tensor, zeros, type Tensor } from '../tensor/index.js';
import type { ModelConfig, RopeId } from './config.js';

/** Norm weights; both absent after LayerNorm folding (TransformerLens's LNPre / RMSPre). */
export interface NormParams {
  w?: Tensor;
  b?: Tensor;
}

export interface AttnParams {
  W_Q: Tensor;
  W_K: Tensor;
  W_V: Tensor;
  W_O: Tensor;
  b_Q?: Tensor;
  b_K?: Tensor;
  b_V?: Tensor;
  b_O?: Tensor;
  /**
   * q/k norm weights: per head [d_head] (Qwen3, Gemma 3, Phi), one row per head [n_heads or
   * n_kv_heads, d_head] (StableLM), or over all heads [n_heads*d_head] (OLMo 2; k: [n_kv_heads*d_head]).
   */
  q_norm?: Tensor;
  k_norm?: Tensor;
  /** LayerNorm q/k norm biases (Phi), shaped as the weights. */
  q_norm_b?: Tensor;
  k_norm_b?: Tensor;
}

export interface MlpParams {
  W_in: Tensor;
  W_out: Tensor;
  W_gate?: Tensor;
  b_in?: Tensor;
  b_gate?: Tensor;
  b_out?: Tensor;
}

/** Mixtral's mixture of experts: a router and n_experts gated MLPs, stacked on a leading expert axis. */
export interface MoeParams {
  /** [d_model, n_experts]: router logits = x W_router. */
  W_router: Tensor;
  /** [n_experts, d_model, d_mlp]: expert e computes (act(x W_gate[e]) * (x W_in[e])) W_out[e]. */
  W_gate: Tensor;
  W_in: Tensor;
  /** [n_experts, d_mlp, d_model]. */
  W_out: Tensor;
}

export interface BlockParams {
  ln1: NormParams;
  ln2: NormParams;
  /** Gemma 2's norms after attention and after the MLP. */
  ln1_post?: NormParams;
  ln2_post?: NormParams;
  attn: AttnParams;
  /** Absent in attention-only models and mixture-of-experts models. */
  mlp?: MlpParams;
  /** Mixtral: the mixture of experts in place of `mlp`. */
  moe?: MoeParams;
}

export interface ModelParams {
  /** `ln`: BLOOM's LayerNorm on the embeddings (postEmbedNorm). */
  embed: { W_E: Tensor; ln?: NormParams };
  pos_embed?: { W_pos: Tensor };
  blocks: BlockParams[];
  ln_final: NormParams;
  unembed: { W_U: Tensor; b_U?: Tensor };
}

/** A hook point: receives the activation and its name, returns what flows on. */
export interface HookPoints {
  (name: string, x: Tensor): Tensor;
  /** Whether anything reads or changes this hook point (lets the pass use fused ops elsewhere). */
  active(name: string): boolean;
}

export interface ForwardInputs {
  /** [batch, pos] int64 token ids. */
  tokens: Tensor;
  /** [batch, pos] int64 position ids (from the attention mask with left padding). */
  positions: Tensor;
  /** [batch, 1, pos, pos] bool: may query q attend to key k. One per sliding-window size. */
  masks: Map<number | null, Tensor>;
  /**
   * Rotary tables [batch, pos, 1, rotary_dim] (cos and sin), for rotary families: one per RoPE the
   * layers use ('global'; Gemma 3 also 'local'), as masks are one per window.
   */
  rotary?: Map<RopeId, { cos: Tensor; sin: Tensor }>;
  /** ALiBi (BLOOM): [batch, 1, q, k] float, key position minus query position (0 where k > q). */
  alibi?: Tensor;
  /**
   * Decoding with a KV cache of fixed length L: per layer keys and values [batch, L, n_kv_heads,
   * d_head], and `write` [1, L, 1, 1] (1.0 at the slot the new token fills). The masks are then
   * [batch, 1, 1, L]. A fixed L keeps one compiled graph for every decoding step.
   */
  kvCache?: { k: Tensor[]; v: Tensor[]; write: Tensor };
  /** When given, each layer's keys and values (after the cache update) are pushed here. */
  presentKv?: { k: Tensor[]; v: Tensor[] };
  /**
   * Mixture of experts: when given, each MoE layer pushes a bool [batch, pos], set where the
   * router's k-th and (k+1)-th probabilities are equal (the chosen experts are then not unique;
   * the caller refuses such inputs, see `moe`).
   */
  routerTies?: Tensor[];
}

/** Returns logits [batch, pos, d_vocab]. */
export function transformerForward(cfg: ModelConfig, p: ModelParams, inp: ForwardInputs, hp: HookPoints): Tensor {
  let embed = p.embed.W_E.gather(inp.tokens, 0); // [b, pos, d]
  if (cfg.postEmbedNorm) embed = norm(cfg, p.embed.ln!, embed, hp, 'embed.ln'); // BLOOM
  let x = hp('hook_embed', cfg.embedScale !== 1 ? embed.mul(cfg.embedScale) : embed); // Gemma scales by sqrt(d_model)
  if (cfg.positional === 'learned') x = x.add(hp('hook_pos_embed', p.pos_embed!.W_pos.gather(inp.positions, 0)));

  for (let l = 0; l < cfg.nLayers; l++) {
    const blk = p.blocks[l]!;
    const at = (name: string): string => `blocks.${l}.${name}`;
    const residPre = hp(at('hook_resid_pre'), x);

    const attnIn = cfg.normAfterAdd ? residPre : preNorm(cfg, blk.ln1, residPre, hp, at('ln1'));
    let attnOut = attention(cfg, blk.attn, attnIn, inp, hp, l);
    if (cfg.postNorms) attnOut = norm(cfg, blk.ln1_post!, attnOut, hp, at('ln1_post')); // Gemma 2
    attnOut = hp(at('hook_attn_out'), attnOut);

    let mlpOut: Tensor;
    if (cfg.attnOnly) {
      // Attention-only toy models: no MLP, no resid_mid (as TransformerLens's attn_only models).
      x = hp(at('hook_resid_post'), residPre.add(attnOut));
    } else if (cfg.parallelResidual) {
      // GPT-NeoX: the MLP reads the block input, not the attention output.
      const mlpIn = hp(at('hook_mlp_in'), residPre);
      mlpOut = feedForward(cfg, blk, preNorm(cfg, blk.ln2, mlpIn, hp, at('ln2')), inp, hp, l);
      if (cfg.postNorms) mlpOut = norm(cfg, blk.ln2_post!, mlpOut, hp, at('ln2_post'));
      mlpOut = hp(at('hook_mlp_out'), mlpOut);
      x = hp(at('hook_resid_post'), residPre.add(attnOut).add(mlpOut));
    } else if (cfg.normAfterAdd) {
      // OPT-350m: the norms act after each residual add, and their outputs are the residual stream.
      const residMid = hp(at('hook_resid_mid'), norm(cfg, blk.ln1, residPre.add(attnOut), hp, at('ln1')));
      mlpOut = hp(at('hook_mlp_out'), feedForward(cfg, blk, hp(at('hook_mlp_in'), residMid), inp, hp, l));
      x = hp(at('hook_resid_post'), norm(cfg, blk.ln2, residMid.add(mlpOut), hp, at('ln2')));
    } else {
      const residMid = hp(at('hook_resid_mid'), residPre.add(attnOut));
      const mlpIn = hp(at('hook_mlp_in'), residMid);
      mlpOut = feedForward(cfg, blk, preNorm(cfg, blk.ln2, mlpIn, hp, at('ln2')), inp, hp, l);
      if (cfg.postNorms) mlpOut = norm(cfg, blk.ln2_post!, mlpOut, hp, at('ln2_post'));
      mlpOut = hp(at('hook_mlp_out'), mlpOut);
      x = hp(at('hook_resid_post'), residMid.add(mlpOut));
    }
  }

  if (!cfg.normAfterAdd) x = norm(cfg, p.ln_final, x, hp, 'ln_final'); // OPT-350m has no final norm
  let logits = x.matmul(p.unembed.W_U);
  if (p.unembed.b_U) logits = logits.add(p.unembed.b_U);
  if (cfg.finalSoftcap !== null) logits = logits.div(cfg.finalSoftcap).tanh().mul(cfg.finalSoftcap); // Gemma 2
  return logits;
}

/**
 * LayerNorm or RMSNorm with TransformerLens's hook points: `hook_scale` is sqrt(var + eps)
 * [b, pos, 1]; `hook_normalized` is the output after weight and bias for LayerNorm, and before
 * the weight for RMSNorm (as TransformerLens defines them).
 */
function norm(cfg: ModelConfig, p: NormParams, x: Tensor, hp: HookPoints, name: string): Tensor {
  if (cfg.norm === 'none') return x;
  const hooked = hp.active(`${name}.hook_scale`) || hp.active(`${name}.hook_normalized`);
  const w = p.w && cfg.normWeightOffset ? p.w.add(cfg.normWeightOffset) : p.w; // Gemma stores w - 1
  if (cfg.norm === 'layernorm') {
    if (!hooked) return x.layerNorm(w ?? null, p.b ?? null, cfg.normEps);
    const centred = x.sub(x.mean(-1, true));
    const scale = hp(`${name}.hook_scale`, centred.square().mean(-1, true).add(cfg.normEps).sqrt());
    let y = centred.div(scale);
    if (w) y = y.mul(w);
    return hp(`${name}.hook_normalized`, p.b ? y.add(p.b) : y);
  }
  if (!hooked) return x.rmsNorm(w ?? null, cfg.normEps);
  const scale = hp(`${name}.hook_scale`, x.square().mean(-1, true).add(cfg.normEps).sqrt());
  const y = hp(`${name}.hook_normalized`, x.div(scale));
  return w ? y.mul(w) : y;
}

/** The norm before attention or the MLP; OLMo 2 has none (only the norms after them). */
function preNorm(cfg: ModelConfig, p: NormParams, x: Tensor, hp: HookPoints, name: string): Tensor {
  return cfg.preNorms === false ? x : norm(cfg, p, x, hp, name);
}

function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const y = x.matmul(w);
  return b ? y.add(b) : y;
}

/**
 * Rotates the first rotary_dim dims of each head: GPT-NeoX's "rotate half" pairs dim i with
 * i + rotary_dim/2; GPT-J's "rotate every two" (adjacentPairs) pairs dims 2i and 2i+1. The
 * tables come in the matching layout (hooked.ts).
 */
function rope(x: Tensor, r: { cos: Tensor; sin: Tensor }, rotaryDim: number, adjacentPairs: boolean): Tensor {
  const [b, s, h, dh] = x.shape as [number, number, number, number];
  const rot = rotaryDim === dh ? x : x.slice([null, null, null, { end: rotaryDim }]);
  let rotated: Tensor;
  if (adjacentPairs) {
    // GPT-J: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)
    const pairs = rot.reshape([b, s, h, rotaryDim / 2, 2]);
    const even = pairs.slice([null, null, null, null, { end: 1 }]);
    const odd = pairs.slice([null, null, null, null, { start: 1 }]);
    rotated = concat([odd.neg(), even], -1).reshape([b, s, h, rotaryDim]);
  } else {
    const half = rotaryDim / 2;
    const x1 = rot.slice([null, null, null, { end: half }]);
    const x2 = rot.slice([null, null, null, { start: half }]);
    rotated = concat([x2.neg(), x1], -1);
  }
  const out = rot.mul(r.cos).add(rotated.mul(r.sin));
  return rotaryDim === dh ? out : concat([out, x.slice([null, null, null, { start: rotaryDim }])], -1);
}

function attention(cfg: ModelConfig, p: AttnParams, x: Tensor, inp: ForwardInputs, hp: HookPoints, l: number): Tensor {
  const [b, s] = x.shape as [number, number, number];
  const { nHeads: nH, nKVHeads: nKV, dHead: dh } = cfg;
  const at = (name: string): string => `blocks.${l}.attn.${name}`;
  let q = hp(at('hook_q'), linear(x, p.W_Q, p.b_Q).reshape([b, s, nH, dh])); // [b, pos, n_heads, d_head]
  let k = hp(at('hook_k'), linear(x, p.W_K, p.b_K).reshape([b, s, nKV, dh])); // [b, pos, n_kv_heads, d_head]
  let v = hp(at('hook_v'), linear(x, p.W_V, p.b_V).reshape([b, s, nKV, dh]));
  if (cfg.qkNorm && cfg.qkNormAllHeads) {
    // OLMo 2: one RMSNorm over all heads of q (and of k), as if before the split into heads.
    q = q
      .reshape([b, s, nH * dh])
      .rmsNorm(p.q_norm!, cfg.normEps)
      .reshape([b, s, nH, dh]);
    k = k
      .reshape([b, s, nKV * dh])
      .rmsNorm(p.k_norm!, cfg.normEps)
      .reshape([b, s, nKV, dh]);
  } else if (cfg.qkNorm) {
    q = headNorm(cfg, q, p.q_norm!, p.q_norm_b); // Qwen3, Gemma 3, Phi, StableLM
    k = headNorm(cfg, k, p.k_norm!, p.k_norm_b);
  }
  if (cfg.positional === 'rotary') {
    const table = inp.rotary!.get(cfg.layerRope?.[l] ?? 'global')!; // Gemma 3: local layers have their own RoPE
    const pairs = cfg.rotaryAdjacentPairs ?? false; // GPT-J
    q = hp(at('hook_rot_q'), rope(q, table, cfg.rotaryDim, pairs));
    k = hp(at('hook_rot_k'), rope(k, table, cfg.rotaryDim, pairs));
  }
  if (inp.kvCache) {
    // Fill this step's slot of the fixed-length cache (a one-hot blend keeps the graph the same at every step).
    const w = inp.kvCache.write;
    const keep = w.neg().add(1);
    k = inp.kvCache.k[l]!.mul(keep).add(k.mul(w));
    v = inp.kvCache.v[l]!.mul(keep).add(v.mul(w));
  }
  if (inp.presentKv) {
    inp.presentKv.k.push(k);
    inp.presentKv.v.push(v);
  }
  const sk = k.shape[1]!;
  if (nKV !== nH) {
    // Grouped-query attention: each key/value head serves nH / nKV query heads.
    const g = nH / nKV;
    k = k.reshape([b, sk, nKV, 1, dh]).expand([b, sk, nKV, g, dh]).reshape([b, sk, nH, dh]);
    v = v.reshape([b, sk, nKV, 1, dh]).expand([b, sk, nKV, g, dh]).reshape([b, sk, nH, dh]);
  }
  let scores = q
    .permute([0, 2, 1, 3])
    .matmul(k.permute([0, 2, 3, 1]))
    .mul(cfg.attnScale); // [b, n_heads, q, k]
  if (cfg.attnSoftcap !== null) scores = scores.div(cfg.attnSoftcap).tanh().mul(cfg.attnSoftcap); // Gemma 2
  // BLOOM: ALiBi adds slope_h * (key pos - query pos), a penalty growing with distance.
  if (cfg.positional === 'alibi') scores = scores.add(inp.alibi!.mul(tensor(alibiSlopes(nH), [1, nH, 1, 1])));
  const mask = inp.masks.get(cfg.slidingWindow[l] ?? null)!;
  scores = hp(at('hook_attn_scores'), scores.where(mask, scalar(-Infinity)));
  const pattern = hp(at('hook_pattern'), scores.softmax(-1));
  const z = hp(at('hook_z'), pattern.matmul(v.permute([0, 2, 1, 3])).permute([0, 2, 1, 3])); // [b, pos, n_heads, d_head]
  let out: Tensor;
  if (hp.active(at('hook_result'))) {
    // Per-head outputs [b, pos, n_heads, d_model], summed over heads.
    const wO = p.W_O.reshape([nH, dh, cfg.dModel]);
    const result = hp(at('hook_result'), z.permute([0, 2, 1, 3]).matmul(wO).permute([0, 2, 1, 3]));
    out = result.sum(2);
  } else out = z.reshape([b, s, nH * dh]).matmul(p.W_O);
  return p.b_O ? out.add(p.b_O) : out;
}

/**
 * The norm on each head's q or k [b, pos, heads, d_head], of the model's norm kind: RMSNorm
 * (Qwen3) or LayerNorm (Phi, StableLM). The weight (and bias) is [d_head], or [heads, d_head]
 * with one per head (StableLM).
 */
function headNorm(cfg: ModelConfig, x: Tensor, w: Tensor, b: Tensor | undefined): Tensor {
  // Gemma 3 stores these weights as w - 1, like its other norms.
  if (cfg.norm === 'rmsnorm') return x.rmsNorm(cfg.normWeightOffset ? w.add(cfg.normWeightOffset) : w, cfg.normEps);
  const y = x.layerNorm(null, null, cfg.normEps).mul(w);
  return b ? y.add(b) : y;
}

/**
 * ALiBi slopes per head, as BLOOM computes them (in float32): for the largest power of two
 * n <= n_heads, 2^(-8i/n) for i = 1..n; the remaining heads take every other slope of the
 * 2n-head sequence, 2^(-4i/n) for i = 1, 3, 5, ...
 */
export function alibiSlopes(nHeads: number): Float32Array {
  const n = 2 ** Math.floor(Math.log2(nHeads));
  const base = Math.fround(2 ** -(2 ** -(Math.log2(n) - 3)));
  const slopes = Array.from({ length: n }, (_, i) => Math.fround(base ** (i + 1)));
  if (n !== nHeads) {
    const extra = Math.fround(2 ** -(2 ** -(Math.log2(2 * n) - 3)));
    for (let i = 0; i < Math.min(n, nHeads - n); i++) slopes.push(Math.fround(extra ** (2 * i + 1)));
  }
  return Float32Array.from(slopes);
}

function activation(cfg: ModelConfig, x: Tensor): Tensor {
  switch (cfg.act) {
    case 'gelu_new':
    case 'gelu_tanh':
      return x.gelu('tanh');
    case 'gelu':
      return x.gelu();
    case 'silu':
      return x.silu();
    case 'relu':
      return x.relu();
  }
}

function mlp(cfg: ModelConfig, p: MlpParams, x: Tensor, hp: HookPoints, l: number): Tensor {
  const at = (name: string): string => `blocks.${l}.mlp.${name}`;
  let post: Tensor;
  if (cfg.gatedMlp) {
    // LLaMA / Gemma: act(x W_gate) * (x W_in)
    const pre = hp(at('hook_pre'), linear(x, p.W_gate!, p.b_gate));
    const preLinear = hp(at('hook_pre_linear'), linear(x, p.W_in, p.b_in));
    post = hp(at('hook_post'), activation(cfg, pre).mul(preLinear));
  } else {
    const pre = hp(at('hook_pre'), linear(x, p.W_in, p.b_in));
    post = hp(at('hook_post'), activation(cfg, pre));
  }
  return linear(post, p.W_out, p.b_out);
}

/** The block's MLP: dense, or Mixtral's mixture of experts. */
function feedForward(cfg: ModelConfig, blk: BlockParams, x: Tensor, inp: ForwardInputs, hp: HookPoints, l: number): Tensor {
  return cfg.moe ? moe(cfg, blk.moe!, x, inp, hp, l) : mlp(cfg, blk.mlp!, x, hp, l);
}

/**
 * Mixtral's sparse mixture of experts, as transformers computes it: router logits x W_router,
 * softmax, the top-k probabilities renormalised to sum to 1, and the weighted sum of the chosen
 * experts' gated MLPs. Hook points follow TransformerLens's MoE: `hook_expert_weights` (the
 * softmax over all experts, [b, pos, n_experts]; top-k is taken after it, so a hook there changes
 * the routing), `hook_expert_indices` ([b, pos, k] int64; the slot weights stay those of the
 * top-k), and per expert `experts.E.hook_gate` (x W_gate), `hook_pre` (x W_in) and `hook_post`
 * ([b, pos, d_mlp]); glassbox adds `hook_router_logits` [b, pos, n_experts].
 *
 * Cost: every expert runs on every token (static shapes; the router output only weights them,
 * zero for experts not chosen), so MoE FLOPs and intermediates are n_experts / k times those of
 * transformers' sparse dispatch, which runs each expert on its own tokens only. For Mixtral 8x7B
 * (8 experts, top 2, d_model 4096, d_mlp 14336) that is 4x: 2.8 GFLOP per token per layer instead
 * of 0.7, and [8, tokens, 14336] floats (0.46 MB per token) for each of gate, up and post. The
 * weights (5.6 GB per layer in float32) are read once per pass either way, which is what bounds a
 * one-token decoding step. Computing only the chosen experts needs either a grouped matmul over
 * expert segments of data-dependent length (no such op in a static-shape graph) or a per-token
 * gather of the chosen experts' weights (3 x [k, d_model, d_mlp] copied per token: 1.4 GB per
 * token for Mixtral 8x7B, and ONNX Runtime materialises the copy, so even a one-token step would
 * save only about a quarter of the memory traffic); neither pays, so every expert is computed.
 * Per-expert hooks therefore hold every token's value; tokens not routed to an expert contribute
 * nothing through it (TransformerLens's hold only the routed tokens' rows).
 *
 * Ties: torch.topk on CPU orders equal values by its sort (std::nth_element), not by index, so
 * when the k-th and (k+1)-th probabilities are equal transformers' choice of experts is not a
 * rule glassbox can follow; such tokens are flagged in `inp.routerTies` and the caller refuses
 * them (unless a hook on `hook_expert_indices` changed their experts). Ties inside the top k change only the order of `hook_expert_indices` (lowest index first
 * here) and the order of the weighted sum.
 */
function moe(cfg: ModelConfig, p: MoeParams, x: Tensor, inp: ForwardInputs, hp: HookPoints, l: number): Tensor {
  const { nExperts: E, topK: k } = cfg.moe!;
  const [b, s, d] = x.shape as [number, number, number];
  const n = b * s;
  const dMlp = cfg.dMlp;
  const at = (name: string): string => `blocks.${l}.mlp.${name}`;
  const logits = hp(at('hook_router_logits'), x.matmul(p.W_router)); // [b, pos, E]
  const probs = hp(at('hook_expert_weights'), logits.softmax(-1));
  const top = probs.topk(Math.min(k + 1, E), -1); // sorted, largest first (ties: lowest index first)
  const firstK = [null, null, { end: k }];
  const chosen = top.indices.slice(firstK);
  const indices = hp(at('hook_expert_indices'), chosen); // [b, pos, k]
  let weights = top.values.slice(firstK);
  weights = weights.div(weights.sum(-1, true));
  if (inp.routerTies && k < E) {
    // A tie at the boundary, unless a hook on hook_expert_indices chose other experts there.
    const tie = top.values.index([null, null, k - 1]).eq(top.values.index([null, null, k]));
    inp.routerTies.push(indices === chosen ? tie : tie.and(indices.ne(chosen).cast('int32').sum(-1).eq(0)));
  }
  // Each expert's weight per token: the renormalised top-k weights at their experts, 0 elsewhere.
  const route = zeros([b, s, E]).scatterAdd(indices, weights, 2); // [b, pos, E]

  const xs = x.reshape([1, n, d]);
  const gate = xs.matmul(p.W_gate); // [E, tokens, d_mlp]
  const up = xs.matmul(p.W_in);
  let post: Tensor;
  const expertHook = (e: number, h: string): string => at(`experts.${e}.${h}`);
  const hooked = Array.from({ length: E }, (_, e) => e).some((e) =>
    ['hook_gate', 'hook_pre', 'hook_post'].some((h) => hp.active(expertHook(e, h))),
  );
  if (hooked) {
    const posts: Tensor[] = [];
    for (let e = 0; e < E; e++) {
      const one = (t: Tensor, h: string) => hp(expertHook(e, h), t.index([e]).reshape([b, s, dMlp]));
      const g = one(gate, 'hook_gate');
      const u = one(up, 'hook_pre');
      posts.push(hp(expertHook(e, 'hook_post'), activation(cfg, g).mul(u)).reshape([1, n, dMlp]));
    }
    post = concat(posts, 0);
  } else post = activation(cfg, gate).mul(up);
  const out = post.matmul(p.W_out); // [E, tokens, d_model]
  // sum_e route[token, e] * out[e, token]: [tokens, 1, E] @ [tokens, E, d_model].
  return route
    .reshape([n, 1, E])
    .matmul(out.permute([1, 0, 2]))
    .reshape([b, s, d]);
}
