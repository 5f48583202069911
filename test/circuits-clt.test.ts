/**
 * Cross-layer transcoders joined to attribution: a CLT saved by `saveClt` and opened by
 * `loadTracingTranscoders` (the `glassbox graph --transcoders` loader) traces the same graph as
 * the one in memory, with row sums plus biases equal to the values; `glassbox graph default`
 * runs on a saved CLT; the worked example (examples/induction-circuit.ts) runs end to end on a
 * tiny random CLT of the default model (the trained CLT is not in the repository).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor } from '../src/tensor/index.js';
import { attribute } from '../src/circuits/attribute.js';
import { nodeLayout } from '../src/circuits/graph.js';
import { intervene } from '../src/circuits/interventions.js';
import { loadTracingTranscoders, readTranscoderShape } from '../src/circuits/load-transcoders.js';
import { CrossLayerTranscoder, type CltConfig } from '../src/sae/clt/transcoder.js';
import { saveClt } from '../src/sae/clt/formats.js';
import type { GraphJson } from '../src/circuits/graph-json.js';
import { PRNG } from '../src/tensor/index.js';
import { tinyRandomModel } from './tiny-models.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A random JumpReLU CLT over ln2.hook_normalized -> hook_mlp_out, with random encoder biases so that some features fire and some do not. */
function randomJumpReluClt(nLayers: number, dModel: number, width: number, seed: number): CrossLayerTranscoder {
  const cfg: CltConfig = {
    n_layers: nLayers,
    d_in: dModel,
    d_out: dModel,
    widths: new Array<number>(nLayers).fill(width),
    activation: 'jumprelu',
    cross_layer: true,
    skip: false,
    hook_names_in: Array.from({ length: nLayers }, (_, l) => `blocks.${l}.ln2.hook_normalized`),
    hook_names_out: Array.from({ length: nLayers }, (_, l) => `blocks.${l}.hook_mlp_out`),
  };
  const base = CrossLayerTranscoder.init(cfg, { seed, threshold: 0.2, decoderNorm: 0.5 });
  const rng = new PRNG(seed + 1);
  const params = { ...base.params };
  for (let l = 0; l < nLayers; l++)
    params[`b_enc.${l}`] = tensor(
      Float32Array.from({ length: width }, () => rng.normal() * 0.3),
      [width],
    );
  return new CrossLayerTranscoder(cfg, params);
}

