// What every browser scenario shares: Debian's chromium driven by playwright-core, a page whose
// console messages are kept, screenshots at the two sizes the console is made for, API calls
// for setting up state, and a failure that leaves the page's console log and a screenshot.

import {chromium} from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export const BASE = process.env.FT_URL; // http://127.0.0.1:<port>
export const SHOTS = process.env.FT_SHOTS;
export const WAIT_MS = Number(process.env.FT_WAIT_MS || 30000);
export const SIZES = [{width: 1280, height: 800}, {width: 390, height: 844}];

if (!BASE || !SHOTS) {
  console.error('FT_URL and FT_SHOTS must be set');
  process.exit(2);
}
fs.mkdirSync(SHOTS, {recursive: true});

// Calls the API directly (test set-up), as `key` (an API key or access token).
export async function api(method, p, body, key = process.env.FT_ADMIN_KEY) {
  const headers = {Accept: 'application/json', Authorization: 'Bearer ' + key};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['Idempotency-Key'] = 'test-' + Math.random().toString(16).slice(2) + Date.now();
  const res = await fetch(BASE + p, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${p} -> ${res.status}: ${text}`);
  return data;
}

// Runs scenario(ctx) in a fresh browser; ctx = {page, shot, log, step}. Exits non-zero, with the
// page's console log and a screenshot saved, when it throws or the page reported a CSP violation.
// `blocked`: the CSP violations expected (regular expressions), each of which must occur.
export async function run(name, scenario, {allowConsoleErrors = false, blocked = []} = {}) {
  for (const f of fs.readdirSync(SHOTS)) if (f.startsWith(`${name}-`)) fs.rmSync(path.join(SHOTS, f));
  const browser = await chromium.launch({
    executablePath: process.env.FT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // the sandbox needs user namespaces, which containers and root often lack
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({viewport: SIZES[0]});
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure() ? r.failure().errorText : ''}`));
  let current = 'start';
  const step = (what) => { current = what; console.log(`${name}: ${what}`); };
  // fullPage: false for a page too tall to capture whole in good time (the API reference)
  const shot = async (label, {fullPage = true} = {}) => {
    for (const size of SIZES) {
      await page.setViewportSize(size);
      await page.screenshot({path: path.join(SHOTS, `${name}-${label}-${size.width}x${size.height}.png`), fullPage});
    }
    await page.setViewportSize(SIZES[0]);
  };
  let failed = null;
  try {
    await scenario({page, shot, log, step, context});
    const isCsp = (l) => /Content Security Policy|Refused to/i.test(l);
    const csp = log.filter((l) => isCsp(l) && !blocked.some((re) => re.test(l)));
    if (csp.length) throw new Error('Content-Security-Policy violations:\n' + csp.join('\n'));
    for (const re of blocked) assert(log.some((l) => isCsp(l) && re.test(l)), `the policy blocked ${re}`);
    const errors = log.filter((l) => l.startsWith('[pageerror]') || (!allowConsoleErrors && l.startsWith('[error]')
      && !isCsp(l) && !/status of (4|5)\d\d/.test(l)));
    if (errors.length) throw new Error('errors in the page:\n' + errors.join('\n'));
  } catch (e) {
    failed = e;
  }
  if (failed) {
    fs.writeFileSync(path.join(SHOTS, `${name}-FAILED-console.log`), log.join('\n') + '\n');
    try {
      await page.screenshot({path: path.join(SHOTS, `${name}-FAILED.png`), fullPage: true});
    } catch { /* the page may be gone */ }
    console.error(`${name}: FAILED at "${current}": ${failed.stack || failed}`);
    console.error(`${name}: page console log (${log.length} lines) and screenshot saved in ${SHOTS}`);
  } else {
    fs.writeFileSync(path.join(SHOTS, `${name}-console.log`), log.join('\n') + '\n');
    console.log(`${name}: passed`);
  }
  await browser.close();
  process.exitCode = failed ? 1 : 0;
}

// Fills and sends the sign-in form (the page must show it).
export async function signIn(page, email, password) {
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', {name: 'Sign in'}).click();
}

// Opens the console and signs in; resolves once the navigation shows.
export async function openSignedIn(page, email, password) {
  await page.goto(BASE + '/console/');
  await page.getByRole('heading', {name: 'Sign in'}).waitFor();
  await signIn(page, email, password);
  await page.getByRole('button', {name: 'Sign out'}).waitFor();
}

export function assert(cond, what) {
  if (!cond) throw new Error('assertion failed: ' + what);
}

// Waits (at most WAIT_MS) until the texts of every element `locator` matches equal `expected`,
// joined by commas: a page that re-renders a list (a search replacing the first page) shows the
// old rows for a moment, and a list read once may be that old one.
export async function textsBecome(locator, expected, what) {
  const deadline = Date.now() + WAIT_MS;
  let seen;
  for (;;) {
    seen = (await locator.allTextContents()).join();
    if (seen === expected) return;
    if (Date.now() > deadline) throw new Error(`assertion failed: ${what} (expected ${expected}, saw ${seen})`);
    await locator.page().waitForTimeout(50);
  }
}
