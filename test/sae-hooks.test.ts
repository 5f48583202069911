/**
 * SAE hook points and splicing into a model: runSae caches and hooks SAELens's hook points; the
 * error term leaves the output exactly unchanged without hooks and changes it by exactly what a
 * hooked feature's decoder row predicts; attachSae runs a model through an SAE (or a transcoder)
 * with the model's logits unchanged under the error term; feature attributions via gradientsAt.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRNG, Tensor, randn, scalar, valueAndGrad, type HookFn } from '../src/index.js';
import { Sae, SAE_HOOK_NAMES, attachSae, runSae, scaleFeature, setFeature, zeroFeature, type SaeParams } from '../src/sae/index.js';
import { tinyRandomModel } from './tiny-models.js';

const vec = (t: Tensor): number[] => Array.from(t.cast('float32').dataSync() as Float32Array);

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = vec(a);
  const y = vec(b);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}

/** An SAE with random parameters (biases included) at `hook_name`. */
function randomSae(architecture: string, hook: string, seed: number, extra: Record<string, unknown> = {}): Sae {
  const sae = Sae.create({ architecture, d_in: 16, d_sae: 24, hook_name: hook, ...extra }, { seed });
  const rng = new PRNG(seed + 50);
  const params: SaeParams = {};
  for (const [k, t] of Object.entries(sae.params)) {
    const r = randn([...t.shape], { rng });
    params[k] = k === 'threshold' ? r.mul(0.1).abs() : r.mul(0.4);
  }
  return sae.withParams(params);
}

