// The API reference (/api/v1/docs): Redoc renders the operations from /api/v1/openapi.json under
// the page's Content-Security-Policy and loads nothing from elsewhere. Its bundle always adds a
// Redocly logo from a CDN to the menu: the policy blocks that image, and that is the one
// violation allowed (the scenario fails if it is not blocked, or if anything else is).
import {BASE, assert, run} from './lib.mjs';

run('docs', async ({page, shot, step}) => {
  const outside = [];
  page.on('requestfinished', (r) => { if (!/^(data|blob):/.test(r.url()) && !r.url().startsWith(BASE)) outside.push(r.url()); });
  const missing = [];
  page.on('response', (r) => { if (r.status() >= 400) missing.push(`${r.status()} ${r.url()}`); });
  step('open the reference');
  await page.goto(BASE + '/api/v1/docs');
  step('the operations are rendered');
  await page.getByRole('heading', {name: 'Sign in with email and password'}).waitFor();
  await page.getByRole('heading', {name: 'List customers'}).waitFor();
  await shot('page', {fullPage: false}); // every operation on one page: tens of thousands of pixels
  assert(outside.length === 0, 'nothing loaded from outside the host: ' + outside.join(', '));
  assert(missing.length === 0, 'every resource found: ' + missing.join(', '));
}, {blocked: [/https:\/\/cdn\.redoc\.ly\/redoc\/logo-mini\.svg/]});
