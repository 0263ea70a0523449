/**
 * Line plots for benchmarks: a vega-lite chart rendered to SVG by vega (no canvas needed) and to PNG by
 * sharp. One line per series, and optional horizontal reference lines (published figures) drawn dashed
 * with their labels.
 */
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface LinePlot {
  readonly title: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly points: readonly { series: string; x: number; y: number }[];
  readonly rules?: readonly { label: string; y: number }[];
  /** Lower end of the y axis; by default the smallest point or rule, less a margin. */
  readonly yMin?: number;
}

export function lineChartSpec(plot: LinePlot): TopLevelSpec {
  const values = [...plot.points.map((point) => point.y), ...(plot.rules ?? []).map((rule) => rule.y)];
  const low = plot.yMin ?? Math.max(0, Math.floor(Math.min(...values) / 5) * 5 - 5);
  const high = Math.ceil(Math.max(...values) / 5) * 5;
  const y = { field: 'y', type: 'quantitative', title: plot.yTitle, scale: { domain: [low, high] } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: plot.title,
    width: 760,
    height: 420,
    layer: [
      {
        data: { values: plot.points.map((point) => ({ ...point })) },
        mark: { type: 'line', point: plot.points.length <= 120 },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: plot.xTitle, axis: { tickMinStep: 1, format: 'd' } },
          y: { ...y, scale: { ...y.scale, clamp: true } },
          color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom-right', labelLimit: 320 } },
        },
      },
      ...(plot.rules === undefined || plot.rules.length === 0
        ? []
        : [
            {
              data: { values: plot.rules.map((rule) => ({ ...rule })) },
              layer: [
                { mark: { type: 'rule', strokeDash: [6, 4], color: '#555' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
                {
                  mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#333' },
                  encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } },
                },
              ],
            },
          ]),
    ],
  } as TopLevelSpec;
}

export async function renderLinePlot(path: string, plot: LinePlot): Promise<void> {
  if (plot.points.length === 0) throw new Error(`nothing to plot for ${path}: no points`);
  const view = new vega.View(vega.parse(compile(lineChartSpec(plot)).spec), { renderer: 'none' });
  const svg = await view.toSVG(2);
  view.finalize();
  await writeFile(path, await sharp(Buffer.from(svg)).png().toBuffer());
}
