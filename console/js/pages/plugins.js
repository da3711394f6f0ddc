// Plugins and hosts: the generations this host serves (GET /plugins), every live host and what
// it serves per product (GET /hosts), the skew (a product whose live hosts do not all serve its
// current release) highlighted in the hosts table and listed on its own, a fleet-wide or one
// product's reload (POST /plugins/reload, /plugins/{product}/reload, ?canary, ?force) with each
// host's results, also when the rollout failed (422: the problem carries results, rollout and
// hosts), and this host's reload history.

import * as api from '../api.js';
import {badge, clear, facts, fmtTime, form, h, heading, problemBox, table} from '../ui.js';

const short = (x) => (x ? String(x).slice(0, 8) : '—');

// {product: {sha: [host ids]}} for the products in skew, and each product's release hash.
function skewIndex(skew) {
  const out = {};
  for (const s of skew || []) out[s.product] = s;
  return out;
}

function hostsTable(view, self) {
  const hosts = view.hosts || [];
  const skew = skewIndex(view.skew);
  const products = [...new Set(hosts.flatMap((x) => (x.plugins || []).map((p) => p.product)))].sort();
  const cell = (host, product) => {
    const p = (host.plugins || []).find((x) => x.product === product);
    const s = skew[product];
    const differs = s && (!p || !p.sha256 || p.sha256 !== s.release_sha256);
    const text = p && p.generation !== null && p.generation !== undefined
      ? `gen ${p.generation} · ${p.version || '?'} · ${short(p.sha256)}` : 'not served';
    return h('span', {class: differs ? 'skewed' : null, 'data-product': product},
      text,
      differs ? [' ', badge('skew')] : null,
      p && p.last_error ? h('span', {class: 'error-text small'}, ` ${p.last_error}`) : null);
  };
  return table([
    {label: 'Host', value: (x) => h('span', {}, x.hostname, ' ', h('code', {title: x.id}, short(x.id)), x.id === self ? ' (this host)' : '')},
    {label: 'Status', value: (x) => badge(x.status)},
    {label: 'Roles', value: (x) => (x.roles || []).join(', ')},
    {label: 'Version', value: (x) => `${x.version || '—'} (${x.commit || '—'})`},
    {label: 'Heartbeat', value: (x) => fmtTime(x.heartbeat_at)},
    ...products.map((p) => ({label: p, value: (x) => cell(x, p)})),
  ], hosts, {empty: 'No live host recorded (a host serving alone has no fleet).', caption: 'Hosts and the generation each serves'});
}

function skewList(view) {
  const hosts = Object.fromEntries((view.hosts || []).map((x) => [x.id, x.hostname]));
  if (!view.skew || view.skew.length === 0) {
    return h('p', {class: 'fleet-agrees', id: 'skew'}, badge('ok'), ' The fleet agrees: every live host serves each product\'s current release.');
  }
  return h('div', {id: 'skew', class: 'skew-list', role: 'region', 'aria-label': 'Skew'},
    view.skew.map((s) => h('div', {class: 'card skew-card'},
      h('h3', {}, badge('skew'), ' ', s.product),
      facts([
        ['Release', s.release_sha256 ? short(s.release_sha256) : 'no release yet'],
        ...Object.entries(s.hosts_by_sha256 || {}).map(([sha, ids]) => [
          sha === 'none' ? 'Serving nothing' : `Serving ${short(sha)}${sha === s.release_sha256 ? ' (release)' : ''}`,
          ids.map((id) => `${hosts[id] || '?'} ${short(id)}`).join(', ')]),
      ]))));
}

function generationsTable(plugins) {
  return table([
    {label: 'Product', value: (p) => p.product},
    {label: 'Generation', value: (p) => String(p.generation ?? '—')},
    {label: 'Version', value: (p) => p.version || '—'},
    {label: 'State', value: (p) => badge(p.state)},
    {label: 'Loaded', value: (p) => fmtTime(p.loaded_at)},
    {label: 'File hash', value: (p) => h('code', {title: p.file_hash || ''}, short(p.file_hash))},
    {label: 'Problem', value: (p) => (p.reason || p.last_reload_error) ? h('span', {class: 'error-text'}, p.reason || p.last_reload_error) : '—'},
  ], plugins, {empty: 'No plugin loaded.', caption: 'Generations on this host'});
}

