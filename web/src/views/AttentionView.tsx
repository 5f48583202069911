/**
 * Attention: one head's pattern as a heatmap (destination x source), and every head of every
 * layer as small multiples; click a small multiple to look at that head.
 */
import { useEffect, useMemo, useState } from 'react';
import { api } from '../api';
import { step, vl, VegaChart, type Datum } from '../chart';
import { hrefOf, navigate, read, type Route } from '../router';
import {
  headOptions,
  layerOptions,
  posLabels,
  PromptFields,
  queryOf,
  range,
  Select,
  showTok,
  TokenChips,
  toPrompt,
  useModel,
  ViewFrame,
  withParams,
} from '../ui';
import { bosQuery, promptState, useViewForm } from '../useViewForm';

interface Patterns {
  tokens: number[];
  strTokens: string[] | null;
  /** [layer][head][q][k] */
  pattern: (number | null)[][][][];
}

const MAX_GRID_CELLS = 60_000;

/** The Attention view of one head on a prompt: where a head picked in Heads, Attribution or Patching links to. */
export function attentionHref(prompt: string, bos: boolean, layer: number, head: number): string {
  return hrefOf('attention', queryOf({ prompt, bos: bosQuery(bos), layer: String(layer), head: String(head) }));
}

/** A head's name, linked to its attention pattern on `prompt`. */
export function HeadLink({ prompt, bos, layer, head }: { prompt: string; bos: boolean; layer: number; head: number }) {
  return (
    <a href={attentionHref(prompt, bos, layer, head)} data-testid="head-link" title="open its attention pattern">
      <code>
        L{layer}H{head}
      </code>
    </a>
  );
}

export function AttentionView({ route }: { route: Route }) {
  const model = useModel();
  const { nLayers: L, nHeads: H } = model;
  const p = route.params;
  const layer = Math.min(L - 1, Math.max(0, read.int(p, 'layer', 0)));
  const head = Math.min(H - 1, Math.max(0, read.int(p, 'head', 0)));
  const view = useViewForm(route, {
    view: 'attention',
    request: (p) => (p.has('prompt') ? promptState.request(p) : null),
    form: (p) => promptState.form(p, model),
    query: (f) => ({ prompt: f.prompt, bos: bosQuery(f.bos), layer, head }),
    remember: (f) => f.prompt,
    run: async (req, signal): Promise<Patterns> => {
      const prompt = toPrompt(req.prompt, model);
      const pattern: Patterns['pattern'] = [];
      let first: Awaited<ReturnType<typeof api.attention>> | null = null;
      for (let l = 0; l < L; l++) {
        const r = await api.attention({ prompt, prependBos: req.bos, layer: l }, signal);
        first ??= r;
        pattern.push(r.pattern);
      }
      return { tokens: first!.tokens, strTokens: first!.strTokens, pattern };
    },
  });
  const { key, field, data } = view;
  const [hover, setHover] = useState<Datum | null>(null);
  // A readout of another head's (or prompt's) cell would be wrong: clear it.
  useEffect(() => setHover(null), [layer, head, key]);

  const choose = (l: number, h: number) => navigate('attention', withParams(p, { layer: l, head: h }), { replace: true });

  const labels = useMemo(() => (data ? posLabels(data.tokens, data.strTokens) : []), [data]);

  const mainSpec = useMemo(() => {
    if (!data) return null;
    const s = data.tokens.length;
    const pat = data.pattern[layer]![head]!;
    const rows: Datum[] = [];
    for (let qi = 0; qi < s; qi++)
      for (let k = 0; k <= qi; k++) rows.push({ q: qi, k, dst: labels[qi], src: labels[k], w: pat[qi]![k] ?? 0, cell: `q${qi} k${k}` });
    const st = step(s, 560, 6, 30);
    return vl({
      data: { values: rows },
      width: { step: st },
      height: { step: st },
      mark: { type: 'rect', tooltip: true },
      encoding: {
        x: {
          field: 'src',
          type: 'ordinal',
          sort: labels,
          title: 'source (key)',
          axis: st >= 10 ? { labelAngle: -50 } : { labels: false, ticks: false },
        },
        y: {
          field: 'dst',
          type: 'ordinal',
          sort: labels,
          title: 'destination (query)',
          axis: st >= 10 ? {} : { labels: false, ticks: false },
        },
        color: { field: 'w', type: 'quantitative', title: 'weight', scale: { scheme: 'blues', domain: [0, 1] } },
        description: { field: 'cell' },
        tooltip: [
          { field: 'dst', title: 'destination' },
          { field: 'src', title: 'source' },
          { field: 'w', title: 'weight', format: '.4f' },
        ],
      },
    });
  }, [data, labels, layer, head]);

  // Every layer's heads, unless that is too many cells to draw: then the chosen layer's.
  const n = data?.tokens.length ?? 0;
  const gridLayer = (L * H * n * (n + 1)) / 2 <= MAX_GRID_CELLS ? -1 : layer;
  const gridSpec = useMemo(() => {
    if (!data) return null;
    const s = data.tokens.length;
    const rows: Datum[] = [];
    for (const l of gridLayer < 0 ? range(L) : [gridLayer])
      for (let h = 0; h < H; h++) {
        const pat = data.pattern[l]![h]!;
        const selected = l === layer && h === head;
        for (let qi = 0; qi < s; qi++)
          for (let k = 0; k <= qi; k++)
            rows.push({
              layer: l,
              head: h,
              q: qi,
              k,
              w: pat[qi]![k] ?? 0,
              dst: labels[qi],
              src: labels[k],
              sel: selected,
              cell: `L${l}H${h} q${qi} k${k}`,
            });
      }
    const size = Math.max(40, Math.min(90, Math.floor(640 / H) - 8));
    return {
      spec: vl({
        data: { values: rows },
        facet: {
          row: { field: 'layer', type: 'ordinal', title: 'layer', header: { labelExpr: "'L' + datum.value", labelAngle: 0 } },
          column: { field: 'head', type: 'ordinal', title: 'head', header: { labelExpr: "'H' + datum.value" } },
        },
        spacing: 6,
        spec: {
          width: size,
          height: size,
          mark: { type: 'rect', tooltip: true, cursor: 'pointer' },
          encoding: {
            x: { field: 'k', type: 'ordinal', axis: null, scale: { domain: Array.from({ length: s }, (_, i) => i) } },
            y: { field: 'q', type: 'ordinal', axis: null, scale: { domain: Array.from({ length: s }, (_, i) => i) } },
            color: { field: 'w', type: 'quantitative', title: 'weight', scale: { scheme: 'blues', domain: [0, 1] }, legend: null },
            // The head shown on the left, outlined in the grid.
            stroke: { condition: { test: 'datum.sel', value: '#d1495b' }, value: null },
            strokeWidth: { condition: { test: 'datum.sel', value: 1.5 }, value: 0 },
            description: { field: 'cell' },
            tooltip: [
              { field: 'layer', title: 'layer' },
              { field: 'head', title: 'head' },
              { field: 'dst', title: 'destination' },
              { field: 'src', title: 'source' },
              { field: 'w', title: 'weight', format: '.4f' },
            ],
          },
        },
        resolve: { scale: { x: 'shared', y: 'shared' } },
      }),
      cells: rows.length,
    };
  }, [data, labels, L, H, gridLayer, layer, head]);

  const hoverText =
    hover && typeof hover.w === 'number'
      ? `${String(hover.dst)} ← ${String(hover.src)}: ${hover.w.toFixed(4)}`
      : 'hover a cell: destination ← source: weight';

  return (
    <ViewFrame
      lede="Where each head moves information from: row = destination (query) token, column = source (key) token."
      run={view}
      fields={<PromptFields prompt={field('prompt')} bos={field('bos')} />}
    >
      {data && mainSpec ? (
        <>
          <TokenChips tokens={data.tokens} strTokens={data.strTokens} />
          <div className="toolbar">
            <Select
              label="Layer"
              value={String(layer)}
              options={layerOptions(L)}
              onChange={(v) => choose(Number(v), head)}
              testId="attn-layer"
            />
            <Select
              label="Head"
              value={String(head)}
              options={headOptions(H)}
              onChange={(v) => choose(layer, Number(v))}
              testId="attn-head"
            />
            <span className="badge" data-testid="attn-selected">
              L{layer}H{head}
            </span>
          </div>
          <div className="side-by-side">
            <div>
              <div
                className="readout"
                data-testid="attn-hover"
                data-q={hover?.q as number | undefined}
                data-k={hover?.k as number | undefined}
              >
                {hoverText}
              </div>
              <VegaChart spec={mainSpec} testId="attn-main" onHover={(d) => setHover(d && 'w' in d && !('layer' in d) ? d : null)} />
              <AttentionText tokens={data.tokens} strTokens={data.strTokens} pattern={data.pattern[layer]![head]!} />
            </div>
            <div>
              <h3>{gridLayer < 0 ? 'All heads' : `All heads of layer ${gridLayer}`}</h3>
              <p className="hint">Click a head to look at it.</p>
              {gridSpec ? (
                <VegaChart
                  spec={gridSpec.spec}
                  testId="attn-grid"
                  renderer={gridSpec.cells > MAX_GRID_CELLS / 4 ? 'canvas' : 'svg'}
                  onClick={(d) => {
                    if (typeof d.layer === 'number' && typeof d.head === 'number') choose(d.layer, d.head);
                  }}
                />
              ) : null}
            </div>
          </div>
        </>
      ) : null}
    </ViewFrame>
  );
}

