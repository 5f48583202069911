/**
 * The child the kill-during-checkpoint test SIGKILLs: it runs `tinyRun` into OUT_DIR with the file
 * system functions the checkpoint writer uses wrapped so that, at one chosen moment of the
 * checkpoint of step STEP, it prints "BLOCKED" and waits forever for its kill. Moments:
 *   params-partial  half of params.safetensors written to its temporary file
 *   before-state    both tensor files in place in the temporary directory, state.json not yet
 *   before-dir      the temporary directory complete, not yet renamed to step-N
 *   before-latest   step-N renamed into place, latest.json not yet replaced
 *   before-prune    latest.json replaced, the oldest checkpoint not yet removed
 * Usage: checkpoint-kill-child.ts OUT_DIR STEP MOMENT
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';

const [outDir, stepArg, moment] = process.argv.slice(2);
const stepName = `step-${String(Number(stepArg)).padStart(8, '0')}`;
const inTmpDir = (p: string): boolean => p.includes(`.${stepName}.${process.pid}.tmp`);
const block = (): never => {
  process.stdout.write(`BLOCKED ${moment}\n`);
  // Wait for the kill; the timeout only guards against a parent that never sends it.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
  process.exit(3);
};

type Fn = (...args: unknown[]) => unknown;
/** node:fs as a mutable object: what is assigned here, syncBuiltinESMExports hands to every `import { ... } from 'node:fs'`. */
const fs = createRequire(import.meta.url)('node:fs') as Record<'openSync' | 'writeSync' | 'renameSync' | 'rmSync', Fn>;
const original = { ...fs };
const paths = new Map<unknown, string>();
fs.openSync = (...args) => {
  const fd = original.openSync(...args);
  paths.set(fd, String(args[0]));
  return fd;
};
fs.writeSync = (fd, buffer, ...rest) => {
  const path = paths.get(fd) ?? '';
  if (moment === 'params-partial' && inTmpDir(path) && basename(path).startsWith('.params.safetensors.')) {
    const half = Math.floor((buffer as Uint8Array).byteLength / 2);
    original.writeSync(fd, buffer, 0, half, 0);
    block();
  }
  return original.writeSync(fd, buffer, ...rest);
};
fs.renameSync = (from, to) => {
  const f = String(from);
  const t = String(to);
  if (moment === 'before-state' && inTmpDir(t) && basename(t) === 'state.json') block();
  if (moment === 'before-dir' && inTmpDir(f) && basename(t) === stepName) block();
  if (moment === 'before-latest' && basename(t) === 'latest.json' && existsSync(t.replace(/latest\.json$/, stepName))) block();
  return original.renameSync(from, to);
};
fs.rmSync = (path, options) => {
  const p = String(path);
  if (moment === 'before-prune' && /step-\d{8}$/.test(p) && !p.endsWith(stepName) && existsSync(p)) block();
  return original.rmSync(path, options);
};
syncBuiltinESMExports();

const { tinyRun } = await import('./tiny-run.js');
await tinyRun({ outDir: outDir!, steps: 6, checkpointEvery: 2 });
process.stdout.write('FINISHED\n');
