/**
 * `glassbox tuned-lens train`, driven as a user would: it writes a lens that loads back for the
 * model, training.json with its settings and the held-out KL the library computes for that lens,
 * and refuses what it cannot do by flag.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HookedTransformer } from '../src/model/index.js';
import { compareLenses, loadTunedLens } from '../src/analysis/index.js';
import { defaultCorpusTokens } from '../src/sae/contexts.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
function glassbox(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('glassbox tuned-lens train', () => {
  it('writes a lens that loads for the model, and training.json with the held-out KL of that lens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-tuned-lens-'));
    try {
      const out = join(dir, 'lens');
      const flags = ['--steps', '3', '--contexts', '4', '--held-out', '2', '--context-size', '16', '--batch-size', '2', '--no-progress'];
      const r = glassbox('tuned-lens', 'train', 'default', '--out', out, ...flags);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^wrote .*: a tuned lens for 4 layers \(d_model 192\), 3 steps/);
      assert.match(
        r.out,
        /held-out KL to the final distribution \(nats\), 2 rows of 16 tokens:\n {2}0_pre {6}logit \d+\.\d{3} {2}tuned \d+\.\d{3}/,
      );
      for (const f of ['config.json', 'params.safetensors', 'training.json', 'metrics.jsonl']) assert.ok(existsSync(join(out, f)), f);
      const model = await HookedTransformer.fromPretrained('default');
      const lens = loadTunedLens(out, model);
      const record = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8')) as {
        settings: Record<string, unknown>;
        heldOutKl: { label: string; logitLens: number; tunedLens: number }[];
      };
      assert.deepEqual(record.settings, {
        steps: 3,
        batchSize: 2,
        contextSize: 16,
        contexts: 4,
        heldOut: 2,
        lr: 0.001,
        weightDecay: 0,
        seed: 0,
        optimizer: 'adam',
      });
      // The held-out rows: BOS and the next 15 tokens of the validation split, twice.
      const ids = defaultCorpusTokens(model.tokenizer!, { eosTokenId: model.cfg.eosTokenId, split: 'validation' }).ids;
      const bos = model.cfg.bosTokenId!;
      const rows = [0, 1].map((i) => [bos, ...Array.from(ids.slice(i * 15, (i + 1) * 15))]);
      const kl = compareLenses(model, rows, lens);
      assert.deepEqual(
        record.heldOutKl.map((x) => x.label),
        kl.labels,
      );
      record.heldOutKl.forEach((x, i) => {
        assert.ok(Math.abs(x.logitLens - kl.logitLens[i]!) < 1e-4, `${x.label} logit: ${x.logitLens} vs ${kl.logitLens[i]}`);
        assert.ok(Math.abs(x.tunedLens - kl.tunedLens![i]!) < 1e-4, `${x.label} tuned: ${x.tunedLens} vs ${kl.tunedLens![i]}`);
      });
      // A finished run is not overwritten by accident; bad flags are refused by name.
      const again = glassbox('tuned-lens', 'train', 'default', '--out', out, ...flags);
      assert.equal(again.code, 1);
      const big = glassbox('tuned-lens', 'train', 'default', '--out', join(dir, 'x'), '--context-size', '999', '--no-progress');
      assert.equal(big.code, 1);
      assert.match(big.err, /--context-size 999 exceeds the model's context of 256/);
      const batch = glassbox('tuned-lens', 'train', 'default', '--out', join(dir, 'x'), '--contexts', '4', '--batch-size', '8');
      assert.match(batch.err, /--batch-size 8 exceeds --contexts 4/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
