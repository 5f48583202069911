/**
 * What fires on my prompt: for each token of a prompt, its strongest features in each attached
 * dictionary, with their activations. A feature opens its page; "highlight" colours the prompt
 * by one feature's activation at every token. This is also the search: type the text a feature
 * should fire on and read off the features.
 */
import { api, type FiresResult } from '../api';
import { ActivationText, featureHref, fmtAct, useSaes } from '../features';
import { navigate, read, type Route } from '../router';
import { NumberField, PromptFields, TokenTable, useModel, ViewFrame, withParams } from '../ui';
import { bosQuery, promptState, useViewForm } from '../useViewForm';

/** The highlighted feature in the URL: `hl=SAE:FEATURE`. */
function parseHighlight(s: string | null): { sae: string; feature: number } | null {
  const m = s === null ? null : /^(.+):(\d+)$/.exec(s);
  return m ? { sae: m[1]!, feature: Number(m[2]) } : null;
}

export function FiresView({ route }: { route: Route }) {
  const model = useModel();
  const saes = useSaes();
  const p = route.params;
  const view = useViewForm(route, {
    view: 'fires',
    request: (q) => (q.has('prompt') ? { ...promptState.request(q), k: read.int(q, 'k', 5), hl: q.get('hl') } : null),
    form: (q) => ({ ...promptState.form(q, model), k: String(read.int(q, 'k', 5)) }),
    query: (f) => ({ prompt: f.prompt, k: f.k || '5', bos: bosQuery(f.bos) }),
    remember: (f) => f.prompt,
    run: (req, signal) => {
      const highlight = parseHighlight(req.hl);
      return api.fires({ ...promptState.body(req, model), topK: req.k, ...(highlight ? { highlight } : {}) }, signal);
    },
  });
  const { field, data } = view;
  const highlightFeature = (sae: string, feature: number | null) =>
    navigate('fires', withParams(p, { hl: feature === null ? undefined : `${sae}:${feature}` }), { replace: true });

  return (
    <ViewFrame
      lede={
        <>
          Each token of the prompt with its strongest features in every attached dictionary ({saes.map((s) => s.id).join(', ')}). Click a
          feature to open its page, or highlight it to see its activation across the prompt. Type the text a feature should fire on to find
          it.
        </>
      }
      run={view}
      runLabel="Find features"
      fields={
        <>
          <PromptFields prompt={field('prompt')} bos={field('bos')} hint="Enter runs, Shift+Enter adds a line">
            <NumberField label="features per token" {...field('k')} testId="fires-k" min={1} max={model.limits.maxTopK} />
          </PromptFields>
        </>
      }
    >
      {data ? <FiresResults data={data} onHighlight={highlightFeature} /> : null}
    </ViewFrame>
  );
}

function FiresResults({ data, onHighlight }: { data: FiresResult; onHighlight: (sae: string, feature: number | null) => void }) {
  const strs = data.strTokens;
  const hl = data.highlight;
  const hlMax = hl ? Math.max(0, ...hl.acts.map((a) => a ?? 0)) : 0;
  return (
    <>
      {hl ? (
        <div className="card" data-testid="fires-highlight">
          <h3>
            Feature <a href={featureHref(hl.sae, hl.feature)}>{hl.feature}</a> of {hl.sae} across the prompt{' '}
            <button type="button" onClick={() => onHighlight(hl.sae, null)} data-testid="fires-clear-highlight">
              clear
            </button>
          </h3>
          <p className="generation">
            <ActivationText
              tokens={data.tokens.map((id, i) => ({ id, str: strs?.[i] ?? null, act: hl.acts[i] ?? null }))}
              max={hlMax}
              testId="fires-highlight-text"
            />
          </p>
          <p className="hint">
            max <strong data-testid="fires-highlight-max">{fmtAct(hlMax)}</strong>
          </p>
        </div>
      ) : null}
      <TokenTable
        tokens={data.tokens}
        strTokens={strs}
        headers={data.saes.map((s) => s.id)}
        testId="fires-table"
        rowTestId="fires-row"
        tokenNote={(pos) =>
          hl ? (
            <span className="muted" data-testid="fires-row-hl">
              {' '}
              {fmtAct(hl.acts[pos])}
            </span>
          ) : null
        }
        cells={(pos) =>
          data.saes.map((s) => (
            <td key={s.id} data-testid="fires-cell" data-sae={s.id}>
              {s.top[pos]!.length === 0 ? <span className="muted">none</span> : null}
              {s.top[pos]!.map((f) => (
                <span
                  key={f.feature}
                  className={`fire${hl && hl.sae === s.id && hl.feature === f.feature ? ' selected' : ''}`}
                  data-testid="fires-feature"
                  data-feature={f.feature}
                  data-act={f.act ?? ''}
                >
                  <a href={featureHref(s.id, f.feature)} data-testid="fires-link">
                    #{f.feature}
                  </a>{' '}
                  <span className="num" data-testid="fires-act">
                    {fmtAct(f.act)}
                  </span>
                  <button
                    type="button"
                    className="link"
                    title="highlight this feature across the prompt"
                    onClick={() => onHighlight(s.id, f.feature)}
                    data-testid="fires-hl"
                  >
                    ◐
                  </button>
                </span>
              ))}
            </td>
          ))
        }
      />
    </>
  );
}
