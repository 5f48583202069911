import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors } from '../src/io/safetensors.js';
import { tensor, type Tensor } from '../src/tensor/index.js';
import { adam, sgd } from '../src/train/optim.js';
import { syntheticData, fixedData } from '../src/train/data.js';
import { train } from '../src/train/loop.js';

const CHILD = join(import.meta.dirname, 'support', 'train-child.ts');
const tmp = (): string => mkdtempSync(join(tmpdir(), 'glassbox-train-'));

function regressionData(seed: number) {
  // y = x . [2, -3] + 1 with a fixed batch of 16 points.
  return syntheticData(
    (rng) => {
      const x: number[][] = [];
      const y: number[] = [];
      for (let i = 0; i < 16; i++) {
        const a = rng.normal();
        const b = rng.normal();
        x.push([a, b]);
        y.push(2 * a - 3 * b + 1);
      }
      return { x: tensor(x), y: tensor(y) };
    },
    { seed },
  );
}
const regressionLoss = (p: { w: Tensor; b: Tensor }, batch: { x: Tensor; y: Tensor }) =>
  batch.x.matmul(p.w).add(p.b).sub(batch.y).square().mean();

test('train fits a linear regression, logs JSONL and checkpoints', async () => {
  const dir = tmp();
  const res = await train({
    params: { w: tensor([0, 0]), b: tensor([0]) },
    loss: regressionLoss,
    optimizer: adam(),
    data: regressionData(1),
    steps: 300,
    lr: 0.05,
    outDir: dir,
    checkpointEvery: 100,
    progress: false,
    evalEvery: 150,
    evaluate: (p) => ({ w0: p.w.dataSync()[0] as number }),
  });
  const w = Array.from(res.params.w.dataSync() as Float32Array);
  assert.ok(Math.abs(w[0]! - 2) < 0.05 && Math.abs(w[1]! + 3) < 0.05, `w = ${w}`);
  assert.ok(res.lastLoss < 1e-3, `final loss ${res.lastLoss}`);
  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const trainLines = lines.filter((l) => l.kind === 'train');
  assert.equal(trainLines.length, 300);
  assert.deepEqual(Object.keys(trainLines[0]).sort(), ['elapsed', 'kind', 'loss', 'lr', 'step', 'stepsPerSec'].sort());
  assert.deepEqual(
    lines.filter((l) => l.kind === 'eval').map((l) => l.step),
    [150, 300],
  );
  // Two checkpoints kept (200 and 300), latest.json points to 300.
  const ck = readdirSync(join(dir, 'checkpoints')).sort();
  assert.deepEqual(ck, ['latest.json', 'step-00000200', 'step-00000300']);
  assert.equal(JSON.parse(readFileSync(join(dir, 'checkpoints', 'latest.json'), 'utf8')).step, 300);
  const state = JSON.parse(readFileSync(join(dir, 'checkpoints', 'step-00000300', 'state.json'), 'utf8'));
  assert.equal(state.step, 300);
  assert.equal(state.optimizer.name, 'adam');
  // The saved params are the returned ones.
  const saved = loadSafetensors(join(dir, 'checkpoints', 'step-00000300', 'params.safetensors'));
  assert.deepEqual(Array.from(saved.get('w')!.dataSync() as Float32Array), w);

  // Refuses to overwrite without resume; resuming a finished run does nothing more.
  await assert.rejects(
    train({
      params: { w: tensor([0, 0]), b: tensor([0]) },
      loss: regressionLoss,
      optimizer: adam(),
      data: regressionData(1),
      steps: 300,
      lr: 0.05,
      outDir: dir,
      progress: false,
    }),
    /already holds checkpoints \(latest: step 300\); pass resume/,
  );
  const again = await train({
    params: { w: tensor([0, 0]), b: tensor([0]) },
    loss: regressionLoss,
    optimizer: adam(),
    data: regressionData(1),
    steps: 300,
    lr: 0.05,
    outDir: dir,
    resume: true,
    progress: false,
  });
  assert.equal(again.startStep, 300);
  assert.deepEqual(Array.from(again.params.w.dataSync() as Float32Array), w);
  assert.deepEqual(again.history, lines, "a resumed run's history starts with the records logged before the checkpoint");
});

