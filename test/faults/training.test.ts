/**
 * Training durability faults: damaged checkpoints (a flipped byte, a truncated file, an edited
 * state.json), a resume with other settings, temporary files of killed writers, and kill -9 at
 * each moment of a checkpoint write. Each must end in a clear error naming the file or field, or
 * in a resumed run whose weights are bit-identical to an uninterrupted run's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor } from '../../src/tensor/index.js';
import { namedLeaves } from '../../src/train/tree.js';
import { syntheticData } from '../../src/train/data.js';
import { runFingerprint } from '../../src/train/fingerprint.js';
import { copyFileAtomic } from '../../src/io/atomic.js';
import { trainInduction } from '../../src/recipes/toys/induction.js';
import { trainSae } from '../../src/sae/training/trainer.js';
import { trainTunedLens } from '../../src/analysis/tuned-lens.js';
import { tinyRandomModel } from '../tiny-models.js';
import { tinyRun } from '../support/tiny-run.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = join(ROOT, 'test', 'support', 'checkpoint-kill-child.ts');
const tmp = (): string => mkdtempSync(join(tmpdir(), 'glassbox-faults-train-'));
const ckpt = (dir: string, ...rest: string[]): string => join(dir, 'checkpoints', ...rest);
const tmpEntries = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

/** The weights as bytes by name. */
function weightBytes(params: unknown): Map<string, Buffer> {
  return new Map(
    namedLeaves(params).map(([name, t]) => {
      const a = t.dataSync();
      return [name, Buffer.from(a.buffer, a.byteOffset, a.byteLength)];
    }),
  );
}

function assertSameWeights(actual: unknown, expected: Map<string, Buffer>, what: string): void {
  const got = weightBytes(actual);
  assert.deepEqual([...got.keys()], [...expected.keys()], `${what}: the same tensors`);
  for (const [name, bytes] of expected)
    assert.ok(got.get(name)!.equals(bytes), `${what}: ${name} is bit-identical to the uninterrupted run's`);
}

/** The weights of the uninterrupted 6-step run every resume must reproduce. */
let uninterrupted: Map<string, Buffer> | null = null;
async function baseline(): Promise<Map<string, Buffer>> {
  uninterrupted ??= weightBytes((await tinyRun({ steps: 6 })).params);
  return uninterrupted;
}

function flipByte(file: string, fromEnd: number): void {
  const bytes = readFileSync(file);
  bytes[bytes.length - fromEnd]! ^= 0x10;
  writeFileSync(file, bytes);
}

