/**
 * Training checkpoints: `DIR/checkpoints/step-NNNNNNNN/` holds `params.safetensors`,
 * `optimizer.safetensors` and `state.json` (step, data position, optimizer hyper-parameters, the
 * run's fingerprint, and the SHA-256 of the two tensor files). A checkpoint is written into a
 * temporary directory and renamed into place, then `latest.json` is replaced atomically, so a
 * crash at any moment leaves the previous checkpoint usable. Older checkpoints beyond `keep` are
 * removed.
 *
 * Resuming (`openRun`) takes the newest checkpoint whose files match their recorded SHA-256; a
 * damaged newer one is moved aside (`corrupt-step-NNNNNNNN`) with a warning, and when none is
 * intact the resume is refused naming each damaged file. Temporary files and directories that a
 * killed writer left behind are removed first.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { removeStaleTemps, sha256File, writeFileAtomic } from '../io/atomic.js';
import type { Tensor } from '../tensor/index.js';
import { fromNamedLeaves, namedLeaves } from './tree.js';
import type { OptState, Optimizer } from './optim.js';
import { truncateMetrics, type MetricsRecord } from './progress.js';
import { fingerprintDiff, scheduleDigest } from './fingerprint.js';

/** The checkpoint format this version writes and reads. */
export const CHECKPOINT_VERSION = 2;
/** The files beside state.json, each with its SHA-256 recorded in state.json. */
const TENSOR_FILES = ['params.safetensors', 'optimizer.safetensors'] as const;

export interface CheckpointState {
  format: 'glassbox-train-checkpoint';
  version: typeof CHECKPOINT_VERSION;
  /** Completed steps. */
  step: number;
  /** The data source's position (DataSource.getState()). */
  data: unknown;
  optimizer: { name: string; hyper: Record<string, unknown> };
  /** The run's own description (model config, hyper-parameters); resume refuses a different one. */
  config: unknown;
  /**
   * The loop's own settings that shape the weights (the initial parameters' SHA-256, gradient
   * clipping, ...: see `runFingerprint`); resume refuses different ones.
   */
  run: Record<string, unknown>;
  /**
   * Each schedule's (the learning rate's, ...) SHA-256 over the values it gave steps 0 .. step - 1
   * (`scheduleDigest`); resume refuses a schedule that would have driven those steps differently.
   */
  schedules: Record<string, string>;
  /** Seconds of training so far (for throughput across resumes). */
  elapsed: number;
  /** Anything else the caller saves (e.g. a PRNG state). */
  extra?: unknown;
  /** Each tensor file's SHA-256 (hex) and size, checked before the checkpoint is used. */
  files: Record<string, CheckpointFile>;
}

/** The SHA-256 of a state (compact JSON, in its own key order), which state.json records as `stateSha256`. */
function stateDigest(state: object): string {
  return createHash('sha256').update(JSON.stringify(state)).digest('hex');
}

/** What a checkpoint records of each of its tensor files. */
export interface CheckpointFile {
  sha256: string;
  bytes: number;
}

export interface LoadedCheckpoint<P> {
  dir: string;
  params: P;
  optState: OptState;
  state: CheckpointState;
}

const LATEST = 'latest.json';
const STEP_DIR = /^step-(\d{8})$/;

