// Sign in: a wrong password shows the API's problem, a locked address its Retry-After, the right
// one signs in; the session page refreshes the tokens; signing out returns to the sign-in page;
// a session the server ends (the user disabled) says why on the sign-in page.
import {BASE, api, assert, run, signIn} from './lib.mjs';

const email = process.env.FT_EMAIL;
const password = process.env.FT_PASSWORD;

run('signin', async ({page, shot, step}) => {
  step('open the console');
  await page.goto(BASE + '/console');
  await page.getByRole('heading', {name: 'Sign in'}).waitFor();
  assert(page.url().endsWith('/console/#/signin'), `redirected to the sign-in page (${page.url()})`);
  await shot('page');

  step('a wrong password shows the problem');
  await signIn(page, email, 'not the password');
  const problem = page.locator('.problem');
  await problem.getByText('Invalid credentials', {exact: true}).waitFor();
  await problem.getByText('The e-mail address or the password is wrong.').waitFor();
  await shot('wrong-password');

  step('a locked address shows the lockout and when to retry');
  const locked = 'nobody-' + Date.now() + '@example.com';
  const max = Number(process.env.FT_LOGIN_MAX_FAILURES || 3);
  for (let i = 0; i < max; i++) {
    await signIn(page, locked, 'wrong');
    await problem.getByText('Invalid credentials', {exact: true}).waitFor();
    await page.getByRole('button', {name: 'Sign in'}).and(page.locator(':enabled')).waitFor();
  }
  await signIn(page, locked, 'wrong');
  await problem.getByText('Too many failed sign-ins', {exact: true}).waitFor();
  await problem.getByText(/Try again in \d+ seconds/).waitFor();
  await shot('locked');

  step('the right password signs in');
  await signIn(page, email, password);
  await page.getByRole('navigation', {name: 'Main'}).getByRole('link', {name: 'Customers'}).waitFor();
  await page.getByRole('button', {name: 'Sign out'}).waitFor();

  step('the session page refreshes the tokens');
  await page.getByRole('link', {name: email}).click();
  await page.getByRole('heading', {name: 'Session'}).waitFor();
  await page.getByText('platform-admin').first().waitFor();
  await page.getByRole('button', {name: 'Refresh session now'}).click();
  await page.getByText('Session refreshed').waitFor();
  await shot('session');

  step('the access token is refreshed before it expires, unasked');
  const before = await page.locator('#access-expiry').textContent();
  const ttl = Number(process.env.FT_ACCESS_TOKEN_TTL_S || 900);
  await page.waitForFunction((t) => document.getElementById('access-expiry').textContent !== t, before,
    {timeout: (ttl + 10) * 1000});
  await page.getByRole('heading', {name: 'Session'}).waitFor();

  step('signing out returns to the sign-in page');
  await page.getByRole('button', {name: 'Sign out'}).click();
  await page.getByRole('heading', {name: 'Sign in'}).waitFor();
  assert(await page.getByRole('button', {name: 'Sign out'}).count() === 0, 'no sign-out button once signed out');

  step('a session the server ends says why');
  const opEmail = 'op-' + Date.now() + '@example.com';
  const opUser = await api('POST', '/api/v1/users', {email: opEmail, password: 'operator password 1', roles: ['operator']});
  await signIn(page, opEmail, 'operator password 1');
  await page.getByRole('button', {name: 'Sign out'}).waitFor();
  await api('PATCH', `/api/v1/users/${opUser.id}`, {status: 'disabled'});
  await page.getByRole('link', {name: opEmail}).click();
  await page.getByRole('button', {name: 'Refresh session now'}).click();
  await page.getByText('Your session ended.').waitFor();
  await page.locator('.problem').getByText('Invalid refresh token', {exact: true}).waitFor();
  await page.locator('.problem').getByText('The refresh token was revoked; sign in again.').waitFor();
  await shot('session-ended');
});
