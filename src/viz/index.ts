/** Charts rendered to SVG (vega-lite, headless), with their specs for interactive front ends. */
export {
  lineChart,
  lineChartSpec,
  heatmap,
  heatmapSpec,
  vectorPlot,
  vectorPlotSpec,
  renderSvg,
  saveSvg,
  type Chart,
  type ChartOptions,
  type LineSeries,
  type LineChartOptions,
  type HeatmapOptions,
  type PlotVector,
  type VectorPlotOptions,
  type TopLevelSpec,
} from './charts.js';
