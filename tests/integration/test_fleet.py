"""The fleet: several hosts on one database. A reload on one host reaches every live host and
answers per host; a broken file changes nothing; a host that refuses keeps its generation and the
skew shows; canary mode stops at the first failure; a host started later loads the fleet's
release; a killed host turns stale and is not waited for; an unresponsive one times out."""
import hashlib
import os
import shutil
import signal
import tempfile
import time

from harness import BUILD, StackTestCase, main, wait_until

FIXTURES = os.path.join(BUILD, "tests", "plugins")
FAST = {"FT_HOST_HEARTBEAT_MS": "300"}


def fixture(variant, product="fixture"):
    return os.path.join(FIXTURES, variant, product + ".so")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Fleet(StackTestCase):

    def plugin_dir(self, **files):
        """A plugin directory holding <product>.so copied from the named fixture variants."""
        d = tempfile.mkdtemp(prefix="plugins-", dir=self.stack.dir)
        for product, variant in files.items():
            shutil.copy(fixture(variant, product), os.path.join(d, product + ".so"))
        return d

    def install(self, d, variant, product="fixture"):
        tmp = os.path.join(d, "." + product + ".so.new")
        shutil.copy(fixture(variant, product), tmp)
        os.rename(tmp, os.path.join(d, product + ".so"))

    def member(self, first=None, files=None, **env):
        """A host on first's database (a new database when first is None) with its own plugin dir."""
        d = self.plugin_dir(**(files or {"fixture": "ok"}))
        e = {"FT_PLUGIN_DIR": d, "FT_ROLES": "api", **FAST, **env}
        h = self.host(env=e, dbname=first.dbname if first else None)
        h.plugin_dir = d
        if "api" in e["FT_ROLES"]:
            h.host_id = wait_until(lambda: self.own_id(h), 30, what="the host's fleet id")
        return h

    def own_id(self, h):
        return h.get("/api/v1/plugins").json()["fleet"]["host_id"]

    def version(self, h, product="fixture"):
        r = h.get(f"/api/v1/products/{product}")
        return r.json()["version"] if r.status == 200 else None

    def hosts(self, h, query=""):
        r = h.get("/api/v1/hosts" + query)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def served(self, h, host_id, product="fixture"):
        """The sha256 host_id serves for product, as the fleet view on h says."""
        for entry in self.hosts(h, "?all=true")["hosts"]:
            if entry["id"] == host_id:
                return next((p["sha256"] for p in entry["plugins"] if p["product"] == product), None)
        return None

    def by_host(self, answer):
        return {e["host_id"]: {r["product"]: r for r in e["results"]} for e in answer["hosts"]}

    def releases(self, h, product="fixture"):
        return self.stack.psql(f"SELECT version || ' ' || sha256 FROM ft_plugin_releases WHERE product = '{product}' ORDER BY id",
                               h.dbname).splitlines()

    def wait_live(self, h, n):
        wait_until(lambda: len(self.hosts(h)["hosts"]) == n, 30, what=f"{n} live hosts")

    # ---------------------------------------------------------------- rollouts

    def test_a_reload_on_one_host_reaches_every_live_host(self):
        a = self.member()
        b = self.member(a)
        c = self.member(a, FT_ROLES="worker")  # no API: it takes part all the same
        c.host_id = wait_until(lambda: next((x["id"] for x in self.hosts(a)["hosts"] if x["roles"] == ["worker"]), None), 30,
                               what="the worker host")
        self.wait_live(a, 3)
        v2 = sha256(fixture("v2"))
        self.install(a.plugin_dir, "v2")
        r = a.post("/api/v1/plugins/reload")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["results"][0]["result"], "reloaded")  # this host's own report, as before
        rollout = body["rollout"]
        self.assertEqual((rollout["mode"], rollout["state"], rollout["coordinator"]), ("all", "done", a.host_id))
        self.assertGreaterEqual(rollout["duration_ms"], 0)
        self.assertRegex(rollout["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        results = self.by_host(body)
        self.assertEqual(set(results), {a.host_id, b.host_id, c.host_id})
        self.assertTrue(body["hosts"][0]["coordinator"])
        for host_id, products in results.items():
            self.assertEqual(products["fixture"]["result"], "loaded", body)
            self.assertEqual(products["fixture"]["sha256"], v2)
            self.assertEqual(products["fixture"]["version"], "2.0.0")
        self.assertEqual(results[b.host_id]["fixture"]["generation"], 2)
        self.assertEqual(self.version(b), "2.0.0")
        self.assertEqual(self.releases(a), ["1.0.0 " + sha256(fixture("ok")), "2.0.0 " + v2])
        view = self.hosts(b)
        self.assertEqual(view["skew"], [])
        for entry in view["hosts"]:
            self.assertEqual(entry["status"], "live")
            [p] = entry["plugins"]
            self.assertEqual((p["product"], p["sha256"], p["version"]), ("fixture", v2, "2.0.0"))
            for key in ("id", "hostname", "pid", "roles", "version", "commit", "address", "started_at", "heartbeat_at"):
                self.assertIn(key, entry)
        # the same again: nothing changed anywhere
        r = a.post("/api/v1/plugins/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual({p["fixture"]["result"] for p in self.by_host(r.json()).values()}, {"unchanged"})
        # forced, through b, whose directory still holds the earlier release: every host loads a
        # new generation of the current release; b's stale file does not roll the fleet back
        r = b.post("/api/v1/plugins/fixture/reload?force=true")
        self.assertEqual(r.status, 200, r)
        self.assertEqual({p["fixture"]["result"] for p in self.by_host(r.json()).values()}, {"loaded"})
        self.assertEqual({p["fixture"]["sha256"] for p in self.by_host(r.json()).values()}, {v2})
        self.assertEqual(r.json()["rollout"]["product"], "fixture")
        self.assertIn("is an earlier release", r.json()["results"][0]["note"])
        self.assertEqual(len(self.releases(a)), 2)  # same file: no new release
        # unless asked to roll back
        r = b.post("/api/v1/plugins/fixture/reload?rollback=true")
        self.assertEqual(r.status, 200, r)
        self.assertEqual({p["fixture"]["sha256"] for p in self.by_host(r.json()).values()}, {sha256(fixture("ok"))})
        self.assertEqual(self.version(a), "1.0.0")
        self.assertEqual(self.releases(a)[-1], "1.0.0 " + sha256(fixture("ok")))

    def test_a_broken_file_fails_on_the_coordinator_and_changes_nothing(self):
        a = self.member()
        b = self.member(a)
        self.wait_live(a, 2)
        before = self.releases(a)
        self.install(a.plugin_dir, "bad_magic")
        r = a.post("/api/v1/plugins/reload")
        p = self.assertProblem(r, 422, "plugin-load-failed")
        self.assertIn("bad magic", p["detail"])
        self.assertEqual(p["results"][0]["serving_generation"], 1)
        results = self.by_host(p)
        self.assertEqual(results[a.host_id]["fixture"]["result"], "failed")
        self.assertEqual(results[a.host_id]["fixture"]["serving_generation"], 1)
        self.assertEqual(results[b.host_id]["fixture"]["result"], "skipped")
        self.assertEqual(self.releases(a), before)
        self.assertEqual((self.version(a), self.version(b)), ("1.0.0", "1.0.0"))
        # the skew view: both still serve the release; a's failure is on record
        view = self.hosts(a)
        self.assertEqual(view["skew"], [])
        [mine] = [h for h in view["hosts"] if h["id"] == a.host_id]
        self.assertIn("bad magic", mine["plugins"][0]["last_error"])

    def test_a_host_that_refuses_keeps_its_generation_and_the_skew_shows(self):
        a = self.member()
        b = self.member(a, FIXTURE_REFUSE="1")
        self.wait_live(a, 2)
        old, new = sha256(fixture("ok")), sha256(fixture("host_refuses"))
        self.install(a.plugin_dir, "host_refuses")
        r = a.post("/api/v1/plugins/reload")
        p = self.assertProblem(r, 422, "plugin-load-failed")
        results = self.by_host(p)
        self.assertEqual(results[a.host_id]["fixture"]["result"], "loaded")
        failed = results[b.host_id]["fixture"]
        self.assertEqual(failed["result"], "failed")
        self.assertIn("this host refuses version 5.0.0", failed["reason"])
        self.assertIn("generation 1 keeps serving", failed["reason"])
        self.assertEqual((failed["serving_generation"], failed["sha256"]), (1, old))
        self.assertIn("this host refuses version 5.0.0", p["detail"])
        self.assertEqual((self.version(a), self.version(b)), ("5.0.0", "1.0.0"))
        # the release moved: a validated file is the fleet's desired state
        self.assertEqual(self.releases(a)[-1], "5.0.0 " + new)
        for view in (self.hosts(a), b.get("/api/v1/plugins").json()["fleet"]):
            [skew] = view["skew"]
            self.assertEqual(skew["product"], "fixture")
            self.assertEqual(skew["release_sha256"], new)
            self.assertEqual(skew["hosts_by_sha256"], {new: [a.host_id], old: [b.host_id]})
        # anti-entropy does not retry, on every heartbeat, a release that failed here
        failures = "SELECT count(*) FROM ft_plugin_loads WHERE result = 'failed'"
        n = self.stack.psql(failures, a.dbname)
        beat = f"SELECT extract(epoch FROM heartbeat_at) FROM ft_hosts WHERE id = '{b.host_id}'"
        t0 = float(self.stack.psql(beat, a.dbname))
        wait_until(lambda: float(self.stack.psql(beat, a.dbname)) > t0 + 1.5, 30, what="five of b's heartbeats")
        self.assertEqual(self.stack.psql(failures, a.dbname), n)
        self.assertEqual(self.served(a, b.host_id), old)

    def test_canary_stops_at_the_first_failure_and_a_plain_rollout_skips_only_the_broken_product(self):
        files = {"fixture": "ok", "faulty": "faulty"}
        a = self.member(files=files)
        b = self.member(a, files=files)
        self.wait_live(a, 2)
        self.install(a.plugin_dir, "init_fails")
        self.install(a.plugin_dir, "faulty_fixed", "faulty")
        fixed = sha256(fixture("faulty_fixed", "faulty"))
        r = a.post("/api/v1/plugins/reload?canary=true")
        p = self.assertProblem(r, 422, "plugin-load-failed")
        self.assertEqual((p["rollout"]["mode"], p["rollout"]["state"]), ("canary", "stopped"))
        results = self.by_host(p)
        self.assertEqual(results[a.host_id]["fixture"]["result"], "failed")
        self.assertEqual({x["result"] for x in results[b.host_id].values()}, {"skipped"})
        self.assertEqual(set(results[b.host_id]), {"fixture", "faulty"})
        self.assertNotIn(fixed, " ".join(self.releases(a, "faulty")))  # the canary's good product was not released
        self.assertNotEqual(self.served(a, b.host_id, "faulty"), fixed)
        # what did load on the canary is no release: it goes back to the fleet's at a heartbeat
        wait_until(lambda: self.served(a, a.host_id, "faulty") == sha256(fixture("faulty", "faulty")), 30,
                   what="the canary to return to the current release")
        # without canary, the product that loaded rolls out and the broken one does not
        r = a.post("/api/v1/plugins/reload")
        p = self.assertProblem(r, 422, "plugin-load-failed")
        self.assertEqual((p["rollout"]["mode"], p["rollout"]["state"]), ("all", "done"))
        results = self.by_host(p)
        self.assertEqual(results[b.host_id]["faulty"]["result"], "loaded")
        self.assertEqual(results[b.host_id]["faulty"]["sha256"], fixed)
        self.assertEqual(results[b.host_id]["fixture"]["result"], "skipped")
        self.assertEqual(self.version(b), "1.0.0")
        self.assertEqual(self.releases(a)[-1], "1.0.0 " + sha256(fixture("ok")))

    # ---------------------------------------------------------------- membership

    def test_a_host_started_later_loads_the_fleets_release(self):
        a = self.member(files={"fixture": "v2"})
        v2 = sha256(fixture("v2"))
        self.assertEqual(self.releases(a), ["2.0.0 " + v2])  # the first host's file became the release
        b = self.member(a, files={"fixture": "ok"})
        self.assertEqual(self.version(b), "2.0.0")
        self.assertEqual(self.served(a, b.host_id), v2)
        [entry] = [p for p in b.get("/api/v1/plugins").json()["plugins"] if p["product"] == "fixture"]
        self.assertEqual(entry["file_hash"], v2)
        self.assertEqual(self.releases(a), ["2.0.0 " + v2])

    def test_a_killed_host_turns_stale_and_is_not_waited_for(self):
        a = self.member(FT_PLUGIN_ROLLOUT_TIMEOUT_MS="20000")
        b = self.member(a)
        self.wait_live(a, 2)
        b.kill()
        wait_until(lambda: [h["status"] for h in self.hosts(a, "?all=true")["hosts"] if h["id"] == b.host_id] == ["stale"], 30,
                   what="the killed host to turn stale")
        self.assertEqual([h["id"] for h in self.hosts(a)["hosts"]], [a.host_id])
        t = time.monotonic()
        r = a.post("/api/v1/plugins/reload?force=true")
        self.assertEqual(r.status, 200, r)
        self.assertLess(time.monotonic() - t, 15)
        self.assertEqual(list(self.by_host(r.json())), [a.host_id])

    def test_a_stopped_host_says_so(self):
        a = self.member()
        b = self.member(a)
        self.wait_live(a, 2)
        self.assertEqual(b.terminate(), 0)
        [entry] = [h for h in self.hosts(a, "?all=true")["hosts"] if h["id"] == b.host_id]
        self.assertEqual(entry["status"], "stopped")
        self.assertProblem(a.get("/api/v1/hosts?all=maybe"), 400, "invalid-parameter")

    def test_an_unresponsive_host_is_reported_as_timeout(self):
        # heartbeats of 2 s keep the stopped host live for 6 s: long enough to be asked
        a = self.member(FT_PLUGIN_ROLLOUT_TIMEOUT_MS="1500", FT_HOST_HEARTBEAT_MS="2000")
        b = self.member(a, FT_HOST_HEARTBEAT_MS="2000")
        self.wait_live(a, 2)
        b.proc.send_signal(signal.SIGSTOP)
        try:
            t = time.monotonic()
            r = a.post("/api/v1/plugins/reload?force=true")
            elapsed = time.monotonic() - t
            p = self.assertProblem(r, 422, "plugin-rollout-incomplete")
            self.assertLess(elapsed, 10)
            results = self.by_host(p)
            self.assertEqual(results[a.host_id]["fixture"]["result"], "loaded")
            late = results[b.host_id]["fixture"]
            self.assertEqual(late["result"], "timeout")
            self.assertEqual((late["serving_generation"], late["sha256"]), (1, sha256(fixture("ok"))))
            self.assertEqual(p["rollout"]["state"], "incomplete")
        finally:
            b.proc.send_signal(signal.SIGCONT)
        self.wait_live(a, 2)
        r = a.post("/api/v1/plugins/reload?force=true")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.by_host(r.json())[b.host_id]["fixture"]["result"], "loaded")

    def test_sighup_rolls_out_fleet_wide_and_is_audited(self):
        a = self.member()
        b = self.member(a)
        self.wait_live(a, 2)
        self.install(a.plugin_dir, "v2")
        a.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.version(b) == "2.0.0", 60, what="b to serve the new version")
        wait_until(lambda: self.stack.psql("SELECT result FROM ft_audit WHERE actor = 'signal' AND action = 'plugin.reload'",
                                           a.dbname) == "success", 30, what="the signal's audit row")
        self.assertEqual(self.stack.psql("SELECT actor FROM ft_plugin_rollouts ORDER BY started_at DESC LIMIT 1", a.dbname),
                         "signal")

    def test_hosts_need_a_staff_role(self):
        a = self.member()
        self.assertEqual(a.get("/api/v1/hosts", auth=a.make_key("product-manager")).status, 200)
        self.assertEqual(a.get("/api/v1/hosts", auth=a.make_key("operator")).status, 200)
        self.assertProblem(a.get("/api/v1/hosts", auth=None), 401)


if __name__ == "__main__":
    main()
