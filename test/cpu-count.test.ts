import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseCpuList, physicalCoreCount } from '../src/tensor/backends/cpu.js';

describe('intra-op threads: physical cores', () => {
  it('parses kernel CPU lists, and refuses what it cannot read', () => {
    assert.deepEqual([...parseCpuList('0-3,8,10-11\n')], [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual([...parseCpuList('0')], [0]);
    assert.deepEqual([...parseCpuList('')], []);
    assert.throws(() => parseCpuList('0-x'), /unreadable CPU list "0-x"/);
  });

  it(
    'counts one per (package, core) among the online CPUs, at most the CPUs this process may use',
    { skip: process.platform !== 'linux' && 'Linux only' },
    () => {
      const n = physicalCoreCount();
      let expected: number | null;
      try {
        const online = parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
        const topology = (c: number, f: string) => readFileSync(`/sys/devices/system/cpu/cpu${c}/topology/${f}`, 'utf8').trim();
        const pairs = new Set([...online].map((c) => `${topology(c, 'physical_package_id')}:${topology(c, 'core_id')}`));
        expected = Math.min(pairs.size, availableParallelism());
      } catch {
        expected = null; // no topology files (some containers): ORT picks
      }
      assert.equal(n, expected);
      assert.equal(physicalCoreCount(), n); // computed once
    },
  );
});
