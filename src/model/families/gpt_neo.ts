/**
 * GPT-Neo. Against GPT-2: separate q/k/v projections (torch Linear layout) with no biases; no
 * 1/sqrt(d_head) scaling of the attention scores; layers alternate between global (full causal)
 * and local attention, which sees only the last window_size positions (attention_types, e.g.
 * [[["global", "local"], 12]], expanded per layer as transformers does). Learned positions, GELU
 * (gelu_new by default), biases elsewhere, tied embeddings by default.
 */
import { headDim, readActivation, readTokenIds, type ModelConfig } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import type { BlockParams } from '../forward.js';
import { MASK_BUFFERS, linearT, tiedHead, type Family } from './types.js';

export const gptNeo: Family = {
  modelTypes: ['gpt_neo'],
  config(r): ModelConfig {
    const d = r.dim('hidden_size');
    const nH = r.dim(['num_heads', 'num_attention_heads']);
    const nLayers = r.layers(['num_layers', 'num_hidden_layers']);
    const types = attentionLayers(r, nLayers);
    const window = r.optDim('window_size', 256);
    // transformers recomputes attention_layers from attention_types (read above).
    r.ignore('attention_layers');
    r.ignore('resid_dropout'); // dropout: inert at inference
    // The sequence-summary head of GPT2DoubleHeads-style models: not part of the language model.
    r.ignore('summary_type', 'summary_use_proj', 'summary_activation', 'summary_proj_to_labels', 'summary_first_dropout');
    return {
      family: 'gpt_neo',
      nLayers,
      dModel: d,
      nHeads: nH,
      nKVHeads: nH,
      dHead: headDim(r, d, nH, 'hidden_size', 'num_heads'),
      dMlp: r.optDim('intermediate_size', 4 * d),
      dVocab: r.dim('vocab_size'),
      nCtx: r.dim('max_position_embeddings'),
      norm: 'layernorm',
      normEps: r.optNum('layer_norm_epsilon', 1e-5, { gt: 0, max: 1 }),
      normWeightOffset: 0,
      positional: 'learned',
      rotaryDim: 0,
      ropeTheta: 0,
      parallelResidual: false,
      act: readActivation(r, 'activation_function', 'gelu_new'),
      gatedMlp: false,
      // GPT-Neo does not scale q.k by 1/sqrt(d_head).
      attnScale: 1,
      attnSoftcap: null,
      finalSoftcap: null,
      slidingWindow: types.map((t) => (t === 'local' ? window : null)),
      embedScale: 1,
      postNorms: false,
      qkNorm: false,
      attnBias: false,
      attnOutBias: true,
      mlpBias: true,
      unembedBias: false,
      tiedEmbeddings: r.bool('tie_word_embeddings', true),
      ...readTokenIds(r),
    };
  },
  weights(cfg, w) {
    const pre = w.has('transformer.wte.weight') ? 'transformer.' : '';
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `${pre}h.${l}.`;
      const a = `${h}attn.attention.`;
      blocks.push({
        ln1: { w: w.get(`${h}ln_1.weight`), b: w.get(`${h}ln_1.bias`) },
        ln2: { w: w.get(`${h}ln_2.weight`), b: w.get(`${h}ln_2.bias`) },
        attn: {
          W_Q: linearT(w, `${a}q_proj.weight`),
          W_K: linearT(w, `${a}k_proj.weight`),
          W_V: linearT(w, `${a}v_proj.weight`),
          W_O: linearT(w, `${a}out_proj.weight`),
          b_O: w.get(`${a}out_proj.bias`),
        },
        mlp: {
          W_in: linearT(w, `${h}mlp.c_fc.weight`),
          b_in: w.get(`${h}mlp.c_fc.bias`),
          W_out: linearT(w, `${h}mlp.c_proj.weight`),
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
      unembed: { W_U: cfg.tiedEmbeddings ? wte.transpose() : linearT(w, 'lm_head.weight') },
    };
  },
  skipped: (cfg) => [MASK_BUFFERS('.attn.attention'), ...tiedHead(cfg, 'lm_head.weight')],
};

/**
 * attention_types, [[["global", "local"], 12]] by default: each entry repeats its list of
 * layer types `count` times; the expansion must give one type per layer.
 */
function attentionLayers(r: HfConfigReader, nLayers: number): ('global' | 'local')[] {
  const name = 'attention_types';
  r.ignore(name); // read here, by hand: a nested list the reader has no method for
  const raw = r.has(name) ? r.raw[name] : [[['global', 'local'], 12]];
  if (!Array.isArray(raw)) throw r.error(name, 'must be a list of [[types...], count] entries');
  const out: ('global' | 'local')[] = [];
  raw.forEach((entry: unknown, i) => {
    const [types, count] = Array.isArray(entry) ? (entry as unknown[]) : [];
    if (!Array.isArray(types) || !Number.isSafeInteger(count) || (count as number) < 0 || (entry as unknown[]).length !== 2)
      throw r.error(`${name}[${i}]`, 'must be [[types...], count]');
    for (const t of types)
      if (t !== 'global' && t !== 'local')
        throw r.error(
          `${name}[${i}]`,
          `names attention type ${JSON.stringify(t)}, which glassbox does not implement (implemented: global, local)`,
        );
    // Stop once past the layers (a count of 1e15 would otherwise fill memory before the check below).
    for (let k = 0; k < (count as number) && out.length <= nLayers; k++) out.push(...(types as ('global' | 'local')[]));
  });
  if (out.length !== nLayers)
    throw r.error(name, `expands to ${out.length > nLayers ? `more than ${nLayers}` : out.length} layers, but num_layers is ${nLayers}`);
  return out;
}
