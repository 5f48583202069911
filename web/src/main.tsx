import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { serverAnswers, startLocalEngine, type LocalEngineInfo } from './local';
import './styles.css';

/**
 * Where the numbers come from, above the app when it is the page's own engine (the static
 * workbench): the runtime, and why threads are off when they are.
 */
function EngineNote({ info, error }: { info: LocalEngineInfo | null; error: string | null }) {
  if (error)
    return (
      <div className="engine-note error" data-testid="engine-note">
        {error}
      </div>
    );
  if (!info) return null;
  return (
    <div className="engine-note" data-testid="engine-note">
      Running in this page: <span data-testid="engine-runtime">{info.runtime}</span>, model loaded in {(info.loadMs / 1000).toFixed(1)} s.
      {info.threadsNote && (
        <span data-testid="engine-threads-note">
          {' '}
          Note: {info.threadsNote}. Serve the folder with the headers Cross-Origin-Opener-Policy: same-origin and
          Cross-Origin-Embedder-Policy: require-corp for threads.
        </span>
      )}
    </div>
  );
}

async function boot(): Promise<void> {
  const root = createRoot(document.getElementById('root')!);
  let info: LocalEngineInfo | null = null;
  let error: string | null = null;
  // `glassbox serve` answers /api; a static host does not, and then the page runs the model itself.
  if (!(await serverAnswers())) {
    root.render(
      <div className="engine-note" data-testid="engine-loading">
        Loading the model into this page…
      </div>,
    );
    try {
      info = (await startLocalEngine()).info;
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
  }
  root.render(
    <StrictMode>
      <EngineNote info={info} error={error} />
      <App />
    </StrictMode>,
  );
}

void boot();
