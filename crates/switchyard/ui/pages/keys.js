// Keys and teams: create (the key is shown once), edit budgets, limits and models, block,
// delete. A virtual key's session sees its own key, read-only.
import { api, get } from '../api.js';
import { h, usd, num, when, table, copyable, errorBox, clear } from '../dom.js';

const KEY_FIELDS = [
  ['key_alias', 'Alias', 'text'], ['models', 'Models (comma-separated, empty: all)', 'text'],
  ['max_budget', 'Max budget (USD)', 'number'], ['budget_duration', 'Budget period (e.g. 30d)', 'text'],
  ['rpm_limit', 'Requests per minute', 'number'], ['tpm_limit', 'Tokens per minute', 'number'],
];
const TEAM_FIELDS = [
  ['team_alias', 'Team name', 'text'], ['models', 'Models (comma-separated, empty: all)', 'text'],
  ['max_budget', 'Max budget (USD)', 'number'], ['budget_duration', 'Budget period (e.g. 30d)', 'text'],
  ['rpm_limit', 'Requests per minute', 'number'], ['tpm_limit', 'Tokens per minute', 'number'],
];

export async function render(root, ctx) {
  const admin = ctx.session.role === 'admin';
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Keys and teams')));
  const keysBox = h('section', { id: 'keys' });
  const teamsBox = h('section', { id: 'teams' });
  root.append(keysBox, teamsBox);
  const reload = async () => {
    const [keys, teams] = await Promise.all([get('/keys'), get('/teams')]);
    if (!ctx.isCurrent()) return;
    drawKeys(keysBox, keys.keys || [], teams || [], admin, reload);
    drawTeams(teamsBox, teams || [], admin, reload);
  };
  await reload();
}

// The form's values as a LiteLLM body: numbers as numbers, models as a list, empty as null.
function collect(form, fields) {
  const body = {};
  for (const [name, , type] of fields) {
    const raw = form.elements[name].value.trim();
    if (name === 'models') body.models = raw ? raw.split(',').map((m) => m.trim()).filter(Boolean) : [];
    else if (type === 'number') body[name] = raw === '' ? null : Number(raw);
    else body[name] = raw === '' ? null : raw;
  }
  return body;
}

function inputs(fields, values = {}) {
  return fields.map(([name, label, type]) => h('label', {}, label, h('input', {
    name, type, step: type === 'number' ? 'any' : null, min: type === 'number' ? '0' : null,
    value: name === 'models' ? (values.models || []).join(', ') : (values[name] ?? ''),
  })));
}

function drawKeys(box, keys, teams, admin, reload) {
  const status = h('div', { 'aria-live': 'polite', id: 'key-status' });
  const act = (fn) => async () => {
    clear(status);
    try { await fn(); await reload(); } catch (err) { status.append(errorBox(err)); }
  };
  let create = null;
  if (admin) {
    const teamSelect = h('select', { name: 'team_id' }, h('option', { value: '' }, 'no team'),
      teams.map((t) => h('option', { value: t.team_id }, t.team_alias || t.team_id)));
    const shown = h('div', { id: 'new-key' });
    create = h('details', { class: 'create', id: 'create-key' }, h('summary', {}, 'Create a key'),
      h('form', { class: 'form-grid', on: { submit: async (e) => {
        e.preventDefault();
        clear(status);
        const body = collect(e.target, KEY_FIELDS);
        if (teamSelect.value) body.team_id = teamSelect.value;
        for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
        try {
          const made = await api('POST', '/keys', body);
          e.target.reset();
          await reload();
          const fresh = box.querySelector('#new-key') || shown;
          clear(fresh).append(h('div', { class: 'notice', role: 'status' },
            h('p', {}, h('b', {}, 'The new key, shown only this once. '), 'Copy it now: the gateway keeps only its hash.'),
            copyable(made.key)));
        } catch (err) { status.append(errorBox(err)); }
      } } }, inputs(KEY_FIELDS), h('label', {}, 'Team', teamSelect),
      h('button', { type: 'submit', class: 'primary' }, 'Create key')));
    box.replaceChildren(h('h2', {}, 'Keys'), create, shown, status);
  } else {
    box.replaceChildren(h('h2', {}, 'Your key'), status);
  }
  box.append(table([
    { label: 'Alias', cell: (k) => k.key_alias || '—' },
    { label: 'Key', cell: (k) => h('code', {}, k.key_name || '—') },
    { label: 'Team', cell: (k) => k.team_alias || k.team_id || '—' },
    { label: 'Models', cell: (k) => (k.models || []).length ? k.models.join(', ') : 'all' },
    { label: 'Spend', num: true, cell: (k) => usd(k.spend) },
    { label: 'Budget', num: true, cell: (k) => k.max_budget === null || k.max_budget === undefined ? '—' : `${usd(k.max_budget)}${k.budget_duration ? ' / ' + k.budget_duration : ''}` },
    { label: 'Limits', cell: (k) => `${k.rpm_limit ? num(k.rpm_limit) + ' rpm' : ''} ${k.tpm_limit ? num(k.tpm_limit) + ' tpm' : ''}`.trim() || '—' },
    { label: 'Expires', cell: (k) => k.expires ? when(k.expires) : 'never' },
    { label: 'State', cell: (k) => h('span', { class: `badge ${k.blocked ? 'bad' : 'ok'}` }, k.blocked ? 'blocked' : 'active') },
    admin ? { label: 'Actions', cell: (k) => keyActions(k, act) } : null,
  ].filter(Boolean), keys, { empty: 'No virtual keys yet.' }));
}