describe('runSae: hook points, cache, error term', () => {
  const sae = randomSae('standard', 'blocks.0.hook_resid_pre', 1);
  const x = randn([2, 3, 16], { seed: 4 });

  it('caches every hook point with the values encode/decode give', () => {
    const { output, cache } = runSae(sae, x, { cache: true });
    assert.deepEqual(cache.keys().sort(), SAE_HOOK_NAMES.filter((n) => n !== 'hook_sae_error').sort());
    assert.ok(maxAbsDiff(cache.get('hook_sae_acts_post'), sae.encode(x)) < 1e-6);
    assert.ok(maxAbsDiff(cache.get('hook_sae_recons'), sae.decode(sae.encode(x))) < 1e-5);
    assert.deepEqual(vec(output), vec(cache.get('hook_sae_output')));
    assert.deepEqual(vec(cache.get('hook_sae_input')), vec(x));
    assert.deepEqual(cache.get('hook_sae_acts_pre').shape, [2, 3, 24]);
  });

  it('with the error term and no hooks the output is exactly the input', () => {
    const { output, cache } = runSae(sae, x, { useErrorTerm: true, cache: ['hook_sae_error', 'hook_sae_recons'] });
    assert.deepEqual(vec(output), vec(x));
    assert.ok(maxAbsDiff(cache.get('hook_sae_error'), x.sub(cache.get('hook_sae_recons'))) < 1e-6);
  });

  it("zeroing a feature moves the output by minus that feature's activation times its decoder row", () => {
    const acts = sae.encode(x);
    const f = vec(acts.index([null, null, 0])).findIndex((v) => v > 0) >= 0 ? 0 : 1;
    const a = acts.slice([null, null, { start: f, end: f + 1 }]); // [2, 3, 1]
    const row = sae.params.W_dec!.index([f]); // [16]
    for (const useErrorTerm of [true, false]) {
      const base = runSae(sae, x, { useErrorTerm }).output;
      const ablated = runSae(sae, x, { useErrorTerm, hooks: [['hook_sae_acts_post', zeroFeature(f)]] }).output;
      assert.ok(maxAbsDiff(ablated.sub(base), a.mul(row).neg()) < 1e-5, `useErrorTerm ${useErrorTerm}`);
    }
    assert.ok(
      vec(a).some((v) => v > 0),
      'the feature fires somewhere',
    );
    // Doubling it moves the output the other way by the same amount.
    const doubled = runSae(sae, x, { useErrorTerm: true, hooks: [[`${sae.cfg.hook_name}.hook_sae_acts_post`, scaleFeature(f, 2)]] }).output;
    assert.ok(maxAbsDiff(doubled.sub(x), a.mul(row)) < 1e-5);
  });

  it('hooks see SAELens names; unknown names are errors listing the hook points', () => {
    const seen: string[] = [];
    runSae(sae, x, {
      hooks: SAE_HOOK_NAMES.map((n) => [n, (_t, ctx) => void seen.push(ctx.name)] as const),
      useErrorTerm: true,
    });
    assert.deepEqual(seen, [...SAE_HOOK_NAMES]);
    assert.throws(
      () => runSae(sae, x, { hooks: [['hook_sae_acts', zeroFeature(0)]] }),
      /unknown SAE hook point 'hook_sae_acts' \(the SAE's hook points: hook_sae_input, /,
    );
    assert.throws(() => runSae(sae, randn([2, 5]), {}), /expected input \[\.\.\., 16\], got \[2,5\]/);
  });

  it('a hook on the error replaces it', () => {
    const out = runSae(sae, x, { useErrorTerm: true, hooks: [['hook_sae_error', (e) => e.mul(0)]] }).output;
    assert.ok(maxAbsDiff(out, sae.forward(x)) < 1e-6);
  });
});

describe('attachSae: SAEs and transcoders inside the model', () => {
  const model = tinyRandomModel(3);
  const tokens = [[3, 1, 4, 1, 5, 9]];
  const clean = model.forward(tokens);

  it('with the error term the logits are unchanged; without it they change', () => {
    for (const arch of ['standard', 'jumprelu', 'topk', 'gated']) {
      const sae = randomSae(arch, 'blocks.1.hook_resid_pre', 2, arch === 'topk' ? { k: 4 } : {});
      const logits = model.runWithHooks(tokens, { hooks: attachSae(model, sae, { useErrorTerm: true }) });
      assert.ok(maxAbsDiff(logits, clean) <= 1e-5, `${arch}: ${maxAbsDiff(logits, clean)}`);
      const spliced = model.runWithHooks(tokens, { hooks: attachSae(model, sae) });
      assert.ok(maxAbsDiff(spliced, clean) > 1e-3, `${arch}: the reconstruction is not the activation`);
    }
  });

  it('the error term is exact: logits are bit-identical to the plain forward pass', () => {
    const sae = randomSae('standard', 'blocks.0.hook_resid_post', 5);
    const logits = model.runWithHooks(tokens, { hooks: attachSae(model, sae, { useErrorTerm: true }) });
    assert.deepEqual(vec(logits), vec(clean));
  });

  it('zeroing a feature changes the logits as subtracting its decoder row times its activation does', () => {
    const hook = 'blocks.1.hook_resid_pre';
    const sae = randomSae('standard', hook, 6);
    const resid = model.runWithCache(tokens, { names: [hook] }).cache.get(hook); // [1, 6, 16]
    const acts = sae.encode(resid);
    const f = [...Array(24).keys()].find((i) => vec(acts.index([null, null, i])).some((v) => v > 0))!;
    const delta = acts.slice([null, null, { start: f, end: f + 1 }]).mul(sae.params.W_dec!.index([f])); // [1, 6, 16]
    const viaSae = model.runWithHooks(tokens, {
      hooks: attachSae(model, sae, { useErrorTerm: true, featureHooks: [['hook_sae_acts_post', zeroFeature(f)]] }),
    });
    const byHand = model.runWithHooks(tokens, { hooks: [[hook, (x) => x.sub(delta)]] });
    assert.ok(maxAbsDiff(viaSae, byHand) < 1e-5, `${maxAbsDiff(viaSae, byHand)}`);
    assert.ok(maxAbsDiff(viaSae, clean) > 1e-4, 'the ablation matters');
    // Steering: clamping the feature on everywhere.
    const on = model.runWithHooks(tokens, {
      hooks: attachSae(model, sae, { useErrorTerm: true, featureHooks: [['hook_sae_acts_post', setFeature(f, 3)]] }),
    });
    const onByHand = model.runWithHooks(tokens, {
      hooks: [[hook, (x) => x.add(sae.params.W_dec!.index([f]).mul(3).sub(delta))]],
    });
    assert.ok(maxAbsDiff(on, onByHand) < 1e-5);
  });

  it('a transcoder reads ln2.hook_normalized and replaces hook_mlp_out', () => {
    const tc = randomSae('skip_transcoder', 'blocks.0.ln2.hook_normalized', 7, { hook_name_out: 'blocks.0.hook_mlp_out', d_out: 16 });
    const withError = model.runWithHooks(tokens, { hooks: attachSae(model, tc, { useErrorTerm: true }) });
    assert.ok(maxAbsDiff(withError, clean) <= 1e-5);
    const ln2 = model.runWithCache(tokens, { names: ['blocks.0.ln2.hook_normalized'] }).cache.get('blocks.0.ln2.hook_normalized');
    const out = tc.forward(ln2);
    const spliced = model.runWithHooks(tokens, { hooks: attachSae(model, tc) });
    const byHand = model.runWithHooks(tokens, { hooks: [['blocks.0.hook_mlp_out', () => out]] });
    assert.ok(maxAbsDiff(spliced, byHand) < 1e-5);
    assert.throws(() => attachSae(model, tc.withConfig({ hook_name_out: 'blocks.0.hook_resid_pre' })), /must come after/);
  });

  it('names a hook point the model does not have, with suggestions', () => {
    const sae = randomSae('standard', 'blocks.1.hook_resid_pree', 8);
    assert.throws(
      () => attachSae(model, sae),
      /hook_name 'blocks\.1\.hook_resid_pree' is not a hook point of this model \(did you mean 'blocks\.1\.hook_resid_pre'/,
    );
  });

  it('per-head and hook_z SAEs splice into attention outputs', () => {
    const z = randomSae('standard', 'blocks.0.attn.hook_z', 9);
    assert.ok(maxAbsDiff(model.runWithHooks(tokens, { hooks: attachSae(model, z, { useErrorTerm: true }) }), clean) <= 1e-5);
    const head = Sae.create(
      { architecture: 'standard', d_in: 4, d_sae: 8, hook_name: 'blocks.0.attn.hook_z', hook_head_index: 2, reshape_activations: 'none' },
      { seed: 1 },
    );
    const zAct = model.runWithCache(tokens, { names: ['blocks.0.attn.hook_z'] }).cache.get('blocks.0.attn.hook_z');
    const replaced = zAct.set([null, null, 2], head.forward(zAct.index([null, null, 2])).unsqueeze(2));
    const viaSae = model.runWithHooks(tokens, { hooks: attachSae(model, head) });
    const byHand = model.runWithHooks(tokens, { hooks: [['blocks.0.attn.hook_z', () => replaced]] });
    assert.ok(maxAbsDiff(viaSae, byHand) < 1e-5);
  });

  it('feature attributions: marked SAE activations come back with their gradients from valueAndGrad', () => {
    const hook = 'blocks.1.hook_resid_pre';
    const sae = randomSae('standard', hook, 10);
    const metric = (l: Tensor) => l.index([0, -1, 7]).sub(l.index([0, -1, 3]));
    const name = `${hook}.hook_sae_acts_post`;
    const hooks: [string, HookFn][] = [
      ...attachSae(model, sae, { useErrorTerm: true, markGrad: ['hook_sae_acts_post'] }),
      [hook, (x, ctx) => ctx.markGrad(x)], // the SAE's output
    ];
    const [value, , targets] = valueAndGrad(() => metric(model.runWithHooks(tokens, { hooks })))(scalar(0));
    assert.ok(Math.abs(value.item() - metric(clean).item()) < 1e-5);
    const acts = sae.encode(model.runWithCache(tokens, { names: [hook] }).cache.get(hook));
    assert.ok(maxAbsDiff(targets[name]!.value, acts) < 1e-5);
    // d metric / d acts = (d metric / d SAE output) W_dec^T.
    const expected = targets[hook]!.grad.matmul(sae.params.W_dec!.transpose());
    assert.ok(maxAbsDiff(targets[name]!.grad, expected) < 1e-5);
    assert.ok(vec(expected).some((v) => Math.abs(v) > 1e-3));
  });
});
