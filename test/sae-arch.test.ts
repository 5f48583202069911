/**
 * SAE architectures: the registry; SAELens's initialisation; each inference form against a plain
 * JS computation; each training loss's terms against the same by hand; the straight-through
 * estimators' gradients against their formulas; transcoders; normalisation and weight folding.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRNG, Tensor, randn, tensor, valueAndGrad } from '../src/index.js';
import {
  Sae,
  estimateNormScalingFactor,
  foldActivationNormScalingFactor,
  foldDecoderNorm,
  geometricMedian,
  getArchitecture,
  jumpReluSte,
  listArchitectures,
  logFeatureDensity,
  matryoshkaWidthsOf,
  stepSte,
  stopGradient,
  toInferenceSae,
  updateTopkThreshold,
  type SaeConfigInput,
  type SaeParams,
} from '../src/sae/index.js';
import { adam, fixedData, train } from '../src/train/index.js';

// ---- plain-JS reference ----

type Mat = number[][];
const rows = (t: Tensor): Mat => t.toArray() as Mat;
const vec = (t: Tensor): number[] => Array.from(t.cast('float32').dataSync() as Float32Array);
const matmul = (a: Mat, b: Mat): Mat => a.map((r) => b[0]!.map((_, j) => r.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
const addRow = (a: Mat, b: number[]): Mat => a.map((r) => r.map((v, j) => v + b[j]!));
const subRow = (a: Mat, b: number[]): Mat => a.map((r) => r.map((v, j) => v - b[j]!));
const relu = (v: number): number => Math.max(0, v);
const rowNorms = (m: Mat): number[] => m.map((r) => Math.sqrt(r.reduce((s, v) => s + v * v, 0)));
const mse = (a: Mat, b: Mat): number => a.reduce((s, r, i) => s + r.reduce((t, v, j) => t + (v - b[i]![j]!) ** 2, 0), 0) / a.length;

function assertNear(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: got ${actual}, expected ${expected}`);
}
function assertMatNear(actual: Tensor, expected: Mat, tol: number, what: string): void {
  const a = rows(actual);
  assert.equal(a.length, expected.length, `${what} rows`);
  a.forEach((r, i) => r.forEach((v, j) => assertNear(v, expected[i]![j]!, tol, `${what}[${i}][${j}]`)));
}

/** Random parameters of an architecture's shapes (so biases and thresholds are not all zero). */
function randomSae(cfg: SaeConfigInput, seed: number, scale = 0.5): Sae {
  const sae = Sae.create(cfg, { seed });
  const rng = new PRNG(seed + 100);
  const params: SaeParams = {};
  for (const [k, t] of Object.entries(sae.params)) {
    const r = randn([...t.shape], { rng });
    params[k] = k === 'threshold' ? r.mul(0.3).abs() : r.mul(scale);
  }
  return sae.withParams(params);
}

const D_IN = 4;
const D_SAE = 6;
const x = randn([5, D_IN], { seed: 7 });

