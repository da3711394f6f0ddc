// Plugins and hosts on a fleet of two hosts (the second refuses the fixture's version 5): each
// host's generation; a fleet-wide reload with per-host results; a rollout of version 5 that the
// second host refuses, shown as the API's problem with every host's result, and the skew it
// leaves highlighted; the reloads in the audit search; a product manager sees the fleet without
// the reload, no DLQ or audit in the navigation, and the API's 403 when opening the DLQ anyway.
import fs from 'node:fs';
import path from 'node:path';
import {api, assert, run, textsBecome} from './lib.mjs';
import {checked, localMinute, signIn} from './ops.mjs';

const dir = process.env.FT_PLUGIN_DIR_A;

async function reload(page) {
  await page.getByRole('button', {name: 'Reload', exact: true}).click();
  await page.locator('#reload-results').waitFor();
}

run('plugins', async ({page, shot: raw, step}) => {
  const shot = checked(page, raw);
  const since = localMinute(new Date(Date.now() - 60000));
  step('each host and the generation it serves');
  await signIn(page, '/plugins');
  await page.getByRole('heading', {name: 'Plugins & hosts'}).waitFor();
  const hosts = page.locator('table:has(caption:text("Hosts and the generation")) tbody tr');
  await hosts.nth(1).waitFor();
  assert(await hosts.count() === 2, 'two live hosts');
  for (const cell of await page.locator('td[data-label="fixture"]').allTextContents()) {
    assert(/^gen 1 · 1\.0\.0 · [0-9a-f]{8}$/.test(cell), `generation 1 of version 1.0.0 (${cell})`);
  }
  await page.getByText('The fleet agrees').waitFor();
  await shot('fleet');

  step('a fleet-wide reload shows every host\'s result');
  await reload(page);
  await page.getByText('Every host loaded or kept every product.').waitFor();
  const results = page.locator('#reload-results td[data-label="Result"]');
  assert((await results.allTextContents()).join() === 'unchanged,unchanged', 'both hosts kept generation 1');
  await page.locator('#reload-results').getByText('(coordinator)').waitFor();
  await shot('reload');

  step('version 5, refused by the second host: the problem, per-host results and the skew');
  fs.copyFileSync(process.env.FT_FIXTURE_REFUSED, path.join(dir, '.fixture.so.new'));
  fs.renameSync(path.join(dir, '.fixture.so.new'), path.join(dir, 'fixture.so'));
  await reload(page);
  const problem = page.locator('section[aria-label="Reload"] .problem');
  await problem.waitFor();
  assert(await problem.getAttribute('data-status') === '422', 'the API\'s 422');
  await problem.getByText(/this host refuses version 5\.0\.0/).waitFor();
  assert((await results.allTextContents()).sort().join() === 'failed,loaded', 'loaded here, failed there');
  await page.locator('#reload-results td[data-label="Reason or note"]').getByText(/generation 1 keeps serving/).waitFor();
  await page.locator('#skew .skew-card').getByText('fixture').waitFor();
  await page.locator('.skewed').first().waitFor();
  assert(await page.locator('td[data-label="fixture"] .skewed').count() === 1, 'one host\'s cell highlighted');
  assert(/gen 1 · 1\.0\.0/.test(await page.locator('.skewed').textContent()), 'the host left on version 1 is the one highlighted');
  await shot('skew');

  step('the audit search finds the reloads');
  await page.getByRole('navigation', {name: 'Main'}).getByRole('link', {name: 'Audit'}).click();
  await page.getByRole('button', {name: 'Me'}).click();
  await page.getByLabel('Action').fill('plugin.reload');
  await page.getByLabel('Since').fill(since);
  await page.getByRole('button', {name: 'Search'}).click();
  const cells = page.locator('.results td[data-label="Result"]');
  await textsBecome(cells, 'failure,success', 'the failed reload, then the first');
  await page.getByLabel('Result').selectOption('failure');
  await page.getByRole('button', {name: 'Search'}).click();
  await page.locator('.results td[data-label="Reason"]').getByText(/refuses/).waitFor();
  await shot('audit');

  step('a product manager: no reload, no DLQ, and the API\'s 403 when reached');
  const email = 'pm-' + Date.now() + '@example.com';
  await api('POST', '/api/v1/users', {email, password: 'product manager 1', roles: ['product-manager']});
  await page.getByRole('button', {name: 'Sign out'}).click();
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill('product manager 1');
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByRole('button', {name: 'Sign out'}).waitFor();
  const nav = page.getByRole('navigation', {name: 'Main'});
  await nav.getByRole('link', {name: 'Plugins & hosts'}).click();
  await hosts.nth(1).waitFor();
  assert(await page.getByRole('button', {name: 'Reload', exact: true}).count() === 0, 'no reload for a product manager');
  assert(await nav.getByRole('link', {name: 'DLQ'}).count() === 0 && await nav.getByRole('link', {name: 'Audit'}).count() === 0,
    'no DLQ or audit in the navigation');
  await shot('product-manager');
  await page.goto(page.url().replace(/#.*/, '#/dlq'));
  const denied = page.locator('.problem[data-status="403"]');
  await denied.getByText('Forbidden', {exact: true}).waitFor();
  await denied.getByText(/needs permission dlq:read/).waitFor();
  await shot('forbidden');
});
