// Audit search (GET /audit): by actor ("Me" fills in the signed-in credential's subject),
// action, entity type and id, result, customer, instance and a time window (since/until, in the
// browser's time zone, sent as UTC), newest first, "Load more" following next_cursor. A bad
// value is shown beside its field.

import * as api from '../api.js';
import {badge, fmtTime, h, link} from '../ui.js';
import {filteredList, isoOf, trimmed} from './jobs.js';

const kept = {};

function entity(e) {
  const id = e.entity_id || '';
  const to = {instance: '#/instances/', customer: '#/customers/', job: '#/jobs/', dlq: '#/dlq/'}[e.entity_type];
  return h('span', {}, e.entity_type, id ? ' ' : '', id ? (to ? link(to + encodeURIComponent(id), id) : h('code', {}, id)) : null);
}

function details(d) {
  if (d === null || d === undefined) return '—';
  const text = typeof d === 'string' ? d : JSON.stringify(d);
  return h('code', {class: 'small details'}, text.length > 240 ? text.slice(0, 240) + '…' : text);
}

export function search(main) {
  let f = null;
  const me = h('button', {type: 'button', id: 'audit-me', onclick: () => {
    const s = api.current();
    if (s && f) f.inputs.actor.value = s.me.subject;
  }}, 'Me');
  const done = filteredList(main, {
    title: 'Audit',
    submit: 'Search',
    secondary: me,
    kept,
    path: '/audit',
    fields: [
      {name: 'actor', label: 'Actor', placeholder: 'user:… or key:…'},
      {name: 'action', label: 'Action', placeholder: 'e.g. dlq.replay'},
      {name: 'entity_type', label: 'Entity type'},
      {name: 'entity_id', label: 'Entity id'},
      {name: 'result', label: 'Result', type: 'select',
        options: [['', 'Any result'], ['success', 'success'], ['failure', 'failure'], ['denied', 'denied']]},
      {name: 'customer_id', label: 'Customer id'},
      {name: 'instance_id', label: 'Instance id'},
      {name: 'since', label: 'Since', type: 'datetime-local'},
      {name: 'until', label: 'Until', type: 'datetime-local'},
    ],
    query: (v) => ({...trimmed(v, ['actor', 'action', 'entity_type', 'entity_id', 'customer_id', 'instance_id']),
      result: v.result, since: isoOf(v.since), until: isoOf(v.until)}),
    columns: [
      {label: 'When', value: (e) => fmtTime(e.at)},
      {label: 'Actor', value: (e) => h('code', {}, e.actor)},
      {label: 'Action', value: (e) => e.action},
      {label: 'Entity', value: entity},
      {label: 'Result', value: (e) => badge(e.result)},
      {label: 'Reason', value: (e) => e.reason ? h('span', {class: 'error-text'}, e.reason) : '—'},
      {label: 'Request', value: (e) => h('code', {class: 'small'}, e.request_id || '—')},
      {label: 'Details', value: (e) => details(e.details)},
    ],
    empty: 'No audit entry matches.',
  });
  return done.then((form) => { f = form; });
}
