// Spend: grouped as `switchyard spend` groups it, as bars and a table, with CSV export.
import { get, query } from '../api.js';
import { h, card, num, usd, table, range, rangePicker, errorBox } from '../dom.js';
import { barList, timeChart } from '../charts.js';

const GROUPS = ['alias', 'model', 'provider', 'tag', 'user', 'key', 'team', 'session', 'day'];
let groupBy = 'alias';
let current = '7d';

export async function render(root, ctx) {
  const body = h('div', { class: 'page-body' });
  const select = h('select', { 'aria-label': 'Group by', id: 'group-by', on: { change: () => { groupBy = select.value; load(body, ctx); } } },
    GROUPS.map((g) => h('option', { value: g, selected: g === groupBy }, `by ${g}`)));
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Spend'), h('div', { class: 'controls' }, select,
    rangePicker(current, (k) => { current = k; load(body, ctx); }))), body);
  await load(body, ctx);
}

async function load(body, ctx) {
  body.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  const params = { group_by: groupBy, ...range(current) };
  let s;
  try {
    s = await get('/spend' + query(params));
  } catch (err) {
    if (ctx.isCurrent()) body.replaceChildren(err.status === 404 ? h('p', { class: 'muted' }, 'This gateway has no spend data: it needs the spend ledger.') : errorBox(err));
    return;
  }
  if (!ctx.isCurrent()) return;
  const rows = s.rows || [];
  const label = (r) => r.group === null || r.group === undefined || r.group === '' ? '(none)' : String(r.group);
  const chart = groupBy === 'day'
    ? timeChart('Spend per day (USD)', rows.map((r) => Math.floor(new Date(r.group).getTime() / 1000)),
      [{ label: 'spend', values: rows.map((r) => r.spend) }], { bars: true, format: (v) => '$' + Number(v).toFixed(2) })
    : h('figure', { class: 'chart', id: 'spend-chart' }, h('figcaption', {}, `Spend by ${groupBy}`),
      rows.length ? barList(rows.slice(0, 25), (r) => Number(r.spend) || 0, label, usd) : h('p', { class: 'muted' }, 'No spend in this range.'));
  body.replaceChildren(
    h('div', { class: 'cards' },
      card('Spend', usd(s.total?.spend)), card('Requests', num(s.total?.requests)),
      card('Input tokens', num(s.total?.input_tokens)), card('Output tokens', num(s.total?.output_tokens))),
    chart,
    h('div', { class: 'page-head' }, h('h2', {}, `By ${groupBy}`),
      h('a', { class: 'button small', id: 'csv', href: '/ui/api/spend' + query({ ...params, format: 'csv' }), download: `spend-by-${groupBy}.csv` }, 'Export CSV')),
    table([
      { label: groupBy, cell: label },
      { label: 'Spend', num: true, cell: (r) => usd(r.spend) },
      { label: 'Requests', num: true, cell: (r) => num(r.requests) },
      { label: 'Input tokens', num: true, cell: (r) => num(r.input_tokens) },
      { label: 'Output tokens', num: true, cell: (r) => num(r.output_tokens) },
    ], rows, { empty: 'No spend in this range.' }));
}
