import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Runs in a child process with --expose-gc so the heap can be measured after collection.
const script = `
import { randn, tensor, sessionCacheSize } from './src/index.js';
const a = randn([64, 64], { seed: 1 });
const small = tensor([1, 2, 3, 4]);
const samples = [];
for (let i = 1; i <= 10000; i++) {
  const y = a.matmul(a).mul(0.01).add(a).sum(-1);     // ORT one-node sessions
  const z = small.mul(i % 7).add(1).exp().sum();       // JS kernels
  if (!Number.isFinite(z.item()) || y.shape[0] !== 64) throw new Error('bad value');
  if (i % 2000 === 0) { globalThis.gc(); samples.push(process.memoryUsage().heapUsed); }
}
console.log(JSON.stringify({ samples, sessions: sessionCacheSize() }));
`;

describe('memory', () => {
  it('10,000 eager ops in a loop do not grow memory without bound', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const { samples, sessions } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { samples: number[]; sessions: number };
    const growth = samples[samples.length - 1]! - samples[0]!;
    assert.ok(growth < 20 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MB between op 2,000 and 10,000: ${samples}`);
    assert.ok(sessions <= 8, `session cache holds ${sessions} sessions for 4 distinct ops`);
  });
});
