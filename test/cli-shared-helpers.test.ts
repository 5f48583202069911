/**
 * The small helpers the CLI commands share: `writeJson` (every --json, eval.json, training.json)
 * and `collectionCheckpointOf` (sae features, clt features). Answers built by hand.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeJson } from '../src/cli/output.js';
import { collectionCheckpointOf } from '../src/cli/sae.js';
import { CHECKPOINT_JSON } from '../src/sae/features/checkpoint.js';

describe('cli shared helpers', () => {
  it('writeJson writes indented JSON with a final newline, and nothing without a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-helpers-'));
    try {
      const file = join(dir, 'r.json');
      writeJson(file, { a: 1, b: [2, 3] });
      assert.equal(readFileSync(file, 'utf8'), '{\n  "a": 1,\n  "b": [\n    2,\n    3\n  ]\n}\n');
      writeJson(undefined, { a: 1 });
      writeJson('', { a: 1 });
      assert.equal(existsSync(join(dir, 'undefined')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('collectionCheckpointOf: every n batches, none at 0, resume only onto a checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-helpers-'));
    try {
      const ckpt = join(dir, '.checkpoint');
      assert.deepEqual(collectionCheckpointOf(ckpt, 50, undefined), { checkpoint: { dir: ckpt, everyBatches: 50 } });
      assert.deepEqual(collectionCheckpointOf(ckpt, 0, false), {});
      assert.throws(() => collectionCheckpointOf(ckpt, 50, true), /--resume: .*\.checkpoint holds no checkpoint to continue/);
      mkdirSync(ckpt);
      writeFileSync(join(ckpt, CHECKPOINT_JSON), '{}');
      assert.deepEqual(collectionCheckpointOf(ckpt, 0, true), {
        checkpoint: { dir: ckpt, everyBatches: Number.MAX_SAFE_INTEGER },
        resume: true,
      });
      assert.deepEqual(collectionCheckpointOf(ckpt, 7, true), { checkpoint: { dir: ckpt, everyBatches: 7 }, resume: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
