/**
 * How many intra-op threads a session gets when `ortConfig.intraOpNumThreads` is 0: one per
 * physical core this process may run on, as ONNX Runtime intends its own default to be.
 *
 * ONNX Runtime's own count is wrong on some virtual machines: on this project's 2-vCPU AMD EPYC
 * machines (two cores of one thread each, per /sys) it ran every session on one thread (CPU time
 * per run equal to wall time, from Node and from Python alike), while PyTorch used both cores.
 * On Linux the count here comes from the kernel's topology files; elsewhere, or when those cannot
 * be read, it is null and ORT picks.
 */
import { nodeBuiltin } from '../node-builtin.js';

let cached: number | null | undefined;

/** Distinct (package, core) pairs among the online CPUs, at most the CPUs this process may use; null where unknown. */
export function physicalCoreCount(): number | null {
  if (cached !== undefined) return cached;
  cached = null;
  const fs = nodeBuiltin('node:fs');
  const os = nodeBuiltin('node:os');
  if (!fs || !os || process.platform !== 'linux') return cached;
  const { readFileSync, readdirSync } = fs;
  try {
    const base = '/sys/devices/system/cpu';
    const online = parseCpuList(readFileSync(`${base}/online`, 'utf8'));
    const cores = new Set<string>();
    for (const name of readdirSync(base)) {
      const m = /^cpu(\d+)$/.exec(name);
      if (!m || !online.has(Number(m[1]))) continue;
      const pkg = readFileSync(`${base}/${name}/topology/physical_package_id`, 'utf8').trim();
      const core = readFileSync(`${base}/${name}/topology/core_id`, 'utf8').trim();
      cores.add(`${pkg}:${core}`);
    }
    if (cores.size > 0) cached = Math.min(cores.size, os.availableParallelism());
  } catch {
    cached = null; // no topology files (some containers): ORT picks
  }
  return cached;
}

/** Parses a kernel CPU list such as `0-3,8,10-11`. */
export function parseCpuList(text: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`unreadable CPU list ${JSON.stringify(text.trim())}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return out;
}
