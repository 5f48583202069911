/**
 * OPT. Against GPT-2: learned positions stored with an offset of 2 (row p + 2 of
 * embed_positions serves position p; positions count real tokens, from the attention mask);
 * separate q/k/v/out projections (torch Linear layout); ReLU MLP (fc1, fc2); LayerNorm eps fixed
 * at 1e-5; biases on every projection unless enable_bias is false; LayerNorms without weights
 * when layer_norm_elementwise_affine is false; token embeddings of word_embed_proj_dim projected
 * to hidden_size (project_in) and back before the unembedding (project_out): both projections are
 * bias-free linear maps, so they are multiplied into W_E and W_U at load. With
 * do_layer_norm_before false (OPT-350m) the norms act after each residual add and there is no
 * final norm (normAfterAdd).
 *
 * Refused: _remove_final_layer_norm with pre-norms (old fine-tuned checkpoints without the final norm).
 */
import { headDim, plainConfig, readActivation, readTokenIds, type ModelConfig } from '../config.js';
import type { BlockParams, NormParams } from '../forward.js';
import { linearT, tiedHead, type Family } from './types.js';

/** word_embed_proj_dim of each config read (weights() checks the token embeddings against it). */
const embedWidth = new WeakMap<ModelConfig, number>();

export const opt: Family = {
  modelTypes: ['opt'],
  config(r): ModelConfig {
    const d = r.dim('hidden_size');
    const nH = r.dim('num_attention_heads');
    const nLayers = r.layers('num_hidden_layers');
    const normBefore = r.bool('do_layer_norm_before', true);
    // transformers builds the final norm only with pre-norms; without them this flag changes nothing.
    if (normBefore) r.expect('_remove_final_layer_norm', [false]);
    else r.ignore('_remove_final_layer_norm');
    // word_embed_proj_dim (default hidden_size): the projections are folded into W_E and W_U
    // (weights()), which checks the token embeddings' width against it.
    const projDim = r.optDim('word_embed_proj_dim', null);
    const bias = r.bool('enable_bias', true);
    r.ignore('activation_dropout'); // dropout: inert at inference
    const cfg: ModelConfig = {
      ...plainConfig(nLayers),
      family: 'opt',
      nLayers,
      dModel: d,
      nHeads: nH,
      nKVHeads: nH,
      dHead: headDim(r, d, nH, 'hidden_size'),
      dMlp: r.dim('ffn_dim'),
      dVocab: r.dim('vocab_size'),
      nCtx: r.dim('max_position_embeddings'),
      norm: 'layernorm',
      // OPT's nn.LayerNorm modules take the default eps; no config field sets it.
      normEps: 1e-5,
      positional: 'learned',
      rotaryDim: 0,
      ropeTheta: 0,
      ...(normBefore ? {} : { normAfterAdd: true }),
      act: readActivation(r, 'activation_function', 'relu'),
      attnScale: 1 / Math.sqrt(d / nH),
      attnBias: bias,
      attnOutBias: bias,
      mlpBias: bias,
      tiedEmbeddings: r.bool('tie_word_embeddings', true),
      normAffine: r.bool('layer_norm_elementwise_affine', true),
      ...readTokenIds(r),
    };
    embedWidth.set(cfg, projDim ?? d);
    return cfg;
  },
  weights(cfg, w) {
    const pre = w.has('model.decoder.embed_tokens.weight') ? 'model.decoder.' : 'decoder.';
    const ln = (name: string): NormParams => (cfg.normAffine !== false ? { w: w.get(`${name}.weight`), b: w.get(`${name}.bias`) } : {});
    const opt = (name: string) => (cfg.attnBias ? w.get(name) : undefined);
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `${pre}layers.${l}.`;
      const a = `${h}self_attn.`;
      blocks.push({
        ln1: ln(`${h}self_attn_layer_norm`),
        ln2: ln(`${h}final_layer_norm`),
        attn: {
          W_Q: linearT(w, `${a}q_proj.weight`),
          W_K: linearT(w, `${a}k_proj.weight`),
          W_V: linearT(w, `${a}v_proj.weight`),
          W_O: linearT(w, `${a}out_proj.weight`),
          b_Q: opt(`${a}q_proj.bias`),
          b_K: opt(`${a}k_proj.bias`),
          b_V: opt(`${a}v_proj.bias`),
          b_O: opt(`${a}out_proj.bias`),
        },
        mlp: {
          W_in: linearT(w, `${h}fc1.weight`),
          b_in: opt(`${h}fc1.bias`),
          W_out: linearT(w, `${h}fc2.weight`),
          b_out: opt(`${h}fc2.bias`),
        },
      });
    }
    const tokens = w.get(`${pre}embed_tokens.weight`); // [vocab, word_embed_proj_dim]
    const lmHead = cfg.tiedEmbeddings ? tokens : w.get('lm_head.weight'); // [vocab, word_embed_proj_dim]
    // project_in [d_model, proj] and project_out [proj, d_model] (torch Linear), present exactly when
    // the token embeddings' width (word_embed_proj_dim) is not d_model, as transformers builds them.
    const width = embedWidth.get(cfg);
    if (width !== undefined && tokens.shape[1] !== width)
      throw new Error(
        `weight '${pre}embed_tokens.weight' has shape [${tokens.shape}] but the config implies [${cfg.dVocab}, ${width}] (word_embed_proj_dim, default hidden_size)`,
      );
    const projected = tokens.shape[1] !== cfg.dModel;
    const projIn = projected ? linearT(w, `${pre}project_in.weight`) : null;
    const projOut = projected ? linearT(w, `${pre}project_out.weight`) : null;
    return {
      embed: { W_E: projIn ? tokens.matmul(projIn) : tokens },
      // Row p + 2 serves position p: rows 0 and 1 (the offset; row 1 is what transformers gives padding) are dropped.
      pos_embed: { W_pos: w.get(`${pre}embed_positions.weight`).slice([{ start: 2 }]) },
      blocks,
      ln_final: cfg.normAfterAdd ? {} : ln(`${pre}final_layer_norm`),
      unembed: { W_U: projOut ? projOut.matmul(lmHead.transpose()) : lmHead.transpose() },
    };
  },
  skipped: (cfg) => tiedHead(cfg, 'lm_head.weight'),
};
