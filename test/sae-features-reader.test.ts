/**
 * FeatureStoreReader (src/sae/features/reader.ts): a feature's page read from the store on disk
 * with one small positioned read per tensor equals the page of the loaded store, for every
 * feature; the bytes read per page do not depend on the dictionary's width; a tensors file that
 * is not the one the JSON vouches for is refused naming it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRNG, tensor } from '../src/index.js';
import { FeatureStoreReader, Sae, collectFeatures, featurePage, loadFeatureStore, saveFeatureStore } from '../src/sae/index.js';
import { tinyRandomModel } from './tiny-models.js';

function randomSae(dSae: number): Sae {
  const sae = Sae.create({ architecture: 'standard', d_in: 16, d_sae: dSae, hook_name: 'blocks.1.hook_resid_pre' }, { seed: 4 });
  return sae.withParams({ ...sae.params, b_enc: tensor(new Float32Array(dSae).fill(0.02), [dSae]) });
}

describe('FeatureStoreReader', () => {
  const model = tinyRandomModel(3, { nLayers: 2 });
  const rng = new PRNG(9);
  const ids = Int32Array.from({ length: 12 * 8 }, () => rng.int(20));
  const options = { contextSize: 8, batchSize: 4, topK: 3, before: 2, after: 1, logitEffects: 4 };

  it('reads every page as the loaded store gives it, with the same few bytes per page whatever the width', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gb-reader-'));
    try {
      const perPage: number[] = [];
      for (const width of [24, 96]) {
        const out = join(dir, String(width));
        saveFeatureStore(collectFeatures(model, randomSae(width), ids, options), out);
        const store = loadFeatureStore(out);
        const reader = FeatureStoreReader.open(out);
        try {
          for (let f = 0; f < width; f++) assert.deepEqual(reader.page(f), featurePage(store, f), `feature ${f}`);
          perPage.push(reader.bytesRead / width);
          assert.throws(() => reader.page(width), new RegExp(`feature ${width} is out of range`));
        } finally {
          reader.close();
        }
        assert.ok(perPage.at(-1)! * 8 < statSync(join(out, 'features.safetensors')).size, 'a page reads a small part of the file');
      }
      assert.equal(perPage[0], perPage[1], 'bytes per page do not depend on the width');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a tensors file the JSON does not vouch for (unless verify is off)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gb-reader-'));
    try {
      saveFeatureStore(collectFeatures(model, randomSae(24), ids, options), dir);
      const path = join(dir, 'features.safetensors');
      const bytes = readFileSync(path);
      bytes[bytes.length - 1] ^= 0xff;
      writeFileSync(path, bytes);
      assert.throws(() => FeatureStoreReader.open(dir), /features\.safetensors: does not match .*features\.json/);
      FeatureStoreReader.open(dir, { verify: false }).close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
