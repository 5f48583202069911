/**
 * `openTrainingRun`, the run directory that `train`, `trainSae` and `trainClt` share: a checkpoint
 * written through it resumes with its parameters, optimizer state, step, seconds, extra state and
 * the data source's position; a directory with checkpoints is refused without resume, and a
 * resume with another schedule names it; without a directory nothing is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, type Tensor } from '../src/tensor/index.js';
import { adam } from '../src/train/optim.js';
import { openTrainingRun } from '../src/train/checkpoint.js';

/** A data source whose position is a number, counting its reads and recording the positions it was moved to. */
function counterData(): { pos: number; reads: number; moves: unknown[]; getState(): unknown; setState(s: unknown): void } {
  return {
    pos: 0,
    reads: 0,
    moves: [],
    getState() {
      this.reads++;
      return { pos: this.pos };
    },
    setState(s: unknown) {
      this.moves.push(s);
      this.pos = (s as { pos: number }).pos;
    },
  };
}

const values = (t: Tensor): number[] => Array.from(t.dataSync() as Float32Array);

test('a checkpoint written through the run resumes whole, and the data source moves to its position', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-run-dir-'));
  try {
    const optimizer = adam({ beta1: 0.8 });
    const params = { w: tensor([1, 2]) };
    const lr = (s: number): number => 0.1 / (s + 1);
    const open = (data = counterData(), schedule = lr) =>
      openTrainingRun(
        { outDir: dir, resume: true, config: { kind: 'test' }, optimizer, run: { seed: 3 }, schedules: { lr: schedule }, data, keep: 1 },
        params,
        optimizer.init(params),
      );

    // 1. A fresh start: the given parameters at step 0, nothing resumed.
    const data = counterData();
    const fresh = open(data);
    assert.equal(fresh.start.resumed, false);
    assert.equal(fresh.start.step, 0);
    assert.equal(fresh.start.params, params);
    assert.deepEqual(fresh.history, []);
    assert.deepEqual(data.moves, []);

    // 2. Two checkpoints; keep 1 leaves the newest.
    const trained = { w: tensor([5, 6]) };
    const state = optimizer.init(trained);
    data.pos = 4;
    fresh.checkpoint({ step: 2, params: { w: tensor([3, 4]) }, optState: state, elapsed: 0.5 });
    data.pos = 7;
    fresh.checkpoint({ step: 3, params: trained, optState: state, elapsed: 1.5, extra: { scale: [2, 3] } });
    assert.deepEqual(readdirSync(fresh.ckptRoot!).sort(), ['latest.json', 'step-00000003']);

    // 3. Resuming restores each part and moves the data source.
    const again = counterData();
    const resumed = open(again);
    assert.equal(resumed.start.resumed, true);
    assert.equal(resumed.start.step, 3);
    assert.equal(resumed.start.elapsed, 1.5);
    assert.deepEqual(resumed.start.extra, { scale: [2, 3] });
    assert.deepEqual(values(resumed.start.params.w), [5, 6]);
    assert.deepEqual(again.moves, [{ pos: 7 }]);
    assert.equal(again.pos, 7);

    // 4. Without resume the directory is protected; with another schedule the resume is refused by name.
    assert.throws(
      () => openTrainingRun({ outDir: dir, config: { kind: 'test' }, optimizer, data: counterData() }, params, optimizer.init(params)),
      /already holds checkpoints \(latest: step 3\); pass resume/,
    );
    assert.throws(() => open(counterData(), () => 0.1), /lr schedule: it gives other values over steps 1\.\.3/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without a run directory nothing is read or written', () => {
  const optimizer = adam();
  const params = { w: tensor([1]) };
  const data = counterData();
  const run = openTrainingRun({ config: null, optimizer, data }, params, optimizer.init(params));
  assert.equal(run.ckptRoot, null);
  assert.equal(run.metricsFile, null);
  assert.equal(run.start.resumed, false);
  run.checkpoint({ step: 1, params, optState: optimizer.init(params), elapsed: 0 });
  // The checkpoint did nothing: it did not even read the data source's position.
  assert.equal(data.reads, 0);
  assert.deepEqual(data.moves, []);
});
