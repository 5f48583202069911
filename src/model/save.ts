/**
 * Saving a model so `fromPretrained(dir)` (and Hugging Face, where the architecture allows) loads
 * it: GPT-2-shaped models are written in Hugging Face's GPT-2 format (config.json +
 * model.safetensors with `transformer.h.N.attn.c_attn.weight` etc.), the same layout with rotary
 * positions in GPT-NeoX's (`gpt_neox.layers.N.attention.query_key_value.weight`, ...); anything
 * else (attention-only or normalisation-free toy models, processed weights) in glassbox's own
 * format (families/glassbox.ts; OLMo 2 and Mixtral too). Files are written atomically; float16 storage halves the size.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { concat, namedLeaves, stack, type Tensor } from '../tensor/index.js';
import { saveSafetensors } from '../io/safetensors.js';
import { copyFileAtomic, writeFileAtomic } from '../io/atomic.js';
import type { ModelConfig } from './config.js';
import type { ModelParams } from './forward.js';
import { _registerModelFiles } from './hooked.js';

export interface SaveModelOptions {
  /** Storage dtype of the weights (default float32). */
  dtype?: 'float32' | 'float16';
  /** 'auto' (default): Hugging Face format (GPT-2 or GPT-NeoX) when the model fits one, else glassbox's. */
  format?: 'auto' | 'hf' | 'glassbox';
  /** A tokenizer.json to store with the model: its path or its parsed JSON. */
  tokenizer?: string | object;
  /** Extra fields for config.json (e.g. a description of how the model was trained). */
  extraConfig?: Record<string, unknown>;
}

/** What GPT-2 and GPT-NeoX checkpoints both need: LayerNorm, biases, plain multi-head attention, an MLP. */
function sharedChecks(cfg: ModelConfig, p: ModelParams): [boolean, string][] {
  return [
    [!cfg.attnOnly, 'attention-only'],
    [!cfg.moe, 'mixture-of-experts MLP (Mixtral)'],
    [cfg.preNorms !== false && !cfg.qkNormAllHeads, 'OLMo 2 norms'],
    [cfg.norm === 'layernorm', `norm is ${cfg.norm}`],
    [['gelu_new', 'gelu', 'relu'].includes(cfg.act), `activation ${cfg.act}`],
    [cfg.attnBias && cfg.attnOutBias && cfg.mlpBias && !cfg.unembedBias, 'bias layout differs from GPT-2'],
    [cfg.nKVHeads === cfg.nHeads && cfg.nHeads * cfg.dHead === cfg.dModel, 'head layout differs from GPT-2'],
    [Math.abs(cfg.attnScale - 1 / Math.sqrt(cfg.dHead)) < 1e-9 || cfg.attnScale === 1, 'custom attention scale'],
    [!cfg.postNorms && !cfg.qkNorm && cfg.attnSoftcap === null && cfg.finalSoftcap === null && cfg.embedScale === 1, 'Gemma/Qwen features'],
    [!cfg.gatedMlp, 'gated MLP'],
    [!cfg.postEmbedNorm && !cfg.rotaryAdjacentPairs && cfg.normAffine !== false && !cfg.normAfterAdd, 'BLOOM/GPT-J/OPT features'],
    [p.blocks.every((b) => b.ln1.w && b.ln1.b && b.ln2.w && b.ln2.b) && !!p.ln_final.w && !!p.ln_final.b, 'LayerNorm weights are folded'],
  ];
}

function failures(checks: [boolean, string][]): string | null {
  const failed = checks.filter(([ok]) => !ok).map(([, why]) => why);
  return failed.length ? failed.join('; ') : null;
}

/** Why a model cannot be written in Hugging Face's GPT-2 format, or null when it can. */
export function gpt2Incompatibility(cfg: ModelConfig, p: ModelParams): string | null {
  return failures([
    [cfg.family === 'gpt2', `family is ${cfg.family}`],
    [cfg.positional === 'learned', `${cfg.positional} positions`],
    ...sharedChecks(cfg, p),
  ]);
}

/** Why a model cannot be written in Hugging Face's GPT-NeoX format, or null when it can. */
export function gptNeoxIncompatibility(cfg: ModelConfig, p: ModelParams): string | null {
  return failures([
    [cfg.positional === 'rotary' && cfg.rotaryDim % 2 === 0 && cfg.rotaryDim <= cfg.dHead, 'not rotary positions'],
    [!cfg.ropeScaling && !cfg.localRope, 'scaled or per-layer RoPE'],
    ...sharedChecks(cfg, p),
  ]);
}

