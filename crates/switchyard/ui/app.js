// The shell: who is signed in, the sign-in form, and which page the URL's #/page names.
import { api, setCsrf } from './api.js';
import { h, clear, append, errorBox } from './dom.js';
import * as overview from './pages/overview.js';
import * as deployments from './pages/deployments.js';
import * as spend from './pages/spend.js';
import * as requests from './pages/requests.js';
import * as keys from './pages/keys.js';
import * as config from './pages/config.js';

const PAGES = { overview, deployments, spend, requests, keys, config };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let session = null;

async function boot() {
  try {
    session = await api('GET', '/session');
  } catch (err) {
    clear(main).append(errorBox(err));
    return;
  }
  if (!session.signed_in) return signIn();
  setCsrf(session.csrf_token);
  showWho();
  route();
}

function showWho() {
  nav.hidden = false;
  for (const a of nav.querySelectorAll('[data-admin]')) a.hidden = session.role !== 'admin';
  const label = session.role === 'admin'
    ? (session.open ? 'Open gateway (no master key)' : 'Master key')
    : `Key ${session.key_alias || session.key_name || ''} (read-only)`;
  append(clear(who),
    h('span', { class: 'who-label', id: 'who-label' }, label),
    session.open && session.role === 'admin' ? null
      : h('button', { type: 'button', class: 'small', id: 'sign-out', on: { click: signOut } }, 'Sign out'));
}

function signIn(message) {
  nav.hidden = true;
  clear(who);
  const input = h('input', { type: 'password', name: 'key', id: 'key', required: true,
    autocomplete: 'current-password', placeholder: 'sk-…', spellcheck: 'false' });
  const status = h('div', { id: 'sign-in-status', 'aria-live': 'polite' }, message ? h('p', { class: 'muted' }, message) : null);
  const form = h('form', { class: 'sign-in', id: 'sign-in', on: { submit: async (e) => {
    e.preventDefault();
    clear(status);
    try {
      session = await api('POST', '/session', { key: input.value });
      input.value = '';
      setCsrf(session.csrf_token);
      showWho();
      if (!location.hash || location.hash === '#/') location.hash = '#/overview';
      else route();
    } catch (err) {
      status.append(errorBox(err));
    }
  } } },
  h('h1', {}, 'Sign in'),
  h('p', { class: 'muted' }, 'Use the gateway\'s master key, or a virtual key to see its own usage (read-only). The key is sent once; a session cookie is kept for 12 hours.'),
  h('label', { for: 'key' }, 'Key'), input,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  status);
  clear(main).append(form);
  input.focus();
}

async function signOut() {
  try { await api('DELETE', '/session'); } catch { /* the cookie is cleared either way */ }
  session = null;
  setCsrf(null);
  signIn('Signed out.');
}

let rendering = 0;
async function route() {
  if (!session || !session.signed_in) return;
  const name = (location.hash.replace(/^#\/?/, '').split('?')[0]) || 'overview';
  const page = PAGES[name] && (name !== 'config' || session.role === 'admin') ? name : 'overview';
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.page === page);
  const ticket = ++rendering;
  const root = h('section', { class: 'page', id: `page-${page}` });
  clear(main).append(root);
  try {
    await PAGES[page].render(root, { session, isCurrent: () => ticket === rendering });
  } catch (err) {
    if (ticket === rendering) root.append(errorBox(err));
  }
  document.title = `${nav.querySelector(`[data-page="${page}"]`)?.textContent || 'Dashboard'} · Switchyard`;
}

window.addEventListener('hashchange', route);
window.addEventListener('signed-out', () => { if (session) { session = null; signIn('Your session ended; sign in again.'); } });
boot();