describe('SAE registry and initialisation', () => {
  it('registers the SAELens architectures by name and lists them in errors', () => {
    const names = listArchitectures();
    for (const n of [
      'standard',
      'topk',
      'batchtopk',
      'jumprelu',
      'gated',
      'matryoshka_batchtopk',
      'transcoder',
      'skip_transcoder',
      'jumprelu_transcoder',
    ])
      assert.ok(names.includes(n), n);
    assert.equal(getArchitecture('matryoshka-batchtopk').name, 'matryoshka_batchtopk');
    assert.equal(
      Sae.create({ architecture: 'matryoshka-batchtopk', d_in: 4, d_sae: 8, k: 2, matryoshka_widths: [4, 8] }).cfg.architecture,
      'matryoshka_batchtopk',
    );
    assert.throws(
      () => getArchitecture('sparse_magic', 'cfg.json'),
      /cfg\.json: unknown SAE architecture 'sparse_magic' \(known: batchtopk, gated, .*standard.*\)/,
    );
    assert.throws(() => Sae.create({ architecture: 'topk', d_in: 4, d_sae: 8 }), /needs k/);
  });

  it('initialises like SAELens: W_dec rows of norm 0.1 (or as asked), W_enc = W_dec^T, zero biases', () => {
    const sae = Sae.create({ architecture: 'standard', d_in: 8, d_sae: 16 }, { seed: 3 });
    rowNorms(rows(sae.params.W_dec!)).forEach((n) => assertNear(n, 0.1, 1e-5, 'row norm'));
    assert.deepEqual(rows(sae.params.W_enc!), rows(sae.params.W_dec!.transpose()));
    assert.deepEqual(vec(sae.params.b_enc!), new Array(16).fill(0));
    assert.deepEqual(vec(sae.params.b_dec!), new Array(8).fill(0));
    const unit = Sae.create({ architecture: 'jumprelu', d_in: 8, d_sae: 16 }, { seed: 3, decoderInitNorm: 1, initThreshold: 0.2 });
    rowNorms(rows(unit.params.W_dec!)).forEach((n) => assertNear(n, 1, 1e-5, 'unit row norm'));
    vec(unit.params.threshold!).forEach((t) => assertNear(t, 0.2, 1e-7, 'threshold'));
    const g = Sae.create({ architecture: 'gated', d_in: 8, d_sae: 16 });
    assert.deepEqual(Object.keys(g.params).sort(), ['W_dec', 'W_enc', 'b_dec', 'b_gate', 'b_mag', 'r_mag']);
    const t = Sae.create({ architecture: 'skip_transcoder', d_in: 8, d_sae: 16, d_out: 5 });
    assert.deepEqual(t.params.W_enc!.shape, [8, 16]);
    assert.deepEqual(t.params.W_dec!.shape, [16, 5]);
    assert.deepEqual(t.params.b_dec!.shape, [5]);
    assert.deepEqual(t.params.W_skip!.shape, [5, 8]);
    assert.ok(vec(t.params.W_skip!).every((v) => v === 0));
    assert.equal(t.cfg.apply_b_dec_to_input, false);
  });

  it('checks parameter shapes against the config, naming the parameter and both shapes', () => {
    const sae = Sae.create({ architecture: 'standard', d_in: 4, d_sae: 6 });
    assert.throws(
      () => sae.withParams({ ...sae.params, b_enc: tensor([0, 0, 0]) }),
      /'b_enc' has shape \[3\] but d_in 4, d_sae 6 imply \[6\]/,
    );
    assert.throws(() => sae.withParams({ W_enc: sae.params.W_enc!, W_dec: sae.params.W_dec! }), /needs 'b_enc', 'b_dec'/);
  });
});

