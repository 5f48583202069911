/**
 * GPT-2: LayerNorm, learned positions, fused QKV in Conv1D layout ([in, out], no transpose),
 * GELU (tanh approximation, "gelu_new"), tied embeddings, biases everywhere.
 */
import { headDim, plainConfig, readActivation, readEnds, type ModelConfig } from '../config.js';
import { HfConfigReader } from '../hf-config.js';
import type { BlockParams, ModelParams } from '../forward.js';
import { normAt, unembedAt, MASK_BUFFERS, tiedHead, type Family, type WeightReader } from './types.js';

export const gpt2: Family = {
  modelTypes: ['gpt2'],
  config(r): ModelConfig {
    const d = r.dim(['n_embd', 'hidden_size']);
    const nH = r.dim(['n_head', 'num_attention_heads']);
    const nLayers = r.layers(['n_layer', 'num_hidden_layers']);
    r.expect('scale_attn_by_inverse_layer_idx', [false]);
    // Upcasting attention to float32 changes nothing here: glassbox computes in float32.
    r.ignore(
      'reorder_and_upcast_attn',
      'summary_type',
      'summary_use_proj',
      'summary_activation',
      'summary_proj_to_labels',
      'summary_first_dropout',
    );
    const nCtx = r.dim(['n_positions', 'n_ctx']);
    return {
      ...plainConfig(nLayers),
      family: 'gpt2',
      nLayers,
      dModel: d,
      nHeads: nH,
      nKVHeads: nH,
      dHead: headDim(r, d, nH, 'n_embd', 'n_head'),
      dMlp: r.optDim('n_inner', 4 * d),
      dVocab: r.dim('vocab_size'),
      nCtx,
      norm: 'layernorm',
      normEps: r.optNum('layer_norm_epsilon', 1e-5, { gt: 0, max: 1 }),
      positional: 'learned',
      rotaryDim: 0,
      ropeTheta: 0,
      act: readActivation(r, 'activation_function', 'gelu_new'),
      attnScale: r.bool('scale_attn_weights', true) ? 1 / Math.sqrt(d / nH) : 1,
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      ...readEnds(r, true),
    };
  },
  weights(cfg, w) {
    const pre = gpt2Prefix(w);
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
    return gpt2Ends(cfg, w, pre, blocks);
  },
  skipped: (cfg) => [MASK_BUFFERS('.attn'), ...tiedHead(cfg, 'lm_head.weight')],
};

/** Where a checkpoint in the GPT-2 layout keeps its tensors: under 'transformer.' (a model with its LM head) or at the top. */
export function gpt2Prefix(w: WeightReader): string {
  return w.has('transformer.wte.weight') ? 'transformer.' : '';
}

/**
 * The parameters of a checkpoint in the GPT-2 layout (GPT-2, GPT-Neo) around its `blocks`: the
 * token and position embeddings `${pre}wte`, `${pre}wpe`, the final LayerNorm `${pre}ln_f`, and
 * the unembedding: tied, or the checkpoint's own lm_head, required (transformers would initialise
 * a missing one at random).
 */
export function gpt2Ends(cfg: ModelConfig, w: WeightReader, pre: string, blocks: BlockParams[]): ModelParams {
  const wte = w.get(`${pre}wte.weight`);
  return {
    embed: { W_E: wte },
    pos_embed: { W_pos: w.get(`${pre}wpe.weight`) },
    blocks,
    ln_final: normAt(w, `${pre}ln_f`, true),
    unembed: unembedAt(cfg, w, wte),
  };
}

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
    new HfConfigReader(
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
    ),
  );
}
