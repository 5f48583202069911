/**
 * Graph: the attribution graph explorer (circuit tracing). A graph the server holds (a file it
 * was started with, `serve --graph FILE.json`, or one it computed from a prompt with its
 * transcoders) is drawn by layer x token position; hovering a node shows its links, clicking it
 * opens its pane (its numbers, incoming and outgoing links, its feature's page, an intervention).
 * Nodes can be pinned into a subgraph and grouped into labelled supernodes.
 *
 * The whole state is in the URL, with Neuronpedia's names: `slug` (the graph), `clickedId`,
 * `pinnedIds` (comma-separated), `supernodes` (`[["label", id, ...], ...]`), and `prompt`.
 */
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import {
  api,
  asApiError,
  followJob,
  type ApiError,
  type FeaturePageResult,
  type GraphFile,
  type GraphList,
  type GraphSummary,
  type InterveneResult,
} from '../api';
import { GraphCanvas, NEGATIVE, POSITIVE } from '../graph/GraphCanvas';
import { ActivationText, fmtAct } from '../features';
import { Histogram, Logits } from './FeatureView';
import {
  featureIndex,
  indexGraph,
  layoutGraph,
  nodeKind,
  parsePinned,
  parseSupernodes,
  serializeSupernodes,
  subgraph,
  type IndexedGraph,
  type Supernode,
} from '../graph/model';
import { navigate, read, type Route } from '../router';
import {
  ErrorBox,
  fmtNum,
  fmtProb,
  Loading,
  NumberField,
  PromptField,
  Select,
  showTok,
  Stat,
  TextField,
  useModel,
  withParams,
} from '../ui';

type Load<T> = { status: 'idle' } | { status: 'loading' } | { status: 'done'; data: T } | { status: 'error'; error: ApiError };

/** Fetches `run()` whenever `key` changes (null: nothing), aborting the previous fetch. */
function useLoad<T>(key: string | null, run: (signal: AbortSignal) => Promise<T>): Load<T> {
  const [state, setState] = useState<Load<T>>({ status: 'idle' });
  const runRef = useRef(run);
  runRef.current = run;
  useEffect(() => {
    if (key === null) {
      setState({ status: 'idle' });
      return;
    }
    const ctl = new AbortController();
    setState({ status: 'loading' });
    runRef
      .current(ctl.signal)
      .then((data) => {
        if (!ctl.signal.aborted) setState({ status: 'done', data });
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setState({ status: 'error', error: asApiError(e) });
      });
    return () => ctl.abort();
  }, [key]);
  return state;
}

export function GraphView({ route }: { route: Route }) {
  const p = route.params;
  const [listVersion, setListVersion] = useState(0);
  const list = useLoad<GraphList>(`list:${listVersion}`, (signal) => api.graphs(signal));
  const graphs = list.status === 'done' ? list.data.graphs : [];
  const slug = p.get('slug') ?? graphs[0]?.id ?? null;
  const file = useLoad<GraphFile>(slug, (signal) => api.graph(slug!, signal));
  const clickedId = p.get('clickedId');
  const pinned = useMemo(() => parsePinned(p.get('pinnedIds')), [p]);
  const supernodes = useMemo(() => parseSupernodes(p.get('supernodes')), [p]);

  /** Writes part of the state into the URL (the same history entry). */
  const update = (values: Record<string, string | undefined>) => navigate('graph', withParams(p, values), { replace: true });

  return (
    <section className="view graph-view">
      <h2>Graph</h2>
      <p className="lede">
        An attribution graph: the direct effects between transcoder features, error nodes, token embeddings and the top logits on one
        prompt. Hover a node for its links, click it for its details; pin nodes to build a subgraph.
      </p>
      <ErrorBox error={list.status === 'error' ? list.error : null} />
      {list.status === 'done' ? (
        <ComputeForm
          route={route}
          canCompute={list.data.canCompute}
          onComputed={(g, prompt) => {
            setListVersion((v) => v + 1);
            navigate('graph', withParams(p, { slug: g.id, prompt, clickedId: undefined, pinnedIds: undefined, supernodes: undefined }));
          }}
        />
      ) : null}
      {graphs.length > 0 ? (
        <div className="form">
          <Select
            label="Graph"
            value={slug ?? ''}
            options={graphs.map((g) => ({ value: g.id, label: `${g.id} (${g.nodes} nodes, ${g.links} links)` }))}
            onChange={(id) =>
              navigate('graph', withParams(p, { slug: id, clickedId: undefined, pinnedIds: undefined, supernodes: undefined }))
            }
            testId="graph-select"
          />
        </div>
      ) : list.status === 'done' ? (
        <p data-testid="graph-none">
          This server holds no graph: start it with <code>glassbox serve --graph FILE.json</code>, or trace a prompt above.
        </p>
      ) : null}
      <Loading on={file.status === 'loading' || list.status === 'loading'} label="Loading the graph…" />
      <ErrorBox error={file.status === 'error' ? file.error : null} />
      {file.status === 'done' ? (
        <GraphExplorer
          key={slug}
          file={file.data}
          canCompute={list.status === 'done' && list.data.canCompute}
          featureStore={list.status === 'done' && list.data.featureStore}
          clickedId={clickedId}
          pinned={pinned}
          supernodes={supernodes}
          update={update}
        />
      ) : null}
    </section>
  );
}

