"""Several hosts on a three-node NATS cluster (JetStream R3), under faults: two API hosts, a relay
and two workers on one control-plane database. While 200 provisions run, one NATS node is killed
(SIGKILL) and restarted, then the JetStream meta leader, then an API host. Every provision must end
active exactly once, every event reach JetStream exactly once, and nothing land in the DLQ. The
figures (faults, lost, duplicated, time to recover after each fault) are printed and written to
<build>/cluster-figures.json."""
import collections
import datetime
import http.client
import json
import os
import sys
import threading
import time

from fixtures import customer
from harness import BUILD, FAULTY, NatsCluster, StackTestCase, main, plugin_dir, wait_until
from jetstream import JetStream

PROVISIONS = 200
NAP_MS = 100  # each provision's "nap" step: provisions are still running when a fault strikes
# when the client sends instance n: in blocks, each released once the fault before it is injected
GATES = (60, 110, 160, PROVISIONS)
FIGURES = os.path.join(BUILD, "cluster-figures.json")
ENV = {"FT_NATS_REPLICAS": "3", "FT_WORKER_THREADS": "2", "FT_RELAY_POLL_MS": "1000", "FT_JOB_ACK_WAIT_MS": "5000",
       "FT_JOB_BACKOFF_MS": "200", "FT_JOB_BACKOFF_MAX_MS": "2000", "FT_LOG_LEVEL": "info"}


class Client:
    """Creates instances through the API hosts in turn, as a client behind a load balancer would:
    each create carries an Idempotency-Key, and a request that fails on one host (refused, reset,
    timed out, 5xx) is sent again, same key, to the next; a host that failed gets no more."""

    def __init__(self, hosts, customer_id, run):
        self.hosts, self.customer_id, self.run = hosts, customer_id, run
        self.down = set()
        self.retries = []  # (n, host index, error)
        self.replayed = 0

    def create(self, n):
        body = {"code": f"c{n:03d}", "product": "faulty", "plan": "basic", "tier": "standard",
                "settings": {"admin_email": "ops@cluster.test", "sleep_ms": NAP_MS}}
        headers = {"Idempotency-Key": f"{self.run}-{n}"}
        deadline = time.monotonic() + 60
        k = n
        while time.monotonic() < deadline:
            i = k % len(self.hosts)
            k += 1
            if len(self.down) == len(self.hosts):
                break
            if i in self.down:
                continue
            try:
                r = self.hosts[i].post(f"/api/v1/customers/{self.customer_id}/instances", body=body, headers=headers, timeout=10)
                if r.status == 202:
                    self.replayed += r.headers.get("idempotent-replayed") == "true"
                    return r.json()
                if r.status < 500:
                    raise AssertionError(f"instance {n}: {r}")
                error = f"HTTP {r.status}"
            except (OSError, http.client.HTTPException) as e:
                error = repr(e)
                self.down.add(i)
            self.retries.append((n, i, error))
        raise AssertionError(f"instance {n} was not accepted by any API host: {self.retries[-3:]}")


class ReadyWatch:
    """Samples /ready of each API host (as a load balancer's health check would) until stopped, and
    sums how long each answered anything but 200, keeping the first answers that were not."""

    def __init__(self, hosts, every=0.1):
        self.hosts, self.every = hosts, every
        self.unready = [0.0] * len(hosts)
        self.why = []
        self.gone = set()  # hosts the test killed
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def forget(self, i):
        """Host i is about to be killed: its silence from now on is expected."""
        self.gone.add(i)

    def _run(self):
        last = time.monotonic()
        while not self.stop.wait(self.every):
            now = time.monotonic()
            for i, h in enumerate(self.hosts):
                if i in self.gone:
                    continue
                try:
                    r = h.get("/ready", auth=None, timeout=2)
                    why = None if r.status == 200 else r.body.decode(errors="replace")[:300]
                except (OSError, http.client.HTTPException) as e:
                    why = repr(e)
                if why is not None and i not in self.gone:
                    self.unready[i] += now - last
                    if len(self.why) < 5:
                        self.why.append((i, why))
            last = now

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        return [round(x, 1) for x in self.unready]


