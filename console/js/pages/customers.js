// Customers: the list (search, status and country filters, cursor pages), the create page, and one
// customer with its instances and the form that creates an instance on it (product and plan from
// the catalog, the product's settings from its settings schema).

import * as api from '../api.js';
import {provisionClicks} from './instances.js';
import {badge, confirmDestructive, facts, fmtTime, form, guarded, h, heading, link, notice, pagedTable, problemBox,
  showProblem, table} from '../ui.js';

const STATUSES = [['', 'Any status'], ['active', 'active'], ['suspended', 'suspended'], ['closed', 'closed']];

export function list(main) {
  const results = h('div', {id: 'customer-results'});
  let filters = {};
  const first = pagedTable(results, (cursor) => api.get('/customers', {...filters, limit: 25, cursor}), [
    {label: 'Legal name', value: (c) => link(`#/customers/${c.id}`, c.legal_name)},
    {label: 'Tax id', value: (c) => c.tax_id},
    {label: 'Country', value: (c) => c.country},
    {label: 'Status', value: (c) => badge(c.status)},
    {label: 'Created', value: (c) => fmtTime(c.created_at)},
  ], 'No customers match.');
  const search = form({
    cls: 'inline',
    submit: 'Search',
    fields: [
      {name: 'q', label: 'Legal name contains', type: 'search'},
      {name: 'tax_id', label: 'Tax id'},
      {name: 'status', label: 'Status', type: 'select', options: STATUSES},
      {name: 'country', label: 'Country', placeholder: 'CO'},
    ],
    onSubmit: async (v) => {
      filters = v;
      await first();
    },
  });
  const create = guarded('customers:create', 'New customer', () => { location.hash = '#/customers/new'; }, {cls: 'primary'});
  main.append(heading('Customers', create), search, results);
  first();
}

export function create(main) {
  const f = form({
    submit: 'Create customer',
    fields: [
      {name: 'legal_name', label: 'Legal name', required: true},
      {name: 'tax_id', label: 'Tax id', required: true, help: 'Letters, digits, . / -; unique within the country.'},
      {name: 'country', label: 'Country', required: true, placeholder: 'CO', help: 'ISO 3166 two-letter code, upper case.'},
      {name: 'contact_name', label: 'Contact name'},
      {name: 'contact_email', label: 'Contact e-mail', type: 'email'},
      {name: 'contact_phone', label: 'Contact phone', type: 'tel'},
    ],
    onSubmit: async (v) => {
      const contact = {};
      for (const k of ['name', 'email', 'phone']) if (v['contact_' + k]) contact[k] = v['contact_' + k];
      const body = {legal_name: v.legal_name, tax_id: v.tax_id, country: v.country};
      if (Object.keys(contact).length) body.contact = contact;
      const c = await api.post('/customers', body);
      location.hash = `#/customers/${c.id}`;
    },
  });
  main.append(heading('New customer'), f);
  f.inputs.legal_name.focus();
}

