// Jobs: the global list with a filter (and a bad filter value shown beside its field); a job of
// the faulty product whose step fails while a file exists, followed live on its page: the failed
// attempt appears, then, once the file is gone, the retry succeeds and the progress bar reaches
// 100% with no reload of the page.
import fs from 'node:fs';
import {api, assert, run} from './lib.mjs';
import {checked, faultyInstance, signIn} from './ops.mjs';

const fault = process.env.FT_FAULT;

run('jobs', async ({page, shot: raw, step}) => {
  const shot = checked(page, raw);
  step('a job that fails while the fault file exists');
  fs.writeFileSync(fault, '');
  const inst = await faultyInstance({fail_while_exists: fault});
  const jobId = inst.latest_job.id;
  const short = jobId.slice(0, 8);

  step('the job list, filtered by product and kind');
  await signIn(page, '/jobs');
  await page.getByRole('heading', {name: 'Jobs'}).waitFor();
  await page.getByLabel('Product').fill('faulty');
  await page.getByLabel('Kind').selectOption('provision');
  await page.getByRole('button', {name: 'Filter'}).click();
  const row = page.getByRole('link', {name: `provision ${short}`});
  await row.waitFor();
  assert(await page.locator('.results tbody tr').count() === 1, 'one faulty provisioning job');
  await shot('list');

  step('a bad filter value is shown beside its field');
  await page.getByLabel('Instance id').fill('not-a-uuid');
  await page.getByRole('button', {name: 'Filter'}).click();
  const field = page.getByLabel('Instance id');
  await page.locator('input[aria-invalid="true"][name="instance_id"]').waitFor();
  const errId = await field.getAttribute('aria-describedby');
  assert((await page.locator('#' + errId).textContent()).length > 0, 'the error is beside the field');
  await page.locator('.form-problem .problem').waitFor();
  await shot('list-bad-filter');
  await page.getByLabel('Instance id').fill('');
  await page.getByRole('button', {name: 'Filter'}).click();
  await row.waitFor();

  step('the job page follows the job live');
  let documents = 0;
  await row.click();
  page.on('request', (r) => { if (r.resourceType() === 'document') documents++; });
  await page.getByRole('heading', {name: `Job ${short}`}).waitFor();
  await page.locator('#job-live').getByText('Live').waitFor();
  await page.locator('#job').getByText(/fault file/).first().waitFor();
  const bar = page.locator('#job .job-progress');
  const before = Number(await bar.getAttribute('data-done'));
  const total = Number(await bar.getAttribute('data-total'));
  assert(total > 0 && before < total, `the bar is not full while the step fails (${before}/${total})`);
  await shot('job-failing');

  step('the retry succeeds: the bar reaches 100% without a reload');
  fs.rmSync(fault);
  await page.locator('#job-live').getByText('Finished: succeeded').waitFor({timeout: 120000});
  const seen = Date.now();
  const finished = Date.parse((await api('GET', `/api/v1/jobs/${jobId}`)).finished_at);
  console.log(`jobs: the page showed the job's end ${seen - finished} ms after it was recorded`);
  assert(await bar.getAttribute('data-done') === String(total), 'every step done');
  await bar.getByText(/100%/).waitFor();
  assert(documents === 0, `the page was not reloaded (${documents} document loads)`);
  const outcomes = await page.locator('#job td[data-label="Outcome"]').allTextContents();
  assert(outcomes.length >= 2 && outcomes.at(-1) === 'succeeded' && outcomes.slice(0, -1).every((o) => o === 'failed'),
    `failed attempts, then the success (${outcomes})`);
  await shot('job-succeeded');
});
