/**
 * Cross-layer transcoders: encode / decode against values computed by hand on tiny tensors (CLT,
 * PLT set, ReLU / JumpReLU / TopK, skip path), gradients of the forward pass and of the training
 * loss against finite differences, and the files: glassbox's layout round-trips, circuit-tracer's
 * YAML sets over Gemma Scope params.npz and ReLU safetensors files written here byte by byte,
 * and bad files refused naming the file and the field.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveSafetensors } from '../src/io/index.js';
import { tensor, type Tensor } from '../src/index.js';
import {
  CrossLayerTranscoder,
  cltActivate,
  cltDecode,
  cltPreActs,
  cltTrainingLoss,
  loadClt,
  loadTranscoderSetYaml,
  saveClt,
  type CltConfig,
  type CltParams,
} from '../src/sae/index.js';
import { checkGrad, numbers, rnd } from './helpers.js';
import { npyF32, npzStored } from './npz-bytes.js';

const root = mkdtempSync(join(tmpdir(), 'glassbox-clt-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const fresh = (name: string): string => {
  const d = join(root, `${dirs++}-${name}`);
  mkdirSync(d, { recursive: true });
  return d;
};

const close = (actual: Tensor, expected: number[], tol = 1e-6): void => {
  const a = numbers(actual);
  assert.equal(a.length, expected.length, `length ${a.length} vs ${expected.length}`);
  a.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) <= tol, `[${i}]: ${v} vs ${expected[i]}`));
};

/** Two layers, d_in = d_out = 2, widths [2, 3]: the hand-computed example of the tests below. */
function handCfg(over: Partial<CltConfig> = {}): CltConfig {
  return {
    n_layers: 2,
    d_in: 2,
    d_out: 2,
    widths: [2, 3],
    activation: 'jumprelu',
    cross_layer: true,
    skip: false,
    hook_names_in: ['blocks.0.ln2.hook_normalized', 'blocks.1.ln2.hook_normalized'],
    hook_names_out: ['blocks.0.hook_mlp_out', 'blocks.1.hook_mlp_out'],
    ...over,
  };
}

function handParams(cfg: CltConfig): CltParams {
  const p: CltParams = {
    'W_enc.0': tensor([
      [1, 0],
      [0, 1],
    ]),
    'b_enc.0': tensor([0, -0.5]),
    'W_enc.1': tensor([
      [2, 0, 1],
      [0, 1, 1],
    ]),
    'b_enc.1': tensor([0, 0, 0]),
    // Feature 0 of layer 0 writes [1, 2] to layer 0 and [3, 4] to layer 1; feature 1 [5, 6] and [7, 8].
    'W_dec.0': cfg.cross_layer
      ? tensor([
          [
            [1, 2],
            [3, 4],
          ],
          [
            [5, 6],
            [7, 8],
          ],
        ])
      : tensor([[[1, 2]], [[5, 6]]]),
    'W_dec.1': tensor([[[1, 0]], [[0, 1]], [[10, 10]]]),
    'b_dec.0': tensor([0.1, 0.2]),
    'b_dec.1': tensor([-1, -1]),
  };
  if (cfg.activation === 'jumprelu') {
    p['threshold.0'] = tensor([0.5, 0.1]);
    p['threshold.1'] = tensor([0.5, 0.5, 2.5]);
  }
  if (cfg.skip) {
    p['W_skip.0'] = tensor([
      [0, 0],
      [0, 0],
    ]);
    p['W_skip.1'] = tensor([
      [2, 0],
      [0, 2],
    ]);
  }
  return p;
}

const x0 = tensor([[1, 0.4]]);
const x1 = tensor([[0.5, 1]]);

