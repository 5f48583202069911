/**
 * SAELens's on-disk layout: fixtures written by hand from the documented layout (cfg.json fields;
 * safetensors bytes: an 8-byte little-endian header length, a JSON header of dtype/shape/
 * data_offsets, the raw little-endian data) load with the right values and config; load -> save
 * -> load round-trips (unknown cfg fields kept, sparsity, bfloat16 storage); legacy configs;
 * errors name the file and the problem.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, tensor } from '../src/index.js';
import { loadSae, saveSae, type Sae } from '../src/sae/index.js';

const root = mkdtempSync(join(tmpdir(), 'glassbox-sae-formats-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => {
  const d = join(root, `sae${dirCount++}`);
  mkdirSync(d);
  return d;
};

const vec = (t: Tensor): number[] => Array.from(t.cast('float32').dataSync() as Float32Array);

/** A safetensors file, byte by byte: u64 LE header length, JSON header, then F32 / BF16 data. */
function safetensorsBytes(tensors: Record<string, { shape: number[]; values: number[]; dtype?: 'F32' | 'BF16' }>): Buffer {
  const header: Record<string, unknown> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, { shape, values, dtype = 'F32' }] of Object.entries(tensors)) {
    const bytes = dtype === 'F32' ? 4 : 2;
    const buf = Buffer.alloc(values.length * bytes);
    values.forEach((v, i) => {
      if (dtype === 'F32') buf.writeFloatLE(v, i * 4);
      else {
        const f = Buffer.alloc(4);
        f.writeFloatLE(v);
        buf.writeUInt16LE(f.readUInt32LE() >>> 16, i * 2); // exact for values with 8 significant bits
      }
    });
    header[name] = { dtype, shape, data_offsets: [offset, offset + buf.length] };
    chunks.push(buf);
    offset += buf.length;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...chunks]);
}

const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

/** A JumpReLU SAE directory in SAELens 5's flat cfg.json layout, d_in 3, d_sae 4. */
function writeJumpReluFixture(
  dir: string,
  cfgPatch: Record<string, unknown> = {},
  weightsPatch: Record<string, { shape: number[]; values: number[] }> = {},
) {
  const cfg = {
    architecture: 'jumprelu',
    d_in: 3,
    d_sae: 4,
    dtype: 'float32',
    device: 'cpu',
    model_name: 'gpt2',
    hook_name: 'blocks.2.hook_resid_pre',
    hook_layer: 2,
    hook_head_index: null,
    activation_fn_str: 'relu',
    activation_fn_kwargs: {},
    apply_b_dec_to_input: true,
    finetuning_scaling_factor: false,
    sae_lens_training_version: '5.9.1',
    prepend_bos: true,
    dataset_path: 'apollo-research/roneneldan-TinyStories-tokenizer-gpt2',
    dataset_trust_remote_code: true,
    context_size: 128,
    normalize_activations: 'none',
    neuronpedia_id: 'gpt2-small/2-res-jb',
    model_from_pretrained_kwargs: { center_writing_weights: false },
    seqpos_slice: [null],
    ...cfgPatch,
  };
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  const weights = {
    W_enc: { shape: [3, 4], values: range(12, (i) => (i - 6) / 8) },
    b_enc: { shape: [4], values: [0.5, -0.25, 0, 0.125] },
    W_dec: { shape: [4, 3], values: range(12, (i) => (i % 5) / 4 - 0.5) },
    b_dec: { shape: [3], values: [0.1, 0.2, 0.3] },
    threshold: { shape: [4], values: [0.25, 0.5, 0.75, 1] },
    ...weightsPatch,
  };
  const present = Object.fromEntries(Object.entries(weights).filter(([, w]) => w !== undefined));
  writeFileSync(join(dir, 'sae_weights.safetensors'), safetensorsBytes(present));
  return { cfg, weights };
}

function assertSameSae(a: Sae, b: Sae): void {
  assert.deepEqual(Object.keys(a.params).sort(), Object.keys(b.params).sort());
  for (const k of Object.keys(a.params)) {
    assert.deepEqual(a.params[k]!.shape, b.params[k]!.shape, k);
    assert.deepEqual(vec(a.params[k]!), vec(b.params[k]!), k);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(a.cfg)), JSON.parse(JSON.stringify(b.cfg)));
}

