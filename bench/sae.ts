/**
 * SAE training benchmark: tokens per second of `trainSae`'s training step for a TopK SAE (d_in 256,
 * width 4096, k 32, batch 4096 activations, Adam, SAELens's decoder-norm rescaling), against the
 * same step in PyTorch (bench/sae_torch.py) on the same machine in the same run, 2 threads each.
 *
 * Two cases: 'topk' (no dead features, so no AuxK term: the common case early in training and
 * whenever every feature fires within the dead-feature window) and 'topk_auxk' (half the features
 * start with b_enc = -10, never fire and are dead from the third step, so the AuxK loss runs every
 * step: a second top-k over the dead features and a second decoder pass). The activations are
 * fixed random batches, cycled: the point is the training step. A glassbox step's time is the time
 * between consecutive batch requests, so it includes everything the loop does per step (tracing,
 * the compiled step, dead-feature bookkeeping, reading the loss).
 *
 * The two sides alternate (PyTorch case, glassbox case, for each case, `SAE_BENCH_ROUNDS` rounds,
 * default 2), so a load change on a shared machine hits both. Reported: the median step over all
 * rounds (the ratio) and the fastest step (a shared machine only ever adds time).
 *
 * Usage: node --import tsx bench/sae.ts [python]   (python: one with torch; without it, glassbox only)
 *
 * `node --import tsx bench/sae.ts --synthetic` instead prints the ground-truth table: every
 * architecture trained on synthetic activations with known features (src/sae/synthetic.ts), in a
 * clean setting and a harder one (correlated groups, exponential magnitudes, noise), scored by the
 * mean max cosine similarity (MMCS) and the recall of true features at cosine > 0.9.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { ortConfig, randn, tensor, type Tensor } from '../src/index.js';
import { Sae } from '../src/sae/index.js';
import { trainSae } from '../src/sae/training/trainer.js';
import { formatSyntheticResults, runSyntheticBenchmark, type SyntheticRun } from '../src/sae/synthetic.js';
import type { ActivationSource } from '../src/sae/training/activation-store.js';

ortConfig.intraOpNumThreads = 2;

const D_IN = 256;
const WIDTH = 4096;
const K = 32;
const BATCH = 4096;
const WARMUP = 4;
const STEPS = 8; // timed steps per run (bench/sae_torch.py times as many after the same warm-up)
const ROUNDS = Number(process.env.SAE_BENCH_ROUNDS ?? 2);
const GATED_L1 = 1.5;

interface TorchCase {
  ms: number;
  min_ms: number;
  steps_ms: number[];
}
const python = process.argv[2] && process.argv[2] !== '--synthetic' ? process.argv[2] : null;

/** One PyTorch run of a case (bench/sae_torch.py in a child process): its timed steps in ms. */
function torchSteps(name: string): number[] {
  const out = execFileSync(python!, [new URL('./sae_torch.py', import.meta.url).pathname, name], { encoding: 'utf8' });
  return (JSON.parse(out) as Record<string, TorchCase>)[name]!.steps_ms;
}

/** A source cycling through a few fixed batches, recording when each batch is requested. */
function timedSource(batches: Tensor[]): ActivationSource & { times: number[] } {
  let i = 0;
  const times: number[] = [];
  return {
    batchSize: BATCH,
    dIn: D_IN,
    dOut: undefined,
    metadata: { model_name: null, hook_name: null, context_size: null, prepend_bos: false, dataset_path: 'random' },
    times,
    next: () => {
      times.push(performance.now());
      return { x: batches[i++ % batches.length]! };
    },
    getState: () => i,
    setState: (s) => {
      i = s as number;
    },
  };
}

async function measure(deadFeatureWindow: number, deadHalf: boolean): Promise<{ steps: number[]; dead: number; auxLoss: number }> {
  let last: Record<string, number | string> = {};
  const batches = [0, 1, 2, 3].map((s) => randn([BATCH, D_IN], { seed: 10 + s }));
  const source = timedSource(batches);
  const sae = Sae.create({ architecture: 'topk', d_in: D_IN, d_sae: WIDTH, k: K });
  await trainSae({
    // Dead-half: b_enc = -10 for half the features, which then never fire (dead from the third step).
    sae: deadHalf
      ? sae.withParams({ ...sae.params, b_enc: tensor(Array.from({ length: WIDTH }, (_, i) => (i < WIDTH / 2 ? -10 : 0))) })
      : sae,
    store: source,
    totalTrainingSteps: WARMUP + STEPS + 1,
    lr: 3e-4,
    nEvalBatches: 0,
    deadFeatureWindow,
    logEvery: 1,
    progress: false,
    onLog: (r) => {
      if (r.kind === 'train') last = r;
    },
  });
  // Step i's time: from its batch request to the next one.
  const steps = source.times.slice(1).map((t, i) => t - source.times[i]!);
  return {
    steps: steps.slice(WARMUP, WARMUP + STEPS),
    dead: last['sparsity/dead_features'] as number,
    auxLoss: last['losses/auxiliary_reconstruction_loss'] as number,
  };
}