describe('CrossLayerTranscoder: values by hand', () => {
  it('JumpReLU CLT: pre-activations [1, -0.1] and [1, 1, 1.5] fire [1, 0] and [1, 1, 0]; decoders sum over sources', () => {
    const cfg = handCfg();
    const clt = new CrossLayerTranscoder(cfg, handParams(cfg));
    const a0 = clt.encode(0, x0);
    const a1 = clt.encode(1, x1);
    close(a0, [1, 0]);
    close(a1, [1, 1, 0]); // 1.5 is below its threshold 2.5
    close(clt.decode(0, [a0, a1]), [1.1, 2.2]); // [1, 2] + b_dec.0
    close(clt.decode(1, [a0, a1]), [3, 4]); // [3, 4] + [1, 0] + [0, 1] + [-1, -1]
    close(clt.wDec(0, 1), [3, 4, 7, 8]);
    assert.throws(() => clt.wDec(1, 0), /writes only to layers at or after/);
    const { outputs } = clt.forward([x0, x1]);
    close(outputs[1]!, [3, 4]);
    assert.equal(clt.inputHook(1), 'blocks.1.ln2.hook_normalized');
    assert.equal(clt.outputHook(0), 'blocks.0.hook_mlp_out');
  });

  it('ReLU and TopK (k = 1)', () => {
    const relu = handCfg({ activation: 'relu' });
    const r = new CrossLayerTranscoder(relu, handParams(relu));
    const ra = [r.encode(0, x0), r.encode(1, x1)];
    close(ra[1]!, [1, 1, 1.5]);
    close(r.decode(1, ra), [18, 19]); // [3, 4] + [1, 0] + [0, 1] + [15, 15] + [-1, -1]
    assert.equal(r.threshold(0), null);
    const topk = handCfg({ activation: 'topk', k: 1 });
    const t = new CrossLayerTranscoder(topk, handParams(topk));
    const ta = [t.encode(0, x0), t.encode(1, x1)];
    close(ta[0]!, [1, 0]);
    close(ta[1]!, [0, 0, 1.5]);
    close(t.decode(1, ta), [17, 18]);
  });

  it('a per-layer set writes only its own layer; the skip path adds x W_skip^T', () => {
    const plt = handCfg({ cross_layer: false, skip: true });
    const p = new CrossLayerTranscoder(plt, handParams(plt));
    const acts = [p.encode(0, x0), p.encode(1, x1)];
    close(p.decode(1, acts), [0, 0]); // [1, 0] + [0, 1] + [-1, -1]
    close(p.decode(1, acts, x1), [1, 2]); // + 2 * x1
    close(p.decode(0, acts, x0), [1.1, 2.2]);
    assert.throws(() => p.wDec(0, 1), /writes only its own layer/);
    assert.equal(p.crossLayer, false);
  });

  it('refuses parameters of the wrong shape or missing, naming them', () => {
    const cfg = handCfg();
    const p = handParams(cfg);
    assert.throws(
      () => new CrossLayerTranscoder(cfg, { ...p, 'W_dec.1': tensor([[[1, 0]]]) }),
      /'W_dec.1' has shape \[1, 1, 2\], expected \[3, 1, 2\]/,
    );
    const { 'threshold.1': _t, ...noThreshold } = p;
    assert.throws(() => new CrossLayerTranscoder(cfg, noThreshold), /'threshold.1' is missing/);
    assert.throws(() => new CrossLayerTranscoder(handCfg({ widths: [2] }), p), /field 'widths'/);
    assert.throws(() => new CrossLayerTranscoder(handCfg({ activation: 'topk', k: 5 }), p), /field 'k'/);
  });
});

describe('CrossLayerTranscoder: gradients', () => {
  it('decode(encode) against finite differences (W_enc, W_dec, x)', () => {
    const cfg = handCfg({ activation: 'relu', widths: [3, 3], d_in: 4, d_out: 3 });
    const base = CrossLayerTranscoder.init(cfg, { seed: 3 }).params;
    checkGrad(
      (wEnc0: Tensor, wDec0: Tensor, x: Tensor) => {
        // The pure functions the class and the trainer share (the class itself holds float32 only).
        const p = { ...mapTo(base, x.dtype), 'W_enc.0': wEnc0, 'W_dec.0': wDec0 };
        const enc = (l: number, v: Tensor): Tensor => cltActivate(cfg, p, l, cltPreActs(p, l, v));
        const acts = [enc(0, x), enc(1, x.mul(0.5))];
        return cltDecode(cfg, p, 1, acts).add(cltDecode(cfg, p, 0, acts));
      },
      [rnd([4, 3], 1), rnd([3, 2, 3], 2), rnd([5, 4], 3, 'float32', 2)],
      { atol: 1e-5, ortTol: 5e-3 },
    );
  });

  it('the ReLU training loss (MSE + L1 with decoder norms) against finite differences', () => {
    const cfg = handCfg({ activation: 'relu', widths: [3, 3], d_in: 4, d_out: 3 });
    const base = CrossLayerTranscoder.init(cfg, { seed: 4 }).params;
    const x = rnd([6, 2, 4], 5, 'float32', 2);
    const y = rnd([6, 2, 3], 6);
    checkGrad(
      (wEnc1: Tensor, wDec0: Tensor, bDec1: Tensor) => {
        const p = { ...mapTo(base, wEnc1.dtype), 'W_enc.1': wEnc1, 'W_dec.0': wDec0, 'b_dec.1': bDec1 };
        const r = cltTrainingLoss(cfg, p, x.cast(wEnc1.dtype), y.cast(wEnc1.dtype), { bandwidth: 0.05, tanhScale: 4 });
        return r.mse.add(r.sparsity.mul(0.1));
      },
      [rnd([4, 3], 7), rnd([3, 2, 3], 8), rnd([3], 9)],
      { atol: 1e-5, ortTol: 5e-3 },
    );
  });
});