/** Tracing a prompt into a new graph (a job on the server; refused by a server without transcoders). */
function ComputeForm({
  route,
  canCompute,
  onComputed,
}: {
  route: Route;
  canCompute: boolean;
  onComputed(g: GraphSummary, prompt: string): void;
}) {
  const model = useModel();
  const [prompt, setPrompt] = useState(() => read.str(route.params, 'prompt', ''));
  // jobId: the running job's (for Cancel); cancelled: the last job was cancelled (no graph made).
  const [state, setState] = useState<{
    running: boolean;
    done: number;
    total: number;
    error: ApiError | null;
    jobId?: string;
    cancelled?: boolean;
  }>({
    running: false,
    done: 0,
    total: 0,
    error: null,
  });
  const stopRef = useRef<(() => void) | null>(null);
  useEffect(() => () => stopRef.current?.(), []);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setState({ running: true, done: 0, total: 0, error: null });
    const text = prompt.trim();
    const body = model.hasTokenizer || text === '' ? { prompt } : { prompt: text.split(/[\s,]+/).map(Number) };
    api
      .graphStart(body)
      .then((start) => {
        setState((s) => ({ ...s, jobId: start.jobId }));
        stopRef.current = followJob(start.events, (ev) => {
          if (ev.type === 'progress') setState((s) => ({ ...s, done: ev.done, total: ev.total }));
          else if (ev.type === 'result') {
            setState((s) => ({ ...s, running: false }));
            onComputed(ev.result as GraphSummary, prompt);
          } else if (ev.type === 'error') setState((s) => ({ ...s, running: false, error: ev.error }));
          else setState((s) => ({ ...s, running: false, cancelled: true }));
        });
      })
      .catch((err: unknown) => setState((s) => ({ ...s, running: false, error: asApiError(err) })));
  };
  // The attribution stops between batches of rows (attribute's shouldStop); no graph is kept.
  const cancel = () => {
    if (state.jobId) api.cancelJob(state.jobId).catch((err: unknown) => setState((s) => ({ ...s, error: asApiError(err) })));
  };
  return (
    <>
      <form className="form" onSubmit={submit} data-testid="graph-form">
        <PromptField label="Prompt to trace" value={prompt} onChange={setPrompt} testId="graph-prompt" />
        <button type="submit" className="primary" data-testid="graph-run" disabled={state.running}>
          {state.running ? 'Tracing…' : 'Trace'}
        </button>
      </form>
      {!canCompute ? (
        <p className="hint" data-testid="graph-no-transcoders">
          This server has no transcoders, so it shows graph files only (<code>glassbox serve MODEL --transcoders DIR</code> traces prompts).
        </p>
      ) : null}
      {state.running ? (
        <div className="progress" data-testid="graph-progress">
          traced {state.done} / {state.total || '…'}{' '}
          <button type="button" onClick={cancel} disabled={!state.jobId} data-testid="graph-cancel">
            Cancel
          </button>
        </div>
      ) : null}
      {state.cancelled && !state.running ? (
        <p className="hint" data-testid="graph-cancelled">
          Cancelled: no graph was made.
        </p>
      ) : null}
      <ErrorBox error={state.error} />
    </>
  );
}

