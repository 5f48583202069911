/**
 * Patching: activation patching from a clean prompt into a corrupted one. The server runs the
 * sweep as a job; its server-sent events drive the progress bar, and Cancel stops it. Results:
 * the residual stream (layer x position), attention and MLP outputs, and each head's output,
 * normalised so that the clean run scores 1 and the corrupted run 0.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { api, asApiError, followJob, type ApiError, type Grid, type PatchingKind, type PatchingResult } from '../api';
import { step, vl, VegaChart, type Datum } from '../chart';
import { read, type Route } from '../router';
import {
  BosField,
  DEFAULT_PROMPT,
  fmtNum,
  NumberField,
  posLabels,
  PromptField,
  showTok,
  Stat,
  TextField,
  TokenChips,
  toPrompt,
  toTokenRef,
  useModel,
  ViewFrame,
} from '../ui';
import { answerState, bosQuery, useViewForm } from '../useViewForm';
import { attentionHref, HeadLink } from './AttentionView';

/** DEFAULT_PROMPT with the induction cue changed: the model answers ' Stubb' here. */
export const DEFAULT_CORRUPTED = 'Then Queequeg met Stubb on deck, and later Queequeg met';

const KINDS: { kind: PatchingKind; key: 'residPre' | 'attnOut' | 'mlpOut' | 'headOut' | 'headOutByPos'; title: string }[] = [
  { kind: 'resid_pre', key: 'residPre', title: 'Residual stream (resid_pre)' },
  { kind: 'attn_out', key: 'attnOut', title: 'Attention output (attn_out)' },
  { kind: 'mlp_out', key: 'mlpOut', title: 'MLP output (mlp_out)' },
  { kind: 'head_out', key: 'headOut', title: 'Head outputs (hook_z, all positions)' },
  { kind: 'head_out_by_pos', key: 'headOutByPos', title: 'Head outputs by position (hook_z[:, pos, head])' },
];
const DEFAULT_KINDS: PatchingKind[] = ['resid_pre', 'head_out'];

/** A sweep's state; `partial` is the result so far (the runs not yet done null), kept on a cancel. */
type JobState =
  | { status: 'idle' }
  | { status: 'starting' }
  | { status: 'running'; jobId: string; done: number; total: number; partial?: PatchingResult }
  | { status: 'done'; jobId: string; done: number; total: number; result: PatchingResult }
  | { status: 'cancelling'; jobId: string; done: number; total: number; partial?: PatchingResult }
  | { status: 'cancelled'; jobId: string; done: number; total: number; partial?: PatchingResult }
  | { status: 'error'; error: ApiError; jobId?: string; done?: number; total?: number };

function parseKinds(s: string | null): PatchingKind[] {
  if (s === null) return DEFAULT_KINDS;
  const ks = s.split(',').filter((k): k is PatchingKind => KINDS.some((x) => x.kind === k));
  return ks.length ? ks : DEFAULT_KINDS;
}

