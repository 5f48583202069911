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
 */
import { concat, scalar, type Tensor } from '../tensor/index.js';
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
  /** Qwen3, Gemma 3: per-head RMSNorm weights [d_head]. */
  q_norm?: Tensor;
  k_norm?: Tensor;
}

export interface MlpParams {
  W_in: Tensor;
  W_out: Tensor;
  W_gate?: Tensor;
  b_in?: Tensor;
  b_gate?: Tensor;
  b_out?: Tensor;
}

export interface BlockParams {
  ln1: NormParams;
  ln2: NormParams;
  /** Gemma 2's norms after attention and after the MLP. */
  ln1_post?: NormParams;
  ln2_post?: NormParams;
  attn: AttnParams;
  /** Absent in attention-only models. */
  mlp?: MlpParams;
}

export interface ModelParams {
  embed: { W_E: Tensor };
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
  /**
   * Decoding with a KV cache of fixed length L: per layer keys and values [batch, L, n_kv_heads,
   * d_head], and `write` [1, L, 1, 1] (1.0 at the slot the new token fills). The masks are then
   * [batch, 1, 1, L]. A fixed L keeps one compiled graph for every decoding step.
   */
  kvCache?: { k: Tensor[]; v: Tensor[]; write: Tensor };
  /** When given, each layer's keys and values (after the cache update) are pushed here. */
  presentKv?: { k: Tensor[]; v: Tensor[] };
}

/** Returns logits [batch, pos, d_vocab]. */
export function transformerForward(cfg: ModelConfig, p: ModelParams, inp: ForwardInputs, hp: HookPoints): Tensor {
  const embed = p.embed.W_E.gather(inp.tokens, 0); // [b, pos, d]
  let x = hp('hook_embed', cfg.embedScale !== 1 ? embed.mul(cfg.embedScale) : embed); // Gemma scales by sqrt(d_model)
  if (cfg.positional === 'learned') x = x.add(hp('hook_pos_embed', p.pos_embed!.W_pos.gather(inp.positions, 0)));

  for (let l = 0; l < cfg.nLayers; l++) {
    const blk = p.blocks[l]!;
    const at = (name: string): string => `blocks.${l}.${name}`;
    const residPre = hp(at('hook_resid_pre'), x);

    const attnIn = norm(cfg, blk.ln1, residPre, hp, at('ln1'));
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
      mlpOut = mlp(cfg, blk.mlp!, norm(cfg, blk.ln2, mlpIn, hp, at('ln2')), hp, l);
      if (cfg.postNorms) mlpOut = norm(cfg, blk.ln2_post!, mlpOut, hp, at('ln2_post'));
      mlpOut = hp(at('hook_mlp_out'), mlpOut);
      x = hp(at('hook_resid_post'), residPre.add(attnOut).add(mlpOut));
    } else {
      const residMid = hp(at('hook_resid_mid'), residPre.add(attnOut));
      const mlpIn = hp(at('hook_mlp_in'), residMid);
      mlpOut = mlp(cfg, blk.mlp!, norm(cfg, blk.ln2, mlpIn, hp, at('ln2')), hp, l);
      if (cfg.postNorms) mlpOut = norm(cfg, blk.ln2_post!, mlpOut, hp, at('ln2_post'));
      mlpOut = hp(at('hook_mlp_out'), mlpOut);
      x = hp(at('hook_resid_post'), residMid.add(mlpOut));
    }
  }

  x = norm(cfg, p.ln_final, x, hp, 'ln_final');
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

function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const y = x.matmul(w);
  return b ? y.add(b) : y;
}

/** Rotates the first rotary_dim dims of each head (GPT-NeoX "rotate half" convention). */
function rope(x: Tensor, r: { cos: Tensor; sin: Tensor }, rotaryDim: number): Tensor {
  const dh = x.shape[3]!;
  const rot = rotaryDim === dh ? x : x.slice([null, null, null, { end: rotaryDim }]);
  const half = rotaryDim / 2;
  const x1 = rot.slice([null, null, null, { end: half }]);
  const x2 = rot.slice([null, null, null, { start: half }]);
  const rotated = concat([x2.neg(), x1], -1);
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
  if (cfg.qkNorm) {
    // Qwen3, Gemma 3 (whose weights are stored as w - 1, like its other norms)
    const offset = (w: Tensor): Tensor => (cfg.normWeightOffset ? w.add(cfg.normWeightOffset) : w);
    q = q.rmsNorm(offset(p.q_norm!), cfg.normEps);
    k = k.rmsNorm(offset(p.k_norm!), cfg.normEps);
  }
  if (cfg.positional === 'rotary') {
    const table = inp.rotary!.get(cfg.layerRope?.[l] ?? 'global')!; // Gemma 3: local layers have their own RoPE
    q = hp(at('hook_rot_q'), rope(q, table, cfg.rotaryDim));
    k = hp(at('hook_rot_k'), rope(k, table, cfg.rotaryDim));
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
