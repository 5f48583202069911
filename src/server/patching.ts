/**
 * The activation patching sweep as a job. The request is checked here (tokens, lengths, hooks,
 * position) and a job slot reserved (a 429 at once when the server runs its most jobs); the model
 * worker then does the clean and corrupted runs before the job is answered (so a bad problem,
 * e.g. a metric equal on both prompts, is a 400), and runs the sweep one forward pass per step
 * (compute.ts, `patchingSweep`): every layer, position and kind in one compiled session, with
 * progress after each pass. The numbers are those of `patchResidPre`, `patchAttnOut`,
 * `patchMlpOut` and `patchHeadOut`: the metric logit(answer) - logit(wrong) at `pos`, normalised
 * so that the clean run scores 1 and the corrupted run 0.
 */
import { HttpError } from './errors.js';
import { checkPos, grid, num, promptIds, strTokens, tokenId, type Ctx } from './handlers.js';
import type { Job, JobManager } from './jobs.js';
import { PATCH_KINDS, patchCellShape, type PatchingArgs, type PatchingRaw, type PatchingStarted, type PatchingStep } from './compute.js';
import type { PatchingBody, PatchingGrids, PatchingKind, PatchingResult } from './schemas.js';

/** The result grid of each kind. */
const GRID_KEYS: Record<PatchingKind, keyof PatchingGrids> = {
  resid_pre: 'residPre',
  attn_out: 'attnOut',
  mlp_out: 'mlpOut',
  head_out: 'headOut',
  head_out_by_pos: 'headOutByPos',
};

/**
 * POST /api/patching `{ clean, corrupted, prependBos?, answer, wrong, pos? = -1, kinds? =
 * ['resid_pre', 'head_out'] }` starts a job. Its result: `{ tokens, strTokens, corruptedTokens,
 * corruptedStrTokens, answer, wrong, pos, cleanValue, corruptedValue, residPre?, attnOut?,
 * mlpOut?, headOut?, headOutByPos? }` with residPre/attnOut/mlpOut [layer][pos] (patching that
 * activation at one position), headOut [layer][head] (patching one head's output, hook_z, at every
 * position) and headOutByPos [layer][pos][head] (one head's output at one position).
 * Progress counts patched runs.
 */
export async function startPatching(ctx: Ctx, jobs: JobManager, body: PatchingBody): Promise<Job> {
  const { model } = ctx;
  const { nLayers: L, nHeads: H } = model.cfg;
  const clean = promptIds(ctx, body.clean, body.prependBos, 'clean');
  const corrupted = promptIds(ctx, body.corrupted, body.prependBos, 'corrupted');
  if (clean.length !== corrupted.length)
    throw new HttpError(
      400,
      `clean (${clean.length} tokens) and corrupted (${corrupted.length} tokens) prompts must have the same number of tokens`,
    );
  const s = clean.length;
  const pos = checkPos(body.pos ?? -1, s);
  const answer = tokenId(ctx, body.answer, 'answer');
  const wrong = tokenId(ctx, body.wrong, 'wrong');
  const kinds = body.kinds ?? ['resid_pre', 'head_out'];
  for (const kind of kinds)
    for (let l = 0; l < L; l++) {
      const h = PATCH_KINDS[kind].hook(l);
      if (!model.hookNames.includes(h)) throw new HttpError(400, `this model has no hook point '${h}', so no '${kind}' patching`);
    }
  const cellShape = (kind: PatchingKind) => patchCellShape(kind, s, H);
  const width = (kind: PatchingKind) => cellShape(kind).reduce((x, y) => x * y, 1);
  const total = kinds.reduce((n, k) => n + L * width(k), 0);
  const slot = jobs.reserve();
  let run: ReturnType<typeof ctx.worker.job<PatchingStep, PatchingRaw>> | null = null;
  try {
    let job: Job | null = null;
    let started: PatchingStarted | null = null;
    /** The result from the sweep's values in sweep order (kind, layer, position or head); cells not in `flat` are null. */
    const assemble = (flat: readonly number[]): PatchingResult => {
      const out: PatchingResult = {
        tokens: clean,
        strTokens: strTokens(model, clean),
        corruptedTokens: corrupted,
        corruptedStrTokens: strTokens(model, corrupted),
        answer,
        wrong,
        pos,
        cleanValue: num(started!.cleanValue),
        corruptedValue: num(started!.corruptedValue),
      };
      let at = 0;
      for (const kind of kinds) {
        const n = L * width(kind);
        // NaN, which grid() turns into null, for the runs not yet done.
        const cells = Array.from({ length: n }, (_, i) => (at + i < flat.length ? flat[at + i]! : NaN));
        const shape = cellShape(kind);
        if (shape.length === 2) out.headOutByPos = grid(cells, [L, shape[0]!, shape[1]!]);
        else out[GRID_KEYS[kind] as Exclude<keyof PatchingGrids, 'headOutByPos'>] = grid(cells, [L, shape[0]!]);
        at += n;
      }
      return out;
    };
    // The values so far, for the heatmaps that fill in as the sweep runs (and stay when it is cancelled).
    const sofar: number[] = [];
    const args: PatchingArgs = { clean, corrupted, answer, wrong, pos, kinds };
    run = ctx.worker.job<PatchingStep, PatchingRaw>('patching', args, (value) => {
      const step = value as PatchingStep;
      if (!('done' in step)) return;
      sofar.push(...step.values);
      job?.progress(step.done, started ? assemble(sofar) : undefined);
    });
    const first = await run.started;
    if (!('started' in first)) throw new Error('internal: the patching job did not start with its clean and corrupted runs');
    started = first.started;
    if (started.total !== total) throw new Error(`internal: the worker counts ${started.total} patched runs, the server ${total}`);
    job = jobs.start(
      slot,
      'patching',
      total,
      () => run!,
      (value) => {
        const raw = value as PatchingRaw;
        return assemble(kinds.flatMap((kind) => raw[kind]!));
      },
    );
    return job;
  } catch (e) {
    run?.cancel();
    slot.release();
    throw e;
  }
}
