// The pg-boss side of bench/jobs.sh: JOBS no-op jobs queued in one go into a fresh queue, then
// WORKERS workers, each fetching BATCH jobs at a time and completing them, run them to completion.
// The workers call fetch() and complete() in a loop: pg-boss's work() waits its polling interval
// (at least 0.5 s) after every batch, which caps 10 workers x 100 at 2,000 jobs/s.
// Prints "jobs seconds" from the queue's table: the first job started to the last one completed,
// the same span the Farutech figure is taken over.
// Usage: node bench/pgboss.mjs DATABASE_URL JOBS WORKERS BATCH (pg-boss resolved from NODE_PATH's folder)
import { createRequire } from 'node:module';
import path from 'node:path';

const [url, jobs, workers, batch] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
const require = createRequire(path.join(process.env.FT_PGBOSS_DIR, 'package.json'));
const { PgBoss } = await import(require.resolve('pg-boss'));

const boss = new PgBoss({ connectionString: url, max: workers + 4, supervise: false, schedule: false });
boss.on('error', (e) => console.error('pg-boss:', e.message));
await boss.start();
const queue = `noop-${process.pid}-${Date.now()}`;
await boss.createQueue(queue);
for (let i = 0; i < jobs; i += 1000) {
  const n = Math.min(1000, jobs - i);
  await boss.insert(queue, Array.from({ length: n }, (_, k) => ({ data: { n: i + k } })));
}
async function worker() {
  for (;;) {
    const got = await boss.fetch(queue, { batchSize: batch });
    if (!got || got.length === 0) return;
    await boss.complete(queue, got.map((j) => j.id));
  }
}
await Promise.all(Array.from({ length: workers }, worker));
// the last batch's completion commits after its handler returned
const db = boss.getDb();
let row;
for (;;) {
  const r = await db.executeSql(
    `SELECT count(*)::int AS n, extract(epoch FROM max(completed_on) - min(started_on))::float8 AS s
     FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [queue]);
  row = r.rows[0];
  if (row.n >= jobs) break;
  await new Promise((r2) => setTimeout(r2, 20));
}
console.log(`${row.n} ${row.s}`);
await boss.deleteQueue(queue);
await boss.stop({ graceful: false, wait: true });