test('resume refuses a different config or optimizer by field, and resumes past a corrupt latest.json with a warning', async () => {
  const dir = tmp();
  const base = {
    params: { w: tensor([0, 0]), b: tensor([0]) },
    loss: regressionLoss,
    data: regressionData(1),
    steps: 4,
    lr: 0.1,
    outDir: dir,
    progress: false as const,
  };
  await train({ ...base, optimizer: sgd(), config: { a: 1 } });
  await assert.rejects(
    train({ ...base, steps: 8, optimizer: sgd(), config: { a: 2 }, resume: true }),
    /step-00000004\/state\.json: this run's settings differ from those of the run that wrote the checkpoint \(a: 1 in the checkpoint, 2 now\)/,
  );
  await assert.rejects(
    train({ ...base, steps: 8, optimizer: sgd({ momentum: 0.9 }), config: { a: 1 }, resume: true }),
    /optimizer\.momentum: 0 in the checkpoint, 0\.9 now/,
  );
  writeFileSync(join(dir, 'checkpoints', 'latest.json'), '{"step": 4');
  const warnings: string[] = [];
  const r = await train({ ...base, steps: 8, optimizer: sgd(), config: { a: 1 }, resume: true, onWarning: (m) => warnings.push(m) });
  assert.equal(r.startStep, 4);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /latest\.json: not valid JSON .*; resuming from the newest intact checkpoint directory instead/);
});

test('a non-finite loss stops training with a clear error and keeps the last checkpoint', async () => {
  const dir = tmp();
  await assert.rejects(
    train({
      params: { w: tensor([0, 0]), b: tensor([0]) },
      loss: regressionLoss,
      optimizer: sgd(),
      data: fixedData({ x: tensor([[1e20, 1e20]]), y: tensor([1]) }),
      steps: 10,
      lr: 1e10,
      outDir: dir,
      checkpointEvery: 1,
      progress: false,
    }),
    /the loss became (Infinity|NaN) at step \d+; lower the learning rate/,
  );
});

test('a run killed at a random step and resumed reaches the same weights as an uninterrupted run', async () => {
  const steps = 24;
  const full = tmp();
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, full, String(steps), '0'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const uninterrupted = loadSafetensors(join(full, 'final.safetensors'));

  const killed = tmp();
  const killAt = 4 + Math.floor(Math.random() * 14); // somewhere in steps 4..17
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, killed, String(steps), '40'], { stdio: 'ignore' });
  const metrics = join(killed, 'metrics.jsonl');
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      const n = existsSync(metrics) ? readFileSync(metrics, 'utf8').split('\n').filter(Boolean).length : 0;
      if (n >= killAt) {
        clearInterval(poll);
        child.kill('SIGKILL');
      }
    }, 5);
    child.on('exit', (_code, signal) => {
      clearInterval(poll);
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`the child finished before it was killed (kill at step ${killAt})`));
    });
  });
  assert.ok(!existsSync(join(killed, 'final.safetensors')), 'the killed run did not finish');
  const resumed = spawnSync(process.execPath, ['--import', 'tsx', CHILD, killed, String(steps), '0', '--resume'], { encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);
  const info = JSON.parse(resumed.stdout.trim().split('\n').pop()!);
  assert.ok(info.startStep > 0 && info.startStep <= killAt, `resumed from step ${info.startStep} after a kill at ~${killAt}`);
  assert.equal(info.step, steps);
  const final = loadSafetensors(join(killed, 'final.safetensors'));
  assert.deepEqual([...final.keys()].sort(), [...uninterrupted.keys()].sort());
  for (const [name, t] of uninterrupted) {
    const a = t.dataSync() as Float32Array;
    const b = final.get(name)!.dataSync() as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-6, `${name}[${i}]: ${b[i]} vs uninterrupted ${a[i]}`);
  }
  // The metrics log has exactly one record per step after the resume truncated the redone steps.
  const steps2 = readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(
    steps2,
    Array.from({ length: steps }, (_, i) => i + 1),
  );
});
