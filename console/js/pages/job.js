// One job: its facts, a progress bar and its steps, kept up to date by the job's event stream
// (GET /jobs/{id} with Accept: text/event-stream; every `event: job` carries the whole job, other
// event types are ignored), its attempt history across replays and its errors. The stream is
// closed once the job ends (the server ends it too) and when the user navigates away.

import * as api from '../api.js';
import {stream} from '../sse.js';
import {badge, clear, facts, fmtTime, h, heading, link, problemBox, table} from '../ui.js';

const FINAL = new Set(['succeeded', 'failed']);

// Steps done: succeeded, or skipped because the generation that ran the job no longer has them.
export function stepsDone(job) {
  const steps = job.steps || [];
  if (steps.length === 0) return job.progress ? [job.progress.done, job.progress.total] : [0, 0];
  return [steps.filter((s) => s.status === 'succeeded' || s.status === 'skipped').length, steps.length];
}

export function jobProgress(job, label) {
  const [done, total] = stepsDone(job);
  return h('span', {class: 'job-progress', 'data-done': String(done), 'data-total': String(total)},
    h('progress', {max: String(Math.max(total, 1)), value: String(done), 'aria-label': label || 'Steps done'}),
    h('span', {class: 'muted'}, ` ${total ? Math.round((100 * done) / total) : 0}% (${done}/${total} steps)`));
}

const short = (id) => String(id || '').slice(0, 8);

function stepsTable(job) {
  return table([
    {label: '#', value: (s) => String(s.position)},
    {label: 'Step', value: (s) => s.name},
    {label: 'Status', value: (s) => badge(s.status)},
    {label: 'Attempts', value: (s) => String(s.attempts ?? 0)},
    {label: 'Started', value: (s) => fmtTime(s.started_at)},
    {label: 'Finished', value: (s) => fmtTime(s.finished_at)},
    {label: 'Error or note', value: (s) => s.last_error ? h('span', {class: 'error-text'}, s.last_error) : (s.note ? String(s.note) : '—')},
  ], job.steps, {empty: 'The job has no steps yet.'});
}

// Every attempt of every round (a replay starts a new round), in the order they ended.
export function historyTable(history, caption) {
  return table([
    {label: 'Round', value: (a) => String(a.round ?? 0)},
    {label: 'Attempt', value: (a) => String(a.attempt)},
    {label: 'Outcome', value: (a) => badge(a.outcome)},
    {label: 'Step', value: (a) => a.step || '—'},
    {label: 'Product', value: (a) => a.product_version ? `${a.product_version} (generation ${a.generation ?? '—'})` : '—'},
    {label: 'Started', value: (a) => fmtTime(a.started_at)},
    {label: 'Ended', value: (a) => fmtTime(a.finished_at || a.at)},
    {label: 'Error', value: (a) => a.error ? h('span', {class: 'error-text'}, a.error, a.retryable === false ? ' (not retryable)' : '') : '—'},
  ], history, {empty: 'No attempt has ended yet.', caption: caption || null});
}

function render(slot, job) {
  clear(slot,
    facts([
      ['Status', badge(job.status)],
      ['Kind', job.kind],
      ['Product', job.product || '—'],
      ['Instance', link('#/instances/' + encodeURIComponent(job.instance_id), job.instance_id)],
      ['Attempts', `${job.attempts ?? 0} of ${job.max_attempts ?? '—'}` + (job.replays ? `, replayed ${job.replays}×` : '')],
      ['Progress', jobProgress(job)],
      ['Created', fmtTime(job.created_at)],
      ['Started', fmtTime(job.started_at)],
      ['Finished', fmtTime(job.finished_at)],
      ['Correlation id', job.correlation_id || '—'],
      ['Trace id', job.trace_id || '—'],
      job.last_error ? ['Last error', h('span', {class: 'error-text', id: 'job-last-error'}, job.last_error)] : null,
    ]),
    h('h2', {}, 'Steps'), stepsTable(job),
    h('h2', {}, 'Attempts'), historyTable(job.history || []));
}

export async function show(main, {id}) {
  const live = h('span', {class: 'live muted', role: 'status', id: 'job-live'}, 'Connecting…');
  const slot = h('div', {id: 'job'});
  const problems = h('div', {});
  main.append(heading(`Job ${short(id)}`, live, link('#/jobs', 'All jobs')), problems, slot);
  let s = null;
  let ended = false;
  s = stream(`/jobs/${encodeURIComponent(id)}`, {
    onEvent: ({event, data}) => {
      if (event !== 'job' || !data || typeof data !== 'object') return; // e.g. `event: step`
      render(slot, data);
      if (FINAL.has(data.status)) {
        ended = true;
        live.textContent = `Finished: ${data.status}`;
        if (s) s.close();
      }
    },
    onState: (state, err) => {
      if (ended) return;
      if (state === 'open') { live.textContent = 'Live'; clear(problems); }
      else if (state === 'reconnecting') live.textContent = 'Reconnecting…';
      else if (state === 'closed') {
        live.textContent = 'Not following';
        if (err) clear(problems, problemBox(err));
      }
    },
  });
  return () => { ended = true; s.close(); };
}

// The job as JSON once (for pages that show a job without following it).
export const fetchJob = (id) => api.get(`/jobs/${encodeURIComponent(id)}`);
