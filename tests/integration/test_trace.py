"""Trace context: a request's W3C traceparent (or a new trace when it has none, or an invalid one)
reaches every event it causes, its job, the events the worker writes and the log lines of both;
the events are read back from JetStream, the log lines from the host's output. Attempts after a
DLQ replay belong to the replay's trace."""
import json
import os
import re
import secrets

from fixtures import customer
from harness import main, wait_until
from jetstream import JetStream
from test_pipeline import PipelineCase

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
PREFIX = "dev.farutech."


def ids():
    """A random trace id and parent (span) id, as a caller would send them."""
    return secrets.token_hex(16), secrets.token_hex(8)


class Trace(PipelineCase):

    def provision(self, h, c, headers, settings=None):
        body = {"code": "t" + os.urandom(4).hex(), "product": "faulty", "plan": "basic", "tier": "standard",
                "settings": settings or {"admin_email": "a@b.test"}}
        r = h.post(f"/api/v1/customers/{c['id']}/instances", body=body, headers=headers)
        self.assertEqual(r.status, 202, r)
        return r.json()

    def events(self, correlation, types, count=None):
        """The events in FT_EVENTS with this correlation id, read once every type in `types` is
        there (`count`: that many of each type named in it); {type without prefix: [event]}."""
        count = count or {}

        def read():
            with JetStream(self.stack.nats_url) as js:
                found = {}
                for _, e in js.messages("FT_EVENTS"):
                    if isinstance(e, dict) and e.get("correlationid") == correlation:
                        found.setdefault(e["type"][len(PREFIX):], []).append(e)
            done = all(len(found.get(t, [])) >= count.get(t, 1) for t in types)
            return found if done else None
        return wait_until(read, 30, interval=0.2, what=f"events {sorted(types)} with correlation id {correlation}")

    def requested(self, h, correlation):
        """The job requests a request queued, as the outbox holds them (FT_JOBS is a work queue:
        the workers' acknowledgements remove them from JetStream)."""
        rows = self.stack.psql("SELECT event::text FROM ft_outbox WHERE subject LIKE 'ft.jobs.%'"
                               f" AND event->>'correlationid' = '{correlation}' ORDER BY seq", h.dbname)
        return [json.loads(line) for line in rows.splitlines()]

    def span(self, event, trace_id, flags="01"):
        """The span id of a valid traceparent in trace_id; fails otherwise."""
        m = TRACEPARENT.match(event.get("traceparent", ""))
        self.assertIsNotNone(m, f"no valid traceparent in {event}")
        self.assertEqual(m.group(1), trace_id, event)
        self.assertNotEqual(m.group(2), "0" * 16, event)
        self.assertEqual(m.group(3), flags, event)
        return m.group(2)

    def lines(self, h, match, what):
        """The host's log lines for which match(line) holds, once there is one (loop threads flush
        their lines on a timer)."""
        return wait_until(lambda: [x for x in h.log_lines() if match(x)], 15, what=what)

    def access_line(self, h, request_id):
        lines = self.lines(h, lambda x: x.get("msg") == "request" and x.get("request_id") == request_id, f"access line {request_id}")
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    # ---------------------------------------------------------------- one trace, end to end

    def test_a_requests_traceparent_reaches_its_events_its_job_the_workers_events_and_the_log_lines(self):
        h = self.host()
        c = customer(h)
        trace, parent = ids()
        rid = "trace-" + secrets.token_hex(8)
        inst = self.provision(h, c, {"traceparent": f"00-{trace}-{parent}-01", "X-Request-Id": rid})
        self.wait_status(h, inst["id"], ["active"])

        # the job records the trace
        self.assertEqual(self.job(h, inst["latest_job"]["id"])["trace_id"], trace)

        # the request's events are one span (the host's, not the caller's), the worker's another
        ev = self.events(rid, {"instance.created.v1", "job.succeeded.v1", "instance.provisioned.v1", "faulty.touched.v1"})
        host_span = self.span(ev["instance.created.v1"][0], trace)
        self.assertNotEqual(host_span, parent)
        [job_request] = self.requested(h, rid)
        self.assertEqual(self.span(job_request, trace), host_span)
        worker_span = self.span(ev["job.succeeded.v1"][0], trace)
        self.assertNotIn(worker_span, (parent, host_span))
        for t in ("instance.provisioned.v1", "faulty.touched.v1"):
            self.assertEqual(self.span(ev[t][0], trace), worker_span, t)
        for t, events in ev.items():
            for e in events:
                self.span(e, trace)

        # the access line, the worker's lines for the job and the plugin's line from its step
        self.assertEqual(self.access_line(h, rid).get("trace_id"), trace)
        worker = self.lines(h, lambda x: x.get("request_id") == rid and x["msg"].startswith("worker: job ")
                            and x["msg"].endswith("succeeded"), "the worker's line for the job")
        started = [x for x in h.log_lines() if x.get("request_id") == rid and " attempt 1 of " in x["msg"]]
        plugin = self.lines(h, lambda x: x.get("request_id") == rid and x["msg"].startswith("plugin faulty")
                            and x["msg"].endswith(": touched"), "the plugin's line from its step")
        self.assertTrue(started)
        for line in worker + started + plugin:
            self.assertEqual(line.get("trace_id"), trace, line)

    # ---------------------------------------------------------------- new traces

    def test_a_request_without_a_valid_traceparent_starts_a_new_trace_that_its_job_continues(self):
        h = self.host()
        c = customer(h)
        trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        cases = {
            "absent": None,
            "all-zero trace id": f"00-{'0' * 32}-{parent}-01",
            "all-zero parent id": f"00-{trace}-{'0' * 16}-01",
            "uppercase hex": f"00-{trace.upper()}-{parent}-01",
            "version ff": f"ff-{trace}-{parent}-01",
            "version 00 with a fifth field": f"00-{trace}-{parent}-01-more",
            "too short": f"00-{trace}-{parent[:-1]}-01",
        }
        seen = set()
        for what, header in cases.items():
            with self.subTest(what):
                rid = "fresh-" + secrets.token_hex(8)
                headers = {"X-Request-Id": rid}
                if header is not None:
                    headers["traceparent"] = header
                inst = self.provision(h, c, headers)
                ev = self.events(rid, {"instance.created.v1", "job.succeeded.v1"})
                created = ev["instance.created.v1"][0]
                m = TRACEPARENT.match(created.get("traceparent", ""))
                self.assertIsNotNone(m, created)
                fresh = m.group(1)
                self.assertNotIn(fresh, (trace, "0" * 32))
                self.assertNotIn(fresh, seen)
                seen.add(fresh)
                self.span(created, fresh)  # a root span decides "sampled"
                self.span(ev["job.succeeded.v1"][0], fresh)
                self.assertEqual(self.job(h, inst["latest_job"]["id"])["trace_id"], fresh)
                self.assertEqual(self.access_line(h, rid).get("trace_id"), fresh)

    def test_a_later_version_is_read_by_its_first_four_fields_and_only_the_sampled_flag_is_passed_on(self):
        h = self.host()
        for header_flags, tail, flags in (("00", "", "00"), ("01", "-what-comes-next", "01"), ("ff", "", "01"), ("fe", "", "00")):
            with self.subTest(flags=header_flags, tail=tail):
                trace, parent = ids()
                rid = "later-" + secrets.token_hex(8)
                version = "00" if not tail else "42"
                r = h.post("/api/v1/customers", body={"legal_name": "Traced SA", "tax_id": secrets.token_hex(6), "country": "CO"},
                           headers={"traceparent": f"{version}-{trace}-{parent}-{header_flags}{tail}", "X-Request-Id": rid})
                self.assertEqual(r.status, 201, r)
                created = self.events(rid, {"customer.created.v1"})["customer.created.v1"][0]
                self.assertNotEqual(self.span(created, trace, flags), parent)

    # ---------------------------------------------------------------- DLQ replay

    def test_attempts_after_a_dlq_replay_are_in_the_replays_trace(self):
        h = self.host()
        c = customer(h)
        first, first_parent = ids()
        rid = "doomed-" + secrets.token_hex(8)
        inst = self.provision(h, c, {"traceparent": f"00-{first}-{first_parent}-01", "X-Request-Id": rid}, settings={"fatal": True})
        self.wait_status(h, inst["id"], ["failed"])
        job_id = inst["latest_job"]["id"]
        self.span(self.events(rid, {"job.failed.v1"})["job.failed.v1"][0], first)
        d = [x for x in h.get("/api/v1/dlq").json()["items"] if x["job_id"] == job_id][0]

        second, second_parent = ids()
        replay_rid = "replay-" + secrets.token_hex(8)
        r = h.post(f"/api/v1/dlq/{d['id']}/replay", headers={"traceparent": f"00-{second}-{second_parent}-01",
                                                             "X-Request-Id": replay_rid})
        self.assertEqual(r.status, 202, r)
        replay_span = self.span(self.events(replay_rid, {"dlq.replayed.v1"})["dlq.replayed.v1"][0], second)
        self.assertNotEqual(replay_span, second_parent)

        # the job keeps its correlation id; its next attempt is a child of the replay's span
        failed = self.events(rid, {"job.failed.v1"}, count={"job.failed.v1": 2})["job.failed.v1"]
        self.assertEqual(sorted(TRACEPARENT.match(e["traceparent"]).group(1) for e in failed), sorted([first, second]))
        again = [e for e in failed if TRACEPARENT.match(e["traceparent"]).group(1) == second][0]
        self.assertNotIn(self.span(again, second), (second_parent, replay_span))
        requests = self.requested(h, rid)
        self.assertEqual([TRACEPARENT.match(e["traceparent"]).group(1) for e in requests], [first, second])
        self.assertEqual(self.span(requests[1], second), replay_span)
        self.assertEqual(self.job(h, job_id)["trace_id"], second)
        dead = self.lines(h, lambda x: x.get("request_id") == rid and "failed for good" in x["msg"] and x.get("trace_id") == second,
                          "the worker's line for the replayed attempt")
        self.assertEqual(len(dead), 1, dead)


if __name__ == "__main__":
    main()