function glassbox(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('attribute on a CLT loaded from disk', () => {
  it('the loaded CLT traces the in-memory graph; logits reproduce; row sums + bias = values within 1e-4', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-clt-attr-'));
    try {
      const model = tinyRandomModel(3);
      const clt = randomJumpReluClt(model.cfg.nLayers, model.cfg.dModel, 10, 7);
      saveClt(clt, join(dir, 'clt'));
      const loaded = loadTracingTranscoders(join(dir, 'clt'));
      assert.ok(loaded instanceof CrossLayerTranscoder && loaded.crossLayer && loaded.activation === 'jumprelu');
      const tokens = [1, 5, 7, 2, 9, 4, 5, 7];
      const g = attribute(model, tokens, loaded, { maxBatch: 8 });
      const L = nodeLayout(g);
      assert.ok(L.nFeatures > 0 && L.nFeatures < model.cfg.nLayers * tokens.length * 10, `some but not all features fire (${L.nFeatures})`);
      // The replacement model with error nodes is the model.
      const rep = intervene(model, tokens, loaded, []);
      const a = rep.logits.dataSync() as Float32Array;
      const b = model.forward([tokens]).dataSync() as Float32Array;
      let logitDiff = 0;
      for (let i = 0; i < a.length; i++) logitDiff = Math.max(logitDiff, Math.abs(a[i]! - b[i]!));
      assert.ok(logitDiff < 1e-4, `replacement logits differ by ${logitDiff}`);
      // Row sum + bias = value for every feature and logit row.
      let worst = 0;
      for (const t of [
        ...Array.from({ length: L.nFeatures }, (_, i) => i),
        ...Array.from({ length: L.nLogits }, (_, i) => L.logitStart + i),
      ]) {
        let s = g.biases[t]!;
        for (let c = 0; c < L.n; c++) s += g.adjacency[t * L.n + c]!;
        worst = Math.max(worst, Math.abs(s - g.values[t]!));
      }
      assert.ok(worst < 1e-4, `row sum + bias vs value: ${worst}`);
      // Saving and loading lose nothing: the graph of the in-memory CLT is the same graph.
      const g0 = attribute(model, tokens, clt, { maxBatch: 8 });
      assert.deepEqual(Array.from(g0.activeFeatures), Array.from(g.activeFeatures));
      let edgeDiff = 0;
      for (let i = 0; i < g.adjacency.length; i++) edgeDiff = Math.max(edgeDiff, Math.abs(g.adjacency[i]! - g0.adjacency[i]!));
      assert.equal(edgeDiff, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a CLT directory whose weights are missing, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-clt-bad-'));
    try {
      const model = tinyRandomModel(3);
      saveClt(randomJumpReluClt(model.cfg.nLayers, model.cfg.dModel, 4, 1), join(dir, 'clt'));
      // Its shape (what serve --transcoders checks before the worker loads it) is read from cfg.json alone.
      const shape = readTranscoderShape(join(dir, 'clt'));
      const { nLayers: L, dModel: d } = model.cfg;
      assert.deepEqual([shape.nLayers, shape.dIn, shape.dOut, [...shape.widths]], [L, d, d, Array<number>(L).fill(4)]);
      assert.deepEqual(
        Array.from({ length: shape.nLayers }, (_, l) => [shape.inputHook(l), shape.outputHook(l)]),
        Array.from({ length: L }, (_, l) => [`blocks.${l}.ln2.hook_normalized`, `blocks.${l}.hook_mlp_out`]),
      );
      rmSync(join(dir, 'clt', 'sae_weights.safetensors'));
      assert.throws(() => loadTracingTranscoders(join(dir, 'clt')), /clt[/\\]sae_weights\.safetensors: not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the default model with a saved CLT (child processes)', () => {
  it('glassbox graph default PROMPT --transcoders CLT_DIR writes a graph; the induction example runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-clt-default-'));
    try {
      // The default model: gpt_neox, 4 layers, d_model 192.
      saveClt(randomJumpReluClt(4, 192, 16, 11), join(dir, 'clt'));
      const out = join(dir, 'g.json');
      const r = glassbox([
        'src/cli/main.ts',
        'graph',
        'default',
        'blue whale iron kettle. blue whale',
        '--transcoders',
        join(dir, 'clt'),
        '--out',
        out,
      ]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /scores\s+replacement \d\.\d{3}, completeness \d\.\d{3}/);
      const j = JSON.parse(readFileSync(out, 'utf8')) as GraphJson;
      assert.equal(j.nodes.filter((n) => n.feature_type === 'embedding').length, j.metadata.prompt_tokens.length);
      const active = /features\s+(\d+) active/.exec(r.out);
      assert.ok(active && Number(active[1]) > 0, `CLT features fire: ${r.out}`);
      assert.ok(j.nodes.some((n) => n.feature_type === 'logit' && n.is_target_logit));

      const ex = glassbox(['examples/induction-circuit.ts', join(dir, 'clt'), '--json', join(dir, 'example.json')]);
      assert.equal(ex.code, 0, ex.err);
      const report = JSON.parse(readFileSync(join(dir, 'example.json'), 'utf8')) as {
        earlierPosition: number;
        shareThroughEarlier: number;
        verify: { predicted: number; actual: number }[];
      };
      assert.equal(report.earlierPosition, 9, "the token after the first ' paper'");
      assert.ok(report.shareThroughEarlier >= 0 && report.shareThroughEarlier <= 1);
      assert.ok(report.verify.length > 0 && report.verify.every((v) => Number.isFinite(v.predicted) && Number.isFinite(v.actual)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