function stepDir(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** What a loop says about its run; saveCheckpoint stamps the format, the version and the files' digests. */
export type CheckpointContents = Omit<CheckpointState, 'format' | 'version' | 'files' | 'run' | 'schedules'> &
  Partial<Pick<CheckpointState, 'run' | 'schedules'>>;

/** Writes a checkpoint under `root` (usually DIR/checkpoints) and prunes to the newest `keep`. */
export function saveCheckpoint(root: string, params: unknown, optState: OptState, contents: CheckpointContents, keep = 2): string {
  mkdirSync(root, { recursive: true });
  const name = stepDir(contents.step);
  const final = join(root, name);
  const tmp = join(root, `.${name}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const files: Record<string, CheckpointFile> = {};
    for (const [name, tree] of [
      ['params.safetensors', params],
      ['optimizer.safetensors', optState],
    ] as const) {
      const path = join(tmp, name);
      const sha256 = saveSafetensors(path, Object.fromEntries(namedLeaves(tree)), { sha256: true })!;
      files[name] = { sha256, bytes: statSync(path).size };
    }
    const state: CheckpointState = {
      format: 'glassbox-train-checkpoint',
      version: CHECKPOINT_VERSION,
      run: {},
      schedules: {},
      ...contents,
      files,
    };
    const sealed = { ...state, stateSha256: stateDigest(state) };
    writeFileAtomic(join(tmp, 'state.json'), JSON.stringify(sealed, null, 2) + '\n');
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  writeFileAtomic(join(root, LATEST), JSON.stringify({ step: contents.step, dir: name }) + '\n');
  const all = readdirSync(root)
    .filter((d) => STEP_DIR.test(d))
    .sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    if (old !== name) rmSync(join(root, old), { recursive: true, force: true });
  return final;
}

/** The newest checkpoint under `root` as latest.json names it, or null when there is none. */
export function latestCheckpoint(root: string): { step: number; dir: string } | null {
  const file = join(root, LATEST);
  if (!existsSync(file)) return null;
  let parsed: { step?: unknown; dir?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed?.step !== 'number' || typeof parsed.dir !== 'string' || !STEP_DIR.test(parsed.dir))
    throw new Error(`${file}: expected {"step": number, "dir": "step-NNNNNNNN"}`);
  const dir = join(root, parsed.dir);
  if (!existsSync(dir)) throw new Error(`${file}: points to ${dir}, which does not exist`);
  return { step: parsed.step, dir };
}

/** The checkpoint directories under `root`, newest first. */
export function listCheckpoints(root: string): { step: number; dir: string }[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => STEP_DIR.test(n))
    .sort()
    .reverse()
    .map((n) => ({ step: Number(STEP_DIR.exec(n)![1]), dir: join(root, n) }));
}

/** A checkpoint whose files are damaged or missing (as opposed to one written by other settings). */
export class CorruptCheckpointError extends Error {
  override readonly name = 'CorruptCheckpointError';
  /** The damaged file. */
  readonly file: string;
  constructor(file: string, problem: string, options?: ErrorOptions) {
    super(`${file}: ${problem}`, options);
    this.file = file;
  }
}

/**
 * Checks a checkpoint directory's integrity: state.json is one of ours, of this version, and each
 * tensor file exists with the size and SHA-256 it records. Throws `CorruptCheckpointError` naming the
 * damaged file, or a plain Error for a checkpoint of another version.
 */
export function verifyCheckpoint(dir: string): CheckpointState {
  const state = readCheckpointState(dir);
  const stateFile = join(dir, 'state.json');
  const files = state.files as unknown;
  if (typeof files !== 'object' || files === null)
    throw new CorruptCheckpointError(stateFile, 'it records no "files" with their SHA-256 (the file is damaged)');
  for (const name of TENSOR_FILES) {
    const entry = (files as Record<string, unknown>)[name] as Partial<CheckpointFile> | undefined;
    const file = join(dir, name);
    if (typeof entry?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256) || !Number.isSafeInteger(entry.bytes))
      throw new CorruptCheckpointError(stateFile, `it records no SHA-256 and size for ${name} (the file is damaged)`);
    let size: number;
    let actual: string;
    try {
      size = statSync(file).size;
      actual = sha256File(file);
    } catch (e) {
      throw new CorruptCheckpointError(file, `cannot be read (${(e as Error).message})`, { cause: e });
    }
    if (size !== entry.bytes)
      throw new CorruptCheckpointError(
        file,
        `it holds ${size} bytes, but the checkpoint recorded ${entry.bytes}: the file was truncated or changed after it was written`,
      );
    if (actual !== entry.sha256)
      throw new CorruptCheckpointError(
        file,
        `its SHA-256 is ${actual.slice(0, 16)}..., but the checkpoint recorded ${entry.sha256.slice(0, 16)}...: the file was changed or damaged after it was written`,
      );
  }
  return state;
}

/**
 * Loads a checkpoint directory into the structures of `paramsLike` and `optLike` (fresh params and
 * optimizer.init(params)) after checking its files' SHA-256 (`verifyCheckpoint`): every tensor
 * must be present with the same shape, or the error names the file and tensor.
 */
export function loadCheckpoint<P>(dir: string, paramsLike: P, optLike: OptState): LoadedCheckpoint<P> {
  const state = verifyCheckpoint(dir);
  const paramsFile = join(dir, 'params.safetensors');
  const optFile = join(dir, 'optimizer.safetensors');
  const params = fromNamedLeaves(paramsLike, loadSafetensors(paramsFile) as Map<string, Tensor>, paramsFile);
  const optState = fromNamedLeaves(optLike, loadSafetensors(optFile) as Map<string, Tensor>, optFile);
  return { dir, params, optState, state };
}

/**
 * A checkpoint's state.json, checked to be one of ours and of this version. An unreadable or
 * foreign state.json is a `CorruptCheckpointError`; one of another version a plain Error.
 */
export function readCheckpointState(dir: string): CheckpointState {
  const stateFile = join(dir, 'state.json');
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as CheckpointState;
  } catch (e) {
    throw new CorruptCheckpointError(stateFile, `cannot read the checkpoint state (${(e as Error).message})`, { cause: e });
  }
  if (state?.format !== 'glassbox-train-checkpoint' || typeof state.step !== 'number')
    throw new CorruptCheckpointError(stateFile, 'not a glassbox training checkpoint');
  const { stateSha256, ...rest } = state as CheckpointState & { stateSha256?: unknown };
  const sealed = typeof stateSha256 === 'string' && stateSha256 === stateDigest(rest);
  // Version 1 had no stateSha256: it is another version, not a damaged file.
  const otherVersion = state.version !== CHECKPOINT_VERSION && (sealed || (state.version === 1 && stateSha256 === undefined));
  if (otherVersion)
    throw new Error(
      `${stateFile}: a checkpoint of format version ${JSON.stringify(state.version)}, written by another glassbox; this one reads version ${CHECKPOINT_VERSION} (with checksums and the full run fingerprint): resume with the glassbox that wrote it, or use a new directory`,
    );
  if (!sealed)
    throw new CorruptCheckpointError(
      stateFile,
      typeof stateSha256 === 'string'
        ? 'its contents do not match the SHA-256 it records (stateSha256): the file was changed or damaged after it was written'
        : 'it records no stateSha256 (the file is damaged)',
    );
  return rest as CheckpointState;
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

/** How `openRun` describes the run that is starting, to compare with a checkpoint's. */
export interface RunDescription {
  outDir?: string;
  resume?: boolean;
  /** The caller's fingerprint of its settings (see `runFingerprint`). */
  config: unknown;
  optimizer: Optimizer;
  /** The loop's own settings that shape the weights (see `CheckpointState.run`). */
  run?: Record<string, unknown>;
  /** Schedules of the step (the learning rate, ...), compared over the steps a checkpoint has done. */
  schedules?: Record<string, (step: number) => number>;
  /** Where warnings go (a damaged checkpoint skipped, stale temporary files removed); default stderr. */
  onWarning?: (message: string) => void;
}

/** Warnings to stderr, the default of `onWarning`. */
export function warnToStderr(message: string): void {
  process.stderr.write(`glassbox: warning: ${message}\n`);
}

/** The schedules' digests over steps 0 .. step - 1, as a checkpoint records them. */
export function scheduleDigests(schedules: Record<string, (step: number) => number> | undefined, step: number): Record<string, string> {
  return Object.fromEntries(Object.entries(schedules ?? {}).map(([name, f]) => [name, scheduleDigest(f, step)]));
}

/**
 * Refuses a checkpoint written with other settings: the caller's config, the optimizer, the
 * loop's settings and the schedules over the steps done. The message names each differing field.
 */
function checkSettings(stateFile: string, saved: CheckpointState, o: RunDescription): void {
  const diffs = [
    ...fingerprintDiff(saved.config, o.config),
    ...fingerprintDiff(
      { name: saved.optimizer?.name, ...saved.optimizer?.hyper },
      JSON.parse(JSON.stringify({ name: o.optimizer.name, ...o.optimizer.hyper })),
      'optimizer',
    ),
    ...fingerprintDiff(saved.run ?? {}, o.run ?? {}, 'train'),
  ];
  const names = [...new Set([...Object.keys(saved.schedules ?? {}), ...Object.keys(o.schedules ?? {})])].sort();
  for (const name of names) {
    const f = o.schedules?.[name];
    const digest = saved.schedules?.[name];
    if (f === undefined || digest === undefined)
      diffs.push(`${name} schedule: ${f === undefined ? 'not given now' : 'not in the checkpoint'}`);
    else if (scheduleDigest(f, saved.step) !== digest)
      diffs.push(`${name} schedule: it gives other values over steps 1..${saved.step} than the run that wrote the checkpoint`);
  }
  if (diffs.length > 0)
    throw new Error(
      `${stateFile}: this run's settings differ from those of the run that wrote the checkpoint (${diffs.join('; ')}); resume with the same settings or use a new directory`,
    );
}

/** Moves a damaged checkpoint directory aside (never deleting it); returns its new name. */
function moveAside(root: string, dir: string): string {
  const base = `corrupt-${dir.slice(root.length + 1)}`;
  let name = base;
  for (let i = 1; existsSync(join(root, name)); i++) name = `${base}.${i}`;
  renameSync(dir, join(root, name));
  return name;
}

/**
 * Opens a training loop's run directory (`train` and `trainSae` share it): creates `outDir`,
 * removes temporary files and directories that killed writers left there, then
 * 1. refuses a directory that already holds checkpoints unless `resume` (nothing is overwritten);
 * 2. with `resume` and a checkpoint: takes the newest intact checkpoint (its files match their
 *    SHA-256; a damaged newer one is moved aside to `corrupt-step-N` with a warning; when none is
 *    intact, the error names each damaged file), checks that it was written with this run's
 *    settings (config, optimizer, loop settings, schedules; the error names each differing field),
 *    loads its parameters and optimizer state (shaped like `paramsLike` and `optLike`) and cuts
 *    metrics.jsonl back to its step (the records kept come back as `history`);
 * 3. otherwise starts fresh: an old metrics.jsonl is emptied.
 * Without `outDir` nothing is read or written.
 */
export function openRun<P>(o: RunDescription, paramsLike: P, optLike: OptState): OpenedRun<P> {
  if (!o.outDir) return { ckptRoot: null, metricsFile: null, resumed: null, history: [] };
  const warn = o.onWarning ?? warnToStderr;
  const ckptRoot = join(o.outDir, 'checkpoints');
  const metricsFile = join(o.outDir, 'metrics.jsonl');
  mkdirSync(o.outDir, { recursive: true });
  for (const dir of [o.outDir, ckptRoot]) {
    const removed = removeStaleTemps(dir);
    if (removed.length > 0) warn(`removed what interrupted writes left behind in ${dir}: ${removed.join(', ')}`);
  }
  const candidates = listCheckpoints(ckptRoot);
  const latestFile = join(ckptRoot, LATEST);
  if (candidates.length === 0 && existsSync(latestFile))
    throw new Error(
      `${latestFile}: it names a checkpoint, but ${ckptRoot} holds no step-NNNNNNNN directory; remove latest.json to start afresh, or restore the checkpoints`,
    );
  if (candidates.length > 0 && !o.resume)
    throw new Error(
      `${o.outDir} already holds checkpoints (latest: step ${candidates[0]!.step}); pass resume to continue, or use a new directory`,
    );
  if (candidates.length > 0) {
    try {
      latestCheckpoint(ckptRoot);
    } catch (e) {
      warn(`${(e as Error).message}; resuming from the newest intact checkpoint directory instead`);
    }
    const damaged: { dir: string; error: CorruptCheckpointError }[] = [];
    for (const c of candidates) {
      let state: CheckpointState;
      try {
        state = verifyCheckpoint(c.dir);
      } catch (e) {
        if (!(e instanceof CorruptCheckpointError)) throw e;
        damaged.push({ dir: c.dir, error: e });
        continue;
      }
      checkSettings(join(c.dir, 'state.json'), state, o);
      const resumed = loadCheckpoint(c.dir, paramsLike, optLike);
      if (damaged.length > 0) {
        const moved = damaged.map((d) => `${d.error.message} (moved to ${join(ckptRoot, moveAside(ckptRoot, d.dir))})`);
        warn(
          `the newest checkpoint${damaged.length === 1 ? ' is' : 's are'} damaged: ${moved.join('; ')}; resuming from ${c.dir} (step ${c.step})`,
        );
      }
      return { ckptRoot, metricsFile, resumed, history: truncateMetrics(metricsFile, resumed.state.step) };
    }
    throw new Error(`${ckptRoot}: no intact checkpoint to resume from: ${damaged.map((d) => d.error.message).join('; ')}`);
  }
  if (existsSync(metricsFile)) writeFileAtomic(metricsFile, '');
  return { ckptRoot, metricsFile, resumed: null, history: [] };
}

/** Where a run opened by `openTrainingRun` starts. */
export interface RunStart<P> {
  /** Whether a checkpoint was resumed (else the given parameters and optimizer state, at step 0). */
  resumed: boolean;
  params: P;
  optState: OptState;
  /** Completed steps. */
  step: number;
  /** Seconds of training before this process. */
  elapsed: number;
  /** The checkpoint's extra state (undefined for a fresh start or a checkpoint without one). */
  extra: unknown;
}

/** A run directory opened by `openTrainingRun`: where the run starts, and how it checkpoints. */
export interface TrainingRun<P> {
  ckptRoot: string | null;
  metricsFile: string | null;
  /** The records metrics.jsonl holds up to the resumed checkpoint (empty for a fresh start). */
  history: MetricsRecord[];
  start: RunStart<P>;
  /**
   * Writes a checkpoint of the run at `at.step` (the data source's position read now), with the
   * settings the run was opened with; nothing without a run directory.
   */
  checkpoint(at: { step: number; params: unknown; optState: OptState; elapsed: number; extra?: unknown }): void;
}

/**
 * The run directory of a training loop (`train`, `trainSae` and `trainClt` share it):
 * 1. opens it (`openRun`: refuses to overwrite, resumes the newest intact checkpoint written with
 *    the same settings, cuts metrics.jsonl back);
 * 2. on resume, moves `data` to the checkpoint's position and hands back its parameters,
 *    optimizer state, step, seconds and extra state;
 * 3. writes each later checkpoint with the same config, optimizer, loop settings and schedules
 *    (their digests over the steps done), keeping the newest `keep` (default 2).
 */
export function openTrainingRun<P>(
  o: RunDescription & { data: { getState(): unknown; setState(state: unknown): void }; keep?: number },
  params: P,
  optState: OptState,
): TrainingRun<P> {
  const opened = openRun(o, params, optState);
  const { ckptRoot, metricsFile, resumed, history } = opened;
  let start: RunStart<P> = { resumed: false, params, optState, step: 0, elapsed: 0, extra: undefined };
  if (resumed) {
    o.data.setState(resumed.state.data);
    const { params: p, optState: s, state } = resumed;
    start = { resumed: true, params: p, optState: s, step: state.step, elapsed: state.elapsed, extra: state.extra };
  }
  const checkpoint = (at: { step: number; params: unknown; optState: OptState; elapsed: number; extra?: unknown }): void => {
    if (!ckptRoot) return;
    const contents: CheckpointContents = {
      step: at.step,
      data: o.data.getState(),
      optimizer: { name: o.optimizer.name, hyper: { ...o.optimizer.hyper } },
      config: o.config,
      run: o.run ?? {},
      schedules: scheduleDigests(o.schedules, at.step),
      elapsed: at.elapsed,
      ...(at.extra !== undefined ? { extra: at.extra } : {}),
    };
    saveCheckpoint(ckptRoot, at.params, at.optState, contents, o.keep ?? 2);
  };
  return { ckptRoot, metricsFile, history, start, checkpoint };
}
