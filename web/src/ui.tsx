/**
 * Pieces every view uses: the model context, the request hook, the error box, token chips,
 * prompt fields and number formatting.
 */
import { createContext, useContext, useEffect, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { ApiError, asApiError, type ModelInfo, type Prompt, type TokenRef } from './api';

export const ModelContext = createContext<ModelInfo | null>(null);

export function useModel(): ModelInfo {
  const m = useContext(ModelContext);
  if (!m) throw new Error('useModel outside the model context');
  return m;
}

/** The default prompt: the default model (Moby Dick + State of the Union) knows these names. */
export const DEFAULT_PROMPT = 'Then Ahab and Starbuck went on deck, and Starbuck said to';

/** The last prompt submitted in any view: a view's empty form starts from it. */
let lastPrompt: string | null = null;
export function rememberPrompt(p: string): void {
  if (p.trim()) lastPrompt = p;
}
export function startPrompt(model: ModelInfo): string {
  return lastPrompt ?? (model.hasTokenizer ? DEFAULT_PROMPT : '');
}

/** A prompt field's text as the API's prompt: text, or token ids when the model has no tokenizer. */
export function toPrompt(text: string, model: ModelInfo, what = 'prompt'): Prompt {
  if (model.hasTokenizer) {
    if (text.length === 0) throw new ApiError(0, 'Invalid input', `${what} is empty`);
    return text;
  }
  const parts = text.split(/[\s,]+/).filter((s) => s.length > 0);
  if (parts.length === 0 || parts.some((s) => !/^\d+$/.test(s)))
    throw new ApiError(0, 'Invalid input', `${what}: this model has no tokenizer; give token ids separated by commas or spaces`);
  return parts.map(Number);
}

/** A token field's text as the API's token: `#123` (or digits, without a tokenizer) is an id. */
export function toTokenRef(text: string, model: ModelInfo, what = 'token'): TokenRef {
  const id = /^#(\d+)$/.exec(text.trim());
  if (id) return Number(id[1]);
  if (!model.hasTokenizer) {
    if (/^\d+$/.test(text.trim())) return Number(text.trim());
    throw new ApiError(0, 'Invalid input', `${what}: this model has no tokenizer; give a token id`);
  }
  if (text.length === 0) throw new ApiError(0, 'Invalid input', `${what} is empty`);
  return text;
}

/** A token's text made visible: spaces as '·', newlines as '⏎', tabs as '⇥'. */
export function showTok(s: string | null | undefined, id?: number): string {
  if (s === null || s === undefined) return id === undefined ? '?' : `#${id}`;
  if (s === '') return '∅';
  return s.replace(/ /g, '·').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}

/** Axis labels for positions: `pos token`, unique even where a token repeats. */
export function posLabels(tokens: number[], strTokens: string[] | null | undefined): string[] {
  return tokens.map((t, i) => `${i} ${showTok(strTokens?.[i] ?? null, t)}`);
}

export function fmtProb(p: number | null | undefined): string {
  return p === null || p === undefined ? '—' : `${(p * 100).toFixed(2)}%`;
}

export function fmtNum(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined ? '—' : x.toFixed(digits);
}

/** Runs `run` whenever `key` changes (null: nothing to run), aborting the previous request. */
export function useQuery<T>(key: string | null, run: (signal: AbortSignal) => Promise<T>) {
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean; key: string | null }>({
    data: null,
    error: null,
    loading: false,
    key: null,
  });
  const runRef = useRef(run);
  runRef.current = run;
  useEffect(() => {
    if (key === null) {
      setState({ data: null, error: null, loading: false, key: null });
      return;
    }
    const ctl = new AbortController();
    setState((s) => ({ ...s, error: null, loading: true, key }));
    runRef
      .current(ctl.signal)
      .then((data) => {
        if (!ctl.signal.aborted) setState({ data, error: null, loading: false, key });
      })
      .catch((e: unknown) => {
        if (ctl.signal.aborted) return;
        setState({ data: null, error: asApiError(e), loading: false, key });
      });
    return () => ctl.abort();
  }, [key]);
  return state;
}

/** An API error, as the server said it: status, kind and message. */
export function ErrorBox({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div className="error" role="alert" data-testid="api-error" data-status={error.statusCode}>
      <strong data-testid="api-error-title">{error.statusCode ? `${error.statusCode} ${error.error}` : error.error}</strong>
      <span data-testid="api-error-message">{error.message}</span>
    </div>
  );
}

