/**
 * The HTTP side of computed graphs and interventions: POST /api/graph starts a job (a slot
 * reserved first, a 429 at once when the server runs its most jobs) whose work runs in the model
 * worker (graph-compute.ts); the finished graph is checked like a graph file and kept in the
 * GraphStore under the job's id. POST /api/graph/intervene is one worker request.
 */
import { HttpError } from './errors.js';
import { checkGraphFile, summarize, type GraphStore } from './graphs.js';
import { num, promptIds, strTokens, tokenStr, type Ctx } from './handlers.js';
import type { Job, JobManager } from './jobs.js';
import { GRAPH_PHASES, type GraphArgs, type GraphStep, type InterveneArgs, type InterveneRaw } from './graph-compute.js';
import type { GraphBody, GraphFile, GraphInterveneBody, InterveneResult, TokenProb } from './schemas.js';

/** What a server needs to compute graphs: its transcoders were given (serve --transcoders DIR). */
export function requireTranscoders(has: boolean): void {
  if (!has)
    throw new HttpError(
      400,
      'this server has no transcoders, so it cannot compute graphs or intervene; start it with serve MODEL --transcoders DIR (it serves the graph files it was started with, serve --graph FILE.json)',
    );
}

/**
 * POST /api/graph `{ prompt, prependBos?, nodeThreshold? = 0.8, edgeThreshold? = 0.98,
 * maxFeatureNodes?, maxLogits?, desiredLogitProb? }` starts a job; its result is the graph's
 * summary `{ id, prompt, promptTokens, nodes, links, source: 'computed' }`, the graph itself at
 * GET /api/graphs/{id}. Progress counts the phases (the clean run, attribution's rows, pruning); a
 * cancel (DELETE /api/jobs/{id}) stops the attribution between two batches of rows.
 */
export async function startGraph(ctx: Ctx, jobs: JobManager, graphs: GraphStore, hasTranscoders: boolean, body: GraphBody): Promise<Job> {
  requireTranscoders(hasTranscoders);
  const { model } = ctx;
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  const promptTokens = strTokens(model, tokens) ?? tokens.map((t) => `#${t}`);
  const prompt = typeof body.prompt === 'string' ? body.prompt : promptTokens.join('');
  const slot = jobs.reserve();
  let run: ReturnType<typeof ctx.worker.job<GraphStep, unknown>> | null = null;
  try {
    let job: Job | null = null;
    const args: Omit<GraphArgs, 'slug'> = {
      tokens,
      promptTokens,
      prompt,
      nodeThreshold: body.nodeThreshold ?? 0.8,
      edgeThreshold: body.edgeThreshold ?? 0.98,
      ...(body.maxFeatureNodes !== undefined ? { maxFeatureNodes: body.maxFeatureNodes } : {}),
      ...(body.maxLogits !== undefined ? { maxLogits: body.maxLogits } : {}),
      ...(body.desiredLogitProb !== undefined ? { desiredLogitProb: body.desiredLogitProb } : {}),
    };
    // The graph's id is the job's: known once the job exists, so the slug is set on the result.
    run = ctx.worker.job<GraphStep, unknown>('graph', { ...args, slug: 'computed' }, (step) => {
      if ('done' in (step as GraphStep)) job?.progress((step as { done: number }).done);
    });
    await run.started;
    job = jobs.start(
      slot,
      'graph',
      GRAPH_PHASES,
      () => run!,
      (value) => {
        const id = job!.id;
        const file = checkGraphFile(value, `the graph computed by job ${id}`);
        file.metadata.slug = id;
        relabelLogits(ctx, file);
        graphs.addComputed(id, file);
        return summarize(id, file, 'computed');
      },
    );
    return job;
  } catch (e) {
    run?.cancel();
    slot.release();
    throw e;
  }
}

/** Logit nodes labelled with their token's text (the worker, without a tokenizer, wrote ids). */
function relabelLogits(ctx: Ctx, file: GraphFile): void {
  if (!ctx.model.tokenizer) return;
  for (const n of file.nodes)
    if (n.feature_type === 'logit' && n.feature !== null) {
      const p = n.token_prob ?? 0;
      n.clerp = `Output ${JSON.stringify(tokenStr(ctx.model, n.feature))} (p=${p.toFixed(3)})`;
    }
}

/**
 * POST /api/graph/intervene `{ prompt, prependBos?, features: [{ layer, feature, pos?, scale? |
 * value? }], topK? = 10 }` -> `{ tokens, strTokens, before, after }`: the top next tokens at the
 * last position, the model's own and with each feature set to `value` or scaled by `scale`
 * (absent both: zeroed) in the local replacement model.
 */
export async function interveneGraph(ctx: Ctx, hasTranscoders: boolean, body: GraphInterveneBody): Promise<InterveneResult> {
  requireTranscoders(hasTranscoders);
  const { model } = ctx;
  const tokens = promptIds(ctx, body.prompt, body.prependBos);
  body.features.forEach((f, i) => {
    if (f.scale !== undefined && f.value !== undefined) throw new HttpError(400, `features[${i}]: give scale or value, not both`);
    for (const p of f.pos ?? [])
      if (p < 0 || p >= tokens.length)
        throw new HttpError(400, `features[${i}].pos: ${p} is outside the prompt's ${tokens.length} positions`);
  });
  const topK = Math.min(body.topK ?? 10, model.cfg.dVocab);
  const args: InterveneArgs = { tokens, features: body.features.map((f) => ({ ...f, ...(f.pos ? { pos: [...f.pos] } : {}) })), topK };
  const r = await ctx.worker.call<InterveneRaw>('intervene', args);
  const list = (x: InterveneRaw['before']): TokenProb[] =>
    x.ids.map((token, i) => ({ token, str: tokenStr(model, token), prob: num(x.probs[i]!) }));
  return { tokens, strTokens: strTokens(model, tokens), before: list(r.before), after: list(r.after) };
}
