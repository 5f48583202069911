/**
 * Bad files in a model directory: damaged or forged safetensors, a directory or a link loop where
 * a file should be, broken JSON, tensors the config does not use (and the buffers and duplicates
 * it may skip), weights holding NaN or infinities under `checkFinite`.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveSafetensors } from '../../src/io/index.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { tensor, type Tensor } from '../../src/tensor/index.js';
import type { HookedTransformer } from '../../src/model/hooked.js';
import {
  DEFAULT_DIR,
  HF,
  PROMPT,
  freshDir,
  load,
  modelDir,
  readConfig,
  referenceLogits,
  sameLogits,
  tensorsOf,
  writeWeights,
  type Json,
} from './build.js';
import { re, type Case } from './harness.js';

const GPT2 = `${HF}gpt2`;
const LLAMA = `${HF}llama`;
const DEF = DEFAULT_DIR.replace(/\/$/, '');

/** A safetensors file from a header (object or raw text) and data bytes; `headerLength` overrides the length field. */
function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const json = typeof header === 'string' ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** The gpt2 fixture's model.safetensors bytes. */
const gpt2Bytes = (): Uint8Array => new Uint8Array(readFileSync(join(GPT2, 'model.safetensors')));

/** A case on a gpt2-like directory whose `file` holds `bytes`; the refusal must name `file` and match `problem`. */
function badFile(
  label: string,
  file: string,
  bytes: () => string | Uint8Array,
  problem: RegExp,
  src = GPT2,
  loader: (dir: string) => unknown = load,
): Case {
  let dir = '';
  return {
    name: label,
    run: () => {
      dir = modelDir(src, label, { files: { [file]: bytes() } });
      return loader(dir);
    },
    error: () => [new RegExp(`${re(dir)}/${re(file)}`), problem],
  };
}

/** A case whose directory has `file` replaced by what `make(path)` puts there. */
function badEntry(label: string, file: string, make: (path: string) => void, problem: RegExp, src = GPT2): Case {
  let dir = '';
  return {
    name: label,
    run: () => {
      dir = modelDir(src, label, { files: { [file]: null } });
      make(join(dir, file));
      return load(dir);
    },
    error: () => [new RegExp(`${re(dir)}/${re(file)}`), problem],
  };
}

const loop = (path: string): void => symlinkSync(path, path);
const dangling = (path: string): void => symlinkSync(`${path}.nowhere`, path);
const directory = (path: string): void => mkdirSync(path);

/** Weights of `src` changed by `edit`, written into a fresh directory. */
function withWeights(src: string, label: string, edit: (t: Map<string, Tensor>) => void): string {
  const dir = modelDir(src, label, { files: { 'model.safetensors': null } });
  const t = tensorsOf(src);
  edit(t);
  writeWeights(dir, t);
  return dir;
}

