// Sign in, and the session page: who the credential is, its roles and permissions, when its
// tokens expire, refresh now, sign out. The API's answers (wrong password, locked address with
// Retry-After, an ended session) are shown with their title and detail.

import * as api from '../api.js';
import {afterSignIn} from '../app.js';
import {facts, form, h, heading, notice, problemBox} from '../ui.js';

export function signIn(main, params, {endedBecause}) {
  const f = form({
    cls: 'signin',
    submit: 'Sign in',
    fields: [
      {name: 'email', label: 'E-mail', type: 'email', required: true, autocomplete: 'username'},
      {name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password'},
    ],
    onSubmit: async (v) => {
      await api.login(v.email, v.password);
      afterSignIn();
    },
  });
  main.append(h('section', {class: 'signin-box'},
    h('h1', {}, 'Sign in'),
    endedBecause ? h('div', {class: 'ended'}, h('p', {}, 'Your session ended.'), problemBox(endedBecause)) : null,
    f,
    h('p', {class: 'muted small'}, 'Tokens are kept in this page\'s memory only: reloading the page signs you out.')));
  f.inputs.email.focus();
}

function until(ms) {
  const s = Math.max(0, Math.round((ms - Date.now()) / 1000));
  return `${new Date(ms).toLocaleString()} (in ${s >= 120 ? Math.round(s / 60) + ' min' : s + ' s'})`;
}

export function sessionPage(main) {
  const s = api.current();
  const slot = h('div', {});
  const render = () => {
    const cur = api.current();
    if (!cur) return;
    slot.replaceChildren(facts([
      ['Subject', cur.me.subject],
      ['E-mail', cur.user ? cur.user.email : '—'],
      ['Roles', (cur.me.roles || []).join(', ')],
      ['Customer', cur.me.customer_id || '—'],
      ['Access token expires', h('span', {id: 'access-expiry'}, until(cur.expiresAt))],
      ['Refresh token expires', until(cur.refreshExpiresAt)],
      ['Permissions', h('span', {class: 'small'}, (cur.me.permissions || []).join(' · '))],
    ]));
  };
  const refreshBtn = h('button', {type: 'button', id: 'refresh-now', onclick: async () => {
    refreshBtn.disabled = true;
    const ok = await api.refresh();
    refreshBtn.disabled = false;
    if (ok) { render(); notice('Session refreshed: new access and refresh tokens.'); }
  }}, 'Refresh session now');
  main.append(heading('Session', refreshBtn), slot);
  if (s) render();
  return api.onSession(render);
}