describe('SAE inference forms', () => {
  it('standard: ReLU(x W_enc + b_enc) W_dec + b_dec, with b_dec subtracted from the input', () => {
    const sae = randomSae({ architecture: 'standard', d_in: D_IN, d_sae: D_SAE }, 1);
    const p = sae.params;
    const pre = addRow(matmul(subRow(rows(x), vec(p.b_dec!)), rows(p.W_enc!)), vec(p.b_enc!));
    const acts = pre.map((r) => r.map(relu));
    assertMatNear(sae.encode(x), acts, 1e-5, 'acts');
    assertMatNear(sae.forward(x), addRow(matmul(acts, rows(p.W_dec!)), vec(p.b_dec!)), 1e-5, 'forward');
    const noSub = sae.withConfig({ apply_b_dec_to_input: false });
    assertMatNear(
      noSub.encode(x),
      addRow(matmul(rows(x), rows(p.W_enc!)), vec(p.b_enc!)).map((r) => r.map(relu)),
      1e-5,
      'acts without b_dec',
    );
  });

  it('topk: the k largest pre-activations per example, ReLU-ed (rescaled by decoder norms when configured)', () => {
    for (const rescale of [false, true]) {
      const sae = randomSae({ architecture: 'topk', d_in: D_IN, d_sae: D_SAE, k: 2, rescale_acts_by_decoder_norm: rescale }, 2);
      const p = sae.params;
      const norms = rowNorms(rows(p.W_dec!));
      const pre = addRow(matmul(subRow(rows(x), vec(p.b_dec!)), rows(p.W_enc!)), vec(p.b_enc!)).map((r) =>
        r.map((v, j) => (rescale ? v * norms[j]! : v)),
      );
      const acts = pre.map((r) => {
        const top = [...r.keys()].sort((a, b) => r[b]! - r[a]!).slice(0, 2);
        return r.map((v, j) => (top.includes(j) ? relu(v) : 0));
      });
      assertMatNear(sae.encode(x), acts, 1e-5, `acts (rescale ${rescale})`);
      const scaled = acts.map((r) => r.map((v, j) => (rescale ? v / norms[j]! : v)));
      assertMatNear(sae.forward(x), addRow(matmul(scaled, rows(p.W_dec!)), vec(p.b_dec!)), 1e-5, 'forward');
    }
  });

  it('batchtopk: the k * batch largest ReLU-ed pre-activations across the whole batch', () => {
    const sae = randomSae({ architecture: 'batchtopk', d_in: D_IN, d_sae: D_SAE, k: 2, rescale_acts_by_decoder_norm: false }, 3);
    const p = sae.params;
    const pre = addRow(matmul(subRow(rows(x), vec(p.b_dec!)), rows(p.W_enc!)), vec(p.b_enc!)).map((r) => r.map(relu));
    const flat = pre.flat();
    const cut = [...flat].sort((a, b) => b - a)[2 * 5 - 1]!;
    const acts = pre.map((r) => r.map((v) => (v >= cut ? v : 0)));
    assertMatNear(sae.encode(x), acts, 1e-5, 'acts');
    assert.equal(vec(sae.encode(x)).filter((v) => v > 0).length, 10);
  });

  it('jumprelu: ReLU(pre) where pre > threshold, else 0', () => {
    const sae = randomSae({ architecture: 'jumprelu', d_in: D_IN, d_sae: D_SAE }, 4);
    const p = sae.params;
    const th = vec(p.threshold!);
    const pre = addRow(matmul(subRow(rows(x), vec(p.b_dec!)), rows(p.W_enc!)), vec(p.b_enc!));
    const acts = pre.map((r) => r.map((v, j) => (v > th[j]! ? relu(v) : 0)));
    assertMatNear(sae.encode(x), acts, 1e-5, 'acts');
    assert.ok(acts.flat().some((v) => v === 0) && acts.flat().some((v) => v > 0), 'the fixture gates some features');
  });

  it('gated: (x W_enc + b_gate > 0) * ReLU(x (W_enc * exp(r_mag)) + b_mag)', () => {
    const sae = randomSae({ architecture: 'gated', d_in: D_IN, d_sae: D_SAE }, 5);
    const p = sae.params;
    const xin = subRow(rows(x), vec(p.b_dec!));
    const gate = addRow(matmul(xin, rows(p.W_enc!)), vec(p.b_gate!));
    const rmag = vec(p.r_mag!);
    const wMag = rows(p.W_enc!).map((r) => r.map((v, j) => v * Math.exp(rmag[j]!)));
    const mag = addRow(matmul(xin, wMag), vec(p.b_mag!));
    const acts = gate.map((r, i) => r.map((g, j) => (g > 0 ? relu(mag[i]![j]!) : 0)));
    assertMatNear(sae.encode(x), acts, 1e-5, 'acts');
  });

  it('skip transcoder: reads d_in, writes d_out, adds x W_skip^T, never subtracts b_dec', () => {
    const sae = randomSae({ architecture: 'skip_transcoder', d_in: D_IN, d_sae: D_SAE, d_out: 3 }, 6);
    const p = sae.params;
    const acts = addRow(matmul(rows(x), rows(p.W_enc!)), vec(p.b_enc!)).map((r) => r.map(relu));
    const skip = matmul(rows(x), rows(p.W_skip!.transpose()));
    const expected = addRow(matmul(acts, rows(p.W_dec!)), vec(p.b_dec!)).map((r, i) => r.map((v, j) => v + skip[i]![j]!));
    assertMatNear(sae.forward(x), expected, 1e-5, 'forward');
    assert.deepEqual(sae.decode(sae.encode(x)).shape, [5, 3]);
  });

  it('hook_z SAEs take [..., n_heads, d_head] and give it back', () => {
    const sae = randomSae({ architecture: 'standard', d_in: 6, d_sae: 8, hook_name: 'blocks.0.attn.hook_z' }, 7);
    const z = randn([2, 3, 2, 3], { seed: 1 });
    assert.equal(sae.cfg.reshape_activations, 'hook_z');
    const out = sae.forward(z);
    assert.deepEqual(out.shape, [2, 3, 2, 3]);
    assert.deepEqual(vec(out), vec(sae.forward(z.reshape([2, 3, 6]))));
  });
});

