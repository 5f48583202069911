/**
 * `modelFromBlobs` (a model folder's `File`s, as the static workbench gets them from a drop or a
 * folder input): the same model as loading the folder from disk, only the files the model needs
 * read, and a bad folder refused naming the file and the field.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/index.js';
import { modelFromBlobs } from '../src/model/from-files.js';
import { ROOT } from './e2e/harness.js';

const FIXTURE = join(ROOT, 'test/fixtures/hf/gpt2');
const read = (name: string) => readFileSync(join(FIXTURE, name));

/** A file that fails the test if it is read. */
class Untouchable extends Blob {
  constructor(readonly name: string) {
    super([]);
  }
  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.reject(new Error(`${this.name} was read, but the model does not need it`));
  }
}

function folder(overrides: Record<string, Blob | null> = {}): Map<string, Blob> {
  const files = new Map<string, Blob>([
    ['config.json', new Blob([read('config.json')])],
    ['generation_config.json', new Blob([read('generation_config.json')])],
    ['model.safetensors', new Blob([read('model.safetensors')])],
    // Files of the folder the model does not use.
    ['ref.safetensors', new Untouchable('ref.safetensors')],
    ['ref.json', new Untouchable('ref.json')],
    ['pytorch_model.bin', new Untouchable('pytorch_model.bin')],
  ]);
  for (const [name, blob] of Object.entries(overrides)) {
    if (blob === null) files.delete(name);
    else files.set(name, blob);
  }
  return files;
}

describe('modelFromBlobs', () => {
  it("gives the folder's model (the logits of loading it from disk), reading only the files it needs", async () => {
    const fromDisk = await loadModel(FIXTURE);
    const fromBlobs = await modelFromBlobs(folder(), 'gpt2');
    const ids = [[1, 2, 3, 4, 5, 6]];
    const a = fromDisk.forward(ids).dataSync() as Float32Array;
    const b = fromBlobs.forward(ids).dataSync() as Float32Array;
    assert.equal(a.length, b.length);
    let d = 0;
    a.forEach((v, i) => (d = Math.max(d, Math.abs(v - b[i]!))));
    assert.ok(d <= 1e-5, `the logits differ by ${d}`);
    assert.equal(fromBlobs.tokenizer ?? null, null, 'the fixture has no tokenizer.json');
  });

  it('refuses a bad folder naming the file and the field', async () => {
    await assert.rejects(modelFromBlobs(folder({ 'config.json': null }), 'gpt2'), /gpt2\/config\.json: missing/);
    await assert.rejects(modelFromBlobs(folder({ 'model.safetensors': null }), 'gpt2'), /gpt2\/model\.safetensors: missing/);
    const config = JSON.parse(read('config.json').toString()) as Record<string, unknown>;
    await assert.rejects(
      modelFromBlobs(folder({ 'config.json': new Blob([JSON.stringify({ ...config, model_type: 'no_such_family' })]) }), 'gpt2'),
      (e: Error) => /gpt2\/config\.json/.test(e.message) && /model_type/.test(e.message) && /no_such_family/.test(e.message),
    );
    await assert.rejects(
      modelFromBlobs(folder({ 'model.safetensors': new Blob([read('model.safetensors').subarray(0, 1000)]) }), 'gpt2'),
      /gpt2\/model\.safetensors/,
    );
  });
});
