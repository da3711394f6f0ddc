// Instances: the list (status, product, environment and code filters, cursor pages) and one
// instance: its status and conditions kept live (the latest job's event stream while it runs,
// the entitlements stream always), the subscription's actions (suspend, resume, change plan,
// cancel) and delete, its entitlements with the source and reason of each value, its overrides
// (set, change the limit, expire, remove) and its jobs.

import * as api from '../api.js';
import {stream} from '../sse.js';
import {badge, clear, confirmDestructive, facts, fmtTime, form, guarded, h, heading, link, notice, pagedTable, problemBox,
  progress, showProblem, table} from '../ui.js';

// When the creation of an instance was clicked (performance.now()), by instance id, so its page
// can say how long it took to be shown active. Memory only.
export const provisionClicks = new Map();

const STATUSES = ['pending', 'provisioning', 'active', 'failed', 'suspended', 'deprovisioning', 'deleted'];
const BUSY = new Set(['pending', 'provisioning', 'deprovisioning']);

export function list(main) {
  const results = h('div', {});
  let filters = {};
  const first = pagedTable(results, (cursor) => api.get('/instances', {...filters, limit: 25, cursor}), [
    {label: 'Code', value: (i) => link(`#/instances/${i.id}`, i.code)},
    {label: 'Customer', value: (i) => link(`#/customers/${i.customer_id}`, i.customer_id.slice(0, 8))},
    {label: 'Product', value: (i) => i.product},
    {label: 'Plan', value: (i) => (i.subscription ? `${i.subscription.plan.code} v${i.subscription.plan.version}` : '—')},
    {label: 'Environment', value: (i) => i.environment || '—'},
    {label: 'Status', value: (i) => badge(i.status)},
    {label: 'Updated', value: (i) => fmtTime(i.updated_at)},
  ], 'No instances match.');
  const search = form({
    cls: 'inline',
    submit: 'Filter',
    fields: [
      {name: 'status', label: 'Status', type: 'select', options: [['', 'Any (but deleted)'], ...STATUSES.map((s) => [s, s])]},
      {name: 'product', label: 'Product', placeholder: 'vet'},
      {name: 'environment', label: 'Environment', type: 'select',
        options: [['', 'Any'], ...['production', 'staging', 'development', 'sandbox'].map((x) => [x, x])]},
      {name: 'code', label: 'Code'},
    ],
    onSubmit: async (v) => {
      filters = v;
      await first();
    },
  });
  main.append(heading('Instances'), search, results);
  first();
}

