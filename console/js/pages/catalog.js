// The catalog: products (GET /products), then one product (GET /products/{code} and its plans,
// GET /products/{code}/plans): its modules and their features (flag or limit, default, unit,
// requirements), its plans with their version and what each grants, and, per feature, the
// subscriptions that override it (GET /products/{code}/features/{feature}/overrides, for the
// overrides:read permission).

import * as api from '../api.js';
import {badge, clear, facts, fmtTime, guarded, h, heading, link, problemBox, table} from '../ui.js';

export async function products(main) {
  main.append(heading('Catalog'));
  let list;
  try {
    list = (await api.get('/products')).products;
  } catch (e) {
    main.append(problemBox(e));
    return;
  }
  main.append(table([
    {label: 'Product', value: (p) => link('#/catalog/' + encodeURIComponent(p.code), `${p.name} (${p.code})`)},
    {label: 'Version', value: (p) => `${p.version} · generation ${p.generation ?? '—'}`},
    {label: 'Modules', value: (p) => String(p.modules ?? '—')},
    {label: 'Features', value: (p) => String(p.features ?? '—')},
    {label: 'Plans', value: (p) => (p.plans || []).join(', ')},
    {label: 'Description', value: (p) => p.description || '—'},
  ], list, {empty: 'No product is loaded: put plugin files in FT_PLUGIN_DIR and reload.'}));
}

function defaultOf(f) {
  if (f.kind === 'flag') return f.default ? 'on' : 'off';
  return `${f.default ?? '—'}${f.unit ? ' ' + f.unit : ''}`;
}

function valueOf(f) {
  if (f.kind === 'flag') return f.value ? 'on' : 'off';
  return `${f.value ?? '—'}${f.unit ? ' ' + f.unit : ''}`;
}

function overridesTable(answer) {
  return table([
    {label: 'Customer', value: (o) => link('#/customers/' + encodeURIComponent(o.customer.id), o.customer.legal_name || o.customer.id)},
    {label: 'Instance', value: (o) => h('span', {}, link('#/instances/' + encodeURIComponent(o.instance.id), o.instance.code || o.instance.id),
      ' ', badge(o.instance.status))},
    {label: 'Plan', value: (o) => (o.plan ? `${o.plan.code} v${o.plan.version}` : '—')},
    {label: 'Override', value: (o) => `${o.override.enabled ? 'on' : 'off'}${o.override.limit !== null && o.override.limit !== undefined ? ', limit ' + o.override.limit : ''}`
      + (o.override.expired ? ' (expired)' : '')},
    {label: 'Expires', value: (o) => fmtTime(o.override.expires_at)},
    {label: 'Reason', value: (o) => o.override.reason || '—'},
    {label: 'Set by', value: (o) => h('code', {}, o.override.set_by || '—')},
  ], answer.overrides, {empty: `No subscription overrides ${answer.feature}.`, caption: `Overrides of ${answer.feature}`});
}

// The module's features; a feature's overrides open below the table (a table inside a cell
// would not read on a phone).
function featureRows(code, module) {
  const slots = h('div', {class: 'overrides-slots'});
  const rows = table([
    {label: 'Feature', value: (f) => h('span', {}, f.name, ' ', h('code', {}, f.code))},
    {label: 'Kind', value: (f) => f.kind},
    {label: 'Default', value: defaultOf},
    {label: 'Requires', value: (f) => (f.requires && f.requires.length ? f.requires.join(', ') : '—')},
    {label: 'Description', value: (f) => f.description || '—'},
    {label: 'Overrides', value: (f) => {
      const slot = h('div', {class: 'overrides', id: `overrides-${f.code}`, 'aria-live': 'polite'});
      slots.append(slot);
      const b = guarded('overrides:read', `Who overrides ${f.code}`, async () => {
        b.disabled = true;
        try {
          clear(slot, overridesTable(await api.get(`/products/${encodeURIComponent(code)}/features/${encodeURIComponent(f.code)}/overrides`)));
        } catch (e) {
          clear(slot, problemBox(e));
        } finally {
          b.disabled = false;
        }
      }, {cls: 'small'});
      return b || '—';
    }},
  ], module.features, {empty: 'This module declares no feature.'});
  return [rows, slots];
}

function planCard(plan) {
  return h('div', {class: 'card plan', id: `plan-${plan.code}`},
    h('h3', {}, `${plan.name} (${plan.code})`),
    facts([
      ['Version', String(plan.version)],
      ['Trial', plan.trial_days ? `${plan.trial_days} days` : 'none'],
      plan.description ? ['About', plan.description] : null,
    ]),
    h('ul', {class: 'plan-features'}, (plan.features || []).map((f) => h('li', {}, `${f.name || f.code}: ${valueOf(f)}`))));
}

export async function product(main, {product: code}) {
  let p;
  let plans;
  try {
    [p, plans] = await Promise.all([api.get(`/products/${encodeURIComponent(code)}`),
      api.get(`/products/${encodeURIComponent(code)}/plans`)]);
  } catch (e) {
    main.append(heading(`Product ${code}`, link('#/catalog', 'Catalog')), problemBox(e));
    return;
  }
  main.append(
    heading(`${p.name} (${p.code})`, link('#/catalog', 'Catalog')),
    facts([
      ['Version', p.version],
      ['Generation', String(p.generation ?? '—')],
      ['Vendor', p.vendor || '—'],
      ['ABI', p.abi || '—'],
      ['Description', p.description || '—'],
      ['Actions', (p.actions || []).map((a) => a.name || a.code).join(', ') || '—'],
    ]),
    h('h2', {}, 'Modules and features'),
    ...(p.modules || []).map((m) => h('section', {class: 'module', 'aria-label': `Module ${m.name}`},
      h('h3', {}, `${m.name} (${m.code})`, m.depends && m.depends.length ? h('span', {class: 'muted small'}, ` needs ${m.depends.join(', ')}`) : null),
      m.description ? h('p', {class: 'muted'}, m.description) : null,
      featureRows(p.code, m))),
    h('h2', {}, 'Plans'),
    h('div', {class: 'cards'}, (plans.plans || []).map(planCard)));
}
