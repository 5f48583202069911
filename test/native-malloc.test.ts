import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mallocConfig, mallocTuning, ortAvailable, randn } from '../src/index.js';
import { nativeModulePath } from '../src/tensor/backends/native.js';

const MB = 2 ** 20;
const root = fileURLToPath(new URL('..', import.meta.url));
const built = existsSync(nativeModulePath());

/** Runs an ES module script in a child process (the thresholds are per process), with a watchdog. */
function child(script: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe(
  "glibc's large-block thresholds (native helper)",
  { skip: (process.platform !== 'linux' || !ortAvailable()) && 'Linux with ONNX Runtime only' },
  () => {
    it('are set when the ONNX Runtime backend loads, or the outcome says why not', () => {
      const t = mallocTuning();
      assert.ok(t, 'mallocTuning() is null after the ONNX Runtime backend loaded');
      if (built) {
        assert.deepEqual(t, { applied: true, reason: null, mmapThresholdBytes: 32 * MB, trimThresholdBytes: 128 * MB });
        assert.equal(mallocConfig.mmapThresholdBytes, 32 * MB);
      } else {
        assert.equal(t.applied, false);
        assert.match(t.reason!, /glassbox_native\.node not loaded .*npm run build:native/);
      }
    });

    it(
      'keep the pages of freed results: a [128,3072] float32 result (384 pages) no longer faults its pages in on every call',
      { skip: !built && 'native helper not built' },
      () => {
        const a = randn([128, 256], { seed: 1 });
        const b = randn([256, 3072], { seed: 2 });
        // The heap grows to what one garbage collection frees over the first calls (about 60), then stays.
        for (let i = 0; i < 150; i++) a.matmul(b);
        const faults: number[] = [];
        for (let i = 0; i < 100; i++) {
          const f0 = process.resourceUsage().minorPageFault;
          const y = a.matmul(b);
          faults.push(process.resourceUsage().minorPageFault - f0);
          assert.equal(y.shape.join(','), '128,3072');
        }
        faults.sort((x, y) => x - y);
        const median = faults[50]!;
        // Without the thresholds, glibc gives each garbage collection's batch of results back to the
        // system, and most calls fault all 384 pages of their result again.
        assert.ok(median < 384 / 4, `median ${median} minor page faults per call (sorted: ${faults.join(' ')})`);
      },
    );

    it('are left alone when mallocConfig.tune is false', () => {
      const r = child(`
import { mallocConfig, mallocTuning, ortAvailable } from './src/index.js';
mallocConfig.tune = false;
ortAvailable();
console.log(JSON.stringify(mallocTuning()));
`);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout.trim()), {
        applied: false,
        reason: 'mallocConfig.tune is false',
        mmapThresholdBytes: null,
        trimThresholdBytes: null,
      });
    });

    it('are left alone, with the reason, where the helper is missing or not the expected module; ORT still runs', () => {
      const r = child(`
import { tuneMalloc, mallocTuning } from './src/tensor/backends/native.js';
import { randn } from './src/index.js';
const missing = tuneMalloc('/nonexistent/glassbox_native.node');
const again = tuneMalloc(); // once per process: the first outcome stands
const y = randn([64, 64], { seed: 1 }).matmul(randn([64, 64], { seed: 2 }));
console.log(JSON.stringify({ missing, same: again === missing && mallocTuning() === missing, shape: y.shape }));
`);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim()) as { missing: { applied: boolean; reason: string }; same: boolean; shape: number[] };
      assert.equal(out.missing.applied, false);
      assert.match(
        out.missing.reason,
        /^native helper \/nonexistent\/glassbox_native\.node not loaded \(Cannot find module .*\); build it with `npm run build:native`/,
      );
      assert.equal(out.same, true);
      assert.deepEqual(out.shape, [64, 64]);
      // Its absence is noted once on stderr (a note, not an error: the run goes on).
      const notes = r.stderr.split('\n').filter((l) => l.startsWith('glassbox: running without the native allocator helper'));
      assert.equal(notes.length, 1, r.stderr);
      assert.match(notes[0]!, /\/nonexistent\/glassbox_native\.node not loaded .*; large results are slower/);

      const wrong = child(`
import { tuneMalloc } from './src/tensor/backends/native.js';
console.log(JSON.stringify(tuneMalloc(${JSON.stringify(fileURLToPath(new URL('../package.json', import.meta.url)))})));
`);
      assert.equal(wrong.status, 0, wrong.stderr);
      assert.match(
        (JSON.parse(wrong.stdout.trim()) as { reason: string }).reason,
        /package\.json has no setMallocThresholds function; rebuild it$/,
      );
    });

    it(
      'refuse arguments that are not two positive byte counts below 2^31, naming the function',
      { skip: !built && 'native helper not built' },
      () => {
        const r = child(`
import { createRequire } from 'node:module';
import { nativeModulePath } from './src/tensor/backends/native.js';
const m = createRequire(import.meta.url)(nativeModulePath());
const out = [];
for (const args of [[], [1], ['1', 2], [0, 1], [1, -1], [2 ** 31, 1]]) {
  try { m.setMallocThresholds(...args); out.push('accepted'); } catch (e) { out.push(e.constructor.name + ': ' + e.message); }
}
console.log(JSON.stringify(out));
`);
        assert.equal(r.status, 0, r.stderr);
        const out = JSON.parse(r.stdout.trim()) as string[];
        assert.equal(out.length, 6);
        for (const o of out)
          assert.equal(o, 'TypeError: setMallocThresholds(mmapThreshold, trimThreshold): two positive byte counts below 2^31');
      },
    );
  },
);
