"""The provisioning pipeline against real PostgreSQL and nats-server: outbox, relay, JetStream
workers, retries with backoff, the DLQ and replay, idempotency, and crashes of every part."""
import datetime
import os
import re
import shutil
import tempfile
import time

from fixtures import customer
from harness import BUILD, FAULTY, StackTestCase, main, plugin_dir, wait_until
from jetstream import JetStream

FAULTY_FIXED = os.path.join(BUILD, "tests", "plugins", "faulty_fixed", "faulty.so")  # "flaky" replaced by "steady"
FAST = {"FT_JOB_BACKOFF_MS": "150", "FT_JOB_BACKOFF_MAX_MS": "4000", "FT_JOB_ACK_WAIT_MS": "2000", "FT_RELAY_POLL_MS": "1000",
        "FT_SWEEP_INTERVAL_MS": "1000"}
CLOCK_TOLERANCE_S = 0.05  # between two of PostgreSQL's now() readings
LOAD_SLACK_S = 5.0  # a retry's own work on a loaded machine, beyond its backoff


class PipelineCase(StackTestCase):
    """Hosts with the products and the faulty test product, fast retries, and helpers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plugins = plugin_dir(cls.stack.dir, FAULTY)

    def host(self, start=True, **kw):
        env = {"FT_PLUGIN_DIR": self.plugins, **FAST}
        env.update(kw.pop("env", {}))
        return super().host(start=start, env=env, **kw)

    def tenants(self, sql, db="farutech_tenants"):
        return self.stack.psql(sql, db)

    def create(self, h, c, product="faulty", plan="basic", tier="standard", settings=None):
        body = {"code": "p" + os.urandom(4).hex(), "product": product, "plan": plan, "tier": tier,
                "settings": settings if settings is not None else {"admin_email": "a@b.test"}}
        r = h.post(f"/api/v1/customers/{c['id']}/instances", body=body)
        self.assertEqual(r.status, 202, r)
        return r.json()

    def wait_status(self, h, instance_id, statuses, timeout=120):
        def check():
            r = h.get(f"/api/v1/instances/{instance_id}")
            if r.status == 404 and "deleted" in statuses:
                return {"status": "deleted"}
            s = r.json()
            return s if s["status"] in statuses else None
        return wait_until(check, timeout, interval=0.1, what=f"instance {instance_id} to be {statuses}")

    def job(self, h, job_id):
        return h.get(f"/api/v1/jobs/{job_id}").json()

    def dead_letters(self, h, job_id, closed=False):
        """The job's dead letters: the open ones, or all of them in order with closed=True."""
        query = "?include_closed=true" if closed else ""
        return [d for d in h.get(f"/api/v1/dlq{query}").json()["items"] if d["job_id"] == job_id]

    def assertBackoff(self, h, job):
        """Each retry waited its backoff: after attempt n the delay is drawn from [d/2, d], where
        d = min(base * 2^(n-1), cap). The host logs the delay it drew; the gap between two recorded
        attempts is that delay plus the next attempt's own work, which a loaded machine only
        lengthens (hence the slack above d, and a small tolerance below for the clock)."""
        base, cap = int(FAST["FT_JOB_BACKOFF_MS"]), int(FAST["FT_JOB_BACKOFF_MAX_MS"])
        bounds = [min(base * 2 ** n, cap) for n in range(len(job["history"]) - 1)]
        logged = re.compile(rf"worker: job {job['id']} attempt (\d+) failed .*; retrying in (\d+) ms$")

        def drawn():
            found = {}
            for line in h.log_lines():
                m = logged.match(line.get("msg", ""))
                if m:
                    found[int(m.group(1))] = int(m.group(2))
            return found if len(found) == len(bounds) else None
        delays = wait_until(drawn, 30, what="the host's retry lines")
        at = [datetime.datetime.fromisoformat(a["at"]) for a in job["history"]]
        gaps = [(b - a).total_seconds() for a, b in zip(at, at[1:])]
        for n, (d, gap) in enumerate(zip(bounds, gaps), 1):
            delay = delays[n]
            with self.subTest(attempt=n, bound_ms=d, drawn_ms=delay, gaps=gaps):
                self.assertGreaterEqual(delay, d // 2)
                self.assertLessEqual(delay, d)
                self.assertGreaterEqual(gap, delay / 1000 - CLOCK_TOLERANCE_S)
                self.assertLessEqual(gap, d / 1000 + LOAD_SLACK_S)

    def effects(self, instance_id):
        return int(self.tenants(f"SELECT count(*) FROM faulty.effects WHERE tenant_id = '{instance_id}'"))


class Pipeline(PipelineCase):

    # ---------------------------------------------------------------- the happy paths

    def test_standard_provisioning_reaches_active_and_deprovisioning_removes_it(self):
        h = self.host()
        c = customer(h)
        r = h.post(f"/api/v1/customers/{c['id']}/instances",
                   body={"code": "clinic", "product": "vet", "plan": "professional", "settings": {"admin_email": "vet@x.test"}})
        i = r.json()
        a = self.wait_status(h, i["id"], ["active"])
        self.assertEqual(a["data_location"], {"tier": "standard", "database": "farutech_tenants", "schema": "vet"})
        ready = [x for x in a["conditions"] if x["type"] == "Ready"][0]
        self.assertEqual((ready["status"], ready["reason"]), (True, "Provisioned"))
        job = self.job(h, i["latest_job"]["id"])
        self.assertEqual(job["status"], "succeeded")
        self.assertTrue(all(s["status"] == "succeeded" for s in job["steps"]), job)
        self.assertEqual(job["progress"]["done"], job["progress"]["total"])
        self.assertEqual(self.tenants(f"SELECT email FROM vet.users WHERE tenant_id = '{i['id']}'"), "vet@x.test")
        self.assertGreater(int(self.tenants(f"SELECT count(*) FROM vet.species WHERE tenant_id = '{i['id']}'")), 0)
        types = self.stack.psql(f"SELECT string_agg(type, ',' ORDER BY seq) FROM ft_outbox WHERE aggregate_id = '{i['id']}'",
                                h.dbname)
        self.assertIn("dev.farutech.instance.provisioned.v1", types)
        self.assertIn("dev.farutech.job.succeeded.v1", types)

        self.assertEqual(h.request("DELETE", f"/api/v1/instances/{i['id']}").status, 202)
        self.wait_status(h, i["id"], ["deleted"])
        self.assertEqual(self.tenants(f"SELECT count(*) FROM vet.users WHERE tenant_id = '{i['id']}'"), "0")
        self.assertEqual(self.stack.psql(f"SELECT status FROM ft_instances WHERE id = '{i['id']}'", h.dbname), "deleted")

    def test_enterprise_provisioning_gets_its_own_database_and_deprovisioning_drops_it(self):
        archive = tempfile.mkdtemp(prefix="archive-", dir=self.stack.dir)
        h = self.host(env={"FT_ARCHIVE_DIR": archive})
        c = customer(h)
        i = self.create(h, c, product="erp", plan="essentials", tier="enterprise")
        a = self.wait_status(h, i["id"], ["active"])
        db = a["data_location"]["database"]
        self.assertEqual(db, "ft_" + i["id"].replace("-", ""))
        self.assertEqual(self.stack.psql("SELECT count(*) FROM erp.users WHERE role = 'admin'", db), "1")
        self.assertGreater(int(self.stack.psql("SELECT count(*) FROM erp.accounts", db)), 0)
        self.assertEqual(h.request("DELETE", f"/api/v1/instances/{i['id']}").status, 202)
        self.wait_status(h, i["id"], ["deleted"])
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{db}'"), "0")
        dumps = [f for f in os.listdir(archive) if i["id"] in f and f.endswith(".dump")]
        self.assertEqual(len(dumps), 1, os.listdir(archive))
        self.assertGreater(os.path.getsize(os.path.join(archive, dumps[0])), 0)

    # ---------------------------------------------------------------- failures, retries, DLQ

    def test_a_step_failing_twice_then_succeeding_ends_active_with_attempts_recorded(self):
        # retries a second or more apart: time to see two failures and remove the fault before the
        # budget of five attempts runs out, even on a busy machine
        h = self.host(env={"FT_JOB_BACKOFF_MS": "1000"})
        c = customer(h)
        fault = os.path.join(self.stack.dir, "fault-" + os.urandom(4).hex())
        open(fault, "w").close()
        i = self.create(h, c, settings={"fail_while_exists": fault})
        wait_until(lambda: len([a for a in self.job(h, i["latest_job"]["id"])["history"] if a["outcome"] == "failed"]) >= 2,
                   120, interval=0.05, what="two failed attempts")
        os.remove(fault)
        self.wait_status(h, i["id"], ["active"])
        job = self.job(h, i["latest_job"]["id"])
        self.assertEqual(job["status"], "succeeded")
        # every attempt is in the history, the last one the success; more than two failed if an
        # attempt started before the file was gone
        outcomes = [a["outcome"] for a in job["history"]]
        self.assertGreaterEqual(len(outcomes), 3)
        self.assertEqual(outcomes, ["failed"] * (len(outcomes) - 1) + ["succeeded"])
        self.assertEqual(job["attempts"], len(outcomes))
        self.assertIn("fault file", job["history"][0]["error"])
        self.assertEqual(job["history"][0]["step"], "flaky")
        self.assertEqual(self.effects(i["id"]), 1)
        retrying = self.stack.psql(f"SELECT count(*) FROM ft_outbox WHERE type = 'dev.farutech.job.retrying.v1' "
                                   f"AND aggregate_id = '{i['id']}'", h.dbname)
        self.assertGreaterEqual(int(retrying), 2)

    def test_a_poison_step_gets_five_attempts_with_backoff_then_the_dlq_and_replay_fixes_it_once(self):
        h = self.host()
        c = customer(h)
        fault = os.path.join(self.stack.dir, "poison-" + os.urandom(4).hex())
        open(fault, "w").close()
        i = self.create(h, c, settings={"fail_while_exists": fault})
        failed = self.wait_status(h, i["id"], ["failed"])
        self.assertIn("fault file", failed["status_reason"])
        degraded = [x for x in failed["conditions"] if x["type"] == "Degraded"][0]
        self.assertTrue(degraded["status"])
        job = self.job(h, i["latest_job"]["id"])
        self.assertEqual((job["status"], job["attempts"]), ("failed", 5))
        self.assertEqual(len(job["history"]), 5)
        self.assertBackoff(h, job)
        dlq = self.dead_letters(h, job["id"])
        self.assertEqual(len(dlq), 1)
        d = dlq[0]
        self.assertEqual((d["state"], d["kind"], d["subject"]), ("open", "provision", "ft.dlq.provision"))
        self.assertEqual(len(d["attempts"]), 5)
        self.assertGreater(d["stream_sequence"], 0)
        ev = self.stack.psql(f"SELECT event->'data'->>'dlq_id' FROM ft_outbox WHERE type = 'dev.farutech.job.failed.v1' "
                             f"AND aggregate_id = '{i['id']}'", h.dbname)
        self.assertEqual(ev, d["id"])

        os.remove(fault)
        r = h.post(f"/api/v1/dlq/{d['id']}/replay")
        self.assertEqual(r.status, 202, r)
        self.assertTrue(r.json()["replayed_now"])
        r2 = h.post(f"/api/v1/dlq/{d['id']}/replay")
        self.assertEqual(r2.status, 202)
        self.assertFalse(r2.json()["replayed_now"])
        self.wait_status(h, i["id"], ["active"])
        time.sleep(1.5)
        job = self.job(h, job["id"])
        self.assertEqual((job["status"], job["attempts"]), ("succeeded", 1))
        self.assertEqual(self.effects(i["id"]), 1)
        self.assertEqual(h.get("/api/v1/dlq").json()["items"], [x for x in h.get("/api/v1/dlq").json()["items"]
                                                                if x["id"] != d["id"]])
        self.assertProblem(h.request("DELETE", f"/api/v1/dlq/{d['id']}"), 409, "dlq-entry-replayed")

    def test_a_fatal_error_goes_to_the_dlq_without_retries_and_can_be_discarded(self):
        h = self.host()
        c = customer(h)
        i = self.create(h, c, settings={"fatal": True})
        self.wait_status(h, i["id"], ["failed"])
        job = self.job(h, i["latest_job"]["id"])
        self.assertEqual(job["attempts"], 1)
        self.assertFalse(job["history"][0]["retryable"])
        d = self.dead_letters(h, job["id"])[0]
        self.assertEqual(h.request("DELETE", f"/api/v1/dlq/{d['id']}").status, 204)
        self.assertEqual(self.dead_letters(h, job["id"]), [])
        [closed] = self.dead_letters(h, job["id"], closed=True)
        self.assertEqual(closed["state"], "discarded")
        self.assertProblem(h.post(f"/api/v1/dlq/{d['id']}/replay"), 409, "dlq-entry-discarded")
        self.assertProblem(h.post("/api/v1/dlq/00000000-0000-4000-8000-000000000000/replay"), 404, "dlq-entry-not-found")

    def test_a_dead_letter_of_a_removed_instance_is_not_replayed(self):
        h = self.host()
        c = customer(h)
        i = self.create(h, c, settings={"fatal": True})
        self.wait_status(h, i["id"], ["failed"])
        job_id = i["latest_job"]["id"]
        [d] = self.dead_letters(h, job_id)
        self.assertEqual(h.request("DELETE", f"/api/v1/instances/{i['id']}").status, 202)
        self.wait_status(h, i["id"], ["deleted"])
        p = self.assertProblem(h.post(f"/api/v1/dlq/{d['id']}/replay"), 409, "dlq-instance-removed")
        self.assertEqual((p["instance_id"], p["instance_status"]), (i["id"], "deleted"))
        self.assertIn(f"DELETE /api/v1/dlq/{d['id']}", p["detail"])
        self.assertEqual(self.job(h, job_id)["status"], "failed")  # nothing queued again
        [still] = self.dead_letters(h, job_id)
        self.assertEqual(still["state"], "open")
        self.assertEqual(h.request("DELETE", f"/api/v1/dlq/{d['id']}").status, 204)

    def test_ddl_in_a_step_fails_for_good_with_a_hint_to_tenant_migrations(self):
        h = self.host()
        c = customer(h)
        i = self.create(h, c, settings={"ddl": True})
        self.wait_status(h, i["id"], ["failed"])
        job = self.job(h, i["latest_job"]["id"])
        self.assertEqual(job["attempts"], 1)
        [attempt] = job["history"]
        self.assertEqual(attempt["step"], "ddl")
        self.assertFalse(attempt["retryable"])
        self.assertIn("permission denied for schema faulty (SQLSTATE 42501)", attempt["error"])
        self.assertIn("declare DDL as a tenant-schema migration", attempt["error"])
        self.assertIn("ftp_migration_t", attempt["error"])

    def test_a_plugins_log_line_in_a_step_carries_its_product(self):
        h = self.host()
        c = customer(h)
        i = self.create(h, c)
        self.wait_status(h, i["id"], ["active"])
        [line] = [l for l in h.log_lines() if l["msg"].endswith(": touched") and i["id"] in l["msg"]]
        self.assertEqual(line["product"], "faulty")
        self.assertEqual(line["request_id"], self.job(h, i["latest_job"]["id"])["correlation_id"])

    def test_a_replayed_job_that_fails_again_is_a_new_dead_letter_and_a_replay_after_a_fix_runs_the_fixed_steps(self):
        plugins = tempfile.mkdtemp(prefix="plugins-", dir=self.stack.dir)  # this test reloads faulty: its own copy
        for f in os.listdir(self.plugins):
            shutil.copy(os.path.join(self.plugins, f), plugins)
        h = self.host(env={"FT_PLUGIN_DIR": plugins})
        c = customer(h)
        fault = os.path.join(self.stack.dir, "unfixed-" + os.urandom(4).hex())
        open(fault, "w").close()
        i = self.create(h, c, settings={"fail_while_exists": fault})
        job_id = i["latest_job"]["id"]

        def dead_letters():
            return self.dead_letters(h, job_id, closed=True)

        def open_letter(n):
            ds = dead_letters()
            return ds[n - 1] if len(ds) >= n and ds[n - 1]["state"] == "open" else None

        # round 0: five failed attempts, then the first dead letter
        first = wait_until(lambda: open_letter(1), 60, interval=0.1, what="the first dead letter")
        self.wait_status(h, i["id"], ["failed"])
        # round 1: replayed while the step still fails; a new dead letter, the first stays replayed
        self.assertTrue(h.post(f"/api/v1/dlq/{first['id']}/replay").json()["replayed_now"])
        second = wait_until(lambda: open_letter(2), 60, interval=0.1, what="a second dead letter after the replay")
        self.wait_status(h, i["id"], ["failed"])
        self.assertEqual([d["state"] for d in dead_letters()], ["replayed", "open"])
        self.assertFalse(h.post(f"/api/v1/dlq/{first['id']}/replay").json()["replayed_now"])
        self.assertNotEqual(second["stream_sequence"], first["stream_sequence"])  # its own message in the DLQ stream
        self.assertEqual([(a["round"], a["attempt"]) for a in first["attempts"]], [(0, n) for n in range(1, 6)])
        self.assertEqual([(a["round"], a["attempt"]) for a in second["attempts"]],
                         [(0, n) for n in range(1, 6)] + [(1, n) for n in range(1, 6)])

        # the product ships a fix that renames the failing step: "flaky" is gone, "steady" runs in its place
        tmp = os.path.join(plugins, ".faulty.so.new")
        shutil.copy(FAULTY_FIXED, tmp)
        os.rename(tmp, os.path.join(plugins, "faulty.so"))
        self.assertEqual(h.post("/api/v1/plugins/faulty/reload").status, 200)
        # round 2: the replay runs the current generation's steps
        self.assertTrue(h.post(f"/api/v1/dlq/{second['id']}/replay").json()["replayed_now"])
        self.wait_status(h, i["id"], ["active"])
        job = self.job(h, job_id)
        self.assertEqual((job["status"], job["replays"], job["attempts"]), ("succeeded", 2, 1))
        self.assertEqual([(s["name"], s["status"]) for s in job["steps"]],
                         [("create_schema", "succeeded"), ("touch", "succeeded"), ("nap", "succeeded"), ("flaky", "skipped"),
                          ("steady", "succeeded"), ("doomed", "succeeded"), ("ddl", "succeeded")])
        steps = {s["name"]: s for s in job["steps"]}
        self.assertIn("faulty 2.0.0", steps["flaky"]["note"])
        self.assertEqual(steps["touch"]["attempts"], 1)  # done once, never run again
        self.assertEqual(self.tenants(f"SELECT string_agg(what, ',' ORDER BY what) FROM faulty.effects"
                                      f" WHERE tenant_id = '{i['id']}'"), "provisioned,steady")
        # the history: every attempt of every round, in order, never rewritten
        history = job["history"]
        self.assertEqual([(a["round"], a["attempt"], a["outcome"]) for a in history],
                         [(0, n, "failed") for n in range(1, 6)] + [(1, n, "failed") for n in range(1, 6)] + [(2, 1, "succeeded")])
        self.assertTrue(all(a["step"] == "flaky" and "fault file" in a["error"] for a in history[:10]), history)
        self.assertEqual({a["product_version"] for a in history[:10]}, {"1.0.0"})
        self.assertEqual((history[10]["product_version"], history[10]["error"]), ("2.0.0", None))
        self.assertGreater(history[10]["generation"], history[0]["generation"])
        start = [datetime.datetime.fromisoformat(a["started_at"]) for a in history]
        end = [datetime.datetime.fromisoformat(a["finished_at"]) for a in history]
        self.assertTrue(all(s <= e for s, e in zip(start, end)), history)
        self.assertTrue(all(e <= s for e, s in zip(end, start[1:])), history)  # one after the other
        self.assertEqual([d["state"] for d in dead_letters()], ["replayed", "replayed"])

    # ---------------------------------------------------------------- exactly one effect

    def test_the_same_event_published_twice_has_one_effect(self):
        h = self.host(env={"FT_ROLES": "api"})  # nothing runs until the duplicate is in place
        c = customer(h)
        i = self.create(h, c)
        db = h.dbname
        # a second outbox row carrying the same CloudEvent (same id): a different Nats-Msg-Id, so
        # JetStream stores both and only the workers' inbox can tell
        self.stack.psql("INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)"
                        " SELECT gen_random_uuid(), aggregate_type, aggregate_id, subject, type, event FROM ft_outbox"
                        f" WHERE aggregate_id = '{i['id']}' AND type = 'dev.farutech.instance.provisioning_requested.v1'", db)
        w = self.host(dbname=db, env={"FT_ROLES": "relay,worker", "FT_HTTP_LISTEN": "127.0.0.1:0"}, start=False)
        w.start(wait=False)
        self.wait_status(h, i["id"], ["active"])
        wait_until(lambda: self.stack.psql("SELECT count(*) FROM ft_outbox_pending", db) == "0", 60,
                   what="the outbox to drain")
        time.sleep(1.5)
        self.assertEqual(self.job(h, i["latest_job"]["id"])["attempts"], 1)
        self.assertEqual(self.effects(i["id"]), 1)
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_outbox WHERE aggregate_id = '{i['id']}'"
                                         " AND type = 'dev.farutech.job.succeeded.v1'", db), "1")
        w.terminate()

    def test_a_worker_killed_mid_step_finishes_after_restart_without_a_second_effect(self):
        db = self.stack.create_database()
        h = self.host(dbname=db, env={"FT_ROLES": "api,relay"})
        c = customer(h)
        i = self.create(h, c, settings={"sleep_ms": 8000})  # long enough to see it running and kill the worker
        w = self.host(dbname=db, env={"FT_ROLES": "worker", "FT_HTTP_LISTEN": "127.0.0.1:0"}, start=False)
        w.start(wait=False)
        # "touch" has committed its effect, "nap" is sleeping
        wait_until(lambda: [s["status"] for s in self.job(h, i["latest_job"]["id"])["steps"]][1:3] == ["succeeded", "running"],
                   120, interval=0.05, what="the nap step to be running")
        w.kill()
        w2 = self.host(dbname=db, env={"FT_ROLES": "worker", "FT_HTTP_LISTEN": "127.0.0.1:0"}, start=False)
        w2.start(wait=False)
        self.wait_status(h, i["id"], ["active"])
        job = self.job(h, i["latest_job"]["id"])
        self.assertEqual(job["attempts"], 2)
        self.assertEqual(job["steps"][1]["attempts"], 1)  # touch ran once
        self.assertEqual(job["steps"][2]["attempts"], 2)  # nap ran again
        self.assertEqual(self.effects(i["id"]), 1)
        w2.terminate()

    def test_jobs_fetched_behind_a_slow_one_go_to_an_idle_thread(self):
        """A worker thread fetches as many jobs as its recent ones suggest it runs in a second,
        starting from one: the thread that draws the slow job holds only it, and the other thread
        takes the quick ones, which end long before it."""
        db = self.stack.create_database()
        h = self.host(dbname=db, env={"FT_ROLES": "api,relay"})
        c = customer(h)
        slow = self.create(h, c, settings={"sleep_ms": 8000})
        quick = [self.create(h, c) for _ in range(4)]
        wait_until(lambda: self.stack.psql("SELECT count(*) FROM ft_outbox_pending", db) == "0", 60,
                   what="the requests in the work queue")  # so the first fetch may take all five
        w = self.host(dbname=db, env={"FT_ROLES": "worker", "FT_HTTP_LISTEN": "127.0.0.1:0", "FT_WORKER_THREADS": "2",
                                      "FT_WORKER_BATCH": "16"}, start=False)
        w.start(wait=False)
        for q in quick:
            self.wait_status(h, q["id"], ["active"], timeout=60)
        self.assertEqual(self.job(h, slow["latest_job"]["id"])["status"], "running")
        self.wait_status(h, slow["id"], ["active"])
        self.assertEqual(self.job(h, slow["latest_job"]["id"])["attempts"], 1)
        w.terminate()

    def test_a_relay_killed_between_publish_and_marking_causes_no_duplicate(self):
        db = self.stack.create_database()
        h = self.host(dbname=db, env={"FT_ROLES": "api,worker"})
        c = customer(h)
        i = self.create(h, c)
        r1 = self.host(dbname=db, env={"FT_ROLES": "relay", "FT_HTTP_LISTEN": "127.0.0.1:0", "FT_RELAY_CRASH_AFTER_PUBLISH": "true"},
                       start=False)
        r1.start(wait=False)
        self.assertEqual(r1.wait_exit(60), 137)
        unpublished = int(self.stack.psql("SELECT count(*) FROM ft_outbox_pending", db))
        self.assertGreater(unpublished, 0)  # published to JetStream, but never marked
        r2 = self.host(dbname=db, env={"FT_ROLES": "relay", "FT_HTTP_LISTEN": "127.0.0.1:0"}, start=False)
        r2.start(wait=False)
        self.wait_status(h, i["id"], ["active"])
        wait_until(lambda: self.stack.psql("SELECT count(*) FROM ft_outbox_pending", db) == "0", 60,
                   what="the outbox to drain")
        time.sleep(1.5)
        self.assertEqual(self.job(h, i["latest_job"]["id"])["attempts"], 1)
        self.assertEqual(self.effects(i["id"]), 1)
        r2.terminate()

    # ---------------------------------------------------------------- outages

    def test_two_relays_of_three_lanes_publish_every_event_once_and_each_aggregates_in_order(self):
        """Lanes and relays share the outbox by partition (a hash of the aggregate), each under the
        partition's lock: 600 events of 40 aggregates, committed in 20 transactions while two relays
        of three lanes publish them in batches of 7, reach FT_EVENTS once each and, per aggregate,
        in the order they were committed."""
        db = self.stack.create_database()
        self.host(dbname=db, env={"FT_ROLES": "api"})  # the schema
        relays = [self.host(dbname=db, env={"FT_ROLES": "relay", "FT_HTTP_LISTEN": "127.0.0.1:0", "FT_RELAY_LANES": "3",
                                            "FT_RELAY_BATCH": "7"}, start=False) for _ in range(2)]
        for r in relays:
            r.start(wait=False)
        subject = f"ft.events.order{os.urandom(4).hex()}.v1"
        for k in range(20):
            self.stack.psql("INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)"
                            f" SELECT u, 'order', (g % 40)::text, '{subject}', 'dev.farutech.order.v1',"
                            "        jsonb_build_object('id', u, 'aggregate', (g % 40)::text, 'n', g)"
                            f" FROM (SELECT gen_random_uuid() AS u, g FROM generate_series({k * 30 + 1}, {k * 30 + 30}) g) x", db)
        wait_until(lambda: self.stack.psql("SELECT count(*) FROM ft_outbox_pending", db) == "0", 60, what="the outbox to drain")
        with JetStream(self.stack.nats_url) as js:
            events = [e for s, e in js.messages("FT_EVENTS") if s == subject]
        self.assertEqual(sorted(e["n"] for e in events), list(range(1, 601)))  # each once
        by_aggregate = {}
        for e in events:
            by_aggregate.setdefault(e["aggregate"], []).append(e["n"])
        self.assertEqual({a: ns for a, ns in by_aggregate.items() if ns != sorted(ns)}, {})
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_outbox JOIN ft_outbox_published USING (seq)"
                                         f" WHERE subject = '{subject}'", db), "600")
        for r in relays:
            r.terminate()

    def test_nats_down_for_ten_seconds_during_a_burst_of_200_provisions(self):
        h = self.host(env={"FT_WORKER_THREADS": "4"})
        c = customer(h)
        ids = [self.create(h, c)["id"] for _ in range(100)]
        self.stack.stop_nats()
        try:
            ids += [self.create(h, c)["id"] for _ in range(100)]  # accepted while NATS is down: the outbox keeps them
            time.sleep(10)
        finally:
            self.stack.start_nats()

        def all_active():
            n = int(self.stack.psql("SELECT count(*) FROM ft_instances WHERE status = 'active' AND id = ANY('{%s}'::uuid[])"
                                    % ",".join(ids), h.dbname))
            return n == len(ids) or None
        wait_until(all_active, 180, interval=0.5, what="all 200 instances active")
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_jobs WHERE status <> 'succeeded' AND instance_id = ANY('{%s}'::uuid[])"
                                         % ",".join(ids), h.dbname), "0")

    def test_postgresql_restarted_during_a_burst_loses_nothing(self):
        h = self.host(env={"FT_WORKER_THREADS": "4"})
        c = customer(h)
        ids = [self.create(h, c, settings={"sleep_ms": 200})["id"] for _ in range(60)]
        self.stack._run("stop-pg")
        time.sleep(2)
        self.stack._run("start-pg")

        def all_active():
            n = int(self.stack.psql("SELECT count(*) FROM ft_instances WHERE status = 'active' AND id = ANY('{%s}'::uuid[])"
                                    % ",".join(ids), h.dbname))
            return n == len(ids) or None
        wait_until(all_active, 180, interval=0.5, what="all instances active after the restart")
        wait_until(lambda: h.get("/ready").status == 200, 60, what="ready again")


if __name__ == "__main__":
    main()