/**
 * The prompt as text, CircuitsVis-style: hover (or click) a token and every token before it is
 * coloured by how much the selected head attends to it from there.
 */
function AttentionText({ tokens, strTokens, pattern }: { tokens: number[]; strTokens: string[] | null; pattern: (number | null)[][] }) {
  const [focus, setFocus] = useState<number | null>(null);
  // Another head or prompt: the old focus may not exist.
  useEffect(() => setFocus(null), [pattern]);
  return (
    <div className="card">
      <h3>As text</h3>
      <p className="hint" data-testid="attn-text-focus">
        {focus === null
          ? 'Hover a token: the tokens it attends to light up.'
          : `Attention from ${focus} ${showTok(strTokens?.[focus] ?? null, tokens[focus])}`}
      </p>
      <p className="prob-text" data-testid="attn-text" onMouseLeave={() => setFocus(null)}>
        {tokens.map((t, k) => {
          const w = focus !== null && k <= focus ? (pattern[focus]![k] ?? null) : null;
          const alpha = w === null ? 0 : Math.max(0, Math.min(1, w));
          return (
            <span
              key={k}
              data-testid="attn-text-token"
              data-pos={k}
              title={w === null ? `${k}` : `${k}: ${w.toFixed(4)}`}
              className={k === focus ? 'selected' : ''}
              style={{ background: `rgba(33, 84, 168, ${alpha})`, color: alpha > 0.5 ? 'white' : undefined }}
              onMouseEnter={() => setFocus(k)}
              onClick={() => setFocus(k)}
            >
              {strTokens?.[k] ?? `#${t} `}
            </span>
          );
        })}
      </p>
    </div>
  );
}
