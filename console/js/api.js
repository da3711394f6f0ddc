// The one way the console talks to the host: the public REST API under /api/v1. The access and
// refresh tokens live in this module's variables only (never localStorage, sessionStorage or a
// cookie), so a reload signs out. The access token is refreshed before it expires, and once
// more when a request meets 401. Every problem+json answer becomes an ApiError.

const BASE = '/api/v1';
const REFRESH_MARGIN_S = 30;

let session = null; // {access, refresh, expiresAt, refreshExpiresAt, user, me}
let refreshTimer = null;
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor({status = 0, type = '', title = 'Error', detail = '', errors = [], retryAfter = null, extra = {}}) {
    super(title);
    Object.assign(this, {status, type, title, detail, errors, retryAfter, extra});
  }
  get slug() { return this.type.split('/').pop(); }
}

// Called with the session (or null) whenever it starts, is refreshed or ends; `why` is the
// ApiError that ended it, if one did.
export function onSession(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function emit(why) { for (const fn of listeners) fn(session, why); }

export function current() { return session; }
export function accessToken() { return session ? session.access : null; }
// Whether the signed-in credential's roles grant `permission` (from GET /auth/me).
export function can(permission) {
  return !!session && !!session.me && (session.me.permissions || []).includes(permission);
}

function idempotencyKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return 'console-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function problemOf(res) {
  const ct = res.headers.get('content-type') || '';
  let body = {};
  if (ct.includes('json')) {
    try { body = await res.json(); } catch { body = {}; }
  }
  const {type = '', title = res.statusText || `HTTP ${res.status}`, detail = '', errors = [], status, ...extra} = body;
  const ra = res.headers.get('retry-after');
  return new ApiError({status: res.status, type, title, detail, errors, extra,
    retryAfter: ra !== null && /^\d+$/.test(ra) ? Number(ra) : null});
}

async function send(method, path, {body, query, headers = {}, auth = true} = {}) {
  let url = path.startsWith('/') && !path.startsWith(BASE) ? BASE + path : path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const h = {Accept: 'application/json', ...headers};
  if (auth && session) h.Authorization = 'Bearer ' + session.access;
  const init = {method, headers: h, cache: 'no-store'};
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new ApiError({title: 'The host cannot be reached', detail: String(e.message || e)});
  }
}

async function decode(res) {
  if (res.status === 204 || res.status === 304) return null;
  if (!res.ok) throw await problemOf(res);
  const ct = res.headers.get('content-type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

// Sends one API request and returns the decoded JSON (null for 204). Writes carry an
// Idempotency-Key, kept across the one retry after a refresh. Throws ApiError.
export async function request(method, path, opts = {}) {
  const headers = {...(opts.headers || {})};
  if (method !== 'GET' && method !== 'HEAD' && !headers['Idempotency-Key']) headers['Idempotency-Key'] = idempotencyKey();
  let res = await send(method, path, {...opts, headers});
  if (res.status === 401 && session && opts.auth !== false) {
    if (!(await refresh())) throw await problemOf(res);
    res = await send(method, path, {...opts, headers});
  }
  return decode(res);
}

export const get = (path, query) => request('GET', path, {query});
export const post = (path, body) => request('POST', path, {body: body === undefined ? {} : body});
export const put = (path, body) => request('PUT', path, {body});
export const patch = (path, body) => request('PATCH', path, {body});
export const del = (path, body) => request('DELETE', path, body === undefined ? {} : {body});

function schedule() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const ms = Math.max(5000, session.expiresAt - Date.now() - REFRESH_MARGIN_S * 1000);
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, ms);
}

async function adopt(tokens) {
  const now = Date.now();
  session = {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    expiresAt: now + tokens.expires_in * 1000,
    refreshExpiresAt: now + tokens.refresh_expires_in * 1000,
    user: tokens.user,
    me: session && session.me,
  };
  session.me = await decode(await send('GET', '/auth/me'));
  schedule();
  emit(null);
  return session;
}

// Signs in; throws ApiError (401 invalid-credentials, 429 login-locked with retryAfter, 400).
export async function login(email, password) {
  const res = await send('POST', '/auth/login', {body: {email, password}, auth: false});
  return adopt(await decode(res));
}

// Exchanges the refresh token for new tokens. When that is refused (expired, revoked, reused)
// the session ends and listeners hear why; when the host cannot answer (network, 5xx, 429) the
// session stays and the exchange is tried again shortly. Concurrent callers share one exchange.
export function refresh() {
  if (!session) return Promise.resolve(null);
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await send('POST', '/auth/refresh', {body: {refresh_token: session.refresh}, auth: false});
        return await adopt(await decode(res));
      } catch (e) {
        if (e.status === 400 || e.status === 401) {
          end(e);
        } else {
          clearTimeout(refreshTimer);
          refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, 5000);
        }
        return null;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

function end(why) {
  clearTimeout(refreshTimer);
  session = null;
  emit(why || null);
}

// Revokes the refresh token's family and forgets the tokens; signing out never fails locally.
export async function logout() {
  if (!session) return;
  const rt = session.refresh;
  try {
    await decode(await send('POST', '/auth/logout', {body: {refresh_token: rt}, auth: false}));
  } finally {
    end(null);
  }
}
