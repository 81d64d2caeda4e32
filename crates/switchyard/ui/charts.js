// Time-series charts on uPlot (vendored); colours come from the page's CSS variables so they
// follow light and dark mode.
import { h } from './dom.js';

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const PALETTE = ['--c1', '--c2', '--c3', '--c4'];

// series: [{label, values, format?}], times: unix seconds; bars: draw bars instead of lines.
export function timeChart(title, times, series, opts = {}) {
  const box = h('figure', { class: 'chart' }, h('figcaption', {}, title));
  const plot = h('div', { class: 'chart-plot' });
  box.append(plot);
  if (!window.uPlot || !times.length) {
    plot.append(h('p', { class: 'muted' }, times.length ? 'Charts are loading…' : 'No data in this range.'));
    return box;
  }
  const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid') }, ticks: { stroke: cssVar('--grid') } };
  const make = () => {
    const width = Math.max(260, plot.clientWidth || box.clientWidth || 600);
    const u = new window.uPlot({
      width, height: opts.height || 200,
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      // The y axis is as wide as its longest label (small dollar amounts run long).
      axes: [axis, { ...axis, size: (u, labels) => Math.max(40, 20 + 8 * Math.max(0, ...(labels || []).map((l) => String(l).length))),
        values: opts.format ? (u, ticks) => ticks.map(opts.format) : undefined }],
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        stroke: cssVar(PALETTE[i % PALETTE.length]),
        fill: opts.bars ? cssVar(PALETTE[i % PALETTE.length]) + '99' : undefined,
        width: 2,
        paths: opts.bars && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
        // A series with few values (empty buckets are null) is invisible as a line alone.
        points: { show: s.values.filter((v) => v !== null && v !== undefined).length < 3 },
        value: opts.format ? (u, v) => v === null ? '—' : opts.format(v) : undefined,
      }))],
    }, [times, ...series.map((s) => s.values)], plot);
    return u;
  };
  requestAnimationFrame(() => {
    let u = make();
    let last = plot.clientWidth;
    const observer = new ResizeObserver(() => {
      if (!plot.isConnected) return observer.disconnect();
      if (Math.abs(plot.clientWidth - last) < 8) return;
      last = plot.clientWidth;
      u.setSize({ width: Math.max(260, plot.clientWidth), height: opts.height || 200 });
    });
    observer.observe(plot);
  });
  return box;
}

// Horizontal bars for categories (spend by alias, tag, …): plain elements sized through the
// CSSOM, which the page's style-src policy allows.
export function barList(rows, value, label, format) {
  const max = Math.max(0, ...rows.map(value));
  return h('div', { class: 'bars', role: 'list' }, rows.map((row) => {
    const bar = h('span', { class: 'bar-fill' });
    bar.style.width = max > 0 ? `${(value(row) / max) * 100}%` : '0';
    return h('div', { class: 'bar-row', role: 'listitem' },
      h('span', { class: 'bar-label', title: label(row) }, label(row)),
      h('span', { class: 'bar-track' }, bar),
      h('span', { class: 'bar-value' }, format(value(row))));
  }));
}
