/**
 * Builds native/build/glassbox_native.node from native/glassbox_native.c (run by `npm install` /
 * `npm ci` as the package's install script, and by `npm run build:native`).
 *
 * Linux with glibc only (the module tunes glibc's allocator; see the C file for why). It needs a C
 * compiler ($CC, else `cc`; Debian: `apt-get install gcc`) and nothing else: no node-gyp, no Node
 * headers, nothing downloaded. Where it cannot build, it says why and exits 0: glassbox then runs
 * exactly as before, only slower where results are large (`mallocTuning()` says which, and why).
 * Set GLASSBOX_NATIVE=required to make a failed build fail the install instead.
 */
/* global process, console */
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'glassbox_native.c');
const outDir = join(here, 'build');
const out = join(outDir, 'glassbox_native.node');
const required = process.env.GLASSBOX_NATIVE === 'required';

function skip(why) {
  const msg = `glassbox: native helper not built (${why}); glassbox works without it, with large results slower (see bench/README.md)`;
  if (required) {
    console.error(`${msg}; GLASSBOX_NATIVE=required, so the install fails`);
    process.exit(1);
  }
  console.error(msg);
  process.exit(0);
}

if (process.env.GLASSBOX_NATIVE === 'skip') skip('GLASSBOX_NATIVE=skip');
if (process.platform !== 'linux') skip(`not needed on ${process.platform}: it tunes glibc's allocator`);
const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
if (!glibc) skip('this Linux does not use glibc');

const cc = process.env.CC || 'cc';
mkdirSync(outDir, { recursive: true });
// Compiled to a temporary name and renamed, so an interrupted build never leaves a partial module.
const tmp = `${out}.${process.pid}.tmp`;
const args = ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-fvisibility=hidden', '-o', tmp, source];
const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
if (r.error || r.status !== 0) {
  rmSync(tmp, { force: true });
  const detail = r.error ? r.error.message : `${cc} exited with ${r.status}: ${(r.stderr || '').trim().split('\n').slice(-3).join(' / ')}`;
  skip(`${cc} ${args.join(' ')} failed: ${detail}`);
}
renameSync(tmp, out);
console.error(`glassbox: built ${out} (glibc ${glibc})`);
