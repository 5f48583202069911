/**
 * Logit lens: the residual stream before each layer (and the model's output) read through the
 * unembedding; the heatmap shows each (layer, position)'s top token and its probability. Click
 * a cell for its top-k. A switch (`lens=tuned` in the URL) reads through the server's tuned lens
 * instead; it is disabled, with the reason, when the server has none.
 */
import { useMemo } from 'react';
import { api } from '../api';
import { step, vl, VegaChart, type Datum } from '../chart';
import { navigate, read, type Route } from '../router';
import {
  CompactTable,
  fmtProb,
  NumberField,
  posLabels,
  PromptFields,
  showTok,
  TextField,
  TokenChips,
  toTokenRef,
  useModel,
  ViewFrame,
  withParams,
} from '../ui';
import { promptState, promptTopK, useViewForm } from '../useViewForm';

type LensKind = 'logit' | 'tuned';
const lensOf = (s: string): LensKind => (s === 'tuned' ? 'tuned' : 'logit');

/** Why the tuned lens cannot be picked (the server's refusal says the same). */
const NO_TUNED_LENS_HINT =
  "no tuned lens is loaded: start the server with --tuned-lens DIR, or put one in the model folder's tuned-lens/ (glassbox tuned-lens train)";

/** '0_pre' -> 'L0 resid_pre', 'final_post' -> 'output'. */
export function lensLabel(label: string): string {
  if (label === 'final_post') return 'output';
  const m = /^(\d+)_(pre|mid|post)$/.exec(label);
  return m ? `L${m[1]} resid_${m[2]}` : label;
}

