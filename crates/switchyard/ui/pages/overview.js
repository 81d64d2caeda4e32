// Overview: requests, errors by class, latency and overhead, cache, spend against budgets.
import { get, query } from '../api.js';
import { h, card, num, ms, pct, usd, when, table, range, rangePicker, errorBox } from '../dom.js';
import { timeChart } from '../charts.js';

let current = '24h';

export async function render(root, ctx) {
  const body = h('div', { class: 'page-body' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Overview'),
    rangePicker(current, (k) => { current = k; load(body, ctx); })), body);
  await load(body, ctx);
}

async function load(body, ctx) {
  body.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  let o;
  try {
    o = await get('/overview' + query(range(current)));
  } catch (err) {
    if (!ctx.isCurrent()) return;
    body.replaceChildren(err.status === 404
      ? h('p', { class: 'muted' }, 'This gateway has no overview data: it needs the spend ledger.')
      : errorBox(err));
    return;
  }
  if (!ctx.isCurrent()) return;
  const errors = Object.entries(o.errors || {});
  const errorTotal = errors.reduce((a, [, n]) => a + n, 0);
  const cache = o.cache || {};
  const series = o.series || [];
  const times = series.map((p) => Math.floor(new Date(p.t).getTime() / 1000));
  body.replaceChildren(
    h('div', { class: 'cards' },
      card('Requests', num(o.requests)),
      card('Errors', num(errorTotal), o.requests ? pct(errorTotal / o.requests) : null),
      card('Latency p50 / p99', `${ms(o.latency_ms?.p50)} / ${ms(o.latency_ms?.p99)}`),
      card('Gateway overhead p50 / p99', `${ms(o.overhead_ms?.p50)} / ${ms(o.overhead_ms?.p99)}`),
      card('Cache hit rate', pct(cache.hit_rate), `${num(cache.hits)} hits, ${num(cache.misses)} misses`),
      card('Spend today', usd(o.spend?.today), `this month ${usd(o.spend?.month)}`)),
    h('div', { class: 'charts' },
      timeChart('Requests and errors', times, [
        { label: 'requests', values: series.map((p) => p.requests) },
        { label: 'errors', values: series.map((p) => p.errors) }], { bars: true }),
      timeChart('Spend (USD)', times, [{ label: 'spend', values: series.map((p) => p.spend) }],
        { bars: true, format: (v) => '$' + (v === 0 ? '0' : Math.abs(v) >= 1 ? Number(v).toFixed(2) : String(Number(Number(v).toPrecision(2)))) }),
      timeChart('Latency p50 (ms)', times, [{ label: 'p50', values: series.map((p) => p.p50_ms) }])),
    h('h2', {}, 'Errors by class'),
    errors.length
      ? table([{ label: 'Class', cell: (r) => h('span', { class: 'badge bad' }, r[0]) }, { label: 'Requests', num: true, cell: (r) => num(r[1]) }], errors)
      : h('p', { class: 'muted' }, 'No errors in this range.'),
    h('h2', {}, 'Budgets'),
    table([
      { label: 'Scope', cell: (b) => b.scope },
      { label: 'Name', cell: (b) => b.name || b.id || '—' },
      { label: 'Spent', num: true, cell: (b) => usd(b.spend) },
      { label: 'Budget', num: true, cell: (b) => b.max_budget === null || b.max_budget === undefined ? 'none' : usd(b.max_budget) },
      { label: 'Used', cell: (b) => meter(b.spend, b.max_budget) },
      { label: 'Period', cell: (b) => b.budget_duration || '—' },
      { label: 'Resets', cell: (b) => when(b.resets_at) },
    ], o.budgets || [], { empty: 'No budgets are set.' }));
}

function meter(spent, max) {
  if (!max) return '—';
  const m = h('meter', { min: 0, max, low: max * 0.8, high: max * 0.95, optimum: 0 });
  m.value = Math.min(spent || 0, max);
  return h('span', {}, m, ' ', pct((spent || 0) / max));
}
