/**
 * The CLI's own behaviour (each case spawns `glassbox`, about 2 s): flags and files it parses,
 * program-wide flags (--check-finite, --allow-long-context), its one-line errors and exit code 1
 * where the issue saw a V8 abort, raw messages or silent runs.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { saveSae } from '../../src/sae/formats.js';
import { Sae } from '../../src/sae/sae.js';
import { tensor } from '../../src/tensor/index.js';
import { readAll } from '../fixture-utils.js';
import { DEFAULT_DIR, HF, REPO, freshDir, modelDir, tensorsOf, writeWeights } from './build.js';
import type { Case } from './harness.js';

/** Runs the CLI (with a watchdog): its stdout, or an Error holding its one-line message. */
function glassbox(...args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 120_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, HF_HUB_OFFLINE: '1' },
  });
  if (r.error) throw new TypeError(`glassbox ${args[0]}: ${r.error.message}`);
  if (r.status === 0) return r.stdout;
  const lines = r.stderr.trim().split('\n');
  // Anything but exit 1 with one 'glassbox: ...' line is a crash (134 was V8's abort).
  if (r.status !== 1 || lines.length !== 1 || !lines[0]!.startsWith('glassbox: '))
    throw new TypeError(`exit ${r.status ?? r.signal}, stderr: ${r.stderr.slice(0, 600)}`);
  throw new Error(lines[0]);
}

const DEF = DEFAULT_DIR.replace(/\/$/, '');
const ids = (n: number) => Array.from({ length: n }, (_, i) => (i * 37) % 4000).join(',');

export function cliCases(): Case[] {
  return [
    {
      name: 'run --tokens "" (ran as [0])',
      run: () => glassbox('run', 'default', '--tokens', ''),
      error: /^glassbox: --tokens: entry 1 is empty$/,
    },
    {
      name: 'heads default --seq-len 1000 (all-zero scores after 69 s)',
      run: () => glassbox('heads', 'default', '--seq-len', '1000'),
      error: /seqLen 1000 does not fit the context of 256 twice/,
    },
    {
      name: 'inspect default counts the tied unembedding once (printed 3,352,704)',
      run: () => glassbox('inspect', 'default'),
      check: (out) => {
        let n = 0;
        for (const t of readAll(join(DEF, 'model.safetensors')).values()) n += t.size;
        const m = /parameters\s+([\d,]+)/.exec(out as string);
        if (!m || Number(m[1]!.replace(/,/g, '')) !== n) throw new Error(`printed ${m?.[1]}, the checkpoint holds ${n}`);
      },
    },
    {
      name: '--check-finite names the tensor holding NaN',
      run: () => {
        const dir = modelDir(`${HF}gpt2`, 'cli-nan', { files: { 'model.safetensors': null } });
        const t = tensorsOf(`${HF}gpt2`);
        const w = Float32Array.from(t.get('transformer.ln_f.weight')!.dataSync() as Float32Array);
        w[3] = NaN;
        t.set('transformer.ln_f.weight', tensor(w, [64]));
        writeWeights(dir, t);
        return glassbox('run', dir, '--check-finite', '--tokens', '1,2');
      },
      error: /model\.safetensors: tensor 'transformer\.ln_f\.weight' holds NaN at \[3\]/,
    },
    {
      name: '--allow-long-context runs them',
      run: () => glassbox('--allow-long-context', 'run', 'default', '--tokens', ids(300)),
      check: (out) => {
        if ((out as string).trim().split('\n').length !== 10) throw new Error(`printed ${String(out)}`);
      },
    },
    {
      name: 'sae eval with an SAE trained on another model',
      run: () => {
        const dir = freshDir('cli-sae');
        saveSae(
          Sae.create(
            { architecture: 'standard', d_in: 192, d_sae: 16, hook_name: 'blocks.1.hook_resid_pre', model_name: 'gpt2-small' },
            { seed: 1 },
          ),
          dir,
        );
        return glassbox('sae', 'eval', '--model', 'default', '--sae', dir, '--tokens', '64');
      },
      error: /trained on model_name 'gpt2-small'.*--allow-model-mismatch/,
    },
    {
      name: 'serve --host 0.0.0.0 without --allowed-hosts',
      run: () => glassbox('serve', 'default', '--host', '0.0.0.0', '--port', '0'),
      error: /--allowed-hosts/,
    },
    {
      name: 'num_hidden_layers 1e9 (a V8 abort after 52 s)',
      run: () => glassbox('inspect', modelDir(DEF, 'cli-1e9', { config: (c) => ({ ...c, num_hidden_layers: 1e9 }) })),
      error: /config\.json: field 'num_hidden_layers' must be at most 65536, got 1000000000/,
    },
  ];
}
