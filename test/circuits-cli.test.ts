/**
 * `glassbox graph` end to end on a tiny saved model and per-layer transcoders saved in SAELens
 * layout: the graph JSON it writes, the unpruned graph it saves, and its refusals.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveSae } from '../src/sae/formats.js';
import { loadGraph } from '../src/circuits/graph-io.js';
import { loadTracingTranscoders } from '../src/circuits/load-transcoders.js';
import type { GraphJson } from '../src/circuits/graph-json.js';
import { tinyRandomModel } from './tiny-models.js';
import { randomPltSaes } from './circuits-helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function glassbox(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('glassbox graph', () => {
  it('writes the graph JSON and the unpruned graph; refuses a missing transcoder directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-graph-'));
    try {
      const model = tinyRandomModel(3);
      model.save(join(dir, 'model'));
      randomPltSaes(model, 11).forEach((sae, l) => saveSae(sae, join(dir, 'tc', `layer_${l}`)));
      const out = join(dir, 'g.json');
      const r = glassbox(
        'graph',
        join(dir, 'model'),
        '--tokens',
        '1,5,7,2,9,4',
        '--transcoders',
        join(dir, 'tc'),
        '--out',
        out,
        '--save-graph',
        join(dir, 'graph'),
      );
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /scores\s+replacement \d\.\d{3}, completeness \d\.\d{3}/);
      const j = JSON.parse(readFileSync(out, 'utf8')) as GraphJson;
      assert.equal(j.metadata.slug, 'g');
      assert.deepEqual(j.metadata.prompt_token_ids, [1, 5, 7, 2, 9, 4]);
      assert.equal(j.nodes.filter((n) => n.feature_type === 'embedding').length, 6);
      assert.ok(j.nodes.some((n) => n.feature_type === 'logit' && n.is_target_logit));
      const ids = new Set(j.nodes.map((n) => n.node_id));
      assert.ok(j.links.length > 0 && j.links.every((l) => ids.has(l.source) && ids.has(l.target)));
      const g = loadGraph(join(dir, 'graph'));
      assert.deepEqual(g.inputTokens, [1, 5, 7, 2, 9, 4]);
      const bad = glassbox('graph', join(dir, 'model'), '--tokens', '1,2', '--transcoders', join(dir, 'nope'), '--out', out);
      assert.equal(bad.code, 1);
      assert.match(bad.err, /nope: not a directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loadTracingTranscoders', () => {
  it('loads per-layer transcoders by layer; refuses one SAE, a missing layer, a CLT directory without weights', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-tc-'));
    try {
      const model = tinyRandomModel(3);
      const saes = randomPltSaes(model, 11);
      // Sub-directory names sort the other way round: the hook layer decides the order.
      saes.forEach((sae, l) => saveSae(sae, join(dir, 'ok', `z${1 - l}`)));
      const tc = loadTracingTranscoders(join(dir, 'ok'));
      assert.equal(tc.nLayers, 2);
      assert.equal(tc.inputHook(1), 'blocks.1.ln2.hook_normalized');
      assert.throws(() => loadTracingTranscoders(join(dir, 'ok', 'z0')), /z0[/\\]cfg\.json: 'transcoder' is one SAE or transcoder/);
      saveSae(saes[1]!, join(dir, 'gap', 'b'));
      assert.throws(
        () => loadTracingTranscoders(join(dir, 'gap')),
        /hook_name 'blocks\.1\.ln2\.hook_normalized' is layer 1, but layer 0 is the next one missing/,
      );
      mkdirSync(join(dir, 'clt'));
      writeFileSync(join(dir, 'clt', 'cfg.json'), '{"architecture": "clt"}');
      assert.throws(() => loadTracingTranscoders(join(dir, 'clt')), /clt[/\\]sae_weights\.safetensors: not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