class Cluster(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plugins = plugin_dir(cls.stack.dir, FAULTY)

    def setUp(self):
        super().setUp()
        self.failures = []  # what stopped the client thread

    def sql(self, query):
        return self.stack.psql(query, self.db)

    def count(self, query):
        return int(self.sql(query))

    def db_now(self):
        return datetime.datetime.fromisoformat(self.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                                                        "'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00')"))

    def started(self, roles, first):
        """A host of these roles on the test's database, its NATS list starting with node first."""
        return self.host(dbname=self.db, env={"FT_PLUGIN_DIR": self.plugins, "FT_ROLES": roles, "FT_NATS_URL": self.nats.urls(first),
                                              **ENV})

    def assertClientAlive(self):
        """Fails at once when the client gave up: no point waiting for provisions then."""
        if self.failures:
            raise AssertionError(f"the client failed: {self.failures[0]!r}")

    def active_since(self, since):
        """Provisions requested after `since` (PostgreSQL time) that are active now."""
        self.assertClientAlive()
        return self.count(f"SELECT count(*) FROM ft_instances WHERE customer_id = '{self.customer_id}'"
                          f" AND status = 'active' AND created_at > '{since.isoformat()}'")

    def recovered(self, name, since):
        """Waits until a provision requested after the fault is active; returns the seconds from the
        fault to the first such provision's end (its job's finish: the recovery), and the phases on
        its way: the first job request published to JetStream and the first job a worker started."""
        wait_until(lambda: self.active_since(since) > 0, 120, interval=0.1, what=f"a provision requested after {name} to end active")
        t = f"'{since.isoformat()}'::timestamptz"
        row = self.sql(f"SELECT extract(epoch FROM min(j.finished_at) - {t}), extract(epoch FROM min(j.started_at) - {t}),"
                       f" (SELECT extract(epoch FROM min(published_at) - {t}) FROM ft_outbox JOIN ft_outbox_published USING (seq)"
                       f"  WHERE subject LIKE 'ft.jobs.%' AND created_at > {t})"
                       " FROM ft_jobs j JOIN ft_instances i ON i.id = j.instance_id"
                       f" WHERE i.customer_id = '{self.customer_id}' AND i.created_at > {t} AND j.status = 'succeeded'")
        done, started, published = (round(float(x), 3) for x in row.split("|"))
        return {"fault": name, "at": since.isoformat(), "recovery_s": done, "first_request_published_s": published,
                "first_job_started_s": started}

    def test_200_provisions_survive_killing_a_nats_node_the_meta_leader_and_an_api_host(self):
        t_start = time.monotonic()
        self.nats = NatsCluster(self.stack.dir)
        self.addCleanup(self.nats.stop)
        self.nats.start()
        self.db = self.stack.create_database()
        api = [self.started("api", 0), self.started("api", 1)]
        self.started("relay", 2)
        self.started("worker", 0)
        self.started("worker", 1)
        self.customer_id = customer(api[0])["id"]
        client = Client(api, self.customer_id, os.urandom(4).hex())

        # the client: instance n once the gate passed n
        gate = [0]
        cond = threading.Condition()
        created, failures = {}, self.failures

        def send():
            try:
                for n in range(PROVISIONS):
                    with cond:
                        if not cond.wait_for(lambda: n < gate[0], timeout=300):
                            raise AssertionError(f"the gate never opened for instance {n}")
                    created[n] = client.create(n)
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                failures.append(e)

        def open_gate(n):
            with cond:
                gate[0] = n
                cond.notify_all()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        self.addCleanup(lambda: (open_gate(PROVISIONS), sender.join(120)))
        ready = ReadyWatch(api)
        self.addCleanup(ready.finish)

        def ended(n):
            self.assertClientAlive()
            return self.count(f"SELECT count(*) FROM ft_instances WHERE customer_id = '{self.customer_id}'"
                              " AND status = 'active'") >= n

        faults = []
        open_gate(GATES[0])
        wait_until(lambda: ended(GATES[0] // 2), 120, interval=0.1, what="the first provisions to end")

        # fault 1: a node that is not the meta leader but leads the job stream (moved off the meta
        # leader first if need be): the relay's publishes and the workers' consumer lose their leader
        leader = self.nats.wait_meta_leader()
        if self.nats.stream_leaders().get("FT_JOBS") in (leader, None):
            self.nats.step_down("FT_JOBS")
        leaders = wait_until(lambda: (lambda s: s if s.get("FT_JOBS") not in (leader, None) else None)(self.nats.stream_leaders()),
                             60, interval=0.1, what="FT_JOBS led by a node other than the meta leader")
        victim = leaders["FT_JOBS"]
        at = self.db_now()
        self.nats.kill(victim)
        open_gate(GATES[1])
        fig = self.recovered(f"kill -9 nats node {self.nats.node_name(victim)}", at)
        fig["streams_it_led"] = sorted(s for s, i in leaders.items() if i == victim)
        t = time.monotonic()
        self.nats.restart(victim)
        fig["rejoined_and_current_s"] = round(time.monotonic() - t, 3)
        faults.append(fig)

        # fault 2: the JetStream meta leader
        leader = self.nats.wait_meta_leader()
        leaders = self.nats.stream_leaders()
        at = self.db_now()
        self.nats.kill(leader)
        open_gate(GATES[2])
        t = time.monotonic()
        new_leader = self.nats.wait_meta_leader()
        elected_s = round(time.monotonic() - t, 3)
        fig = self.recovered(f"kill -9 nats meta leader {self.nats.node_name(leader)}", at)
        fig.update(new_meta_leader=self.nats.node_name(new_leader), new_meta_leader_s=elected_s)
        fig["streams_it_led"] = sorted(s for s, i in leaders.items() if i == leader)
        t = time.monotonic()
        self.nats.restart(leader)
        fig["rejoined_and_current_s"] = round(time.monotonic() - t, 3)
        faults.append(fig)

        # fault 3: an API host, while the client is sending (a request may be in flight on it)
        open_gate(GATES[3])
        wait_until(lambda: self.assertClientAlive() or len(created) >= GATES[2] + 10, 60, interval=0.01,
                   what="the client to be sending again")
        at = self.db_now()
        ready.forget(0)
        api[0].kill()
        fig = self.recovered("kill -9 api host 1", at)
        fig["client_retries"] = len(client.retries)
        faults.append(fig)

        sender.join(300)
        self.assertEqual(failures, [])
        self.assertFalse(sender.is_alive(), "the client never finished")
        self.assertEqual(len(created), PROVISIONS)
        wait_until(lambda: ended(PROVISIONS), 180, interval=0.2, what=f"all {PROVISIONS} provisions active")
        wait_until(lambda: self.count("SELECT count(*) FROM ft_outbox_pending") == 0, 120, interval=0.2,
                   what="the outbox to drain")
        figures = self.check_exactly_once(created, faults, client, time.monotonic() - t_start)
        figures["api_hosts_unready_s"] = ready.finish()
        print("\ncluster figures: " + json.dumps(figures, indent=2), file=sys.stderr)
        with open(FIGURES, "w") as f:
            json.dump(figures, f, indent=2)
        # the API hosts only write the outbox: NATS faults must not take them out of a load balancer
        self.assertEqual(figures["api_hosts_unready_s"], [0.0] * len(api), ready.why)

    def check_exactly_once(self, created, faults, client, elapsed):
        c = self.customer_id
        ids = {r["id"] for r in created.values()}
        self.assertEqual(len(ids), PROVISIONS)
        # instances: exactly the 200 asked for (a retried create made no second one), all active
        self.assertEqual(self.sql(f"SELECT count(*), count(*) FILTER (WHERE status = 'active') FROM ft_instances"
                                  f" WHERE customer_id = '{c}'"), f"{PROVISIONS}|{PROVISIONS}")
        # jobs: one provision job per instance, succeeded at its first attempt; every step ran once
        jobs = self.sql(f"SELECT count(*), count(DISTINCT j.instance_id), count(*) FILTER (WHERE j.status = 'succeeded'"
                        f" AND j.attempts = 1) FROM ft_jobs j JOIN ft_instances i ON i.id = j.instance_id"
                        f" WHERE i.customer_id = '{c}' AND j.kind = 'provision'")
        self.assertEqual(jobs, f"{PROVISIONS}|{PROVISIONS}|{PROVISIONS}")
        steps_twice = self.sql(f"SELECT count(*) FROM ft_job_steps s JOIN ft_jobs j ON j.id = s.job_id"
                               f" JOIN ft_instances i ON i.id = j.instance_id WHERE i.customer_id = '{c}'"
                               " AND (s.status <> 'succeeded' OR s.attempts <> 1)")
        self.assertEqual(steps_twice, "0")
        # the history: one attempt per job, a success (no attempt failed, none was interrupted)
        attempts = self.sql(f"SELECT count(*), count(*) FILTER (WHERE a.outcome = 'succeeded'), count(DISTINCT a.job_id)"
                            f" FROM ft_job_attempts a JOIN ft_jobs j ON j.id = a.job_id JOIN ft_instances i ON i.id = j.instance_id"
                            f" WHERE i.customer_id = '{c}'")
        self.assertEqual(attempts, f"{PROVISIONS}|{PROVISIONS}|{PROVISIONS}")
        effects = self.stack.psql("SELECT count(*) FROM faulty.effects WHERE what = 'provisioned' AND tenant_id = ANY('{%s}'::uuid[])"
                                  % ",".join(ids), "farutech_tenants")
        self.assertEqual(effects, str(PROVISIONS))
        # the DLQ: nothing, in the database or the stream
        self.assertEqual(self.count("SELECT count(*) FROM ft_dlq"), 0)

        outbox = {}
        for line in self.sql("SELECT id, subject, type, aggregate_id FROM ft_outbox").splitlines():
            i, subject, typ, agg = line.split("|")
            outbox[i] = (subject, typ, agg)
        with JetStream(self.nats.live_url()) as js:
            events = js.messages("FT_EVENTS")
            jobs_state = js.request("$JS.API.STREAM.INFO.FT_JOBS", {})["state"]
            dlq_state = js.request("$JS.API.STREAM.INFO.FT_DLQ", {})["state"]
        self.assertEqual(dlq_state["last_seq"], 0, dlq_state)
        in_stream = collections.Counter(data["id"] for _, data in events)
        want = {i for i, (subject, _, _) in outbox.items() if subject.startswith("ft.events.")}
        lost = sorted(want - set(in_stream))
        doubled = sorted(i for i, n in in_stream.items() if n > 1)
        strangers = sorted(set(in_stream) - want)
        # job requests: the work queue keeps no acknowledged message, but its last sequence counts
        # every message it ever stored (a duplicate within the window is refused, not stored)
        job_rows = sum(1 for subject, _, _ in outbox.values() if subject.startswith("ft.jobs."))
        provisioned = collections.Counter(outbox[data["id"]][2] for _, data in events
                                          if data["type"] == "dev.farutech.instance.provisioned.v1" and data["id"] in outbox)
        figures = {
            "provisions": PROVISIONS,
            "active": self.count(f"SELECT count(*) FROM ft_instances WHERE customer_id = '{c}' AND status = 'active'"),
            "faults_injected": len(faults),
            "faults": faults,
            "events_in_outbox": len(want),
            "events_in_stream": sum(in_stream.values()),
            "lost": len(lost),
            "duplicated": len(doubled),
            "job_requests_in_outbox": job_rows,
            "job_requests_stored": jobs_state["last_seq"],
            "client_retries": len(client.retries),
            "idempotent_replays": client.replayed,
            "elapsed_s": round(elapsed, 1),
        }
        self.assertEqual((lost, doubled, strangers), ([], [], []), figures)
        self.assertEqual(jobs_state["last_seq"], job_rows, figures)
        self.assertEqual(self.count("SELECT count(*) FROM ft_outbox_pending"), 0)
        self.assertEqual({i: provisioned[i] for i in ids}, {i: 1 for i in ids}, "one instance.provisioned.v1 per instance")
        wait_until(lambda: self.jobs_left() == 0, 60, interval=0.2, what="every job request acknowledged")
        return figures

    def jobs_left(self):
        with JetStream(self.nats.live_url()) as js:
            return js.request("$JS.API.STREAM.INFO.FT_JOBS", {})["state"]["messages"]


if __name__ == "__main__":
    main()
