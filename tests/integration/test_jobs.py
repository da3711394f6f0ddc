"""Jobs everywhere: GET /api/v1/jobs with its filters, cursor pages and scoping, and live progress
over Server-Sent Events (a job's steps, an instance's entitlements)."""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse

import contract
from fixtures import customer, instance, settled
from harness import FAULTY, HOST_BIN, OPENAPI_CHECK, StackTestCase, main, plugin_dir, wait_until


class SSE:
    """A Server-Sent Events client on a raw socket: sends the request, reads the status and the
    headers, then decodes the chunked body into records (an event, or a comment line)."""

    # what each event carries, checked against the OpenAPI document as Host.request checks answers
    SCHEMAS = {"job": "Job", "step": "JobStepEvent", "entitlements": "Entitlements"}

    def __init__(self, port, path, token, last_event_id=None, timeout=60):
        self.path = path
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n"
        if last_event_id is not None:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.raw, self.text, self.ended = b"", "", False
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        if "content-length" in self.headers:  # an answer, not a stream
            n = int(self.headers["content-length"])
            while len(self.raw) < n:
                self._recv()
            self.body, self.ended = self.raw[:n], True
            self.sock.close()
        elif self.status in (204, 304):
            self.body, self.ended = b"", True
            self.sock.close()
        if OPENAPI_CHECK:
            contract.check_raw(HOST_BIN, "GET", path, head, self.body if self.ended else b"")

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.raw += data

    def _decode(self):
        while True:
            if b"\r\n" not in self.raw:
                return
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            if size == 0:
                self.ended = True
                return
            self.text += rest[:size].decode()
            self.raw = rest[size + 2:]

    def record(self):
        """The next record: {"id", "event", "data"} or {"comment"}; None once the server ended the stream."""
        while "\n\n" not in self.text:
            if self.ended:
                self.sock.close()
                return None
            self._decode()
            if "\n\n" in self.text or self.ended:
                continue
            self._recv()
        block, self.text = self.text.split("\n\n", 1)
        rec = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                rec["comment"] = line[1:].strip()
            else:
                k, _, v = line.partition(": ")
                rec[k] = v
        if "data" in rec:
            rec["arrived"] = time.time()
            rec["json"] = json.loads(rec["data"])
            if OPENAPI_CHECK and rec.get("event") in self.SCHEMAS:
                contract.check_value(HOST_BIN, self.SCHEMAS[rec["event"]], rec["json"], f"GET {self.path} event {rec['event']}")
        return rec

    def event(self):
        """The next event, skipping heartbeats; None at the end of the stream."""
        while True:
            rec = self.record()
            if rec is None or "comment" not in rec:
                return rec

    def close(self):
        self.sock.close()


