/**
 * Training checkpoints: `DIR/checkpoints/step-NNNNNNNN/` holds `params.safetensors`,
 * `optimizer.safetensors` and `state.json` (step, data position, optimizer hyper-parameters, the
 * run's config). A checkpoint is written into a temporary directory and renamed into place, then
 * `latest.json` is replaced atomically, so a crash at any moment leaves the previous checkpoint
 * usable. Older checkpoints beyond `keep` are removed.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Tensor } from '../tensor/index.js';
import { fromNamedLeaves, namedLeaves } from './tree.js';
import type { OptState, Optimizer } from './optim.js';
import { truncateMetrics, type MetricsRecord } from './progress.js';

export interface CheckpointState {
  format: 'glassbox-train-checkpoint';
  version: 1;
  /** Completed steps. */
  step: number;
  /** The data source's position (DataSource.getState()). */
  data: unknown;
  optimizer: { name: string; hyper: Record<string, unknown> };
  /** The run's own description (model config, hyper-parameters); resume refuses a different one. */
  config: unknown;
  /** Seconds of training so far (for throughput across resumes). */
  elapsed: number;
  /** Anything else the caller saves (e.g. a PRNG state). */
  extra?: unknown;
}

export interface LoadedCheckpoint<P> {
  dir: string;
  params: P;
  optState: OptState;
  state: CheckpointState;
}

const LATEST = 'latest.json';

function stepDir(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** What a loop says about its run; saveCheckpoint stamps the format and version. */
export type CheckpointContents = Omit<CheckpointState, 'format' | 'version'>;

/** Writes a checkpoint under `root` (usually DIR/checkpoints) and prunes to the newest `keep`. */
export function saveCheckpoint(root: string, params: unknown, optState: OptState, contents: CheckpointContents, keep = 2): string {
  const state: CheckpointState = { format: 'glassbox-train-checkpoint', version: 1, ...contents };
  mkdirSync(root, { recursive: true });
  const name = stepDir(state.step);
  const final = join(root, name);
  const tmp = join(root, `.${name}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    saveSafetensors(join(tmp, 'params.safetensors'), Object.fromEntries(namedLeaves(params)));
    saveSafetensors(join(tmp, 'optimizer.safetensors'), Object.fromEntries(namedLeaves(optState)));
    writeFileAtomic(join(tmp, 'state.json'), JSON.stringify(state, null, 2) + '\n');
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  writeFileAtomic(join(root, LATEST), JSON.stringify({ step: state.step, dir: name }) + '\n');
  const all = readdirSync(root)
    .filter((d) => /^step-\d{8}$/.test(d))
    .sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    if (old !== name) rmSync(join(root, old), { recursive: true, force: true });
  return final;
}

/** The newest checkpoint under `root`, or null when there is none. */
export function latestCheckpoint(root: string): { step: number; dir: string } | null {
  const file = join(root, LATEST);
  if (!existsSync(file)) return null;
  let parsed: { step?: unknown; dir?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed.step !== 'number' || typeof parsed.dir !== 'string' || !/^step-\d{8}$/.test(parsed.dir))
    throw new Error(`${file}: expected {"step": number, "dir": "step-NNNNNNNN"}`);
  const dir = join(root, parsed.dir);
  if (!existsSync(dir)) throw new Error(`${file}: points to ${dir}, which does not exist`);
  return { step: parsed.step, dir };
}

/**
 * Loads a checkpoint directory into the structures of `paramsLike` and `optLike` (fresh params and
 * optimizer.init(params)): every tensor must be present with the same shape, or the error names
 * the file and tensor.
 */
export function loadCheckpoint<P>(dir: string, paramsLike: P, optLike: OptState): LoadedCheckpoint<P> {
  const state = readCheckpointState(dir);
  const paramsFile = join(dir, 'params.safetensors');
  const optFile = join(dir, 'optimizer.safetensors');
  const params = fromNamedLeaves(paramsLike, loadSafetensors(paramsFile) as Map<string, Tensor>, paramsFile);
  const optState = fromNamedLeaves(optLike, loadSafetensors(optFile) as Map<string, Tensor>, optFile);
  return { dir, params, optState, state };
}

/** A checkpoint's state.json, checked to be one of ours. */
export function readCheckpointState(dir: string): CheckpointState {
  const stateFile = join(dir, 'state.json');
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as CheckpointState;
  } catch (e) {
    throw new Error(`${stateFile}: cannot read the checkpoint state (${(e as Error).message})`);
  }
  if (state?.format !== 'glassbox-train-checkpoint' || typeof state.step !== 'number')
    throw new Error(`${stateFile}: not a glassbox training checkpoint`);
  return state;
}

/** A training run's directory as `openRun` leaves it. */
export interface OpenedRun<P> {
  /** DIR/checkpoints (null without a run directory). */
  ckptRoot: string | null;
  /** DIR/metrics.jsonl (null without a run directory). */
  metricsFile: string | null;
  /** The checkpoint resumed from, or null for a fresh start. */
  resumed: LoadedCheckpoint<P> | null;
  /** The records metrics.jsonl holds up to the resumed checkpoint (empty for a fresh start). */
  history: MetricsRecord[];
}

/**
 * Opens a training loop's run directory (`train` and `trainSae` share it): creates `outDir`, then
 * 1. refuses a directory that already holds checkpoints unless `resume` (nothing is overwritten);
 * 2. with `resume` and a checkpoint: checks that its config and optimizer are this run's, loads its
 *    parameters and optimizer state (shaped like `paramsLike` and `optLike`) and cuts
 *    metrics.jsonl back to its step (the records kept come back as `history`);
 * 3. otherwise starts fresh: an old metrics.jsonl is emptied.
 * Without `outDir` nothing is read or written.
 */
export function openRun<P>(
  o: { outDir?: string; resume?: boolean; config: unknown; optimizer: Optimizer },
  paramsLike: P,
  optLike: OptState,
): OpenedRun<P> {
  const ckptRoot = o.outDir ? join(o.outDir, 'checkpoints') : null;
  const metricsFile = o.outDir ? join(o.outDir, 'metrics.jsonl') : null;
  if (o.outDir) mkdirSync(o.outDir, { recursive: true });
  const latest = ckptRoot ? latestCheckpoint(ckptRoot) : null;
  if (latest && !o.resume)
    throw new Error(`${o.outDir} already holds checkpoints (latest: step ${latest.step}); pass resume to continue, or use a new directory`);
  if (latest) {
    const stateFile = join(latest.dir, 'state.json');
    const saved = readCheckpointState(latest.dir);
    if (JSON.stringify(saved.config) !== JSON.stringify(o.config))
      throw new Error(
        `${stateFile}: the checkpoint was written by a run with other settings (a different config); resume with the same settings or use a new directory`,
      );
    if (saved.optimizer.name !== o.optimizer.name || JSON.stringify(saved.optimizer.hyper) !== JSON.stringify(o.optimizer.hyper))
      throw new Error(`${stateFile}: the checkpoint used optimizer ${saved.optimizer.name} with other settings`);
    const resumed = loadCheckpoint(latest.dir, paramsLike, optLike);
    return { ckptRoot, metricsFile, resumed, history: metricsFile ? truncateMetrics(metricsFile, resumed.state.step) : [] };
  }
  if (metricsFile && existsSync(metricsFile)) writeFileAtomic(metricsFile, '');
  return { ckptRoot, metricsFile, resumed: null, history: [] };
}
