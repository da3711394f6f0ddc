// The global job list (GET /jobs), newest first, with its filters (status, kind, product,
// instance, customer, created after/before) and "Load more" following next_cursor. The filters
// are kept in this module while the page is open in the tab, so going back from a job keeps them.
// A bad filter value is shown beside its field (the API names it in errors[0].parameter).

import * as api from '../api.js';
import {badge, clear, fmtTime, form, h, heading, link, table} from '../ui.js';
import {jobProgress} from './job.js';

export {show} from './job.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed'];
const KINDS = ['provision', 'deprovision', 'suspend', 'resume', 'features_changed', 'action'];
const kept = {};

// A datetime-local value (the browser's time zone) as RFC 3339 UTC; '' stays ''.
export function isoOf(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString();
}

// A filter form over a cursor-paged list (GET `path`), newest first, with "Load more" following
// next_cursor. The filter values are kept in `kept` (an object the page module holds) so going
// back to the page keeps them; query(values) turns them into the request's parameters.
export async function filteredList(main, {title, submit, fields, kept, path, query, columns, empty, secondary}) {
  const results = h('div', {class: 'results'});
  const more = h('div', {class: 'buttons'});
  const f = form({
    cls: 'inline filters', submit, secondary,
    fields: fields.map((fd) => ({...fd, value: kept[fd.name]})),
    onSubmit: async (v) => {
      Object.assign(kept, v);
      await load(v, null);
    },
  });
  main.append(heading(title), f, results, more);

  async function load(v, cursor) {
    const page = await api.get(path, {...query(v), cursor, limit: 50});
    const rows = table(columns, page.items, {empty});
    const body = results.querySelector('tbody');
    const added = rows.querySelector('tbody');
    if (cursor && body && added) body.append(...added.children);
    else clear(results, rows);
    clear(more, page.next_cursor
      ? h('button', {type: 'button', class: 'more', onclick: () => load(v, page.next_cursor).catch((e) => f.showProblem(e))}, 'Load more')
      : null);
  }

  try {
    await load(f.values(), null);
  } catch (e) {
    f.showProblem(e);
  }
  return f;
}

const choices = (values, any) => [['', any], ...values.map((v) => [v, v])];
export const trimmed = (v, names) => Object.fromEntries(names.map((n) => [n, v[n].trim()]));

export function list(main) {
  const short = (id) => String(id).slice(0, 8);
  return filteredList(main, {
    title: 'Jobs',
    submit: 'Filter',
    kept,
    path: '/jobs',
    fields: [
      {name: 'status', label: 'Status', type: 'select', options: choices(STATUSES, 'Any status')},
      {name: 'kind', label: 'Kind', type: 'select', options: choices(KINDS, 'Any kind')},
      {name: 'product', label: 'Product'},
      {name: 'instance_id', label: 'Instance id'},
      {name: 'customer_id', label: 'Customer id'},
      {name: 'created_after', label: 'Created after', type: 'datetime-local'},
      {name: 'created_before', label: 'Created before', type: 'datetime-local'},
    ],
    query: (v) => ({status: v.status, kind: v.kind, ...trimmed(v, ['product', 'instance_id', 'customer_id']),
      created_after: isoOf(v.created_after), created_before: isoOf(v.created_before)}),
    columns: [
      {label: 'Created', value: (j) => fmtTime(j.created_at)},
      {label: 'Job', value: (j) => link('#/jobs/' + encodeURIComponent(j.id), `${j.kind} ${short(j.id)}`)},
      {label: 'Status', value: (j) => badge(j.status)},
      {label: 'Product', value: (j) => j.product || '—'},
      {label: 'Instance', value: (j) => link('#/instances/' + encodeURIComponent(j.instance_id), short(j.instance_id))},
      {label: 'Progress', value: (j) => jobProgress(j, `Steps done of job ${short(j.id)}`)},
      {label: 'Attempts', value: (j) => `${j.attempts ?? 0}/${j.max_attempts ?? '—'}`},
      {label: 'Last error', value: (j) => j.last_error ? h('span', {class: 'error-text'}, j.last_error) : '—'},
    ],
    empty: 'No job matches these filters.',
  });
}

