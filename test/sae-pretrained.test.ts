/**
 * Pretrained SAEs by release name, against the local fake Hub (test/hub-server.ts) holding tiny
 * synthetic files in each built-in release's real layout: SAELens's (gpt2-small-res-jb), Gemma
 * Scope's params.npz (gemma-scope-2b-pt-res-canonical) and Llama Scope's hyperparams.json +
 * checkpoints/final.safetensors (llama_scope_lxr_8x). Values are checked against the arrays the
 * files were made from.
 */
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, type Tensor } from '../src/tensor/index.js';
import { saveSafetensors } from '../src/io/safetensors.js';
import { Sae, loadSae, saveSae } from '../src/sae/index.js';
import { findPretrainedSae, loadReleases, parseReleases, resolveSae, SAE_RELEASES_ENV } from '../src/sae/pretrained.js';
import { FakeHub, fakeCommit, type HubFile } from './hub-server.js';
import { npyF32, npzStored } from './npz-bytes.js';

const vec = (t: Tensor): number[] => Array.from(t.dataSync() as ArrayLike<number>, Number);
const close = (a: number[], b: number[], tol = 1e-5): void => {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol * (1 + Math.abs(b[i]!)), `[${i}] ${x} vs ${b[i]}`));
};

const seq = (n: number, scale: number, shift = 0): number[] => Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + shift) * scale);

const tmp = mkdtempSync(join(tmpdir(), 'glassbox-pretrained-'));
const hub = new FakeHub();
const base = { cacheDir: join(tmp, 'cache'), token: null, progressBar: false } as const;
let endpoint = '';

// gpt2-small-res-jb: SAELens layout, with sparsity
const D_IN = 4;
const D_SAE = 6;
const gpt2Sae = Sae.create(
  { architecture: 'standard', d_in: D_IN, d_sae: D_SAE, hook_name: 'blocks.8.hook_resid_pre' },
  { seed: 3 },
).withSparsity(tensor(seq(D_SAE, 2, 1), [D_SAE]));
// Gemma Scope: params.npz
const gemma = {
  W_enc: seq(D_IN * D_SAE, 1, 2),
  W_dec: seq(D_SAE * D_IN, 1, 3),
  b_enc: seq(D_SAE, 0.1, 4),
  b_dec: seq(D_IN, 0.1, 5),
  threshold: seq(D_SAE, 0.05, 6).map(Math.abs),
};
// Llama Scope: hyperparams.json + checkpoints/final.safetensors (torch Linear layout: [out, in])
const llama = {
  encW: seq(D_SAE * D_IN, 1, 7),
  encB: seq(D_SAE, 0.1, 8),
  decW: seq(D_IN * D_SAE, 1, 9),
  decB: seq(D_IN, 0.1, 10),
  threshold: 0.2,
  normIn: 3,
};

const lfs = (data: Uint8Array): HubFile => ({ data, lfs: true });
const plain = (text: string): HubFile => ({ data: new TextEncoder().encode(text) });

