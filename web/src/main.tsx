import { StrictMode, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { folderFiles, localEngine, serverAnswers, startLocalEngine, type LocalEngineInfo } from './local';
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

/**
 * A drop's files as `{ path, file }`, paths relative to what was dropped ('gpt2/config.json').
 * The DataTransfer's items are read at once (the browser empties them when the drop event
 * returns); a dropped folder's own files are listed through its entry, loose files (or a drop
 * without entries) through `files`.
 */
function droppedFiles(dt: DataTransfer): Promise<{ path: string; file: Blob }[]> {
  const entries = Array.from(dt.items, (item) => item.webkitGetAsEntry?.() ?? null).filter((e): e is FileSystemEntry => e !== null);
  const loose = Array.from(dt.files, (file) => ({ path: file.name, file: file as Blob }));
  if (entries.length === 0) return Promise.resolve(loose);
  const fileOf = (e: FileSystemFileEntry) => new Promise<File>((resolve, reject) => e.file(resolve, reject));
  const children = async (d: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> => {
    const reader = d.createReader();
    const all: FileSystemEntry[] = [];
    // readEntries answers in batches until an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) return all;
      all.push(...batch);
    }
  };
  return (async () => {
    const out: { path: string; file: Blob }[] = [];
    for (const e of entries) {
      const list = e.isDirectory ? await children(e as FileSystemDirectoryEntry) : [e];
      for (const f of list) if (f.isFile) out.push({ path: f.fullPath.replace(/^\/+/, ''), file: await fileOf(f as FileSystemFileEntry) });
    }
    return out;
  })();
}

/**
 * Open your own model (the static workbench): drop a model folder anywhere on the page, or pick
 * one with the folder input; the page's engine loads it (config.json, tokenizer.json, the
 * safetensors weights, read from the files themselves) and the app restarts on it. Says which
 * model is loaded, and a load's error, which names the file and field (the model before stays).
 */
function ModelDrop({ onLoaded }: { onLoaded: () => void }) {
  const [state, setState] = useState<
    | { status: 'idle' }
    | { status: 'loading'; folder: string }
    | { status: 'loaded'; name: string; notes: string[] }
    | { status: 'error'; message: string }
  >({ status: 'idle' });
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const load = async (entries: { path: string; file: Blob }[]) => {
    const engine = localEngine();
    if (!engine) return;
    const { folder, files } = folderFiles(entries);
    if (files.length === 0) {
      setState({ status: 'error', message: `${folder}: no files in it (drop the model's folder itself, holding config.json)` });
      return;
    }
    setState({ status: 'loading', folder });
    const r = await engine.loadFolder(folder, files);
    if (!r.ok) {
      setState({ status: 'error', message: r.error.message });
      return;
    }
    setState({ status: 'loaded', name: r.body.name, notes: r.body.notes });
    onLoaded();
  };
  useEffect(() => {
    const dragOver = (e: DragEvent) => {
      e.preventDefault();
      setOver(true);
    };
    const dragLeave = () => setOver(false);
    const drop = (e: DragEvent) => {
      e.preventDefault();
      setOver(false);
      if (e.dataTransfer)
        void droppedFiles(e.dataTransfer).then(load, (err: unknown) => setState({ status: 'error', message: String(err) }));
    };
    window.addEventListener('dragover', dragOver);
    window.addEventListener('dragleave', dragLeave);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragover', dragOver);
      window.removeEventListener('dragleave', dragLeave);
      window.removeEventListener('drop', drop);
    };
  });
  return (
    <div className={`model-drop${over ? ' over' : ''}`} data-testid="model-drop">
      Open your own model: drop its folder (config.json, tokenizer.json, *.safetensors) on the page, or{' '}
      <label className="link">
        choose a folder
        <input
          ref={input}
          type="file"
          data-testid="model-folder-input"
          // Chromium, Firefox and Safari pick folders with this attribute (React passes it through).
          {...{ webkitdirectory: '' }}
          hidden
          onChange={(e) => {
            const files = Array.from(e.currentTarget.files ?? [], (f) => ({ path: f.webkitRelativePath || f.name, file: f as Blob }));
            e.currentTarget.value = '';
            void load(files);
          }}
        />
      </label>
      . {state.status === 'loading' && <span data-testid="model-drop-loading">Loading {state.folder}…</span>}
      {state.status === 'loaded' && (
        <span data-testid="model-drop-loaded">
          Loaded <strong>{state.name}</strong>.{' '}
          {state.notes.map((n) => (
            <span key={n} data-testid="model-drop-note">
              {n}.{' '}
            </span>
          ))}
        </span>
      )}
      {state.status === 'error' && (
        <span className="error" data-testid="model-drop-error">
          Could not load the model: {state.message}
        </span>
      )}
    </div>
  );
}

/** The static workbench's page: the engine note, the model drop, and the app (restarted on each model loaded). */
function LocalWorkbench({ info }: { info: LocalEngineInfo }) {
  const [generation, setGeneration] = useState(0);
  return (
    <>
      <EngineNote info={info} error={null} />
      <ModelDrop onLoaded={() => setGeneration((g) => g + 1)} />
      <App key={generation} />
    </>
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
      {info ? (
        <LocalWorkbench info={info} />
      ) : (
        <>
          <EngineNote info={info} error={error} />
          <App />
        </>
      )}
    </StrictMode>,
  );
}

void boot();
