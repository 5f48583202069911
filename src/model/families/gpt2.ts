/**
 * GPT-2: LayerNorm, learned positions, fused QKV in Conv1D layout ([in, out], no transpose),
 * GELU (tanh approximation, "gelu_new"), tied embeddings, biases everywhere.
 */
import { hfNum, hfOptNum, hfTokenId, type ModelConfig } from '../config.js';
import type { BlockParams } from '../forward.js';
import type { Family } from './types.js';

export const gpt2: Family = {
  modelTypes: ['gpt2'],
  config(hf, file): ModelConfig {
    const d = hfNum(hf, file, 'n_embd', 'hidden_size');
    const nH = hfNum(hf, file, 'n_head', 'num_attention_heads');
    const nLayers = hfNum(hf, file, 'n_layer', 'num_hidden_layers');
    const act = String(hf.activation_function ?? 'gelu_new');
    return {
      family: 'gpt2',
      nLayers,
      dModel: d,
      nHeads: nH,
      nKVHeads: nH,
      dHead: d / nH,
      dMlp: hfOptNum(hf, 'n_inner') ?? 4 * d,
      dVocab: hfNum(hf, file, 'vocab_size'),
      nCtx: hfNum(hf, file, 'n_positions', 'n_ctx'),
      norm: 'layernorm',
      normEps: hfOptNum(hf, 'layer_norm_epsilon') ?? 1e-5,
      normWeightOffset: 0,
      positional: 'learned',
      rotaryDim: 0,
      ropeTheta: 0,
      parallelResidual: false,
      act: act === 'gelu' ? 'gelu' : act === 'relu' ? 'relu' : 'gelu_new',
      gatedMlp: false,
      attnScale: hf.scale_attn_weights === false ? 1 : 1 / Math.sqrt(d / nH),
      attnSoftcap: null,
      finalSoftcap: null,
      slidingWindow: Array(nLayers).fill(null),
      embedScale: 1,
      postNorms: false,
      qkNorm: false,
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      unembedBias: false,
      tiedEmbeddings: hf.tie_word_embeddings !== false,
      bosTokenId: hfTokenId(hf, 'bos_token_id'),
      eosTokenId: hfTokenId(hf, 'eos_token_id'),
      padTokenId: hfTokenId(hf, 'pad_token_id'),
    };
  },
  weights(cfg, w) {
    const pre = w.has('transformer.wte.weight') ? 'transformer.' : '';
    const d = cfg.dModel;
    const cols = (t: ReturnType<typeof w.get>, i: number) => t.slice([...Array(t.rank - 1).fill(null), { start: i * d, end: (i + 1) * d }]);
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `${pre}h.${l}.`;
      const qkvW = w.get(`${h}attn.c_attn.weight`); // [d, 3d], Conv1D: already [in, out]
      const qkvB = w.get(`${h}attn.c_attn.bias`);
      blocks.push({
        ln1: { w: w.get(`${h}ln_1.weight`), b: w.get(`${h}ln_1.bias`) },
        ln2: { w: w.get(`${h}ln_2.weight`), b: w.get(`${h}ln_2.bias`) },
        attn: {
          W_Q: cols(qkvW, 0),
          W_K: cols(qkvW, 1),
          W_V: cols(qkvW, 2),
          b_Q: cols(qkvB, 0),
          b_K: cols(qkvB, 1),
          b_V: cols(qkvB, 2),
          W_O: w.get(`${h}attn.c_proj.weight`),
          b_O: w.get(`${h}attn.c_proj.bias`),
        },
        mlp: {
          W_in: w.get(`${h}mlp.c_fc.weight`),
          b_in: w.get(`${h}mlp.c_fc.bias`),
          W_out: w.get(`${h}mlp.c_proj.weight`),
          b_out: w.get(`${h}mlp.c_proj.bias`),
        },
      });
    }
    const wte = w.get(`${pre}wte.weight`);
    return {
      embed: { W_E: wte },
      pos_embed: { W_pos: w.get(`${pre}wpe.weight`) },
      blocks,
      ln_final: { w: w.get(`${pre}ln_f.weight`), b: w.get(`${pre}ln_f.bias`) },
      unembed: { W_U: w.has('lm_head.weight') && !cfg.tiedEmbeddings ? w.get('lm_head.weight').transpose() : wte.transpose() },
    };
  },
};

/** Sizes for a new GPT-2-architecture model (toy models, models trained from scratch). */
export interface Gpt2Dims {
  nLayers: number;
  dModel: number;
  nHeads: number;
  dVocab: number;
  nCtx: number;
  /** Default 4 * dModel. */
  dMlp?: number;
  act?: 'gelu_new' | 'gelu' | 'relu';
  tiedEmbeddings?: boolean;
  bosTokenId?: number | null;
  eosTokenId?: number | null;
}

/** A GPT-2 config for the given sizes, as Hugging Face would read it from config.json. */
export function gpt2Config(dims: Gpt2Dims): ModelConfig {
  return gpt2.config(
    {
      model_type: 'gpt2',
      n_layer: dims.nLayers,
      n_embd: dims.dModel,
      n_head: dims.nHeads,
      vocab_size: dims.dVocab,
      n_positions: dims.nCtx,
      n_inner: dims.dMlp ?? 4 * dims.dModel,
      activation_function: dims.act ?? 'gelu_new',
      tie_word_embeddings: dims.tiedEmbeddings ?? true,
      bos_token_id: dims.bosTokenId ?? null,
      eos_token_id: dims.eosTokenId ?? null,
    },
    'gpt2Config',
  );
}
