/**
 * Small SVG charts for reports and experiments, rendered headless (no browser, no canvas) with
 * vega-lite compiled to vega. Each chart has a spec builder (`lineChartSpec`, ...) that returns
 * the vega-lite spec, so a web front end can render the same chart interactively, and an async
 * renderer (`lineChart`, ...) that returns the SVG text. Inputs are validated up front: vega
 * silently drops NaN and draws nothing for empty data, which hides bugs in the numbers.
 */
import * as vl from 'vega-lite';
import * as vega from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../io/atomic.js';

export type { TopLevelSpec } from 'vega-lite';

/** Options shared by every chart. */
export interface ChartOptions {
  title: string;
  /** Plot area size in pixels (the SVG adds axes, title and legend around it). */
  width?: number;
  height?: number;
}

export interface LineSeries {
  name: string;
  /** [x, y] pairs, drawn in the order given. */
  points: readonly (readonly [number, number])[];
}

export interface LineChartOptions extends ChartOptions {
  series: readonly LineSeries[];
  xLabel: string;
  yLabel: string;
  /** Logarithmic axes: every value on that axis must then be > 0. */
  logX?: boolean;
  logY?: boolean;
}

export interface HeatmapOptions extends ChartOptions {
  /** Row-major values [rows][cols]; row 0 is drawn at the top (as a matrix is printed). */
  values: readonly (readonly number[])[];
  /** Labels of the rows and columns (default: their indices). They must be distinct. */
  rowLabels?: readonly string[];
  colLabels?: readonly string[];
  xLabel?: string;
  yLabel?: string;
  /**
   * A vega color scheme. Default: 'redblue' centred at 0 with a symmetric domain when any value
   * is negative (signed data: positive blue, negative red, as plotly's RdBu), else 'viridis'.
   */
  colorScheme?: string;
  /** Force the diverging (symmetric, zero-centred) scale on or off. */
  diverging?: boolean;
  /** Print each cell's value in it (default: when there are at most 144 cells). */
  showValues?: boolean;
}

export interface PlotVector {
  x: number;
  y: number;
  label?: string;
  /** Any CSS color; vectors without one share the default color. */
  color?: string;
}

export interface VectorPlotOptions extends ChartOptions {
  /** 2-D vectors, each drawn as an arrow from the origin. */
  vectors: readonly PlotVector[];
  xLabel?: string;
  yLabel?: string;
}

/** A chart: its SVG text and the vega-lite spec it was rendered from. */
export interface Chart {
  svg: string;
  spec: TopLevelSpec;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Renders a vega-lite spec to SVG text, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The vega-lite spec of a multi-series line chart with a legend. */
export function lineChartSpec(o: LineChartOptions): TopLevelSpec {
  checkTitle('lineChart', o.title);
  if (o.series.length === 0) throw new Error(`lineChart "${o.title}": no series to plot`);
  const names = new Set<string>();
  const rows: { x: number; y: number; series: string; order: number }[] = [];
  for (const s of o.series) {
    if (names.has(s.name)) throw new Error(`lineChart "${o.title}": two series are named "${s.name}"`);
    names.add(s.name);
    if (s.points.length === 0) throw new Error(`lineChart "${o.title}": series "${s.name}" has no points`);
    s.points.forEach(([x, y], i) => {
      for (const [axis, v, log] of [
        ['x', x, o.logX],
        ['y', y, o.logY],
      ] as const) {
        if (!Number.isFinite(v))
          throw new Error(`lineChart "${o.title}": series "${s.name}" point ${i} has ${axis} = ${v}; values must be finite`);
        if (log && !(v > 0))
          throw new Error(`lineChart "${o.title}": series "${s.name}" point ${i} has ${axis} = ${v}, which a log ${axis} axis cannot show`);
      }
      rows.push({ x, y, series: s.name, order: i });
    });
  }
  const seriesNames = o.series.map((s) => s.name);
  return {
    $schema: SCHEMA,
    title: o.title,
    width: o.width ?? 400,
    height: o.height ?? 260,
    data: { values: rows },
    mark: { type: 'line', point: rows.length <= 2 * o.series.length }, // lone points would vanish without a marker
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.xLabel, scale: o.logX ? { type: 'log' } : { zero: false } },
      y: { field: 'y', type: 'quantitative', title: o.yLabel, scale: o.logY ? { type: 'log' } : { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, sort: seriesNames, legend: o.series.length > 1 ? {} : null },
      order: { field: 'order', type: 'quantitative' },
    },
  } as TopLevelSpec;
}

/** A multi-series line chart (one line per series, with a legend when there are several), as SVG. */
export async function lineChart(o: LineChartOptions): Promise<string> {
  return renderSvg(lineChartSpec(o));
}

