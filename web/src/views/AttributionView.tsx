/**
 * Attribution: direct logit attribution. Each component's (embeddings, every head, every MLP,
 * the biases) direct contribution to the answer's logit, or to logit(answer) - logit(wrong).
 */
import { useMemo, type FormEvent } from 'react';
import { api } from '../api';
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
  rememberPrompt,
  RunButton,
  showTok,
  startPrompt,
  TextField,
  TokenChips,
  toPrompt,
  toTokenRef,
  useForm,
  useModel,
  useQuery,
} from '../ui';

export const DEFAULT_ANSWER = ' Ahab';
export const DEFAULT_WRONG = ' Starbuck';

export function AttributionView({ route }: { route: Route }) {
  const model = useModel();
  const p = route.params;
  const submitted = p.has('prompt');
  const req = submitted
    ? {
        prompt: read.str(p, 'prompt', ''),
        answer: read.str(p, 'answer', ''),
        wrong: read.str(p, 'wrong', ''),
        pos: read.int(p, 'pos', -1),
        bos: read.bool(p, 'bos', true),
      }
    : null;
  const key = req ? JSON.stringify(req) : null;
  const [form, set] = useForm(key ?? '', () => ({
    prompt: read.str(p, 'prompt', startPrompt(model)),
    answer: read.str(p, 'answer', model.hasTokenizer ? DEFAULT_ANSWER : ''),
    wrong: read.str(p, 'wrong', model.hasTokenizer ? DEFAULT_WRONG : ''),
    pos: String(read.int(p, 'pos', -1)),
    bos: read.bool(p, 'bos', true),
  }));
  const q = useQuery(key, (signal) =>
    api.dla(
      {
        prompt: toPrompt(req!.prompt, model),
        prependBos: req!.bos,
        answer: toTokenRef(req!.answer, model, 'answer'),
        ...(req!.wrong !== '' ? { wrong: toTokenRef(req!.wrong, model, 'wrong') } : {}),
        pos: req!.pos,
      },
      signal,
    ),
  );
  const data = q.data;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    rememberPrompt(form.prompt);
    navigate(
      'attribution',
      queryOf({ prompt: form.prompt, answer: form.answer, wrong: form.wrong, pos: form.pos || '-1', bos: form.bos ? undefined : false }),
    );
  };

  const metric = data
    ? data.wrong
      ? `logit(${showTok(data.answer.str, data.answer.token)}) − logit(${showTok(data.wrong.str, data.wrong.token)})`
      : `logit(${showTok(data.answer.str, data.answer.token)})`
    : '';

  const barSpec = useMemo(() => {
    if (!data) return null;
    const rows = data.components.map((c, i) => ({ i, label: c.label, value: c.value ?? 0 }));
    return vl({
      data: { values: rows },
      width: 520,
      height: { step: 14 },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'label', type: 'nominal', sort: null, title: 'component', axis: { labelFontSize: 10 } },
        x: { field: 'value', type: 'quantitative', title: metric },
        color: { condition: { test: 'datum.value >= 0', value: '#3b6fb6' }, value: '#d1495b' },
        description: { field: 'label' },
        tooltip: [
          { field: 'label', title: 'component' },
          { field: 'value', title: 'contribution', format: '.4f' },
        ],
      },
    });
  }, [data, metric]);

  const headSpec = useMemo(() => {
    if (!data?.heads) return null;
    const rows: Datum[] = [];
    let max = 1e-6;
    data.heads.forEach((row, l) =>
      row.forEach((v, h) => {
        rows.push({ layer: `L${l}`, head: `H${h}`, value: v ?? 0, label: `L${l}H${h}` });
        max = Math.max(max, Math.abs(v ?? 0));
      }),
    );
    const H = data.heads[0]?.length ?? 0;
    return vl({
      data: { values: rows },
      width: { step: Math.max(22, Math.min(40, Math.floor(480 / Math.max(1, H)))) },
      height: { step: 26 },
      mark: { type: 'rect', tooltip: true },
      encoding: {
        x: { field: 'head', type: 'ordinal', sort: null, title: 'head' },
        y: { field: 'layer', type: 'ordinal', sort: null, title: 'layer' },
        color: { field: 'value', type: 'quantitative', title: 'contribution', scale: { scheme: 'redblue', domain: [-max, max] } },
        description: { field: 'label' },
        tooltip: [
          { field: 'label', title: 'head' },
          { field: 'value', title: 'contribution', format: '.4f' },
        ],
      },
    });
  }, [data]);

  const top = useMemo(
    () =>
      data
        ? data.components
            .filter((c) => c.value !== null)
            .slice()
            .sort((a, b) => Math.abs(b.value!) - Math.abs(a.value!))
            .slice(0, 10)
        : [],
    [data],
  );

  return (
    <section className="view">
      <h2>Attribution</h2>
      <p className="lede">
        Direct logit attribution: how much each component writes, directly, towards the answer token (minus the wrong token, if given) at
        one position.
      </p>
      <form className="form" onSubmit={submit} data-testid="form">
        <PromptField label="Prompt" value={form.prompt} onChange={(v) => set({ prompt: v })} testId="prompt" hint="Enter runs" />
        <TextField
          label="Answer token"
          value={form.answer}
          onChange={(v) => set({ answer: v })}
          testId="answer"
          hint={model.hasTokenizer ? 'one token; mind the leading space; #id for an id' : 'a token id'}
        />
        <TextField
          label="Wrong token (optional)"
          value={form.wrong}
          onChange={(v) => set({ wrong: v })}
          testId="wrong"
          hint="logit difference against it"
        />
        <NumberField label="Position" value={form.pos} onChange={(v) => set({ pos: v })} testId="pos" />
        <BosField value={form.bos} onChange={(v) => set({ bos: v })} />
        <RunButton loading={q.loading} />
      </form>
      <ErrorBox error={q.error} />
      <Loading on={q.loading} />
      {data && barSpec ? (
        <div className={`results${q.loading ? ' stale' : ''}`} data-testid="results">
          <TokenChips tokens={data.tokens} strTokens={data.strTokens} selected={data.pos} />
          <div className="stats">
            <div className="stat">
              <span>metric</span>
              <code data-testid="dla-metric">{metric}</code>
            </div>
            <div className="stat">
              <span>at position</span>
              <strong data-testid="dla-pos">{data.pos}</strong>
            </div>
            <div className="stat">
              <span>{data.wrong ? 'logit difference' : 'logit'} (model)</span>
              <strong data-testid="dla-logit-diff">{fmtNum(data.logitDiff, 4)}</strong>
            </div>
            <div className="stat">
              <span>sum of components</span>
              <strong data-testid="dla-total">{fmtNum(data.total, 4)}</strong>
            </div>
          </div>
          <div className="two-col">
            <div>
              <h3>By component</h3>
              <VegaChart spec={barSpec} testId="dla-chart" />
            </div>
            <div>
              {headSpec ? (
                <>
                  <h3>Heads</h3>
                  <VegaChart spec={headSpec} testId="dla-heads" />
                </>
              ) : null}
              <h3>Largest contributions</h3>
              <table className="table compact" data-testid="dla-top">
                <thead>
                  <tr>
                    <th>component</th>
                    <th>contribution</th>
                  </tr>
                </thead>
                <tbody>
                  {top.map((c) => (
                    <tr key={c.label} data-testid="dla-top-row" data-label={c.label}>
                      <td>
                        <code>{c.label}</code>
                      </td>
                      <td className={`num ${c.value! >= 0 ? 'pos' : 'neg'}`} data-testid="dla-value">
                        {fmtNum(c.value, 4)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
        </div>
      ) : null}
    </section>
  );
}