function keyActions(k, act) {
  const id = encodeURIComponent(k.token);
  const name = k.key_alias || k.key_name;
  const edit = h('details', { class: 'edit' }, h('summary', {}, 'Edit'),
    h('form', { class: 'form-grid', on: { submit: (e) => { e.preventDefault(); act(() => api('PATCH', `/keys/${id}`, collect(e.target, KEY_FIELDS)))(); } } },
      inputs(KEY_FIELDS, k), h('button', { type: 'submit', class: 'small primary' }, 'Save')));
  return h('div', { class: 'actions', 'data-key': name },
    h('button', { type: 'button', class: 'small', 'data-action': k.blocked ? 'unblock' : 'block',
      on: { click: act(() => api('POST', `/keys/${id}/${k.blocked ? 'unblock' : 'block'}`)) } }, k.blocked ? 'Unblock' : 'Block'),
    h('button', { type: 'button', class: 'small danger', 'data-action': 'delete',
      on: { click: () => { if (confirm(`Delete key ${name}? Clients using it are refused at once.`)) act(() => api('DELETE', `/keys/${id}`))(); } } }, 'Delete'),
    edit);
}

function drawTeams(box, teams, admin, reload) {
  const status = h('div', { 'aria-live': 'polite' });
  const act = (fn) => async () => {
    clear(status);
    try { await fn(); await reload(); } catch (err) { status.append(errorBox(err)); }
  };
  box.replaceChildren(h('h2', {}, admin ? 'Teams' : 'Your team'), status);
  if (admin) {
    box.append(h('details', { class: 'create', id: 'create-team' }, h('summary', {}, 'Create a team'),
      h('form', { class: 'form-grid', on: { submit: (e) => {
        e.preventDefault();
        const body = collect(e.target, TEAM_FIELDS);
        for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
        act(() => api('POST', '/teams', body))();
      } } }, inputs(TEAM_FIELDS), h('button', { type: 'submit', class: 'primary' }, 'Create team'))));
  }
  box.append(table([
    { label: 'Team', cell: (t) => t.team_alias || t.team_id },
    { label: 'Models', cell: (t) => (t.models || []).length ? t.models.join(', ') : 'all' },
    { label: 'Spend', num: true, cell: (t) => usd(t.spend) },
    { label: 'Budget', num: true, cell: (t) => t.max_budget === null || t.max_budget === undefined ? '—' : `${usd(t.max_budget)}${t.budget_duration ? ' / ' + t.budget_duration : ''}` },
    { label: 'State', cell: (t) => h('span', { class: `badge ${t.blocked ? 'bad' : 'ok'}` }, t.blocked ? 'blocked' : 'active') },
    admin ? { label: 'Actions', cell: (t) => {
      const id = encodeURIComponent(t.team_id);
      return h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', on: { click: act(() => api('POST', `/teams/${id}/${t.blocked ? 'unblock' : 'block'}`)) } }, t.blocked ? 'Unblock' : 'Block'),
        h('button', { type: 'button', class: 'small danger', on: { click: () => { if (confirm(`Delete team ${t.team_alias || t.team_id} and its keys?`)) act(() => api('DELETE', `/teams/${id}`))(); } } }, 'Delete'),
        h('details', { class: 'edit' }, h('summary', {}, 'Edit'),
          h('form', { class: 'form-grid', on: { submit: (e) => { e.preventDefault(); act(() => api('PATCH', `/teams/${id}`, collect(e.target, TEAM_FIELDS)))(); } } },
            inputs(TEAM_FIELDS, t), h('button', { type: 'submit', class: 'small primary' }, 'Save'))));
    } } : null,
  ].filter(Boolean), teams, { empty: 'No teams yet.' }));
}