if (process.argv[2] === '--synthetic') await synthetic();
else await throughput();

async function synthetic(): Promise<void> {
  const runs: SyntheticRun[] = [
    { architecture: 'topk', options: { k: 4 } },
    { architecture: 'batchtopk', options: { k: 4 } },
    {
      architecture: 'matryoshka_batchtopk',
      options: { k: 4, cfg: { architecture: 'matryoshka_batchtopk', d_sae: 256, matryoshka_widths: [64, 256] } },
    },
    { architecture: 'jumprelu', options: { l0Coefficient: 0.1 } },
    { architecture: 'standard', options: { l1Coefficient: 0.3 } },
    { architecture: 'gated', options: { l1Coefficient: GATED_L1 } },
  ];
  const steps = Number(process.env.SAE_SYNTHETIC_STEPS ?? 1500);
  const settings = [
    { name: 'clean: 256 features in 64 dimensions, 4 active on average, uniform magnitudes in [0.5, 1.5]', options: {} },
    {
      name: 'hard: the same with correlated groups of 4 (co-fire 0.8), exponential magnitudes, noise 0.05',
      options: { correlation: { groupSize: 4, coFire: 0.8 }, magnitude: 'exponential' as const, noiseStd: 0.05 },
    },
  ];
  for (const setting of settings) {
    const results = await runSyntheticBenchmark({
      dIn: 64,
      nFeatures: 256,
      seed: 0,
      ...setting.options,
      runs,
      steps,
      batchSize: 1024,
      lr: 3e-3,
    });
    console.log(`\n${setting.name}; ${steps} steps of 1024, lr 3e-3, width 256\n`);
    console.log(formatSyntheticResults(results));
  }
}

async function throughput(): Promise<void> {
  const cases = [
    ['topk', 1000, false],
    ['topk_auxk', 1, true],
  ] as const;
  const times: Record<string, { glassbox: number[]; torch: number[]; note: string }> = {};
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, window, deadHalf] of cases) {
      const t = (times[name] ??= { glassbox: [], torch: [], note: '' });
      if (python) t.torch.push(...torchSteps(name));
      const r = await measure(window, deadHalf);
      t.glassbox.push(...r.steps);
      t.note = `${r.dead} dead features at the end, AuxK loss ${r.auxLoss.toFixed(3)}`;
      process.stderr.write(
        `round ${round + 1}/${ROUNDS} ${name}: glassbox ${fmt(r.steps)}${python ? ` | torch ${fmt(t.torch.slice(-STEPS))}` : ''}\n`,
      );
    }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows = cases.map(([name]) => {
    const t = times[name]!;
    const g = median(t.glassbox);
    const p = t.torch.length ? median(t.torch) : null;
    return {
      case: name,
      glassboxMs: g,
      torchMs: p,
      glassboxMinMs: Math.min(...t.glassbox),
      torchMinMs: p === null ? null : Math.min(...t.torch),
      glassboxTps: (BATCH * 1000) / g,
      torchTps: p === null ? null : (BATCH * 1000) / p,
      ratio: p === null ? null : p / g,
      note: t.note,
    };
  });
  console.log(
    `\nTopK SAE training step: d_in ${D_IN}, width ${WIDTH}, k ${K}, batch ${BATCH}, Adam, 2 threads; median (and fastest) of ${ROUNDS} x ${STEPS} steps per side, alternating (ratio = glassbox tokens/s / PyTorch tokens/s; above 1 glassbox is faster)\n`,
  );
  console.log('| case | glassbox ms/step | PyTorch ms/step | glassbox tokens/s | PyTorch tokens/s | ratio | note |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.case} | ${r.glassboxMs.toFixed(0)} (${r.glassboxMinMs.toFixed(0)}) | ${r.torchMs?.toFixed(0) ?? '-'} (${r.torchMinMs?.toFixed(0) ?? '-'}) | ${r.glassboxTps.toFixed(0)} | ${r.torchTps?.toFixed(0) ?? '-'} | ${r.ratio?.toFixed(2) ?? '-'} | ${r.note} |`,
    );
  mkdirSync(new URL('./out/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./out/sae.json', import.meta.url), JSON.stringify({ rows, times }, null, 2));
}

function fmt(xs: number[]): string {
  return xs.map((x) => x.toFixed(0)).join(' ');
}