export async function show(main, {id}) {
  const streams = [];
  let inst = await api.get(`/instances/${id}`);
  let product = null;
  let watchedJob = null;
  let shownActive = false;

  const statusSlot = h('span', {id: 'instance-status'});
  const timing = h('p', {id: 'provision-time', class: 'muted', 'aria-live': 'polite'});
  const message = h('div', {'aria-live': 'polite'});
  const factsSlot = h('div', {});
  const condSlot = h('div', {});
  const actionsSlot = h('div', {class: 'actions'});
  const formSlot = h('div', {});
  const entSlot = h('div', {id: 'entitlements'});
  const entMeta = h('p', {class: 'muted small'});
  const ovSlot = h('div', {id: 'overrides'});
  const ovForm = h('div', {});
  const jobsSlot = h('div', {id: 'instance-jobs'});
  const liveJob = h('div', {id: 'live-job'});

  const fail = (e) => message.replaceChildren(problemBox(e));

  function renderInstance() {
    statusSlot.replaceChildren(badge(inst.status));
    const s = inst.subscription;
    factsSlot.replaceChildren(facts([
      ['Id', inst.id],
      ['Customer', link(`#/customers/${inst.customer_id}`, inst.customer_id)],
      ['Product', inst.product], ['Tier', inst.tier], ['Environment', inst.environment || '—'],
      ['Plan', s ? `${s.plan.code} v${s.plan.version}` : '—'],
      ['Subscription', s ? [badge(s.status), s.cancel_at_period_end ? ' cancels at the period end' : '',
        s.pending_change ? ` · pending: ${JSON.stringify(s.pending_change)}` : ''] : '—'],
      ['Period', s && s.current_period_end ? `${fmtTime(s.current_period_start)} → ${fmtTime(s.current_period_end)}` : '—'],
      ['Status reason', inst.status_reason || '—'],
      ['Database', inst.placement ? inst.placement.database_name : (inst.data_location ? inst.data_location.database : '—')],
      ['Updated', fmtTime(inst.updated_at)],
    ]));
    const conds = Array.isArray(inst.conditions) ? inst.conditions : [];
    condSlot.replaceChildren(table([
      {label: 'Condition', value: (c) => c.type},
      // Ready true is good news; Progressing and Degraded are when true
      {label: 'Status', value: (c) => h('span', {class: (c.type === 'Ready') === !!c.status ? 'cond-good' : 'cond-bad'},
        badge(c.status ? 'true' : 'false'))},
      {label: 'Reason', value: (c) => c.reason},
      {label: 'Message', value: (c) => c.message},
    ], conds, {empty: 'No conditions reported.'}));
    renderActions();
    if (inst.status === 'active' && !shownActive && provisionClicks.has(inst.id)) {
      shownActive = true;
      const ms = performance.now() - provisionClicks.get(inst.id);
      provisionClicks.delete(inst.id);
      timing.textContent = `Active ${(ms / 1000).toFixed(2)} s after the create click.`;
      timing.dataset.ms = String(Math.round(ms));
    }
  }

  async function reload() {
    inst = await api.get(`/instances/${id}`);
    renderInstance();
    watchLatestJob();
    loadJobs();
  }

  async function act(fn, done) {
    message.replaceChildren();
    try {
      await fn();
      notice(done);
      await reload();
      await loadOverrides();
    } catch (e) {
      fail(e);
    }
  }

  function renderActions() {
    const s = inst.subscription;
    const live = inst.status !== 'deleted' && inst.status !== 'deprovisioning';
    const btns = [];
    if (live && s && s.status !== 'suspended' && s.status !== 'canceled') {
      btns.push(guarded('subscriptions:manage', 'Suspend', () => act(() => api.post(`/instances/${id}/subscription/suspend`),
        'Subscription suspended.')));
    }
    if (live && s && s.status === 'suspended') {
      btns.push(guarded('subscriptions:manage', 'Resume', () => act(() => api.post(`/instances/${id}/subscription/resume`),
        'Subscription resumed.')));
    }
    if (live && s && s.status !== 'canceled') {
      btns.push(guarded('subscriptions:write', 'Change plan', () => planForm().catch(fail)));
      btns.push(guarded('subscriptions:write', 'Cancel subscription', async () => {
        const ok = await confirmDestructive({title: 'Cancel the subscription', typed: inst.code, action: 'Cancel subscription',
          message: `Cancel ${inst.code}'s subscription at the end of the current period (${fmtTime(s.current_period_end)}).`});
        if (ok) act(() => api.post(`/instances/${id}/subscription/cancel`, {at_period_end: true}), 'Subscription canceled.');
      }, {cls: 'danger'}));
    }
    if (live) {
      btns.push(guarded('instances:delete', 'Delete instance', async () => {
        const ok = await confirmDestructive({title: 'Delete the instance', typed: inst.code, action: 'Delete instance',
          message: `Deprovision ${inst.code}: its tenant data is archived (when the host archives) and removed. ` +
            'Its record, jobs and audit history stay.'});
        if (ok) act(() => api.del(`/instances/${id}`), 'Deprovisioning queued.');
      }, {cls: 'danger'}));
    }
    actionsSlot.replaceChildren(...btns.filter(Boolean));
  }

  async function planForm() {
    const {plans} = await api.get(`/products/${inst.product}/plans`);
    const f = form({
      submit: 'Change plan',
      fields: [
        {name: 'plan', label: 'New plan', type: 'select', required: true, value: inst.subscription.plan.code,
          options: plans.map((p) => [p.code, `${p.name} (${p.code} v${p.version})`])},
        {name: 'when', label: 'When', type: 'select', options: [['', 'Upgrades now, downgrades at the period end'],
          ['now', 'Now'], ['period_end', 'At the period end']]},
      ],
      onSubmit: async (v) => {
        const body = {plan: v.plan};
        if (v.when) body.when = v.when;
        await api.post(`/instances/${id}/subscription/plan`, body);
        formSlot.replaceChildren();
        notice('Plan changed.');
        await reload();
      },
      secondary: h('button', {type: 'button', onclick: () => formSlot.replaceChildren()}, 'Close'),
    });
    formSlot.replaceChildren(h('section', {class: 'card'}, h('h2', {}, 'Change plan'), f));
    f.inputs.plan.focus();
  }

  // The latest job's stream while it runs: its progress here, and the instance re-read on each
  // change, so the status turns active (or failed) without a reload.
  function watchLatestJob() {
    const j = inst.latest_job;
    if (!j || (j.status !== 'queued' && j.status !== 'running' && !BUSY.has(inst.status)) || watchedJob === j.id) return;
    watchedJob = j.id;
    const st = stream(`/jobs/${j.id}`, {
      onEvent: async ({data}) => {
        if (!data || typeof data !== 'object' || !data.id) return;
        const p = data.progress || {done: 0, total: 0};
        liveJob.replaceChildren(h('p', {}, `${data.kind} job `, link(`#/jobs/${data.id}`, data.id.slice(0, 8)), ' ',
          badge(data.status), ' ', progress(p.done, p.total, `${data.kind} progress`),
          data.last_error ? h('span', {class: 'field-error'}, ` ${data.last_error}`) : null));
        try { await reload(); } catch (e) { fail(e); }
      },
      onState: (state, err) => { if (err) fail(err); },
    });
    streams.push(st);
  }

  function renderEntitlements(ent) {
    entMeta.textContent = `Plan ${ent.plan.code} v${ent.plan.version} · subscription ${ent.subscription_status} · ` +
      `instance ${ent.instance_status} · version ${ent.version} · resolved ${fmtTime(ent.resolved_at)}` +
      (ent.valid_until ? ` · valid until ${fmtTime(ent.valid_until)}` : '');
    const rows = Object.entries(ent.features).map(([code, f]) => ({code, ...f}));
    entSlot.replaceChildren(table([
      {label: 'Feature', value: (f) => f.code},
      {label: 'Kind', value: (f) => f.kind},
      {label: 'Enabled', value: (f) => h('span', {'data-feature': f.code}, badge(f.enabled ? 'on' : 'off'))},
      {label: 'Limit', value: (f) => (f.kind === 'limit' && f.enabled ? h('span', {'data-limit': f.code}, String(f.value)) : '—')},
      {label: 'Source', value: (f) => f.source},
      {label: 'Reason', value: (f) => f.reason},
    ], rows, {empty: 'No features.'}));
    if (ent.instance_status !== inst.status) reload().catch(fail);
  }

  async function loadOverrides() {
    try {
      const {overrides} = await api.get(`/instances/${id}/overrides`, {include_expired: 'true'});
      ovSlot.replaceChildren(table([
        {label: 'Feature', value: (o) => o.feature},
        {label: 'Enabled', value: (o) => badge(o.enabled ? 'on' : 'off')},
        {label: 'Limit', value: (o) => (o.limit === null ? '—' : String(o.limit))},
        {label: 'Expires', value: (o) => (o.expires_at ? [fmtTime(o.expires_at), o.expired ? ' (expired)' : ''] : 'never')},
        {label: 'Reason', value: (o) => o.reason || '—'},
        {label: 'Set by', value: (o) => o.set_by},
        {label: '', value: (o) => h('div', {class: 'actions'},
          guarded('overrides:write', 'Change', () => overrideForm(o)),
          guarded('overrides:write', 'Expire now', () => act(() => api.put(`/instances/${id}/overrides/${o.feature}`,
            {enabled: o.enabled, limit: o.limit === null ? undefined : o.limit, expires_at: new Date().toISOString(),
              reason: o.reason}), `Override on ${o.feature} expired.`)),
          guarded('overrides:write', 'Remove', async () => {
            const ok = await confirmDestructive({title: 'Remove the override', typed: o.feature, action: 'Remove override',
              message: `${o.feature} goes back to what the plan says.`});
            if (ok) act(() => api.del(`/instances/${id}/overrides/${o.feature}`), `Override on ${o.feature} removed.`);
          }, {cls: 'danger'}))},
      ], overrides, {empty: 'No overrides: every value comes from the plan.'}));
    } catch (e) {
      showProblem(ovSlot, e);
    }
  }

  async function overrideForm(existing) {
    if (!product) product = await api.get(`/products/${inst.product}`);
    const features = product.modules.flatMap((m) => m.features);
    const f = form({
      submit: existing ? 'Save override' : 'Set override',
      fields: [
        {name: 'feature', label: 'Feature', type: 'select', required: true, value: existing ? existing.feature : '',
          options: features.map((x) => [x.code, `${x.name} (${x.code}, ${x.kind}${x.unit ? ', ' + x.unit : ''})`])},
        {name: 'enabled', label: 'Enabled', type: 'checkbox', value: existing ? existing.enabled : true},
        {name: 'limit', label: 'Limit (limits only)', type: 'number', min: '0',
          value: existing && existing.limit !== null ? existing.limit : ''},
        {name: 'expires_at', label: 'Expires at (empty: never)', type: 'datetime-local',
          value: existing && existing.expires_at ? existing.expires_at.slice(0, 16) : ''},
        {name: 'reason', label: 'Reason', value: existing ? existing.reason || '' : ''},
      ],
      onSubmit: async (v) => {
        const body = {enabled: v.enabled, reason: v.reason || null};
        if (v.limit !== null) body.limit = v.limit;
        if (v.expires_at) body.expires_at = new Date(v.expires_at).toISOString();
        await api.put(`/instances/${id}/overrides/${encodeURIComponent(v.feature)}`, body);
        ovForm.replaceChildren();
        notice(`Override on ${v.feature} saved.`);
        await loadOverrides();
      },
      secondary: h('button', {type: 'button', onclick: () => ovForm.replaceChildren()}, 'Close'),
    });
    if (existing) f.inputs.feature.disabled = true;
    ovForm.replaceChildren(h('section', {class: 'card'}, h('h2', {}, existing ? `Override on ${existing.feature}` : 'Set an override'), f));
    (existing ? f.inputs.enabled : f.inputs.feature).focus();
  }

  async function loadJobs() {
    try {
      const page = await api.get(`/instances/${id}/jobs`, {limit: 20});
      jobsSlot.replaceChildren(table([
        {label: 'Job', value: (j) => link(`#/jobs/${j.id}`, j.id.slice(0, 8))},
        {label: 'Kind', value: (j) => j.kind},
        {label: 'Status', value: (j) => badge(j.status)},
        {label: 'Progress', value: (j) => progress(j.progress ? j.progress.done : 0, j.progress ? j.progress.total : 0,
          `job ${j.id.slice(0, 8)} progress`)},
        {label: 'Attempts', value: (j) => `${j.attempts ?? 0}/${j.max_attempts ?? '—'}`},
        {label: 'Last error', value: (j) => j.last_error || '—'},
        {label: 'Created', value: (j) => fmtTime(j.created_at)},
      ], page.items, {empty: 'No jobs.'}));
    } catch (e) {
      showProblem(jobsSlot, e);
    }
  }

  const setOverride = guarded('overrides:write', 'Set override', () => overrideForm(null).catch(fail), {cls: 'primary'});
  clear(main,
    heading(h('span', {}, `Instance ${inst.code} `, statusSlot), actionsSlot),
    timing, message, formSlot, liveJob, factsSlot,
    h('h2', {}, 'Conditions'), condSlot,
    h('div', {class: 'page-head'}, h('h2', {}, 'Entitlements'), h('span', {class: 'muted small', id: 'ent-live'}, '')),
    entMeta, entSlot,
    h('div', {class: 'page-head'}, h('h2', {}, 'Overrides'), setOverride), ovForm, ovSlot,
    h('h2', {}, 'Jobs'), jobsSlot);
  renderInstance();
  watchLatestJob();
  loadJobs();
  if (inst.status !== 'deleted') {
    loadOverrides();
    const live = document.getElementById('ent-live');
    streams.push(stream(`/instances/${id}/entitlements`, {
      onEvent: ({data}) => { if (data && data.features) renderEntitlements(data); },
      onState: (state, err) => {
        live.textContent = state === 'open' ? '● live' : state === 'reconnecting' ? 'reconnecting…' : '';
        if (err) showProblem(entSlot, err);
      },
    }));
  } else {
    entSlot.replaceChildren(h('p', {class: 'muted'}, 'The instance was deleted: it has no entitlements or overrides.'));
  }
  return () => streams.forEach((s) => s.close());
}