describe('SAE training losses', () => {
  it('standard: MSE (summed over d_in) + l1Coefficient * sum(acts * ||W_dec row||)', () => {
    const sae = randomSae({ architecture: 'standard', d_in: D_IN, d_sae: D_SAE }, 11);
    const p = sae.params;
    const { loss, metrics, featureActs } = sae.trainingLoss(p, x, { l1Coefficient: 0.3 });
    const acts = rows(featureActs);
    const out = addRow(matmul(acts, rows(p.W_dec!)), vec(p.b_dec!));
    const norms = rowNorms(rows(p.W_dec!));
    const l1 = (0.3 * acts.reduce((s, r) => s + r.reduce((t, v, j) => t + v * norms[j]!, 0), 0)) / 5;
    assertNear(metrics.mse_loss!.item(), mse(out, rows(x)), 1e-5, 'mse');
    assertNear(metrics.l1_loss!.item(), l1, 1e-5, 'l1');
    assertNear(loss.item(), mse(out, rows(x)) + l1, 1e-5, 'loss');
    assertNear(metrics.l0!.item(), acts.flat().filter((v) => v > 0).length / 5, 1e-6, 'l0');
  });

  it('jumprelu: MSE + l0Coefficient * mean number of active features; tanh mode', () => {
    const sae = randomSae({ architecture: 'jumprelu', d_in: D_IN, d_sae: D_SAE }, 12);
    const { loss, metrics, featureActs } = sae.trainingLoss(sae.params, x, { l0Coefficient: 0.5 });
    assertMatNear(featureActs, rows(sae.encode(x)), 1e-6, 'training acts = inference acts');
    const active = vec(featureActs).filter((v) => v > 0).length / 5;
    assertNear(metrics.l0_loss!.item(), 0.5 * active, 1e-6, 'l0 loss');
    assertNear(loss.item(), metrics.mse_loss!.item() + 0.5 * active, 1e-5, 'loss');
    const tanh = sae.trainingLoss(sae.params, x, { l0Coefficient: 0.5, sparsityLossMode: 'tanh', tanhScale: 2 });
    const norms = rowNorms(rows(sae.params.W_dec!));
    const expected = (0.5 * rows(featureActs).reduce((s, r) => s + r.reduce((t, v, j) => t + Math.tanh(2 * v * norms[j]!), 0), 0)) / 5;
    assertNear(tanh.metrics.l0_loss!.item(), expected, 1e-5, 'tanh l0 loss');
  });

  it('jumprelu: threshold gradients follow the rectangle-kernel straight-through estimator', () => {
    const pre = tensor([
      [0.1, 0.52, 0.9],
      [0.48, 0.3, 0.05],
    ]);
    const th = tensor([0.12, 0.5, 0.2]);
    const w = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const eps = 0.05;
    const [value, [gx, gt]] = valueAndGrad((a: Tensor, t: Tensor) => jumpReluSte(a, t, eps).mul(w).sum(), { argnums: [0, 1] })(pre, th);
    const P = rows(pre);
    const T = vec(th);
    const W = rows(w);
    const rect = (u: number): number => (u > -0.5 && u < 0.5 ? 1 : 0);
    assertNear(
      value.item(),
      P.reduce((s, r, i) => s + r.reduce((t, v, j) => t + (v > T[j]! ? v : 0) * W[i]![j]!, 0), 0),
      1e-6,
      'value',
    );
    assertMatNear(
      gx,
      P.map((r, i) => r.map((v, j) => (v > T[j]! ? W[i]![j]! : 0))),
      1e-6,
      'd/dx',
    );
    const expectT = T.map((t, j) => P.reduce((s, r, i) => s + -(t / eps) * rect((r[j]! - t) / eps) * W[i]![j]!, 0));
    vec(gt).forEach((g, j) => assertNear(g, expectT[j]!, 1e-5, `d/dthreshold[${j}]`));
    assert.ok(
      expectT.some((g) => g !== 0),
      'the fixture puts some pre-activations inside the kernel',
    );

    const [, [sx, st]] = valueAndGrad((a: Tensor, t: Tensor) => stepSte(a, t, eps).mul(w).sum(), { argnums: [0, 1] })(pre, th);
    assert.ok(
      vec(sx).every((g) => g === 0),
      'the step passes no gradient to x',
    );
    const expectS = T.map((t, j) => P.reduce((s, r, i) => s + -(1 / eps) * rect((r[j]! - t) / eps) * W[i]![j]!, 0));
    vec(st).forEach((g, j) => assertNear(g, expectS[j]!, 1e-5, `step d/dthreshold[${j}]`));

    const [, g0] = valueAndGrad((a: Tensor) => stopGradient(a).mul(a).sum())(th);
    assert.deepEqual(vec(g0), vec(th), 'stopGradient(a) * a differentiates to a');
  });

  it('gated: MSE + decoder-weighted L1 on ReLU(pi_gate) + the gate-only reconstruction (decoder detached)', () => {
    const sae = randomSae({ architecture: 'gated', d_in: D_IN, d_sae: D_SAE }, 13);
    const p = sae.params;
    const { metrics } = sae.trainingLoss(p, x, { l1Coefficient: 0.2 });
    const gateActs = addRow(matmul(subRow(rows(x), vec(p.b_dec!)), rows(p.W_enc!)), vec(p.b_gate!)).map((r) => r.map(relu));
    const norms = rowNorms(rows(p.W_dec!));
    assertNear(
      metrics.l1_loss!.item(),
      (0.2 * gateActs.reduce((s, r) => s + r.reduce((t, v, j) => t + v * norms[j]!, 0), 0)) / 5,
      1e-5,
      'l1',
    );
    assertNear(
      metrics.auxiliary_reconstruction_loss!.item(),
      mse(addRow(matmul(gateActs, rows(p.W_dec!)), vec(p.b_dec!)), rows(x)),
      1e-5,
      'aux',
    );
    // The auxiliary loss reaches W_dec only when not detached.
    const gradOf = (detach: boolean): number[] =>
      vec(
        (
          valueAndGrad((q: SaeParams) => sae.trainingLoss(q, x, { detachAuxDecoder: detach }).metrics.auxiliary_reconstruction_loss!)(
            p,
          )[1] as SaeParams
        ).W_dec!,
      );
    assert.ok(gradOf(true).every((g) => g === 0));
    assert.ok(gradOf(false).some((g) => g !== 0));
  });

  it('topk: the AuxK loss makes the top dead latents reconstruct the residual, scaled by min(dead / k_aux, 1)', () => {
    const sae = randomSae({ architecture: 'topk', d_in: D_IN, d_sae: D_SAE, k: 2, rescale_acts_by_decoder_norm: false }, 14);
    const p = sae.params;
    const none = sae.trainingLoss(p, x);
    assert.equal(none.metrics.auxiliary_reconstruction_loss!.item(), 0);
    const dead = [1, 0, 0, 1, 0, 0];
    const r = sae.trainingLoss(p, x, { deadMask: tensor(dead), auxLossCoefficient: 2 });
    const pre = addRow(matmul(subRow(rows(x), vec(p.b_dec!)), rows(p.W_enc!)), vec(p.b_enc!));
    const out = rows(sae.forward(x));
    const residual = rows(x).map((rw, i) => rw.map((v, j) => v - out[i]![j]!));
    // k_aux = d_in / 2 = 2 = the number of dead latents: both dead latents, at their pre-activations.
    const auxActs = pre.map((rw) => rw.map((v, j) => (dead[j] ? v : 0)));
    const recons = matmul(auxActs, rows(p.W_dec!));
    assertNear(r.metrics.auxiliary_reconstruction_loss!.item(), 2 * 1 * mse(recons, residual), 1e-5, 'aux');
    assertNear(r.loss.item(), r.metrics.mse_loss!.item() + r.metrics.auxiliary_reconstruction_loss!.item(), 1e-6, 'loss');
    const one = sae.trainingLoss(p, x, { deadMask: tensor([0, 0, 1, 0, 0, 0]) });
    const aux1 = pre.map((rw) => rw.map((v, j) => (j === 2 ? v : 0)));
    assertNear(
      one.metrics.auxiliary_reconstruction_loss!.item(),
      0.5 * mse(matmul(aux1, rows(p.W_dec!)), residual),
      1e-5,
      'aux, one dead latent',
    );
  });

  it('batchtopk: reports the smallest positive activation; the threshold estimate and the JumpReLU conversion', () => {
    const sae = randomSae({ architecture: 'batchtopk', d_in: D_IN, d_sae: D_SAE, k: 2 }, 15);
    const { metrics, featureActs } = sae.trainingLoss(sae.params, x);
    const minPos = Math.min(...vec(featureActs).filter((v) => v > 0));
    assertNear(metrics.min_positive_act!.item(), minPos, 1e-6, 'min positive');
    assert.equal(updateTopkThreshold(0, minPos, 0.5), 0.5 * minPos);
    assert.equal(updateTopkThreshold(1, Infinity), 1);
    assert.throws(() => toInferenceSae(sae), /topkThreshold/);
    const inf = toInferenceSae(sae, { topkThreshold: minPos * 0.999 });
    assert.equal(inf.cfg.architecture, 'jumprelu');
    assert.equal(inf.cfg.k, undefined);
    rowNorms(rows(inf.params.W_dec!)).forEach((n) => assertNear(n, 1, 1e-5, 'folded row norm'));
    // Just below the batch's smallest kept activation, the JumpReLU keeps at least what the batch kept.
    const kept = vec(featureActs).map((v) => v > 0);
    vec(inf.encode(x)).forEach((v, i) => assert.ok(!kept[i] || v > 0, `feature ${i} kept`));
  });

  it('matryoshka: each inner prefix of the dictionary reconstructs, and its MSE is added', () => {
    assert.deepEqual(matryoshkaWidthsOf([2, 4], 6), [2, 4, 6]);
    assert.throws(() => matryoshkaWidthsOf([4, 2], 6), /strictly increasing/);
    const sae = randomSae({ architecture: 'matryoshka_batchtopk', d_in: D_IN, d_sae: D_SAE, k: 3, matryoshka_widths: [2, 4, 6] }, 16);
    const p = sae.params;
    const r = sae.trainingLoss(p, x, { rescaleActsByDecoderNorm: false });
    const acts = rows(r.featureActs);
    const W = rows(p.W_dec!);
    const prefix = (w: number): Mat =>
      addRow(
        matmul(
          acts.map((rw) => rw.slice(0, w)),
          W.slice(0, w),
        ),
        vec(p.b_dec!),
      );
    assertNear(r.metrics.inner_mse_loss_2!.item(), mse(prefix(2), rows(x)), 1e-5, 'width 2');
    assertNear(r.metrics.inner_mse_loss_4!.item(), mse(prefix(4), rows(x)), 1e-5, 'width 4');
    assertNear(r.metrics.mse_loss!.item(), mse(prefix(6), rows(x)), 1e-5, 'full');
    assert.equal(r.metrics.inner_mse_loss_6, undefined);
    const sum = r.metrics.mse_loss!.item() + r.metrics.inner_mse_loss_2!.item() + r.metrics.inner_mse_loss_4!.item();
    assertNear(r.loss.item(), sum, 1e-5, 'loss');
    const withAux = sae.trainingLoss(p, x, { deadMask: tensor([0, 1, 0, 0, 1, 1]), useMatryoshkaAuxLoss: true });
    assert.ok(withAux.metrics.auxiliary_reconstruction_loss!.item() > 0);
  });

  it('transcoders reconstruct the target, which they require', () => {
    const sae = randomSae({ architecture: 'transcoder', d_in: D_IN, d_sae: D_SAE, d_out: 3 }, 17);
    assert.throws(() => sae.trainingLoss(sae.params, x), /needs options\.target/);
    const y = randn([5, 3], { seed: 2 });
    const r = sae.trainingLoss(sae.params, x, { target: y, l1Coefficient: 0 });
    assertNear(r.metrics.mse_loss!.item(), mse(rows(sae.forward(x)), rows(y)), 1e-5, 'mse against target');
  });

  it('trains with the train loop: the loss falls', async () => {
    const rng = new PRNG(0);
    const dict = randn([8, D_IN], { rng });
    // Sparse combinations of 8 directions.
    const codes = Array.from({ length: 64 }, () => Array.from({ length: 8 }, () => (rng.uniform() < 0.2 ? rng.uniform() * 2 : 0)));
    const data = tensor(codes).matmul(dict);
    const sae = Sae.create({ architecture: 'jumprelu', d_in: D_IN, d_sae: 16 }, { seed: 1 });
    const loss = (p: SaeParams, batch: { x: Tensor }) => sae.trainingLoss(p, batch.x, { l0Coefficient: 1e-3 });
    const first = loss(sae.params, { x: data }).loss.item();
    const result = await train({
      params: sae.params,
      loss,
      optimizer: adam(),
      data: fixedData({ x: data }),
      steps: 60,
      lr: 0.01,
      progress: false,
    });
    assert.ok(result.lastLoss < first * 0.7, `loss ${first} -> ${result.lastLoss}`);
    assert.ok('l0_loss' in result.history[0]! && 'mse_loss' in result.history[0]!, 'metrics are logged');
  });
});