/** The vega-lite spec of a heatmap of `values` [rows][cols]. */
export function heatmapSpec(o: HeatmapOptions): TopLevelSpec {
  checkTitle('heatmap', o.title);
  const nRows = o.values.length;
  if (nRows === 0 || o.values[0]!.length === 0) throw new Error(`heatmap "${o.title}": no values to plot`);
  const nCols = o.values[0]!.length;
  const rowLabels = labels('heatmap', o.title, 'rowLabels', o.rowLabels, nRows);
  const colLabels = labels('heatmap', o.title, 'colLabels', o.colLabels, nCols);
  const cells: { row: string; col: string; value: number }[] = [];
  let maxAbs = 0;
  let anyNegative = false;
  o.values.forEach((row, r) => {
    if (row.length !== nCols) throw new Error(`heatmap "${o.title}": row ${r} has ${row.length} values, row 0 has ${nCols}`);
    row.forEach((v, c) => {
      if (!Number.isFinite(v)) throw new Error(`heatmap "${o.title}": value [${r}][${c}] is ${v}; values must be finite`);
      maxAbs = Math.max(maxAbs, Math.abs(v));
      anyNegative ||= v < 0;
      cells.push({ row: rowLabels[r]!, col: colLabels[c]!, value: v });
    });
  });
  const diverging = o.diverging ?? anyNegative;
  const half = maxAbs > 0 ? maxAbs : 1;
  const scale = diverging
    ? { scheme: o.colorScheme ?? 'redblue', domain: [-half, half], domainMid: 0 }
    : { scheme: o.colorScheme ?? 'viridis' };
  const rect = {
    mark: 'rect',
    encoding: { color: { field: 'value', type: 'quantitative', title: null, scale } },
  };
  const showValues = o.showValues ?? nRows * nCols <= 144;
  const cell = showValues ? 40 : 24; // room for "-0.00" in 9px text
  const text = {
    mark: { type: 'text', fontSize: 9 },
    encoding: {
      text: { field: 'value', type: 'quantitative', format: '.2f' },
      // Dark text on pale cells, light text on saturated ones.
      color: { condition: { test: `abs(datum.value) > ${0.6 * half}`, value: 'white' }, value: 'black' },
    },
  };
  return {
    $schema: SCHEMA,
    title: o.title,
    width: o.width ?? Math.min(600, Math.max(120, cell * nCols)),
    height: o.height ?? Math.min(600, Math.max(120, cell * nRows)),
    data: { values: cells },
    encoding: {
      x: { field: 'col', type: 'ordinal', sort: colLabels, title: o.xLabel ?? null, axis: { labelAngle: 0 } },
      y: { field: 'row', type: 'ordinal', sort: rowLabels, title: o.yLabel ?? null },
    },
    layer: showValues ? [rect, text] : [rect],
  } as TopLevelSpec;
}

/** A heatmap of `values` [rows][cols] (row 0 at the top), as SVG. */
export async function heatmap(o: HeatmapOptions): Promise<string> {
  return renderSvg(heatmapSpec(o));
}

/** The vega-lite spec of a plot of 2-D vectors as arrows from the origin. */
export function vectorPlotSpec(o: VectorPlotOptions): TopLevelSpec {
  checkTitle('vectorPlot', o.title);
  if (o.vectors.length === 0) throw new Error(`vectorPlot "${o.title}": no vectors to plot`);
  let radius = 0;
  const rows = o.vectors.map((v, i) => {
    if (!Number.isFinite(v.x) || !Number.isFinite(v.y))
      throw new Error(`vectorPlot "${o.title}": vector ${i} is (${v.x}, ${v.y}); coordinates must be finite`);
    radius = Math.max(radius, Math.hypot(v.x, v.y));
    // Arrow heads are triangles pointing up, rotated clockwise: an angle of theta from the x axis is 90 - theta.
    const heading = 90 - (Math.atan2(v.y, v.x) * 180) / Math.PI;
    return { x: v.x, y: v.y, x0: 0, y0: 0, label: v.label ?? String(i), color: v.color ?? '#4c78a8', heading };
  });
  // Equal, symmetric axes so angles on the page are the true angles.
  const r = (radius > 0 ? radius : 1) * 1.3;
  const side = o.width ?? o.height ?? 320;
  const axis = (field: string, title: string | undefined) => ({
    field,
    type: 'quantitative',
    title: title ?? null,
    scale: { domain: [-r, r], nice: false, zero: true },
  });
  const color = { field: 'color', type: 'nominal', scale: null, legend: null };
  return {
    $schema: SCHEMA,
    title: o.title,
    width: side,
    height: side,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: { x: axis('x0', o.xLabel), y: axis('y0', o.yLabel), x2: { field: 'x' }, y2: { field: 'y' }, color },
      },
      {
        mark: { type: 'point', shape: 'triangle-up', filled: true, size: 80, opacity: 1 },
        encoding: { x: axis('x', o.xLabel), y: axis('y', o.yLabel), angle: { field: 'heading', type: 'quantitative', scale: null }, color },
      },
      {
        // Labels just beyond each tip, along the vector.
        transform: [
          { calculate: `datum.x + ${0.08 * r} * cos(atan2(datum.y, datum.x))`, as: 'lx' },
          { calculate: `datum.y + ${0.08 * r} * sin(atan2(datum.y, datum.x))`, as: 'ly' },
        ],
        mark: { type: 'text', fontSize: 11 },
        encoding: { x: axis('lx', o.xLabel), y: axis('ly', o.yLabel), text: { field: 'label' } },
      },
    ],
  } as TopLevelSpec;
}

/** 2-D vectors drawn as labelled arrows from the origin, on equal axes, as SVG. */
export async function vectorPlot(o: VectorPlotOptions): Promise<string> {
  return renderSvg(vectorPlotSpec(o));
}

/** Writes SVG text to `path` atomically (a reader never sees half a file). */
export function saveSvg(path: string, svg: string): void {
  if (!svg.trimStart().startsWith('<svg'))
    throw new Error(`saveSvg ${path}: the text is not an SVG document (it starts with "${svg.slice(0, 20)}")`);
  writeFileAtomic(path, svg);
}

function checkTitle(chart: string, title: string): void {
  if (typeof title !== 'string') throw new Error(`${chart}: title must be a string`);
}

function labels(chart: string, title: string, what: string, given: readonly string[] | undefined, n: number): string[] {
  const out = given ? [...given] : Array.from({ length: n }, (_, i) => String(i));
  if (out.length !== n)
    throw new Error(`${chart} "${title}": ${what} has ${out.length} labels for ${n} ${what === 'rowLabels' ? 'rows' : 'columns'}`);
  if (new Set(out).size !== n) throw new Error(`${chart} "${title}": ${what} must be distinct (cells with the same label would merge)`);
  return out;
}