function GraphExplorer({
  file,
  canCompute,
  featureStore,
  clickedId,
  pinned,
  supernodes,
  update,
}: {
  file: GraphFile;
  canCompute: boolean;
  featureStore: boolean;
  clickedId: string | null;
  pinned: string[];
  supernodes: Supernode[];
  update(values: Record<string, string | undefined>): void;
}) {
  const g = useMemo(() => indexGraph(file), [file]);
  const layout = useMemo(() => layoutGraph(g, file.metadata.prompt_tokens.length), [g, file]);
  const [hovered, setHovered] = useState<number | null>(null);
  const clicked = clickedId !== null ? (g.byId.get(clickedId) ?? null) : null;
  const focus = hovered ?? clicked;
  const pinnedSet = useMemo(() => new Set(pinned), [pinned]);

  const setPins = (ids: string[], groups: Supernode[] = supernodes) => {
    const keep = new Set(ids);
    const kept = groups.map((s) => ({ ...s, members: s.members.filter((m) => keep.has(m)) })).filter((s) => s.members.length > 0);
    update({ pinnedIds: ids.length ? ids.join(',') : undefined, supernodes: serializeSupernodes(kept) });
  };
  const togglePin = (id: string) => setPins(pinnedSet.has(id) ? pinned.filter((x) => x !== id) : [...pinned, id]);

  const counts = { feature: 0, error: 0, embedding: 0, logit: 0 };
  for (const n of g.nodes) counts[nodeKind(n)]++;

  return (
    <div className="graph-explorer" data-testid="graph-explorer" data-ready="true">
      <div className="stats">
        <Stat label="nodes" value={g.nodes.length} testId="graph-node-count" />
        <Stat label="links" value={g.links.length} testId="graph-link-count" />
        <Stat label="features" value={counts.feature} />
        <Stat label="error nodes" value={counts.error} />
        <Stat label="logits" value={counts.logit} />
      </div>
      <p className="graph-prompt" data-testid="graph-prompt-text">
        {file.metadata.prompt_tokens.map((t, i) => (
          <span key={i} className="chip">
            {showTok(t)}
          </span>
        ))}
      </p>
      <div className="graph-main">
        <div className="graph-scroll">
          <GraphCanvas
            g={g}
            layout={layout}
            promptTokens={file.metadata.prompt_tokens}
            focus={focus}
            clicked={clicked}
            pinned={pinnedSet}
            onHover={setHovered}
            onClick={(i) => update({ clickedId: i === null ? undefined : g.nodes[i]!.node_id })}
          />
          {hovered !== null ? <HoverCard g={g} node={hovered} /> : null}
        </div>
        <div className="graph-side">
          {clicked !== null ? (
            <NodePane
              g={g}
              node={clicked}
              prompt={promptOf(file)}
              pinned={pinnedSet.has(g.nodes[clicked]!.node_id)}
              onPin={() => togglePin(g.nodes[clicked]!.node_id)}
              onSelect={(id) => update({ clickedId: id })}
              canCompute={canCompute}
              featureStore={featureStore}
              pinnedFeatures={pinned}
            />
          ) : (
            <p className="hint" data-testid="graph-pane-empty">
              Click a node to see its links and details.
            </p>
          )}
          <SubgraphPanel
            g={g}
            pinned={pinned}
            supernodes={supernodes}
            onSelect={(id) => update({ clickedId: id })}
            onChange={(groups) => setPins(pinned, groups)}
            onUnpin={(id) => setPins(pinned.filter((x) => x !== id))}
          />
        </div>
      </div>
    </div>
  );
}

/** The prompt an intervention runs on: the graph's token ids when the file has them (glassbox writes them), else its text. */
function promptOf(file: GraphFile): string | number[] {
  const ids = file.metadata.prompt_token_ids;
  if (
    Array.isArray(ids) &&
    ids.length === file.metadata.prompt_tokens.length &&
    ids.every((t) => Number.isSafeInteger(t) && (t as number) >= 0)
  )
    return ids as number[];
  return file.metadata.prompt;
}

function HoverCard({ g, node }: { g: IndexedGraph; node: number }) {
  const n = g.nodes[node]!;
  return (
    <div className="graph-hover" data-testid="graph-hover" data-node-id={n.node_id}>
      <strong>{n.node_id}</strong> {n.clerp ? <span>{n.clerp}</span> : null}
      <span data-testid="graph-hover-counts">
        {g.incoming[node]!.length} in · {g.outgoing[node]!.length} out
      </span>
    </div>
  );
}

function describeNode(g: IndexedGraph, id: string): string {
  const n = g.nodes[g.byId.get(id)!];
  return n?.clerp ? `${id} ${n.clerp}` : id;
}

