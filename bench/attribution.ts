/**
 * Attribution-graph benchmark (src/circuits): graph construction on the default model (gpt_neox,
 * 4 layers, d_model 192) with random per-layer transcoders (2048 features a layer, reading
 * ln2.hook_normalized), timed against a PyTorch reference of the same algorithm
 * (bench/attribution_torch.py: the frozen replacement model written by hand, batched backward
 * rows, the same row contractions) on a 32-token prompt in the same run; then glassbox's graph
 * size, time and peak memory at 16, 64 and 256 tokens.
 *
 *   node --import tsx bench/attribution.ts prepare      # writes bench/out/attribution_{spec.json,tc.safetensors}
 *   node --import tsx bench/attribution.ts run [torch.json]
 *
 * `bash bench/attribution.sh` runs both with the PyTorch side in between.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { HookedTransformer } from '../src/model/hooked.js';
import { PRNG, randn, ortConfig, type Tensor } from '../src/tensor/index.js';
import { loadSafetensors, saveSafetensors } from '../src/io/safetensors.js';
import { Sae } from '../src/sae/sae.js';
import { transcodersFromSaes } from '../src/sae/clt/from-saes.js';
import { attribute } from '../src/circuits/attribute.js';
import { nodeLayout } from '../src/circuits/graph.js';

ortConfig.intraOpNumThreads = 2; // as the PyTorch side (torch.set_num_threads(2))

const OUT = 'bench/out';
const WIDTH = 2048;
const LENGTHS = [16, 32, 64, 256];
/** Rows per backward pass on both sides for the 32-token comparison. */
const BATCH_32 = 64;
/** At 256 tokens, feature rows are capped (the most influential first), as circuit-tracer's max_feature_nodes. */
const MAX_FEATURES_256 = 512;

interface Spec {
  prompts: Record<string, number[]>;
  width: number;
  batch32: number;
}

/** A prompt of `n` tokens: random ids with its first half repeated (so induction has work to do). */
function prompt(n: number, seed: number): number[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) % 4000;
  const half = Array.from({ length: Math.ceil(n / 2) }, next);
  return [4095, ...half, ...half].slice(0, n);
}

function transcoders(model: HookedTransformer) {
  const t = loadSafetensors(`${OUT}/attribution_tc.safetensors`);
  const saes = Array.from({ length: model.cfg.nLayers }, (_, l) => {
    const sae = Sae.create({
      architecture: 'transcoder',
      d_in: 192,
      d_sae: WIDTH,
      d_out: 192,
      hook_name: `blocks.${l}.ln2.hook_normalized`,
      hook_name_out: `blocks.${l}.hook_mlp_out`,
    });
    const get = (k: string): Tensor => t.get(`${k}.${l}`)!;
    return sae.withParams({ W_enc: get('W_enc'), b_enc: get('b_enc'), W_dec: get('W_dec'), b_dec: get('b_dec') });
  });
  return transcodersFromSaes(saes, 'bench transcoders');
}

async function prepare(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const rng = new PRNG(1);
  const tensors: Record<string, Tensor> = {};
  for (let l = 0; l < 4; l++) {
    tensors[`W_enc.${l}`] = randn([192, WIDTH], { rng }).mul(1 / Math.sqrt(192));
    tensors[`b_enc.${l}`] = randn([WIDTH], { rng }).mul(0.1).sub(2.9);
    tensors[`W_dec.${l}`] = randn([WIDTH, 192], { rng }).mul(0.05);
    tensors[`b_dec.${l}`] = randn([192], { rng }).mul(0.01);
  }
  saveSafetensors(`${OUT}/attribution_tc.safetensors`, tensors);
  const spec: Spec = { prompts: Object.fromEntries(LENGTHS.map((n) => [String(n), prompt(n, n)])), width: WIDTH, batch32: BATCH_32 };
  writeFileSync(`${OUT}/attribution_spec.json`, JSON.stringify(spec));
}

const maxRssMb = (): number => process.resourceUsage().maxRSS / 1024;

