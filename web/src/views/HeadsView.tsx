/**
 * Heads: every head's induction, previous-token and duplicate-token score as a layer x head
 * heatmap. Induction is scored on random tokens repeated twice; the other two on the prompt
 * (or on those repeated tokens when the prompt is empty).
 */
import { useMemo } from 'react';
import { api, type Grid, type HeadsResult } from '../api';
import { vl, VegaChart, type Datum } from '../chart';
import { read, type Route } from '../router';
import { BosField, fmtNum, NumberField, PromptField, startPrompt, TokenChips, useModel, ViewFrame } from '../ui';
import { attentionHref, HeadLink } from './AttentionView';
import { bosQuery, promptState, useViewForm } from '../useViewForm';

const SCORES: { key: 'induction' | 'previousToken' | 'duplicateToken'; title: string; what: string }[] = [
  { key: 'induction', title: 'Induction', what: 'attention from a repeated token to the token after its first occurrence' },
  { key: 'previousToken', title: 'Previous token', what: 'attention to the position just before' },
  { key: 'duplicateToken', title: 'Duplicate token', what: 'attention to earlier copies of the same token' },
];

/**
 * The default repeat length: 20, where the default model's induction head (L1H4) scores 0.92. It
 * learned induction at short distances: its best head scores 0.91 at 30 tokens, 0.45 at 50 (the
 * length TransformerLens uses) and 0.25 at 127.
 */
export const DEFAULT_REPEAT_LENGTH = 20;

/** The heads with the highest scores, best first. */
export function topHeads(grid: Grid, n: number): { layer: number; head: number; score: number }[] {
  const all: { layer: number; head: number; score: number }[] = [];
  grid.forEach((row, layer) => row.forEach((score, head) => score !== null && all.push({ layer, head, score })));
  return all.sort((a, b) => b.score - a.score).slice(0, n);
}

export function HeadsView({ route }: { route: Route }) {
  const model = useModel();
  const defaultSeqLen = Math.min(DEFAULT_REPEAT_LENGTH, Math.floor((model.limits.maxTokens - (model.bosTokenId !== null ? 1 : 0)) / 2));
  const fromUrl = (p: URLSearchParams) => ({
    prompt: read.str(p, 'prompt', ''),
    seqLen: read.int(p, 'seqLen', defaultSeqLen),
    batch: read.int(p, 'batch', 4),
    seed: read.int(p, 'seed', 0),
    bos: read.bool(p, 'bos', true),
  });
  const view = useViewForm(route, {
    view: 'heads',
    request: (p) => (p.has('seqLen') || p.has('prompt') || p.has('seed') || p.has('batch') ? fromUrl(p) : null),
    form: (p) => {
      const f = fromUrl(p);
      return { ...f, seqLen: String(f.seqLen), batch: String(f.batch), seed: String(f.seed) };
    },
    query: (f) => ({
      prompt: f.prompt === '' ? undefined : f.prompt,
      seqLen: f.seqLen || String(defaultSeqLen),
      batch: f.batch || '4',
      seed: f.seed || '0',
      bos: bosQuery(f.bos),
    }),
    run: (req, signal) =>
      api.heads(
        {
          ...(req.prompt !== '' ? promptState.body(req, model) : {}),
          seqLen: req.seqLen,
          batch: req.batch,
          seed: req.seed,
        },
        signal,
      ),
  });
  const { field, data, req } = view;
  // A head opens its pattern on the prompt it was scored on, or (scored on random tokens) the default prompt.
  const link = { prompt: req && req.prompt !== '' ? req.prompt : startPrompt(model), bos: req?.bos ?? true };

  return (
    <ViewFrame
      lede="Scores in [0, 1] for every head: how much of its attention follows each pattern."
      run={view}
      fields={
        <>
          <PromptField
            label="Prompt (optional)"
            {...field('prompt')}
            testId="prompt"
            required={false}
            placeholder="empty: score previous- and duplicate-token heads on the repeated random tokens"
            hint="Enter runs"
          />
          <NumberField label="repeat length" {...field('seqLen')} testId="seqlen" min={1} />
          <NumberField label="rows" {...field('batch')} testId="batch" min={1} max={model.limits.maxHeadBatch} />
          <NumberField label="seed" {...field('seed')} testId="seed" min={0} />
          <BosField {...field('bos')} />
        </>
      }
    >
      {data ? (
        <>
          <p className="hint" data-testid="heads-scored-on">
            Induction scored on {data.repeated.batch} rows of {data.repeated.seqLen} random tokens repeated twice (seed {data.repeated.seed}
            ); previous- and duplicate-token scores on {data.scoredOn === 'prompt' ? 'the prompt' : 'those repeated tokens'}.
          </p>
          {data.tokens ? <TokenChips tokens={data.tokens} strTokens={data.strTokens} /> : null}
          <div className="grid3">
            {SCORES.map((s) => (
              <HeadScores key={s.key} kind={s.key} title={s.title} what={s.what} data={data} link={link} />
            ))}
          </div>
        </>
      ) : null}
    </ViewFrame>
  );
}