/** Writes config.json + model.safetensors (+ tokenizer.json) into `dir`. Returns the format used. */
export function saveModel(
  dir: string,
  model: { cfg: ModelConfig; params: ModelParams },
  options: SaveModelOptions = {},
): 'hf' | 'glassbox' {
  const { cfg, params } = model;
  const hf =
    cfg.positional === 'rotary'
      ? { why: gptNeoxIncompatibility(cfg, params), write: toGptNeox, name: 'GPT-NeoX' }
      : { why: gpt2Incompatibility(cfg, params), write: toGpt2, name: 'GPT-2' };
  const format = options.format ?? 'auto';
  if (format === 'hf' && hf.why) throw new Error(`saveModel: this model cannot be written in Hugging Face ${hf.name} format (${hf.why})`);
  const useHf = format === 'hf' || (format === 'auto' && hf.why === null);
  mkdirSync(dir, { recursive: true });
  const dtype = options.dtype ?? 'float32';
  let config: Record<string, unknown>;
  let tensors: Record<string, Tensor>;
  if (useHf) ({ config, tensors } = hf.write(cfg, params, dtype));
  else {
    config = { model_type: 'glassbox', torch_dtype: dtype, glassbox_config: cfg };
    tensors = Object.fromEntries(namedLeaves(params));
  }
  saveSafetensors(join(dir, 'model.safetensors'), tensors, { dtype, metadata: { format: 'pt' } });
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ ...config, ...options.extraConfig }, null, 2) + '\n');
  if (options.tokenizer !== undefined) {
    const target = join(dir, 'tokenizer.json');
    if (typeof options.tokenizer === 'string') copyFileAtomic(options.tokenizer, target);
    else writeFileAtomic(target, JSON.stringify(options.tokenizer));
  }
  return useHf ? 'hf' : 'glassbox';
}

function toGpt2(cfg: ModelConfig, p: ModelParams, dtype: string): { config: Record<string, unknown>; tensors: Record<string, Tensor> } {
  const t: Record<string, Tensor> = {};
  const pre = 'transformer.';
  t[`${pre}wte.weight`] = p.embed.W_E;
  t[`${pre}wpe.weight`] = p.pos_embed!.W_pos;
  p.blocks.forEach((b, l) => {
    const h = `${pre}h.${l}.`;
    t[`${h}ln_1.weight`] = b.ln1.w!;
    t[`${h}ln_1.bias`] = b.ln1.b!;
    t[`${h}attn.c_attn.weight`] = concat([b.attn.W_Q, b.attn.W_K, b.attn.W_V], 1); // Conv1D: [in, out]
    t[`${h}attn.c_attn.bias`] = concat([b.attn.b_Q!, b.attn.b_K!, b.attn.b_V!], 0);
    t[`${h}attn.c_proj.weight`] = b.attn.W_O;
    t[`${h}attn.c_proj.bias`] = b.attn.b_O!;
    t[`${h}ln_2.weight`] = b.ln2.w!;
    t[`${h}ln_2.bias`] = b.ln2.b!;
    t[`${h}mlp.c_fc.weight`] = b.mlp!.W_in;
    t[`${h}mlp.c_fc.bias`] = b.mlp!.b_in!;
    t[`${h}mlp.c_proj.weight`] = b.mlp!.W_out;
    t[`${h}mlp.c_proj.bias`] = b.mlp!.b_out!;
  });
  t[`${pre}ln_f.weight`] = p.ln_final.w!;
  t[`${pre}ln_f.bias`] = p.ln_final.b!;
  // Tied embeddings store only wte; an untied (or diverged) unembedding is stored as lm_head.
  const tied = cfg.tiedEmbeddings && maxAbsDiff(p.unembed.W_U, p.embed.W_E.transpose()) === 0;
  if (!tied) t['lm_head.weight'] = p.unembed.W_U.transpose();
  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: cfg.dVocab,
    n_positions: cfg.nCtx,
    n_embd: cfg.dModel,
    n_layer: cfg.nLayers,
    n_head: cfg.nHeads,
    n_inner: cfg.dMlp,
    activation_function: cfg.act,
    layer_norm_epsilon: cfg.normEps,
    scale_attn_weights: cfg.attnScale !== 1,
    tie_word_embeddings: tied,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenId,
    ...(cfg.padTokenId !== null ? { pad_token_id: cfg.padTokenId } : {}),
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    torch_dtype: dtype,
  };
  return { config, tensors: t };
}

