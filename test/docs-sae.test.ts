/**
 * docs/sae.md's explanation and export commands, run as written (through `glassbox`'s CLI) on a
 * small store of the default model: the stub chat server of examples/chat-stub.ts stands in for
 * the endpoint the doc starts, `runs/` is a temporary directory. Checks the files the doc says
 * they write.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sae, saveSae } from '../src/sae/index.js';
import { readExplanations } from '../src/sae/explain/index.js';
import { startChatStub } from '../examples/chat-stub.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/sae.md'), 'utf8');

/** The doc's `npm run glassbox -- ...` command lines that start with `prefix` (continuations joined). */
function docCommands(prefix: string): string[] {
  const joined = DOC.replace(/\\\n\s*/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`npm run glassbox -- ${prefix}`));
}

/** Runs a doc line through the CLI, asynchronously: the stub server answers from this process. */
function glassbox(line: string, replace: [string, string][]): Promise<{ code: number; out: string; err: string }> {
  let l = line;
  for (const [a, b] of replace) l = l.split(a).join(b);
  const args = l.replace(/^npm run glassbox -- /, '').split(/\s+/);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { cwd: ROOT, encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20, env: { ...process.env, OPENAI_API_KEY: '' } },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: stdout, err: stderr }),
    );
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'glassbox-docs-sae-'));
let stub: Awaited<ReturnType<typeof startChatStub>> | null = null;
let replace: [string, string][] = [];

before(async () => {
  stub = await startChatStub(0);
  replace = [
    ['http://127.0.0.1:8089/v1', stub.apiBase],
    ['runs/', `${tmp}/runs/`],
  ];
  // the doc's SAE, small: same hook point, a narrower random dictionary (training is the doc's first step, tested elsewhere)
  const sae = Sae.create(
    { architecture: 'topk', d_in: 192, d_sae: 48, k: 8, hook_name: 'blocks.1.hook_resid_post' },
    { seed: 5, decoderInitNorm: 1 },
  );
  saveSae(sae, join(tmp, 'runs', 'sae-topk'));
});

after(async () => {
  await stub?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('docs/sae.md: explanations and the Neuronpedia export', () => {
  it('features, explain (against the stub), show and export-neuronpedia run as the doc writes them', async () => {
    const features = await glassbox('sae features --sae runs/sae-topk --tokens 2048 --batch-size 8 --out runs/sae-topk/features', replace);
    assert.equal(features.code, 0, features.err);

    const explain = docCommands('sae explain').filter((l) => l.includes('127.0.0.1:8089'));
    assert.equal(explain.length, 1, 'the doc has one explain command against the stub');
    const r = await glassbox(explain[0]!, replace);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /explanations\.jsonl: \d+ explained, 0 already there, 0 failed; mean detection balanced accuracy/);
    const store = join(tmp, 'runs', 'sae-topk', 'features');
    const explanations = readExplanations(store);
    assert.ok(explanations.size > 0);
    assert.ok(
      [...explanations.values()].some((e) => e.score !== null),
      'some explanations are scored',
    );
    for (const e of explanations.values()) {
      assert.match(e.explanation, /^the token "/);
      // null when a feature fired in too few contexts to hold any out
      if (e.score !== null) assert.ok(e.score.balanced_accuracy >= 0 && e.score.balanced_accuracy <= 1, JSON.stringify(e));
      assert.equal(e.explainer.api_base, stub!.apiBase);
    }
    const show = docCommands('sae show').filter((l) => l.includes('--contexts 2'));
    assert.equal(show.length, 1);
    const feature = Number(/--feature (\d+)/.exec(show[0]!)![1]);
    const first = [...explanations.keys()][0]!;
    const shown = await glassbox(show[0]!.replace(`--feature ${feature}`, `--feature ${first}`), replace);
    assert.equal(shown.code, 0, shown.err);
    assert.ok(shown.out.includes(`explanation ${JSON.stringify(explanations.get(first)!.explanation)} (stub, `), shown.out);
    // run again: resumes, nothing new
    const again = await glassbox(explain[0]!, replace);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /0 explained, \d+ already there, 0 failed/);

    const exportLine = docCommands('sae export-neuronpedia');
    assert.equal(exportLine.length, 1);
    const x = await glassbox(exportLine[0]!, replace);
    assert.equal(x.code, 0, x.err);
    const dir = join(tmp, 'runs', 'neuronpedia', 'default', '1-glassbox-res-topk');
    assert.match(x.out, new RegExp(`wrote ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ features`));
    for (const f of [
      'release.jsonl',
      'model.jsonl',
      'sourceset.jsonl',
      'source.jsonl',
      'features/batch-0.jsonl.gz',
      'activations/batch-0.jsonl.gz',
    ])
      assert.ok(existsSync(join(dir, f)), f);
    assert.ok(readdirSync(join(dir, 'explanations')).length > 0);
  });

  it('the doc names the built-in releases loadSae resolves', () => {
    for (const name of ['gpt2-small-res-jb', 'gemma-scope-2b-pt-res-canonical', 'llama_scope_lxr_8x', 'GLASSBOX_SAE_RELEASES'])
      assert.ok(DOC.includes(name), name);
  });
});
