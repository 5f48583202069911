/**
 * SAE training: contexts addressed by index; the activation store (shapes, special tokens left
 * out, paired transcoder batches, an exact resume from a JSON state); activation caches on disk;
 * the schedules; trainSae (the loss falls, the SAELens files it writes, an exact resume after an
 * interruption, BatchTopK saved as JumpReLU, the input scaling folded, unit-norm decoders, the
 * auxiliary losses switching on with dead features); the `sae train` command.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { PRNG, Tensor, randn, tensor } from '../src/index.js';
import { loadFromDirectory } from '../src/model/index.js';
import { Sae, loadSae, runSae } from '../src/sae/index.js';
import { TokenFile, writeTokenFile } from '../src/train/index.js';
import { ActivationStore, type ActivationBatch, type ActivationSource } from '../src/sae/training/activation-store.js';
import { CachedActivationStore, cacheActivations, readActivationManifest } from '../src/sae/training/activation-cache.js';
import { defaultCorpusContexts, tokenContexts } from '../src/sae/contexts.js';
import { coefficientSchedule, saeLrSchedule } from '../src/sae/training/schedules.js';
import { trainSae } from '../src/sae/training/trainer.js';
import { registerSaeTrain } from '../src/cli/sae-train.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/tl/gpt2', import.meta.url));
const model = loadFromDirectory(FIXTURE); // GPT-2: 2 layers, d_model 64, vocab 320, context 64; BOS = EOS = 319
const BOS = 319;
const rng = new PRNG(3);
const TOKENS = Array.from({ length: 4000 }, () => rng.int(319));
const HOOK = 'blocks.1.hook_resid_post';

const vec = (t: Tensor): Float32Array => t.dataSync() as Float32Array;
const tmp = (): string => mkdtempSync(join(tmpdir(), 'gb-sae-train-'));

function store(options: Partial<ConstructorParameters<typeof ActivationStore>[1]> = {}): ActivationStore {
  return new ActivationStore(model, {
    hookName: HOOK,
    contexts: tokenContexts(TOKENS, { contextSize: 16, bosTokenId: BOS }),
    trainBatchSizeTokens: 48,
    storeBatchSizePrompts: 4,
    nBatchesInBuffer: 3,
    ...options,
  });
}

function sameBatches(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((x, i) => x.length === b[i]!.length && x.every((v, j) => v === b[i]![j]));
}

describe('contexts', () => {
  it('cuts windows with a BOS in front, addressable by index, every window once per epoch', () => {
    const ids = Array.from({ length: 100 }, (_, i) => i);
    const c = tokenContexts(ids, { contextSize: 11, bosTokenId: 999, seed: 5 });
    assert.equal(c.contextsPerEpoch, 10);
    const first = Array.from({ length: 9 }, (_, j) => Array.from(c.context(j)));
    for (const ctx of first) {
      assert.equal(ctx.length, 11);
      assert.equal(ctx[0], 999);
      for (let i = 2; i < 11; i++) assert.equal(ctx[i], ctx[i - 1]! + 1, 'consecutive ids');
    }
    // One epoch: windows at one phase, no two alike.
    const starts = first.map((ctx) => ctx[1]!);
    assert.equal(new Set(starts).size, starts.length);
    assert.equal(new Set(starts.map((s) => s % 10)).size, 1, 'one phase per epoch');
    // Random access agrees with a fresh source, any order.
    const again = tokenContexts(ids, { contextSize: 11, bosTokenId: 999, seed: 5 });
    for (const j of [37, 3, 12, 0]) assert.deepEqual(Array.from(again.context(j)), Array.from(c.context(j)));
    assert.throws(() => tokenContexts(ids.slice(0, 15), { contextSize: 11, bosTokenId: 999 }), /too few/);
    assert.throws(() => tokenContexts(ids, { contextSize: 11, prependBos: true }), /bosTokenId/);
  });
});

describe('the default corpus', () => {
  const defaultDir = fileURLToPath(new URL('../models/default', import.meta.url));
  it(
    'is tokenized as the default model was trained on it and kept as a token file',
    { skip: !existsSync(join(defaultDir, 'config.json')) },
    () => {
      const m = loadFromDirectory(defaultDir);
      const dir = tmp();
      try {
        const eos = m.cfg.eosTokenId!;
        const c = defaultCorpusContexts(m.tokenizer!, {
          contextSize: 64,
          bosTokenId: m.cfg.bosTokenId,
          eosTokenId: eos,
          vocabSize: m.cfg.dVocab,
          split: 'validation',
          cacheDir: dir,
        });
        const files = readdirSync(dir).filter((f) => f.endsWith('.bin'));
        assert.equal(files.length, 1, 'one cached token file');
        const file = TokenFile.open(join(dir, files[0]!));
        assert.ok(file.length > 50_000, `${file.length} tokens`);
        let docs = 0;
        for (const id of file.read(0, file.length)) if (id === eos) docs++;
        assert.ok(docs > 5, `${docs} documents, each ended by <|endoftext|>`);
        file.close();
        const ctx = c.context(3);
        assert.equal(ctx.length, 64);
        assert.equal(ctx[0], m.cfg.bosTokenId);
        assert.ok(m.tokenizer!.decode(Array.from(ctx.slice(1))).length > 100, 'real text');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('ActivationStore', () => {
  it('streams [batch, d_in] activations of the hook, mixing fills, and leaves out special tokens when asked', () => {
    const s = store();
    assert.equal(s.dIn, 64);
    assert.equal(s.capacity, 3 * 4 * 16);
    const b = s.next();
    assert.deepEqual(b.x.shape, [48, 64]);
    assert.equal(b.target, undefined);
    // The BOS position's residual is the same vector in every context (causal attention).
    const bos = vec(model.runWithCache([[BOS, 5]], { names: [HOOK] }).cache.get(HOOK)).slice(0, 64);
    const countBos = (st: ActivationStore): number => {
      let n = 0;
      for (let i = 0; i < 20; i++) {
        const x = vec(st.next().x);
        for (let r = 0; r < 48; r++) if (Math.abs(x[r * 64]! - bos[0]!) < 1e-6 && Math.abs(x[r * 64 + 7]! - bos[7]!) < 1e-6) n++;
      }
      return n;
    };
    assert.ok(countBos(store()) > 20, 'BOS rows are served by default');
    assert.equal(countBos(store({ excludeSpecialTokens: true })), 0);
    assert.equal(s.metadata.hook_name, HOOK);
    assert.equal(s.metadata.context_size, 16);
    assert.equal(s.metadata.prepend_bos, true);
    assert.throws(() => store({ hookName: 'blocks.1.hook_resid_pots' }), /not a hook point.*hook_resid_post/);
  });

  it('pairs input and output activations for transcoders', () => {
    const s = store({ hookName: 'blocks.0.hook_resid_mid', hookNameOut: 'blocks.0.hook_resid_mid' });
    const b = s.next();
    assert.deepEqual(b.target!.shape, [48, 64]);
    assert.deepEqual(Array.from(vec(b.x)), Array.from(vec(b.target!)), 'the same rows, in the same order');
    const t = store({ hookName: 'blocks.0.ln2.hook_normalized', hookNameOut: 'blocks.0.hook_mlp_out' });
    assert.equal(t.dOut, 64);
    assert.deepEqual(t.next().target!.shape, [48, 64]);
  });

  it('resumes exactly from a JSON state, rebuilding the buffer from the contexts', () => {
    const a = store({ seed: 9 });
    const all: Float32Array[] = [];
    let state: unknown;
    for (let i = 0; i < 14; i++) {
      if (i === 6) state = JSON.parse(JSON.stringify(a.getState()));
      all.push(vec(a.next().x));
    }
    const b = store({ seed: 9 });
    b.setState(state);
    const rest = Array.from({ length: 8 }, () => vec(b.next().x));
    assert.ok(sameBatches(rest, all.slice(6)), 'the resumed store serves the same batches');
    // Another seed shuffles differently; other settings refuse the state.
    const c = store({ seed: 10 });
    assert.ok(!sameBatches([vec(c.next().x)], [all[0]!]), 'another seed, other batches');
    assert.throws(() => store({ seed: 9, nBatchesInBuffer: 4 }).setState(state), /other settings/);
  });
});

describe('activation caches', () => {
  it('writes shards and a manifest, and trains from them with an exact resume', () => {
    const dir = tmp();
    try {
      const m = cacheActivations(store(), dir, { totalTokens: 480, shardTokens: 144 });
      assert.equal(m.total_tokens, 480);
      assert.deepEqual(
        m.shards.map((s) => s.file),
        ['shard_00000.safetensors', 'shard_00001.safetensors', 'shard_00002.safetensors', 'shard_00003.safetensors'],
      );
      assert.deepEqual(
        m.shards.map((s) => s.tokens),
        [144, 144, 144, 48],
      );
      assert.deepEqual(readActivationManifest(dir).metadata.hook_name, HOOK);
      assert.throws(() => cacheActivations(store(), dir, { totalTokens: 48 }), /already holds/);
      // One epoch of the cache serves exactly the rows written (in another order).
      const written = store();
      const rows = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const x = vec(written.next().x);
        for (let r = 0; r < 48; r++) rows.add(x.slice(r * 64, r * 64 + 4).join(','));
      }
      const cached = new CachedActivationStore(dir, { trainBatchSizeTokens: 48, seed: 1 });
      let served = 0;
      for (let i = 0; i < 10; i++) {
        const x = vec(cached.next().x);
        for (let r = 0; r < 48; r++) if (rows.has(x.slice(r * 64, r * 64 + 4).join(','))) served++;
      }
      assert.equal(served, 480);
      // Exact resume across epochs.
      const a = new CachedActivationStore(dir, { trainBatchSizeTokens: 48, seed: 1 });
      for (let i = 0; i < 13; i++) a.next();
      const state = JSON.parse(JSON.stringify(a.getState()));
      const next = [vec(a.next().x), vec(a.next().x)];
      const b = new CachedActivationStore(dir, { trainBatchSizeTokens: 48, seed: 1 });
      b.setState(state);
      assert.ok(sameBatches([vec(b.next().x), vec(b.next().x)], next), 'the resumed cache serves the same batches');
      rmSync(join(dir, 'manifest.json'));
      assert.throws(() => new CachedActivationStore(dir), /missing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('schedules', () => {
  it("follow SAELens's warm-up, decay, cosine and coefficient warm-up", () => {
    const s = saeLrSchedule({ lr: 1, totalSteps: 10, warmUpSteps: 2, decaySteps: 4 });
    assert.deepEqual([0, 1, 2, 5].map(s), [0.5, 1, 1, 1]);
    assert.ok(Math.abs(s(6) - 1) < 1e-12 && Math.abs(s(9) - (1 + (0.1 - 1) * 0.75)) < 1e-12, `decay: ${s(6)}, ${s(9)}`);
    const cos = saeLrSchedule({ lr: 1, totalSteps: 11, scheduler: 'cosineannealing', lrEnd: 0 });
    assert.ok(Math.abs(cos(0) - 1) < 1e-12 && Math.abs(cos(11) - 0) < 1e-12 && Math.abs(cos(5.5) - 0.5) < 1e-12, 'cosine');
    assert.throws(() => saeLrSchedule({ lr: 1, totalSteps: 5, warmUpSteps: 3, decaySteps: 3 }), /exceed/);
    const c = coefficientSchedule(2, 4);
    assert.deepEqual([0, 1, 4, 9].map(c), [0, 0.5, 2, 2]);
    assert.equal(coefficientSchedule(3)(0), 3);
  });
});

/** Batches of sparse non-negative combinations of 24 random directions in 16 dimensions. */
function sparseSource(batchSize = 128, seed = 1): ActivationSource {
  const dirs = randn([24, 16], { seed: 77 });
  const D = vec(dirs);
  const r = new PRNG(seed);
  return {
    batchSize,
    dIn: 16,
    dOut: undefined,
    metadata: { model_name: null, hook_name: 'blocks.0.hook_resid_pre', context_size: null, prepend_bos: false, dataset_path: 'sparse' },
    next(): ActivationBatch {
      const x = new Float32Array(batchSize * 16);
      for (let i = 0; i < batchSize; i++)
        for (let f = 0; f < 24; f++)
          if (r.uniform() < 0.1) {
            const m = 0.5 + r.uniform();
            for (let j = 0; j < 16; j++) x[i * 16 + j]! += m * D[f * 16 + j]!;
          }
      return { x: tensor(x, [batchSize, 16]) };
    },
    getState: () => r.getState(),
    setState: (s) => r.setState(s as ReturnType<PRNG['getState']>),
  };
}

