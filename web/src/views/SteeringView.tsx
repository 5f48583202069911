/**
 * Steering: a difference-of-means vector (positive prompts' activations minus negative ones')
 * added at a layer while generating; the steered and unsteered continuations side by side.
 */
import { api } from '../api';
import { read, type Route } from '../router';
import {
  fmtNum,
  GenerationCard,
  layerOptions,
  NumberField,
  PromptField,
  PromptListField,
  Select,
  toPrompt,
  useModel,
  ViewFrame,
} from '../ui';
import { useViewForm } from '../useViewForm';

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
  const hooks = HOOKS.filter((h) => model.hookNames.includes(`blocks.0.hook_${h}`));
  const defaultLayer = Math.min(2, model.nLayers - 1);
  const defaultNewTokens = Math.min(20, model.limits.maxNewTokens);
  const view = useViewForm(route, {
    view: 'steering',
    request: (p) =>
      p.has('prompt') && p.has('pos') && p.has('neg')
        ? {
            positive: p.getAll('pos'),
            negative: p.getAll('neg'),
            prompt: read.str(p, 'prompt', ''),
            layer: read.int(p, 'layer', defaultLayer),
            hook: read.str(p, 'hook', 'resid_pre'),
            position: read.str(p, 'position', 'mean') === 'last' ? ('last' as const) : ('mean' as const),
            scale: read.num(p, 'scale', 2),
            n: read.int(p, 'n', defaultNewTokens),
            temp: read.num(p, 'temp', 0),
            seed: read.int(p, 'seed', 0),
          }
        : null,
    form: (p) => ({
      positive: (p.has('pos') ? p.getAll('pos') : model.hasTokenizer ? DEFAULT_POSITIVE : []).join('\n'),
      negative: (p.has('neg') ? p.getAll('neg') : model.hasTokenizer ? DEFAULT_NEGATIVE : []).join('\n'),
      prompt: read.str(p, 'prompt', model.hasTokenizer ? DEFAULT_STEER_PROMPT : ''),
      layer: String(read.int(p, 'layer', defaultLayer)),
      hook: read.str(p, 'hook', 'resid_pre'),
      position: read.str(p, 'position', 'mean'),
      scale: String(read.num(p, 'scale', 2)),
      n: String(read.int(p, 'n', defaultNewTokens)),
      temp: String(read.num(p, 'temp', 0)),
      seed: String(read.int(p, 'seed', 0)),
    }),
    query: (f) => ({
      pos: lines(f.positive),
      neg: lines(f.negative),
      prompt: f.prompt,
      layer: f.layer,
      hook: f.hook,
      position: f.position,
      scale: f.scale || '1',
      n: f.n || '20',
      temp: f.temp || '0',
      seed: f.seed || '0',
    }),
    run: (req, signal) =>
      api.steer(
        {
          positive: req.positive.map((s, i) => toPrompt(s, model, `positive prompt ${i + 1}`)),
          negative: req.negative.map((s, i) => toPrompt(s, model, `negative prompt ${i + 1}`)),
          prompt: toPrompt(req.prompt, model),
          layer: req.layer,
          hook: req.hook,
          position: req.position,
          scale: req.scale,
          maxNewTokens: req.n,
          temperature: req.temp,
          seed: req.seed,
        },
        signal,
      ),
  });
  const { req, field, data } = view;

  const promptText = req?.prompt ?? '';
  return (
    <ViewFrame
      lede={
        <>
          The mean activation of the positive prompts minus that of the negative prompts, times a scale, added at one layer while the model
          continues the prompt.
        </>
      }
      run={view}
      runLabel="Generate"
      loadingLabel="Generating…"
      fields={
        <>
          <PromptListField label="Positive prompts" {...field('positive')} testId="positive" />
          <PromptListField label="Negative prompts" {...field('negative')} testId="negative" />
          <PromptField label="Prompt to continue" {...field('prompt')} testId="prompt" hint="Enter runs" />
          <Select label="Layer" {...field('layer')} options={layerOptions(model.nLayers)} testId="steer-layer" />
          <Select label="Hook" {...field('hook')} options={hooks.map((h) => ({ value: h, label: h }))} testId="steer-hook" />
          <Select
            label="Vector from"
            {...field('position')}
            options={[
              { value: 'mean', label: 'mean over positions' },
              { value: 'last', label: 'last position' },
            ]}
            testId="steer-position"
          />
          <NumberField label="Scale" {...field('scale')} testId="scale" step="any" />
          <NumberField label="New tokens" {...field('n')} testId="new-tokens" min={1} max={model.limits.maxNewTokens} />
          <NumberField label="Temperature" {...field('temp')} testId="temperature" min={0} max={10} step="any" />
          <NumberField label="Seed" {...field('seed')} testId="seed" min={0} />
        </>
      }
    >
      {data ? (
        <>
          <p className="hint">
            Vector at <code data-testid="steer-hook-name">{data.hook}</code>, norm{' '}
            <strong data-testid="steer-norm">{fmtNum(data.vectorNorm, 3)}</strong>, scale{' '}
            <strong data-testid="steer-scale">{data.scale}</strong>.
          </p>
          <div className="two-col">
            <GenerationCard title="Unsteered" className="card" prompt={promptText} generation={data.unsteered} testId="steer-unsteered" />
            <GenerationCard title="Steered" className="card steered" prompt={promptText} generation={data.steered} testId="steer-steered" />
          </div>
        </>
      ) : null}
    </ViewFrame>
  );
}
