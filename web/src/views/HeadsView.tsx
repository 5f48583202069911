/**
 * Heads: every head's induction, previous-token and duplicate-token score as a layer x head
 * heatmap. Induction is scored on random tokens repeated twice; the other two on the prompt
 * (or on those repeated tokens when the prompt is empty).
 */
import { useMemo, type FormEvent } from 'react';
import { api, type Grid, type HeadsResult } from '../api';
import { vl, VegaChart, type Datum } from '../chart';
import { navigate, read, type Route } from '../router';
import {
  BosField,
  ErrorBox,
  fmtNum,
  Loading,
  NumberField,
  PromptField,
  queryOf,
  RunButton,
  TokenChips,
  toPrompt,
  useForm,
  useModel,
  useQuery,
} from '../ui';

const SCORES: { key: 'induction' | 'previousToken' | 'duplicateToken'; title: string; what: string }[] = [
  { key: 'induction', title: 'Induction', what: 'attention from a repeated token to the token after its first occurrence' },
  { key: 'previousToken', title: 'Previous token', what: 'attention to the position just before' },
  { key: 'duplicateToken', title: 'Duplicate token', what: 'attention to earlier copies of the same token' },
];

/** The heads with the highest scores, best first. */
export function topHeads(grid: Grid, n: number): { layer: number; head: number; score: number }[] {
  const all: { layer: number; head: number; score: number }[] = [];
  grid.forEach((row, layer) => row.forEach((score, head) => score !== null && all.push({ layer, head, score })));
  return all.sort((a, b) => b.score - a.score).slice(0, n);
}

export function HeadsView({ route }: { route: Route }) {
  const model = useModel();
  const p = route.params;
  const defaultSeqLen = Math.min(50, Math.floor((model.limits.maxTokens - (model.bosTokenId !== null ? 1 : 0)) / 2));
  const submitted = p.has('seqLen') || p.has('prompt') || p.has('seed') || p.has('batch');
  const req = submitted
    ? {
        prompt: read.str(p, 'prompt', ''),
        seqLen: read.int(p, 'seqLen', defaultSeqLen),
        batch: read.int(p, 'batch', 4),
        seed: read.int(p, 'seed', 0),
        bos: read.bool(p, 'bos', true),
      }
    : null;
  const key = req ? JSON.stringify(req) : null;
  const [form, set] = useForm(key ?? '', () => ({
    prompt: read.str(p, 'prompt', ''),
    seqLen: String(read.int(p, 'seqLen', defaultSeqLen)),
    batch: String(read.int(p, 'batch', 4)),
    seed: String(read.int(p, 'seed', 0)),
    bos: read.bool(p, 'bos', true),
  }));
  const q = useQuery(key, (signal) =>
    api.heads(
      {
        ...(req!.prompt !== '' ? { prompt: toPrompt(req!.prompt, model), prependBos: req!.bos } : {}),
        seqLen: req!.seqLen,
        batch: req!.batch,
        seed: req!.seed,
      },
      signal,
    ),
  );
  const data = q.data;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    navigate(
      'heads',
      queryOf({
        prompt: form.prompt === '' ? undefined : form.prompt,
        seqLen: form.seqLen || String(defaultSeqLen),
        batch: form.batch || '4',
        seed: form.seed || '0',
        bos: form.bos ? undefined : false,
      }),
    );
  };

  return (
    <section className="view">
      <h2>Heads</h2>
      <p className="lede">Scores in [0, 1] for every head: how much of its attention follows each pattern.</p>
      <form className="form" onSubmit={submit} data-testid="form">
        <PromptField
          label="Prompt (optional)"
          value={form.prompt}
          onChange={(v) => set({ prompt: v })}
          testId="prompt"
          required={false}
          placeholder="empty: score previous- and duplicate-token heads on the repeated random tokens"
          hint="Enter runs"
        />
        <NumberField label="repeat length" value={form.seqLen} onChange={(v) => set({ seqLen: v })} testId="seqlen" min={1} />
        <NumberField
          label="rows"
          value={form.batch}
          onChange={(v) => set({ batch: v })}
          testId="batch"
          min={1}
          max={model.limits.maxHeadBatch}
        />
        <NumberField label="seed" value={form.seed} onChange={(v) => set({ seed: v })} testId="seed" min={0} />
        <BosField value={form.bos} onChange={(v) => set({ bos: v })} />
        <RunButton loading={q.loading} />
      </form>
      <ErrorBox error={q.error} />
      <Loading on={q.loading} />
      {data ? (
        <div className={`results${q.loading ? ' stale' : ''}`} data-testid="results">
          <p className="hint" data-testid="heads-scored-on">
            Induction scored on {data.repeated.batch} rows of {data.repeated.seqLen} random tokens repeated twice (seed {data.repeated.seed}
            ); previous- and duplicate-token scores on {data.scoredOn === 'prompt' ? 'the prompt' : 'those repeated tokens'}.
          </p>
          {data.tokens ? <TokenChips tokens={data.tokens} strTokens={data.strTokens} /> : null}
          <div className="grid3">
            {SCORES.map((s) => (
              <HeadScores key={s.key} kind={s.key} title={s.title} what={s.what} data={data} />
            ))}
          </div>
        </div>
      ) : null}
    </section>
  );
}

function HeadScores({ kind, title, what, data }: { kind: (typeof SCORES)[number]['key']; title: string; what: string; data: HeadsResult }) {
  const grid = data[kind];
  const spec = useMemo(() => {
    const rows: Datum[] = [];
    grid.forEach((row, l) =>
      row.forEach((v, h) =>
        rows.push({ layer: `L${l}`, head: `H${h}`, score: v, label: v === null ? '' : v.toFixed(2), name: `L${l}H${h}` }),
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
          mark: { type: 'rect', tooltip: true },
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
      <VegaChart spec={spec} testId={`heads-${kind}`} />
      <table className="table compact" data-testid={`heads-top-${kind}`}>
        <tbody>
          {top.map((t) => (
            <tr key={`${t.layer}.${t.head}`} data-testid="heads-top-row" data-layer={t.layer} data-head={t.head}>
              <td>
                <code>
                  L{t.layer}H{t.head}
                </code>
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