/** The links into or out of a node, largest |weight| first. */
function EdgeTable({
  g,
  links,
  end,
  testId,
  onSelect,
}: {
  g: IndexedGraph;
  links: number[];
  end: 'source' | 'target';
  testId: string;
  onSelect(id: string): void;
}) {
  if (links.length === 0) return <p className="hint">none</p>;
  return (
    <div className="table-wrap graph-edges">
      <table className="table" data-testid={testId}>
        <thead>
          <tr>
            <th>{end === 'source' ? 'from' : 'to'}</th>
            <th>weight</th>
          </tr>
        </thead>
        <tbody>
          {links.map((i) => {
            const l = g.links[i]!;
            const other = l[end];
            return (
              <tr key={i} data-testid="graph-edge-row" data-node-id={other} data-weight={l.weight} onClick={() => onSelect(other)}>
                <td>
                  <button type="button" className="link">
                    {describeNode(g, other)}
                  </button>
                </td>
                <td style={{ color: l.weight >= 0 ? POSITIVE : NEGATIVE }}>{fmtNum(l.weight, 4)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function NodePane({
  g,
  node,
  prompt,
  pinned,
  onPin,
  onSelect,
  canCompute,
  featureStore,
  pinnedFeatures,
}: {
  g: IndexedGraph;
  node: number;
  prompt: string | number[];
  pinned: boolean;
  onPin(): void;
  onSelect(id: string): void;
  canCompute: boolean;
  featureStore: boolean;
  pinnedFeatures: string[];
}) {
  const n = g.nodes[node]!;
  const kind = nodeKind(n);
  const index = featureIndex(n);
  return (
    <div className="graph-pane" data-testid="graph-node-pane" data-node-id={n.node_id}>
      <h3>
        {kind === 'feature' ? 'Feature' : kind === 'error' ? 'Error node' : kind === 'embedding' ? 'Token embedding' : 'Logit'}{' '}
        <code data-testid="graph-pane-id">{n.node_id}</code>
      </h3>
      {n.clerp ? <p data-testid="graph-pane-clerp">{n.clerp}</p> : null}
      <dl className="graph-facts">
        <dt>layer</dt>
        <dd data-testid="graph-pane-layer">{n.layer}</dd>
        <dt>position</dt>
        <dd data-testid="graph-pane-pos">{n.ctx_idx}</dd>
        {index !== null ? (
          <>
            <dt>feature</dt>
            <dd data-testid="graph-pane-feature">{index}</dd>
          </>
        ) : null}
        <dt>activation</dt>
        <dd data-testid="graph-pane-activation">{fmtNum(n.activation, 4)}</dd>
        <dt>influence</dt>
        <dd data-testid="graph-pane-influence">{fmtNum(n.influence, 4)}</dd>
        {kind === 'logit' ? (
          <>
            <dt>probability</dt>
            <dd>{fmtProb(n.token_prob)}</dd>
          </>
        ) : null}
      </dl>
      <button type="button" onClick={onPin} data-testid="graph-pin">
        {pinned ? 'Unpin' : 'Pin'}
      </button>
      <h4>Incoming ({g.incoming[node]!.length})</h4>
      <EdgeTable g={g} links={g.incoming[node]!} end="source" testId="graph-incoming" onSelect={onSelect} />
      <h4>Outgoing ({g.outgoing[node]!.length})</h4>
      <EdgeTable g={g} links={g.outgoing[node]!} end="target" testId="graph-outgoing" onSelect={onSelect} />
      {kind === 'feature' && index !== null && featureStore ? <FeaturePage layer={Number(n.layer)} index={index} /> : null}
      {kind === 'feature' && index !== null && !featureStore ? (
        <p className="hint" data-testid="graph-feature-no-store">
          No feature store for these transcoders: build one with <code>glassbox clt features DIR</code> to see this feature&apos;s contexts,
          histogram and logit effects.
        </p>
      ) : null}
      {kind === 'feature' && index !== null ? (
        <Intervention g={g} node={node} prompt={prompt} canCompute={canCompute} pinnedFeatures={pinnedFeatures} />
      ) : null}
    </div>
  );
}

/**
 * The feature store's page of a transcoder feature (GET /api/graph/features/:layer/:feature):
 * its density and activation figures, its top activating contexts with every token coloured by
 * its activation, the activation histogram and the top and bottom logit effects, drawn with the
 * Feature view's components.
 */
function FeaturePage({ layer, index }: { layer: number; index: number }) {
  const page = useLoad<FeaturePageResult>(`${layer}/${index}`, (signal) => api.graphFeature(layer, index, signal));
  if (page.status === 'error') return <ErrorBox error={page.error} />;
  if (page.status !== 'done') return <Loading on label="Loading the feature…" />;
  const p = page.data;
  const contexts = p.groups.flatMap((g) => g.contexts);
  const max = p.maxActivation ?? 0;
  return (
    <div className="graph-feature" data-testid="graph-feature-page">
      <h4>In the feature store</h4>
      <div className="stats">
        <Stat label="density" value={p.density === null ? '—' : p.density.toExponential(3)} testId="graph-feature-density" />
        <Stat label="tokens fired on" value={p.fireCount ?? '—'} testId="graph-feature-fires" />
        <Stat label="max activation" value={fmtAct(p.maxActivation)} testId="graph-feature-max" />
      </div>
      {contexts.length === 0 ? (
        <p className="hint" data-testid="graph-feature-never">
          It never fired on the store&apos;s corpus.
        </p>
      ) : (
        <>
          <h4>Top activating contexts</h4>
          <ol className="contexts">
            {contexts.map((c, i) => (
              <li key={i} data-testid="graph-feature-context" data-activation={c.activation ?? ''}>
                <span className="num context-act">{fmtAct(c.activation)}</span>
                <ActivationText tokens={c.tokens} max={max} mark={c.maxIndex} testId="graph-feature-context-text" />
              </li>
            ))}
          </ol>
        </>
      )}
      {p.histogram ? <Histogram histogram={p.histogram} /> : null}
      <Logits page={p} />
    </div>
  );
}

/** Scales (0 zeroes) the clicked feature, or every pinned feature, at its position; shows the top next tokens before and after. */
function Intervention({
  g,
  node,
  prompt,
  canCompute,
  pinnedFeatures,
}: {
  g: IndexedGraph;
  node: number;
  prompt: string | number[];
  canCompute: boolean;
  pinnedFeatures: string[];
}) {
  const [scale, setScale] = useState('0');
  const [which, setWhich] = useState<'clicked' | 'pinned'>('clicked');
  const [state, setState] = useState<{ loading: boolean; result: InterveneResult | null; error: ApiError | null }>({
    loading: false,
    result: null,
    error: null,
  });
  const targets = (which === 'clicked' ? [g.nodes[node]!.node_id] : pinnedFeatures)
    .map((id) => g.nodes[g.byId.get(id) ?? -1])
    .filter((n) => n !== undefined && featureIndex(n) !== null);
  const run = (e: FormEvent) => {
    e.preventDefault();
    const s = Number(scale);
    setState({ loading: true, result: null, error: null });
    api
      .graphIntervene({
        prompt,
        // Token ids are the graph's own tokens, BOS included.
        ...(typeof prompt === 'string' ? {} : { prependBos: false }),
        features: targets.map((n) => ({ layer: Number(n!.layer), feature: featureIndex(n!)!, pos: [n!.ctx_idx], scale: s })),
      })
      .then((result) => setState({ loading: false, result, error: null }))
      .catch((err: unknown) => setState({ loading: false, result: null, error: asApiError(err) }));
  };
  return (
    <form className="graph-intervene" onSubmit={run} data-testid="graph-intervene">
      <h4>Intervene</h4>
      <div className="form">
        <Select
          label="Features"
          value={which}
          options={[
            { value: 'clicked', label: 'this feature' },
            {
              value: 'pinned',
              label: `the pinned features (${pinnedFeatures.filter((id) => featureIndex(g.nodes[g.byId.get(id) ?? -1] ?? g.nodes[node]!) !== null).length})`,
            },
          ]}
          onChange={(v) => setWhich(v === 'pinned' ? 'pinned' : 'clicked')}
          testId="graph-intervene-which"
        />
        <NumberField label="scale (0 zeroes)" value={scale} onChange={setScale} testId="graph-intervene-scale" step="any" />
        <button
          type="submit"
          disabled={state.loading || targets.length === 0 || !Number.isFinite(Number(scale))}
          data-testid="graph-intervene-run"
        >
          {state.loading ? 'Running…' : 'Run'}
        </button>
      </div>
      {!canCompute ? <p className="hint">Interventions need the server's transcoders (serve --transcoders DIR).</p> : null}
      <ErrorBox error={state.error} />
      {state.result ? (
        <table className="table" data-testid="graph-intervene-result">
          <thead>
            <tr>
              <th>#</th>
              <th>before</th>
              <th>after</th>
            </tr>
          </thead>
          <tbody>
            {state.result.before.map((b, i) => {
              const a = state.result!.after[i];
              return (
                <tr
                  key={i}
                  data-testid="graph-intervene-row"
                  data-before={`${b.token}:${b.prob}`}
                  data-after={a ? `${a.token}:${a.prob}` : ''}
                >
                  <td>{i + 1}</td>
                  <td>
                    {showTok(b.str, b.token)} {fmtProb(b.prob)}
                  </td>
                  <td>{a ? `${showTok(a.str, a.token)} ${fmtProb(a.prob)}` : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </form>
  );
}

/** The pinned nodes, their supernodes, and the summed links between them. */
function SubgraphPanel({
  g,
  pinned,
  supernodes,
  onSelect,
  onChange,
  onUnpin,
}: {
  g: IndexedGraph;
  pinned: string[];
  supernodes: Supernode[];
  onSelect(id: string): void;
  onChange(groups: Supernode[]): void;
  onUnpin(id: string): void;
}) {
  const sub = useMemo(() => subgraph(g, pinned, supernodes), [g, pinned, supernodes]);
  const [checked, setChecked] = useState<ReadonlySet<string>>(new Set());
  const [label, setLabel] = useState('');
  const labelOf = new Map(sub.nodes.map((s) => [s.id, s.label]));
  const group = (e: FormEvent) => {
    e.preventDefault();
    const members = [...checked].filter((id) => pinned.includes(id));
    if (members.length === 0 || label.trim() === '') return;
    const rest = supernodes.map((s) => ({ ...s, members: s.members.filter((m) => !members.includes(m)) })).filter((s) => s.members.length);
    onChange([...rest, { label: label.trim(), members }]);
    setChecked(new Set());
    setLabel('');
  };
  return (
    <div className="graph-subgraph" data-testid="graph-subgraph">
      <h3>Subgraph ({pinned.length} pinned)</h3>
      {sub.nodes.length === 0 ? <p className="hint">Pin nodes from their pane to collect them here.</p> : null}
      <ul className="graph-sub-nodes">
        {sub.nodes.map((s) => (
          <li
            key={s.id}
            data-testid={s.supernode ? 'graph-supernode' : 'graph-pinned'}
            data-label={s.label}
            data-members={s.members.join(',')}
          >
            {s.supernode ? (
              <>
                <strong>{s.label}</strong>{' '}
                <button
                  type="button"
                  className="link"
                  onClick={() => onChange(supernodes.filter((x) => x.label !== s.label || x.members.join() !== s.members.join()))}
                >
                  ungroup
                </button>
                <ul>
                  {s.members.map((m) => (
                    <li key={m}>
                      <button type="button" className="link" onClick={() => onSelect(m)}>
                        {describeNode(g, m)}
                      </button>
                    </li>
                  ))}
                </ul>
              </>
            ) : (
              <>
                <input
                  type="checkbox"
                  checked={checked.has(s.id)}
                  onChange={(e) => {
                    const next = new Set(checked);
                    if (e.target.checked) next.add(s.id);
                    else next.delete(s.id);
                    setChecked(next);
                  }}
                  data-testid="graph-pinned-check"
                  data-node-id={s.id}
                  aria-label={`select ${s.id}`}
                />
                <button type="button" className="link" onClick={() => onSelect(s.id)}>
                  {describeNode(g, s.id)}
                </button>{' '}
                <button type="button" className="link" onClick={() => onUnpin(s.id)}>
                  unpin
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
      {sub.nodes.some((s) => !s.supernode) ? (
        <form className="form" onSubmit={group}>
          <TextField label="Supernode label" value={label} onChange={setLabel} testId="graph-supernode-label" />
          <button type="submit" data-testid="graph-group" disabled={checked.size === 0 || label.trim() === ''}>
            Group
          </button>
        </form>
      ) : null}
      {sub.links.length > 0 ? (
        <>
          <h4>Links between them</h4>
          <table className="table" data-testid="graph-sub-links">
            <tbody>
              {sub.links.map((l) => (
                <tr
                  key={`${l.source}>${l.target}`}
                  data-testid="graph-sub-link"
                  data-source={l.source}
                  data-target={l.target}
                  data-weight={l.weight}
                >
                  <td>{labelOf.get(l.source)}</td>
                  <td>→</td>
                  <td>{labelOf.get(l.target)}</td>
                  <td style={{ color: l.weight >= 0 ? POSITIVE : NEGATIVE }}>{fmtNum(l.weight, 4)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}
