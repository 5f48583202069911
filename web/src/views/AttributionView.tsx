/**
 * Attribution: direct logit attribution. Each component's (embeddings, every head, every MLP,
 * the biases) direct contribution to the answer's logit, or to logit(answer) - logit(wrong).
 */
import { useMemo } from 'react';
import { api } from '../api';
import { vl, VegaChart, type Datum } from '../chart';
import type { Route } from '../router';
import { fmtNum, NumberField, PromptFields, showTok, Stat, TextField, TokenChips, toTokenRef, useModel, ViewFrame } from '../ui';
import { answerState, bosQuery, promptState, useViewForm } from '../useViewForm';
import { attentionHref, HeadLink } from './AttentionView';

export function AttributionView({ route }: { route: Route }) {
  const model = useModel();
  const view = useViewForm(route, {
    view: 'attribution',
    request: (p) => (p.has('prompt') ? { ...promptState.request(p), ...answerState.request(p) } : null),
    form: (p) => ({ ...promptState.form(p, model), ...answerState.form(p, model) }),
    query: (f) => ({ prompt: f.prompt, answer: f.answer, wrong: f.wrong, pos: f.pos || '-1', bos: bosQuery(f.bos) }),
    remember: (f) => f.prompt,
    run: (req, signal) =>
      api.dla(
        {
          ...promptState.body(req, model),
          answer: toTokenRef(req.answer, model, 'answer'),
          ...(req.wrong !== '' ? { wrong: toTokenRef(req.wrong, model, 'wrong') } : {}),
          pos: req.pos,
        },
        signal,
      ),
  });
  const { field, data, req } = view;
  const headOf = (label: string) => /^L(\d+)H(\d+)$/.exec(label);

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
        rows.push({ l, h, layer: `L${l}`, head: `H${h}`, value: v ?? 0, label: `L${l}H${h}` });
        max = Math.max(max, Math.abs(v ?? 0));
      }),
    );
    const H = data.heads[0]?.length ?? 0;
    return vl({
      data: { values: rows },
      width: { step: Math.max(22, Math.min(40, Math.floor(480 / Math.max(1, H)))) },
      height: { step: 26 },
      mark: { type: 'rect', tooltip: true, cursor: 'pointer' },
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
    <ViewFrame
      lede={
        <>
          Direct logit attribution: how much each component writes, directly, towards the answer token (minus the wrong token, if given) at
          one position.
        </>
      }
      run={view}
      fields={
        <PromptFields prompt={field('prompt')} bos={field('bos')}>
          <TextField
            label="Answer token"
            {...field('answer')}
            testId="answer"
            hint={model.hasTokenizer ? 'one token; mind the leading space; #id for an id' : 'a token id'}
          />
          <TextField label="Wrong token (optional)" {...field('wrong')} testId="wrong" hint="logit difference against it" />
          <NumberField label="Position" {...field('pos')} testId="pos" />
        </PromptFields>
      }
    >
      {data && barSpec ? (
        <>
          <TokenChips tokens={data.tokens} strTokens={data.strTokens} selected={data.pos} />
          <div className="stats">
            <div className="stat">
              <span>metric</span>
              <code data-testid="dla-metric">{metric}</code>
            </div>
            <Stat label="at position" value={data.pos} testId="dla-pos" />
            <Stat
              label={`${data.wrong ? 'logit difference' : 'logit'} (model)`}
              value={fmtNum(data.logitDiff, 4)}
              testId="dla-logit-diff"
            />
            <Stat label="sum of components" value={fmtNum(data.total, 4)} testId="dla-total" />
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
                  <p className="hint">Click a head to open its attention pattern.</p>
                  <VegaChart
                    spec={headSpec}
                    testId="dla-heads"
                    onClick={(d) => {
                      if (req && typeof d.l === 'number' && typeof d.h === 'number')
                        location.hash = attentionHref(req.prompt, req.bos, d.l, d.h);
                    }}
                  />
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
                        {(() => {
                          const m = headOf(c.label);
                          return m && req ? (
                            <HeadLink prompt={req.prompt} bos={req.bos} layer={Number(m[1])} head={Number(m[2])} />
                          ) : (
                            <code>{c.label}</code>
                          );
                        })()}
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
        </>
      ) : null}
    </ViewFrame>
  );
}
