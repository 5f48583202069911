/** Prompt: the prompt's tokens as chips and, per position, the model's top-k next tokens. */
import { useMemo, type FormEvent } from 'react';
import { api } from '../api';
import { vl, VegaChart } from '../chart';
import { navigate, read, type Route } from '../router';
import {
  BosField,
  ErrorBox,
  fmtProb,
  Loading,
  NumberField,
  PromptField,
  queryOf,
  rememberPrompt,
  RunButton,
  showTok,
  startPrompt,
  TokenChips,
  toPrompt,
  useForm,
  useModel,
  useQuery,
  withParams,
} from '../ui';

export function PromptView({ route }: { route: Route }) {
  const model = useModel();
  const p = route.params;
  const submitted = p.has('prompt');
  const req = submitted ? { prompt: read.str(p, 'prompt', ''), k: read.int(p, 'k', 5), bos: read.bool(p, 'bos', true) } : null;
  const key = req ? JSON.stringify(req) : null;
  const [form, set] = useForm(key ?? '', () => ({
    prompt: read.str(p, 'prompt', startPrompt(model)),
    k: String(read.int(p, 'k', 5)),
    bos: read.bool(p, 'bos', true),
  }));
  const q = useQuery(key, (signal) => api.forward({ prompt: toPrompt(req!.prompt, model), prependBos: req!.bos, topK: req!.k }, signal));
  const data = q.data;
  const n = data?.tokens.length ?? 0;
  const selRaw = read.int(p, 'pos', -1);
  const sel = n ? Math.min(n - 1, Math.max(0, selRaw < 0 ? selRaw + n : selRaw)) : 0;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    rememberPrompt(form.prompt);
    navigate('prompt', queryOf({ prompt: form.prompt, k: form.k || '5', bos: form.bos ? undefined : false }));
  };
  const select = (pos: number) => navigate('prompt', withParams(p, { pos }), { replace: true });

  const spec = useMemo(() => {
    if (!data) return null;
    const rows = data.top[sel]!.map((t, rank) => ({ rank, tok: `${rank + 1}. ${showTok(t.str, t.token)}`, prob: t.prob ?? 0 }));
    return vl({
      data: { values: rows },
      width: 360,
      height: { step: 20 },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'tok', type: 'nominal', sort: null, title: null },
        x: {
          field: 'prob',
          type: 'quantitative',
          title: 'probability',
          scale: { domain: [0, Math.max(0.05, ...rows.map((r) => r.prob))] },
        },
        color: { value: '#3b6fb6' },
        tooltip: [
          { field: 'tok', title: 'token' },
          { field: 'prob', title: 'probability', format: '.2%' },
        ],
      },
    });
  }, [data, sel]);

  return (
    <section className="view">
      <h2>Prompt</h2>
      <p className="lede">The prompt's tokens, and after each position the model's most likely next tokens.</p>
      <form className="form" onSubmit={submit} data-testid="form">
        <PromptField
          label="Prompt"
          value={form.prompt}
          onChange={(v) => set({ prompt: v })}
          testId="prompt"
          hint="Enter runs, Shift+Enter adds a line"
        />
        <NumberField label="top-k" value={form.k} onChange={(v) => set({ k: v })} testId="topk" min={1} max={model.limits.maxTopK} />
        <BosField value={form.bos} onChange={(v) => set({ bos: v })} />
        <RunButton loading={q.loading} />
      </form>
      <ErrorBox error={q.error} />
      <Loading on={q.loading} />
      {data ? (
        <div className={`results${q.loading ? ' stale' : ''}`} data-testid="results">
          <h3>Tokens</h3>
          <TokenChips tokens={data.tokens} strTokens={data.strTokens} selected={sel} onSelect={select} />
          <h3 data-testid="forward-detail-title">
            After position {sel} <code>{showTok(data.strTokens?.[sel] ?? null, data.tokens[sel])}</code>
          </h3>
          {spec ? <VegaChart spec={spec} testId="forward-chart" /> : null}
          <h3>Top {data.top[0]?.length ?? 0} next tokens at every position</h3>
          <div className="table-wrap">
            <table className="table" data-testid="forward-table">
              <thead>
                <tr>
                  <th>pos</th>
                  <th>token</th>
                  {data.top[0]?.map((_, j) => (
                    <th key={j}>#{j + 1}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {data.top.map((preds, pos) => (
                  <tr
                    key={pos}
                    data-testid="forward-row"
                    data-pos={pos}
                    className={pos === sel ? 'selected' : ''}
                    onClick={() => select(pos)}
                  >
                    <td className="num">{pos}</td>
                    <td>
                      <code>{showTok(data.strTokens?.[pos] ?? null, data.tokens[pos])}</code>
                    </td>
                    {preds.map((t, j) => (
                      <td
                        key={j}
                        data-testid="pred"
                        data-rank={j}
                        data-token={t.token}
                        title={`token id ${t.token}, p = ${t.prob ?? 'null'}`}
                      >
                        <code data-testid="pred-tok">{showTok(t.str, t.token)}</code>{' '}
                        <span className="prob" data-testid="pred-prob">
                          {fmtProb(t.prob)}
                        </span>
                        <span className="bar" style={{ width: `${Math.round((t.prob ?? 0) * 100)}%` }} aria-hidden="true" />
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ) : null}
    </section>
  );
}
