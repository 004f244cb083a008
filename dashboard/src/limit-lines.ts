// A chart.js plugin that draws limits as horizontal lines across the chart area, each labelled at its right end:
// the method's acceptance limits (solid) and its inspection rules' bounds (dashed).
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

const LINE_STYLE: Record<LimitLine['kind'], { color: string; dash: number[] }> = {
  spec: { color: '#b91c1c', dash: [] },
  alarm: { color: '#ea580c', dash: [6, 4] },
  warn: { color: '#ca8a04', dash: [2, 4] },
};

/** draws each limit as a horizontal line across the chart area, labelled at its right end */
export const limitLines: Plugin<'line', LimitLinesOptions> = {
  id: 'limitLines',
  afterDatasetsDraw(chart, _args, options) {
    const { ctx, chartArea } = chart;
    const y = chart.scales['y'];
    if (!y) return;
    ctx.save();
    for (const line of options.lines ?? []) {
      const py = y.getPixelForValue(line.value);
      if (py < chartArea.top || py > chartArea.bottom) continue;
      const style = LINE_STYLE[line.kind];
      ctx.strokeStyle = style.color;
      ctx.setLineDash(style.dash);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(chartArea.left, py);
      ctx.lineTo(chartArea.right, py);
      ctx.stroke();
      ctx.fillStyle = style.color;
      ctx.font = '11px system-ui, sans-serif';
      ctx.textAlign = 'right';
      ctx.fillText(line.label, chartArea.right - 4, py - 3);
    }
    ctx.restore();
  },
};