describe('trainSae', () => {
  it('trains a TopK SAE, logs SAELens metrics and writes the SAE in SAELens layout', async () => {
    const dir = tmp();
    try {
      const r = await trainSae({
        cfg: { architecture: 'topk', d_sae: 32 },
        k: 3,
        store: sparseSource(),
        totalTrainingSteps: 120,
        lr: 1e-2,
        nEvalBatches: 2,
        evalEvery: 60,
        featureSamplingWindow: 50,
        logEvery: 10,
        outDir: dir,
        progress: false,
      });
      const train = r.history.filter((h) => h.kind === 'train');
      assert.equal(train.length, 12);
      assert.ok((train.at(-1)!['losses/mse_loss'] as number) < 0.5 * (train[0]!['losses/mse_loss'] as number), 'the MSE falls');
      assert.equal(train.at(-1)!['metrics/l0'], 3);
      assert.equal(train.at(-1)!['details/n_training_tokens'], 120 * 128);
      for (const k of [
        'losses/auxiliary_reconstruction_loss',
        'metrics/explained_variance',
        'sparsity/dead_features',
        'details/current_learning_rate',
      ])
        assert.ok(k in train.at(-1)!, k);
      const evals = r.history.filter((h) => h.kind === 'eval');
      assert.deepEqual(
        evals.map((e) => e.step),
        [60, 120],
      );
      const ev = evals.at(-1)!['reconstruction_quality/explained_variance'] as number;
      assert.ok(ev > 0.6, `explained variance ${ev}`);
      assert.equal(r.history.filter((h) => h.kind === 'sparsity').length, 2);
      for (const f of ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors', 'metrics.jsonl', 'training.json'])
        assert.ok(existsSync(join(dir, f)), f);
      assert.equal(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, r.history.length);
      const saved = loadSae(dir);
      assert.equal(saved.cfg.architecture, 'topk');
      assert.equal(saved.cfg.hook_name, 'blocks.0.hook_resid_pre');
      assert.equal(saved.cfg.dataset_path, 'sparse');
      assert.deepEqual(saved.sparsity!.shape, [32]);
      // The saved (folded) SAE computes what the training-form SAE computes.
      const x = sparseSource(16, 5).next().x;
      const a = vec(runSae(saved, x).output);
      const b = vec(runSae(r.trainingSae, x).output);
      assert.ok(
        a.every((v, i) => Math.abs(v - b[i]!) < 1e-4),
        'the saved SAE computes what the training SAE computes',
      );
      await assert.rejects(
        trainSae({
          cfg: { architecture: 'topk', d_sae: 32 },
          k: 3,
          store: sparseSource(),
          totalTrainingSteps: 5,
          outDir: dir,
          progress: false,
        }),
        /already holds checkpoints/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resumes an interrupted run to the same weights as an uninterrupted one (activation store state included)', async () => {
    const common = {
      cfg: { architecture: 'batchtopk', d_sae: 128 },
      k: 4,
      totalTrainingSteps: 12,
      lr: 3e-3,
      nEvalBatches: 1,
      deadFeatureWindow: 3,
      featureSamplingWindow: 5,
      checkpointEvery: 4,
      progress: false as const,
    };
    const dirA = tmp();
    const dirB = tmp();
    try {
      const a = await trainSae({ ...common, store: store({ excludeSpecialTokens: true }), outDir: dirA });
      const controller = new AbortController();
      const first = await trainSae({
        ...common,
        store: store({ excludeSpecialTokens: true }),
        outDir: dirB,
        signal: controller.signal,
        onLog: (rec) => {
          if (rec.kind === 'train' && rec.step === 7) controller.abort();
        },
        logEvery: 1,
      });
      assert.equal(first.interrupted, true);
      assert.equal(first.step, 7);
      assert.ok(!existsSync(join(dirB, 'cfg.json')), 'an interrupted run saves no final SAE');
      const b = await trainSae({ ...common, store: store({ excludeSpecialTokens: true }), outDir: dirB, resume: true });
      assert.equal(b.startStep, 7);
      for (const k of Object.keys(a.trainingSae.params))
        assert.deepEqual(Array.from(vec(b.trainingSae.params[k]!)), Array.from(vec(a.trainingSae.params[k]!)), k);
      assert.equal(b.topkThreshold, a.topkThreshold);
      assert.deepEqual(Array.from(vec(b.sparsity)), Array.from(vec(a.sparsity)));
      // BatchTopK is saved in its JumpReLU inference form with the estimated threshold.
      const saved = loadSae(dirB);
      assert.equal(saved.cfg.architecture, 'jumprelu');
      assert.ok(a.topkThreshold! > 0, `threshold ${a.topkThreshold}`);
      assert.ok(
        vec(saved.params.threshold!).every((t) => t === Math.fround(a.topkThreshold!)),
        'every feature gets the threshold',
      );
      await assert.rejects(
        trainSae({ ...common, lr: 1e-3, store: store({ excludeSpecialTokens: true }), outDir: dirB, resume: true }),
        /settings differ from those of the run that wrote the checkpoint \(lr: 0\.003 in the checkpoint, 0\.001 now; lr schedule: /,
      );
      // The store is part of the run: one that no longer excludes special tokens is refused by field.
      await assert.rejects(
        trainSae({ ...common, store: store(), outDir: dirB, resume: true }),
        /store\.metadata\.exclude_special_tokens: true in the checkpoint, not set now/,
      );
    } finally {
      rmSync(dirA, { recursive: true, force: true });
      rmSync(dirB, { recursive: true, force: true });
    }
  });

  it('scales inputs with expected_average_only_in and folds the factor into the saved SAE', async () => {
    const source = sparseSource();
    const r = await trainSae({
      cfg: { architecture: 'topk', d_sae: 32 },
      k: 3,
      store: source,
      totalTrainingSteps: 30,
      lr: 1e-2,
      nEvalBatches: 1,
      normalizeActivations: 'expected_average_only_in',
      nBatchesForNormEstimate: 4,
      bDecInitMethod: 'geometric_median',
      progress: false,
    });
    assert.ok(r.normScalingFactor! > 0 && r.normScalingFactor !== 1, `factor ${r.normScalingFactor}`);
    assert.equal(r.sae.cfg.normalize_activations, 'none');
    assert.equal(r.trainingSae.cfg.normalize_activations, 'expected_average_only_in');
    const x = sparseSource(8, 9).next().x;
    const a = vec(r.sae.forward(x));
    const b = vec(r.trainingSae.forward(x));
    assert.ok(
      a.every((v, i) => Math.abs(v - b[i]!) < 1e-4),
      'the folded SAE on raw inputs = the training SAE with its scaling',
    );
  });

  it('keeps decoder rows at unit norm when asked, and switches AuxK, ghost grads and the pre-activation loss on with dead features', async () => {
    const topk = await trainSae({
      cfg: { architecture: 'topk', d_sae: 64, rescale_acts_by_decoder_norm: false },
      k: 2,
      store: sparseSource(),
      totalTrainingSteps: 12,
      lr: 1e-2,
      nEvalBatches: 0,
      deadFeatureWindow: 2,
      logEvery: 1,
      progress: false,
    });
    const W = vec(topk.trainingSae.params.W_dec!);
    for (let r = 0; r < 64; r++) {
      let s = 0;
      for (let j = 0; j < 16; j++) s += W[r * 16 + j]! ** 2;
      assert.ok(Math.abs(Math.sqrt(s) - 1) < 1e-5, `row ${r} norm ${Math.sqrt(s)}`);
    }
    const rec = topk.history.filter((h) => h.kind === 'train');
    assert.equal(rec[0]!['losses/auxiliary_reconstruction_loss'], 0, 'no dead features at the start');
    assert.ok((rec.at(-1)!['sparsity/dead_features'] as number) > 0, 'dead features');
    assert.ok((rec.at(-1)!['losses/auxiliary_reconstruction_loss'] as number) > 0, 'AuxK on once features are dead');

    // Half the features start far below zero, so they are dead from the first step.
    const start = Sae.create({ architecture: 'standard', d_in: 16, d_sae: 64 });
    const ghost = await trainSae({
      sae: start.withParams({ ...start.params, b_enc: tensor(Array.from({ length: 64 }, (_, i) => (i < 32 ? -5 : 0))) }),
      store: sparseSource(),
      totalTrainingSteps: 8,
      lr: 1e-2,
      l1Coefficient: 5,
      l1WarmUpSteps: 4,
      useGhostGrads: true,
      deadFeatureWindow: 1,
      nEvalBatches: 0,
      logEvery: 1,
      progress: false,
    });
    const g = ghost.history.filter((h) => h.kind === 'train');
    assert.deepEqual(
      g.map((h) => h['details/current_l1_coefficient']),
      [0, 1.25, 2.5, 3.75, 5, 5, 5, 5],
    );
    assert.equal(g[0]!['losses/ghost_grad_loss'], 0, 'no dead features before the first step');
    assert.ok((g[1]!['sparsity/dead_features'] as number) >= 32, 'dead features after the window');
    assert.ok((g[2]!['losses/ghost_grad_loss'] as number) > 0, 'ghost grads on dead features');
    const revived = vec(ghost.trainingSae.params.W_enc!);
    const moved = vec(start.params.W_enc!).some((v, i) => i % 64 < 32 && v !== revived[i]);
    assert.ok(moved, "dead features' encoder weights get gradients");

    const jrStart = Sae.create({ architecture: 'jumprelu', d_in: 16, d_sae: 64 });
    const jr = await trainSae({
      sae: jrStart.withParams({ ...jrStart.params, b_enc: tensor(Array.from({ length: 64 }, (_, i) => (i < 32 ? -5 : 0))) }),
      store: sparseSource(),
      totalTrainingSteps: 6,
      lr: 1e-2,
      l0Coefficient: 0.1,
      lossOptions: { preActLossCoefficient: 1 },
      deadFeatureWindow: 1,
      nEvalBatches: 0,
      logEvery: 1,
      progress: false,
    });
    const j = jr.history.filter((h) => h.kind === 'train');
    assert.equal(j[0]!['losses/pre_act_loss'], 0, 'no pre-activation loss before features die');
    assert.ok((j.at(-1)!['losses/pre_act_loss'] as number) > 0, 'the pre-activation loss on dead features');
    assert.equal(jr.history.at(-1)!['details/current_l0_coefficient'], 0.1);
  });

  it('trains transcoders on paired batches', async () => {
    const s = store({ hookName: 'blocks.0.ln2.hook_normalized', hookNameOut: 'blocks.0.hook_mlp_out' });
    const r = await trainSae({
      cfg: { architecture: 'transcoder', d_sae: 64 },
      store: s,
      totalTrainingSteps: 20,
      lr: 3e-3,
      l1Coefficient: 0.01,
      nEvalBatches: 1,
      logEvery: 5,
      progress: false,
    });
    assert.equal(r.sae.cfg.hook_name, 'blocks.0.ln2.hook_normalized');
    assert.equal(r.sae.cfg.hook_name_out, 'blocks.0.hook_mlp_out');
    const t = r.history.filter((h) => h.kind === 'train');
    assert.ok((t.at(-1)!['losses/mse_loss'] as number) < (t[0]!['losses/mse_loss'] as number), 'the MSE falls');
    await assert.rejects(
      trainSae({
        cfg: { architecture: 'transcoder', d_sae: 64 },
        store: s,
        totalTrainingSteps: 2,
        normalizeActivations: 'expected_average_only_in',
      }),
      /not supported for transcoders/,
    );
  });
});

describe('glassbox sae train', () => {
  it('trains from a token file, caches activations, and reports errors in one line', async () => {
    const dir = tmp();
    try {
      const tokens = join(dir, 'tokens.bin');
      await writeTokenFile(tokens, [TOKENS], { vocabSize: 320, eosTokenId: BOS });
      const run = async (...args: string[]): Promise<string> => {
        const program = new Command('glassbox').exitOverride();
        registerSaeTrain(program.command('sae'));
        const lines: string[] = [];
        const log = console.log;
        console.log = (...a: unknown[]) => void lines.push(a.join(' '));
        try {
          await program.parseAsync(['node', 'glassbox', 'sae', 'train', ...args]);
        } finally {
          console.log = log;
        }
        return lines.join('\n');
      };
      const common = ['--model', FIXTURE, '--hook', HOOK, '--dataset', tokens, '--context-size', '16', '--batch-size', '64'];
      const small = ['--n-batches-in-buffer', '2', '--store-batch-size-prompts', '8', '--n-eval-batches', '1', '--no-progress'];
      const out = await run(
        ...common,
        ...small,
        '--arch',
        'topk',
        '--width',
        '128',
        '--k',
        '4',
        '--tokens',
        '1280',
        '--out',
        join(dir, 'run'),
      );
      assert.match(out, /trained Sae\(topk, d_in 64, d_sae 128, hook blocks\.1\.hook_resid_post\) for 20 steps/);
      assert.match(out, /explained variance/);
      const sae = loadSae(join(dir, 'run'));
      assert.equal(sae.cfg.k, 4);
      assert.equal(sae.cfg.context_size, 16);
      assert.equal(sae.cfg.dataset_path, tokens);
      // Through an activation cache, then again from the finished cache.
      const cache = join(dir, 'cache');
      const args = [...common, ...small, '--arch', 'standard', '--expansion-factor', '2', '--tokens', '640', '--cache-activations', cache];
      await run(...args, '--out', join(dir, 'run2'));
      assert.ok(readdirSync(cache).includes('manifest.json'), 'the cache has its manifest');
      assert.equal(loadSae(join(dir, 'run2')).dSae, 128);
      await run(...args, '--out', join(dir, 'run3'));
      assert.ok(existsSync(join(dir, 'run3', 'cfg.json')));
      await assert.rejects(
        run(...common, '--arch', 'nope', '--out', join(dir, 'x')),
        /--arch: unknown architecture 'nope' \(known: .*topk/,
      );
      await assert.rejects(run(...common, '--arch', 'transcoder', '--out', join(dir, 'x')), /give --hook-out/);
      await assert.rejects(run(...common, '--lr', 'fast', '--out', join(dir, 'x')), /--lr must be a number/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