describe("SAELens's directory layout", () => {
  it('loads a hand-written SAELens SAE: config fields, weights, and the forward pass they define', () => {
    const dir = freshDir();
    const { weights } = writeJumpReluFixture(dir);
    const sae = loadSae(dir);
    assert.equal(sae.cfg.architecture, 'jumprelu');
    assert.equal(sae.cfg.hook_name, 'blocks.2.hook_resid_pre');
    assert.equal(sae.cfg.hook_layer, 2);
    assert.equal(sae.cfg.context_size, 128);
    assert.equal(sae.cfg.model_name, 'gpt2');
    assert.equal(sae.cfg.neuronpedia_id, 'gpt2-small/2-res-jb');
    assert.equal(sae.sparsity, null);
    for (const [k, w] of Object.entries(weights)) assert.deepEqual(vec(sae.params[k]!), w.values.map(Math.fround), k);
    // JumpReLU by hand on one input.
    const x = [1, -2, 0.5];
    const xin = x.map((v, i) => v - weights.b_dec.values[i]!);
    const pre = range(4, (j) => xin.reduce((s, v, i) => s + v * weights.W_enc.values[i * 4 + j]!, 0) + weights.b_enc.values[j]!);
    const acts = pre.map((p, j) => (p > weights.threshold.values[j]! ? Math.max(p, 0) : 0));
    const got = vec(sae.encode(tensor([x])));
    got.forEach((v, j) => assert.ok(Math.abs(v - acts[j]!) < 1e-6, `act ${j}: ${v} vs ${acts[j]}`));
  });

  it('load -> save -> load round-trips, keeping unknown cfg fields and the sparsity file', () => {
    const dir = freshDir();
    const { cfg } = writeJumpReluFixture(dir);
    writeFileSync(join(dir, 'sparsity.safetensors'), safetensorsBytes({ sparsity: { shape: [4], values: [-1, -2, -3.5, -10] } }));
    const a = loadSae(dir);
    assert.deepEqual(vec(a.sparsity!), [-1, -2, -3.5, -10]);
    const out = freshDir();
    saveSae(a, out);
    assert.deepEqual(readdirSync(out).sort(), ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors']);
    const written = JSON.parse(readFileSync(join(out, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    for (const [k, v] of Object.entries(cfg)) assert.deepEqual(written[k], v, `cfg field ${k}`);
    const b = loadSae(out);
    assertSameSae(a, b);
    assert.deepEqual(vec(b.sparsity!), [-1, -2, -3.5, -10]);
    // Saving again gives the same bytes.
    const again = freshDir();
    saveSae(b, again);
    for (const f of ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors'])
      assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(again, f))), f);
  });

  it('keeps bfloat16 storage through a round trip', () => {
    const dir = freshDir();
    writeJumpReluFixture(dir, { dtype: 'bfloat16' });
    const bf = { shape: [3, 4], values: [1, -2, 0.5, 0.25, 3, -0.125, 8, 1.5, -1, 2, 0, 4], dtype: 'BF16' as const };
    writeFileSync(
      join(dir, 'sae_weights.safetensors'),
      safetensorsBytes({
        W_enc: bf,
        b_enc: { shape: [4], values: [0, 0, 0, 0], dtype: 'BF16' },
        W_dec: { ...bf, shape: [4, 3] },
        b_dec: { shape: [3], values: [1, 2, 3], dtype: 'BF16' },
        threshold: { shape: [4], values: [0.5, 0.5, 1, 1], dtype: 'BF16' },
      }),
    );
    const a = loadSae(dir);
    assert.deepEqual(vec(a.params.W_enc!), bf.values);
    const out = freshDir();
    saveSae(a, out);
    const header = readFileSync(join(out, 'sae_weights.safetensors'));
    const json = JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString('utf8')) as Record<
      string,
      { dtype: string }
    >;
    assert.equal(json.W_enc!.dtype, 'BF16');
    assertSameSae(a, loadSae(out));
  });

  it("reads SAELens 6's nested metadata and keeps it in step on save", () => {
    const dir = freshDir();
    writeJumpReluFixture(dir, {
      model_name: undefined,
      hook_name: undefined,
      hook_layer: undefined,
      context_size: undefined,
      metadata: { model_name: 'gemma-2-2b', hook_name: 'blocks.5.hook_resid_post', context_size: 1024, sae_lens_version: '6.5.0' },
    });
    const a = loadSae(dir);
    assert.equal(a.cfg.hook_name, 'blocks.5.hook_resid_post');
    assert.equal(a.cfg.hook_layer, 5);
    assert.equal(a.cfg.model_name, 'gemma-2-2b');
    const out = freshDir();
    saveSae(a.withConfig({ hook_name: 'blocks.6.hook_resid_post', hook_layer: 6 }), out);
    const written = JSON.parse(readFileSync(join(out, 'cfg.json'), 'utf8')) as { hook_name: string; metadata: Record<string, unknown> };
    assert.equal(written.hook_name, 'blocks.6.hook_resid_post');
    assert.equal(written.metadata.hook_name, 'blocks.6.hook_resid_post');
    assert.equal(written.metadata.sae_lens_version, '6.5.0');
  });

  it('reads legacy configs: TopK as standard + activation_fn_str, hook_point, boolean normalisation, log_threshold', () => {
    const dir = freshDir();
    writeJumpReluFixture(dir, {
      architecture: 'standard',
      activation_fn_str: 'topk',
      activation_fn_kwargs: { k: 2 },
      hook_name: undefined,
      hook_point: 'blocks.1.hook_resid_post',
      normalize_activations: false,
    });
    const topk = loadSae(dir);
    assert.equal(topk.cfg.architecture, 'topk');
    assert.equal(topk.cfg.k, 2);
    assert.equal(topk.cfg.hook_name, 'blocks.1.hook_resid_post');
    assert.equal(topk.cfg.normalize_activations, 'none');
    // A tensor the architecture does not use is kept and written back.
    assert.deepEqual(Object.keys(topk.extraTensors), ['threshold']);
    const resaved = freshDir();
    saveSae(topk, resaved);
    assert.deepEqual(vec(loadSae(resaved).extraTensors.threshold!), [0.25, 0.5, 0.75, 1]);

    const j = freshDir();
    writeJumpReluFixture(j, {}, { threshold: undefined as never, log_threshold: { shape: [4], values: [0, Math.log(2), -1, 1] } });
    const sae = loadSae(j);
    const t = vec(sae.params.threshold!);
    [1, 2, Math.exp(-1), Math.E].forEach((v, i) => assert.ok(Math.abs(t[i]! - v) < 1e-6));
  });

  it('errors name the file and the problem', () => {
    const unknown = freshDir();
    writeJumpReluFixture(unknown, { architecture: 'crosscoder' });
    assert.throws(
      () => loadSae(unknown),
      (e: Error) =>
        e.message.includes(join(unknown, 'cfg.json')) && /unknown SAE architecture 'crosscoder' \(known: .*jumprelu.*\)/.test(e.message),
    );

    const shape = freshDir();
    writeJumpReluFixture(shape, {}, { b_enc: { shape: [5], values: [0, 0, 0, 0, 0] } });
    assert.throws(
      () => loadSae(shape),
      (e: Error) =>
        e.message.includes('sae_weights.safetensors') && /'b_enc' has shape \[5\] but d_in 3, d_sae 4 imply \[4\]/.test(e.message),
    );

    const missing = freshDir();
    writeJumpReluFixture(missing, {}, { threshold: undefined as never });
    assert.throws(() => loadSae(missing), /sae_weights\.safetensors.*the jumprelu architecture needs 'threshold'/);

    const badCfg = freshDir();
    writeJumpReluFixture(badCfg, { d_sae: 'many' });
    assert.throws(
      () => loadSae(badCfg),
      (e: Error) => e.message.startsWith(join(badCfg, 'cfg.json')) && /'d_sae' must be an integer/.test(e.message),
    );

    const notJson = freshDir();
    writeJumpReluFixture(notJson);
    writeFileSync(join(notJson, 'cfg.json'), '{"architecture": ');
    assert.throws(() => loadSae(notJson), /cfg\.json: cannot read the config/);

    const sparsity = freshDir();
    writeJumpReluFixture(sparsity);
    writeFileSync(join(sparsity, 'sparsity.safetensors'), safetensorsBytes({ sparsity: { shape: [3], values: [0, 0, 0] } }));
    assert.throws(() => loadSae(sparsity), /sparsity\.safetensors: 'sparsity' has shape \[3\] but d_sae is 4/);

    assert.throws(() => loadSae(join(root, 'nowhere')), /nowhere\/cfg\.json: not found/);
  });
});
