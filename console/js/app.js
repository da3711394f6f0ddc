// The console's shell: the hash router (#/customers/…), the navigation (only the pages the
// signed-in credential may read), the session line with sign-out, and the sign-in page whenever
// there is no session. Each page is a module under pages/ exporting views; a view is called as
// view(main, params) and may return a function that stops what it started (streams, timers).

import * as api from './api.js';
import {clear, h} from './ui.js';

// [pattern, module under pages/, exported view, nav label or null, permission to read it]
const ROUTES = [
  ['/signin', 'signin', 'signIn', null, null],
  ['/session', 'signin', 'sessionPage', null, 'self:read'],
  ['/catalog', 'catalog', 'products', 'Catalog', 'catalog:read'],
  ['/catalog/:product', 'catalog', 'product', null, 'catalog:read'],
  ['/customers', 'customers', 'list', 'Customers', 'customers:read'],
  ['/customers/new', 'customers', 'create', null, 'customers:read'],
  ['/customers/:id', 'customers', 'show', null, 'customers:read'],
  ['/instances', 'instances', 'list', 'Instances', 'instances:read'],
  ['/instances/:id', 'instances', 'show', null, 'instances:read'],
  ['/jobs', 'jobs', 'list', 'Jobs', 'jobs:read'],
  ['/jobs/:id', 'jobs', 'show', null, 'jobs:read'],
  ['/dlq', 'dlq', 'list', 'DLQ', 'dlq:read'],
  ['/dlq/:id', 'dlq', 'show', null, 'dlq:read'],
  ['/plugins', 'plugins', 'overview', 'Plugins & hosts', 'plugins:read'],
  ['/audit', 'audit', 'search', 'Audit', 'audit:read'],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let stop = null;
let endedBecause = null;
let wanted = null;

function match(path) {
  for (const [pattern, module, view, , perm] of ROUTES) {
    const ps = pattern.split('/');
    const xs = path.split('/');
    if (ps.length !== xs.length) continue;
    const params = {};
    if (ps.every((p, i) => (p.startsWith(':') ? (params[p.slice(1)] = decodeURIComponent(xs[i])) !== '' : p === xs[i]))) {
      return {module, view, perm, params};
    }
  }
  return null;
}

function renderNav(path) {
  clear(nav);
  if (!api.current()) return;
  const ul = h('ul', {});
  for (const [pattern, , , label, perm] of ROUTES) {
    if (!label || (perm && !api.can(perm))) continue;
    const here = path === pattern || path.startsWith(pattern + '/');
    ul.append(h('li', {}, h('a', {href: '#' + pattern, 'aria-current': here ? 'page' : null}, label)));
  }
  nav.append(ul);
}

function renderWho() {
  const s = api.current();
  if (!s) { clear(who); return; }
  const name = (s.user && s.user.email) || s.me.subject;
  clear(who,
    h('a', {href: '#/session', class: 'who-name', title: (s.me.roles || []).join(', ')}, name),
    h('button', {type: 'button', class: 'link', id: 'signout', onclick: signOut}, 'Sign out'));
}

async function signOut() {
  await api.logout().catch(() => {});
  location.hash = '#/signin';
}

export async function route() {
  if (stop) { try { stop(); } catch { /* a page's cleanup failing must not block navigation */ } stop = null; }
  const path = (location.hash || '#/').slice(1) || '/';
  const signedIn = !!api.current();
  if (!signedIn && path !== '/signin') {
    if (path !== '/' && path !== '/session') wanted = path;
    location.hash = '#/signin'; // hashchange routes again
    return;
  }
  if (signedIn && (path === '/' || path === '/signin')) {
    location.hash = api.can('customers:read') ? '#/customers' : '#/session';
    return;
  }
  renderNav(path);
  renderWho();
  const m = match(path);
  clear(main);
  if (!m) {
    main.append(h('h1', {}, 'Not found'), h('p', {}, `The console has no page at ${path}.`));
    return;
  }
  document.title = `Farutech console — ${m.view === 'signIn' ? 'Sign in' : path.split('/')[1]}`;
  try {
    const mod = await import(`./pages/${m.module}.js`);
    const out = await mod[m.view](main, m.params, {endedBecause});
    endedBecause = null;
    if (typeof out === 'function') stop = out;
  } catch (e) {
    main.append(h('div', {class: 'problem', role: 'alert'}, h('strong', {}, e.title || 'The page failed'),
      h('p', {}, e.detail || String(e.message || e))));
  }
  main.focus({preventScroll: true});
}

// Goes where the user was headed before signing in (remembered in memory, not in storage).
export function afterSignIn() {
  const to = wanted || '/';
  wanted = null;
  location.hash = '#' + to;
}

api.onSession((s, why) => {
  if (!s) {
    endedBecause = why || null;
    if (location.hash !== '#/signin') location.hash = '#/signin';
    else route();
  } else {
    renderWho();
  }
});

window.addEventListener('hashchange', route);
route();