before(async () => {
  await hub.start();
  endpoint = hub.url;
  const dir = join(tmp, 'gpt2-src');
  saveSae(gpt2Sae, dir);
  const gpt2Commit = fakeCommit('gpt2-res-jb');
  hub.addRepo('jbloom/GPT2-Small-SAEs-Reformatted', {
    refs: { main: gpt2Commit },
    commits: {
      [gpt2Commit]: {
        'blocks.8.hook_resid_pre/cfg.json': plain(readFileSync(join(dir, 'cfg.json'), 'utf8')),
        'blocks.8.hook_resid_pre/sae_weights.safetensors': lfs(readFileSync(join(dir, 'sae_weights.safetensors'))),
        'blocks.8.hook_resid_pre/sparsity.safetensors': lfs(readFileSync(join(dir, 'sparsity.safetensors'))),
      },
    },
  });
  const gemmaCommit = fakeCommit('gemma-scope');
  hub.addRepo('google/gemma-scope-2b-pt-res', {
    refs: { main: gemmaCommit },
    commits: {
      [gemmaCommit]: {
        'layer_3/width_16k/average_l0_59/params.npz': lfs(
          npzStored({
            W_enc: npyF32([D_IN, D_SAE], gemma.W_enc),
            W_dec: npyF32([D_SAE, D_IN], gemma.W_dec),
            b_enc: npyF32([D_SAE], gemma.b_enc),
            b_dec: npyF32([D_IN], gemma.b_dec),
            threshold: npyF32([D_SAE], gemma.threshold),
          }),
        ),
      },
    },
  });
  const weights = join(tmp, 'final.safetensors');
  saveSafetensors(weights, {
    'encoder.weight': tensor(llama.encW, [D_SAE, D_IN]),
    'encoder.bias': tensor(llama.encB, [D_SAE]),
    'decoder.weight': tensor(llama.decW, [D_IN, D_SAE]),
    'decoder.bias': tensor(llama.decB, [D_IN]),
  });
  const llamaCommit = fakeCommit('llama-scope');
  hub.addRepo('fnlp/Llama3_1-8B-Base-LXR-8x', {
    refs: { main: llamaCommit },
    commits: {
      [llamaCommit]: {
        'Llama3_1-8B-Base-L5R-8x/hyperparams.json': plain(
          JSON.stringify({
            d_model: D_IN,
            d_sae: D_SAE,
            hook_point_in: 'blocks.5.hook_resid_post',
            hook_point_out: 'blocks.5.hook_resid_post',
            jump_relu_threshold: llama.threshold,
            dataset_average_activation_norm: { in: llama.normIn, out: llama.normIn },
          }),
        ),
        'Llama3_1-8B-Base-L5R-8x/checkpoints/final.safetensors': lfs(readFileSync(weights)),
      },
    },
  });
});