/** The parameters cast to `dtype` (the gradient checks run in float64 on the JS backend). */
function mapTo(p: CltParams, dtype: Tensor['dtype']): CltParams {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.cast(dtype)]));
}

// ---- Files ----

describe('glassbox layout (cfg.json + sae_weights.safetensors)', () => {
  it('round-trips every parameter and field', () => {
    const cfg = handCfg({ skip: true, model_name: 'tiny', context_size: 8, prepend_bos: false, dataset_path: null });
    const clt = new CrossLayerTranscoder(cfg, handParams(cfg));
    const dir = fresh('roundtrip');
    saveClt(clt, dir);
    const back = loadClt(dir);
    assert.deepEqual(back.cfg, cfg);
    for (const [k, v] of Object.entries(clt.params)) assert.deepEqual(numbers(back.params[k]!), numbers(v), k);
    close(back.decode(1, [back.encode(0, x0), back.encode(1, x1)], x1), [4, 6]);
  });

  it('refuses bad files, naming the file and the field', () => {
    const cfg = handCfg();
    const dir = fresh('bad');
    saveClt(new CrossLayerTranscoder(cfg, handParams(cfg)), dir);
    const cfgPath = join(dir, 'cfg.json');
    const good = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    const withCfg = (c: Record<string, unknown>): void => writeFileSync(cfgPath, JSON.stringify(c));
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, widths: undefined }, /cfg\.json: field 'widths'/],
      [{ ...good, activation: 'gelu' }, /cfg\.json: field 'activation'/],
      [{ ...good, architecture: 'jumprelu' }, /cfg\.json: field 'architecture' must be 'clt'/],
      [{ ...good, d_in: 2.5 }, /cfg\.json: field 'd_in'/],
      [{ ...good, hook_names_out: ['blocks.0.hook_mlp_out'] }, /cfg\.json: field 'hook_names_out'/],
      [{ ...good, surprise: 1 }, /cfg\.json: unknown field\(s\) 'surprise'/],
      [{ ...good, cross_layer: 'yes' }, /cfg\.json: field 'cross_layer'/],
    ];
    for (const [c, re] of cases) {
      withCfg(c);
      assert.throws(() => loadClt(dir), re);
    }
    withCfg({ ...good, widths: [2, 4] });
    assert.throws(() => loadClt(dir), /sae_weights\.safetensors.*'W_enc\.1' has shape \[2, 3\], expected \[2, 4\]/);
    writeFileSync(cfgPath, '{ not json');
    assert.throws(() => loadClt(dir), /cfg\.json: cannot read the config/);
    assert.throws(() => loadClt(join(root, 'nowhere')), /cfg\.json: not found/);
  });
});

const range = (n: number, scale = 0.1, shift = 0): number[] => Array.from({ length: n }, (_, i) => ((i * 7) % 11) * scale - shift);