// A reload's per-host results: one row per host and product.
export function rolloutView(answer) {
  const rows = [];
  for (const host of answer.hosts || []) {
    for (const r of host.results || []) rows.push({host, r});
  }
  if (rows.length === 0) {
    for (const r of answer.results || []) rows.push({host: {hostname: 'this host', coordinator: true}, r});
  }
  const ro = answer.rollout;
  return h('div', {id: 'reload-results'},
    ro ? facts([
      ['Rollout', `${ro.mode}${ro.product ? ' of ' + ro.product : ''}${ro.force ? ', forced' : ''}`],
      ['State', badge(ro.state)],
      ['Took', ro.duration_ms !== undefined ? `${Number(ro.duration_ms).toFixed(1)} ms` : '—'],
    ]) : null,
    table([
      {label: 'Host', value: ({host}) => h('span', {}, host.hostname || '?', ' ', host.host_id ? h('code', {}, short(host.host_id)) : null,
        host.coordinator ? ' (coordinator)' : '')},
      {label: 'Product', value: ({r}) => r.product},
      {label: 'Result', value: ({r}) => badge(r.result)},
      {label: 'Generation', value: ({r}) => String(r.generation ?? r.serving_generation ?? '—')},
      {label: 'Version', value: ({r}) => r.version || '—'},
      {label: 'SHA-256', value: ({r}) => h('code', {}, short(r.sha256))},
      {label: 'Load', value: ({r}) => (r.load_ms !== undefined ? `${Number(r.load_ms).toFixed(1)} ms` : '—')},
      {label: 'Reason or note', value: ({r}) => (r.reason || r.note) ? h('span', {class: r.reason ? 'error-text' : null}, r.reason || r.note) : '—'},
    ], rows, {empty: 'No host reported.', caption: 'Per-host results'}));
}

function historyTable(history) {
  return table([
    {label: 'When', value: (x) => fmtTime(x.at)},
    {label: 'Product', value: (x) => x.product},
    {label: 'Result', value: (x) => badge(x.result)},
    {label: 'Generation', value: (x) => String(x.generation ?? '—')},
    {label: 'Reason', value: (x) => x.reason || '—'},
  ], (history || []).slice(0, 20), {empty: 'No reload yet.', caption: 'This host\'s latest loads and reloads'});
}

export async function overview(main) {
  const problems = h('div', {});
  const fleetSlot = h('section', {'aria-label': 'Fleet'});
  const localSlot = h('section', {'aria-label': 'This host'});
  const resultSlot = h('div', {'aria-live': 'polite'});
  let products = [];

  async function load() {
    clear(problems);
    let plugins;
    try {
      plugins = await api.get('/plugins');
    } catch (e) {
      clear(problems, problemBox(e));
      return;
    }
    products = plugins.plugins.map((p) => p.product);
    let view = plugins.fleet;
    if (api.can('hosts:read')) {
      try { view = await api.get('/hosts'); } catch (e) { problems.append(problemBox(e)); }
    }
    const self = plugins.fleet ? plugins.fleet.host_id : null;
    clear(fleetSlot, h('h2', {}, 'Fleet'),
      !plugins.fleet ? h('p', {class: 'muted'}, 'This host serves its plugin directory alone (no fleet tables): reloads reach it only.')
        : [view && view.hosts ? hostsTable(view, self) : null, h('h3', {}, 'Skew'), skewList(view || plugins.fleet)]);
    clear(localSlot, h('h2', {}, 'This host'), generationsTable(plugins.plugins), historyTable(plugins.reload_history));
    if (reloadForm) {
      const sel = reloadForm.inputs.product;
      const keep = sel.value;
      sel.replaceChildren(h('option', {value: ''}, 'Every product (fleet-wide)'), ...products.map((p) => h('option', {value: p}, p)));
      sel.value = keep;
    }
  }

  const reloadForm = api.can('plugins:reload') ? form({
    cls: 'inline reload',
    submit: 'Reload',
    fields: [
      {name: 'product', label: 'Product', type: 'select', options: [['', 'Every product (fleet-wide)']]},
      {name: 'canary', label: 'Canary (stop at the first failure here)', type: 'checkbox'},
      {name: 'force', label: 'Force (reload unchanged files)', type: 'checkbox'},
    ],
    onSubmit: async (v) => {
      clear(resultSlot);
      const path = v.product ? `/plugins/${encodeURIComponent(v.product)}/reload` : '/plugins/reload';
      const q = new URLSearchParams();
      if (v.canary) q.set('canary', 'true');
      if (v.force) q.set('force', 'true');
      let answer;
      try {
        answer = await api.post(path + (q.toString() ? '?' + q : ''));
        clear(resultSlot, h('h2', {}, 'Reload results'), h('p', {class: 'notice', role: 'status'}, 'Every host loaded or kept every product.'),
          rolloutView(answer));
      } catch (e) {
        // 422 plugin-load-failed / plugin-rollout-incomplete carry the per-host results
        clear(resultSlot, h('h2', {}, 'Reload results'), problemBox(e), e.extra && (e.extra.hosts || e.extra.results) ? rolloutView(e.extra) : null);
      }
      await load();
    },
  }) : null;

  main.append(heading('Plugins & hosts', h('button', {type: 'button', onclick: () => load()}, 'Refresh')),
    problems,
    ...(reloadForm ? [h('section', {'aria-label': 'Reload'}, h('h2', {}, 'Reload'), reloadForm, resultSlot)] : []),
    fleetSlot, localSlot);
  await load();
}