export function LogitLensView({ route }: { route: Route }) {
  const model = useModel();
  const p = route.params;
  const base = promptTopK(model);
  const view = useViewForm(route, {
    view: 'logit-lens',
    // The prompt and top-k, and an optional token to track through the layers.
    request: (p) => {
      const r = base.request(p);
      return r ? { ...r, track: read.str(p, 'track', ''), lens: lensOf(read.str(p, 'lens', 'logit')) } : null;
    },
    form: (p) => ({ ...base.form(p), track: read.str(p, 'track', ''), lens: lensOf(read.str(p, 'lens', 'logit')) }),
    query: (f) => ({ ...base.query(f), track: f.track === '' ? undefined : f.track, lens: f.lens === 'tuned' ? 'tuned' : undefined }),
    remember: base.remember,
    run: (req, signal) =>
      api.logitLens(
        {
          ...promptState.body(req, model),
          topK: req.k,
          ...(req.track !== '' ? { track: toTokenRef(req.track, model, 'track') } : {}),
          ...(req.lens === 'tuned' ? { lens: 'tuned' as const } : {}),
        },
        signal,
      ),
  });
  const { field, data, set, req } = view;
  // The switch runs at once when a result is shown (the URL changes), else it waits for Run.
  const pickLens = (lens: LensKind) => {
    set({ lens });
    if (req) navigate('logit-lens', withParams(p, { lens: lens === 'tuned' ? 'tuned' : undefined }));
  };

  // The selected cell: `cell=layerIndex,pos` (default: the output at the last position).
  const cellParam = /^(\d+),(\d+)$/.exec(p.get('cell') ?? '');
  const nL = data?.labels.length ?? 0;
  const nP = data?.tokens.length ?? 0;
  const cell =
    data && cellParam && Number(cellParam[1]) < nL && Number(cellParam[2]) < nP
      ? { li: Number(cellParam[1]), pos: Number(cellParam[2]) }
      : { li: nL - 1, pos: nP - 1 };

  const choose = (li: number, pos: number) => navigate('logit-lens', withParams(p, { cell: `${li},${pos}` }), { replace: true });

  const spec = useMemo(() => {
    if (!data) return null;
    const xs = posLabels(data.tokens, data.strTokens);
    const ys = data.labels.map(lensLabel);
    const rows: Datum[] = [];
    data.top.forEach((layer, li) =>
      layer.forEach((preds, pos) => {
        const t = preds[0];
        rows.push({
          li,
          pos,
          layer: ys[li],
          position: xs[pos],
          top: t ? showTok(t.str, t.token) : '',
          prob: t?.prob ?? 0,
          sel: li === cell.li && pos === cell.pos,
          cell: `layer ${li} pos ${pos}`,
        });
      }),
    );
    const st = step(xs.length, 900, 30, 64);
    return vl({
      data: { values: rows },
      width: { step: st },
      height: { step: 30 },
      encoding: {
        x: { field: 'position', type: 'ordinal', sort: xs, title: 'position (input token)', axis: { labelAngle: -40, orient: 'top' } },
        y: { field: 'layer', type: 'ordinal', sort: ys, title: 'residual stream' },
      },
      layer: [
        {
          mark: { type: 'rect', tooltip: true, cursor: 'pointer' },
          encoding: {
            color: { field: 'prob', type: 'quantitative', title: 'top-1 prob', scale: { scheme: 'blues', domain: [0, 1] } },
            stroke: { condition: { test: 'datum.sel', value: '#e4572e' }, value: null },
            strokeWidth: { condition: { test: 'datum.sel', value: 3 }, value: 0 },
            description: { field: 'cell' },
            tooltip: [
              { field: 'layer', title: 'residual stream' },
              { field: 'position', title: 'position' },
              { field: 'top', title: 'top token' },
              { field: 'prob', title: 'probability', format: '.2%' },
            ],
          },
        },
        {
          mark: { type: 'text', fontSize: 10, limit: st - 4, cursor: 'pointer' },
          encoding: {
            text: { field: 'top' },
            color: { condition: { test: 'datum.prob > 0.5', value: 'white' }, value: 'black' },
          },
        },
      ],
    });
  }, [data, cell.li, cell.pos]);

  const selected = data?.top[cell.li]?.[cell.pos];

  return (
    <ViewFrame
      lede={
        <>
          What the residual stream would predict if the model stopped there: each cell is the top next token (and its probability) read from
          that layer at that position. Click a cell for its top-k.
        </>
      }
      run={view}
      fields={
        <PromptFields prompt={field('prompt')} bos={field('bos')}>
          <NumberField label="top-k" {...field('k')} testId="topk" min={1} max={model.limits.maxTopK} />
          <TextField
            label="Track token (optional)"
            {...field('track')}
            testId="track"
            hint={model.hasTokenizer ? 'its probability and rank at every layer; one token, #id for an id' : 'a token id'}
          />
          <fieldset className="field kinds" data-testid="lens-switch">
            <legend>Lens</legend>
            {(['logit', 'tuned'] as const).map((k) => (
              <label key={k} className="check">
                <input
                  type="radio"
                  name="lens"
                  checked={view.form.lens === k}
                  disabled={k === 'tuned' && !model.tunedLens}
                  onChange={() => pickLens(k)}
                  data-testid={`lens-${k}`}
                />
                <span>{k === 'logit' ? 'logit lens' : 'tuned lens'}</span>
              </label>
            ))}
            {!model.tunedLens ? (
              <span className="hint" data-testid="lens-tuned-reason">
                {NO_TUNED_LENS_HINT}
              </span>
            ) : null}
          </fieldset>
        </PromptFields>
      }
    >
      {data && spec ? (
        <>
          <p className="hint" data-testid="lens-kind" data-lens={data.lens}>
            {data.lens === 'tuned'
              ? "Tuned lens: each layer's residual stream goes through that layer's learned affine translator before the final norm and unembedding."
              : 'Logit lens: each residual stream through the final norm and the unembedding.'}
          </p>
          <TokenChips tokens={data.tokens} strTokens={data.strTokens} selected={cell.pos} />
          <VegaChart
            spec={spec}
            testId="lens-chart"
            onClick={(d) => {
              if (typeof d.li === 'number' && typeof d.pos === 'number') choose(d.li, d.pos);
            }}
          />
          {selected ? (
            <div className="card" data-testid="lens-topk" data-li={cell.li} data-pos={cell.pos}>
              <h3 data-testid="lens-topk-title">
                {lensLabel(data.labels[cell.li]!)}, position {cell.pos}{' '}
                <code>{showTok(data.strTokens?.[cell.pos] ?? null, data.tokens[cell.pos])}</code>
              </h3>
              <CompactTable headers={['#', 'token', 'probability']}>
                {selected.map((t, j) => (
                  <tr key={j} data-testid="lens-topk-row" data-token={t.token}>
                    <td className="num">{j + 1}</td>
                    <td>
                      <code data-testid="lens-tok">{showTok(t.str, t.token)}</code>
                    </td>
                    <td className="num" data-testid="lens-prob">
                      {fmtProb(t.prob)}
                    </td>
                  </tr>
                ))}
              </CompactTable>
            </div>
          ) : null}
          {data.tracked ? (
            <div className="card" data-testid="lens-track" data-pos={cell.pos}>
              <h3>
                <code>{showTok(data.tracked.str, data.tracked.token)}</code> across the layers, position {cell.pos}{' '}
                <code>{showTok(data.strTokens?.[cell.pos] ?? null, data.tokens[cell.pos])}</code>
              </h3>
              <CompactTable headers={['residual stream', 'probability', 'rank']}>
                {data.labels.map((label, li) => (
                  <tr key={label} data-testid="lens-track-row" data-li={li}>
                    <td>{lensLabel(label)}</td>
                    <td className="num" data-testid="lens-track-prob">
                      {fmtProb(data.tracked!.prob[li]![cell.pos])}
                    </td>
                    <td className="num" data-testid="lens-track-rank">
                      {data.tracked!.rank[li]![cell.pos] ?? '—'}
                    </td>
                  </tr>
                ))}
              </CompactTable>
            </div>
          ) : null}
        </>
      ) : null}
    </ViewFrame>
  );
}