describe('SAE normalisation and folding', () => {
  it('expected_average_only_in: the factor scales inputs to mean norm sqrt(d_in); folding it gives the same outputs', () => {
    const acts = randn([32, D_IN], { seed: 3 }).mul(7);
    const s = estimateNormScalingFactor(acts);
    const meanNorm = rows(acts).reduce((t, r) => t + Math.sqrt(r.reduce((a, v) => a + (v * s) ** 2, 0)), 0) / 32;
    assertNear(meanNorm, Math.sqrt(D_IN), 1e-5, 'mean norm');
    const sae = randomSae(
      { architecture: 'jumprelu', d_in: D_IN, d_sae: D_SAE, normalize_activations: 'expected_average_only_in', norm_scaling_factor: s },
      21,
    );
    const folded = foldActivationNormScalingFactor(sae);
    assert.equal(folded.cfg.normalize_activations, 'none');
    assertMatNear(folded.forward(acts), rows(sae.forward(acts)), 1e-4, 'folded forward');
    // The SAE sees the scaled input.
    assertMatNear(sae.encode(acts), rows(sae.withConfig({ normalize_activations: 'none' }).encode(acts.mul(s))), 1e-5, 'scaled encode');
  });

  it('constant_norm_rescale and layer_norm undo themselves on the output', () => {
    const sae = randomSae({ architecture: 'standard', d_in: D_IN, d_sae: D_SAE, normalize_activations: 'constant_norm_rescale' }, 22);
    const big = x.mul(10);
    // Rescaling is scale-invariant up to the output's own scale.
    assertMatNear(sae.forward(big).div(10), rows(sae.forward(x)), 1e-4, 'scale equivariance');
    const ln = sae.withConfig({ normalize_activations: 'layer_norm' });
    assert.deepEqual(ln.forward(x).shape, [5, D_IN]);
    assert.throws(() => ln.decode(ln.encode(x)), /cannot undo 'layer_norm'/);
  });

  it('foldDecoderNorm leaves outputs unchanged and makes decoder rows unit-norm', () => {
    for (const arch of ['standard', 'jumprelu', 'gated'] as const) {
      const sae = randomSae({ architecture: arch, d_in: D_IN, d_sae: D_SAE }, 23);
      const f = foldDecoderNorm(sae);
      rowNorms(rows(f.params.W_dec!)).forEach((n) => assertNear(n, 1, 1e-5, `${arch} row norm`));
      assertMatNear(f.forward(x), rows(sae.forward(x)), 1e-4, `${arch} forward`);
    }
    assert.throws(
      () => foldDecoderNorm(randomSae({ architecture: 'topk', d_in: D_IN, d_sae: D_SAE, k: 2, rescale_acts_by_decoder_norm: false }, 1)),
      /rescale/,
    );
  });

  it('geometric median and log feature density', () => {
    const pts = tensor([
      [0, 0],
      [1, 0],
      [0, 1],
      [100, 100],
    ]);
    const m = vec(geometricMedian(pts));
    assert.ok(m[0]! < 1 && m[1]! < 1, `robust to the outlier: ${m}`);
    const density = vec(
      logFeatureDensity(
        tensor([
          [1, 0],
          [2, 0],
          [0, 0],
          [3, 0],
        ]),
      ),
    );
    assertNear(density[0]!, Math.log10(0.75), 1e-5, 'density');
    assertNear(density[1]!, -10, 1e-3, 'never fires');
  });
});
