/**
 * Bad SAEs: cfg.json fields out of range or of another kind (an int8 dtype), an SAE trained on
 * another model, NaN or infinite weights (which read every feature as dead), files that are not
 * there or not files.
 */
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveSafetensors } from '../../src/io/index.js';
import { attachSae } from '../../src/sae/attach.js';
import { evaluateSae } from '../../src/sae/evals.js';
import { collectFeatures } from '../../src/sae/features/store.js';
import { loadSae, saveSae } from '../../src/sae/formats.js';
import { Sae } from '../../src/sae/sae.js';
import { tensor, type Tensor } from '../../src/tensor/index.js';
import type { HookedTransformer } from '../../src/model/hooked.js';
import { DEFAULT_DIR, freshDir, load, type Json } from './build.js';
import { re, type Case } from './harness.js';

const HOOK = 'blocks.1.hook_resid_pre';
let defaultModel: HookedTransformer | null = null;
/** The default model, loaded once, named 'default' as `loadModel('default')` names it. */
function model(): HookedTransformer {
  if (!defaultModel) {
    defaultModel = load(DEFAULT_DIR.replace(/\/$/, ''));
    defaultModel.name = 'default';
  }
  return defaultModel;
}

/** A small standard SAE on the default model's residual stream (d_in 192). */
function makeSae(config: Json = {}): Sae {
  return Sae.create({ architecture: 'standard', d_in: 192, d_sae: 32, hook_name: HOOK, model_name: 'default', ...config }, { seed: 1 });
}

/** An SAE directory whose cfg.json (and weights) `edit` changes. */
function saeDir(label: string, edit: { cfg?: (c: Json) => unknown; weights?: (w: Record<string, Tensor>) => void } = {}): string {
  const dir = freshDir(`sae-${label}`);
  saveSae(makeSae(), dir);
  if (edit.cfg) {
    const c = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8')) as Json;
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify(edit.cfg(c)));
  }
  if (edit.weights) {
    const sae = makeSae();
    const w: Record<string, Tensor> = { ...sae.params };
    edit.weights(w);
    saveSafetensors(join(dir, 'sae_weights.safetensors'), w);
  }
  return dir;
}

function refusedLoad(label: string, edit: Parameters<typeof saeDir>[1], file: string, problem: RegExp): Case {
  let dir = '';
  return {
    name: label,
    run: () => {
      dir = saeDir(label, edit);
      return loadSae(dir);
    },
    error: () => [new RegExp(`${re(dir)}/${re(file)}`), problem],
  };
}

const withValue = (name: string, index: number, value: number) => (w: Record<string, Tensor>) => {
  const t = w[name]!;
  const data = Float32Array.from(t.dataSync() as Float32Array);
  data[index] = value;
  w[name] = tensor(data, t.shape);
};

function configCases(): Case[] {
  const cfg = (field: string, value: unknown) => ({ cfg: (c: Json) => ({ ...c, [field]: value }) });
  return [
    refusedLoad(
      'cfg.json dtype "int8"',
      cfg('dtype', 'int8'),
      'cfg.json',
      /'dtype' is "int8"; glassbox runs SAEs stored as float32, float16, bfloat16, float64/,
    ),
    refusedLoad('cfg.json dtype 8', cfg('dtype', 8), 'cfg.json', /'dtype' is 8/),
    refusedLoad('cfg.json dtype "torch.int8"', cfg('dtype', 'torch.int8'), 'cfg.json', /'dtype' is "torch\.int8"/),
    refusedLoad('cfg.json null', { cfg: () => null }, 'cfg.json', /expected a JSON object, got null/),
    refusedLoad('cfg.json d_in "192"', cfg('d_in', '192'), 'cfg.json', /'d_in' must be an integer >= 1, got "192"/),
    refusedLoad('cfg.json d_sae 0', cfg('d_sae', 0), 'cfg.json', /'d_sae' must be an integer >= 1, got 0/),
    refusedLoad('cfg.json d_sae 1.5', cfg('d_sae', 1.5), 'cfg.json', /'d_sae' must be an integer >= 1, got 1\.5/),
    refusedLoad('cfg.json d_in disagrees with the weights', cfg('d_in', 191), 'sae_weights.safetensors', /W_enc|shape/),
    refusedLoad('cfg.json architecture "magic"', cfg('architecture', 'magic'), 'cfg.json', /magic/),
    refusedLoad(
      'cfg.json normalize_activations "sometimes"',
      cfg('normalize_activations', 'sometimes'),
      'cfg.json',
      /'normalize_activations' is "sometimes"/,
    ),
    refusedLoad('cfg.json hook_layer -1', cfg('hook_layer', -1), 'cfg.json', /'hook_layer' must be an integer >= 0, got -1/),
    refusedLoad(
      'cfg.json k -1 (topk)',
      { cfg: (c) => ({ ...c, architecture: 'topk', k: -1 }) },
      'cfg.json',
      /'k' must be a positive number, got -1/,
    ),
    refusedLoad(
      'weights holding NaN (every feature read as dead)',
      { weights: withValue('W_enc', 5, NaN) },
      'sae_weights.safetensors',
      /parameter 'W_enc' holds NaN at \[0, 5\]/,
    ),
    refusedLoad(
      'weights holding Infinity',
      { weights: withValue('b_dec', 3, Infinity) },
      'sae_weights.safetensors',
      /parameter 'b_dec' holds Infinity at \[3\]/,
    ),
    refusedLoad(
      'weights stored as int32',
      { weights: (w) => (w.b_enc = tensor(new Int32Array(32), [32], 'int32')) },
      'sae_weights.safetensors',
      /tensor 'b_enc' is int32/,
    ),
    refusedLoad('a weight missing', { weights: (w) => delete w.b_dec }, 'sae_weights.safetensors', /b_dec/),
    {
      name: 'cfg.json dtype "torch.float16" loads',
      run: () => loadSae(saeDir('f16', { cfg: (c) => ({ ...c, dtype: 'torch.float16' }) })),
      check: (s) => {
        if ((s as Sae).cfg.dtype !== 'torch.float16') throw new Error((s as Sae).cfg.dtype);
      },
    },
  ];
}

