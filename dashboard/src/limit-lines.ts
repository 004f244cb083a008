// A chart.js plugin that draws limits as horizontal lines across the chart area, each labelled at its right end:
// the method's acceptance limits (solid) and its inspection rules' bounds (dashed). Labels of lines close to each
// other are moved apart so that none covers another.
import type { ChartType, Plugin } from 'chart.js';
import type { LimitLine } from './run-charts';

export interface LimitLinesOptions {
  lines: LimitLine[];
}

declare module 'chart.js' {
  // the type parameter must match chart.js's own declaration of the interface
  interface PluginOptionsByType<TType extends ChartType> {
    limitLines?: LimitLinesOptions;
  }
}

// darker than the usual palette: the labels are text, and must read at 4.5:1 on white
const LINE_STYLE: Record<LimitLine['kind'], { color: string; dash: number[] }> = {
  spec: { color: '#b91c1c', dash: [] },
  alarm: { color: '#c2410c', dash: [6, 4] },
  warn: { color: '#a16207', dash: [2, 4] },
};

/** draws each limit as a horizontal line across the chart area, labelled at its right end */
export const limitLines: Plugin<'line', LimitLinesOptions> = {
  id: 'limitLines',
  afterDatasetsDraw(chart, _args, options) {
    const { ctx, chartArea } = chart;
    const y = chart.scales['y'];
    if (!y) return;
    ctx.save();
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    const LABEL_HEIGHT = 13;
    /** the baselines of the labels drawn so far: a label too close to one goes below its line, else further down */
    const taken: number[] = [];
    const visible = (options.lines ?? [])
      .map((line) => ({ line, py: y.getPixelForValue(line.value) }))
      .filter(({ py }) => py >= chartArea.top && py <= chartArea.bottom)
      .sort((a, b) => a.py - b.py);
    for (const { line, py } of visible) {
      const style = LINE_STYLE[line.kind];
      ctx.strokeStyle = style.color;
      ctx.setLineDash(style.dash);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(chartArea.left, py);
      ctx.lineTo(chartArea.right, py);
      ctx.stroke();
      let baseline = Math.max(py - 3, chartArea.top + LABEL_HEIGHT - 2);
      const clash = (b: number): boolean => taken.some((t) => Math.abs(t - b) < LABEL_HEIGHT);
      if (clash(baseline)) baseline = py + LABEL_HEIGHT - 1;
      while (clash(baseline) && baseline < chartArea.bottom) baseline += LABEL_HEIGHT;
      taken.push(baseline);
      ctx.fillStyle = style.color;
      ctx.fillText(line.label, chartArea.right - 4, baseline);
    }
    ctx.restore();
  },
};
