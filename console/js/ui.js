// Building blocks for pages: elements from data with textContent only (never innerHTML with
// anything the API sent), tables, labelled forms whose fields show the problem's errors[]
// beside them, problem boxes, permission guards and the typed confirmation for destructive acts.

import {can} from './api.js';

// h('button', {class: 'danger', onclick: fn, disabled: true}, 'Delete'): attributes beginning
// with "on" are listeners; strings and numbers among children become text nodes.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function link(hash, text, attrs = {}) { return h('a', {href: hash, ...attrs}, text); }

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function badge(status) {
  return h('span', {class: 'badge badge-' + String(status || 'unknown').replace(/[^a-z0-9-]/gi, '')}, String(status ?? '—'));
}

export function progress(done, total, label) {
  const p = h('progress', {max: String(Math.max(total, 1)), value: String(done), 'aria-label': label || 'Progress'});
  return h('span', {class: 'progress'}, p, h('span', {class: 'muted'}, ` ${done}/${total}`));
}

// A page's title and its actions row.
export function heading(title, ...actions) {
  return h('div', {class: 'page-head'}, h('h1', {}, title), h('div', {class: 'actions'}, ...actions));
}

// columns: [{label, value: (row) => Node | string}]; rows: array.
export function table(columns, rows, {empty = 'Nothing here yet.', caption} = {}) {
  if (!rows || rows.length === 0) return h('p', {class: 'muted empty'}, empty);
  return h('div', {class: 'table-wrap'},
    h('table', {},
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {scope: 'col'}, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', {'data-label': c.label}, c.value(r))))))));
}

// A table of cursor pages in `slot`, with previous and next buttons: fetchPage(cursor) answers
// {items, next_cursor}. Returns first(), which shows the first page (again, after a filter changed).
export function pagedTable(slot, fetchPage, columns, empty) {
  const cursors = [];
  const show = async (cursor) => {
    try {
      const page = await fetchPage(cursor);
      slot.replaceChildren(table(columns, page.items, {empty}), h('div', {class: 'buttons pager'},
        cursors.length ? h('button', {type: 'button', onclick: () => show(cursors.pop() || undefined)}, 'Previous page') : null,
        page.next_cursor ? h('button', {type: 'button', onclick: () => { cursors.push(cursor || ''); show(page.next_cursor); }},
          'Next page') : null));
    } catch (e) {
      showProblem(slot, e);
    }
  };
  return () => { cursors.length = 0; return show(); };
}

// A definition list from [label, value] pairs.
export function facts(pairs) {
  return h('dl', {class: 'facts'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

// The problem's title and detail, as an alert.
export function problemBox(err) {
  const title = err && err.title ? err.title : 'Error';
  const box = h('div', {class: 'problem', role: 'alert'},
    h('strong', {class: 'problem-title'}, title),
    err && err.detail ? h('p', {class: 'problem-detail'}, err.detail) : null);
  if (err && err.status) box.dataset.status = String(err.status);
  if (err && err.retryAfter !== null && err.retryAfter !== undefined) {
    box.append(h('p', {class: 'problem-retry'}, `Try again in ${err.retryAfter} seconds.`));
  }
  return box;
}

// Shows err in `slot` (an element kept for messages); returns err for chaining.
export function showProblem(slot, err) {
  clear(slot, problemBox(err));
  return err;
}

let fieldSeq = 0;

// fields: [{name, label, type ('text'|'email'|'password'|'number'|'select'|'checkbox'|'textarea'|
// 'datetime-local'), required, options: [[value, label]], value, help, autocomplete}]
// onSubmit(values, form) may throw an ApiError: its errors[] are placed beside their fields
// (pointer "#/legal_name" or "/legal_name"), the rest above the buttons.
export function form({fields, submit = 'Save', onSubmit, cls = '', secondary = null}) {
  const f = h('form', {class: 'form ' + cls, novalidate: true});
  const inputs = {};
  const errs = {};
  for (const fd of fields) {
    const id = `f${++fieldSeq}-${fd.name}`;
    let input;
    if (fd.type === 'select') {
      input = h('select', {id, name: fd.name, required: fd.required},
        (fd.options || []).map(([v, l]) => h('option', {value: v, selected: String(fd.value) === String(v)}, l)));
    } else if (fd.type === 'textarea') {
      input = h('textarea', {id, name: fd.name, required: fd.required, rows: '4'});
      input.value = fd.value ?? '';
    } else {
      input = h('input', {id, name: fd.name, type: fd.type || 'text', required: fd.required,
        autocomplete: fd.autocomplete, placeholder: fd.placeholder, min: fd.min, step: fd.step});
      if (fd.type === 'checkbox') input.checked = !!fd.value;
      else if (fd.value !== undefined && fd.value !== null) input.value = fd.value;
    }
    const err = h('p', {class: 'field-error', id: id + '-err', 'aria-live': 'polite'});
    input.setAttribute('aria-describedby', id + '-err');
    inputs[fd.name] = input;
    errs[fd.name] = err;
    f.append(h('div', {class: 'field field-' + (fd.type || 'text')},
      h('label', {for: id}, fd.label, fd.required ? h('span', {class: 'req', 'aria-hidden': 'true'}, ' *') : null),
      input, err, fd.help ? h('p', {class: 'help'}, fd.help) : null));
  }
  const general = h('div', {class: 'form-problem'});
  const button = h('button', {type: 'submit', class: 'primary'}, submit);
  f.append(general, h('div', {class: 'buttons'}, button, secondary));
  f.values = () => {
    const out = {};
    for (const fd of fields) {
      const i = inputs[fd.name];
      if (fd.type === 'checkbox') out[fd.name] = i.checked;
      else if (fd.type === 'number') out[fd.name] = i.value === '' ? null : Number(i.value);
      else out[fd.name] = i.value;
    }
    return out;
  };
  f.inputs = inputs;
  f.clearProblems = () => {
    clear(general);
    for (const [n, e] of Object.entries(errs)) { e.textContent = ''; inputs[n].removeAttribute('aria-invalid'); }
  };
  f.showProblem = (err) => {
    f.clearProblems();
    let placed = false;
    for (const e of (err && err.errors) || []) {
      // "#/contact/email" is the field contact_email, or else contact
      const parts = String(e.pointer || e.parameter || '').replace(/^#?\//, '').split('/');
      const name = errs[parts.join('_')] ? parts.join('_') : parts[0];
      if (errs[name]) {
        const text = e.detail || e.message || 'is not valid';
        errs[name].textContent = errs[name].textContent ? `${errs[name].textContent}; ${text}` : text;
        inputs[name].setAttribute('aria-invalid', 'true');
        placed = true;
      }
    }
    general.append(problemBox(err));
    if (placed) {
      const first = Object.keys(errs).find((n) => errs[n].textContent);
      if (first) inputs[first].focus();
    }
  };
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    f.clearProblems();
    button.disabled = true;
    try {
      await onSubmit(f.values(), f);
    } catch (e) {
      f.showProblem(e);
    } finally {
      button.disabled = false;
    }
  });
  return f;
}

// A button for an action needing `permission`: hidden when the credential's roles do not grant
// it (pass {disable: true} to show it disabled, with the reason as its title, instead).
export function guarded(permission, label, onclick, {cls = '', disable = false} = {}) {
  const allowed = can(permission);
  if (!allowed && !disable) return null;
  const b = h('button', {type: 'button', class: cls, onclick, 'data-permission': permission}, label);
  if (!allowed) {
    b.disabled = true;
    b.title = `Needs the ${permission} permission`;
  }
  return b;
}

// Asks before a destructive act: the user must type `typed` (a name or a code) to enable the
// button. Resolves true when confirmed, false when cancelled.
export function confirmDestructive({title, message, typed, action = 'Delete'}) {
  return new Promise((resolve) => {
    const id = `c${++fieldSeq}`;
    const input = h('input', {id, type: 'text', autocomplete: 'off', spellcheck: 'false'});
    const ok = h('button', {type: 'submit', class: 'danger', disabled: true}, action);
    const cancel = h('button', {type: 'button'}, 'Cancel');
    const dlg = h('dialog', {class: 'confirm', 'aria-labelledby': id + '-t'},
      h('form', {method: 'dialog'},
        h('h2', {id: id + '-t'}, title),
        h('p', {}, message),
        h('label', {for: id}, 'Type ', h('code', {}, typed), ' to confirm'),
        input,
        h('div', {class: 'buttons'}, ok, cancel)));
    let result = false;
    input.addEventListener('input', () => { ok.disabled = input.value !== typed; });
    ok.addEventListener('click', () => { result = input.value === typed; });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

// A transient note at the top of the page (success messages).
export function notice(text) {
  const n = h('div', {class: 'notice', role: 'status'}, text);
  const main = document.getElementById('main');
  main.prepend(n);
  setTimeout(() => n.remove(), 6000);
}
