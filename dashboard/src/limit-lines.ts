// A chart.js plugin that draws limits as horizontal lines across the chart area, each labelled at its right end:
// the method's acceptance limits (solid) and its inspection rules' bounds (dashed). Labels of lines close to each
// other are moved apart so that none covers another (placeLabels: tested by reading the boxes).
import type { ChartType, Plugin } from 'chart.js';
import type { LimitLine } from './run-charts';

export interface LimitLinesOptions {
  lines: LimitLine[];
}

declare module 'chart.js' {
  // the type parameter must match chart.js's own declaration of the interface
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
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

/** where a limit's label was drawn (canvas pixels, CSS scale), for the tests and the text beside the chart */
export interface LabelBox {
  text: string;
  /** the height of the label's line */
  line: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

const LABEL_HEIGHT = 13;
const overlaps = (a: LabelBox, b: LabelBox): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Places labels of lines at pixel heights `py` (any order) inside [top, bottom] and [left, right]: each just above
 * its line at the right end, else just below it, else moved down (then to the left end) until it covers no label
 * placed before. Returns the boxes in the order given.
 */
export function placeLabels(
  labels: { text: string; py: number; width: number }[],
  area: { left: number; right: number; top: number; bottom: number },
): LabelBox[] {
  const order = labels.map((l, i) => ({ ...l, i })).sort((a, b) => a.py - b.py);
  const placed: LabelBox[] = [];
  const out: LabelBox[] = new Array<LabelBox>(labels.length);
  const clampY = (y: number): number => Math.min(Math.max(y, area.top), area.bottom - LABEL_HEIGHT);
  for (const l of order) {
    const w = Math.min(l.width, area.right - area.left - 8);
    const at = (x: number, y: number): LabelBox => ({ text: l.text, line: l.py, x, y: clampY(y), w, h: LABEL_HEIGHT });
    const right = area.right - 4 - w;
    const left = area.left + 4;
    const free = (b: LabelBox): boolean => !placed.some((p) => overlaps(p, b));
    let box: LabelBox | undefined;
    for (const candidate of [at(right, l.py - 2 - LABEL_HEIGHT), at(right, l.py + 2)]) if (!box && free(candidate)) box = candidate;
    // further down, one label height at a time, at the right end and then at the left end
    for (const x of [right, left])
      for (let y = l.py + 2; !box && y <= area.bottom - LABEL_HEIGHT; y += LABEL_HEIGHT) {
        const candidate = at(x, y);
        if (free(candidate)) box = candidate;
      }
    for (const x of [right, left])
      for (let y = l.py - 2 - LABEL_HEIGHT; !box && y >= area.top; y -= LABEL_HEIGHT) {
        const candidate = at(x, y);
        if (free(candidate)) box = candidate;
      }
    box ??= at(right, l.py - 2 - LABEL_HEIGHT); // no room anywhere: a crowded chart keeps the label by its line
    placed.push(box);
    out[l.i] = box;
  }
  return out;
}

/** the label boxes drawn last, per chart */
export const labelBoxes = new WeakMap<object, LabelBox[]>();

/** draws each limit as a horizontal line across the chart area, labelled at its right end without covering another label */
export const limitLines: Plugin<'line', LimitLinesOptions> = {
  id: 'limitLines',
  afterDatasetsDraw(chart, _args, options) {
    const { ctx, chartArea } = chart;
    const y = chart.scales['y'];
    if (!y) return;
    ctx.save();
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    const visible = (options.lines ?? [])
      .map((line) => ({ line, py: y.getPixelForValue(line.value) }))
      .filter(({ py }) => py >= chartArea.top && py <= chartArea.bottom);
    const boxes = placeLabels(
      visible.map(({ line, py }) => ({ text: line.label, py, width: ctx.measureText(line.label).width })),
      chartArea,
    );
    visible.forEach(({ line, py }, i) => {
      const style = LINE_STYLE[line.kind];
      ctx.strokeStyle = style.color;
      ctx.setLineDash(style.dash);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(chartArea.left, py);
      ctx.lineTo(chartArea.right, py);
      ctx.stroke();
      const box = boxes[i];
      if (!box) return;
      // a white backing keeps the label readable over the data and the other lines
      ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
      ctx.fillRect(box.x - 2, box.y, box.w + 4, box.h);
      ctx.fillStyle = style.color;
      ctx.fillText(line.label, box.x, box.y + 1, box.w);
    });
    labelBoxes.set(chart, boxes);
    ctx.restore();
  },
};
