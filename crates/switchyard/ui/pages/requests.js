// Requests: the latest ones, filterable, each opening to its detail.
import { get, query } from '../api.js';
import { h, num, ms, usd, when, table, errorBox, clear } from '../dom.js';

const filters = { tag: '', key: '', alias: '', status: '' };

export async function render(root, ctx) {
  const list = h('div', { id: 'request-list' });
  const detail = h('div', { id: 'request-detail' });
  const inputs = {};
  const form = h('form', { class: 'filters', on: { submit: (e) => {
    e.preventDefault();
    for (const k of Object.keys(filters)) filters[k] = inputs[k].value.trim();
    load(list, detail, ctx, null, true);
  } } },
  ['tag', 'key', 'alias'].map((k) => h('label', {}, k,
    inputs[k] = h('input', { name: k, value: filters[k], placeholder: k === 'key' ? 'alias or sk-...abcd' : '' }))),
  h('label', {}, 'status', inputs.status = h('select', { name: 'status' },
    ['', 'ok', 'error'].map((v) => h('option', { value: v, selected: v === filters.status }, v || 'any')))),
  h('button', { type: 'submit', class: 'small' }, 'Filter'));
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Requests')), form, detail, list);
  await load(list, detail, ctx, null, true);
}

async function load(list, detail, ctx, before, fresh) {
  if (fresh) list.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  let page;
  try {
    page = await get('/requests' + query({ ...filters, limit: 50, before }));
  } catch (err) {
    if (ctx.isCurrent()) list.replaceChildren(err.status === 404 ? h('p', { class: 'muted' }, 'This gateway records no requests: it needs the spend ledger.') : errorBox(err));
    return;
  }
  if (!ctx.isCurrent()) return;
  const rows = page.rows || [];
  const t = table([
    { label: 'Time', cell: (r) => when(r.time) },
    { label: 'Status', cell: (r) => h('span', { class: `badge ${r.status === 'ok' ? 'ok' : 'bad'}` }, r.status === 'ok' ? String(r.status_code || 'ok') : (r.error_class || r.status_code || 'error')) },
    { label: 'Alias', cell: (r) => r.alias || '—' },
    { label: 'Deployment', cell: (r) => r.deployment || r.model || '—' },
    { label: 'Attempts', num: true, cell: (r) => num(r.attempts) },
    { label: 'Tokens in/out', num: true, cell: (r) => `${num(r.input_tokens)} / ${num(r.output_tokens)}` },
    { label: 'Cost', num: true, cell: (r) => usd(r.cost) },
    { label: 'Latency', num: true, cell: (r) => ms(r.latency_ms) },
    { label: 'Key', cell: (r) => r.key_alias || '—' },
    { label: 'Tags', cell: (r) => (r.tags || []).map((tag) => h('span', { class: 'tag' }, tag)) },
  ], rows, { empty: 'No requests match.', onRow: (r) => open(detail, r.request_id) });
  const more = page.next ? h('button', { type: 'button', class: 'small', on: { click: () => {
    more.remove();
    load(list, detail, ctx, page.next, false);
  } } }, 'Older requests') : null;
  if (fresh) list.replaceChildren(t, more || '');
  else list.append(t, more || '');
}

async function open(detail, id) {
  clear(detail).append(h('p', { class: 'muted' }, 'Loading…'));
  try {
    const r = await get(`/requests/${encodeURIComponent(id)}`);
    const close = h('button', { type: 'button', class: 'small', on: { click: () => clear(detail) } }, 'Close');
    const rows = Object.entries(r).filter(([k]) => !['attempt_details', 'messages', 'response'].includes(k));
    clear(detail).append(h('article', { class: 'detail' },
      h('div', { class: 'page-head' }, h('h2', {}, `Request ${id}`), close),
      h('dl', { class: 'grid' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v ?? '—'))])),
      r.attempt_details ? [h('h3', {}, 'Attempts'), h('pre', {}, JSON.stringify(r.attempt_details, null, 2))] : null,
      r.messages ? [h('h3', {}, 'Prompt'), h('pre', {}, JSON.stringify(r.messages, null, 2))] : null,
      r.response ? [h('h3', {}, 'Response'), h('pre', {}, JSON.stringify(r.response, null, 2))] : null));
    detail.scrollIntoView({ block: 'nearest' });
  } catch (err) {
    clear(detail).append(errorBox(err));
  }
}