async function run(torchJson: string | undefined): Promise<void> {
  const spec = JSON.parse(readFileSync(`${OUT}/attribution_spec.json`, 'utf8')) as Spec;
  const torch = torchJson
    ? (JSON.parse(readFileSync(torchJson, 'utf8')) as {
        torch: string;
        ms32: number;
        ms32ByThreads: Record<string, number>;
        rows32: number;
        nActive32: number;
        logits32: number[];
        rowSample: number[];
      })
    : null;
  const model = await HookedTransformer.fromPretrained('default');
  const tc = transcoders(model);
  // The 32-token comparison: same prompt, same transcoders, same rows per pass.
  const p32 = spec.prompts['32']!;
  const go = () => attribute(model, p32, tc, { maxBatch: spec.batch32 });
  let g = go(); // warm-up: compiles the sessions
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    g = go();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const ms32 = times[1]!;
  const L32 = nodeLayout(g);
  let agree = '';
  if (torch) {
    // The torch rows of the first logit: compare with glassbox's row over [features, errors, tokens].
    const row = Array.from(g.adjacency.subarray(L32.logitStart * L32.n, L32.logitStart * L32.n + L32.logitStart));
    let m = 0;
    let scale = 0;
    row.forEach((v, i) => {
      m = Math.max(m, Math.abs(v - torch.rowSample[i]!));
      scale = Math.max(scale, Math.abs(v));
    });
    agree = `active features ${g.activationValues.length} vs torch ${torch.nActive32}; logits ${JSON.stringify(g.logitTokens) === JSON.stringify(torch.logits32) ? 'same' : 'DIFFER'}; first logit row max |diff| ${m.toExponential(2)} (max |edge| ${scale.toFixed(3)})`;
  }
  const compare = {
    case: 'attribution graph, default model, 32 tokens',
    rows: L32.nFeatures + L32.nLogits,
    glassboxMs: Math.round(ms32),
    torchMs: torch ? Math.round(torch.ms32) : null,
    ratio: torch ? +(ms32 / torch.ms32).toFixed(2) : null,
    note: `rows per pass ${spec.batch32}; PyTorch ${torch?.torch ?? '(not run)'}${
      torch
        ? `, the faster of ${Object.entries(torch.ms32ByThreads)
            .map(([k, v]) => `${k} threads ${Math.round(v)} ms`)
            .join(', ')}`
        : ''
    }`,
  };
  console.table([compare]);
  if (agree) console.log(agree);
  // Sizes: graph size, time, peak RSS (the process's high-water mark after each size, in increasing order).
  const sizes = [];
  for (const n of [16, 64, 256]) {
    const toks = spec.prompts[String(n)]!;
    const opts = n === 256 ? { maxFeatureNodes: MAX_FEATURES_256 } : {};
    attribute(model, toks, tc, opts); // warm-up (compiles this length's sessions)
    const t = performance.now();
    const gn = attribute(model, toks, tc, opts);
    const ms = performance.now() - t;
    const Ln = nodeLayout(gn);
    let edges = 0;
    for (const v of gn.adjacency) if (v !== 0) edges++;
    sizes.push({
      tokens: n,
      activeFeatures: gn.activationValues.length,
      featureNodes: Ln.nFeatures,
      nodes: Ln.n,
      nonzeroEdges: edges,
      glassboxMs: Math.round(ms),
      peakRssMb: Math.round(maxRssMb()),
    });
  }
  console.table(sizes);
  console.log(
    `(at 256 tokens feature rows are capped at ${MAX_FEATURES_256}, chosen by influence; rows per pass from the default memory budget elsewhere)`,
  );
  writeFileSync(`${OUT}/attribution.json`, JSON.stringify({ compare, agree, sizes }, null, 2));
}

const mode = process.argv[2];
if (mode === 'prepare') await prepare();
else if (mode === 'run') await run(process.argv[3]);
else throw new Error('usage: bench/attribution.ts prepare | run [torch.json]');
