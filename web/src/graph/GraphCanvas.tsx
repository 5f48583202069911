/**
 * The link graph: rows by layer (embeddings at the bottom, logits at the top), columns by token
 * position. Every link is drawn on one canvas (coloured by sign, width and opacity by |weight|),
 * so 10k links cost one paint; the nodes, and the links of the node under focus (hovered, else
 * clicked), are SVG above it, so they can be hovered, clicked and found by tests.
 */
import { memo, useEffect, useMemo, useRef, type MouseEvent } from 'react';
import { showTok } from '../ui';
import { nodeKind, type IndexedGraph, type Layout } from './model';

export const POSITIVE = '#2563eb';
export const NEGATIVE = '#dc2626';

/** Stroke width of a link of this weight. */
const widthOf = (w: number, max: number) => 0.4 + 3.2 * Math.sqrt(Math.abs(w) / max);

export function GraphCanvas({
  g,
  layout,
  promptTokens,
  focus,
  clicked,
  pinned,
  onHover,
  onClick,
}: {
  g: IndexedGraph;
  layout: Layout;
  promptTokens: string[];
  /** The node whose links are drawn over the rest (hovered, else clicked). */
  focus: number | null;
  clicked: number | null;
  pinned: ReadonlySet<string>;
  onHover(node: number | null): void;
  onClick(node: number | null): void;
}) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const { width, height, x, y } = layout;
  const dimmed = focus !== null;

  // All links, drawn once per graph and layout (dimmed by CSS while a node is under focus).
  useEffect(() => {
    const canvas = canvasRef.current;
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.ceil(width * dpr);
    canvas.height = Math.ceil(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const order = g.links.map((_, i) => i).sort((a, b) => Math.abs(g.links[a]!.weight) - Math.abs(g.links[b]!.weight));
    for (const i of order) {
      const l = g.links[i]!;
      const s = g.byId.get(l.source)!;
      const t = g.byId.get(l.target)!;
      const rel = Math.abs(l.weight) / g.maxAbsWeight;
      ctx.globalAlpha = 0.12 + 0.6 * Math.sqrt(rel);
      ctx.strokeStyle = l.weight >= 0 ? POSITIVE : NEGATIVE;
      ctx.lineWidth = widthOf(l.weight, g.maxAbsWeight);
      ctx.beginPath();
      ctx.moveTo(x[s]!, y[s]!);
      ctx.lineTo(x[t]!, y[t]!);
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  }, [g, layout, width, height, x, y]);

  const focusLinks = useMemo(() => (focus === null ? [] : [...g.incoming[focus]!, ...g.outgoing[focus]!]), [g, focus]);

  const nodeAt = (e: MouseEvent): number | null => {
    const el = (e.target as Element).closest('[data-node-index]');
    return el ? Number(el.getAttribute('data-node-index')) : null;
  };

  return (
    <div className="graph-canvas" style={{ width, height }} data-testid="graph-canvas">
      <canvas ref={canvasRef} style={{ width, height, opacity: dimmed ? 0.25 : 1 }} aria-hidden="true" />
      <svg
        width={width}
        height={height}
        data-testid="graph-svg"
        onMouseOver={(e) => onHover(nodeAt(e))}
        onMouseLeave={() => onHover(null)}
        onClick={(e) => onClick(nodeAt(e))}
      >
        {layout.rows.map((r) => (
          <g key={r.key}>
            <line x1={layout.columns[0]?.left ?? 0} x2={width - 16} y1={r.y} y2={r.y} className="graph-row-line" />
            <text x={8} y={r.y + 4} className="graph-row-label" data-testid="graph-row-label" data-row={r.key}>
              {r.label}
            </text>
          </g>
        ))}
        {layout.columns.map((c, p) => (
          <g key={p}>
            <line x1={c.left} x2={c.left} y1={8} y2={height - 40} className="graph-col-line" />
            <text x={c.center} y={height - 24} textAnchor="middle" className="graph-token" data-testid="graph-token" data-pos={p}>
              {showTok(promptTokens[p] ?? '').slice(0, Math.max(3, Math.floor(c.width / 8)))}
            </text>
            <text x={c.center} y={height - 8} textAnchor="middle" className="graph-pos">
              {p}
            </text>
          </g>
        ))}
        {focusLinks.map((i) => {
          const l = g.links[i]!;
          const s = g.byId.get(l.source)!;
          const t = g.byId.get(l.target)!;
          return (
            <line
              key={i}
              x1={x[s]}
              y1={y[s]}
              x2={x[t]}
              y2={y[t]}
              stroke={l.weight >= 0 ? POSITIVE : NEGATIVE}
              strokeWidth={widthOf(l.weight, g.maxAbsWeight) + 0.6}
              className="graph-focus-link"
              data-testid="graph-focus-link"
              data-source={l.source}
              data-target={l.target}
              data-weight={l.weight}
            />
          );
        })}
        <Nodes g={g} layout={layout} clicked={clicked} pinned={pinned} />
      </svg>
    </div>
  );
}

/** The nodes: re-rendered when the graph, the clicked node or the pins change, not on hover (1000 nodes). */
const Nodes = memo(function Nodes({
  g,
  layout,
  clicked,
  pinned,
}: {
  g: IndexedGraph;
  layout: Layout;
  clicked: number | null;
  pinned: ReadonlySet<string>;
}) {
  const { x, y } = layout;
  return (
    <>
      {g.nodes.map((n, i) => {
        const kind = nodeKind(n);
        const cls = [
          'graph-node',
          `graph-node-${kind}`,
          pinned.has(n.node_id) ? 'pinned' : '',
          i === clicked ? 'clicked' : '',
          n.is_target_logit ? 'target' : '',
        ].join(' ');
        const cx = x[i]!;
        const cy = y[i]!;
        return (
          <g
            key={n.node_id}
            className={cls}
            data-testid="graph-node"
            data-node-index={i}
            data-node-id={n.node_id}
            data-layer={n.layer}
            data-ctx={n.ctx_idx}
            data-x={cx}
            data-y={cy}
          >
            {kind === 'feature' ? (
              <circle cx={cx} cy={cy} r={5} />
            ) : kind === 'error' ? (
              <rect x={cx - 4.5} y={cy - 4.5} width={9} height={9} />
            ) : (
              <rect x={cx - 7} y={cy - 5} width={14} height={10} rx={3} />
            )}
            <title>{n.clerp ? `${n.node_id}: ${n.clerp}` : n.node_id}</title>
          </g>
        );
      })}
    </>
  );
});
