// The DLQ: a job of the faulty product failing while a file exists goes to the DLQ after its five
// attempts, another fails for good at once. The DLQ page lists both; inspecting the first shows
// its error and attempts; replaying it (typed confirmation) runs the job again, to success now
// that the file is gone; the second is discarded. The audit search, by actor ("Me"), action and
// time, finds the replay and the discard.
import fs from 'node:fs';
import {api, assert, run} from './lib.mjs';
import {checked, faultyInstance, localMinute, signIn, until} from './ops.mjs';

const fault = process.env.FT_FAULT;
const short = (id) => id.slice(0, 8);

async function confirm(page, code, action) {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const ok = dialog.getByRole('button', {name: action});
  assert(await ok.isDisabled(), `${action} is disabled until the code is typed`);
  await dialog.getByLabel(/Type .* to confirm/).fill(code);
  await ok.click();
}

run('dlq', async ({page, shot: raw, step}) => {
  const shot = checked(page, raw);
  const since = localMinute(new Date(Date.now() - 60000));
  step('two jobs fail into the DLQ');
  fs.writeFileSync(fault, '');
  const retried = await faultyInstance({fail_while_exists: fault});
  const doomed = await faultyInstance({fatal: true});
  const letters = await until(async () => {
    const items = (await api('GET', '/api/v1/dlq')).items;
    const a = items.find((d) => d.instance_id === retried.id);
    const b = items.find((d) => d.instance_id === doomed.id);
    return a && b ? [a, b] : null;
  }, 'both dead letters');
  const [a, b] = letters;

  step('the DLQ page lists both');
  await signIn(page, '/dlq');
  await page.getByRole('heading', {name: 'Dead-letter queue'}).waitFor();
  await page.getByRole('link', {name: `Inspect ${short(a.id)}`}).waitFor();
  await page.getByRole('link', {name: `Inspect ${short(b.id)}`}).waitFor();
  await shot('list');

  step('inspecting one shows its error and attempts');
  await page.getByRole('link', {name: `Inspect ${short(a.id)}`}).click();
  await page.getByRole('heading', {name: `Dead letter ${short(a.id)}`}).waitFor();
  await page.locator('#dlq-reason').getByText(/fault file/).waitFor();
  const recorded = page.locator('table:has(caption:text("Attempts recorded")) tbody tr');
  await recorded.first().waitFor();
  assert(await recorded.count() === 5, `five attempts recorded (${await recorded.count()})`);
  const history = page.locator('table:has(caption:text("Attempt history of the job")) td[data-label="Outcome"]');
  assert((await history.allTextContents()).join() === 'failed,failed,failed,failed,failed', 'the job failed five times');
  await shot('inspect');

  step('replay, confirmed, runs the job again');
  fs.rmSync(fault);
  await page.getByRole('button', {name: 'Replay'}).click();
  await shot('replay-confirm');
  await confirm(page, short(a.id), 'Replay');
  await page.getByText(`Replayed: job ${short(a.job_id)} is queued again.`).waitFor();
  await page.locator('#dlq-entry .badge', {hasText: 'replayed'}).waitFor();
  await page.locator('#dlq-entry').getByRole('link', {name: a.job_id}).click();
  await page.locator('#job-live').getByText('Finished: succeeded').waitFor({timeout: 120000});
  await page.locator('#job .job-progress').getByText(/100%/).waitFor();
  await shot('replayed-job');

  step('discard the other, by keyboard');
  await page.goto(page.url().replace(/#.*/, '#/dlq'));
  const row = page.locator('tr', {has: page.getByRole('link', {name: `Inspect ${short(b.id)}`})});
  // by keyboard only: focus the button, Enter, type the code, Enter
  await row.getByRole('button', {name: 'Discard'}).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await page.keyboard.type(short(b.id));
  await page.keyboard.press('Enter');
  await page.getByText(`Dead letter ${short(b.id)} discarded.`).waitFor();
  await page.getByText('No open dead letter').waitFor();
  await page.getByLabel('Show replayed and discarded').check();
  await page.locator('tr', {has: page.getByRole('link', {name: `Inspect ${short(a.id)}`})}).getByText('replayed').waitFor();
  await page.locator('tr', {has: page.getByRole('link', {name: `Inspect ${short(b.id)}`})}).getByText('discarded').waitFor();
  await shot('closed');

  step('the audit search finds the replay and the discard');
  await page.getByRole('navigation', {name: 'Main'}).getByRole('link', {name: 'Audit'}).click();
  await page.getByRole('heading', {name: 'Audit'}).waitFor();
  await page.getByRole('button', {name: 'Me'}).click();
  assert((await page.getByLabel('Actor').inputValue()).startsWith('user:'), 'Me fills in the signed-in user');
  await page.getByLabel('Since').fill(since);
  for (const [action, entry] of [['dlq.replay', a], ['dlq.discard', b]]) {
    await page.getByLabel('Action').fill(action);
    await page.getByRole('button', {name: 'Search'}).click();
    const cells = page.locator('.results td[data-label="Action"]');
    await page.locator('.results').getByText(entry.id).waitFor();
    assert((await cells.allTextContents()).every((t) => t === action) && await cells.count() === 1, `one ${action} entry`);
  }
  await shot('audit');
  step('a window before the replay finds nothing');
  await page.getByLabel('Until').fill(since);
  await page.getByRole('button', {name: 'Search'}).click();
  await page.getByText('No audit entry matches.').waitFor();
});
