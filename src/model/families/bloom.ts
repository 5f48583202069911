/**
 * BLOOM. Against GPT-2: no position embedding; ALiBi instead (each head adds slope * (key
 * position - query position) to its attention scores, the slopes as transformers computes them,
 * non-power-of-two head counts included); a LayerNorm on the token embeddings
 * (word_embeddings_layernorm, TransformerLens's embed.ln); fused query_key_value in torch Linear
 * layout with rows grouped per head ([head, (q|k|v), d_head], as GPT-NeoX); MLP of 4 * hidden
 * with BLOOM's tanh GELU (gelu_new's formula); tied embeddings.
 *
 * Refused: apply_residual_connection_post_layernorm (the residual taken after the norm).
 */
import { headDim, plainConfig, readEnds, type ModelConfig } from '../config.js';
import type { BlockParams } from '../forward.js';
import { perHeadQkv } from './gpt_neox.js';
import { linearT, tiedHead, type Family } from './types.js';

export const bloom: Family = {
  modelTypes: ['bloom'],
  config(r): ModelConfig {
    // transformers lets the legacy n_embed override hidden_size.
    const d = r.dim(['n_embed', 'hidden_size']);
    const nH = r.dim(['n_head', 'num_attention_heads']);
    const nLayers = r.layers(['n_layer', 'num_hidden_layers']);
    r.expect('apply_residual_connection_post_layernorm', [false]);
    // transformers' BLOOM MLP is always 4 * hidden_size wide.
    r.expect('n_inner', [null, 4 * d], 'transformers builds an MLP of 4 * hidden_size; glassbox accepts only');
    // Megatron-DeepSpeed training settings stored in BLOOM configs, which transformers' BLOOM never reads.
    r.ignore(
      'attention_softmax_in_fp32',
      'bias_dropout_fusion',
      'masked_softmax_fusion',
      'skip_bias_add',
      'skip_bias_add_qkv',
      'offset_alibi',
      'pretraining_pp',
      'unk_token_id',
    );
    return {
      ...plainConfig(nLayers),
      family: 'bloom',
      nLayers,
      dModel: d,
      nHeads: nH,
      nKVHeads: nH,
      dHead: headDim(r, d, nH, 'hidden_size', 'n_head'),
      dMlp: 4 * d,
      dVocab: r.dim('vocab_size'),
      // ALiBi has no context limit; BLOOM trained at seq_length (2048), kept for information only.
      nCtx: r.optDim('seq_length', 2048),
      norm: 'layernorm',
      normEps: r.optNum('layer_norm_epsilon', 1e-5, { gt: 0, max: 1 }),
      positional: 'alibi',
      rotaryDim: 0,
      ropeTheta: 0,
      // bloom_gelu_forward: x * 0.5 * (1 + tanh(0.79788456 * x * (1 + 0.044715 * x^2))), gelu_new's formula.
      act: 'gelu_new',
      attnScale: 1 / Math.sqrt(d / nH),
      postEmbedNorm: true,
      attnBias: true,
      attnOutBias: true,
      mlpBias: true,
      ...readEnds(r, true),
    };
  },
  weights(cfg, w) {
    const { nHeads: nH, dHead: dh, dModel: d } = cfg;
    const pre = w.has('transformer.word_embeddings.weight') ? 'transformer.' : '';
    const ln = (name: string) => ({ w: w.get(`${name}.weight`), b: w.get(`${name}.bias`) });
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `${pre}h.${l}.`;
      blocks.push({
        ln1: ln(`${h}input_layernorm`),
        ln2: ln(`${h}post_attention_layernorm`),
        attn: {
          ...perHeadQkv(w, `${h}self_attention.query_key_value`, nH, dh, d, true),
          W_O: linearT(w, `${h}self_attention.dense.weight`),
          b_O: w.get(`${h}self_attention.dense.bias`),
        },
        mlp: {
          W_in: linearT(w, `${h}mlp.dense_h_to_4h.weight`),
          b_in: w.get(`${h}mlp.dense_h_to_4h.bias`),
          W_out: linearT(w, `${h}mlp.dense_4h_to_h.weight`),
          b_out: w.get(`${h}mlp.dense_4h_to_h.bias`),
        },
      });
    }
    const wte = w.get(`${pre}word_embeddings.weight`);
    return {
      embed: { W_E: wte, ln: ln(`${pre}word_embeddings_layernorm`) },
      blocks,
      ln_final: ln(`${pre}ln_f`),
      unembed: { W_U: cfg.tiedEmbeddings ? wte.transpose() : linearT(w, 'lm_head.weight') },
    };
  },
  skipped: (cfg) => tiedHead(cfg, 'lm_head.weight'),
};
