/**
 * The skeleton every view shares. A view's whole state lives in its URL (router.ts): the URL's
 * submitted state is the request, run whenever it changes (the previous run aborted); the form
 * starts from the URL and is reset to it when the URL's request changes (back/forward, a pasted
 * link); submitting the form writes its state into the URL.
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { asApiError, type ApiError, type ModelInfo } from './api';
import { navigate, read, type Route, type ViewId } from './router';
import { DEFAULT_ANSWER, DEFAULT_WRONG, queryOf, rememberPrompt, startPrompt, toPrompt, type QueryValues } from './ui';

export interface ViewFormSpec<R, F extends object, T> {
  /** The view: where a submitted form goes. */
  view: ViewId;
  /** The request the URL's query holds; null when it holds none (nothing submitted yet). */
  request(params: URLSearchParams): R | null;
  /** The form's fields as the URL's query gives them (or their defaults). */
  form(params: URLSearchParams): F;
  /** The URL query a submitted form writes. */
  query(form: NoInfer<F>): QueryValues;
  /** Runs the request. Absent for a view that runs it itself (patching's job): then nothing is fetched. */
  run?(req: NoInfer<R>, signal: AbortSignal): Promise<T>;
  /** The prompt a submission remembers, for the other views' empty forms. */
  remember?(form: NoInfer<F>): string;
}

export interface ViewForm<R, F extends object, T> {
  view: ViewId;
  /** The URL's request (null: nothing submitted). */
  req: R | null;
  /** The request as a string: changes exactly when the request does. */
  key: string | null;
  form: F;
  set(patch: Partial<F>): void;
  /** A field's value and setter, to spread into a field component: `<TextField {...field('answer')} />`. */
  field<K extends keyof F>(name: K): { value: F[K]; onChange(value: F[K]): void };
  /** The run's answer (the last one's until the next arrives; null after an error). */
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  /** The form's submit handler. */
  submit(e: FormEvent): void;
  /** Counts submissions of the state the URL already holds (patching runs its job again on one). */
  runId: number;
}

/** A view's URL state, form, request and submit; see ViewFormSpec. */
export function useViewForm<R, F extends object, T = never>(route: Route, spec: ViewFormSpec<R, F, T>): ViewForm<R, F, T> {
  const params = route.params;
  const req = spec.request(params);
  const key = req === null ? null : JSON.stringify(req);
  const [form, set] = useForm(key ?? '', () => spec.form(params));
  const q = useQuery(spec.run ? key : null, (signal) => spec.run!(req!, signal));
  const [runId, setRunId] = useState(0);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (spec.remember) rememberPrompt(spec.remember(form));
    const next = queryOf(spec.query(form));
    if (next.toString() === route.query) setRunId((n) => n + 1);
    navigate(spec.view, next);
  };
  const field = <K extends keyof F>(name: K) => ({
    value: form[name],
    onChange: (value: F[K]) => set({ [name]: value } as unknown as Partial<F>),
  });
  return { view: spec.view, req, key, form, set, field, data: q.data, error: q.error, loading: q.loading, submit, runId };
}

/** The prompt and the BOS switch, as most views read them: the request's, the form's, the API body's. */
export const promptState = {
  request: (p: URLSearchParams) => ({ prompt: read.str(p, 'prompt', ''), bos: read.bool(p, 'bos', true) }),
  form: (p: URLSearchParams, model: ModelInfo) => ({ prompt: read.str(p, 'prompt', startPrompt(model)), bos: read.bool(p, 'bos', true) }),
  body: (req: { prompt: string; bos: boolean }, model: ModelInfo) => ({ prompt: toPrompt(req.prompt, model), prependBos: req.bos }),
};

/** The answer and wrong tokens and the position of a logit difference: the request's and the form's. */
export const answerState = {
  request: (p: URLSearchParams) => ({ answer: read.str(p, 'answer', ''), wrong: read.str(p, 'wrong', ''), pos: read.int(p, 'pos', -1) }),
  form: (p: URLSearchParams, model: ModelInfo) => ({
    answer: read.str(p, 'answer', model.hasTokenizer ? DEFAULT_ANSWER : ''),
    wrong: read.str(p, 'wrong', model.hasTokenizer ? DEFAULT_WRONG : ''),
    pos: String(read.int(p, 'pos', -1)),
  }),
};

/** The prompt, top-k and BOS switch of the Prompt and Logit lens views. */
export function promptTopK(model: ModelInfo) {
  return {
    request: (p: URLSearchParams) => (p.has('prompt') ? { ...promptState.request(p), k: read.int(p, 'k', 5) } : null),
    form: (p: URLSearchParams) => ({ ...promptState.form(p, model), k: String(read.int(p, 'k', 5)) }),
    query: (f: { prompt: string; k: string; bos: boolean }) => ({ prompt: f.prompt, k: f.k || '5', bos: bosQuery(f.bos) }),
    remember: (f: { prompt: string }) => f.prompt,
  };
}

/** The BOS switch as a URL query value: left out when on (the default). */
export const bosQuery = (bos: boolean) => (bos ? undefined : false);

/** Runs `run` whenever `key` changes (null: nothing to run), aborting the previous request. */
function useQuery<T>(key: string | null, run: (signal: AbortSignal) => Promise<T>) {
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

/**
 * A view's form: starts from the URL's state and is reset to it whenever `key` (the submitted
 * state) changes, e.g. on back/forward or a pasted link.
 */
function useForm<F extends object>(key: string, init: () => F): [F, (patch: Partial<F>) => void] {
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