describe("circuit-tracer's transcoder configs (YAML)", () => {
  it('Gemma Scope params.npz per layer: a JumpReLU PLT set with ln2.hook_normalized -> hook_mlp_out', () => {
    const dir = fresh('gemmascope');
    // d_in 3, d_sae 4, d_out 3: W_enc [3, 4], W_dec [4, 3].
    for (const l of [0, 1]) {
      mkdirSync(join(dir, `layer_${l}`));
      writeFileSync(
        join(dir, `layer_${l}`, 'params.npz'),
        npzStored({
          W_enc: npyF32([3, 4], range(12, 0.1 * (l + 1), 0.3)),
          W_dec: npyF32([4, 3], range(12, 0.2)),
          b_enc: npyF32([4], [0.1, -0.1, 0, 0.2]),
          b_dec: npyF32([3], [l, 0, -l]),
          threshold: npyF32([4], [0.05, 0.1, 0.2, 0.3]),
        }),
      );
    }
    const yaml = join(dir, 'gemmascope.yaml');
    writeFileSync(
      yaml,
      [
        '# a Gemma Scope style set',
        'model_name: "google/gemma-2-2b"',
        'feature_input_hook: "ln2.hook_normalized"',
        "feature_output_hook: 'hook_mlp_out'",
        'transcoders:',
        '  - id: "t1"',
        '    layer: 1',
        '    filepath: "layer_1/params.npz"',
        '  - id: "t0"',
        '    layer: 0',
        '    filepath: "layer_0/params.npz"',
        '',
      ].join('\n'),
    );
    const set = loadTranscoderSetYaml(yaml);
    assert.equal(set.nLayers, 2);
    assert.equal(set.activation, 'jumprelu');
    assert.equal(set.crossLayer, false);
    assert.deepEqual(set.widths, [4, 4]);
    assert.equal(set.inputHook(1), 'blocks.1.ln2.hook_normalized');
    assert.equal(set.outputHook(0), 'blocks.0.hook_mlp_out');
    assert.equal(set.cfg.model_name, 'google/gemma-2-2b');
    close(set.bDec(1), [1, 0, -1]);
    // Layer 1 by hand: pre = x W_enc + b_enc, JumpReLU, then acts W_dec + b_dec.
    const x = [1, -1, 2];
    const wEnc = range(12, 0.2, 0.3);
    const pre = [0, 1, 2, 3].map((j) => x.reduce((s, xi, i) => s + xi * wEnc[i * 4 + j]!, 0) + [0.1, -0.1, 0, 0.2][j]!);
    const acts = pre.map((v, j) => (v > [0.05, 0.1, 0.2, 0.3][j]! ? v : 0));
    const wDec = range(12, 0.2);
    const out = [0, 1, 2].map((k) => acts.reduce((s, a, j) => s + a * wDec[j * 3 + k]!, 0) + [1, 0, -1][k]!);
    const a = set.encode(1, tensor([x]));
    close(a, acts, 1e-5);
    close(set.decode(1, [set.encode(0, tensor([x])), a]), out, 1e-5);
  });

  it('ReLU safetensors per layer: W_enc [d_sae, d_in] and W_dec [d_out, d_sae] transposed, W_skip applied as x W_skip^T', () => {
    const dir = fresh('relu');
    for (const l of [0, 1])
      saveSafetensors(join(dir, `layer_${l}.safetensors`), {
        W_enc: tensor(range(8, 0.1, 0.2), [4, 2]), // stored [d_sae 4, d_in 2]
        W_dec: tensor(range(8, 0.3), [2, 4]), // stored [d_out 2, d_sae 4]
        b_enc: tensor([0, 0.1, -0.1, 0]),
        b_dec: tensor([l, 1]),
        W_skip: tensor([
          [1, 0],
          [0, l],
        ]),
      });
    const yaml = join(dir, 'relu.yaml');
    writeFileSync(
      yaml,
      [
        'model_name: "tiny"',
        'feature_input_hook: "hook_resid_mid"',
        "feature_output_hook: 'mlp.hook_out'",
        'transcoders:',
        ...[0, 1].flatMap((l) => [`  - id: "relu-${l}"`, `    layer: ${l}`, `    filepath: "${join(dir, `layer_${l}.safetensors`)}"`]),
      ].join('\n'),
    );
    const set = loadTranscoderSetYaml(yaml, {
      hookNames: ['blocks.0.hook_resid_mid', 'blocks.1.hook_resid_mid', 'blocks.0.hook_mlp_out', 'blocks.1.hook_mlp_out'],
    });
    assert.equal(set.activation, 'relu');
    assert.equal(set.inputHook(0), 'blocks.0.hook_resid_mid');
    assert.equal(set.outputHook(1), 'blocks.1.hook_mlp_out');
    assert.deepEqual([set.dIn, set.dOut, set.widths[0]], [2, 2, 4]);
    const x = [2, -1];
    const encStored = range(8, 0.1, 0.2);
    const acts = [0, 1, 2, 3].map((j) => Math.max(0, x[0]! * encStored[j * 2]! + x[1]! * encStored[j * 2 + 1]! + [0, 0.1, -0.1, 0][j]!));
    const decStored = range(8, 0.3);
    const out = [0, 1].map(
      (k) => acts.reduce((s, a, j) => s + a * decStored[k * 4 + j]!, 0) + [1, 1][k]! + [x[0]!, x[1]!][k]! * [1, 1][k]!,
    );
    const a = set.encode(1, tensor([x]));
    close(a, acts, 1e-5);
    close(set.decode(1, [a, a], tensor([x])), out, 1e-5);
    close(set.wSkip(0)!, [1, 0, 0, 0]);
  });

  it('refuses bad configs and files, naming the file and the field', () => {
    const dir = fresh('yaml-bad');
    saveSafetensors(join(dir, 'l0.safetensors'), {
      W_enc: tensor(range(8), [4, 2]),
      W_dec: tensor(range(8), [2, 4]),
      b_enc: tensor([0, 0, 0, 0]),
      b_dec: tensor([0, 0]),
    });
    saveSafetensors(join(dir, 'thr.safetensors'), {
      W_enc: tensor(range(8), [4, 2]),
      W_dec: tensor(range(8), [2, 4]),
      b_enc: tensor([0, 0, 0, 0]),
      b_dec: tensor([0, 0]),
      log_thresholds: tensor([0, 0, 0, 0]),
    });
    saveSafetensors(join(dir, 'shape.safetensors'), {
      W_enc: tensor(range(8), [4, 2]),
      W_dec: tensor(range(6), [2, 3]),
      b_enc: tensor([0, 0, 0, 0]),
      b_dec: tensor([0, 0]),
    });
    writeFileSync(
      join(dir, 'nothr.npz'),
      npzStored({
        W_enc: npyF32([2, 4], range(8)),
        W_dec: npyF32([4, 2], range(8)),
        b_enc: npyF32([4], range(4)),
        b_dec: npyF32([2], range(2)),
      }),
    );
    const head = ['feature_input_hook: "ln2.hook_normalized"', 'feature_output_hook: "hook_mlp_out"'];
    const entry = (layer: number | string, file: string): string[] => [`  - id: "x"`, `    layer: ${layer}`, `    filepath: "${file}"`];
    const cases: [string[], RegExp][] = [
      [
        [...head, 'transcoders:', ...entry(0, 'l0.safetensors'), ...entry(2, 'l0.safetensors')],
        /bad-\d+\.yaml: transcoders\[1\]: field 'layer' is 2.*layer 1 is missing/,
      ],
      [[...head, 'transcoders:', ...entry(0, 'l0.safetensors'), ...entry(0, 'l0.safetensors')], /field 'layer' is 0.*listed twice/],
      [[...head, 'transcoders:', ...entry(0, 'hf://google/x/params.npz')], /transcoders\[0\]: field 'filepath' is a Hub URI/],
      [[...head, 'transcoders:', ...entry(0, 'missing.npz')], /transcoders\[0\]: field 'filepath': .*missing\.npz not found/],
      [[...head, 'transcoders:', ...entry('one', 'l0.safetensors')], /transcoders\[0\]: field 'layer' must be an integer/],
      [
        ['feature_input_hook: 3', 'feature_output_hook: "hook_mlp_out"', 'transcoders:', ...entry(0, 'l0.safetensors')],
        /field 'feature_input_hook'/,
      ],
      [[...head, 'transcoders: []'], /field 'transcoders' must be a non-empty list/],
      [[...head, 'transcoders:', '  - [unbalanced'], /not valid YAML/],
      [[...head, 'transcoders:', ...entry(0, 'thr.safetensors')], /thr\.safetensors: holds 'log_thresholds'/],
      [
        [...head, 'transcoders:', ...entry(0, 'shape.safetensors')],
        /shape\.safetensors: 'W_dec' has shape \[2, 3\], expected \[d_out, 4\]/,
      ],
      [[...head, 'transcoders:', ...entry(0, 'nothr.npz')], /nothr\.npz.*threshold/],
      [[...head, 'transcoders:', ...entry(0, 'l0.safetensors'), ...entry(1, 'nothr.npz')], /nothr\.npz/],
    ];
    cases.forEach(([lines, re], i) => {
      const file = join(dir, `bad-${i}.yaml`);
      writeFileSync(file, lines.join('\n'));
      assert.throws(() => loadTranscoderSetYaml(file), re, `case ${i}`);
    });
    const ok = join(dir, 'ok.yaml');
    writeFileSync(ok, [...head, 'transcoders:', ...entry(0, 'l0.safetensors')].join('\n'));
    assert.throws(
      () => loadTranscoderSetYaml(ok, { hookNames: ['blocks.0.hook_mlp_out'] }),
      /ok\.yaml: field 'feature_input_hook' gives 'blocks\.0\.ln2\.hook_normalized'/,
    );
  });
});
