/**
 * Steering: a difference-of-means vector (positive prompts' activations minus negative ones')
 * added at a layer while generating; the steered and unsteered continuations side by side.
 */
import { type FormEvent } from 'react';
import { api } from '../api';
import { navigate, read, type Route } from '../router';
import {
  ErrorBox,
  fmtNum,
  layerOptions,
  Loading,
  NumberField,
  PromptField,
  PromptListField,
  queryOf,
  RunButton,
  Select,
  toPrompt,
  useForm,
  useModel,
  useQuery,
} from '../ui';

export const DEFAULT_POSITIVE = [
  'The whale rose from the sea',
  'The ship sailed over the ocean waves',
  'The harpoon struck the whale',
  'The sailors went aloft in the boat',
];
export const DEFAULT_NEGATIVE = [
  'The Congress passed the law',
  'The government must reduce taxes',
  'The President spoke to the nation',
  'Our economy needs new jobs',
];
export const DEFAULT_STEER_PROMPT = 'I think that the';

const HOOKS = ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out'];

const lines = (s: string) =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);

export function SteeringView({ route }: { route: Route }) {
  const model = useModel();
  const p = route.params;
  const hooks = HOOKS.filter((h) => model.hookNames.includes(`blocks.0.hook_${h}`));
  const defaultLayer = Math.min(2, model.nLayers - 1);
  const submitted = p.has('prompt') && p.has('pos') && p.has('neg');
  const req = submitted
    ? {
        positive: p.getAll('pos'),
        negative: p.getAll('neg'),
        prompt: read.str(p, 'prompt', ''),
        layer: read.int(p, 'layer', defaultLayer),
        hook: read.str(p, 'hook', 'resid_pre'),
        position: read.str(p, 'position', 'mean') === 'last' ? ('last' as const) : ('mean' as const),
        scale: read.num(p, 'scale', 2),
        n: read.int(p, 'n', Math.min(20, model.limits.maxNewTokens)),
        temp: read.num(p, 'temp', 0),
        seed: read.int(p, 'seed', 0),
      }
    : null;
  const key = req ? JSON.stringify(req) : null;
  const [form, set] = useForm(key ?? '', () => ({
    positive: (p.has('pos') ? p.getAll('pos') : model.hasTokenizer ? DEFAULT_POSITIVE : []).join('\n'),
    negative: (p.has('neg') ? p.getAll('neg') : model.hasTokenizer ? DEFAULT_NEGATIVE : []).join('\n'),
    prompt: read.str(p, 'prompt', model.hasTokenizer ? DEFAULT_STEER_PROMPT : ''),
    layer: String(read.int(p, 'layer', defaultLayer)),
    hook: read.str(p, 'hook', 'resid_pre'),
    position: read.str(p, 'position', 'mean'),
    scale: String(read.num(p, 'scale', 2)),
    n: String(read.int(p, 'n', Math.min(20, model.limits.maxNewTokens))),
    temp: String(read.num(p, 'temp', 0)),
    seed: String(read.int(p, 'seed', 0)),
  }));
  const q = useQuery(key, (signal) =>
    api.steer(
      {
        positive: req!.positive.map((s, i) => toPrompt(s, model, `positive prompt ${i + 1}`)),
        negative: req!.negative.map((s, i) => toPrompt(s, model, `negative prompt ${i + 1}`)),
        prompt: toPrompt(req!.prompt, model),
        layer: req!.layer,
        hook: req!.hook,
        position: req!.position,
        scale: req!.scale,
        maxNewTokens: req!.n,
        temperature: req!.temp,
        seed: req!.seed,
      },
      signal,
    ),
  );
  const data = q.data;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    navigate(
      'steering',
      queryOf({
        pos: lines(form.positive),
        neg: lines(form.negative),
        prompt: form.prompt,
        layer: form.layer,
        hook: form.hook,
        position: form.position,
        scale: form.scale || '1',
        n: form.n || '20',
        temp: form.temp || '0',
        seed: form.seed || '0',
      }),
    );
  };

  const promptText = req?.prompt ?? '';
  return (
    <section className="view">
      <h2>Steering</h2>
      <p className="lede">
        The mean activation of the positive prompts minus that of the negative prompts, times a scale, added at one layer while the model
        continues the prompt.
      </p>
      <form className="form" onSubmit={submit} data-testid="form">
        <PromptListField label="Positive prompts" value={form.positive} onChange={(v) => set({ positive: v })} testId="positive" />
        <PromptListField label="Negative prompts" value={form.negative} onChange={(v) => set({ negative: v })} testId="negative" />
        <PromptField
          label="Prompt to continue"
          value={form.prompt}
          onChange={(v) => set({ prompt: v })}
          testId="prompt"
          hint="Enter runs"
        />
        <Select
          label="Layer"
          value={form.layer}
          options={layerOptions(model.nLayers)}
          onChange={(v) => set({ layer: v })}
          testId="steer-layer"
        />
        <Select
          label="Hook"
          value={form.hook}
          options={hooks.map((h) => ({ value: h, label: h }))}
          onChange={(v) => set({ hook: v })}
          testId="steer-hook"
        />
        <Select
          label="Vector from"
          value={form.position}
          options={[
            { value: 'mean', label: 'mean over positions' },
            { value: 'last', label: 'last position' },
          ]}
          onChange={(v) => set({ position: v })}
          testId="steer-position"
        />
        <NumberField label="Scale" value={form.scale} onChange={(v) => set({ scale: v })} testId="scale" step="any" />
        <NumberField
          label="New tokens"
          value={form.n}
          onChange={(v) => set({ n: v })}
          testId="new-tokens"
          min={1}
          max={model.limits.maxNewTokens}
        />
        <NumberField
          label="Temperature"
          value={form.temp}
          onChange={(v) => set({ temp: v })}
          testId="temperature"
          min={0}
          max={10}
          step="any"
        />
        <NumberField label="Seed" value={form.seed} onChange={(v) => set({ seed: v })} testId="seed" min={0} />
        <RunButton loading={q.loading} label="Generate" />
      </form>
      <ErrorBox error={q.error} />
      <Loading on={q.loading} label="Generating…" />
      {data ? (
        <div className={`results${q.loading ? ' stale' : ''}`} data-testid="results">
          <p className="hint">
            Vector at <code data-testid="steer-hook-name">{data.hook}</code>, norm{' '}
            <strong data-testid="steer-norm">{fmtNum(data.vectorNorm, 3)}</strong>, scale{' '}
            <strong data-testid="steer-scale">{data.scale}</strong>.
          </p>
          <div className="two-col">
            <div className="card">
              <h3>Unsteered</h3>
              <p className="generation">
                <span className="gen-prompt">{promptText}</span>
                <span className="gen-new" data-testid="steer-unsteered">
                  {data.unsteered.text ?? data.unsteered.tokens.join(' ')}
                </span>
              </p>
            </div>
            <div className="card steered">
              <h3>Steered</h3>
              <p className="generation">
                <span className="gen-prompt">{promptText}</span>
                <span className="gen-new" data-testid="steer-steered">
                  {data.steered.text ?? data.steered.tokens.join(' ')}
                </span>
              </p>
            </div>
          </div>
        </div>
      ) : null}
    </section>
  );
}
