/**
 * Phi-3 (Phi-3 mini/medium, Phi-3.5 mini, Phi-4 mini): the LLaMA layout with q, k and v fused in
 * one `qkv_proj` ([q | k | v] rows) and the MLP's gate and up projections fused in one
 * `gate_up_proj` ([gate | up] rows); LongRoPE for the long-context models (short factors within
 * `original_max_position_embeddings`, long ones beyond it, and an attention factor on cos and sin);
 * partial rotary (Phi-4 mini rotates 3/4 of each head); an optional sliding window on every layer.
 */
import { rmsGatedConfig, readEnds, readStandardDims, type ModelConfig } from '../config.js';
import { checkRopeDims, readRope } from '../rope.js';
import type { BlockParams } from '../forward.js';
import { linearT, normAt, type Family } from './types.js';
import { llamaEnds, llamaSkipped } from './llama.js';

export const phi3: Family = {
  modelTypes: ['phi3'],
  config(r): ModelConfig {
    const dims = readStandardDims(r, { context: 4096 });
    const { nLayers, dHead: dh } = dims;
    const { rope, partialRotary, partialField } = readRope(r, {
      defaultTheta: 10000,
      maxPositions: dims.nCtx,
      // Phi3Config accepts only plain RoPE and LongRoPE, and reads 'su' and 'yarn' as LongRoPE.
      implemented: ['default', 'longrope'],
      aliases: { su: 'longrope', yarn: 'longrope' },
      // Phi3Config declares original_max_position_embeddings (default 4096), which overrides the
      // value inside rope_scaling.
      topOriginalDefault: 4096,
    });
    const rotaryDim = Math.floor(dh * (partialRotary ?? 1));
    if (rotaryDim % 2 !== 0) throw r.error(partialField, `gives an odd number of rotary dims (${rotaryDim} of ${dh})`);
    checkRopeDims(r, rope, rotaryDim);
    const window = r.optNum('sliding_window', null, { integer: true, min: 1 });
    // transformers' Phi3 has no biases and no such options; the code these files point to
    // (auto_map) is the authors' copy of it, which transformers does not run.
    r.expect('attention_bias', [false]);
    r.expect('mlp_bias', [false]);
    r.expect('lm_head_bias', [false]);
    // Phi-4 mini's remote-code switches, at the values that leave every layer plain full attention.
    r.expect('full_attn_mod', [1]);
    r.expect('interpolate_factor', [1]);
    r.ignore('auto_map');
    return {
      ...rmsGatedConfig(r, 'phi3', dims, rope, { normEps: 1e-5, rotaryDim }),
      ...(rope.type === 'longrope' ? { ropeRefreshCache: true } : {}),
      slidingWindow: Array(nLayers).fill(window),
      attnBias: false,
      attnOutBias: false,
      mlpBias: false,
      ...readEnds(r, false),
    };
  },
  weights(cfg, w) {
    const { nHeads: nH, nKVHeads: nKV, dHead: dh, dMlp } = cfg;
    // Row ranges [start, end) of a fused [out, in] projection, as [in, out]; the fused tensor must have `rows` rows.
    const fused = (name: string, rows: number) => {
      const t = w.get(name);
      if (t.shape[0] !== rows) throw new Error(`weight '${name}' has ${t.shape[0]} rows, but the config implies ${rows}`);
      return (start: number, end: number) => t.slice([{ start, end }]).transpose();
    };
    const blocks: BlockParams[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const h = `model.layers.${l}.`;
      const qkv = fused(`${h}self_attn.qkv_proj.weight`, (nH + 2 * nKV) * dh);
      const gateUp = fused(`${h}mlp.gate_up_proj.weight`, 2 * dMlp);
      blocks.push({
        ln1: normAt(w, `${h}input_layernorm`),
        ln2: normAt(w, `${h}post_attention_layernorm`),
        attn: {
          W_Q: qkv(0, nH * dh),
          W_K: qkv(nH * dh, (nH + nKV) * dh),
          W_V: qkv((nH + nKV) * dh, (nH + 2 * nKV) * dh),
          W_O: linearT(w, `${h}self_attn.o_proj.weight`),
        },
        mlp: {
          // up_states * act(gate): the first half of gate_up_proj is the gate.
          W_gate: gateUp(0, dMlp),
          W_in: gateUp(dMlp, 2 * dMlp),
          W_out: linearT(w, `${h}mlp.down_proj.weight`),
        },
      });
    }
    return llamaEnds(cfg, w, blocks);
  },
  skipped: (cfg) => llamaSkipped(cfg),
};
