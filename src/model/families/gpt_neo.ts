/**
 * GPT-Neo. Against GPT-2: separate q/k/v projections (torch Linear layout) with no biases; no
 * 1/sqrt(d_head) scaling of the attention scores; layers alternate between global (full causal)
 * and local attention, which sees only the last window_size positions (attention_types, e.g.
 * [[["global", "local"], 12]], expanded per layer as transformers does). Learned positions, GELU
 * (gelu_new by default), biases elsewhere, tied embeddings by default.
 */
import { headDim, plainConfig, readActivation, readEnds, type ModelConfig } from '../config.js';
import type { HfConfigReader } from '../hf-config.js';
import type { BlockParams } from '../forward.js';
import { mlpAt, normAt, qkvoAt, MASK_BUFFERS, tiedHead, type Family } from './types.js';
import { gpt2Ends, gpt2Prefix } from './gpt2.js';

export const gptNeo: Family = {
  modelTypes: ['gpt_neo'],
  config(r): ModelConfig {
    const d = r.dim('hidden_size');
    const nH = r.dim(['num_heads', 'num_attention_heads']);
    const nLayers = r.layers(['num_layers', 'num_hidden_layers']);
    const types = layerKinds(r, nLayers);
    const window = r.optDim('window_size', 256);
    r.ignore('resid_dropout'); // dropout: inert at inference
    // The sequence-summary head of GPT2DoubleHeads-style models: not part of the language model.
    r.ignore('summary_type', 'summary_use_proj', 'summary_activation', 'summary_proj_to_labels', 'summary_first_dropout');
    return {
      ...plainConfig(nLayers),
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
      positional: 'learned',
      rotaryDim: 0,
      ropeTheta: 0,
      act: readActivation(r, 'activation_function', 'gelu_new'),
      // GPT-Neo does not scale q.k by 1/sqrt(d_head).
      attnScale: 1,
      slidingWindow: types.map((t) => (t === 'local' ? window : null)),
      attnBias: false,
      attnOutBias: true,
      mlpBias: true,
      ...readEnds(r, true),
    };
  },
  weights(cfg, w) {
    const pre = gpt2Prefix(w);
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `${pre}h.${l}.`;
      blocks.push({
        ln1: normAt(w, `${h}ln_1`, true),
        ln2: normAt(w, `${h}ln_2`, true),
        attn: qkvoAt(w, `${h}attn.attention.`, { o: true }, ['q_proj', 'k_proj', 'v_proj', 'out_proj']),
        mlp: mlpAt(w, `${h}mlp.c_fc`, `${h}mlp.c_proj`),
      });
    }
    return gpt2Ends(cfg, w, pre, blocks);
  },
  skipped: (cfg) => [MASK_BUFFERS('.attn.attention'), ...tiedHead(cfg, 'lm_head.weight')],
};

/**
 * attention_types, [[["global", "local"], 12]] by default: each entry repeats its list of
 * layer types `count` times; the expansion must give one type per layer.
 */
/**
 * Each layer's attention kind. transformers 5.18 expands `attention_types` (default
 * [[["global", "local"], 12]]) into `attention_layers`, but a stored `attention_layers` replaces
 * the expansion when it loads a config.json: the stored list decides, and one that disagrees with
 * `attention_types` is refused, since the file then says two things.
 */
function layerKinds(r: HfConfigReader, nLayers: number): ('global' | 'local')[] {
  const stored = r.strList('attention_layers', ['global', 'local'] as const);
  if (stored && stored.length !== nLayers) throw r.error('attention_layers', `lists ${stored.length} layers, but num_layers is ${nLayers}`);
  if (!stored) return attentionLayers(r, nLayers);
  if (!r.has('attention_types')) {
    r.ignore('attention_types');
    return stored;
  }
  const expanded = attentionLayers(r, nLayers);
  if (expanded.join() !== stored.join())
    throw r.error('attention_layers', `is [${stored.join(', ')}], but attention_types expands to [${expanded.join(', ')}]`);
  return stored;
}

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