after(async () => {
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

const x = tensor(seq(2 * D_IN, 1.5, 11), [2, D_IN]);

describe('built-in releases', () => {
  it('parse, and name real repositories', () => {
    const all = loadReleases();
    assert.equal(all.get('gpt2-small-res-jb')?.repo_id, 'jbloom/GPT2-Small-SAEs-Reformatted');
    assert.equal(all.get('gemma-scope-2b-pt-res-canonical')?.repo_id, 'google/gemma-scope-2b-pt-res');
    assert.equal(all.get('gemma-scope-2b-pt-res-canonical')?.conversion_func, 'gemma_2');
    assert.equal(all.get('llama_scope_lxr_8x')?.repo_id, 'fnlp/Llama3_1-8B-Base-LXR-8x');
    const canon = findPretrainedSae('gemma-scope-2b-pt-res-canonical', 'layer_12/width_16k/canonical');
    assert.equal(canon.entry.path, 'layer_12/width_16k/average_l0_82');
    assert.equal(canon.entry.neuronpedia, 'gemma-2-2b/12-gemmascope-res-16k');
  });

  it('gpt2-small-res-jb (SAELens layout, with sparsity) loads with its parameters', async () => {
    const sae = await loadSae('gpt2-small-res-jb', 'blocks.8.hook_resid_pre', { ...base, endpoint });
    assert.equal(sae.cfg.hook_name, 'blocks.8.hook_resid_pre');
    assert.equal(sae.cfg.model_name, gpt2Sae.cfg.model_name ?? 'gpt2-small');
    for (const k of Object.keys(gpt2Sae.params)) close(vec(sae.params[k]!), vec(gpt2Sae.params[k]!));
    close(vec(sae.sparsity!), vec(gpt2Sae.sparsity!));
    close(vec(sae.encode(x)), vec(gpt2Sae.encode(x)));
  });

  it('gemma-scope-2b-pt-res-canonical (params.npz) loads as a JumpReLU SAE at the residual stream', async () => {
    const sae = await loadSae('gemma-scope-2b-pt-res-canonical', 'layer_3/width_16k/canonical', { ...base, endpoint });
    assert.equal(sae.cfg.architecture, 'jumprelu');
    assert.equal(sae.cfg.hook_name, 'blocks.3.hook_resid_post');
    assert.equal(sae.cfg.model_name, 'gemma-2-2b');
    close(vec(sae.params.W_enc!), gemma.W_enc);
    // by hand: pre = x W_enc + b_enc; act = pre where pre > threshold
    const xs = vec(x);
    const want: number[] = [];
    for (let r = 0; r < 2; r++)
      for (let j = 0; j < D_SAE; j++) {
        let pre = gemma.b_enc[j]!;
        for (let i = 0; i < D_IN; i++) pre += xs[r * D_IN + i]! * gemma.W_enc[i * D_SAE + j]!;
        want.push(pre > gemma.threshold[j]! ? pre : 0);
      }
    close(vec(sae.encode(x)), want);
  });

  it('llama_scope_lxr_8x (hyperparams.json + final.safetensors) loads transposed, with its input scale and threshold', async () => {
    const sae = await loadSae('llama_scope_lxr_8x', 'l5r_8x', { ...base, endpoint });
    assert.equal(sae.cfg.hook_name, 'blocks.5.hook_resid_post');
    assert.equal(sae.cfg.normalize_activations, 'expected_average_only_in');
    const scale = Math.sqrt(D_IN) / llama.normIn;
    assert.ok(Math.abs(sae.cfg.norm_scaling_factor! - scale) < 1e-12);
    const xs = vec(x);
    const want: number[] = [];
    for (let r = 0; r < 2; r++)
      for (let j = 0; j < D_SAE; j++) {
        let pre = llama.encB[j]!;
        for (let i = 0; i < D_IN; i++) pre += scale * xs[r * D_IN + i]! * llama.encW[j * D_IN + i]!;
        want.push(pre > llama.threshold ? pre : 0);
      }
    close(vec(sae.encode(x)), want);
    close(
      vec(sae.params.W_dec!),
      Array.from({ length: D_SAE * D_IN }, (_, k) => llama.decW[(k % D_IN) * D_SAE + Math.floor(k / D_IN)]!),
    );
  });

  it('offline, a downloaded SAE loads from the cache with no request', async () => {
    const before = hub.requests.length;
    const sae = await loadSae('gpt2-small-res-jb', 'blocks.8.hook_resid_pre', { ...base, endpoint, offline: true });
    assert.equal(hub.requests.length, before);
    close(vec(sae.encode(x)), vec(gpt2Sae.encode(x)));
    await assert.rejects(
      loadSae('gpt2-small-res-jb', 'blocks.9.hook_resid_pre', { ...base, endpoint, offline: true }),
      /offline mode is on/,
    );
  });
});

describe('names', () => {
  it('an unknown release names the files searched and the nearest releases', () => {
    assert.throws(
      () => findPretrainedSae('gemma-scope-2b-pt-rse', 'x'),
      (e: Error) =>
        /built-in releases/.test(e.message) &&
        /no release 'gemma-scope-2b-pt-rse'/.test(e.message) &&
        /'gemma-scope-2b-pt-res'/.test(e.message),
    );
  });
  it('an unknown SAE id names the file and the nearest ids', () => {
    assert.throws(
      () => findPretrainedSae('gpt2-small-res-jb', 'blocks.8.hook_resid_pr'),
      (e: Error) =>
        /pretrained-saes\.ts\): release 'gpt2-small-res-jb' has no SAE 'blocks.8.hook_resid_pr'/.test(e.message) &&
        /'blocks.8.hook_resid_pre'/.test(e.message),
    );
  });
  it('resolveSae takes a directory or RELEASE/SAE_ID', async () => {
    const dir = join(tmp, 'gpt2-src');
    const local = await resolveSae(dir);
    assert.equal(local.dir, dir);
    assert.equal(local.pretrained, null);
    const named = await resolveSae('gemma-scope-2b-pt-res-canonical/layer_3/width_16k/canonical', { ...base, endpoint });
    assert.equal(named.pretrained?.entry.path, 'layer_3/width_16k/average_l0_59');
    assert.ok(named.dir.endsWith(join('layer_3', 'width_16k', 'average_l0_59')));
    await assert.rejects(resolveSae('./no/such/dir'), /no\/such\/dir\/cfg\.json: not found/);
    await assert.rejects(resolveSae('nodir'), /not a directory, and not a pretrained SAE name/);
    await assert.rejects(resolveSae('runs/sae-topk'), /runs\/sae-topk: no such directory, and not a known release: .*no release 'runs'/);
  });
});

describe('user releases files', () => {
  it('a user file (option or env var) adds releases and replaces built-in ones; errors name the file and field', async () => {
    const file = join(tmp, 'mine.yaml');
    writeFileSync(
      file,
      [
        'my-gpt2:',
        '  repo_id: jbloom/GPT2-Small-SAEs-Reformatted',
        '  model: gpt2-small',
        '  conversion_func:',
        '  config_overrides:',
        '    context_size: 64',
        '  saes:',
        '    - id: layer8',
        '      path: blocks.8.hook_resid_pre',
        '',
      ].join('\n'),
    );
    const sae = await loadSae('my-gpt2', 'layer8', { ...base, endpoint, releasesFiles: [file] });
    assert.equal(sae.cfg.context_size, 64);
    const saved = process.env[SAE_RELEASES_ENV];
    process.env[SAE_RELEASES_ENV] = file;
    try {
      assert.equal(findPretrainedSae('my-gpt2', 'layer8').entry.path, 'blocks.8.hook_resid_pre');
    } finally {
      if (saved === undefined) delete process.env[SAE_RELEASES_ENV];
      else process.env[SAE_RELEASES_ENV] = saved;
    }
    assert.throws(
      () => parseReleases('r:\n  repo_id: a/b\n  saes:\n    - id: x\n', 'f.yaml'),
      /f\.yaml: release 'r': 'saes\[0\]\.path' must be a string/,
    );
    assert.throws(
      () => parseReleases('r:\n  repo_id: a/b\n  saes:\n    - id: x\n      path: ../up\n', 'f.yaml'),
      /not a plain relative file name/,
    );
    assert.throws(() => parseReleases('r: [1, 2\n', 'f.yaml'), /f\.yaml: not valid YAML/);
    assert.throws(() => loadReleases({ releasesFiles: [join(tmp, 'absent.yaml')] }), /absent\.yaml: releases file not found/);
    const weird = join(tmp, 'weird.yaml');
    writeFileSync(weird, 'w:\n  repo_id: a/b\n  conversion_func: dictionary_learning_1\n  saes:\n    - id: x\n      path: x\n');
    await assert.rejects(
      loadSae('w', 'x', { ...base, endpoint, releasesFiles: [weird] }),
      /weird\.yaml: release 'w': conversion_func 'dictionary_learning_1' is not supported/,
    );
  });
});

describe('the sae commands', () => {
  it('--sae RELEASE/SAE_ID with --releases downloads through HF_ENDPOINT into HF_HUB_CACHE and runs', async () => {
    // an SAE for the default model (d_model 192) in SAELens layout, in a user release on the fake Hub
    const src = join(tmp, 'default-sae');
    saveSae(Sae.create({ architecture: 'standard', d_in: 192, d_sae: 32, hook_name: 'blocks.1.hook_resid_pre' }, { seed: 9 }), src);
    const commit = fakeCommit('mine');
    hub.addRepo('me/default-saes', {
      refs: { main: commit },
      commits: {
        [commit]: {
          'resid-1/cfg.json': plain(readFileSync(join(src, 'cfg.json'), 'utf8')),
          'resid-1/sae_weights.safetensors': lfs(readFileSync(join(src, 'sae_weights.safetensors'))),
        },
      },
    });
    const releases = join(tmp, 'cli-releases.yaml');
    writeFileSync(releases, 'mine:\n  repo_id: me/default-saes\n  model: default\n  saes:\n    - id: resid-1\n      path: resid-1\n');
    const cache = join(tmp, 'cli-cache');
    const root = fileURLToPath(new URL('..', import.meta.url));
    const args = [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'sae',
      'eval',
      '--sae',
      'mine/resid-1',
      '--releases',
      releases,
      '--tokens',
      '256',
      '--batch-size',
      '2',
    ];
    const r = await new Promise<{ code: number; out: string; err: string }>((resolve) =>
      execFile(
        process.execPath,
        args,
        {
          cwd: root,
          encoding: 'utf8',
          timeout: 240_000,
          env: { ...process.env, HF_ENDPOINT: endpoint, HF_HUB_CACHE: cache, HF_TOKEN: '', HF_HUB_OFFLINE: '' },
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: stdout, err: stderr }),
      ),
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /explained variance/);
    assert.ok(readFileSync(join(cache, 'models--me--default-saes', 'refs', 'main'), 'utf8').trim() === commit);
  });
});
