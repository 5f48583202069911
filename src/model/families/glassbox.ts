/**
 * glassbox's own checkpoint format, for models no Hugging Face family describes (attention-only
 * or normalisation-free toy models, processed weights): `config.json` holds
 * `{"model_type": "glassbox", "glassbox_config": ModelConfig}` and `model.safetensors` holds the
 * parameters under their glassbox paths in compute layout (`blocks.0.attn.W_Q` [d_model,
 * n_heads*d_head], `unembed.W_U` [d_model, d_vocab], ...).
 */
import type { ModelConfig } from '../config.js';
import type { BlockParams, ModelParams, NormParams } from '../forward.js';
import type { Family } from './types.js';

const REQUIRED_NUMBERS = ['nLayers', 'dModel', 'nHeads', 'nKVHeads', 'dHead', 'dMlp', 'dVocab', 'nCtx'] as const;

export const glassbox: Family = {
  modelTypes: ['glassbox'],
  config(r): ModelConfig {
    // glassbox_config is the ModelConfig itself, every field of which the forward pass implements.
    const file = r.file;
    const c = r.raw.glassbox_config as Record<string, unknown> | null | undefined;
    r.ignore(...Object.keys(r.raw));
    if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${file}: model_type 'glassbox' needs a 'glassbox_config' object`);
    for (const k of REQUIRED_NUMBERS)
      if (!(typeof c[k] === 'number' && Number.isInteger(c[k]) && (c[k] as number) > 0))
        throw new Error(`${file}: glassbox_config.${k} must be a positive integer`);
    if (!['layernorm', 'rmsnorm', 'none'].includes(String(c.norm)))
      throw new Error(`${file}: glassbox_config.norm must be layernorm, rmsnorm or none`);
    const moe = c.moe as Record<string, unknown> | undefined;
    if (moe !== undefined) {
      const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
      if (!moe || !isCount(moe.nExperts) || !isCount(moe.topK) || moe.topK > moe.nExperts)
        throw new Error(`${file}: glassbox_config.moe must be { nExperts, topK } with 0 < topK <= nExperts`);
    }
    const cfg = c as unknown as ModelConfig;
    if (!Array.isArray(cfg.slidingWindow) || cfg.slidingWindow.length !== cfg.nLayers)
      throw new Error(`${file}: glassbox_config.slidingWindow must list one entry per layer`);
    return { ...cfg };
  },
  weights(cfg, w) {
    const opt = (name: string) => (w.has(name) ? w.get(name) : undefined);
    const norm = (name: string): NormParams => ({
      ...(w.has(`${name}.w`) ? { w: w.get(`${name}.w`) } : {}),
      ...(w.has(`${name}.b`) ? { b: w.get(`${name}.b`) } : {}),
    });
    const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const at = (n: string) => `blocks.${l}.${n}`;
      blocks.push(
        defined({
          ln1: norm(at('ln1')),
          ln2: norm(at('ln2')),
          ln1_post: w.has(at('ln1_post.w')) ? norm(at('ln1_post')) : undefined,
          ln2_post: w.has(at('ln2_post.w')) ? norm(at('ln2_post')) : undefined,
          attn: defined({
            W_Q: w.get(at('attn.W_Q')),
            W_K: w.get(at('attn.W_K')),
            W_V: w.get(at('attn.W_V')),
            W_O: w.get(at('attn.W_O')),
            b_Q: opt(at('attn.b_Q')),
            b_K: opt(at('attn.b_K')),
            b_V: opt(at('attn.b_V')),
            b_O: opt(at('attn.b_O')),
            q_norm: opt(at('attn.q_norm')),
            k_norm: opt(at('attn.k_norm')),
            q_norm_b: opt(at('attn.q_norm_b')),
            k_norm_b: opt(at('attn.k_norm_b')),
          }),
          moe: cfg.moe
            ? {
                W_router: w.get(at('moe.W_router')),
                W_gate: w.get(at('moe.W_gate')),
                W_in: w.get(at('moe.W_in')),
                W_out: w.get(at('moe.W_out')),
              }
            : undefined,
          mlp:
            cfg.attnOnly || cfg.moe
              ? undefined
              : defined({
                  W_in: w.get(at('mlp.W_in')),
                  W_out: w.get(at('mlp.W_out')),
                  W_gate: opt(at('mlp.W_gate')),
                  b_in: opt(at('mlp.b_in')),
                  b_gate: opt(at('mlp.b_gate')),
                  b_out: opt(at('mlp.b_out')),
                }),
        }),
      );
    }
    return defined({
      embed: defined({ W_E: w.get('embed.W_E'), ln: w.has('embed.ln.w') || w.has('embed.ln.b') ? norm('embed.ln') : undefined }),
      pos_embed: w.has('pos_embed.W_pos') ? { W_pos: w.get('pos_embed.W_pos') } : undefined,
      blocks,
      ln_final: norm('ln_final'),
      unembed: defined({ W_U: w.get('unembed.W_U'), b_U: opt('unembed.b_U') }),
    }) as ModelParams;
  },
};