export function Loading({ on, label = 'Running…' }: { on: boolean; label?: string }) {
  if (!on) return null;
  return (
    <div className="loading" data-testid="loading" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

/** A prompt's tokens as chips; `selected` highlights one position, `onSelect` makes them buttons. */
export function TokenChips({
  tokens,
  strTokens,
  selected,
  onSelect,
  testId = 'token-chips',
}: {
  tokens: number[];
  strTokens: string[] | null | undefined;
  selected?: number | null;
  onSelect?: (pos: number) => void;
  testId?: string;
}) {
  return (
    <div className="chips" data-testid={testId}>
      {tokens.map((t, i) => {
        const text = showTok(strTokens?.[i] ?? null, t);
        const props = {
          className: `chip${selected === i ? ' selected' : ''}`,
          title: `position ${i}, token id ${t}`,
          'data-testid': 'token-chip',
          'data-pos': i,
          'data-token': t,
        };
        return onSelect ? (
          <button type="button" key={i} {...props} onClick={() => onSelect(i)} aria-pressed={selected === i}>
            <span className="chip-pos">{i}</span>
            {text}
          </button>
        ) : (
          <span key={i} {...props}>
            <span className="chip-pos">{i}</span>
            {text}
          </span>
        );
      })}
    </div>
  );
}

/** A prompt textarea: Enter submits the form, Shift+Enter adds a line. */
export function PromptField({
  label,
  value,
  onChange,
  testId,
  placeholder,
  required = true,
  hint,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  testId: string;
  placeholder?: string;
  required?: boolean;
  hint?: ReactNode;
}) {
  const model = useModel();
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    }
  };
  return (
    <label className="field wide">
      <span>{label}</span>
      <textarea
        rows={2}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={onKeyDown}
        data-testid={testId}
        placeholder={placeholder ?? (model.hasTokenizer ? 'text' : 'token ids, e.g. 1, 2, 3')}
        required={required}
        spellCheck={false}
      />
      {hint ? <small>{hint}</small> : null}
    </label>
  );
}

/** A textarea of several prompts, one a line: Ctrl/Cmd+Enter submits. */
export function PromptListField({
  label,
  value,
  onChange,
  testId,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  testId: string;
}) {
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    }
  };
  return (
    <label className="field half">
      <span>{label}</span>
      <textarea
        rows={4}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={onKeyDown}
        data-testid={testId}
        spellCheck={false}
      />
      <small>one prompt a line; Ctrl+Enter runs</small>
    </label>
  );
}

export function BosField({ value, onChange }: { value: boolean; onChange: (v: boolean) => void }) {
  const model = useModel();
  if (!model.hasTokenizer) return null;
  return (
    <label className="field check">
      <input type="checkbox" checked={value} onChange={(e) => onChange(e.target.checked)} data-testid="bos" />
      <span>prepend BOS</span>
    </label>
  );
}

export function Select({
  label,
  value,
  options,
  onChange,
  testId,
}: {
  label: string;
  value: string;
  options: { value: string; label: string }[];
  onChange: (v: string) => void;
  testId: string;
}) {
  return (
    <label className="field">
      <span>{label}</span>
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </label>
  );
}

export function NumberField({
  label,
  value,
  onChange,
  testId,
  min,
  max,
  step,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  testId: string;
  min?: number;
  max?: number;
  step?: number | 'any';
}) {
  return (
    <label className="field narrow">
      <span>{label}</span>
      <input type="number" value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} min={min} max={max} step={step} />
    </label>
  );
}

export function TextField({
  label,
  value,
  onChange,
  testId,
  hint,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  testId: string;
  hint?: string;
}) {
  return (
    <label className="field">
      <span>{label}</span>
      <input type="text" value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} spellCheck={false} />
      {hint ? <small>{hint}</small> : null}
    </label>
  );
}

export function RunButton({ loading, label = 'Run' }: { loading: boolean; label?: string }) {
  return (
    <button type="submit" className="primary" data-testid="run" disabled={loading}>
      {loading ? 'Running…' : label}
    </button>
  );
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export const layerOptions = (n: number) => range(n).map((l) => ({ value: String(l), label: `layer ${l}` }));
export const headOptions = (n: number) => range(n).map((h) => ({ value: String(h), label: `head ${h}` }));

/**
 * A view's form: starts from the URL's state and is reset to it whenever `key` (the submitted
 * state) changes, e.g. on back/forward or a pasted link.
 */
export function useForm<F extends object>(key: string, init: () => F): [F, (patch: Partial<F>) => void] {
  const [form, setForm] = useState(init);
  const initRef = useRef(init);
  initRef.current = init;
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    setForm(initRef.current());
  }, [key]);
  return [form, (patch) => setForm((f) => ({ ...f, ...patch }))];
}

/** Query parameters from a record, leaving out undefined values; arrays repeat the key. */
export function queryOf(values: Record<string, string | number | boolean | string[] | undefined>): URLSearchParams {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.set(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  return p;
}

/** A copy of `params` with some keys set (undefined deletes). */
export function withParams(params: URLSearchParams, values: Record<string, string | number | undefined>): URLSearchParams {
  const p = new URLSearchParams(params);
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) p.delete(k);
    else p.set(k, String(v));
  }
  return p;
}
