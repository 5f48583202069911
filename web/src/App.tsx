/** The workbench: the model in a header, a nav bar of the views, and the view the URL names. */
import { useEffect, useState, type ComponentType } from 'react';
import { api, asApiError, type ApiError, type ModelInfo } from './api';
import { hrefOf, useRoute, VIEWS, type Route, type ViewId } from './router';
import { ErrorBox, ModelContext } from './ui';
import { AttentionView } from './views/AttentionView';
import { AttributionView } from './views/AttributionView';
import { GraphView } from './views/GraphView';
import { HeadsView } from './views/HeadsView';
import { LogitLensView } from './views/LogitLensView';
import { PatchingView } from './views/PatchingView';
import { PromptView } from './views/PromptView';
import { SteeringView } from './views/SteeringView';

const VIEW_COMPONENTS: Record<ViewId, ComponentType<{ route: Route }>> = {
  prompt: PromptView,
  attention: AttentionView,
  'logit-lens': LogitLensView,
  attribution: AttributionView,
  patching: PatchingView,
  heads: HeadsView,
  steering: SteeringView,
  graph: GraphView,
};

function ModelHeader({ model }: { model: ModelInfo | null }) {
  return (
    <header className="header">
      <a className="brand" href="#/prompt">
        glassbox <span>workbench</span>
      </a>
      {model ? (
        <dl className="model-info" data-testid="model-info">
          <div>
            <dt>model</dt>
            <dd data-testid="model-name">{model.name}</dd>
          </div>
          <div>
            <dt>family</dt>
            <dd data-testid="model-family">{model.family}</dd>
          </div>
          <div>
            <dt>layers</dt>
            <dd data-testid="model-layers">{model.nLayers}</dd>
          </div>
          <div>
            <dt>heads</dt>
            <dd data-testid="model-heads">{model.nHeads}</dd>
          </div>
          <div>
            <dt>d_model</dt>
            <dd data-testid="model-dmodel">{model.dModel}</dd>
          </div>
          <div>
            <dt>vocab</dt>
            <dd data-testid="model-vocab">{model.dVocab}</dd>
          </div>
          <div>
            <dt>context</dt>
            <dd data-testid="model-ctx">{model.nCtx}</dd>
          </div>
          {!model.hasTokenizer ? (
            <div>
              <dt>tokenizer</dt>
              <dd>none: prompts are token ids</dd>
            </div>
          ) : null}
        </dl>
      ) : null}
    </header>
  );
}

export function App() {
  const route = useRoute();
  const [model, setModel] = useState<ModelInfo | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    api
      .model(ctl.signal)
      .then(setModel)
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(asApiError(e));
      });
    return () => ctl.abort();
  }, [attempt]);

  const title = VIEWS.find((v) => v.id === route.view)!.title;
  useEffect(() => {
    document.title = `${title} · glassbox`;
  }, [title]);

  const View = VIEW_COMPONENTS[route.view];
  return (
    <ModelContext.Provider value={model}>
      <ModelHeader model={model} />
      <nav className="nav" data-testid="nav">
        {VIEWS.map((v) => (
          <a
            key={v.id}
            href={hrefOf(v.id)}
            className={v.id === route.view ? 'active' : ''}
            aria-current={v.id === route.view ? 'page' : undefined}
            data-testid={`nav-${v.id}`}
          >
            {v.title}
          </a>
        ))}
      </nav>
      <main className="main" data-testid={`view-${route.view}`}>
        {error ? (
          <>
            <ErrorBox error={error} />
            <button type="button" onClick={() => setAttempt((n) => n + 1)}>
              Retry
            </button>
          </>
        ) : model ? (
          <View key={route.view} route={route} />
        ) : (
          <p className="loading">Loading the model…</p>
        )}
      </main>
    </ModelContext.Provider>
  );
}
