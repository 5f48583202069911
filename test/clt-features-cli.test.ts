/**
 * `glassbox clt features DIR` on the default model, as a child process: a random CLT's per-layer
 * stores land at DIR/features/layer-L, with the numbers `collectTranscoderFeatures` computes in
 * this process on the same corpus; bad arguments are refused naming the flag or the directory.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/model/index.js';
import { defaultCorpusTokens } from '../src/sae/contexts.js';
import { CrossLayerTranscoder, loadClt, loadFeatureStore, saveClt } from '../src/sae/index.js';
import { collectTranscoderFeatures, featureStoreDir } from '../src/sae/clt/features.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'glassbox-clt-features-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function glassbox(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('glassbox clt features', { timeout: 300_000 }, () => {
  it("writes one store per layer with the library's numbers", async () => {
    const out = join(dir, 'clt');
    const L = 4;
    saveClt(
      CrossLayerTranscoder.init({
        n_layers: L,
        d_in: 192,
        d_out: 192,
        widths: [16, 16, 16, 16],
        activation: 'jumprelu',
        cross_layer: true,
        skip: false,
        hook_names_in: Array.from({ length: L }, (_, l) => `blocks.${l}.ln2.hook_normalized`),
        hook_names_out: Array.from({ length: L }, (_, l) => `blocks.${l}.hook_mlp_out`),
      }),
      out,
    );
    const flags = ['--tokens', '256', '--context-size', '32', '--batch-size', '4', '--top-k', '3', '--logit-tokens', '3'];
    const r = glassbox('clt', 'features', out, ...flags, '--no-progress');
    assert.equal(r.code, 0, r.stderr);
    for (let l = 0; l < L; l++)
      assert.match(r.stdout, new RegExp(`layer ${l}: wrote .*layer-${l}: 16 features over \\d+ tokens \\(8 contexts of 32\\)`));

    const model = await loadModel('default');
    const corpus = defaultCorpusTokens(model.tokenizer!, { eosTokenId: model.cfg.eosTokenId }).ids;
    const want = collectTranscoderFeatures(model, loadClt(out), corpus, {
      batches: 2,
      batchSize: 4,
      contextSize: 32,
      topK: 3,
      logitEffects: 3,
    });
    for (let l = 0; l < L; l++) {
      const got = loadFeatureStore(featureStoreDir(out, l));
      assert.equal(got.meta.transcoders?.layer, l);
      assert.deepEqual(Array.from(got.stats.fireCount), Array.from(want[l]!.stats.fireCount), `layer ${l}: fire counts`);
      assert.deepEqual(Array.from(got.stats.topContexts), Array.from(want[l]!.stats.topContexts), `layer ${l}: top contexts`);
      got.stats.maxAct.forEach((v, f) => assert.ok(Math.abs(v - want[l]!.stats.maxAct[f]!) <= 1e-4, `layer ${l} feature ${f}: max`));
      assert.deepEqual(Array.from(got.logits!.posIds), Array.from(want[l]!.logits!.posIds), `layer ${l}: logit ids`);
    }
  });

  it('refuses a missing directory, bad flags and a resume without a checkpoint, naming them', () => {
    const missing = glassbox('clt', 'features', join(dir, 'nope'));
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /nope: not a directory/);
    const topK = glassbox('clt', 'features', join(dir, 'clt'), '--top-k', '0');
    assert.notEqual(topK.code, 0);
    assert.match(topK.stderr, /--top-k must be an integer >= 1, got '0'/);
    const resume = glassbox('clt', 'features', join(dir, 'clt'), '--resume', '--tokens', '64');
    assert.notEqual(resume.code, 0);
    assert.match(resume.stderr, /--resume: .*\.checkpoint holds no checkpoint to continue/);
  });
});