function HeadScores({
  kind,
  title,
  what,
  data,
  link,
}: {
  kind: (typeof SCORES)[number]['key'];
  title: string;
  what: string;
  data: HeadsResult;
  link: { prompt: string; bos: boolean };
}) {
  const grid = data[kind];
  const spec = useMemo(() => {
    const rows: Datum[] = [];
    grid.forEach((row, l) =>
      row.forEach((v, h) =>
        rows.push({ l, h, layer: `L${l}`, head: `H${h}`, score: v, label: v === null ? '' : v.toFixed(2), name: `L${l}H${h}` }),
      ),
    );
    const H = grid[0]?.length ?? 0;
    const cell = Math.max(18, Math.min(44, Math.floor(360 / Math.max(1, H))));
    return vl({
      data: { values: rows },
      width: { step: cell },
      height: { step: Math.max(22, Math.min(36, cell)) },
      encoding: {
        x: { field: 'head', type: 'ordinal', sort: null, title: 'head' },
        y: { field: 'layer', type: 'ordinal', sort: null, title: 'layer' },
      },
      layer: [
        {
          mark: { type: 'rect', tooltip: true, cursor: 'pointer' },
          encoding: {
            color: { field: 'score', type: 'quantitative', title: 'score', scale: { scheme: 'viridis', domain: [0, 1] } },
            description: { field: 'name' },
            tooltip: [
              { field: 'name', title: 'head' },
              { field: 'score', title: title.toLowerCase(), format: '.4f' },
            ],
          },
        },
        ...(cell >= 30
          ? [
              {
                mark: { type: 'text', fontSize: 9 },
                encoding: {
                  text: { field: 'label' },
                  color: { condition: { test: 'datum.score > 0.6', value: 'black' }, value: 'white' },
                },
              },
            ]
          : []),
      ],
    });
  }, [grid, title]);
  const top = useMemo(() => topHeads(grid, 3), [grid]);
  return (
    <div className="card">
      <h3>{title}</h3>
      <p className="hint">{what}</p>
      <p className="hint">Click a head to open its attention pattern.</p>
      <VegaChart
        spec={spec}
        testId={`heads-${kind}`}
        onClick={(d) => {
          if (typeof d.l === 'number' && typeof d.h === 'number') location.hash = attentionHref(link.prompt, link.bos, d.l, d.h);
        }}
      />
      <table className="table compact" data-testid={`heads-top-${kind}`}>
        <tbody>
          {top.map((t) => (
            <tr key={`${t.layer}.${t.head}`} data-testid="heads-top-row" data-layer={t.layer} data-head={t.head}>
              <td>
                <HeadLink prompt={link.prompt} bos={link.bos} layer={t.layer} head={t.head} />
              </td>
              <td className="num" data-testid="heads-score">
                {fmtNum(t.score, 4)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
