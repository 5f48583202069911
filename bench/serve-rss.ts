/**
 * Memory of `glassbox serve default --sae DIR` with a wide dictionary's feature store: the server's
 * resident set (VmRSS) and its peak (VmHWM) after it has listed the dictionary and served
 * `--pages` feature pages, against the same server with no dictionary attached.
 *
 * 1. `--build`: a random TopK SAE (`--width` features, k 32) on the default model at
 *    blocks.1.hook_resid_post, and its feature store over `--tokens` corpus tokens (`--samples`
 *    per feature), written to `--dir`;
 * 2. for each checkout in `--repo` (default: this one; pass another glassbox tree to compare, e.g.
 *    `git archive BASE | tar -x -C /tmp/base` with node_modules linked), start its CLI's serve
 *    with and without the SAE, fetch /api/saes and the pages, read /proc/PID/status, stop it.
 *
 * Usage: node --import tsx bench/serve-rss.ts --dir /tmp/rss [--build] [--width 16384]
 *        [--tokens 8192] [--samples 32] [--pages 20] [--repo DIR ...]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/model/index.js';
import { Sae, collectFeatures, defaultCorpusTokens, saveFeatureStore, saveSae } from '../src/sae/index.js';

const HERE = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    build: { type: 'boolean', default: false },
    width: { type: 'string', default: '16384' },
    tokens: { type: 'string', default: '8192' },
    samples: { type: 'string', default: '32' },
    pages: { type: 'string', default: '20' },
    repo: { type: 'string', multiple: true },
  },
});
if (!values.dir) throw new Error('--dir is required (where the SAE and its store are, or go with --build)');
const dir = resolve(values.dir);
const width = Number(values.width);
const pages = Number(values.pages);

if (values.build) {
  const model = await loadModel('default');
  const sae = Sae.create(
    { architecture: 'topk', d_in: model.cfg.dModel, d_sae: width, k: 32, hook_name: 'blocks.1.hook_resid_post', model_name: 'default' },
    { seed: 1 },
  );
  saveSae(sae, dir);
  const corpus = defaultCorpusTokens(model.tokenizer!, { eosTokenId: model.cfg.eosTokenId });
  const t0 = performance.now();
  const store = collectFeatures(model, sae, corpus.ids, {
    batches: Math.ceil(Number(values.tokens) / (8 * 128)),
    batchSize: 8,
    contextSize: 128,
    samples: Number(values.samples),
    description: corpus.description,
    modelName: 'default',
  });
  saveFeatureStore(store, join(dir, 'features'));
  console.log(
    `built ${dir}: ${width} features over ${store.meta.corpus.tokens} tokens in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
}

/** VmRSS and VmHWM of a process, in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Serves with `repo`'s CLI (and the SAE when `withSae`), reads the pages, returns its memory. */
async function measure(repo: string, withSae: boolean): Promise<{ rss: number; peak: number }> {
  const args = [join(repo, 'src', 'cli', 'main.ts'), 'serve', 'default', '--port', '0', ...(withSae ? ['--sae', dir] : [])];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    const url = await new Promise<string>((ok, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`no server after 300 s:\n${stderr}`)), 300_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) {
          clearTimeout(timer);
          ok(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`the server exited (${code}):\n${stderr}`));
      });
    });
    if (withSae) {
      const list = (await (await fetch(new URL('/api/saes', url))).json()) as { saes: { id: string }[] };
      const id = list.saes[0]!.id;
      for (let i = 0; i < pages; i++) {
        const f = Math.floor((i * width) / pages);
        const res = await fetch(new URL(`/api/features/${id}/${f}`, url));
        if (res.status !== 200) throw new Error(`page ${f}: ${res.status} ${await res.text()}`);
      }
    }
    return memory(child.pid!);
  } finally {
    child.kill('SIGTERM');
  }
}

for (const repo of values.repo?.map((r) => resolve(r)) ?? [HERE]) {
  const bare = await measure(repo, false);
  const attached = await measure(repo, true);
  console.log(
    `${repo}: serve without --sae RSS ${bare.rss.toFixed(0)} MiB (peak ${bare.peak.toFixed(0)}); ` +
      `with the ${width}-wide store and ${pages} pages RSS ${attached.rss.toFixed(0)} MiB (peak ${attached.peak.toFixed(0)}), ` +
      `+${(attached.rss - bare.rss).toFixed(0)} MiB (peak +${(attached.peak - bare.peak).toFixed(0)})`,
  );
}
