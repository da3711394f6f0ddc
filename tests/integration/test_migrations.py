"""Migrations: applied in order at start and by `farutech-host migrate`, each atomically,
serialized across hosts starting together; a failing or edited migration stops the start."""
import os
import tempfile

from harness import ROOT, StackTestCase, main, wait_until


def write_migrations(base, files):
    d = tempfile.mkdtemp(prefix="migrations-", dir=base)
    for name, sql in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(sql)
    return d


class Migrations(StackTestCase):

    def tables(self, db):
        return set(filter(None, self.stack.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", db).splitlines()))

    def applied(self, db):
        return self.stack.psql("SELECT string_agg(name, ',' ORDER BY version) FROM ft_schema_migrations", db)

    def test_project_migrations_apply_on_start_and_are_recorded(self):
        h = self.host()
        files = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "migrations")) if f.endswith(".sql"))
        self.assertEqual(self.applied(h.dbname), ",".join(files) if files else "")

    def test_failing_migration_refuses_start_and_leaves_schema_unchanged(self):
        d = write_migrations(self.stack.dir, {
            "0001_first.sql": "CREATE TABLE alpha (id int PRIMARY KEY);\n",
            "0002_broken.sql": "CREATE TABLE beta (id int);\nINSERT INTO alpha VALUES (1);\n\nSELEC oops;\n",
        })
        h = self.host(start=False, migrations_dir=d)
        h.start(wait=False)
        self.assertEqual(h.wait_exit(60), 1)
        out = h.output()
        self.assertIn("migration 0002_broken failed at line 4", out)
        self.assertIn("syntax error", out)
        self.assertIn("refusing to start", out)
        h.assert_clean()
        # 0001 stays applied, nothing of 0002 remains
        self.assertEqual(self.applied(h.dbname), "0001_first")
        self.assertEqual(self.tables(h.dbname), {"alpha", "ft_schema_migrations"})
        self.assertEqual(self.stack.psql("SELECT count(*) FROM alpha", h.dbname), "0")

        # once fixed, the next start applies it
        with open(os.path.join(d, "0002_broken.sql"), "w") as f:
            f.write("CREATE TABLE beta (id int);\nINSERT INTO alpha VALUES (1);\n")
        h2 = self.host(dbname=h.dbname, migrations_dir=d)
        self.assertEqual(self.applied(h.dbname), "0001_first,0002_broken")
        self.assertEqual(self.stack.psql("SELECT count(*) FROM alpha", h.dbname), "1")
        self.assertEqual(h2.terminate(), 0)

    def test_edited_applied_migration_refuses_start(self):
        d = write_migrations(self.stack.dir, {"0001_first.sql": "CREATE TABLE gamma (id int);\n"})
        h = self.host(migrations_dir=d)
        self.assertEqual(h.terminate(), 0)
        with open(os.path.join(d, "0001_first.sql"), "a") as f:
            f.write("-- edited\n")
        h2 = self.host(start=False, dbname=h.dbname, migrations_dir=d)
        h2.start(wait=False)
        self.assertEqual(h2.wait_exit(60), 1)
        self.assertIn("migration 0001_first was changed after it was applied", h2.output())

    def test_misnamed_migration_file_refuses_start(self):
        d = write_migrations(self.stack.dir, {"0001_first.sql": "SELECT 1;\n", "2-second.sql": "SELECT 2;\n"})
        h = self.host(start=False, migrations_dir=d)
        h.start(wait=False)
        self.assertEqual(h.wait_exit(60), 1)
        self.assertIn("2-second.sql: name must be NNNN_lowercase_name.sql", h.output())

    def test_migration_that_commits_by_itself_is_refused(self):
        d = write_migrations(self.stack.dir, {"0001_sneaky.sql": "CREATE TABLE delta (id int);\nCOMMIT;\n"})
        h = self.host(start=False, migrations_dir=d)
        h.start(wait=False)
        self.assertEqual(h.wait_exit(60), 1)
        self.assertIn("must not contain BEGIN, COMMIT or ROLLBACK", h.output())
        self.assertEqual(self.applied(h.dbname), "")

    def test_hosts_starting_together_apply_each_migration_once(self):
        # CREATE TABLE without IF NOT EXISTS fails if two hosts run it: the advisory lock must serialize them.
        d = write_migrations(self.stack.dir, {
            "0001_a.sql": "CREATE TABLE epsilon (id int); SELECT pg_sleep(0.5);\n",
            "0002_b.sql": "CREATE TABLE zeta (id int);\n",
        })
        db = self.stack.create_database()
        hosts = [self.host(start=False, dbname=db, migrations_dir=d) for _ in range(3)]
        for h in hosts:
            h.start(wait=False)
        for h in hosts:
            wait_until(lambda h=h: h.get("/health").status == 200, 60, what="host up")
        self.assertEqual(self.applied(db), "0001_a,0002_b")
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_schema_migrations", db), "2")
        for h in hosts:
            self.assertEqual(h.terminate(), 0)

    def test_migrate_command_applies_and_exits(self):
        d = write_migrations(self.stack.dir, {"0001_only.sql": "CREATE TABLE eta (id int);\n"})
        h = self.host(start=False, migrations_dir=d)
        h.start(wait=False, args=("migrate",))
        self.assertEqual(h.wait_exit(60), 0)
        h.assert_clean()
        self.assertEqual(self.applied(h.dbname), "0001_only")
        self.assertIn("eta", self.tables(h.dbname))

    def migrate(self, d, dbname=None):
        h = self.host(start=False, migrations_dir=d, dbname=dbname)
        h.start(wait=False, args=("migrate",))
        self.assertEqual(h.wait_exit(60), 0)
        h.assert_clean()
        return h.dbname

    def test_job_history_migration_keeps_earlier_attempts_in_order_and_makes_them_append_only(self):
        project = os.path.join(ROOT, "migrations")
        def read(name):
            with open(os.path.join(project, name)) as f:
                return f.read()
        d = write_migrations(self.stack.dir, {f: read(f) for f in os.listdir(project) if f.endswith(".sql") and f < "0010"})
        db = self.migrate(d)
        job = "11111111-1111-4111-8111-111111111111"
        self.stack.psql("SET session_replication_role = replica;"  # no instance behind the job: foreign keys not checked
                        "INSERT INTO ft_jobs (id, instance_id, product_code, kind, correlation_id, attempts)"
                        f" VALUES ('{job}', gen_random_uuid(), 'faulty', 'provision', 'c', 3);"
                        "INSERT INTO ft_job_steps (job_id, position, name, version, status)"
                        f" VALUES ('{job}', 0, 'a', 1, 'succeeded'), ('{job}', 1, 'b', 1, 'failed');"
                        "INSERT INTO ft_job_attempts (job_id, attempt, step, error, retryable, at) VALUES"
                        f" ('{job}', 2, 'b', 'second', true, now() - interval '1 minute'),"
                        f" ('{job}', 1, 'b', 'first', true, now() - interval '2 minutes'),"
                        f" ('{job}', 3, 'b', 'third', false, now())", db)
        with open(os.path.join(d, "0010_job_history.sql"), "w") as f:
            f.write(read("0010_job_history.sql"))
        self.migrate(d, dbname=db)
        self.assertEqual(self.stack.psql("SELECT string_agg(id || ':' || round || ':' || attempt || ':' || outcome || ':' || error,"
                                         " ' ' ORDER BY id) FROM ft_job_attempts", db),
                         "1:0:1:failed:first 2:0:2:failed:second 3:0:3:failed:third")
        self.assertEqual(self.stack.psql("SELECT string_agg(name || ':' || ordinal, ' ' ORDER BY ordinal) FROM ft_job_steps", db),
                         "a:0 b:1")
        self.stack.psql(f"INSERT INTO ft_job_attempts (job_id, round, attempt, outcome, error) VALUES ('{job}', 1, 1, 'failed', 'x')",
                        db)
        self.assertEqual(self.stack.psql("SELECT max(id) FROM ft_job_attempts", db), "4")
        with self.assertRaises(RuntimeError) as refused:
            self.stack.psql("UPDATE ft_job_attempts SET error = 'rewritten' WHERE id = 1", db)
        self.assertIn("append-only", str(refused.exception))


if __name__ == "__main__":
    main()
