/**
 * Vega-Lite charts through vega-embed (loaded on first use). `onClick` and `onHover` get the
 * datum under the pointer. The container says `data-ready="true"` once the chart is drawn.
 */
import { useEffect, useRef, useState } from 'react';
import type { VisualizationSpec } from 'vega-embed';

export type Datum = Record<string, unknown>;

let embedModule: Promise<typeof import('vega-embed')> | null = null;
const loadEmbed = () => (embedModule ??= import('vega-embed'));

export function VegaChart({
  spec,
  testId,
  onClick,
  onHover,
  renderer = 'svg',
  className,
}: {
  spec: VisualizationSpec;
  testId: string;
  onClick?: (d: Datum) => void;
  onHover?: (d: Datum | null) => void;
  renderer?: 'svg' | 'canvas';
  className?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const handlers = useRef({ onClick, onHover });
  handlers.current = { onClick, onHover };

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    let finalize: (() => void) | null = null;
    let cancelled = false;
    setReady(false);
    setError(null);
    loadEmbed()
      .then(async ({ default: embed }) => {
        if (cancelled) return;
        const result = await embed(el, spec, {
          renderer,
          actions: { export: true, source: false, compiled: false, editor: false },
          tooltip: { theme: 'light' },
        });
        if (cancelled) {
          result.finalize();
          return;
        }
        finalize = result.finalize;
        const datumOf = (item: unknown): Datum | null => {
          const d = (item as { datum?: unknown } | null)?.datum;
          return d && typeof d === 'object' ? (d as Datum) : null;
        };
        result.view.addEventListener('click', (_e, item) => {
          const d = datumOf(item);
          if (d) handlers.current.onClick?.(d);
        });
        result.view.addEventListener('mouseover', (_e, item) => handlers.current.onHover?.(datumOf(item)));
        result.view.addEventListener('mouseout', () => handlers.current.onHover?.(null));
        setReady(true);
      })
      .catch((e: unknown) => {
        if (!cancelled) setError(e instanceof Error ? e.message : String(e));
      });
    return () => {
      cancelled = true;
      finalize?.();
    };
  }, [spec, renderer]);

  return (
    <div className={`chart ${className ?? ''}`} data-testid={testId} data-ready={ready ? 'true' : 'false'}>
      <div ref={ref} />
      {error ? <div className="error">chart: {error}</div> : null}
    </div>
  );
}

/** Cell size for an ordinal axis of n entries drawn in about `room` pixels. */
export function step(n: number, room: number, min = 4, max = 28): number {
  return Math.max(min, Math.min(max, Math.floor(room / Math.max(1, n))));
}

/** A Vega-Lite spec (the schema added), with the workbench's look. */
export function vl(spec: Record<string, unknown>): VisualizationSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: {
      font: 'system-ui, -apple-system, Segoe UI, Roboto, sans-serif',
      axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 160 },
      view: { stroke: null },
    },
    ...spec,
  } as VisualizationSpec;
}
