/**
 * The activation patching sweep as a job: the clean and corrupted runs are done when the request
 * arrives (so a bad problem is a 400 at once), then each kind of sweep runs one layer per chunk
 * through `runPatches`, with a checkpoint (progress, yield, cancellation) after every layer.
 * The numbers are those of `patchResidPre`, `patchAttnOut`, `patchMlpOut` and `patchHeadOut`:
 * the metric logit(answer) - logit(wrong) at `pos`, normalised so that the clean run scores 1
 * and the corrupted run 0.
 */
import { preparePatching, runPatches, type Patch, type PatchSource } from '../analysis/index.js';
import { HttpError, userInput } from './errors.js';
import { checkPos, grid, num, promptIds, strTokens, tokenId, type Ctx } from './handlers.js';
import type { JobControl } from './jobs.js';
import type { PatchingBody, PatchingGrids, PatchingKind, PatchingResult } from './schemas.js';
import { hookName } from '../model/hook-names.js';

/** Per kind: the hook patched at a layer, and the patches of that layer over a grid. */
const KINDS: Record<PatchingKind, { key: keyof PatchingGrids; hook: (l: number) => string; perHead: boolean }> = {
  resid_pre: { key: 'residPre', hook: (l) => hookName('resid_pre', l), perHead: false },
  attn_out: { key: 'attnOut', hook: (l) => hookName('attn_out', l), perHead: false },
  mlp_out: { key: 'mlpOut', hook: (l) => hookName('mlp_out', l), perHead: false },
  head_out: { key: 'headOut', hook: (l) => hookName('z', l), perHead: true },
};

/** A patching problem checked and with its clean run done, ready to sweep. */
export interface PatchingPlan {
  total: number;
  run(control: JobControl): Promise<PatchingResult>;
}

/**
 * POST /api/patching `{ clean, corrupted, prependBos?, answer, wrong, pos? = -1, kinds? =
 * ['resid_pre', 'head_out'] }` starts a job. Its result: `{ tokens, strTokens, corruptedTokens,
 * corruptedStrTokens, answer, wrong, pos, cleanValue, corruptedValue, residPre?, attnOut?,
 * mlpOut?, headOut? }` with residPre/attnOut/mlpOut [layer][pos] (patching that activation at one
 * position) and headOut [layer][head] (patching one head's output, hook_z, at every position).
 * Progress counts patched runs.
 */
export function planPatching(ctx: Ctx, body: PatchingBody): PatchingPlan {
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
  const hooks: string[] = [];
  for (const kind of kinds)
    for (let l = 0; l < L; l++) {
      const h = KINDS[kind].hook(l);
      if (!model.hookNames.includes(h)) throw new HttpError(400, `this model has no hook point '${h}', so no '${kind}' patching`);
      hooks.push(h);
    }
  const prep = userInput(() => preparePatching(model, { clean: [clean], corrupted: [corrupted], answer, wrong, pos }, hooks));
  const width = (kind: PatchingKind) => (KINDS[kind].perHead ? H : s);
  const total = kinds.reduce((n, k) => n + L * width(k), 0);
  return {
    total,
    async run(control) {
      const out: PatchingResult = {
        tokens: clean,
        strTokens: strTokens(model, clean),
        corruptedTokens: corrupted,
        corruptedStrTokens: strTokens(model, corrupted),
        answer,
        wrong,
        pos,
        cleanValue: num(prep.cleanValue),
        corruptedValue: num(prep.corruptedValue),
      };
      let done = 0;
      await control.checkpoint(0);
      for (const kind of kinds) {
        const { key, hook, perHead } = KINDS[kind];
        const n = width(kind);
        const rows: number[] = [];
        for (let l = 0; l < L; l++) {
          const h = hook(l);
          const v = prep.cleanCache.get(h);
          const sources: Record<string, PatchSource> = { [h]: { shape: v.shape.slice(1), values: v } };
          const patches: Patch[] = Array.from({ length: n }, (_, i) => ({ hook: h, index: perHead ? [null, i] : [i] }));
          rows.push(...runPatches(model, prep.corruptedTokens, patches, sources, prep.evaluate).map(prep.normalise));
          done += n;
          await control.checkpoint(done);
        }
        out[key] = grid(rows, [L, n]);
      }
      return out;
    },
  };
}