class JobsCase(StackTestCase):
    """Hosts with the products and the faulty test product (its nap step makes a job slow)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plugins = plugin_dir(cls.stack.dir, FAULTY)

    def host(self, start=True, **kw):
        env = {"FT_PLUGIN_DIR": self.plugins, "FT_RELAY_POLL_MS": "1000"}
        env.update(kw.pop("env", {}))
        return super().host(start=start, env=env, **kw)

    def create(self, h, c, product="faulty", plan="basic", settings=None):
        body = {"code": "j" + os.urandom(4).hex(), "product": product, "plan": plan,
                "settings": settings if settings is not None else {"admin_email": "a@b.test"}}
        r = h.post(f"/api/v1/customers/{c['id']}/instances", body=body)
        self.assertEqual(r.status, 202, r)
        return r.json()

    def job(self, h, job_id):
        r = h.get(f"/api/v1/jobs/{job_id}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_job(self, h, job_id, statuses=("succeeded",)):
        return wait_until(lambda: (lambda j: j if j["status"] in statuses else None)(self.job(h, job_id)), 120,
                          interval=0.05, what=f"job {job_id} to be {' or '.join(statuses)}")

    def jobs(self, h, auth="admin", **query):
        r = h.get("/api/v1/jobs?" + urllib.parse.urlencode(query), auth=auth)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def ids(self, h, auth="admin", **query):
        return {j["id"] for j in self.jobs(h, auth=auth, limit=200, **query)["items"]}


class TestJobList(JobsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # one database for the whole class: an API-only host queues, a worker host runs what is
        # queued while it lives, so the jobs end in different states
        cls.db = cls.stack.create_database()

    def test_filters_pages_and_scopes(self):
        h = self.host(dbname=self.db, env={"FT_ROLES": "api,relay"})
        c1, c2 = customer(h), customer(h)
        a = self.create(h, c1)                                         # faulty, customer 1
        b = self.create(h, c2, product="vet", plan="professional")     # vet, customer 2
        d = self.create(h, c2)                                         # faulty, customer 2
        w = self.host(dbname=self.db, env={"FT_ROLES": "worker", "FT_HTTP_LISTEN": "127.0.0.1:0"}, start=False)
        w.start(wait=False)
        for i in (a, b, d):
            self.wait_job(h, i["latest_job"]["id"])
        w.terminate()
        r = h.request("DELETE", f"/api/v1/instances/{a['id']}")
        self.assertEqual(r.status, 202, r)
        removal = self.job(h, r.json()["latest_job"]["id"])
        self.assertEqual((removal["kind"], removal["status"]), ("deprovision", "queued"))
        pa, pb, pd = (i["latest_job"]["id"] for i in (a, b, d))
        mine = {pa, pb, pd, removal["id"]}

        # the shape: the job as GET /api/v1/jobs/{id} has it, newest first, a null cursor at the end
        page = self.jobs(h, limit=200)
        self.assertIsNone(page["next_cursor"])
        listed = [j for j in page["items"] if j["id"] in mine]
        self.assertEqual([j["id"] for j in listed], [removal["id"], pd, pb, pa])
        self.assertEqual(listed[0], self.job(h, removal["id"]))
        # every filter, alone and together
        self.assertEqual(self.ids(h, status="queued") & mine, {removal["id"]})
        self.assertEqual(self.ids(h, status="succeeded") & mine, {pa, pb, pd})
        self.assertEqual(self.ids(h, kind="deprovision") & mine, {removal["id"]})
        self.assertEqual(self.ids(h, kind="provision") & mine, {pa, pb, pd})
        self.assertEqual(self.ids(h, product="vet") & mine, {pb})
        self.assertEqual(self.ids(h, instance_id=a["id"]), {pa, removal["id"]})
        self.assertEqual(self.ids(h, customer_id=c2["id"]), {pb, pd})
        self.assertEqual(self.ids(h, customer_id=c1["id"], kind="provision"), {pa})
        self.assertEqual(self.ids(h, customer_id=c2["id"], product="faulty", status="succeeded"), {pd})
        # created_after / created_before are exclusive bounds
        created = {j["id"]: j["created_at"] for j in listed}
        self.assertEqual(self.ids(h, created_after=created[pb]) & mine, {pd, removal["id"]})
        self.assertEqual(self.ids(h, created_before=created[pb]) & mine, {pa})
        self.assertEqual(self.ids(h, created_after=created[pa], created_before=created[pd]), {pb})
        self.assertEqual(self.ids(h, created_after="2999-01-01T00:00:00Z"), set())

        # pages of one and two walk everything once, in order
        for size in (1, 2, 3):
            seen, cursor = [], None
            while True:
                q = {"limit": size, **({"cursor": cursor} if cursor else {})}
                p = self.jobs(h, **q)
                self.assertLessEqual(len(p["items"]), size)
                seen += [j["id"] for j in p["items"]]
                cursor = p["next_cursor"]
                if cursor is None:
                    break
            self.assertEqual(seen, [j["id"] for j in page["items"]], f"pages of {size}")
            self.assertEqual(len(seen), len(set(seen)))

        # a customer's key sees its own jobs only, and cannot widen that with a filter
        k2 = h.make_key("customer-viewer", customer=c2["id"])
        self.assertEqual(self.ids(h, auth=k2), {pb, pd})
        self.assertEqual(self.ids(h, auth=k2, customer_id=c1["id"]), set())
        self.assertEqual(self.ids(h, auth=k2, instance_id=a["id"]), set())
        # a child app's key sees its instance's jobs only
        ck = h.make_key("child-app", customer=c2["id"], instance=d["id"])
        self.assertEqual(self.ids(h, auth=ck), {pd})

    def test_every_bad_parameter_is_a_problem_naming_it(self):
        h = self.host(dbname=self.db, env={"FT_ROLES": "api"})
        bad = [("status", "done"), ("kind", "reboot"), ("instance_id", "not-a-uuid"), ("customer_id", "123"),
               ("created_after", "yesterday"), ("created_before", "2026-13-01T00:00:00Z"),
               ("created_after", "2026-02-30T00:00:00Z"), ("limit", "0"), ("limit", "201"), ("limit", "x"),
               ("cursor", "nonsense"), ("cursor", "12.not-a-uuid"), ("product", "p" * 200)]
        for name, value in bad:
            r = h.get("/api/v1/jobs?" + urllib.parse.urlencode({name: value}))
            p = self.assertProblem(r, 400, "invalid-parameter")
            self.assertEqual(p["errors"][0]["parameter"], name, (name, value, p))
        # a well-formed timestamp with an offset is accepted
        r = h.get("/api/v1/jobs?" + urllib.parse.urlencode({"created_after": "2026-01-31T12:00:00.5+01:00"}))
        self.assertEqual(r.status, 200, r)


TERMINAL = ("succeeded", "failed")


class TestJobStream(JobsCase):
    def key(self, h):
        return h.admin_key

    def test_a_stream_follows_a_provision_step_by_step_and_ends_after_it(self):
        h = self.host()
        c = customer(h)
        i = self.create(h, c, settings={"admin_email": "a@b.test", "sleep_ms": 400})
        job_id = i["latest_job"]["id"]
        s = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h))
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["content-type"], "text/event-stream")
        self.assertEqual(s.headers["cache-control"], "no-store")
        events = []
        while (e := s.event()) is not None:
            self.assertIn(e["event"], ("job", "step"))
            events.append(e)
        s.close()
        final = self.job(h, job_id)
        self.assertEqual(final["status"], "succeeded")
        jobs = [e for e in events if e["event"] == "job"]
        # the first and the last event are the job, the last exactly as GET answers it, and nothing follows it
        self.assertEqual(events[0]["event"], "job")
        self.assertEqual(events[-1]["json"], final)
        self.assertTrue(all(e["json"]["status"] not in TERMINAL for e in jobs[:-1]), [e["json"]["status"] for e in jobs])
        ids = [int(e["id"]) for e in events]
        self.assertEqual(ids, sorted(ids), "ids never go back")
        steps = [e for e in events if e["event"] == "step"]
        self.assertEqual([int(e["id"]) for e in steps], sorted({int(e["id"]) for e in steps}), "each step change has its own id")
        # every step is seen, its statuses only move forward, and the slow one is seen running
        order = {"pending": 0, "running": 1, "succeeded": 2, "skipped": 2}
        for step in final["steps"]:
            seen = [next(x for x in e["json"]["steps"] if x["position"] == step["position"])["status"] if e["event"] == "job"
                    else e["json"]["step"]["status"] for e in events
                    if e["event"] == "job" or e["json"]["step"]["position"] == step["position"]]
            self.assertEqual(seen[-1], "succeeded", (step["name"], seen))
            self.assertEqual([order[x] for x in seen], sorted(order[x] for x in seen), (step["name"], seen))
        self.assertTrue([e for e in steps if e["json"]["step"]["name"] == "nap" and e["json"]["step"]["status"] == "running"],
                        "the nap step is seen running")
        self.assertGreaterEqual(len(jobs), 2)

        # resuming: after the first event only what changed since comes; after the last, 204
        r = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id=events[0]["id"])
        rest = []
        while (e := r.event()) is not None:
            rest.append(e)
        self.assertEqual([(e["id"], e["json"]) for e in rest if e["event"] == "job"], [(events[-1]["id"], final)])
        self.assertEqual([(e["id"], e["json"]) for e in rest if e["event"] == "step"], [(e["id"], e["json"]) for e in steps])
        done = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id=events[-1]["id"])
        self.assertEqual(done.status, 204)
        r.close()
        # without the Accept header the route answers JSON as before
        self.assertEqual(h.get(f"/api/v1/jobs/{job_id}").headers["content-type"], "application/json")

    def test_every_step_change_of_a_retried_provision_is_an_event_and_a_resume_gets_exactly_the_rest(self):
        h = self.host(env={"FT_JOB_BACKOFF_MS": "150", "FT_JOB_BACKOFF_MAX_MS": "1000", "FT_SWEEP_INTERVAL_MS": "200"})
        c = customer(h)
        fault = os.path.join(self.stack.dir, "fault-" + os.urandom(4).hex())
        open(fault, "w").close()
        i = self.create(h, c, settings={"admin_email": "a@b.test", "sleep_ms": 50, "fail_while_exists": fault})
        job_id = i["latest_job"]["id"]
        # Last-Event-ID 0: every change from the job's creation, whenever the client comes
        s = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id="0")
        self.assertEqual(s.status, 200)
        events = []
        while (e := s.event()) is not None:
            events.append(e)
            st = e["json"].get("step", {})
            if st.get("name") == "flaky" and st.get("status") == "failed" and os.path.exists(fault):
                os.unlink(fault)  # the next attempt succeeds
        s.close()
        final = self.job(h, job_id)
        self.assertEqual(final["status"], "succeeded")
        self.assertEqual(events[-1]["event"], "job")
        self.assertEqual(events[-1]["json"], final)
        self.assertGreaterEqual(final["attempts"], 2)
        ids = [int(e["id"]) for e in events]
        self.assertEqual(ids, sorted(ids), "ids never go back (a job event has the id of the last change it shows)")
        # each event body is what the API reference says it is
        contract.document(HOST_BIN)
        schemas = {"step": {"$ref": "#/components/schemas/JobStepEvent"}, "job": {"$ref": "#/components/schemas/Job"}}
        for e in events:
            self.assertEqual(contract._schema_errors(schemas[e["event"]], e["json"]), [], e)
        steps = [e for e in events if e["event"] == "step"]
        self.assertEqual([int(e["id"]) for e in steps], sorted({int(e["id"]) for e in steps}), "step ids strictly increase")
        self.assertTrue(all(e["json"]["job_id"] == job_id and e["json"]["seq"] == int(e["id"]) for e in steps))

        # exactly the step changes the database recorded, in their order
        rows = self.stack.psql(f"SELECT string_agg(concat_ws(',', seq, position, coalesce(from_status, '-'), status, attempts), ';'"
                               f" ORDER BY seq) FROM ft_job_changes WHERE job_id = '{job_id}' AND position IS NOT NULL", h.dbname)
        got = [f"{e['id']},{x['position']},{e['json']['previous_status'] or '-'},{x['status']},{x['attempts']}"
               for e in steps for x in [e["json"]["step"]]]
        self.assertEqual(got, rows.split(";"))
        # each step: created pending, every transition seen (each starts where the one before ended),
        # run once per attempt it made, and done at the end; the flaky one failed before it succeeded
        for step in final["steps"]:
            mine = [e["json"] for e in steps if e["json"]["step"]["position"] == step["position"]]
            statuses = [m["step"]["status"] for m in mine]
            self.assertEqual((mine[0]["previous_status"], statuses[0]), (None, "pending"), (step["name"], statuses))
            for a, b in zip(mine, mine[1:]):
                self.assertEqual(b["previous_status"], a["step"]["status"], (step["name"], statuses))
            self.assertEqual(statuses[-1], "succeeded", (step["name"], statuses))
            self.assertEqual(statuses.count("running"), step["attempts"], (step["name"], statuses))
            self.assertEqual(mine[-1]["step"], {k: step[k] for k in mine[-1]["step"]}, step["name"])
            if step["name"] != "flaky":
                self.assertEqual([x for x in statuses if x != "pending"], ["running", "succeeded"], (step["name"], statuses))
        flaky = [e["json"]["step"]["status"] for e in steps if e["json"]["step"]["name"] == "flaky"]
        self.assertIn("failed", flaky)
        self.assertGreaterEqual(flaky.count("running"), 2)
        history = [a for a in final["history"] if a["outcome"] == "failed"]
        self.assertEqual([a["step"] for a in history], ["flaky"] * flaky.count("failed"))
        self.assertEqual(steps[-1]["json"]["progress"], {"done": len(final["steps"]), "total": len(final["steps"])})

        # a reconnection in the middle gets exactly the remaining changes, then the job
        mid = steps[len(steps) // 2]
        r = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id=mid["id"])
        rest = []
        while (e := r.event()) is not None:
            rest.append(e)
        self.assertEqual([(e["id"], e["json"]) for e in rest[:-1]],
                         [(e["id"], e["json"]) for e in steps if int(e["id"]) > int(mid["id"])])
        self.assertEqual((rest[-1]["event"], rest[-1]["json"]), ("job", final))
        self.assertEqual(SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id=rest[-1]["id"]).status, 204)

        # a day after the job ended its changes are pruned: resuming from before then gets the job alone
        self.stack.psql(f"UPDATE ft_jobs SET finished_at = finished_at - interval '2 days' WHERE id = '{job_id}'", h.dbname)
        wait_until(lambda: self.stack.psql(f"SELECT count(*) FROM ft_job_changes WHERE job_id = '{job_id}'", h.dbname) == "0", 30,
                   what="the sweeper to prune the job's changes")
        late = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id=mid["id"])
        only = [e for e in iter(late.event, None)]
        self.assertEqual([e["event"] for e in only], ["job"])
        self.assertEqual(only[0]["json"]["status"], "succeeded")
        self.assertEqual(SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id=only[0]["id"]).status, 204)

    def test_quick_jobs_keep_every_step_change_and_record_it_with_their_outcome(self):
        """A worker keeps the step progress of jobs of a kind it knows to be quick and writes it
        with their outcomes in one transaction: every change is still recorded, in order, with the
        times it happened, and the stream shows each of them."""
        # one thread: it learns how long each kind takes; every kind here is "quick"
        h = self.host(env={"FT_WORKER_FLUSH_MS": "5000", "FT_WORKER_THREADS": "1"})
        c = customer(h)
        i = self.create(h, c)
        self.wait_job(h, i["latest_job"]["id"])

        def latest(n, kind):
            items = h.get(f"/api/v1/instances/{i['id']}/jobs").json()["items"]
            return items[0] if len(items) == n and items[0]["kind"] == kind and items[0]["status"] == "succeeded" else None

        jobs = []
        for n in range(6):
            kind = "suspend" if n % 2 == 0 else "resume"
            self.assertEqual(h.post(f"/api/v1/instances/{i['id']}/subscription/{kind}").status, 200)
            jobs.append(wait_until(lambda: latest(n + 2, kind), 60, interval=0.05, what=f"the {kind} job"))
        # the first job of each kind was recorded as it went (its kind's time unknown yet), the
        # later ones with their outcome: their step's start and end and the job's end commit together
        for j, deferred in zip(jobs, [False, False, True, True, True, True]):
            rows = self.stack.psql(
                f"SELECT string_agg(concat_ws(',', coalesce(position::text, 'job'), coalesce(from_status, '-'), status,"
                f" xmin::text), ';' ORDER BY seq) FROM ft_job_changes WHERE job_id = '{j['id']}'", h.dbname).split(";")
            changes = [r.rsplit(",", 1)[0] for r in rows]
            self.assertEqual([x for x in changes if x.startswith("0,")], ["0,-,pending", "0,pending,running", "0,running,succeeded"])
            self.assertEqual([x for x in changes if x.startswith("job,")], ["job,-,queued", "job,queued,running",
                                                                            "job,running,succeeded"])
            ends = {r.rsplit(",", 1)[1] for r in rows if r.rsplit(",", 1)[0] in ("0,pending,running", "0,running,succeeded",
                                                                                 "job,running,succeeded")}
            self.assertEqual(len(ends) == 1, deferred, (j["kind"], rows))
            step = j["steps"][0]
            self.assertEqual((step["status"], step["attempts"]), ("succeeded", 1))
            self.assertLessEqual(j["started_at"], step["started_at"])
            self.assertLessEqual(step["started_at"], step["finished_at"])
            self.assertLessEqual(step["finished_at"], j["finished_at"])
        # a step that used the tenant database is recorded done at once, right after its own
        # commit, even in a quick job (a worker killed in between runs it again: that window stays
        # short); the steps of the same job that did not are recorded with the outcome
        for _ in range(2):
            p = self.create(h, c)
            self.wait_job(h, p["latest_job"]["id"])
        rows = self.stack.psql(
            f"SELECT string_agg(concat_ws(',', coalesce(c.name, 'job'), c.status, c.xmin::text), ';' ORDER BY c.seq)"
            f" FROM ft_job_changes c WHERE c.job_id = '{p['latest_job']['id']}' AND c.status = 'succeeded'", h.dbname).split(";")
        ends = {r.split(",")[0]: r.split(",")[2] for r in rows}
        self.assertIn("touch", ends)
        for name in ("create_schema", "touch"):  # they write to the tenant database
            self.assertNotEqual(ends[name], ends["job"], rows)
        for name in ("flaky", "doomed"):  # they do not
            self.assertEqual(ends[name], ends["job"], rows)
        # the stream replays them as for any job
        s = SSE(h.port, f"/api/v1/jobs/{jobs[-1]['id']}", self.key(h), last_event_id="0")
        events = [e for e in iter(s.event, None)]
        self.assertEqual([(e["json"]["previous_status"], e["json"]["step"]["status"]) for e in events if e["event"] == "step"],
                         [(None, "pending"), ("pending", "running"), ("running", "succeeded")])
        self.assertEqual(events[-1]["json"]["status"], "succeeded")

    def test_a_stream_is_scoped_and_a_missing_job_is_a_problem(self):
        h = self.host()
        c1, c2 = customer(h), customer(h)
        i = self.create(h, c1)
        job_id = i["latest_job"]["id"]
        other = h.make_key("customer-viewer", customer=c2["id"])
        for token, path in ((other, f"/api/v1/jobs/{job_id}"), (self.key(h), "/api/v1/jobs/00000000-0000-4000-8000-000000000000")):
            s = SSE(h.port, path, token)
            self.assertEqual(s.status, 404)
            self.assertTrue(json.loads(s.body)["type"].endswith("/job-not-found"))

    def test_heartbeats_the_bound_per_credential_and_a_client_leaving_mid_stream(self):
        h = self.host(env={"FT_SSE_HEARTBEAT_MS": "200", "FT_SSE_MAX_PER_CREDENTIAL": "2"})
        c = customer(h)
        # a job that runs for a while: a stream to leave in the middle of it
        slow = self.create(h, c, settings={"admin_email": "a@b.test", "sleep_ms": 3000})
        key = h.make_key("customer-viewer", customer=c["id"])
        a = SSE(h.port, f"/api/v1/jobs/{slow['latest_job']['id']}", key)
        self.assertEqual(a.status, 200)
        self.assertIsNotNone(a.event())
        b = SSE(h.port, f"/api/v1/jobs/{slow['latest_job']['id']}", key)
        self.assertIsNotNone(b.event())
        # an idle stream gets a comment line every FT_SSE_HEARTBEAT_MS
        rec = b.record()
        while "comment" not in rec:
            rec = b.record()
        self.assertEqual(rec["comment"], "keepalive")
        # a third stream of the same credential is refused; another credential's is not
        third = SSE(h.port, f"/api/v1/jobs/{slow['latest_job']['id']}", key)
        self.assertEqual(third.status, 429)
        self.assertEqual(third.headers["content-type"], "application/problem+json")
        p = json.loads(third.body)
        self.assertTrue(p["type"].endswith("/too-many-streams"), p)
        self.assertEqual(p["max_per_credential"], 2)
        admin = SSE(h.port, f"/api/v1/jobs/{slow['latest_job']['id']}", self.key(h))
        self.assertEqual(admin.status, 200)
        admin.close()
        # a client leaving mid-stream frees its slot, and the host keeps serving
        a.close()
        def reopened():
            s = SSE(h.port, f"/api/v1/jobs/{slow['latest_job']['id']}", key)
            if s.status == 429:
                s.close()
                return None
            return s
        c2 = wait_until(reopened, 30, interval=0.05, what="the slot of the closed stream to be free")
        self.assertEqual(c2.status, 200)
        c2.close()
        b.close()
        self.assertEqual(h.get("/health").status, 200)
        self.assertEqual(self.job(h, slow["latest_job"]["id"])["id"], slow["latest_job"]["id"])

    def test_the_host_wide_bound_and_a_last_event_id_that_is_no_number(self):
        h = self.host(env={"FT_ROLES": "api", "FT_SSE_MAX_STREAMS": "1"})
        c = customer(h)
        job_id = self.create(h, c)["latest_job"]["id"]
        # an id this API never sent is as good as none: the stream starts with the current state
        a = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h), last_event_id="yesterday")
        self.assertEqual(a.event()["json"]["status"], "queued")
        b = SSE(h.port, f"/api/v1/jobs/{job_id}", h.make_key("operator"))
        self.assertEqual(b.status, 429)
        self.assertEqual(json.loads(b.body)["max_streams"], 1)
        a.close()

    def test_the_entitlements_stream_sends_the_record_again_when_an_override_changes(self):
        h = self.host(env={"FT_SSE_HEARTBEAT_MS": "200"})
        c = customer(h)
        i = instance(h, c["id"])
        settled(h, i["id"])
        first = h.get(f"/api/v1/instances/{i['id']}/entitlements")
        s = SSE(h.port, f"/api/v1/instances/{i['id']}/entitlements", self.key(h))
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["content-type"], "text/event-stream")
        e = s.event()
        self.assertEqual(e["event"], "entitlements")
        self.assertEqual('"' + e["id"] + '"', first.headers["etag"])
        self.assertEqual(e["json"], first.json())
        r = h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/telemedicine", body={"enabled": True})
        self.assertEqual(r.status, 200, r)
        e2 = s.event()
        now = h.get(f"/api/v1/instances/{i['id']}/entitlements")
        self.assertNotEqual(e2["id"], e["id"])
        self.assertEqual('"' + e2["id"] + '"', now.headers["etag"])
        self.assertTrue(e2["json"]["features"]["telemedicine"]["enabled"])
        # changes in quick succession: the stream ends up at the record's last state, with its ETag
        # (the ETag stands for what the record grants, so its version may be a later one's)
        for enabled in (False, True, False):
            r = h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/telemedicine", body={"enabled": enabled})
            self.assertEqual(r.status, 200, r)
        last = h.get(f"/api/v1/instances/{i['id']}/entitlements")
        while '"' + (e4 := s.event())["id"] + '"' != last.headers["etag"]:
            self.assertNotEqual(e4["id"], e2["id"])
        self.assertEqual(e4["json"]["features"], last.json()["features"])
        s.close()
        # resuming with the current ETag (bare, or quoted as the header has it) sends nothing but
        # heartbeats until the next change
        h.request("DELETE", f"/api/v1/instances/{i['id']}/overrides/telemedicine")
        now = h.get(f"/api/v1/instances/{i['id']}/entitlements")
        for last_id in (now.headers["etag"].strip('"'), now.headers["etag"]):
            r2 = SSE(h.port, f"/api/v1/instances/{i['id']}/entitlements", self.key(h), last_event_id=last_id)
            self.assertEqual(r2.status, 200)
            self.assertEqual(r2.record(), {"comment": "keepalive"})  # the stream's start, then one per period
            self.assertEqual(r2.record(), {"comment": "keepalive"})
            h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/telemedicine", body={"enabled": True})
            e3 = r2.event()
            self.assertTrue(e3["json"]["features"]["telemedicine"]["enabled"])
            self.assertEqual('"' + e3["id"] + '"', h.get(f"/api/v1/instances/{i['id']}/entitlements").headers["etag"])
            h.request("DELETE", f"/api/v1/instances/{i['id']}/overrides/telemedicine")
            e5 = r2.event()
            self.assertEqual((e5["id"], e5["json"]["features"]), (now.headers["etag"].strip('"'), now.json()["features"]))
            r2.close()

    def test_a_drain_ends_open_streams(self):
        h = self.host(env={"FT_ROLES": "api", "FT_SHUTDOWN_TIMEOUT_MS": "60000"})
        c = customer(h)
        i = self.create(h, c)  # stays queued: no worker
        s = SSE(h.port, f"/api/v1/jobs/{i['latest_job']['id']}", self.key(h))
        self.assertEqual(s.event()["json"]["status"], "queued")
        t0 = time.monotonic()
        self.assertEqual(h.terminate(), 0)
        self.assertLess(time.monotonic() - t0, 30, "the drain did not wait for the stream")
        self.assertIsNone(s.event())

    def test_delivery_delay_from_commit_to_client(self):
        """Times a few hundred step changes from their commit (clock_timestamp() in the changing
        statement) to their event at the client, on one machine's clock; prints p50 and p99. Every
        change is an event of its own, however close together they commit."""
        h = self.host(env={"FT_ROLES": "api"})
        c = customer(h)
        job_id = self.create(h, c)["latest_job"]["id"]
        s = SSE(h.port, f"/api/v1/jobs/{job_id}", self.key(h))
        s.event()
        n, arrived = 300, {}

        def read():
            while len(arrived) < n:
                e = s.event()
                tag = (e["json"]["step"]["last_error"] if e["event"] == "step" else None) or ""
                if tag.startswith("bench-"):
                    arrived[int(tag[6:])] = e["arrived"]
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        step = f"job_id = '{job_id}' AND position = (SELECT min(position) FROM ft_job_steps WHERE job_id = '{job_id}')"
        script = "".join(f"UPDATE ft_job_steps SET last_error = 'bench-{k}' WHERE {step}"
                         f" RETURNING {k}, extract(epoch FROM clock_timestamp());\n"
                         f"{'SELECT pg_sleep(0.02);' if k % 10 else ''}\n" for k in range(n))
        out = subprocess.run(["psql", "-X", "-Atq", "-v", "ON_ERROR_STOP=1", self.stack.url_for(h.dbname)], input=script.encode(),
                             capture_output=True, timeout=120, check=True)
        committed = {}
        for line in out.stdout.decode().split():
            if "|" in line:
                k, at = line.split("|")
                committed[int(k)] = float(at)
        reader.join(60)
        s.close()
        self.assertEqual(len(committed), n)
        self.assertEqual(sorted(arrived), list(range(n)), "every change is an event")
        delays = sorted((arrived[k] - committed[k]) * 1000 for k in arrived)
        p50, p99 = delays[len(delays) // 2], delays[int(len(delays) * 0.99) - 1]
        print(f"\nSSE delivery delay over {len(delays)} changes: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
        self.assertLess(p50, 1000)


if __name__ == "__main__":
    main()
