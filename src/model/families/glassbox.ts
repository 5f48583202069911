/**
 * glassbox's own checkpoint format, for models no Hugging Face family describes (attention-only
 * or normalisation-free toy models, processed weights): `config.json` holds
 * `{"model_type": "glassbox", "glassbox_config": ModelConfig}` and `model.safetensors` holds the
 * parameters under their glassbox paths in compute layout (`blocks.0.attn.W_Q` [d_model,
 * n_heads*d_head], `unembed.W_U` [d_model, d_vocab], ...).
 */
import type { Activation, ModelConfig, RopeId } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import type { BlockParams, ModelParams, NormParams } from '../forward.js';
import { ROPE_TYPES, type RopeConfig } from '../rope.js';
import type { Family } from './types.js';

const ACTIVATIONS: readonly Activation[] = ['gelu_new', 'gelu', 'gelu_tanh', 'silu', 'relu'];

export const glassbox: Family = {
  modelTypes: ['glassbox'],
  config(r): ModelConfig {
    // glassbox_config is the ModelConfig itself: every field is read (checked like any config
    // field, named 'glassbox_config.<field>' in errors), and an unknown one is refused.
    // Beside it: model_type, torch_dtype and what the saver's extraConfig added (metadata).
    r.ignore(...Object.keys(r.raw).filter((k) => k !== 'glassbox_config'));
    const c = r.sub('glassbox_config');
    if (!c) throw r.error('glassbox_config', "is missing; model_type 'glassbox' needs a 'glassbox_config' object");
    const nLayers = c.layers('nLayers');
    const dModel = c.dim('dModel');
    const nHeads = c.dim('nHeads');
    const nKVHeads = c.dim('nKVHeads');
    if (nHeads % nKVHeads !== 0) throw c.error('nKVHeads', `(${nKVHeads}) must divide nHeads (${nHeads})`);
    const dHead = c.dim('dHead');
    const positional = c.str('positional', ['learned', 'rotary', 'alibi'] as const);
    const rotaryDim = c.num('rotaryDim', { integer: true, min: 0, max: dHead });
    if (positional === 'rotary' && (rotaryDim < 2 || rotaryDim % 2 !== 0))
      throw c.error('rotaryDim', `must be an even number from 2 to dHead (${dHead}) for rotary positions, got ${rotaryDim}`);
    const ropeTheta = c.num('ropeTheta', positional === 'rotary' ? { gt: 0 } : { min: 0 });
    const layerRope = c.strList('layerRope', ['global', 'local'] as const);
    if (layerRope && layerRope.length !== nLayers)
      throw c.error('layerRope', `lists ${layerRope.length} layers, but nLayers is ${nLayers}`);
    const moe = c.sub('moe');
    let moeCfg: ModelConfig['moe'];
    if (moe) {
      const nExperts = moe.dim('nExperts');
      const topK = moe.dim('topK');
      if (topK > nExperts) throw moe.error('topK', `(${topK}) must be at most nExperts (${nExperts})`);
      moeCfg = { nExperts, topK };
    }
    const optBool = (name: string): boolean | undefined => (c.has(name) ? c.bool(name, false) : (c.ignore(name), undefined));
    const softcap = (name: string): number | null => c.optNum(name, null, { gt: 0 });
    const cfg: ModelConfig = {
      family: c.str('family'),
      nLayers,
      dModel,
      nHeads,
      nKVHeads,
      dHead,
      dMlp: c.dim('dMlp'),
      dVocab: c.dim('dVocab'),
      nCtx: c.dim('nCtx'),
      norm: c.str('norm', ['layernorm', 'rmsnorm', 'none'] as const),
      normEps: c.num('normEps', { gt: 0, max: 1 }),
      normWeightOffset: c.num('normWeightOffset'),
      positional,
      rotaryDim,
      ropeTheta,
      parallelResidual: c.bool('parallelResidual', false),
      act: c.str('act', ACTIVATIONS),
      gatedMlp: c.bool('gatedMlp', false),
      attnScale: c.num('attnScale', { gt: 0 }),
      attnSoftcap: softcap('attnSoftcap'),
      finalSoftcap: softcap('finalSoftcap'),
      slidingWindow: slidingWindows(c, nLayers),
      embedScale: c.num('embedScale', { gt: 0 }),
      postNorms: c.bool('postNorms', false),
      qkNorm: c.bool('qkNorm', false),
      attnBias: c.bool('attnBias', false),
      attnOutBias: c.bool('attnOutBias', false),
      mlpBias: c.bool('mlpBias', false),
      unembedBias: c.bool('unembedBias', false),
      tiedEmbeddings: c.bool('tiedEmbeddings', false),
      bosTokenId: c.tokenId('bosTokenId'),
      eosTokenId: c.tokenId('eosTokenId'),
      padTokenId: c.tokenId('padTokenId'),
    };
    const flags = [
      'normAffine',
      'rotaryAdjacentPairs',
      'ropeRefreshCache',
      'attnOnly',
      'normAfterAdd',
      'postEmbedNorm',
      'qkNormAllHeads',
      'preNorms',
    ] as const;
    for (const f of flags) {
      const v = optBool(f);
      if (v !== undefined) cfg[f] = v;
    }
    const scaling = c.sub('ropeScaling');
    if (scaling) cfg.ropeScaling = storedRope(scaling);
    const local = c.sub('localRope');
    if (local) cfg.localRope = storedRope(local);
    if (layerRope) {
      if (layerRope.includes('local') && !cfg.localRope) throw c.error('layerRope', "names 'local' layers, but there is no localRope");
      cfg.layerRope = layerRope as RopeId[];
    }
    if (moeCfg) cfg.moe = moeCfg;
    return cfg;
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

/** slidingWindow: one entry per layer, null (full attention) or a window of at least 1. */
function slidingWindows(c: HfConfigReader, nLayers: number): (number | null)[] {
  c.ignore('slidingWindow');
  const v = c.raw.slidingWindow;
  if (!Array.isArray(v) || v.length !== nLayers)
    throw c.error(
      'slidingWindow',
      `must list one entry per layer (${nLayers}), got ${Array.isArray(v) ? `${v.length}` : JSON.stringify(v)}`,
    );
  return v.map((w: unknown, l) => {
    if (w === null) return null;
    if (typeof w !== 'number' || !Number.isSafeInteger(w) || w < 1)
      throw c.error(`slidingWindow[${l}]`, `must be null or a positive integer, got ${JSON.stringify(w)}`);
    return w;
  });
}

/** A RopeConfig as saved (resolved values, see rope.ts), each field checked. */
function storedRope(s: HfConfigReader): RopeConfig {
  const rope: RopeConfig = { type: s.str('type', ROPE_TYPES), theta: s.num('theta', { gt: 0 }) };
  const pos = (name: 'factor' | 'lowFreqFactor' | 'highFreqFactor' | 'betaFast' | 'betaSlow' | 'attentionFactor') => {
    const v = s.optNum(name, null, { gt: 0 });
    if (v !== null) rope[name] = v;
  };
  for (const n of ['factor', 'lowFreqFactor', 'highFreqFactor', 'betaFast', 'betaSlow', 'attentionFactor'] as const) pos(n);
  const original = s.optDim('originalMaxPositions', null);
  if (original !== null) rope.originalMaxPositions = original;
  if (s.has('truncate')) rope.truncate = s.bool('truncate', true);
  else s.ignore('truncate');
  const short = s.numList('shortFactor', { gt: 0 });
  if (short) rope.shortFactor = short;
  const long = s.numList('longFactor', { gt: 0 });
  if (long) rope.longFactor = long;
  const needs: Partial<Record<RopeConfig['type'], readonly (keyof RopeConfig)[]>> = {
    linear: ['factor'],
    dynamic: ['factor', 'originalMaxPositions'],
    llama3: ['factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositions'],
    yarn: ['factor', 'originalMaxPositions', 'attentionFactor', 'betaFast', 'betaSlow'],
    longrope: ['shortFactor', 'longFactor', 'originalMaxPositions', 'attentionFactor'],
  };
  for (const f of needs[rope.type] ?? []) if (rope[f] === undefined) throw s.error(f, `is required for ${rope.type} RoPE`);
  return rope;
}
