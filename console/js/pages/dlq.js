// The dead-letter queue (GET /dlq, ?include_closed=true for replayed and discarded entries), one
// entry inspected (its reason, the attempts it recorded and its job's attempt history), replay
// (POST /dlq/{id}/replay: a new round of the job) and discard (DELETE /dlq/{id}), each behind a
// typed confirmation and the dlq:write permission. The API has no GET of one entry: the page
// finds it in the list with the closed entries included.

import * as api from '../api.js';
import {badge, clear, confirmDestructive, facts, fmtTime, guarded, h, heading, link, notice, problemBox, table} from '../ui.js';
import {fetchJob, historyTable} from './job.js';

const short = (id) => String(id || '').slice(0, 8);
let showClosed = false;

async function replay(d, slot, after) {
  const ok = await confirmDestructive({
    title: 'Replay this dead letter?',
    message: `Job ${short(d.job_id)} (${d.kind}) runs again from its last completed step, with a fresh attempt budget.`,
    typed: short(d.id),
    action: 'Replay',
  });
  if (!ok) return;
  try {
    const r = await api.post(`/dlq/${encodeURIComponent(d.id)}/replay`);
    await after();
    notice(r && r.replayed_now === false ? `Dead letter ${short(d.id)} was already replayed.`
      : `Replayed: job ${short(d.job_id)} is queued again.`);
  } catch (e) {
    clear(slot, problemBox(e));
  }
}

async function discard(d, slot, after) {
  const ok = await confirmDestructive({
    title: 'Discard this dead letter?',
    message: `Job ${short(d.job_id)} stays failed and the entry can no longer be replayed.`,
    typed: short(d.id),
    action: 'Discard',
  });
  if (!ok) return;
  try {
    await api.del(`/dlq/${encodeURIComponent(d.id)}`);
    await after();
    notice(`Dead letter ${short(d.id)} discarded.`);
  } catch (e) {
    clear(slot, problemBox(e));
  }
}

function actions(d, slot, after) {
  if (d.state !== 'open') return null;
  return h('span', {class: 'actions'},
    guarded('dlq:write', 'Replay', () => replay(d, slot, after), {cls: 'primary'}),
    guarded('dlq:write', 'Discard', () => discard(d, slot, after), {cls: 'danger'}));
}

export async function list(main) {
  const problems = h('div', {});
  const slot = h('div', {id: 'dlq-list'});
  const closed = h('input', {type: 'checkbox', id: 'dlq-closed', checked: showClosed});
  const load = async () => {
    clear(problems);
    let items;
    try {
      items = (await api.get('/dlq', {include_closed: showClosed ? 'true' : ''})).items;
    } catch (e) {
      clear(problems, problemBox(e));
      return;
    }
    items.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    clear(slot, table([
      {label: 'Failed', value: (d) => fmtTime(d.created_at)},
      {label: 'Entry', value: (d) => link('#/dlq/' + encodeURIComponent(d.id), `Inspect ${short(d.id)}`)},
      {label: 'Kind', value: (d) => d.kind},
      {label: 'Job', value: (d) => link('#/jobs/' + encodeURIComponent(d.job_id), short(d.job_id))},
      {label: 'Attempts', value: (d) => String(Array.isArray(d.attempts) ? d.attempts.length : d.attempts ?? '—')},
      {label: 'Reason', value: (d) => h('span', {class: 'error-text'}, d.reason || '—')},
      {label: 'State', value: (d) => badge(d.state)},
      {label: 'Actions', value: (d) => actions(d, problems, load) || '—'},
    ], items, {empty: showClosed ? 'The dead-letter queue has never held an entry.' : 'No open dead letter: every job that failed for good was replayed or discarded.'}));
  };
  closed.addEventListener('change', () => { showClosed = closed.checked; load(); });
  main.append(heading('Dead-letter queue',
    h('span', {class: 'field-checkbox inline-check'}, closed, h('label', {for: 'dlq-closed'}, 'Show replayed and discarded'))),
  problems, slot);
  await load();
}

// The attempts a dead letter recorded: whatever the worker kept per attempt.
function attemptsTable(attempts) {
  if (!Array.isArray(attempts)) return null;
  return table([
    {label: 'Attempt', value: (a) => String(a.attempt ?? '—')},
    {label: 'Step', value: (a) => a.step || '—'},
    {label: 'At', value: (a) => fmtTime(a.at || a.finished_at)},
    {label: 'Error', value: (a) => h('span', {class: 'error-text'}, a.error || a.reason || '—')},
  ], attempts, {empty: 'No attempt recorded.', caption: 'Attempts recorded with the dead letter'});
}

export async function show(main, {id}) {
  const problems = h('div', {});
  const slot = h('div', {id: 'dlq-entry'});
  main.append(heading(`Dead letter ${short(id)}`, link('#/dlq', 'Dead-letter queue')), problems, slot);
  const load = async () => {
    let d;
    try {
      d = (await api.get('/dlq', {include_closed: 'true'})).items.find((x) => String(x.id) === id);
    } catch (e) {
      clear(problems, problemBox(e));
      return;
    }
    if (!d) {
      clear(slot, problemBox({title: 'Dead letter not found', detail: `No dead letter ${id} is visible to this credential.`}));
      return;
    }
    let job = null;
    let jobProblem = null;
    try { job = await fetchJob(d.job_id); } catch (e) { jobProblem = e; }
    clear(slot,
      facts([
        ['State', badge(d.state)],
        ['Kind', d.kind],
        ['Job', link('#/jobs/' + encodeURIComponent(d.job_id), d.job_id)],
        ['Instance', link('#/instances/' + encodeURIComponent(d.instance_id), d.instance_id)],
        ['Reason', h('span', {class: 'error-text', id: 'dlq-reason'}, d.reason || '—')],
        ['Failed', fmtTime(d.created_at)],
        ['Subject', `${d.subject || '—'} (stream sequence ${d.stream_sequence ?? '—'})`],
        d.replayed_at ? ['Replayed', `${fmtTime(d.replayed_at)} by ${d.replayed_by || '—'}`] : null,
        d.discarded_at ? ['Discarded', `${fmtTime(d.discarded_at)} by ${d.discarded_by || '—'}`] : null,
      ]),
      h('div', {class: 'actions'}, actions(d, problems, load)),
      h('h2', {}, 'Attempts'),
      attemptsTable(d.attempts),
      h('h2', {}, 'The job'),
      job ? [h('p', {}, 'The job is now ', badge(job.status), '.'), historyTable(job.history || [], 'Attempt history of the job')] : problemBox(jobProblem));
  };
  await load();
}
