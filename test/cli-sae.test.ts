/**
 * `glassbox sae eval | features | show` on the default model, driven as a child process (through
 * src/cli/main.ts once it registers the group; until then through a one-line program calling
 * registerSae), with the numbers checked against the library.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HookedTransformer } from '../src/model/index.js';
import { Sae, saveSae } from '../src/sae/index.js';
import { evaluateSae, type SaeEvalReport } from '../src/sae/evals.js';
import { featurePage, loadFeatureStore } from '../src/sae/features/index.js';
import { defaultCorpusTokens } from '../src/sae/contexts.js';
import { writeTokenFile } from '../src/train/tokens.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN_REGISTERS_SAE = /registerSae\(/.test(readFileSync(join(ROOT, 'src/cli/main.ts'), 'utf8'));
/** A stand-in for main.ts: the same error handling (one line on stderr, exit code 1). */
const HARNESS = `
import { Command } from 'commander';
import { registerSae } from './src/cli/sae.ts';
const program = new Command('glassbox');
registerSae(program);
try { await program.parseAsync(process.argv.slice(1), { from: 'user' }); }
catch (e) { process.stderr.write('glassbox: ' + String(e instanceof Error ? e.message : e).split('\\n')[0] + '\\n'); process.exit(1); }
`;

function glassbox(...args: string[]): { code: number; out: string; err: string } {
  const argv = MAIN_REGISTERS_SAE
    ? ['--import', 'tsx', 'src/cli/main.ts', ...args]
    : ['--import', 'tsx', '--input-type=module', '-e', HARNESS, ...args];
  const r = spawnSync(process.execPath, argv, { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('glassbox sae', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-sae-'));
  const model = await HookedTransformer.fromPretrained('default');
  const saeDir = join(dir, 'sae');
  const sae = Sae.create(
    { architecture: 'standard', d_in: 192, d_sae: 96, hook_name: 'blocks.1.hook_resid_pre' },
    { seed: 4, decoderInitNorm: 1 },
  );
  saveSae(sae, saeDir);
  const store = join(dir, 'features');

  it('eval prints the metrics and writes the report the library computes', () => {
    const file = join(dir, 'eval.json');
    const r = glassbox('sae', 'eval', '--model', 'default', '--sae', saeDir, '--tokens', '1024', '--batch-size', '4', '--json', file);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /CE loss recovered\s+-?\d/);
    assert.match(r.out, /explained variance/);
    const report = JSON.parse(readFileSync(file, 'utf8')) as SaeEvalReport;
    assert.equal(report.data.tokens, 1024); // 2 batches of 4 contexts of 128
    assert.equal(report.data.contextSize, 128);
    assert.equal(report.data.prependBos, true);
    const { ids } = defaultCorpusTokens(model.tokenizer!, { eosTokenId: model.cfg.eosTokenId });
    const lib = evaluateSae(model, sae, ids, { batches: 2, batchSize: 4, contextSize: 128 });
    const close = (a: number | null, b: number | null) => assert.ok(Math.abs(a! - b!) <= 1e-6 * Math.max(1, Math.abs(b!)), `${a} vs ${b}`);
    close(report.modelPerformance!.ceLossScore, lib.modelPerformance!.ceLossScore);
    close(report.reconstruction.explainedVariance, lib.reconstruction.explainedVariance);
    close(report.sparsity.l0, lib.sparsity.l0);
    assert.equal(report.sparsity.deadFeatures, lib.sparsity.deadFeatures);
    assert.match(report.data.description, /validation split/);
  });

  it('features builds a store that show prints, as text and as the page the library gives', () => {
    const r = glassbox('sae', 'features', '--sae', saeDir, '--out', store, '--tokens', '1024', '--top-k', '5', '--batch-size', '4');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /96 features over \d+ tokens \(8 contexts of 128\), top 5 contexts each/);
    const s = loadFeatureStore(store);
    assert.equal(s.meta.top_k, 5);
    assert.equal(s.meta.corpus.tokens, 1024);
    assert.equal(s.meta.model.name, 'default');
    assert.ok(s.meta.token_strings && s.meta.token_strings.ids.length > 0);
    const live = Array.from(s.stats.fireCount).findIndex((c) => c > 0);
    assert.ok(live >= 0);

    const text = glassbox('sae', 'show', '--features', store, '--feature', String(live), '--contexts', '2');
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, new RegExp(`^feature ${live}\\n`));
    assert.match(text.out, /top contexts\n.*\[\[.*\]\]/);
    assert.match(text.out, /promotes .*\nsuppresses /);

    const json = glassbox('sae', 'show', '--features', store, '--feature', String(live), '--json');
    assert.equal(json.code, 0, json.err);
    assert.deepEqual(JSON.parse(json.out), JSON.parse(JSON.stringify(featurePage(s, live))));
  });

  it('reads --token-file and --text', async () => {
    const bin = join(dir, 'tokens.bin');
    const ids = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 4000);
    await writeTokenFile(bin, [ids], { vocabSize: 4096, eosTokenId: 4095 });
    const file = join(dir, 'tf.json');
    const r = glassbox('sae', 'eval', '--sae', saeDir, '--token-file', bin, '--tokens', '512', '--context-size', '64', '--json', file);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(readFileSync(file, 'utf8')) as SaeEvalReport;
    assert.equal(report.data.description, bin);
    assert.equal(report.data.contextSize, 64);
    assert.equal(report.data.tokens, 512);

    const txt = join(dir, 'text.txt');
    writeFileSync(
      txt,
      'Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about a little.\n\n'.repeat(20),
    );
    const out = join(dir, 'features-text');
    const t = glassbox(
      'sae',
      'features',
      '--sae',
      saeDir,
      '--text',
      txt,
      '--out',
      out,
      '--tokens',
      '256',
      '--context-size',
      '32',
      '--top-k',
      '3',
    );
    assert.equal(t.code, 0, t.err);
    assert.equal(loadFeatureStore(out).meta.corpus.description, txt);
  });

  it('fails with one line naming the problem', () => {
    const cases: [string[], RegExp][] = [
      [['sae', 'eval', '--sae', join(dir, 'missing')], /missing\/cfg\.json: not found/],
      [['sae', 'eval', '--sae', saeDir, '--text', 'a', '--token-file', 'b'], /--text or --token-file, not both/],
      [['sae', 'eval', '--sae', saeDir, '--tokens', 'many'], /--tokens must be an integer/],
      [['sae', 'show', '--features', store, '--feature', '96'], /feature 96 is out of range/],
      [['sae', 'show', '--features', join(dir, 'none'), '--feature', '0'], /none\/features\.json: not found/],
      [
        ['sae', 'features', '--sae', saeDir, '--out', join(dir, 'fresh'), '--resume'],
        /--resume: .*fresh\/\.checkpoint holds no checkpoint/,
      ],
      [['sae', 'features', '--sae', saeDir, '--out', store, '--checkpoint-every', '-1'], /--checkpoint-every must be an integer/],
    ];
    for (const [args, pattern] of cases) {
      const r = glassbox(...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}`);
      assert.match(r.err, pattern);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
  });

  it('lists its subcommands', () => {
    const r = glassbox('sae', '--help');
    assert.equal(r.code, 0, r.err);
    for (const c of ['eval', 'features', 'show', 'train']) assert.match(r.out, new RegExp(`\\n\\s+${c}\\b`));
  });

  it('cleans up', () => rmSync(dir, { recursive: true, force: true }));
});