function fileCases(): Case[] {
  const entry = (label: string, file: string, make: (p: string) => void, problem: RegExp): Case => {
    let dir = '';
    return {
      name: label,
      run: () => {
        dir = freshDir(`sae-${label}`);
        saveSae(makeSae(), dir);
        const p = join(dir, file);
        rmSync(p, { force: true });
        make(p);
        return loadSae(dir);
      },
      error: () => [new RegExp(`${re(dir)}/${re(file)}`), problem],
    };
  };
  return [
    entry('cfg.json missing', 'cfg.json', () => {}, /not found/),
    entry('cfg.json a symlink loop', 'cfg.json', (p) => symlinkSync(p, p), /symbolic link loop/),
    entry('cfg.json a directory', 'cfg.json', (p) => mkdirSync(p), /is a directory/),
    entry('sae_weights.safetensors missing', 'sae_weights.safetensors', () => {}, /not found/),
    entry('sae_weights.safetensors a directory', 'sae_weights.safetensors', (p) => mkdirSync(p), /directory/),
  ];
}

function attachCases(): Case[] {
  const tokens = Array.from({ length: 600 }, (_, i) => (i * 7919) % 4000);
  return [
    {
      name: 'an SAE trained on gpt2-small attached to the default model',
      run: () => attachSae(model(), makeSae({ model_name: 'gpt2-small' })),
      error: [/trained on model_name 'gpt2-small'/, /the model is 'default'/, /allowModelMismatch/],
    },
    {
      name: 'evaluateSae with an SAE of another model',
      run: () =>
        evaluateSae(model(), makeSae({ model_name: 'EleutherAI/pythia-70m' }), tokens, { batches: 1, batchSize: 1, contextSize: 16 }),
      error: /trained on model_name 'EleutherAI\/pythia-70m'/,
    },
    {
      name: 'collectFeatures with an SAE of another model',
      run: () => collectFeatures(model(), makeSae({ model_name: 'gemma-2-2b' }), tokens, { batches: 1, batchSize: 1, contextSize: 16 }),
      error: /trained on model_name 'gemma-2-2b'/,
    },
    {
      name: 'allowModelMismatch attaches it anyway',
      run: () => attachSae(model(), makeSae({ model_name: 'gpt2-small' }), { allowModelMismatch: true }),
      check: (h) => {
        if ((h as unknown[]).length !== 1) throw new Error('expected one hook');
      },
    },
    {
      name: "model_name 'glassbox/default' is the default model",
      run: () => attachSae(model(), makeSae({ model_name: 'glassbox/default' })),
      check: () => {},
    },
    { name: 'model_name null attaches', run: () => attachSae(model(), makeSae({ model_name: null })), check: () => {} },
    {
      name: 'an SAE whose hook_name is not a hook point',
      run: () => attachSae(model(), makeSae({ hook_name: 'blocks.9.hook_resid_pre' })),
      error: /hook_name 'blocks\.9\.hook_resid_pre' is not a hook point of this model \(did you mean/,
    },
    {
      name: 'evaluateSae with NaN weights in memory (reported every feature dead)',
      run: () => {
        const s = makeSae();
        const w = { ...s.params };
        withValue('W_dec', 0, NaN)(w);
        return evaluateSae(model(), s.withParams(w), tokens, { batches: 1, batchSize: 1, contextSize: 16 });
      },
      error: /evaluateSae: parameter 'W_dec' holds NaN at \[0, 0\]/,
    },
    {
      name: 'collectFeatures with NaN weights in memory',
      run: () => {
        const s = makeSae();
        const w = { ...s.params };
        withValue('b_enc', 2, NaN)(w);
        return collectFeatures(model(), s.withParams(w), tokens, { batches: 1, batchSize: 1, contextSize: 16 });
      },
      error: /collectFeatures: parameter 'b_enc' holds NaN at \[2\]/,
    },
    {
      name: "an SAE context_size of 1024 on the default model's context of 256 is cut to 256",
      run: () => evaluateSae(model(), makeSae({ context_size: 1024 }), tokens, { batches: 1, batchSize: 1, skipModelPerformance: true }),
      check: (r) => {
        const ctx = (r as { data: { contextSize: number } }).data.contextSize;
        if (ctx !== 256) throw new Error(`context ${ctx}`);
      },
    },
  ];
}

export function saeCases(): Case[] {
  return [...configCases(), ...fileCases(), ...attachCases()];
}
