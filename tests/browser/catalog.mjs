// The catalog: the products, one product's modules and features (kind, default, requirements)
// and its plans with their versions, and which subscriptions override a feature (an instance
// given an override of online_booking through the API shows up with its reason); an unknown
// product shows the API's 404 problem.
import {api, assert, run} from './lib.mjs';
import {checked, signIn} from './ops.mjs';

run('catalog', async ({page, shot: raw, step}) => {
  const shot = checked(page, raw);
  const c = await api('POST', '/api/v1/customers', {legal_name: 'Catalog clinic ' + Date.now(), tax_id: String(Date.now()), country: 'CO'});
  const i = await api('POST', `/api/v1/customers/${c.id}/instances`,
    {code: 'cat' + Date.now(), product: 'vet', plan: 'essentials', settings: {admin_email: 'vet@example.test'}});
  await api('PUT', `/api/v1/instances/${i.id}/overrides/online_booking`, {enabled: true, reason: 'booking pilot'});

  step('the products');
  await signIn(page, '/catalog');
  await page.getByRole('heading', {name: 'Catalog'}).waitFor();
  for (const name of ['Farutech Vet (vet)', 'Farutech ERP (erp)', 'Farutech CRM (crm)', 'Farutech POS (pos)']) {
    await page.getByRole('link', {name}).waitFor();
  }
  await shot('products');

  step('a product: modules, features, plans');
  await page.getByRole('link', {name: 'Farutech Vet (vet)'}).click();
  await page.getByRole('heading', {name: 'Farutech Vet (vet)'}).waitFor();
  await page.getByRole('heading', {name: 'Scheduling (scheduling)'}).waitFor();
  const booking = page.locator('tr', {has: page.locator('code', {hasText: /^online_booking$/})});
  assert(await booking.locator('td[data-label="Kind"]').textContent() === 'flag', 'online_booking is a flag');
  assert(await booking.locator('td[data-label="Requires"]').textContent() === 'appointments', 'it requires appointments');
  const patients = page.locator('tr', {has: page.locator('code', {hasText: /^max_patients$/})});
  assert(await patients.locator('td[data-label="Default"]').textContent() === '2500 patients', 'a limit with its unit');
  await page.locator('#plan-essentials').getByText('Version').waitFor();
  await page.locator('#plan-professional').getByText('Trial').waitFor();
  await shot('product');

  step('which subscriptions override a feature');
  await page.getByRole('button', {name: 'Who overrides online_booking'}).click();
  const overrides = page.locator('#overrides-online_booking');
  await overrides.getByRole('link', {name: c.legal_name}).waitFor();
  await overrides.getByText('booking pilot').waitFor();
  await overrides.getByText('essentials v1').waitFor();
  await page.getByRole('button', {name: 'Who overrides appointments'}).click();
  await page.locator('#overrides-appointments').getByText('No subscription overrides appointments.').waitFor();
  await overrides.scrollIntoViewIfNeeded();
  await shot('overrides');

  step('an unknown product shows the API\'s problem');
  await page.goto(page.url().replace(/#.*/, '#/catalog/nothing'));
  await page.locator('.problem[data-status="404"]').waitFor();
  await shot('not-found');
});