/**
 * GPT-NeoX's layout (families/gpt_neox.ts reads it back): q, k and v fused into one Linear whose
 * rows are grouped per head ([head, (q|k|v), d_head]); Linear weights stored [out, in]; a
 * sequential residual (use_parallel_residual false) when the model has one.
 */
function toGptNeox(cfg: ModelConfig, p: ModelParams, dtype: string): { config: Record<string, unknown>; tensors: Record<string, Tensor> } {
  const { nHeads: nH, dHead: dh, dModel: d } = cfg;
  const t: Record<string, Tensor> = {};
  t['gpt_neox.embed_in.weight'] = p.embed.W_E;
  p.blocks.forEach((b, l) => {
    const h = `gpt_neox.layers.${l}.`;
    const a = b.attn;
    // W_Q [d, nH*dh] -> rows [nH, dh, d]; stacked as [nH, 3, dh, d].
    const rows = (w: Tensor) => w.transpose().reshape([nH, dh, d]);
    t[`${h}input_layernorm.weight`] = b.ln1.w!;
    t[`${h}input_layernorm.bias`] = b.ln1.b!;
    t[`${h}attention.query_key_value.weight`] = stack([rows(a.W_Q), rows(a.W_K), rows(a.W_V)], 1).reshape([nH * 3 * dh, d]);
    t[`${h}attention.query_key_value.bias`] = stack(
      [a.b_Q!, a.b_K!, a.b_V!].map((v) => v.reshape([nH, dh])),
      1,
    ).reshape([nH * 3 * dh]);
    t[`${h}attention.dense.weight`] = a.W_O.transpose();
    t[`${h}attention.dense.bias`] = a.b_O!;
    t[`${h}post_attention_layernorm.weight`] = b.ln2.w!;
    t[`${h}post_attention_layernorm.bias`] = b.ln2.b!;
    t[`${h}mlp.dense_h_to_4h.weight`] = b.mlp!.W_in.transpose();
    t[`${h}mlp.dense_h_to_4h.bias`] = b.mlp!.b_in!;
    t[`${h}mlp.dense_4h_to_h.weight`] = b.mlp!.W_out.transpose();
    t[`${h}mlp.dense_4h_to_h.bias`] = b.mlp!.b_out!;
  });
  t['gpt_neox.final_layer_norm.weight'] = p.ln_final.w!;
  t['gpt_neox.final_layer_norm.bias'] = p.ln_final.b!;
  const tied = cfg.tiedEmbeddings && maxAbsDiff(p.unembed.W_U, p.embed.W_E.transpose()) === 0;
  if (!tied) t['embed_out.weight'] = p.unembed.W_U.transpose();
  const partial = cfg.rotaryDim / dh;
  const config = {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    vocab_size: cfg.dVocab,
    hidden_size: d,
    num_hidden_layers: cfg.nLayers,
    num_attention_heads: nH,
    intermediate_size: cfg.dMlp,
    hidden_act: cfg.act,
    max_position_embeddings: cfg.nCtx,
    layer_norm_eps: cfg.normEps,
    use_parallel_residual: cfg.parallelResidual,
    // Both spellings: rotary_pct / rotary_emb_base (transformers 4, Pythia's files) and rope_parameters (transformers 5).
    rotary_pct: partial,
    rotary_emb_base: cfg.ropeTheta,
    rope_parameters: { rope_type: 'default', rope_theta: cfg.ropeTheta, partial_rotary_factor: partial },
    attention_bias: true,
    tie_word_embeddings: tied,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenId,
    ...(cfg.padTokenId !== null ? { pad_token_id: cfg.padTokenId } : {}),
    attention_dropout: 0,
    hidden_dropout: 0,
    initializer_range: 0.02,
    torch_dtype: dtype,
  };
  return { config, tensors: t };
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.shape.join() !== b.shape.join()) return Infinity;
  return a.sub(b).abs().max().item() as number;
}

_registerModelFiles({ save: saveModel });
