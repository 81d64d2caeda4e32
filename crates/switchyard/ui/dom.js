// Builds elements without innerHTML: every value from the API becomes text, never markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'on') {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (name === 'class') {
      el.className = value;
    } else if (name in el && typeof value !== 'string') {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const usd = (n) => (n === null || n === undefined) ? '—'
  : '$' + Number(n).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: Math.abs(n) < 1 ? 6 : 2 });
export const num = (n) => (n === null || n === undefined) ? '—' : Number(n).toLocaleString('en-US');
// Sub-10 ms figures keep a decimal: the gateway's own overhead is usually well under 1 ms.
export const ms = (n) => (n === null || n === undefined) ? '—' : `${Number(n) < 10 ? Number(n).toFixed(1) : Math.round(Number(n))} ms`;
export const pct = (n) => (n === null || n === undefined) ? '—' : `${(Number(n) * 100).toFixed(1)} %`;

export function when(t) {
  if (t === null || t === undefined || t === '') return '—';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

// A block of text with a Copy button (remedies, policies, new keys).
export function copyable(text, label = 'Copy') {
  const pre = h('pre', { class: 'copy-text' }, text);
  const button = h('button', { type: 'button', class: 'small', on: { click: async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      const range = document.createRange();
      range.selectNodeContents(pre);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      button.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => { button.textContent = label; }, 2000);
  } } }, label);
  return h('div', { class: 'copyable' }, pre, button);
}

// An API error as the gateway explains it: the message, then the catalog id, cause and fix.
export function errorBox(err) {
  const d = err && err.diagnosis;
  let message = err && err.message ? err.message : String(err);
  // The gateway's message repeats the cause and the fix after the first sentence; shown apart here.
  if (d && d.cause && message.includes(' ' + d.cause)) message = message.slice(0, message.indexOf(' ' + d.cause));
  return h('div', { class: 'error', role: 'alert' },
    h('strong', {}, message),
    d ? h('p', {}, h('span', { class: 'badge bad' }, d.id), ' ', d.cause) : null,
    d && d.remedy ? h('p', {}, h('b', {}, 'What to do: '), d.remedy) : null);
}

export function table(columns, rows, opts = {}) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label)));
  const body = rows.map((row) => {
    const tr = h('tr', { class: opts.onRow ? 'clickable' : null },
      columns.map((c) => h('td', { class: c.num ? 'num' : null, 'data-label': c.label }, c.cell(row))));
    if (opts.onRow) {
      tr.tabIndex = 0;
      tr.addEventListener('click', () => opts.onRow(row));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') opts.onRow(row); });
    }
    return tr;
  });
  return h('div', { class: 'table-wrap' },
    h('table', {}, h('thead', {}, head), h('tbody', {}, body.length ? body
      : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, opts.empty || 'Nothing yet.')))));
}

export function card(label, value, extra) {
  return h('div', { class: 'card' }, h('div', { class: 'card-label' }, label), h('div', { class: 'card-value' }, value),
    extra ? h('div', { class: 'card-extra' }, extra) : null);
}

// The time ranges every page offers, as RFC 3339 `from`/`to`.
export const RANGES = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };
export function range(key) {
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[key] * 1000);
  return { from: from.toISOString(), to: to.toISOString() };
}
export function rangePicker(current, onChange) {
  const select = h('select', { 'aria-label': 'Time range', on: { change: () => onChange(select.value) } },
    Object.keys(RANGES).map((k) => h('option', { value: k, selected: k === current }, `Last ${k}`)));
  return select;
}
