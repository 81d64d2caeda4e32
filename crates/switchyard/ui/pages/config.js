// Config: the file serving (secrets masked), where credentials come from, the last reload.
import { get } from '../api.js';
import { h, when, table, append } from '../dom.js';

export async function render(root, ctx) {
  const c = await get('/config');
  if (!ctx.isCurrent()) return;
  const r = c.last_reload;
  append(root, h('div', { class: 'page-head' }, h('h1', {}, 'Config')),
    h('div', { class: 'cards' },
      h('div', { class: 'card' }, h('div', { class: 'card-label' }, 'Loaded'), h('div', { class: 'card-value small' }, c.loaded_at ? when(c.loaded_at) : 'at start')),
      h('div', { class: 'card' }, h('div', { class: 'card-label' }, 'Last reload'),
        h('div', { class: 'card-value small' }, r ? h('span', { class: `badge ${r.ok ? 'ok' : 'bad'}` }, r.ok ? 'applied' : 'rejected') : 'none yet'),
        r ? h('div', { class: 'card-extra' }, `${when(r.at || r.finished_at || r.time)} · ${r.summary || ''}`) : null),
      h('div', { class: 'card' }, h('div', { class: 'card-label' }, 'Master key'), h('div', { class: 'card-value small' }, c.master_key || 'none: the gateway is open'))),
    r && !r.ok && r.error ? h('pre', { class: 'error' }, r.error.text || JSON.stringify(r.error, null, 2)) : null,
    h('h2', {}, 'Credentials by deployment'),
    h('p', { class: 'muted' }, 'Where each secret comes from; the values are never shown.'),
    table([
      { label: 'Alias', cell: (d) => d.alias },
      { label: 'Model', cell: (d) => d.model },
      { label: 'Provider', cell: (d) => d.provider },
      { label: 'Credentials', cell: (d) => [['api_key', d.api_key], ['aws_access_key_id', d.aws_access_key_id], ['aws_secret_access_key', d.aws_secret_access_key], ['aws_session_token', d.aws_session_token], ['aws_profile_name', d.aws_profile_name]]
        .filter(([, v]) => v).map(([k, v]) => h('div', {}, h('code', {}, k), ': ', v)) },
    ], c.deployments || []),
    c.env_files?.length ? [h('h2', {}, 'Env files'), h('ul', {}, c.env_files.map((f) => h('li', {}, h('code', {}, f))))] : null,
    (c.files || []).map((f) => [h('h2', {}, h('code', {}, f.path)), f.text ? h('pre', { class: 'config-text' }, f.text) : h('p', { class: 'error' }, f.error)]));
}
