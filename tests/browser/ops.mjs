// What the operations scenarios (jobs, DLQ, plugins and hosts, audit, catalog) share: signing in
// through the page, polling the API for a state the set-up needs, and the browser's local time
// written as a datetime-local field wants it.
import {BASE, WAIT_MS, api} from './lib.mjs';

export async function signIn(page, where) {
  await page.goto(BASE + '/console/#' + where);
  await page.getByLabel('E-mail').fill(process.env.FT_EMAIL);
  await page.getByLabel('Password').fill(process.env.FT_PASSWORD);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByRole('button', {name: 'Sign out'}).waitFor();
}

// Polls fn() (an async API read) until it returns something truthy; throws naming `what`.
export async function until(fn, what, ms = WAIT_MS * 4) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A datetime-local value for `d` in this machine's time zone (the browser's), to the minute.
export function localMinute(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// A customer and an instance of the faulty test product with these settings; returns the instance.
export async function faultyInstance(settings) {
  const c = await api('POST', '/api/v1/customers', {legal_name: 'Console ops ' + Date.now(), tax_id: String(Date.now()), country: 'CO'});
  return api('POST', `/api/v1/customers/${c.id}/instances`,
    {code: 'c' + Math.random().toString(16).slice(2, 10), product: 'faulty', plan: 'basic', tier: 'standard', settings});
}

// `shot` that first checks the page shows no value rendered by mistake (an object, undefined,
// NaN, or a bare null among the page's own elements).
export function checked(page, shot) {
  return async (label) => {
    const text = await page.locator('main').innerText();
    const bad = text.match(/\[object \w+\]|\bundefined\b|\bNaN\b|^null$/m);
    if (bad) throw new Error(`the page shows "${bad[0]}" (${label})`);
    await shot(label);
  };
}