// The instance-create form for customer c: products from the catalog, that product's plans, and
// its settings schema's properties as fields.
async function instanceForm(c, slot) {
  const {products} = await api.get('/products');
  const productSel = h('select', {id: 'new-instance-product', name: 'product', required: true},
    products.map((p) => h('option', {value: p.code}, `${p.name} (${p.code})`)));
  const holder = h('div', {});
  let generation = 0;
  // The form for the selected product; the answers for a product chosen before are dropped.
  const build = async () => {
    const mine = ++generation;
    const code = productSel.value;
    holder.replaceChildren(h('p', {class: 'muted'}, `Loading ${code}'s plans and settings…`));
    const product = await api.get(`/products/${code}`);
    const {plans} = await api.get(`/products/${code}/plans`);
    if (mine !== generation) return;
    const props = (product.settings_schema && product.settings_schema.properties) || {};
    const required = (product.settings_schema && product.settings_schema.required) || [];
    const settingFields = Object.entries(props)
      .filter(([, s]) => ['string', 'integer', 'number'].includes(s.type) || s.enum)
      .map(([name, s]) => ({
        name: 'settings_' + name, label: s.title || name, required: required.includes(name),
        type: s.enum ? 'select' : s.type === 'string' ? (s.format === 'email' ? 'email' : 'text') : 'number',
        options: s.enum ? [['', '(default)'], ...s.enum.map((x) => [x, x])] : undefined,
        help: [s.description, s.default !== undefined ? `Default: ${s.default}` : null].filter(Boolean).join(' · ') || undefined,
      }));
    const f = form({
      submit: 'Create instance',
      fields: [
        {name: 'code', label: 'Code', required: true, help: 'Lower case, unique within the customer: norte, sur.'},
        {name: 'plan', label: 'Plan', type: 'select', required: true,
          options: plans.map((p) => [p.code, `${p.name} (${p.code} v${p.version})`])},
        {name: 'tier', label: 'Tier', type: 'select', options: [['standard', 'Standard (shared database)'],
          ['enterprise', 'Enterprise (own database)']]},
        {name: 'environment', label: 'Environment', type: 'select',
          options: ['production', 'staging', 'development', 'sandbox'].map((x) => [x, x])},
        ...settingFields,
      ],
      onSubmit: async (v) => {
        const settings = {};
        for (const fd of settingFields) {
          const val = v[fd.name];
          if (val !== '' && val !== null && val !== undefined) settings[fd.name.slice(9)] = val;
        }
        const started = performance.now();
        const inst = await api.post(`/customers/${c.id}/instances`, {code: v.code, product: code, plan: v.plan,
          tier: v.tier, environment: v.environment, settings});
        provisionClicks.set(inst.id, started);
        location.hash = `#/instances/${inst.id}`;
      },
    });
    holder.replaceChildren(f);
  };
  productSel.addEventListener('change', () => build().catch((e) => showProblem(holder, e)));
  slot.replaceChildren(h('section', {class: 'card', 'aria-labelledby': 'new-instance-h'},
    h('h2', {id: 'new-instance-h'}, `New instance for ${c.legal_name}`),
    h('div', {class: 'field'}, h('label', {for: 'new-instance-product'}, 'Product'), productSel),
    holder));
  await build();
}

export async function show(main, {id}) {
  const c = await api.get(`/customers/${id}`);
  const formSlot = h('div', {});
  const instancesSlot = h('div', {});
  const newInstance = guarded('instances:create', 'New instance', () => {
    instanceForm(c, formSlot).then(() => formSlot.querySelector('input, select').focus())
      .catch((e) => showProblem(formSlot, e));
  }, {cls: 'primary'});
  const del = guarded('customers:delete', 'Delete customer', async () => {
    const ok = await confirmDestructive({title: 'Delete customer', typed: c.legal_name, action: 'Delete customer',
      message: `${c.legal_name} and the records of its deleted instances go; the audit log keeps its history. ` +
        'A customer with live instances, running jobs, live API keys or active users cannot be deleted.'});
    if (!ok) return;
    try {
      await api.del(`/customers/${c.id}`);
      location.hash = '#/customers';
      notice(`Customer ${c.legal_name} deleted.`);
    } catch (e) {
      formSlot.replaceChildren(problemBox(e));
    }
  }, {cls: 'danger'});
  main.append(
    heading(c.legal_name, newInstance, del),
    facts([
      ['Id', c.id], ['Tax id', c.tax_id], ['Country', c.country], ['Status', badge(c.status)],
      ['Contact', [c.contact.name, c.contact.email, c.contact.phone].filter(Boolean).join(' · ') || '—'],
      ['Created', fmtTime(c.created_at)], ['Updated', fmtTime(c.updated_at)],
    ]),
    formSlot,
    h('h2', {}, 'Instances'),
    instancesSlot);
  try {
    const page = await api.get(`/customers/${id}/instances`, {limit: 100});
    instancesSlot.replaceChildren(table([
      {label: 'Code', value: (i) => link(`#/instances/${i.id}`, i.code)},
      {label: 'Product', value: (i) => i.product},
      {label: 'Plan', value: (i) => (i.subscription ? `${i.subscription.plan.code} v${i.subscription.plan.version}` : '—')},
      {label: 'Tier', value: (i) => i.tier},
      {label: 'Environment', value: (i) => i.environment || '—'},
      {label: 'Status', value: (i) => badge(i.status)},
      {label: 'Updated', value: (i) => fmtTime(i.updated_at)},
    ], page.items, {empty: 'No instances yet.'}));
  } catch (e) {
    showProblem(instancesSlot, e);
  }
}
