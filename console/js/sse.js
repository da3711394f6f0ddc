// Server-sent events over fetch(): EventSource cannot send an Authorization header, so the
// stream is read from a ReadableStream and parsed here (id:, event:, data:, retry:, comments),
// and a dropped stream is reopened with Last-Event-ID, after a refresh when it met 401.

import {accessToken, ApiError, refresh} from './api.js';

// Opens `path` (under /api/v1) and calls onEvent({id, event, data}) per event, data parsed as
// JSON when it is JSON. onState('open' | 'reconnecting' | 'closed', error?) follows the stream.
// Returns {close()}. A 4xx other than 401 ends the stream with its ApiError; 204 (the server's
// "nothing more", as for a finished job) ends it quietly.
export function stream(path, {onEvent, onState = () => {}} = {}) {
  let closed = false;
  let lastId = null;
  let retryMs = 1000;
  let ctrl = null;
  let refreshed = false;

  function dispatch(ev) {
    if (ev.data === null) return;
    let data = ev.data;
    try { data = JSON.parse(ev.data); } catch { /* not JSON: the text */ }
    if (ev.id !== null) lastId = ev.id;
    onEvent({id: ev.id !== null ? ev.id : lastId, event: ev.event || 'message', data});
  }

  async function run() {
    while (!closed) {
      ctrl = new AbortController();
      const headers = {Accept: 'text/event-stream'};
      const tok = accessToken();
      if (tok) headers.Authorization = 'Bearer ' + tok;
      if (lastId !== null) headers['Last-Event-ID'] = lastId;
      let res;
      try {
        res = await fetch('/api/v1' + path, {headers, signal: ctrl.signal, cache: 'no-store'});
      } catch {
        res = null;
      }
      if (closed) return;
      if (res && res.status === 204) { // the server has nothing more for this stream (a finished job)
        closed = true;
        onState('closed');
        return;
      }
      if (res && res.status === 401 && !refreshed) {
        refreshed = true;
        await refresh();
        continue;
      }
      if (res && !res.ok && res.status < 500 && res.status !== 429) {
        let p = {};
        try { p = await res.json(); } catch { /* no body */ }
        closed = true;
        onState('closed', new ApiError({status: res.status, type: p.type || '', title: p.title || res.statusText,
          detail: p.detail || '', errors: p.errors || []}));
        return;
      }
      if (res && res.ok && res.body) {
        refreshed = false;
        onState('open');
        try { await read(res.body); } catch { /* dropped: reconnect below */ }
      }
      if (closed) return;
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }

  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ev = {id: null, event: null, data: null};
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          dispatch(ev);
          ev = {id: null, event: null, data: null};
          continue;
        }
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? '' : line.slice(c + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'data') ev.data = ev.data === null ? val : ev.data + '\n' + val;
        else if (field === 'event') ev.event = val;
        else if (field === 'id' && !val.includes('\0')) ev.id = val;
        else if (field === 'retry' && /^\d+$/.test(val)) retryMs = Number(val);
      }
    }
  }

  run();
  return {
    close() {
      closed = true;
      if (ctrl) ctrl.abort();
      onState('closed');
    },
  };
}
