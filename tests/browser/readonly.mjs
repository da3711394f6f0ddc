// A read-only user (customer-viewer) sees its customer and instance with no control it cannot use;
// a write reached anyway (the create page opened by its address) shows the API's 403.
import {api, assert, openSignedIn, run} from './lib.mjs';

run('readonly', async ({page, shot, step}) => {
  const tag = Date.now().toString(36);
  step('a customer, an instance and a viewer made through the API');
  const c = await api('POST', '/api/v1/customers', {legal_name: `Viewer Co ${tag}`, tax_id: `V${tag}`, country: 'CO'});
  const inst = await api('POST', `/api/v1/customers/${c.id}/instances`,
    {code: 'sur', product: 'vet', plan: 'essentials', settings: {admin_email: 'a@sur.example'}});
  const email = `viewer-${tag}@example.com`;
  await api('POST', '/api/v1/users', {email, password: 'viewer password 1', roles: ['customer-viewer'], customer_id: c.id});

  step('the viewer signs in: no write controls');
  await openSignedIn(page, email, 'viewer password 1');
  await page.getByRole('heading', {name: 'Customers'}).waitFor();
  await page.getByRole('link', {name: c.legal_name}).waitFor();
  assert(await page.getByRole('button', {name: 'New customer'}).count() === 0, 'no New customer button');
  for (const label of ['DLQ', 'Plugins & hosts', 'Audit']) {
    assert(await page.getByRole('navigation', {name: 'Main'}).getByRole('link', {name: label}).count() === 0, `no ${label} link`);
  }
  await page.getByRole('link', {name: c.legal_name}).click();
  await page.getByRole('heading', {name: c.legal_name}).waitFor();
  await page.getByRole('link', {name: 'sur'}).waitFor();
  for (const label of ['New instance', 'Delete customer']) {
    assert(await page.getByRole('button', {name: label}).count() === 0, `no ${label} button`);
  }
  await shot('customer');
  await page.getByRole('link', {name: 'sur'}).click();
  await page.getByRole('heading', {name: /Instance sur/}).waitFor();
  await page.locator('#entitlements [data-feature="appointments"]').waitFor();
  for (const label of ['Suspend', 'Resume', 'Change plan', 'Cancel subscription', 'Delete instance', 'Set override', 'Remove']) {
    assert(await page.getByRole('button', {name: label}).count() === 0, `no ${label} button`);
  }
  await shot('instance');

  step('a write reached anyway shows the 403');
  await page.evaluate(() => { location.hash = '#/customers/new'; }); // as typed in the address bar
  await page.getByRole('heading', {name: 'New customer'}).waitFor();
  await page.getByLabel('Legal name').fill('Not allowed');
  await page.getByLabel('Tax id').fill('X1');
  await page.getByLabel('Country').fill('CO');
  await page.getByRole('button', {name: 'Create customer'}).click();
  const problem = page.locator('.problem[data-status="403"]');
  await problem.waitFor();
  await problem.getByText(/customers:create/).waitFor();
  await shot('forbidden');
  assert(inst.id, 'the instance exists');
});
