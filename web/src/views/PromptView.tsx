/** Prompt: the prompt's tokens as chips and, per position, the model's top-k next tokens. */
import { useMemo } from 'react';
import { api } from '../api';
import { vl, VegaChart } from '../chart';
import { navigate, read, type Route } from '../router';
import { fmtProb, NumberField, PromptFields, showTok, TokenChips, TokenTable, useModel, ViewFrame, withParams } from '../ui';
import { promptState, promptTopK, useViewForm } from '../useViewForm';

/** A probability as a background: white at 0 to deep blue at 1 (grey where there is none). */
function probColour(p: number | null): string {
  if (p === null) return '#eee';
  const t = Math.max(0, Math.min(1, p));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 33)}, ${mix(255, 84)}, ${mix(255, 168)})`;
}

export function PromptView({ route }: { route: Route }) {
  const model = useModel();
  const p = route.params;
  const view = useViewForm(route, {
    view: 'prompt',
    ...promptTopK(model),
    run: (req, signal) => api.forward({ ...promptState.body(req, model), topK: req.k }, signal),
  });
  const { field, data } = view;
  const n = data?.tokens.length ?? 0;
  const selRaw = read.int(p, 'pos', -1);
  const sel = n ? Math.min(n - 1, Math.max(0, selRaw < 0 ? selRaw + n : selRaw)) : 0;

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
    <ViewFrame
      lede="The prompt's tokens, and after each position the model's most likely next tokens."
      run={view}
      fields={
        <>
          <PromptFields prompt={field('prompt')} bos={field('bos')} hint="Enter runs, Shift+Enter adds a line">
            <NumberField label="top-k" {...field('k')} testId="topk" min={1} max={model.limits.maxTopK} />
          </PromptFields>
        </>
      }
    >
      {data ? (
        <>
          <h3>Tokens</h3>
          <TokenChips tokens={data.tokens} strTokens={data.strTokens} selected={sel} onSelect={select} />
          <h3>How well each token was predicted</h3>
          <p className="hint">
            Each token coloured by the probability the model gave it from the tokens before (darker: more likely, lower loss). Repeated text
            the model copies (induction) shows up dark.
          </p>
          <p className="prob-text" data-testid="prob-text">
            {data.tokens.map((t, pos) => {
              const prob = data.tokenProbs[pos] ?? null;
              const label =
                prob === null ? 'nothing predicts the first token' : `p = ${fmtProb(prob)}, loss ${(-Math.log(prob)).toFixed(3)}`;
              return (
                <span
                  key={pos}
                  data-testid="prob-token"
                  data-pos={pos}
                  title={`${pos} ${showTok(data.strTokens?.[pos] ?? null, t)}: ${label}`}
                  className={pos === sel ? 'selected' : ''}
                  style={{ background: probColour(prob), color: prob !== null && prob > 0.5 ? 'white' : undefined }}
                  onClick={() => select(pos)}
                >
                  {data.strTokens?.[pos] ?? `#${t} `}
                </span>
              );
            })}
          </p>
          <h3 data-testid="forward-detail-title">
            After position {sel} <code>{showTok(data.strTokens?.[sel] ?? null, data.tokens[sel])}</code>
          </h3>
          {spec ? <VegaChart spec={spec} testId="forward-chart" /> : null}
          <h3>Top {data.top[0]?.length ?? 0} next tokens at every position</h3>
          <TokenTable
            tokens={data.tokens}
            strTokens={data.strTokens}
            headers={data.top[0]?.map((_, j) => `#${j + 1}`) ?? []}
            testId="forward-table"
            rowTestId="forward-row"
            selected={sel}
            onSelect={select}
            cells={(pos) =>
              data.top[pos]!.map((t, j) => (
                <td key={j} data-testid="pred" data-rank={j} data-token={t.token} title={`token id ${t.token}, p = ${t.prob ?? 'null'}`}>
                  <code data-testid="pred-tok">{showTok(t.str, t.token)}</code>{' '}
                  <span className="prob" data-testid="pred-prob">
                    {fmtProb(t.prob)}
                  </span>
                  <span className="bar" style={{ width: `${Math.round((t.prob ?? 0) * 100)}%` }} aria-hidden="true" />
                </td>
              ))
            }
          />
        </>
      ) : null}
    </ViewFrame>
  );
}