function weightCases(): Case[] {
  const f32 = (shape: number[], fill: (i: number) => number) =>
    tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fill(i)),
      shape,
    );
  let dir = '';
  const refusedWeights = (label: string, src: string, edit: (t: Map<string, Tensor>) => void, problem: RegExp[], options = {}): Case => ({
    name: label,
    run: () => {
      dir = withWeights(src, label, edit);
      return load(dir, options);
    },
    error: () => [new RegExp(`${re(dir)}/model\\.safetensors`), ...problem],
  });
  const correctWeights = (label: string, src: string, edit: (t: Map<string, Tensor>) => void): Case => ({
    name: label,
    run: () => load(withWeights(src, label, edit)),
    check: sameLogits(src),
  });
  const poison = (value: number) => (t: Map<string, Tensor>) => {
    const w = t.get('transformer.h.1.mlp.c_fc.weight')!;
    const data = Float32Array.from(w.dataSync() as Float32Array);
    data[70] = value;
    t.set('transformer.h.1.mlp.c_fc.weight', tensor(data, w.shape));
  };
  return [
    refusedWeights(
      'an extra tensor in model.safetensors',
      GPT2,
      (t) =>
        t.set(
          'transformer.h.0.attn.extra_scale',
          f32([64], () => 1),
        ),
      [/1 tensor is not used/, /'transformer\.h\.0\.attn\.extra_scale'/],
    ),
    refusedWeights(
      'a third layer in the weights, n_layer 2',
      GPT2,
      (t) => {
        for (const [k, v] of [...t]) if (k.startsWith('transformer.h.1.')) t.set(k.replace('h.1.', 'h.2.'), v);
      },
      [/12 tensors are not used/, /field 'n_layer' is 2/],
    ),
    refusedWeights(
      'llama: q/k/v biases stored, attention_bias false',
      LLAMA,
      (t) => {
        t.set(
          'model.layers.0.self_attn.q_proj.bias',
          f32([64], () => 0.5),
        );
      },
      [/'model\.layers\.0\.self_attn\.q_proj\.bias'/, /not used/],
    ),
    refusedWeights(
      'gpt2: an untied lm_head stored, tie_word_embeddings true... and a stray bias',
      GPT2,
      (t) => {
        t.set(
          'lm_head.bias',
          f32([512], () => 1),
        );
      },
      [/'lm_head\.bias'/],
    ),
    // What transformers skips, glassbox skips: the same logits.
    correctWeights('gpt2: causal-mask buffers attn.bias / attn.masked_bias stored', GPT2, (t) => {
      t.set(
        'transformer.h.0.attn.bias',
        f32([1, 1, 64, 64], () => 1),
      );
      t.set(
        'transformer.h.0.attn.masked_bias',
        f32([], () => -1e4),
      );
    }),
    correctWeights('gpt2: a tied checkpoint storing a different lm_head.weight', GPT2, (t) => {
      t.set(
        'lm_head.weight',
        f32([512, 64], (i) => (i % 7) - 3),
      );
    }),
    correctWeights('llama: rotary_emb.inv_freq buffers stored', LLAMA, (t) => {
      t.set(
        'model.layers.0.self_attn.rotary_emb.inv_freq',
        f32([8], (i) => 1 / 10000 ** (i / 8)),
      );
    }),
    // Non-finite weights, refused under checkFinite with the tensor and element named.
    refusedWeights(
      'checkFinite: a NaN weight',
      GPT2,
      poison(NaN),
      [/tensor 'transformer\.h\.1\.mlp\.c_fc\.weight' holds NaN at \[0, 70\]/],
      {
        checkFinite: true,
      },
    ),
    refusedWeights('checkFinite: an infinite weight', GPT2, poison(Infinity), [/'transformer\.h\.1\.mlp\.c_fc\.weight' holds Infinity/], {
      checkFinite: true,
    }),
    refusedWeights('checkFinite: -Infinity', GPT2, poison(-Infinity), [/holds -Infinity at \[0, 70\]/], { checkFinite: true }),
    {
      name: 'checkFinite on finite weights loads the same model',
      run: () => load(GPT2, { checkFinite: true }),
      check: sameLogits(GPT2),
    },
    {
      name: 'float16 weights load as float32 (logits within float16 rounding)',
      run: () => {
        const d = modelDir(GPT2, 'f16', { files: { 'model.safetensors': null } });
        saveSafetensors(join(d, 'model.safetensors'), Object.fromEntries(tensorsOf(GPT2)), { dtype: 'float16' });
        return load(d).forward(PROMPT).dataSync();
      },
      check: (r) => {
        const got = r as Float32Array;
        const want = referenceLogits(GPT2);
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        if (!(worst < 0.05)) throw new Error(`float16 logits differ by ${worst}`);
      },
    },
    // 16-bit weights kept at 2 bytes (weightDtype 'stored', the CLI's --weight-dtype stored) are
    // checked like widened ones, and compute what the widened ones compute.
    {
      name: "float16 weights kept stored (weightDtype 'stored', checkFinite) compute what the widened ones do",
      run: () => {
        const d = modelDir(GPT2, 'f16-stored', { files: { 'model.safetensors': null } });
        saveSafetensors(join(d, 'model.safetensors'), Object.fromEntries(tensorsOf(GPT2)), { dtype: 'float16' });
        return [load(d, { weightDtype: 'stored', checkFinite: true }), load(d)];
      },
      check: (r) => {
        const [stored, widened] = r as [HookedTransformer, HookedTransformer];
        const got = stored.forward(PROMPT).dataSync() as Float32Array;
        const want = widened.forward(PROMPT).dataSync() as Float32Array;
        for (let i = 0; i < got.length; i++)
          if (Math.abs(got[i]! - want[i]!) > 1e-4) throw new Error(`logit ${i} is ${got[i]} stored, ${want[i]} widened`);
      },
    },
    (() => {
      let d = '';
      return {
        name: "checkFinite: a NaN in float16 weights kept stored (weightDtype 'stored')",
        run: () => {
          d = modelDir(GPT2, 'f16-stored-nan', { files: { 'model.safetensors': null } });
          const t = tensorsOf(GPT2);
          poison(NaN)(t);
          saveSafetensors(join(d, 'model.safetensors'), Object.fromEntries(t), { dtype: 'float16' });
          return load(d, { weightDtype: 'stored', checkFinite: true });
        },
        error: () => [new RegExp(`${re(d)}/model\\.safetensors`), /'transformer\.h\.1\.mlp\.c_fc\.weight' holds NaN at \[0, 70\]/],
      };
    })(),
  ];
}