test('a flipped byte in the only checkpoint (either tensor file) or an edited state.json refuses the resume, naming the file', async () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      'params',
      (dir) => flipByte(ckpt(dir, 'step-00000002', 'params.safetensors'), 7),
      /no intact checkpoint to resume from: \S*step-00000002\/params\.safetensors: its SHA-256 is [0-9a-f]{16}\.\.\., but the checkpoint recorded [0-9a-f]{16}\.\.\.: the file was changed or damaged/,
    ],
    [
      'optimizer',
      (dir) => flipByte(ckpt(dir, 'step-00000002', 'optimizer.safetensors'), 3),
      /no intact checkpoint to resume from: \S*step-00000002\/optimizer\.safetensors: its SHA-256 is/,
    ],
    [
      'state.json',
      (dir) => {
        // The data position still parses: only the checksum can tell.
        const file = ckpt(dir, 'step-00000002', 'state.json');
        const text = readFileSync(file, 'utf8');
        const edited = text.replace(/"elapsed": [0-9.e-]+/, '"elapsed": 12345');
        assert.notEqual(edited, text);
        writeFileSync(file, edited);
      },
      /no intact checkpoint to resume from: \S*step-00000002\/state\.json: its contents do not match the SHA-256 it records/,
    ],
  ];
  for (const [what, damage, message] of cases) {
    const dir = tmp();
    try {
      await tinyRun({ outDir: dir, steps: 2 });
      damage(dir);
      await assert.rejects(tinyRun({ outDir: dir, steps: 6, resume: true }), message, what);
      assert.ok(existsSync(ckpt(dir, 'step-00000002')), `${what}: the damaged checkpoint is left where it was`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('a truncated or flipped latest checkpoint falls back to the previous one, says so, and the resumed run is bit-identical', async () => {
  const expected = await baseline();
  const cases: [string, (file: string) => void, RegExp][] = [
    [
      'truncated',
      (f) => truncateSync(f, statSync(f).size - 100),
      /it holds \d+ bytes, but the checkpoint recorded \d+: the file was truncated/,
    ],
    ['flipped', (f) => flipByte(f, 11), /its SHA-256 is [0-9a-f]{16}\.\.\., but the checkpoint recorded/],
  ];
  for (const [what, damage, problem] of cases) {
    const dir = tmp();
    try {
      await tinyRun({ outDir: dir, steps: 4 });
      damage(ckpt(dir, 'step-00000004', 'params.safetensors'));
      const warnings: string[] = [];
      const r = await tinyRun({ outDir: dir, steps: 6, resume: true, onWarning: (m) => warnings.push(m) });
      assert.equal(r.startStep, 2, `${what}: resumed from the previous checkpoint`);
      assert.equal(warnings.length, 1, `${what}: one warning (${warnings.join(' | ')})`);
      assert.match(warnings[0]!, /the newest checkpoint is damaged: \S*step-00000004\/params\.safetensors: /);
      assert.match(warnings[0]!, problem);
      assert.match(warnings[0]!, /\(moved to \S*corrupt-step-00000004\); resuming from \S*step-00000002 \(step 2\)/);
      assertSameWeights(r.params, expected, what);
      // Nothing is lost: the damaged checkpoint is kept aside; the new ones are in place.
      assert.deepEqual(readdirSync(ckpt(dir)).sort(), ['corrupt-step-00000004', 'latest.json', 'step-00000004', 'step-00000006']);
      const steps = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).step as number);
      assert.deepEqual(steps, [1, 2, 3, 4, 5, 6], `${what}: one metrics record per step`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('resume refuses another learning rate, clipping, initialisation or toy setting, naming the field; how long to train may change', async () => {
  const dir = tmp();
  const toy = tmp();
  try {
    await tinyRun({ outDir: dir, steps: 2 });
    await assert.rejects(
      tinyRun({ outDir: dir, steps: 6, resume: true, lr: 0.5 }),
      /step-00000002\/state\.json: this run's settings differ from those of the run that wrote the checkpoint \(lr schedule: it gives other values over steps 1\.\.2 than the run that wrote the checkpoint\); resume with the same settings/,
    );
    await assert.rejects(
      tinyRun({ outDir: dir, steps: 6, resume: true, clipGradNorm: 0.5 }),
      /\(train\.clipGradNorm: 1 in the checkpoint, 0\.5 now\)/,
    );
    await assert.rejects(
      tinyRun({ outDir: dir, steps: 6, resume: true, seed: 4 }),
      /\(train\.params: "sha256:[0-9a-f]{64}" in the checkpoint, "sha256:[0-9a-f]{64}" now\)/,
    );

    // The induction toy (the issue's case: --lr 0.5 was accepted on resume).
    const small = { dVocab: 11, halfLength: 4, dModel: 16, nHeads: 2, batchSize: 4, steps: 2, outDir: toy, progress: false as const };
    await trainInduction(small);
    await assert.rejects(trainInduction({ ...small, lr: 0.5, resume: true }), /\(lr: 0\.001 in the checkpoint, 0\.5 now; lr schedule: /);
    await assert.rejects(trainInduction({ ...small, batchSize: 8, resume: true }), /\(batchSize: 4 in the checkpoint, 8 now\)/);
    await assert.rejects(trainInduction({ ...small, seed: 1, resume: true }), /seed: 0 in the checkpoint, 1 now/);
    // An explicit default is the same run; a longer run continues (its warm-up does not depend on the length).
    const longer = await trainInduction({ ...small, lr: 1e-3, steps: 3, resume: true });
    assert.equal(longer.train.startStep, 2);
    assert.equal(longer.train.step, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(toy, { recursive: true, force: true });
  }
});

test('glassbox train induction --lr 0.5 --resume is refused naming lr', () => {
  const dir = tmp();
  const glassbox = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train', 'induction', '--out', dir, '--steps', '2', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
  try {
    const first = glassbox();
    assert.equal(first.status, 0, first.stderr);
    const again = glassbox('--lr', '0.5', '--resume');
    assert.equal(again.status, 1, again.stderr);
    assert.match(again.stderr, /state\.json: this run's settings differ .*\(lr: 0\.001 in the checkpoint, 0\.5 now;/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("temporary leftovers of dead writers (and stale ones of a reused id) are removed at start; a live writer's are kept", async () => {
  const dir = tmp();
  let live: ChildProcess | null = null;
  try {
    await tinyRun({ outDir: dir, steps: 2 });
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const alive = live.pid!;
    const made = {
      deadDir: ckpt(dir, `.step-00000003.${dead}.tmp`),
      deadFile: ckpt(dir, `.latest.json.${dead}.0123456789ab.tmp`),
      deadMetrics: join(dir, `.metrics.jsonl.${dead}.abcdef012345.tmp`),
      liveDir: ckpt(dir, `.step-00000005.${alive}.tmp`),
      reusedDir: ckpt(dir, `.step-00000007.${alive}.tmp`),
    };
    for (const [k, p] of Object.entries(made)) {
      if (k.endsWith('Dir')) {
        mkdirSync(p);
        writeFileSync(join(p, 'params.safetensors'), 'partial');
      } else writeFileSync(p, 'partial');
    }
    // Untouched since long before this process started: the id was reused, not a live writer.
    const old = new Date(Date.now() - 3600_000);
    utimesSync(join(made.reusedDir, 'params.safetensors'), old, old);
    utimesSync(made.reusedDir, old, old);

    const warnings: string[] = [];
    const r = await tinyRun({ outDir: dir, steps: 4, resume: true, onWarning: (m) => warnings.push(m) });
    assert.equal(r.startStep, 2);
    for (const k of ['deadDir', 'deadFile', 'deadMetrics', 'reusedDir'] as const) assert.ok(!existsSync(made[k]), `${k} removed`);
    assert.ok(existsSync(made.liveDir), "a live writer's directory is kept");
    assert.equal(warnings.length, 2, warnings.join(' | '));
    assert.match(
      warnings.join('\n'),
      new RegExp(`removed what interrupted writes left behind in \\S+: \\.metrics\\.jsonl\\.${dead}\\.abcdef012345\\.tmp`),
    );
    assert.match(warnings.join('\n'), /checkpoints: .*\.step-00000003\.\d+\.tmp/);
  } finally {
    live?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs the kill child until it reports it is blocked at `moment`, then SIGKILLs it (a watchdog bounds the wait). */
async function killDuringCheckpoint(dir: string, step: number, moment: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(step), moment], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const watchdog = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the child never reached ${moment} within 90 s (stdout: ${out}; stderr: ${err})`));
      }, 90_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`BLOCKED ${moment}`)) child.kill('SIGKILL');
      });
      child.on('exit', (code, signal) => {
        clearTimeout(watchdog);
        if (signal === 'SIGKILL' && out.includes('BLOCKED')) resolve();
        else reject(new Error(`the child exited (${code ?? signal}) before it was killed at ${moment}: ${out} ${err}`));
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

test('kill -9 at each moment of a checkpoint write, then resume: bit-identical weights, no leftovers', async () => {
  const expected = await baseline();
  // [moment, the checkpoint being written, the step the resume starts from, a leftover the kill leaves]
  const cases: [string, number, number, RegExp | null][] = [
    ['params-partial', 4, 2, /^\.step-00000004\.\d+\.tmp$/],
    ['before-dir', 4, 2, /^\.step-00000004\.\d+\.tmp$/],
    ['before-latest', 4, 4, /^\.latest\.json\.\d+\.[0-9a-f]{12}\.tmp$/],
    ['before-prune', 6, 6, null],
  ];
  for (const [moment, step, resumeFrom, leftover] of cases) {
    const dir = tmp();
    try {
      await killDuringCheckpoint(dir, step, moment);
      const left = tmpEntries(ckpt(dir));
      if (leftover)
        assert.ok(
          left.some((n) => leftover.test(n)),
          `${moment}: the kill left ${leftover} (found ${left.join(', ')})`,
        );
      const warnings: string[] = [];
      const r = await tinyRun({ outDir: dir, steps: 6, resume: true, onWarning: (m) => warnings.push(m) });
      assert.equal(r.startStep, resumeFrom, `${moment}: resumed from step ${resumeFrom}`);
      assertSameWeights(r.params, expected, moment);
      assert.deepEqual(tmpEntries(ckpt(dir)), [], `${moment}: no temporary leftovers after the resume`);
      if (leftover) assert.match(warnings.join('\n'), /removed what interrupted writes left behind/, moment);
      const kept = readdirSync(ckpt(dir)).filter((n) => n.startsWith('step-'));
      assert.ok(kept.includes('step-00000006'), `${moment}: the final checkpoint is in place (${kept.join(', ')})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('trainSae: settings the hand-picked list missed (Adam betas, norm-estimate batches) are refused by name on resume', async () => {
  const dir = tmp();
  const store = () =>
    syntheticData(
      (rng) => ({
        x: tensor(
          Array.from({ length: 16 }, () => Array.from({ length: 4 }, () => rng.normal())),
          undefined,
          'float32',
        ),
      }),
      { seed: 5 },
    );
  const common = {
    cfg: { architecture: 'standard', d_sae: 8, d_in: 4 },
    totalTrainingSteps: 2,
    nEvalBatches: 0,
    normalizeActivations: 'expected_average_only_in' as const,
    nBatchesForNormEstimate: 2,
    checkpointEvery: 2,
    outDir: dir,
    progress: false as const,
  };
  try {
    await trainSae({ ...common, store: store() });
    await assert.rejects(
      trainSae({ ...common, store: store(), nBatchesForNormEstimate: 3, resume: true }),
      /\(nBatchesForNormEstimate: 2 in the checkpoint, 3 now\)/,
    );
    await assert.rejects(
      trainSae({ ...common, store: store(), init: { decoderInitNorm: 1 }, resume: true }),
      /\(init: not set in the checkpoint, \{"decoderInitNorm":1\} now; train\.params: "sha256:[0-9a-f]{64}" in the checkpoint, "sha256:[0-9a-f]{64}" now\)/,
    );
    await assert.rejects(
      trainSae({ ...common, store: store(), adamBeta2: 0.99, resume: true }),
      /adamBeta2: 0\.999 in the checkpoint, 0\.99 now; optimizer\.beta2: 0\.999 in the checkpoint, 0\.99 now/,
    );
    // The same settings resume; a damaged only checkpoint is refused naming the file.
    const again = await trainSae({ ...common, store: store(), resume: true });
    assert.equal(again.startStep, 2);
    flipByte(ckpt(dir, 'step-00000002', 'params.safetensors'), 5);
    await assert.rejects(trainSae({ ...common, store: store(), resume: true }), /step-00000002\/params\.safetensors: its SHA-256 is/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("trainTunedLens: another model's weights, other tokens or another setting are refused by name on resume", async () => {
  const dir = tmp();
  const tokens = [
    [1, 2, 3, 4, 5, 6],
    [6, 5, 4, 3, 2, 1],
  ];
  try {
    await trainTunedLens(tinyRandomModel(1), tokens, { steps: 2, outDir: dir });
    await assert.rejects(
      trainTunedLens(tinyRandomModel(2), tokens, { steps: 2, outDir: dir, resume: true }),
      /\(model\.paramsSha256: "[0-9a-f]{64}" in the checkpoint, "[0-9a-f]{64}" now\)/,
    );
    await assert.rejects(
      trainTunedLens(tinyRandomModel(1), [[1, 1, 1, 1, 1, 1]], { steps: 2, outDir: dir, resume: true }),
      /\(data\.tokensSha256: /,
    );
    await assert.rejects(
      trainTunedLens(tinyRandomModel(1), tokens, { steps: 2, outDir: dir, resume: true, clipGradNorm: 0.1 }),
      /clipGradNorm: not set in the checkpoint, 0\.1 now/,
    );
    const again = await trainTunedLens(tinyRandomModel(1), tokens, { steps: 3, outDir: dir, resume: true });
    assert.equal(again.history.filter((r) => r.kind === 'train').length, 3, 'the same run continues for longer');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a checkpoint of format version 1 (no checksums) is refused as another version, not taken for a damaged one', async () => {
  const dir = tmp();
  try {
    await tinyRun({ outDir: dir, steps: 2 });
    const file = ckpt(dir, 'step-00000002', 'state.json');
    const { stateSha256: _sealed, files: _files, run: _run, schedules: _schedules, ...v1 } = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...v1, version: 1 }));
    await assert.rejects(
      tinyRun({ outDir: dir, steps: 6, resume: true }),
      /step-00000002\/state\.json: a checkpoint of format version 1, written by another glassbox; this one reads version 2 \(with checksums and the full run fingerprint\)/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runFingerprint: every field but the excluded ones, canonical; a field it cannot describe is an error naming it', () => {
  assert.deepEqual(runFingerprint({ b: 2, a: { d: [1, NaN], c: 'x' }, steps: 9, skip: undefined }, ['steps']), {
    a: { c: 'x', d: [1, 'NaN'] },
    b: 2,
  });
  assert.throws(
    () => runFingerprint({ lr: 1, onStep: () => 0 }, []),
    /runFingerprint: 'onStep' holds a function, which a run's fingerprint cannot describe; list it among the fields that may change on resume, or give it a describer/,
  );
  assert.throws(() => runFingerprint({ store: { nested: new Map() } }, []), /'store\.nested' holds a Map/);
  assert.deepEqual(runFingerprint({ lr: 1, onStep: () => 0 }, ['onStep']), { lr: 1 });
  assert.deepEqual(runFingerprint({ store: new Map([[1, 2]]) }, [], { store: (m: Map<number, number>) => m.size }), { store: 1 });
});

test('copyFileAtomic (model.save of a tokenizer) leaves the destination whole when the copy fails', () => {
  const dir = tmp();
  try {
    const dest = join(dir, 'tokenizer.json');
    writeFileSync(dest, '{"old": true}');
    const src = join(dir, 'source.json');
    writeFileSync(src, '{"new": true}');
    copyFileAtomic(src, dest);
    assert.equal(readFileSync(dest, 'utf8'), '{"new": true}');
    copyFileAtomic(dest, dest); // onto itself: unchanged
    assert.equal(readFileSync(dest, 'utf8'), '{"new": true}');
    mkdirSync(join(dir, 'a-directory'));
    assert.throws(() => copyFileAtomic(join(dir, 'a-directory'), dest), /EISDIR/);
    assert.equal(readFileSync(dest, 'utf8'), '{"new": true}', 'the destination is as it was');
    assert.deepEqual(tmpEntries(dir), [], 'no temporary file is left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