export function PatchingView({ route }: { route: Route }) {
  const model = useModel();
  const view = useViewForm(route, {
    view: 'patching',
    request: (p) =>
      p.has('clean')
        ? {
            clean: read.str(p, 'clean', ''),
            corrupted: read.str(p, 'corrupted', ''),
            ...answerState.request(p),
            kinds: parseKinds(p.get('kinds')),
            bos: read.bool(p, 'bos', true),
          }
        : null,
    form: (p) => ({
      // The default corrupted prompt pairs with the default clean one (same length, one name swapped).
      clean: read.str(p, 'clean', model.hasTokenizer ? DEFAULT_PROMPT : ''),
      corrupted: read.str(p, 'corrupted', model.hasTokenizer ? DEFAULT_CORRUPTED : ''),
      ...answerState.form(p, model),
      kinds: parseKinds(p.get('kinds')),
      bos: read.bool(p, 'bos', true),
    }),
    query: (f) => ({
      clean: f.clean,
      corrupted: f.corrupted,
      answer: f.answer,
      wrong: f.wrong,
      pos: f.pos || '-1',
      kinds: f.kinds.join(','),
      bos: bosQuery(f.bos),
    }),
    remember: (f) => f.clean,
  });
  const { req, key, runId, form, set, field } = view;
  const [job, setJob] = useState<JobState>({ status: 'idle' });
  const reqRef = useRef(req);
  reqRef.current = req;

  useEffect(() => {
    const r = reqRef.current;
    if (key === null || !r) {
      setJob({ status: 'idle' });
      return;
    }
    let stopped = false;
    let stopEvents: (() => void) | null = null;
    let jobId: string | null = null;
    let finished = false;
    setJob({ status: 'starting' });
    (async () => {
      const start = await api.patching({
        clean: toPrompt(r.clean, model, 'clean'),
        corrupted: toPrompt(r.corrupted, model, 'corrupted'),
        prependBos: r.bos,
        answer: toTokenRef(r.answer, model, 'answer'),
        wrong: toTokenRef(r.wrong, model, 'wrong'),
        pos: r.pos,
        kinds: r.kinds,
      });
      jobId = start.jobId;
      if (stopped) {
        void api.cancelJob(start.jobId).catch(() => {});
        return;
      }
      const id = start.jobId;
      setJob({ status: 'running', jobId: id, done: 0, total: start.total });
      stopEvents = followJob(start.events, (e) => {
        if (e.type === 'progress')
          setJob((j) =>
            j.status === 'running' || j.status === 'cancelling'
              ? { ...j, done: e.done, total: e.total, ...(e.partial !== undefined ? { partial: e.partial as PatchingResult } : {}) }
              : j,
          );
        else {
          finished = true;
          setJob((j) => {
            const done = 'done' in j && j.done !== undefined ? j.done : 0;
            const total = 'total' in j && j.total !== undefined ? j.total : start.total;
            if (e.type === 'result') return { status: 'done', jobId: id, done: total, total, result: e.result as PatchingResult };
            if (e.type === 'cancelled') {
              const partial = (e.partial as PatchingResult | undefined) ?? ('partial' in j ? j.partial : undefined);
              return { status: 'cancelled', jobId: id, done, total, ...(partial ? { partial } : {}) };
            }
            return { status: 'error', error: e.error, jobId: id, done, total };
          });
        }
      });
    })().catch((e: unknown) => {
      if (!stopped) setJob({ status: 'error', error: asApiError(e) });
    });
    return () => {
      stopped = true;
      stopEvents?.();
      // Leaving the view (or starting another sweep) stops this one on the server too.
      if (jobId && !finished) void api.cancelJob(jobId).catch(() => {});
    };
  }, [key, runId, model]);

  const cancel = () => {
    if (job.status !== 'running') return;
    const { jobId } = job;
    setJob({ ...job, status: 'cancelling' });
    api.cancelJob(jobId).catch((e: unknown) => {
      const err = asApiError(e);
      // 409: it had already finished; its final event is on its way.
      if (err.statusCode !== 409)
        setJob((j) => ({ status: 'error', error: err, jobId, ...('done' in j ? { done: j.done, total: j.total } : {}) }));
    });
  };
  const toggleKind = (k: PatchingKind, on: boolean) =>
    set({ kinds: KINDS.map((x) => x.kind).filter((x) => (x === k ? on : form.kinds.includes(x))) });

  const running = job.status === 'starting' || job.status === 'running' || job.status === 'cancelling';
  const done = 'done' in job && job.done !== undefined ? job.done : 0;
  const total = 'total' in job && job.total !== undefined ? job.total : 0;
  // The finished result, or while the sweep runs (and after a cancel) the part done so far.
  const result = job.status === 'done' ? job.result : 'partial' in job ? (job.partial ?? null) : null;
  const statusText: Record<JobState['status'], string> = {
    idle: '',
    starting: 'Starting…',
    running: 'Patching…',
    cancelling: 'Cancelling…',
    done: 'Done',
    cancelled: 'Cancelled',
    error: 'Failed',
  };

  return (
    <ViewFrame
      lede={
        <>
          Activation patching: run the corrupted prompt, put back one activation from the clean run, and see how much of the clean behaviour
          (logit(answer) − logit(wrong), clean = 1, corrupted = 0) it restores.
        </>
      }
      run={{ ...view, loading: running, error: job.status === 'error' ? job.error : null }}
      fields={
        <>
          <PromptField label="Clean prompt" {...field('clean')} testId="clean" hint="Enter runs" />
          <PromptField
            label="Corrupted prompt"
            {...field('corrupted')}
            testId="corrupted"
            hint="the same number of tokens as the clean prompt"
          />
          <TextField label="Answer token" {...field('answer')} testId="answer" hint="the clean prompt's answer" />
          <TextField label="Wrong token" {...field('wrong')} testId="wrong" hint="the corrupted prompt's answer" />
          <NumberField label="Position" {...field('pos')} testId="pos" />
          <fieldset className="field kinds">
            <legend>Patch</legend>
            {KINDS.map((k) => (
              <label key={k.kind} className="check">
                <input
                  type="checkbox"
                  checked={form.kinds.includes(k.kind)}
                  onChange={(e) => toggleKind(k.kind, e.target.checked)}
                  data-testid={`kind-${k.kind}`}
                />
                <span>{k.kind}</span>
              </label>
            ))}
          </fieldset>
          <BosField {...field('bos')} />
        </>
      }
      progress={
        job.status !== 'idle' ? (
          <div
            className="progress-row"
            data-testid="patch-job"
            data-status={job.status}
            data-job-id={'jobId' in job ? job.jobId : undefined}
          >
            <progress data-testid="patch-progress" value={done} max={total || 1} aria-label="patching progress" />
            {/* Beside the bar, before the changing numbers, so it never moves while it can be clicked. */}
            {job.status === 'running' ? (
              <button type="button" onClick={cancel} data-testid="patch-cancel">
                Cancel
              </button>
            ) : null}
            <span className="progress-text" data-testid="patch-progress-text">
              {done} / {total || '?'}
            </span>
            <span className={`status status-${job.status}`} data-testid="patch-status">
              {statusText[job.status]}
            </span>
          </div>
        ) : null
      }
    >
      {result ? (
        <PatchingResults result={result} partial={job.status !== 'done'} link={req ? { prompt: req.clean, bos: req.bos } : null} />
      ) : null}
    </ViewFrame>
  );
}

