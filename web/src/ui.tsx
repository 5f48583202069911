/**
 * Pieces every view uses: the model context, the error box, token chips, prompt fields, number
 * formatting and URL queries.
 */
import { createContext, useContext, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { ApiError, type Generation, type ModelInfo, type Prompt, type TokenRef } from './api';
import { VIEWS, type ViewId } from './router';

export const ModelContext = createContext<ModelInfo | null>(null);

export function useModel(): ModelInfo {
  const m = useContext(ModelContext);
  if (!m) throw new Error('useModel outside the model context');
  return m;
}

/**
 * The default prompt: an induction task the default model (Moby Dick + State of the Union) solves.
 * "Queequeg met" recurs, and the model copies what followed it the first time: logit(' Starbuck')
 * − logit(' Stubb') is 2.78 here and −5.22 on DEFAULT_CORRUPTED (Stubb in the first clause). An
 * IOI-style prompt does not work on it: it names the most recent name, whichever is the answer.
 */
export const DEFAULT_PROMPT = 'Then Queequeg met Starbuck on deck, and later Queequeg met';
/** The default prompt's answer, and the wrong answer a logit difference is taken against. */
export const DEFAULT_ANSWER = ' Starbuck';
export const DEFAULT_WRONG = ' Stubb';

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

/**
 * A view's frame: its title (as the nav bar names it) and lede; its form (`fields`, then the run
 * button); the run's progress (default: a spinner) and error; and its results (`children`,
 * dimmed while the next run loads).
 */
export function ViewFrame({
  lede,
  run,
  fields,
  runLabel,
  loadingLabel,
  progress,
  children,
}: {
  lede: ReactNode;
  /** The view, the run's state and the form's submit handler (a `useViewForm`). */
  run: { view: ViewId; submit: (e: FormEvent) => void; loading: boolean; error: ApiError | null };
  fields: ReactNode;
  runLabel?: string;
  loadingLabel?: string;
  /** Shown under the form instead of the spinner (a job's progress); given at all, even null, there is no spinner. */
  progress?: ReactNode;
  children: ReactNode;
}) {
  return (
    <section className="view">
      <h2>{VIEWS.find((v) => v.id === run.view)!.title}</h2>
      <p className="lede">{lede}</p>
      <form className="form" onSubmit={run.submit} data-testid="form">
        {fields}
        <RunButton loading={run.loading} label={runLabel} />
      </form>
      {progress}
      <ErrorBox error={run.error} />
      {progress === undefined ? <Loading on={run.loading} label={loadingLabel} /> : null}
      {children ? <Results stale={run.loading}>{children}</Results> : null}
    </section>
  );
}

/** One figure of a view's summary: a label over a value. */
export function Stat({ label, value, testId }: { label: ReactNode; value: ReactNode; testId?: string }) {
  return (
    <div className="stat">
      <span>{label}</span>
      <strong data-testid={testId}>{value}</strong>
    </div>
  );
}

/** A view's results, dimmed while the next run loads. */
export function Results({ stale = false, children }: { stale?: boolean; children: ReactNode }) {
  return (
    <div className={`results${stale ? ' stale' : ''}`} data-testid="results">
      {children}
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

export type QueryValues = Record<string, string | number | boolean | string[] | undefined>;

/** Query parameters from a record, leaving out undefined values; arrays repeat the key. */
export function queryOf(values: QueryValues): URLSearchParams {
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

/** A form field's value and setter (what `useViewForm`'s `field(name)` gives). */
export interface FieldState<T> {
  value: T;
  onChange(value: T): void;
}

/** The fields a prompt view's form starts and ends with: the prompt (test id "prompt"), the view's own fields, "prepend BOS". */
export function PromptFields({
  prompt,
  bos,
  hint = 'Enter runs',
  children,
}: {
  prompt: FieldState<string>;
  bos: FieldState<boolean>;
  hint?: ReactNode;
  children?: ReactNode;
}) {
  return (
    <>
      <PromptField label="Prompt" {...prompt} testId="prompt" hint={hint} />
      {children}
      <BosField {...bos} />
    </>
  );
}

/**
 * A table with a row per prompt position: the position, its token (and `tokenNote(pos)` after
 * it), then the view's cells for that position (`cells(pos)`, under `headers`). `selected` marks a
 * row; `onSelect` makes rows pick their position.
 */
export function TokenTable({
  tokens,
  strTokens,
  headers,
  cells,
  tokenNote,
  selected,
  onSelect,
  testId,
  rowTestId,
}: {
  tokens: number[];
  strTokens: string[] | null | undefined;
  headers: ReactNode[];
  cells: (pos: number) => ReactNode;
  tokenNote?: (pos: number) => ReactNode;
  selected?: number;
  onSelect?: (pos: number) => void;
  testId: string;
  rowTestId: string;
}) {
  return (
    <div className="table-wrap">
      <table className="table" data-testid={testId}>
        <thead>
          <tr>
            <th>pos</th>
            <th>token</th>
            {headers.map((h, j) => (
              <th key={j}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {tokens.map((id, pos) => (
            <tr
              key={pos}
              data-testid={rowTestId}
              data-pos={pos}
              className={selected === undefined ? undefined : pos === selected ? 'selected' : ''}
              onClick={onSelect ? () => onSelect(pos) : undefined}
            >
              <td className="num">{pos}</td>
              <td>
                <code>{showTok(strTokens?.[pos] ?? null, id)}</code>
                {tokenNote?.(pos)}
              </td>
              {cells(pos)}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A continuation after its prompt, in a card (steering's unsteered and steered runs). */
export function GenerationCard({
  title,
  className,
  prompt,
  generation,
  testId,
  heading: Heading = 'h3',
}: {
  title: ReactNode;
  className: string;
  prompt: string;
  generation: Generation;
  testId: string;
  heading?: 'h3' | 'h4';
}) {
  return (
    <div className={className}>
      <Heading>{title}</Heading>
      <p className="generation">
        <span className="gen-prompt">{prompt}</span>
        <span className="gen-new" data-testid={testId}>
          {generation.text ?? generation.tokens.join(' ')}
        </span>
      </p>
    </div>
  );
}

/** A small table: a header row of `headers`, then the rows given as children. */
export function CompactTable({ headers, testId, children }: { headers: ReactNode[]; testId?: string; children: ReactNode }) {
  return (
    <table className="table compact" data-testid={testId}>
      <thead>
        <tr>
          {headers.map((h, j) => (
            <th key={j}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}
