/** SVG charts: rendered headless, with the marks, titles and labels asked for; bad input is a clear error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heatmap, heatmapSpec, lineChart, lineChartSpec, saveSvg, vectorPlot, vectorPlotSpec } from '../src/viz/index.js';

/** How many marks of a kind the SVG draws (vega labels each with aria-roledescription). */
const count = (svg: string, role: string): number => svg.split(`aria-roledescription="${role}"`).length - 1;

function assertSvg(svg: string): void {
  assert.ok(svg.startsWith('<svg'), `not an SVG: ${svg.slice(0, 40)}`);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.match(svg, /viewBox="0 0 \d+ \d+"/);
}

const twoSeries = {
  title: 'Loss & <accuracy>',
  xLabel: 'training step',
  yLabel: 'cross-entropy',
  series: [
    {
      name: 'train',
      points: [
        [1, 2],
        [10, 1],
        [100, 0.5],
      ] as [number, number][],
    },
    {
      name: 'test',
      points: [
        [1, 3],
        [10, 2.5],
        [100, 1.5],
      ] as [number, number][],
    },
  ],
};

test('lineChart: one line per series, title, axis titles and a legend', async () => {
  const svg = await lineChart({ ...twoSeries, logX: true, logY: true });
  assertSvg(svg);
  assert.ok(svg.includes('Loss &amp; &lt;accuracy&gt;'), 'the title, escaped');
  assert.ok(svg.includes('training step') && svg.includes('cross-entropy'), 'axis titles');
  assert.equal(count(svg, 'line mark'), 2);
  assert.ok(svg.includes('role-legend'), 'a legend for several series');
  assert.ok(svg.includes('>train<') && svg.includes('>test<'), 'legend entries');
  // One series: no legend.
  const one = await lineChart({ ...twoSeries, series: [twoSeries.series[0]!] });
  assert.equal(count(one, 'line mark'), 1);
  assert.ok(!one.includes('role-legend'));
});

test('lineChartSpec: a vega-lite spec with every point', () => {
  const spec = lineChartSpec(twoSeries) as { data: { values: unknown[] }; mark: unknown; title: string };
  assert.equal(spec.title, twoSeries.title);
  assert.equal(spec.data.values.length, 6);
  assert.doesNotThrow(() => JSON.stringify(spec));
});

test('lineChart: NaN, empty and non-positive-on-log input are clear errors', async () => {
  const bad = (series: { name: string; points: [number, number][] }[], extra = {}) => lineChart({ ...twoSeries, ...extra, series });
  await assert.rejects(bad([]), /no series/);
  await assert.rejects(bad([{ name: 'a', points: [] }]), /series "a" has no points/);
  await assert.rejects(
    bad([
      {
        name: 'a',
        points: [
          [0, 1],
          [1, NaN],
        ],
      },
    ]),
    /series "a" point 1 has y = NaN; values must be finite/,
  );
  await assert.rejects(bad([{ name: 'a', points: [[Infinity, 1]] }]), /x = Infinity/);
  await assert.rejects(bad([{ name: 'a', points: [[0, 1]] }], { logX: true }), /log x axis/);
  await assert.rejects(
    bad([
      { name: 'a', points: [[1, 1]] },
      { name: 'a', points: [[2, 1]] },
    ]),
    /two series are named "a"/,
  );
});

test('heatmap: one cell per value, labels, a diverging scale for signed data', async () => {
  const values = [
    [1, -0.5, 0.25],
    [-0.5, 1, 0],
  ];
  const svg = await heatmap({ title: 'W^T W', values, rowLabels: ['r0', 'r1'], colLabels: ['a', 'b', 'c'], xLabel: 'feature j' });
  assertSvg(svg);
  assert.ok(svg.includes('W^T W'));
  assert.equal(count(svg, 'rect mark'), 6);
  for (const label of ['r0', 'r1', 'a', 'b', 'c', 'feature j']) assert.ok(svg.includes(`>${label}<`), `label ${label}`);
  assert.ok(svg.includes('>0.25<') && svg.includes('>−0.50<'), 'cell values printed');
  // Signed data: the color domain is symmetric about 0.
  const spec = JSON.stringify(heatmapSpec({ title: 't', values }));
  assert.ok(spec.includes('"domain":[-1,1]') && spec.includes('"domainMid":0'), spec);
  const unsigned = JSON.stringify(heatmapSpec({ title: 't', values: [[0, 2]] }));
  assert.ok(unsigned.includes('viridis') && !unsigned.includes('domainMid'));
  // Large matrices leave the numbers out.
  const big = Array.from({ length: 20 }, (_, i) => Array.from({ length: 20 }, (_, j) => Math.sin(i * j)));
  const bigSvg = await heatmap({ title: 'big', values: big });
  assert.equal(count(bigSvg, 'rect mark'), 400);
  assert.equal(count(bigSvg, 'text mark'), 0);
});

test('heatmap: NaN, ragged, empty input and bad labels are clear errors', async () => {
  await assert.rejects(heatmap({ title: 't', values: [] }), /no values/);
  await assert.rejects(heatmap({ title: 't', values: [[]] }), /no values/);
  await assert.rejects(heatmap({ title: 't', values: [[1, 2], [3]] }), /row 1 has 1 values, row 0 has 2/);
  await assert.rejects(heatmap({ title: 't', values: [[1, NaN]] }), /value \[0\]\[1\] is NaN/);
  await assert.rejects(heatmap({ title: 't', values: [[1, 2]], colLabels: ['x'] }), /colLabels has 1 labels for 2 columns/);
  await assert.rejects(heatmap({ title: 't', values: [[1], [2]], rowLabels: ['x', 'x'] }), /rowLabels must be distinct/);
});

test('vectorPlot: an arrow and a label per vector, on equal axes', async () => {
  const vectors = Array.from({ length: 5 }, (_, i) => ({
    x: Math.cos((2 * Math.PI * i) / 5),
    y: Math.sin((2 * Math.PI * i) / 5),
    label: `feature ${i}`,
  }));
  const svg = await vectorPlot({ title: 'Pentagon', vectors });
  assertSvg(svg);
  assert.ok(svg.includes('Pentagon'));
  assert.equal(count(svg, 'rule mark'), 5, 'a shaft per vector');
  assert.equal(count(svg, 'point'), 5, 'a head per vector');
  for (const v of vectors) assert.ok(svg.includes(`>${v.label}<`));
  const spec = JSON.stringify(vectorPlotSpec({ title: 't', vectors: [{ x: 2, y: -1, color: 'red' }] }));
  const r = Math.hypot(2, 1) * 1.3;
  assert.ok(spec.includes(`"domain":[${-r},${r}]`), 'both axes span the same symmetric range');
  assert.ok(spec.includes('"red"'));
});

test('vectorPlot: NaN and empty input are clear errors', async () => {
  await assert.rejects(vectorPlot({ title: 't', vectors: [] }), /no vectors/);
  await assert.rejects(vectorPlot({ title: 't', vectors: [{ x: 1, y: NaN }] }), /vector 0 is \(1, NaN\); coordinates must be finite/);
});

test('saveSvg writes the file atomically and refuses non-SVG text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-viz-'));
  try {
    const svg = await vectorPlot({ title: 'one', vectors: [{ x: 1, y: 1 }] });
    const path = join(dir, 'one.svg');
    saveSvg(path, svg);
    assert.equal(readFileSync(path, 'utf8'), svg);
    assert.throws(() => saveSvg(join(dir, 'bad.svg'), '{"not": "svg"}'), /not an SVG/);
    assert.deepEqual(readdirSync(dir), ['one.svg'], 'no temporary or partial files left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