function safetensorsCases(): Case[] {
  const st = 'model.safetensors';
  const header = { 'transformer.wte.weight': { dtype: 'F32', shape: [512, 64], data_offsets: [0, 512 * 64 * 4] } };
  return [
    badFile('model.safetensors truncated to half', st, () => gpt2Bytes().subarray(0, gpt2Bytes().length >> 1), /./),
    badFile('model.safetensors of 4 bytes', st, () => new Uint8Array([1, 2, 3, 4]), /./),
    badFile('model.safetensors empty', st, () => new Uint8Array(0), /./),
    badFile('model.safetensors of garbage', st, () => Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24), /header/),
    badFile('a header length of 2^62', st, () => rawSafetensors(header, new Uint8Array(16), 1n << 62n), /header/),
    badFile('a header that is not JSON', st, () => rawSafetensors('{"a": [1, 2', new Uint8Array(8)), /header/),
    badFile('a header that is a JSON list', st, () => rawSafetensors([1, 2, 3]), /header/),
    badFile('data offsets past the end', st, () => rawSafetensors(header, new Uint8Array(100)), /offset|bytes|length|size/i),
    badFile('dtype "F99"', st, () => rawSafetensors({ x: { dtype: 'F99', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /F99/),
    badFile(
      'dtype F64 over F32-sized data',
      st,
      () => rawSafetensors({ x: { dtype: 'F64', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(16)),
      /./,
    ),
    badFile(
      'overlapping tensors',
      st,
      () =>
        rawSafetensors(
          { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
          new Uint8Array(12),
        ),
      /overlap|offset|gap/i,
    ),
    badFile(
      'a negative shape',
      st,
      () => rawSafetensors({ x: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /shape/,
    ),
    badFile(
      'a valid file holding other tensors',
      st,
      () => rawSafetensors({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /tensor '[^']+': not in this checkpoint/,
    ),
    badFile(
      'a weight stored as int32',
      st,
      () => {
        const d = freshDir('int32');
        const t = Object.fromEntries(tensorsOf(GPT2));
        t['transformer.ln_f.bias'] = tensor(new Int32Array(64), [64], 'int32');
        saveSafetensors(join(d, 'x.safetensors'), t);
        return new Uint8Array(readFileSync(join(d, 'x.safetensors')));
      },
      /tensor 'transformer\.ln_f\.bias' is stored as int32/,
    ),
  ];
}

function entryCases(): Case[] {
  return [
    badEntry('a directory named model.safetensors', 'model.safetensors', directory, /is a directory, not a file/),
    badEntry('model.safetensors a symlink loop', 'model.safetensors', loop, /symbolic link loop/),
    badEntry('model.safetensors a dangling link', 'model.safetensors', dangling, /dangling/),
    badEntry('a directory named config.json', 'config.json', directory, /is a directory, not a file/),
    badEntry('config.json a symlink loop', 'config.json', loop, /symbolic link loop/),
    badEntry('config.json missing', 'config.json', () => {}, /missing/),
    badEntry('tokenizer.json a symlink loop (was read as "no tokenizer")', 'tokenizer.json', loop, /symbolic link loop/, DEF),
    badEntry('tokenizer.json a dangling link', 'tokenizer.json', dangling, /dangling/, DEF),
    badEntry('a directory named tokenizer.json', 'tokenizer.json', directory, /is a directory/, DEF),
    badEntry('tokenizer_config.json a symlink loop', 'tokenizer_config.json', loop, /symbolic link loop/, DEF),
    badEntry('special_tokens_map.json a directory', 'special_tokens_map.json', directory, /is a directory/, DEF),
    badFile('config.json empty', 'config.json', () => '', /not valid JSON/),
    badFile('config.json truncated', 'config.json', () => readFileSync(join(GPT2, 'config.json'), 'utf8').slice(0, 50), /not valid JSON/),
    badFile('config.json binary', 'config.json', () => new Uint8Array([0xff, 0xfe, 0, 1, 2]), /not valid JSON/),
    badFile('tokenizer.json null', 'tokenizer.json', () => 'null', /expected a JSON object/, DEF),
    badFile('tokenizer.json truncated', 'tokenizer.json', () => '{"version": "1.0", "model": {', /not valid JSON/, DEF),
    badFile(
      'tokenizer.json of another kind',
      'tokenizer.json',
      () => '{"hello": 1}',
      /./,
      DEF,
      (dir) => loadTokenizer(dir),
    ),
    {
      name: 'a model directory that is a file',
      run: () => {
        const d = freshDir('file-dir');
        writeFileSync(join(d, 'model'), 'x');
        return load(join(d, 'model'));
      },
      error: [/\/model: not a directory/],
    },
    ...shardCases(),
  ];
}

/** Sharded checkpoints whose index lies. */
function shardCases(): Case[] {
  const idx = 'model.safetensors.index.json';
  const sharded = (label: string, index: unknown, problem: RegExp): Case => {
    let dir = '';
    return {
      name: label,
      run: () => {
        dir = modelDir(GPT2, label, { files: { 'model.safetensors': null, [idx]: JSON.stringify(index) } });
        symlinkSync(join(GPT2, 'model.safetensors'), join(dir, 'model-00001-of-00001.safetensors'));
        return load(dir);
      },
      error: () => [new RegExp(`${re(dir)}/${re(idx)}`), problem],
    };
  };
  const names = [...tensorsOf(GPT2).keys()];
  const map = (file: string) => Object.fromEntries(names.map((n) => [n, file]));
  return [
    sharded('a shard index naming a missing shard', { weight_map: map('model-00002-of-00002.safetensors') }, /does not exist/),
    sharded(
      'a shard index naming a file outside the directory',
      { weight_map: map('../../etc/passwd') },
      /outside the checkpoint directory/,
    ),
    sharded('a shard index that is null', null, /not a JSON object/),
    sharded('a shard index without weight_map', { metadata: {} }, /weight_map/),
    sharded(
      'a shard index mapping a tensor the shard lacks',
      { weight_map: { ...map('model-00001-of-00001.safetensors'), 'extra.weight': 'model-00001-of-00001.safetensors' } },
      /extra\.weight/,
    ),
    {
      name: 'a correct shard index loads the same model',
      run: () => {
        const d = modelDir(GPT2, 'good-index', {
          files: { 'model.safetensors': null, [idx]: JSON.stringify({ weight_map: map('model-00001-of-00001.safetensors') }) },
        });
        symlinkSync(join(GPT2, 'model.safetensors'), join(d, 'model-00001-of-00001.safetensors'));
        return load(d);
      },
      check: sameLogits(GPT2),
    },
  ];
}

/** Layer indices in tensor names, as the loader reads them (`h.3.`, `layers.3.`, `blocks.3.`). */
const LAYER_INDEX = /(?:^|\.)(?:h|layers|blocks)\.(\d+)\./;
/** A multimodal checkpoint's vision tower, which has layers of its own (skipped by the loader). */
const VISION = /vision_tower|multi_modal_projector/;
/** The token embedding of each layout. */
const EMBEDDING = /(embed_tokens|wte|word_embeddings|embed_in)\.weight$/;
/** The fixtures without rotary positions (no inv_freq buffer is theirs to skip). */
const LEARNED_OR_ALIBI = new Set(['gpt2', 'opt', 'opt_postln', 'bloom', 'gpt_neo']);
/** Families whose older checkpoints stored causal-mask buffers, and where (under the layer's prefix). */
const MASK_BUFFER_NAMES: Record<string, string[]> = {
  gpt_neo: ['attn.attention.bias', 'attn.attention.masked_bias'],
  gptj: ['attn.bias', 'attn.masked_bias'],
  gpt_neox: ['attention.bias', 'attention.masked_bias'],
};

/**
 * Every Hugging Face fixture's checkpoint used exactly: a layer past the config's count and a stray
 * tensor are refused by name; a tied unembedding stored beside the embedding, RoPE's inv_freq and
 * the causal-mask buffers (what transformers does not load) change nothing; an untied
 * unembedding that is missing is refused by name.
 */
function everyFamilyCases(): Case[] {
  const f32 = (shape: number[], fill: (i: number) => number) =>
    tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fill(i)),
      shape,
    );
  const fixtures = readdirSync(HF).filter((d) => existsSync(join(HF, d, 'model.safetensors')));
  const cases: Case[] = [];
  for (const fam of fixtures) {
    const src = `${HF}${fam}`;
    const names = () => [...tensorsOf(src).keys()].filter((n) => !VISION.test(n));
    const layerOf = (n: string) => Number(LAYER_INDEX.exec(n)?.[1] ?? -1);
    const refusedWeights = (label: string, edit: (t: Map<string, Tensor>) => void, problem: () => RegExp[]): Case => {
      let dir = '';
      return {
        name: `${fam}: ${label}`,
        run: () => load((dir = withWeights(src, `${fam}-${label}`, edit))),
        error: () => [new RegExp(`${re(dir)}/model\\.safetensors`), ...problem()],
      };
    };
    const correctWeights = (label: string, edit: (t: Map<string, Tensor>) => void): Case => ({
      name: `${fam}: ${label}`,
      run: () => load(withWeights(src, `${fam}-${label}`, edit)),
      check: sameLogits(src),
    });
    // The prefix of layer 0 ('model.layers.0.') and its attention module ('model.layers.0.self_attn.').
    const layer0 = () => {
      const n = names().find((k) => layerOf(k) === 0)!;
      return n.slice(0, n.indexOf('.0.') + 3);
    };
    const attn0 = () => {
      const pre = layer0();
      const mod = ['self_attn.', 'self_attention.', 'attention.', 'attn.'].find((m) => names().some((k) => k.startsWith(pre + m)));
      return pre + (mod ?? 'self_attn.');
    };
    cases.push(
      refusedWeights(
        'a layer past the config stored',
        (t) => {
          const last = Math.max(...names().map(layerOf));
          for (const [k, v] of [...t]) if (!VISION.test(k) && layerOf(k) === last) t.set(k.replace(`.${last}.`, `.${last + 1}.`), v);
        },
        () => [/tensors? (is|are) not used/, /layers past \d+, but field '[^']+' is \d+/],
      ),
      refusedWeights(
        'a stray tensor in layer 0',
        (t) =>
          t.set(
            `${layer0()}stray_scale`,
            f32([4], () => 1),
          ),
        () => [/1 tensor is not used/, new RegExp(`'${re(layer0())}stray_scale'`)],
      ),
    );
    if (!LEARNED_OR_ALIBI.has(fam))
      cases.push(
        correctWeights("RoPE's inv_freq buffer stored", (t) =>
          t.set(
            `${attn0()}rotary_emb.inv_freq`,
            f32([4], (i) => 1 / 10000 ** (i / 4)),
          ),
        ),
      );
    const embedding = names().find((n) => EMBEDDING.test(n));
    const config = readConfig(src);
    const tied = (config.tie_word_embeddings ?? (config.text_config as Json | undefined)?.tie_word_embeddings) !== false;
    if (embedding && tied) {
      const head = embedding.startsWith('language_model.') ? 'language_model.lm_head.weight' : 'lm_head.weight';
      cases.push(
        correctWeights(`a tied checkpoint storing a different ${head}`, (t) =>
          t.set(
            head,
            f32([...t.get(embedding)!.shape], (i) => (i % 5) - 2),
          ),
        ),
      );
    }
    if (!tied) {
      const head = names().find((n) => /(lm_head|embed_out)\.weight$/.test(n))!;
      cases.push(
        refusedWeights(
          `an untied checkpoint without ${head}`,
          (t) => t.delete(head),
          () => [new RegExp(`'${re(head)}'`)],
        ),
      );
    }
    for (const buffer of MASK_BUFFER_NAMES[fam] ?? [])
      cases.push(
        correctWeights(`causal-mask buffer ${buffer} stored`, (t) =>
          t.set(
            `${layer0()}${buffer}`,
            f32([1, 1, 4, 4], () => 1),
          ),
        ),
      );
  }
  return cases;
}

export function fileCases(): Case[] {
  return [...safetensorsCases(), ...entryCases(), ...weightCases(), ...everyFamilyCases()];
}