/** `link`: the clean prompt a head opens its attention pattern on. */
function PatchingResults({
  result,
  partial,
  link,
}: {
  result: PatchingResult;
  partial: boolean;
  link: { prompt: string; bos: boolean } | null;
}) {
  const labels = useMemo(() => posLabels(result.tokens, result.strTokens), [result]);
  // The positions where the two prompts differ, with both tokens: what the sweep can move.
  const differing = result.tokens.flatMap((t, i) => (t !== result.corruptedTokens[i] ? [i] : []));
  return (
    <>
      <div className="two-col">
        <div>
          <h3>Clean</h3>
          <TokenChips tokens={result.tokens} strTokens={result.strTokens} selected={result.pos} testId="clean-chips" />
        </div>
        <div>
          <h3>Corrupted</h3>
          <TokenChips
            tokens={result.corruptedTokens}
            strTokens={result.corruptedStrTokens}
            selected={result.pos}
            testId="corrupted-chips"
          />
        </div>
      </div>
      <div className="stats">
        <Stat label="clean logit diff" value={fmtNum(result.cleanValue, 4)} testId="patch-clean-value" />
        <Stat label="corrupted logit diff" value={fmtNum(result.corruptedValue, 4)} testId="patch-corrupted-value" />
      </div>
      {!(result.cleanValue !== null && result.corruptedValue !== null && result.cleanValue > result.corruptedValue) ? (
        // (x − corrupted) / (clean − corrupted) then divides by zero or flips sign: no cell means "restored".
        <div className="error" role="alert" data-testid="patch-warning">
          <strong>The clean prompt does not beat the corrupted one</strong>
          <span>
            clean logit diff {fmtNum(result.cleanValue, 4)}, corrupted {fmtNum(result.corruptedValue, 4)}: the model does not solve the
            clean prompt better, so the normalisation (clean = 1, corrupted = 0) is meaningless. Pick prompts (or answer and wrong tokens)
            where the clean logit difference is larger.
          </span>
        </div>
      ) : null}
      <div className="card">
        <h3>Differing positions</h3>
        {differing.length === 0 ? (
          <p className="hint" data-testid="patch-diff-none">
            none: the prompts are the same tokens
          </p>
        ) : (
          <table className="table compact" data-testid="patch-diff">
            <thead>
              <tr>
                <th>position</th>
                <th>clean</th>
                <th>corrupted</th>
              </tr>
            </thead>
            <tbody>
              {differing.map((i) => (
                <tr key={i} data-testid="patch-diff-row" data-pos={i}>
                  <td className="num">{i}</td>
                  <td>
                    <code data-testid="patch-diff-clean">{showTok(result.strTokens?.[i], result.tokens[i])}</code>
                  </td>
                  <td>
                    <code data-testid="patch-diff-corrupted">{showTok(result.corruptedStrTokens?.[i], result.corruptedTokens[i])}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {partial ? (
        <p className="hint" data-testid="patch-partial">
          The runs done so far: empty cells are not patched (yet).
        </p>
      ) : null}
      {KINDS.map(({ kind, key, title }) => {
        if (key === 'headOutByPos') {
          const byPos = result.headOutByPos;
          return byPos ? <HeadByPosHeatmap key={kind} title={title} byPos={byPos} xs={labels} partial={partial} link={link} /> : null;
        }
        const grid = result[key];
        if (!grid) return null;
        return (
          <PatchHeatmap
            key={kind}
            kind={kind}
            title={title}
            grid={grid}
            xs={kind === 'head_out' ? null : labels}
            partial={partial}
            link={kind === 'head_out' ? link : null}
          />
        );
      })}
    </>
  );
}

/**
 * Per-position head patching, one layer at a time: a heatmap of heads (rows) by positions, the
 * layer picked with buttons (default: the layer of the largest cell of the whole sweep).
 */
function HeadByPosHeatmap({
  title,
  byPos,
  xs,
  partial,
  link,
}: {
  title: string;
  /** [layer][pos][head], as the API returns it. */
  byPos: Grid[];
  xs: string[];
  partial: boolean;
  link: { prompt: string; bos: boolean } | null;
}) {
  const best = useMemo(() => {
    let b: { l: number; p: number; h: number; v: number } | null = null;
    byPos.forEach((rows, l) =>
      rows.forEach((row, p) =>
        row.forEach((v, h) => {
          if (v !== null && (b === null || v > b.v)) b = { l, p, h, v };
        }),
      ),
    );
    return b as { l: number; p: number; h: number; v: number } | null;
  }, [byPos]);
  const [picked, setPicked] = useState<number | null>(null);
  const layer = Math.min(picked ?? best?.l ?? 0, byPos.length - 1);
  // The layer's [pos][head] turned to [head][pos]: heads as rows, like the layers of the other grids.
  const grid = useMemo(() => {
    const rows = byPos[layer] ?? [];
    const H = rows[0]?.length ?? 0;
    return Array.from({ length: H }, (_, h) => rows.map((row) => row[h] ?? null));
  }, [byPos, layer]);
  const rowLabels = useMemo(() => grid.map((_, h) => `H${h}`), [grid]);
  return (
    <div className="card" data-testid="patch-by-pos" data-layer={layer}>
      <h3>{title}</h3>
      {best ? (
        <p className="hint" data-testid="patch-best-head_out_by_pos" data-layer={best.l} data-head={best.h} data-col={best.p}>
          largest: <strong>{best.v.toFixed(4)}</strong> at{' '}
          {link ? (
            <HeadLink prompt={link.prompt} bos={link.bos} layer={best.l} head={best.h} />
          ) : (
            <>
              L{best.l}H{best.h}
            </>
          )}
          , position {xs[best.p]}
        </p>
      ) : null}
      <div className="toolbar layer-pick" role="group" aria-label="layer">
        {byPos.map((_, l) => (
          <button key={l} type="button" aria-pressed={l === layer} onClick={() => setPicked(l)} data-testid={`patch-by-pos-layer-${l}`}>
            L{l}
          </button>
        ))}
      </div>
      <PatchHeatmap
        kind="head_out_by_pos"
        title={`Layer ${layer}: head × position`}
        grid={grid}
        xs={xs}
        rows={{ labels: rowLabels, title: 'head' }}
        partial={partial}
        link={link}
        headAt={(h) => ({ layer, head: h })}
        bare
      />
    </div>
  );
}

/**
 * One grid's heatmap (layers, or with `rows` other rows, by positions or heads); while the sweep
 * runs (`partial`) the cells not yet patched (null) are left empty. `headAt` names the head a
 * cell (row, column) opens; by default a per-head grid's (layer, head).
 */
function PatchHeatmap({
  kind,
  title,
  grid,
  xs,
  partial,
  link,
  rows,
  headAt,
  bare,
}: {
  kind: PatchingKind;
  title: string;
  grid: Grid;
  xs: string[] | null;
  partial: boolean;
  /** Grids of heads: the prompt a clicked head opens its attention pattern on. */
  link: { prompt: string; bos: boolean } | null;
  rows?: { labels: string[]; title: string };
  headAt?: (row: number, col: number) => { layer: number; head: number };
  /** Inside another card: no card and no "largest" line of its own. */
  bare?: boolean;
}) {
  const perHead = xs === null;
  const head = headAt ?? ((l: number, c: number) => ({ layer: l, head: c }));
  const cols = grid[0]?.length ?? 0;
  const colLabels = useMemo(() => xs ?? Array.from({ length: cols }, (_, h) => `H${h}`), [xs, cols]);
  const layerLabels = useMemo(() => grid.map((_, l) => `L${l}`), [grid]);
  const rowLabels = rows?.labels ?? layerLabels;
  const rowTitle = rows?.title ?? 'layer';
  const best = useMemo(() => {
    let b: { l: number; c: number; v: number } | null = null;
    grid.forEach((row, l) =>
      row.forEach((v, c) => {
        if (v !== null && (b === null || v > b.v)) b = { l, c, v };
      }),
    );
    return b as { l: number; c: number; v: number } | null;
  }, [grid]);
  const spec = useMemo(() => {
    const rows: Datum[] = [];
    grid.forEach((row, l) =>
      row.forEach((v, c) => {
        if (v !== null || !partial) rows.push({ l, c, layer: rowLabels[l], col: colLabels[c], value: v ?? 0 });
      }),
    );
    const max = Math.max(1, ...rows.map((r) => Math.abs(r.value as number)));
    return vl({
      data: { values: rows },
      width: { step: step(cols, 760, 18, 48) },
      height: { step: 28 },
      mark: { type: 'rect', tooltip: true },
      encoding: {
        x: {
          field: 'col',
          type: 'ordinal',
          sort: colLabels,
          // The whole grid from the start, so that cells fill in without the axes moving.
          scale: { domain: colLabels },
          title: perHead ? 'head' : 'position (clean token)',
          axis: perHead ? {} : { labelAngle: -40 },
        },
        y: { field: 'layer', type: 'ordinal', sort: rowLabels, scale: { domain: rowLabels }, title: rowTitle },
        color: { field: 'value', type: 'quantitative', title: 'restored', scale: { scheme: 'redblue', domain: [-max, max] } },
        tooltip: [
          { field: 'layer', title: rowTitle },
          { field: 'col', title: perHead ? 'head' : 'position' },
          { field: 'value', title: 'restored', format: '.4f' },
        ],
      },
    });
  }, [grid, cols, perHead, colLabels, rowLabels, rowTitle, partial]);
  const chart = (
    <VegaChart
      spec={spec}
      testId={`patch-${kind}`}
      onClick={(d) => {
        if (link && typeof d.l === 'number' && typeof d.c === 'number') {
          const { layer, head: h } = head(d.l, d.c);
          location.hash = attentionHref(link.prompt, link.bos, layer, h);
        }
      }}
    />
  );
  if (bare)
    return (
      <>
        <h4>{title}</h4>
        {chart}
      </>
    );
  return (
    <div className="card">
      <h3>{title}</h3>
      {best ? (
        <p className="hint" data-testid={`patch-best-${kind}`} data-layer={best.l} data-col={best.c}>
          largest: <strong>{best.v.toFixed(4)}</strong> at{' '}
          {link ? (
            <HeadLink prompt={link.prompt} bos={link.bos} layer={best.l} head={best.c} />
          ) : (
            <>
              {rowLabels[best.l]} {perHead ? colLabels[best.c] : `position ${colLabels[best.c]}`}
            </>
          )}
        </p>
      ) : null}
      {chart}
    </div>
  );
}
