"""Prometheus metrics a real host exposes: jobs, attempts and their durations, the DLQ and
outbox backlogs, NATS connection state, rate-limit refusals; and the shipped alerting rules and
Grafana dashboard, which must name only metrics a host exposes."""
import json
import os
import re
import shutil
import subprocess

import yaml

from fixtures import customer, instance, settled
from harness import BUILD, FAULTY, ROOT, main, plugin_dir, wait_until
from test_pipeline import PipelineCase

ALERTS = os.path.join(ROOT, "packaging", "prometheus", "alerts.yml")
DASHBOARD = os.path.join(ROOT, "packaging", "grafana", "farutech.json")
BAD_MAGIC = os.path.join(BUILD, "tests", "plugins", "bad_magic", "fixture.so")  # a product file that never loads
SAMPLED = {"FT_JOB_MAX_ATTEMPTS": "2", "FT_METRICS_SAMPLE_MS": "200"}
PROMETHEUS_MADE = {"up"}  # series Prometheus itself adds to every scrape target
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Exposition:
    """One scrape: the families' types and every sample with its labels."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.samples = []  # (name, {label: value}, value)
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.types[name] = kind
            elif line and not line.startswith("#"):
                m = SAMPLE.match(line)
                assert m, f"not a sample line: {line!r}"
                labels = dict(LABEL.findall(m.group(2) or ""))
                self.samples.append((m.group(1), labels, float(m.group(3))))

    def value(self, name, **labels):
        """The sum of the samples of name whose labels include the given ones (0 when none)."""
        return sum(v for n, l, v in self.samples if n == name and all(l.get(k) == w for k, w in labels.items()))

    def family_of(self, name):
        """The family a sample name belongs to: a histogram's _bucket/_sum/_count belong to it."""
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and self.types.get(base) == "histogram":
                return base
        return name

    def has_samples(self, family):
        kind = self.types.get(family)
        names = {family + s for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {family}
        return any(n in names for n, _, _ in self.samples)


def names_in(expr):
    return set(re.findall(r"\b((?:ft|process)_[a-zA-Z0-9_]+|up)\b", expr))


def rule_and_dashboard_names():
    with open(ALERTS) as f:
        rules = yaml.safe_load(f)
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    with open(DASHBOARD) as f:
        dash = json.load(f)
    for p in dash["panels"]:
        exprs += [t["expr"] for t in p.get("targets", [])]
    exprs.append(dash["templating"]["list"][1]["definition"])
    names = set()
    for e in exprs:
        names |= names_in(e)
    return names


class Metrics(PipelineCase):
    """Hosts with the products and the faulty test product, fast retries, two attempts a job and
    the backlog gauges sampled every 200 ms."""

    def host(self, start=True, **kw):
        return super().host(start=start, env={**SAMPLED, **kw.pop("env", {})}, **kw)

    def scrape(self, h):
        r = h.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers)
        return Exposition(r.body.decode())

    def wait_metric(self, h, what, predicate, timeout=60):
        """Waits until predicate(scrape) holds; returns that scrape."""
        def check():
            e = self.scrape(h)
            return e if predicate(e) else None
        return wait_until(check, timeout, what=what)

    def fail_one_job(self, h, c):
        """A faulty instance whose step fails while its fault file exists: two attempts, then the DLQ."""
        fault = os.path.join(self.stack.dir, "fault-" + os.urandom(4).hex())
        open(fault, "w").close()
        i = self.create(h, c, settings={"admin_email": "a@b.test", "fail_while_exists": fault})
        return self.wait_status(h, i["id"], ["failed"])

    # ---------------------------------------------------------------- jobs

    def test_a_provision_moves_the_job_counters_and_duration_histograms(self):
        h = self.host()
        before = self.scrape(h)
        c = customer(h)
        i = instance(h, c["id"])  # vet, professional: several steps
        settled(h, i["id"])
        key = {"kind": "provision", "outcome": "succeeded"}
        after = self.wait_metric(h, "the job counted",
                                 lambda e: e.value("ft_jobs_total", **key) == before.value("ft_jobs_total", **key) + 1)
        self.assertEqual(after.value("ft_job_attempts_total", **key), before.value("ft_job_attempts_total", **key) + 1)
        self.assertEqual(after.value("ft_job_duration_seconds_count", kind="provision"),
                         before.value("ft_job_duration_seconds_count", kind="provision") + 1)
        self.assertGreater(after.value("ft_job_duration_seconds_sum", kind="provision"),
                           before.value("ft_job_duration_seconds_sum", kind="provision"))
        self.assertEqual(after.value("ft_job_duration_seconds_bucket", kind="provision", le="+Inf"),
                         after.value("ft_job_duration_seconds_count", kind="provision"))
        job = h.get(f"/api/v1/jobs/{i['latest_job']['id']}").json()
        for step in job["steps"]:
            with self.subTest(step=step["name"]):
                self.assertEqual(after.value("ft_job_step_duration_seconds_count", product="vet", step=step["name"]) -
                                 before.value("ft_job_step_duration_seconds_count", product="vet", step=step["name"]), 1)
        self.assertGreater(after.value("ft_relay_published_total"), before.value("ft_relay_published_total"))
        self.assertGreater(after.value("ft_db_pool_wait_seconds_count"), before.value("ft_db_pool_wait_seconds_count"))
        self.assertEqual(after.value("ft_db_pool_connections_max"), 8)
        # the sampler sees the outbox drained and no job waiting
        self.wait_metric(h, "an empty outbox and no job pending",
                         lambda e: e.value("ft_outbox_unpublished") == 0 and e.value("ft_jetstream_consumer_pending") == 0
                         and e.value("ft_outbox_oldest_unpublished_age_seconds") == 0)

    def test_a_job_failing_for_good_moves_the_failure_counters_and_the_dlq_depth(self):
        h = self.host()
        c = customer(h)
        before = self.scrape(h)
        self.assertEqual(before.value("ft_dlq_depth"), 0)  # a host of its own: its database has no dead letter
        self.fail_one_job(h, c)
        failed = {"kind": "provision", "outcome": "failed"}
        after = self.wait_metric(h, "the failure counted and the DLQ sampled",
                                 lambda e: e.value("ft_jobs_total", **failed) == before.value("ft_jobs_total", **failed) + 1
                                 and e.value("ft_dlq_depth") == 1
                                 and e.value("ft_jetstream_dlq_messages") >= before.value("ft_jetstream_dlq_messages") + 1)
        # two attempts (FT_JOB_MAX_ATTEMPTS), both failed, each in the duration histogram
        self.assertEqual(after.value("ft_job_attempts_total", **failed) - before.value("ft_job_attempts_total", **failed), 2)
        self.assertEqual(after.value("ft_job_duration_seconds_count", kind="provision") -
                         before.value("ft_job_duration_seconds_count", kind="provision"), 2)
        self.assertEqual(after.value("ft_jobs_total", kind="provision", outcome="succeeded"),
                         before.value("ft_jobs_total", kind="provision", outcome="succeeded"))

        # a discarded dead letter leaves the depth; the stream keeps its message
        [d] = h.get("/api/v1/dlq").json()["items"]
        r = h.request("DELETE", f"/api/v1/dlq/{d['id']}")
        self.assertIn(r.status, (200, 204), r)
        self.wait_metric(h, "the DLQ depth back to 0", lambda e: e.value("ft_dlq_depth") == 0)

    # ---------------------------------------------------------------- dependencies and refusals

    def test_the_nats_connected_gauge_follows_nats_server_and_reconnects_are_counted(self):
        h = self.host()
        before = self.wait_metric(h, "connected to NATS", lambda e: e.value("ft_nats_connected") == 1)
        self.stack.stop_nats()
        try:
            down = self.wait_metric(h, "the gauge at 0", lambda e: e.value("ft_nats_connected") == 0)
            self.assertEqual(down.value("ft_ready"), 0)
            self.wait_metric(h, "a failed JetStream sample",
                             lambda e: e.value("ft_backlog_sample_failures_total", source="jetstream") >
                             before.value("ft_backlog_sample_failures_total", source="jetstream"))
        finally:
            self.stack.start_nats()
        up = self.wait_metric(h, "the gauge back at 1", lambda e: e.value("ft_nats_connected") == 1, timeout=90)
        self.assertEqual(up.value("ft_nats_reconnects_total"), before.value("ft_nats_reconnects_total") + 1)
        self.wait_metric(h, "the host ready again", lambda e: e.value("ft_ready") == 1)

    def test_a_rate_limit_refusal_increments_the_refusal_counter_by_scope(self):
        h = self.host(env={"FT_RATE_LIMIT_RPS": "1", "FT_RATE_LIMIT_BURST": "1", "FT_RATE_LIMIT_IP_RPS": "1",
                           "FT_RATE_LIMIT_IP_BURST": "4"})
        h.admin_key  # made by the command line, before any request counts
        refused = {"credential": 0, "client address": 0}
        for _ in range(8):
            r = h.get("/api/v1/customers")
            if r.status == 429:
                refused[self.assertProblem(r, 429, "rate-limited")["limited_by"]] += 1
        self.assertGreater(refused["credential"], 0, refused)
        self.assertGreater(refused["client address"], 0, refused)
        e = self.scrape(h)  # /metrics is not rate limited
        self.assertEqual(e.value("ft_ratelimit_refusals_total", scope="credential"), refused["credential"])
        self.assertEqual(e.value("ft_ratelimit_refusals_total", scope="ip"), refused["client address"])

    # ---------------------------------------------------------------- rules and dashboard

    def test_promtool_accepts_the_alerting_rules(self):
        self.assertIsNotNone(shutil.which("promtool"), "promtool (Debian package prometheus) is needed")
        out = subprocess.run(["promtool", "check", "rules", ALERTS], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_every_metric_the_rules_and_dashboard_name_is_exposed_and_promtool_lints_the_exposition_clean(self):
        plugins = plugin_dir(self.stack.dir, FAULTY)
        shutil.copy(BAD_MAGIC, os.path.join(plugins, "fixture.so"))  # a load failure, labelled by product
        h = self.host(env={"FT_PLUGIN_DIR": plugins, "FT_RATE_LIMIT_RPS": "20", "FT_RATE_LIMIT_BURST": "20"})
        c = customer(h)
        self.wait_status(h, self.create(h, c)["id"], ["active"])
        self.fail_one_job(h, c)
        other = h.make_key("platform-admin", name="flood")
        self.assertIn(429, [h.get("/api/v1/customers", auth=other).status for _ in range(40)])

        names = rule_and_dashboard_names() - PROMETHEUS_MADE
        self.assertGreater(len(names), 30, names)

        last = {}

        def all_exposed():
            last["scrape"] = e = self.scrape(h)
            last["missing"] = sorted(n for n in names if not e.has_samples(e.family_of(n)))
            return not last["missing"]
        try:
            wait_until(all_exposed, 60, what="every metric named by the rules and the dashboard")
        except AssertionError:
            self.fail(f"named by the rules or the dashboard but not exposed: {last.get('missing')}")
        e = last["scrape"]
        for n in sorted(names):
            with self.subTest(metric=n):
                family = e.family_of(n)
                self.assertIn(family, e.types)
                if family != n:
                    self.assertEqual(e.types[family], "histogram")
        self.assertEqual(e.value("ft_plugin_load_failures_total", product="fixture"), 1)
        self.assertEqual(e.value("ft_plugin_loads_total", product="faulty"), 1)

        self.assertIsNotNone(shutil.which("promtool"), "promtool (Debian package prometheus) is needed")
        out = subprocess.run(["promtool", "check", "metrics"], input=e.text, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


if __name__ == "__main__":
    main()
