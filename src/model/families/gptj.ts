/**
 * GPT-J. Against GPT-2: rotary positions on the first rotary_dim dims of each head, rotating
 * adjacent pairs of dims (GPT-J's "rotate every two", not GPT-NeoX's rotate-half), theta 10000;
 * attention and MLP in parallel off the one ln_1 (TransformerLens ties ln2 to ln1, as here);
 * separate q/k/v/out projections without biases; a biased, untied unembedding (lm_head.bias).
 */
import { headDim, plainConfig, readActivation, readEnds, type ModelConfig } from '../config.js';
import type { BlockParams } from '../forward.js';
import { mlpAt, normAt, qkvoAt, unembedAt, INV_FREQ, MASK_BUFFERS, tiedHead, type Family } from './types.js';
import { gpt2Prefix } from './gpt2.js';

export const gptj: Family = {
  modelTypes: ['gptj'],
  config(r): ModelConfig {
    const d = r.dim(['n_embd', 'hidden_size']);
    const nH = r.dim(['n_head', 'num_attention_heads']);
    const nLayers = r.layers(['n_layer', 'num_hidden_layers']);
    const dh = headDim(r, d, nH, 'n_embd', 'n_head');
    // rotary_dim null would make transformers rotate with tables as wide as n_embd: refused.
    if (r.raw.rotary_dim === null) throw r.error('rotary_dim', 'is null; glassbox implements GPT-J with a rotary_dim');
    const rotaryDim = r.optDim('rotary_dim', 64);
    if (rotaryDim > dh || rotaryDim % 2 !== 0) throw r.error('rotary_dim', `(${rotaryDim}) must be even and at most the head size (${dh})`);
    // Flags of the original GPT-J config that transformers does not read: it always rotates and always scales.
    r.expect('rotary', [true]);
    r.expect('scale_attn_weights', [true]);
    r.ignore('summary_type', 'summary_use_proj', 'summary_activation', 'summary_proj_to_labels', 'summary_first_dropout');
    return {
      ...plainConfig(nLayers),
      family: 'gptj',
      nLayers,
      dModel: d,
      nHeads: nH,
      nKVHeads: nH,
      dHead: dh,
      dMlp: r.optDim('n_inner', 4 * d),
      dVocab: r.dim('vocab_size'),
      // GPTJConfig's default (rotary positions: the weights do not fix it).
      nCtx: r.optDim(['n_positions', 'max_position_embeddings'], 2048),
      norm: 'layernorm',
      normEps: r.optNum('layer_norm_epsilon', 1e-5, { gt: 0, max: 1 }),
      positional: 'rotary',
      rotaryDim,
      rotaryAdjacentPairs: true,
      ropeTheta: 10000,
      parallelResidual: true,
      act: readActivation(r, 'activation_function', 'gelu_new'),
      attnScale: 1 / Math.sqrt(dh),
      attnBias: false,
      attnOutBias: false,
      mlpBias: true,
      unembedBias: true,
      ...readEnds(r, false),
    };
  },
  weights(cfg, w) {
    const pre = gpt2Prefix(w);
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `${pre}h.${l}.`;
      const ln = normAt(w, `${h}ln_1`, true);
      blocks.push({
        // One LayerNorm feeds both attention and MLP: ln2 is ln1 (TransformerLens ties them the same way).
        ln1: ln,
        ln2: ln,
        attn: qkvoAt(w, `${h}attn.`, {}, ['q_proj', 'k_proj', 'v_proj', 'out_proj']),
        mlp: mlpAt(w, `${h}mlp.fc_in`, `${h}mlp.fc_out`),
      });
    }
    const wte = w.get(`${pre}wte.weight`);
    return {
      embed: { W_E: wte },
      blocks,
      ln_final: normAt(w, `${pre}ln_f`, true),
      unembed: unembedAt(cfg, w, wte, true),
    };
  },
  skipped: (cfg) => [MASK_BUFFERS('.attn'), INV_FREQ, ...tiedHead(cfg, 'lm_head.weight')],
};
