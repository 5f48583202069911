/**
 * A feature's page, laid out as Neuronpedia lays one out: its explanation; density and
 * activation figures; the activation histogram; the tokens its decoder direction promotes and
 * suppresses; its top activating contexts, every token coloured by its activation, grouped by
 * activation band; and a steering box (the feature added at a chosen scale: the unsteered and
 * steered continuations side by side). The URL names the dictionary and the feature (and the
 * steering box's state), so every feature has its own link.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { api, asApiError, type ApiError, type FeaturePageResult, type FeatureSteerResult } from '../api';
import { ActivationText, featureHref, fmtAct, useSaes } from '../features';
import { navigate, read, type Route } from '../router';
import {
  ErrorBox,
  GenerationCard,
  Loading,
  NumberField,
  PromptField,
  Select,
  Stat,
  showTok,
  startPrompt,
  toPrompt,
  useModel,
  ViewFrame,
  withParams,
} from '../ui';
import { useViewForm } from '../useViewForm';

export function FeatureView({ route }: { route: Route }) {
  const saes = useSaes();
  const first = saes[0]?.id ?? '';
  const view = useViewForm(route, {
    view: 'feature',
    request: (p) => (p.has('feature') ? { sae: read.str(p, 'sae', first), feature: read.int(p, 'feature', 0) } : null),
    form: (p) => ({ sae: read.str(p, 'sae', first), feature: String(read.int(p, 'feature', 0)) }),
    query: (f) => ({ sae: f.sae, feature: f.feature || '0' }),
    run: (req, signal) => api.featurePage(req.sae, req.feature, signal),
  });
  const { field, data } = view;
  const info = saes.find((s) => s.id === (view.req?.sae ?? view.form.sae));
  return (
    <ViewFrame
      lede={
        <>
          One feature of an attached dictionary: where it fires most in the feature store&apos;s corpus, how often, what its decoder
          direction does to the logits, and what adding it does to a generation.
        </>
      }
      run={view}
      runLabel="Open"
      fields={
        <>
          <Select
            label="Dictionary"
            {...field('sae')}
            options={saes.map((s) => ({ value: s.id, label: `${s.id} (${s.hookName}, ${s.dSae})` }))}
            testId="feature-sae"
          />
          <NumberField label="Feature" {...field('feature')} testId="feature-index" min={0} max={info ? info.dSae - 1 : undefined} />
        </>
      }
    >
      {data ? <FeaturePage page={data} route={route} /> : null}
    </ViewFrame>
  );
}

function FeaturePage({ page, route }: { page: FeaturePageResult; route: Route }) {
  const max = page.maxActivation ?? 0;
  return (
    <>
      <h3 data-testid="feature-title">
        Feature {page.feature} <span className="muted">of {page.sae}</span>
      </h3>
      <p className="toolbar">
        {page.feature > 0 ? (
          <a href={featureHref(page.sae, page.feature - 1)} data-testid="feature-prev">
            ← {page.feature - 1}
          </a>
        ) : null}
        {page.feature < page.dSae - 1 ? (
          <a href={featureHref(page.sae, page.feature + 1)} data-testid="feature-next">
            {page.feature + 1} →
          </a>
        ) : null}
      </p>
      {page.explanation ? (
        <div className="card explanation" data-testid="feature-explanation">
          <strong data-testid="feature-explanation-text">{page.explanation.text}</strong>
          {page.explanation.score !== null ? (
            <span className="muted">
              {' '}
              detection score <span data-testid="feature-explanation-score">{page.explanation.score.toFixed(2)}</span>
            </span>
          ) : null}
          {page.explanation.model ? <span className="muted"> · by {page.explanation.model}</span> : null}
        </div>
      ) : (
        <p className="hint" data-testid="feature-no-explanation">
          No explanation yet (<code>glassbox sae explain</code> writes them into the feature store).
        </p>
      )}
      {page.hasStore ? (
        <div className="stats">
          <Stat label="density" value={page.density === null ? '—' : page.density.toExponential(3)} testId="feature-density" />
          <Stat label="tokens fired on" value={page.fireCount ?? '—'} testId="feature-fires" />
          <Stat label="max activation" value={fmtAct(page.maxActivation)} testId="feature-max" />
          <Stat label="mean when firing" value={fmtAct(page.meanActivation)} testId="feature-mean" />
        </div>
      ) : (
        <p className="hint" data-testid="feature-no-store">
          This dictionary has no feature store: build one with <code>glassbox sae features</code> to see contexts and histograms.
        </p>
      )}
      <div className="two-col">
        {page.histogram ? <Histogram histogram={page.histogram} /> : null}
        <Logits page={page} />
      </div>
      {page.groups.length > 0 ? <h3>Activating contexts</h3> : null}
      {page.groupsNote ? (
        <p className="hint" data-testid="feature-groups-note">
          {page.groupsNote}
        </p>
      ) : null}
      {page.groups.map((g, gi) => (
        <div key={gi} className="context-group" data-testid="context-group">
          <h4 data-testid="context-group-label">{g.label}</h4>
          <ol className="contexts">
            {g.contexts.map((c, ci) => (
              <li key={ci} data-testid="context" data-activation={c.activation ?? ''}>
                <span className="num context-act" data-testid="context-act">
                  {fmtAct(c.activation)}
                </span>
                <ActivationText tokens={c.tokens} max={max} mark={c.maxIndex} testId="context-text" />
              </li>
            ))}
          </ol>
        </div>
      ))}
      <SteerBox page={page} route={route} />
    </>
  );
}

/** The non-empty bins of the histogram as bars, with their counts (also the Graph view's feature pane). */
export function Histogram({ histogram }: { histogram: NonNullable<FeaturePageResult['histogram']> }) {
  const { edges, counts } = histogram;
  const top = Math.max(1, ...counts);
  const nz = counts.map((c, i) => [c, i] as const).filter(([c]) => c > 0);
  const firstBin = nz[0]?.[1] ?? 0;
  const lastBin = nz.at(-1)?.[1] ?? -1;
  const rows = counts.slice(firstBin, lastBin + 1).map((c, j) => ({ c, i: firstBin + j }));
  const edge = (x: number | null | undefined) => (x === null || x === undefined ? '—' : x.toPrecision(3));
  return (
    <div className="card">
      <h3>Activation histogram</h3>
      {rows.length === 0 ? <p className="hint">It never fired on the store&apos;s corpus.</p> : null}
      <table className="table compact hist" data-testid="histogram">
        <tbody>
          {rows.map(({ c, i }) => (
            <tr key={i} data-testid="hist-bin" data-bin={i} data-count={c}>
              <td className="num">
                [{edge(edges[i])}, {edge(edges[i + 1])})
              </td>
              <td className="hist-bar-cell">
                <span className="hist-bar" style={{ width: `${(100 * c) / top}%` }} />
              </td>
              <td className="num" data-testid="hist-count">
                {c}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The tokens the feature's decoder direction promotes and suppresses (also the Graph view's feature pane). */
export function Logits({ page }: { page: FeaturePageResult }) {
  if (!page.logits)
    return (
      <div className="card">
        <h3>Logit effects</h3>
        <p className="hint">{page.logitsReason ?? 'none'}</p>
      </div>
    );
  const side = (title: string, rows: { id: number; str: string | null; value: number | null }[], testId: string, cls: string) => (
    <div>
      <h4>{title}</h4>
      <table className="table compact" data-testid={testId}>
        <tbody>
          {rows.map((t, i) => (
            <tr key={i} data-testid="logit-row" data-token={t.id}>
              <td>
                <code data-testid="logit-tok">{showTok(t.str, t.id)}</code>
              </td>
              <td className={`num ${cls}`} data-testid="logit-value" data-value={t.value ?? ''}>
                {t.value === null ? '—' : t.value.toFixed(3)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
  return (
    <div className="card">
      <h3>Logit effects</h3>
      <p className="hint">
        <code>{page.logits.path}</code>
      </p>
      <div className="side-by-side">
        {side('Promotes', page.logits.positive, 'logits-pos', 'pos')}
        {side('Suppresses', page.logits.negative, 'logits-neg', 'neg')}
      </div>
    </div>
  );
}

/**
 * Adds the feature at a chosen scale while the model continues a prompt: the unsteered and
 * steered continuations side by side. Its state is in the URL (sp, scale, n), so a link restores it.
 */
function SteerBox({ page, route }: { page: FeaturePageResult; route: Route }) {
  const model = useModel();
  const p = route.params;
  const defaultScale = page.maxActivation && page.maxActivation > 0 ? Number((2 * page.maxActivation).toPrecision(3)) : 10;
  const defaultN = Math.min(20, model.limits.maxNewTokens);
  const urlState = { prompt: p.get('sp'), scale: read.num(p, 'scale', defaultScale), n: read.int(p, 'n', defaultN) };
  const [form, setForm] = useState({ prompt: urlState.prompt ?? startPrompt(model), scale: String(urlState.scale), n: String(urlState.n) });
  const key = urlState.prompt === null ? null : JSON.stringify([page.sae, page.feature, urlState]);
  const [state, setState] = useState<{ data: FeatureSteerResult | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: false,
  });
  useEffect(() => {
    if (key === null) return;
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    const run = async () =>
      api.featureSteer(
        page.sae,
        { feature: page.feature, prompt: toPrompt(urlState.prompt!, model), scale: urlState.scale, maxNewTokens: urlState.n },
        ctl.signal,
      );
    run()
      .then((data) => {
        if (!ctl.signal.aborted) setState({ data, error: null, loading: false });
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setState({ data: null, error: asApiError(e), loading: false });
      });
    return () => ctl.abort();
    // The key holds everything the request reads.
  }, [key]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    navigate('feature', withParams(p, { sp: form.prompt, scale: form.scale || String(defaultScale), n: form.n || String(defaultN) }), {
      replace: true,
    });
  };
  const set = (patch: Partial<typeof form>) => setForm((f) => ({ ...f, ...patch }));
  return (
    <section className="card steer-box" data-testid="steer-box">
      <h3>Steer with this feature</h3>
      <p className="hint">
        Adds the scale to the feature&apos;s activation at every position (its decoder row times the scale is added at the SAE&apos;s hook
        point), greedy decoding.
      </p>
      <form className="form" onSubmit={submit} data-testid="steer-form">
        <PromptField
          label="Prompt to continue"
          value={form.prompt}
          onChange={(v) => set({ prompt: v })}
          testId="steer-prompt"
          hint="Enter runs"
        />
        <NumberField label="Scale" value={form.scale} onChange={(v) => set({ scale: v })} testId="steer-scale" step="any" />
        <NumberField
          label="New tokens"
          value={form.n}
          onChange={(v) => set({ n: v })}
          testId="steer-n"
          min={1}
          max={model.limits.maxNewTokens}
        />
        <button type="submit" className="primary" data-testid="steer-run" disabled={state.loading}>
          {state.loading ? 'Generating…' : 'Generate'}
        </button>
      </form>
      <ErrorBox error={state.error} />
      <Loading on={state.loading} label="Generating…" />
      {state.data ? (
        <div className="two-col">
          <GenerationCard
            heading="h4"
            title="Unsteered"
            className="card"
            prompt={urlState.prompt ?? ''}
            generation={state.data.unsteered}
            testId="feature-unsteered"
          />
          <GenerationCard
            heading="h4"
            title={
              <>
                Steered (scale <span data-testid="feature-steer-scale">{state.data.scale}</span>)
              </>
            }
            className="card steered"
            prompt={urlState.prompt ?? ''}
            generation={state.data.steered}
            testId="feature-steered"
          />
        </div>
      ) : null}
    </section>
  );
}
