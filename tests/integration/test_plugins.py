"""Plugin runtime: the four products load and serve the catalog API; the ABI matrix; reloads
that replace a file in place (rename and hard link); failures that keep the old generation;
drain of a generation in use; catalog sync with retirement; SIGHUP; the plugin lint."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from harness import BUILD, ROOT, StackTestCase, in_thread, main, wait_until

FIXTURES = os.path.join(BUILD, "tests", "plugins")
PRODUCTS = os.path.join(BUILD, "products")
HOLD_MS = 5000  # outlasts a reload and a few requests on a loaded machine


def fixture(variant):
    return os.path.join(FIXTURES, variant, "fixture.so")


class Plugins(StackTestCase):

    def plugin_dir(self, variant="ok"):
        d = tempfile.mkdtemp(prefix="plugins-", dir=self.stack.dir)
        if variant:
            shutil.copy(fixture(variant), os.path.join(d, "fixture.so"))
        return d

    def fixture_host(self, variant="ok", **env):
        d = self.plugin_dir(variant)
        env = {"FT_PLUGIN_DIR": d, "FT_DEV_ROUTES": "true", **env}
        return self.host(env=env), d

    def install(self, d, variant):
        """Replaces fixture.so the way a deploy does: a new file renamed over the old path."""
        tmp = os.path.join(d, ".fixture.so.new")
        shutil.copy(fixture(variant), tmp)
        os.rename(tmp, os.path.join(d, "fixture.so"))

    def fixture_version(self, h):
        r = h.get("/api/v1/products/fixture")
        self.assertEqual(r.status, 200, r)
        return r.json()["version"]

    def plugin_entries(self, h, product="fixture"):
        return [p for p in h.get("/api/v1/plugins").json()["plugins"] if p["product"] == product]

    # ---------------------------------------------------------------- products and catalog API

    def test_four_products_load_and_the_catalog_api_serves_them(self):
        h = self.host(env={"FT_PLUGIN_DIR": PRODUCTS})
        products = {p["code"]: p for p in h.get("/api/v1/products").json()["products"]}
        self.assertTrue({"vet", "erp", "crm", "pos"} <= set(products), products)
        for code in ("vet", "erp", "crm", "pos"):
            p = h.get(f"/api/v1/products/{code}").json()
            self.assertEqual(p["code"], code)
            self.assertEqual(p["abi"], "1.2")
            self.assertGreaterEqual(len(p["modules"]), 3)
            features = [f for m in p["modules"] for f in m["features"]]
            self.assertGreaterEqual(len(features), 10)
            kinds = {f["kind"] for f in features}
            self.assertEqual(kinds, {"flag", "limit"})
            codes = {f["code"] for f in features}
            self.assertTrue({"max_users", "storage_gb"} <= codes, codes)
            self.assertTrue(any(f["requires"] for f in features), "no feature dependencies")
            plans = h.get(f"/api/v1/products/{code}/plans").json()["plans"]
            self.assertGreaterEqual(len(plans), 3)
            plan = h.get(f"/api/v1/products/{code}/plans/{plans[0]['code']}").json()
            self.assertEqual(plan, plans[0])
            for item in plan["features"]:
                self.assertIn(item["code"], codes)
            # the database mirrors what is loaded
            n = self.stack.psql(f"SELECT count(*) FROM ft_features WHERE product_code = '{code}' AND retired_at IS NULL",
                                h.dbname)
            self.assertEqual(int(n), len(features))
            n = self.stack.psql(f"SELECT count(*) FROM ft_plan_versions WHERE product_code = '{code}'", h.dbname)
            self.assertEqual(int(n), len(plans))
        states = {p["product"]: p["state"] for p in h.get("/api/v1/plugins").json()["plugins"]}
        for code in ("vet", "erp", "crm", "pos"):
            self.assertEqual(states[code], "active")

    def test_unknown_product_and_plan_are_404_problems(self):
        h = self.host(env={"FT_PLUGIN_DIR": PRODUCTS})
        p = self.assertProblem(h.get("/api/v1/products/nope"), 404, "product-not-found")
        self.assertEqual(p["product"], "nope")
        p = self.assertProblem(h.get("/api/v1/products/vet/plans/nope"), 404, "plan-not-found")
        self.assertEqual(p["plan"], "nope")
        self.assertProblem(h.get("/api/v1/products/nope/plans"), 404, "product-not-found")

    def test_plugins_report_version_abi_generation_hash_and_load_time(self):
        h, d = self.fixture_host()
        [p] = self.plugin_entries(h)
        self.assertEqual(p["state"], "active")
        self.assertEqual(p["generation"], 1)
        self.assertEqual(p["version"], "1.0.0")
        self.assertEqual(p["abi"], "1.2")
        self.assertRegex(p["file_hash"], r"^[0-9a-f]{64}$")
        self.assertRegex(p["loaded_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(p["file"], os.path.join(d, "fixture.so"))
        rows = self.stack.psql("SELECT result FROM ft_plugin_loads WHERE product_code = 'fixture'", h.dbname)
        self.assertEqual(rows, "loaded")

    # ---------------------------------------------------------------- ABI matrix

    def test_older_minor_is_accepted_and_reads_newer_fields_as_zero(self):
        h, d = self.fixture_host("old_minor")
        p = h.get("/api/v1/products/fixture").json()
        self.assertEqual(p["version"], "1.0.0-old")
        self.assertEqual(p["abi"], "1.0")
        self.assertIsNone(p["vendor"])  # set in the source, but beyond an ABI 1.0 descriptor
        # and a current build next to it reads it
        self.install(d, "ok")
        r = h.post("/api/v1/plugins/fixture/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.get("/api/v1/products/fixture").json()["vendor"], "Fixture Vendor")

    def assert_refused(self, h, d, variant, reason):
        self.install(d, variant)
        r = h.post("/api/v1/plugins/fixture/reload")
        p = self.assertProblem(r, 422, "plugin-load-failed")
        self.assertIn(reason, p["detail"])
        self.assertEqual(p["results"][0]["serving_generation"], 1)
        # generation 1 untouched and still answering
        self.assertEqual(self.fixture_version(h), "1.0.0")
        [entry] = self.plugin_entries(h)
        self.assertEqual((entry["generation"], entry["state"]), (1, "active"))
        self.assertIn(reason, entry["last_reload_error"]["reason"])
        wait_until(lambda: any(reason in l.get("msg", "") and l["level"] == "error" for l in h.log_lines()), 30,
                   what="an error log line")

    def test_abi_mismatches_are_refused_and_the_old_generation_serves(self):
        h, d = self.fixture_host()
        cases = [
            ("new_minor", "newer than this host's 1.2"),
            ("wrong_major", "built for ABI 2.0; this host speaks ABI 1.x"),
            ("bad_magic", "bad magic 0xdeadbeef"),
            ("no_entry", "no ftp_plugin_entry symbol exported"),
            ("null_init", "required callback init is NULL"),
        ]
        for variant, reason in cases:
            with self.subTest(variant=variant):
                self.assert_refused(h, d, variant, reason)
        failed = self.stack.psql("SELECT count(*) FROM ft_plugin_loads WHERE product_code = 'fixture' AND result = 'failed'",
                                 h.dbname)
        self.assertEqual(int(failed), len(cases))

    def test_init_failure_keeps_the_old_generation(self):
        h, d = self.fixture_host()
        self.assert_refused(h, d, "init_fails", "init returned FTP_E_FATAL (-2)")

    def test_init_failure_names_the_code_and_the_plugins_own_reason(self):
        h, d = self.fixture_host()
        self.assert_refused(h, d, "init_reason",
                            "init returned FTP_E_UNAVAILABLE (-6): the license file /etc/fixture/license is missing")

    def test_plugin_log_lines_carry_the_product(self):
        h, d = self.fixture_host()
        self.install(d, "init_fails")
        self.assertProblem(h.post("/api/v1/plugins/fixture/reload"), 422, "plugin-load-failed")
        # written by the plugin through api->log during init (no invocation), and by the host about it
        wait_until(lambda: any(l.get("product") == "fixture" and "fixture init refuses to start" in l["msg"]
                               for l in h.log_lines()), 5, what="the plugin's own line with its product")
        wait_until(lambda: any(l.get("product") == "fixture" and "load failed" in l["msg"] for l in h.log_lines()), 5,
                   what="the host's line about the product")

    def test_a_failed_reload_is_audited_with_its_reason(self):
        h, d = self.fixture_host()
        self.install(d, "init_reason")
        self.assertProblem(h.post("/api/v1/plugins/fixture/reload"), 422, "plugin-load-failed")
        self.install(d, "bad_magic")
        self.assertProblem(h.post("/api/v1/plugins/reload"), 422, "plugin-load-failed")

        def rows():
            items = h.get("/api/v1/audit?action=plugin.reload&result=failure").json()["items"]
            return sorted(items, key=lambda a: a["entity_id"] is None) if len(items) == 2 else None
        single, every = wait_until(rows, 10, what="two audit rows")
        self.assertEqual(single["entity_id"], "fixture")
        self.assertIn("init returned FTP_E_UNAVAILABLE (-6): the license file /etc/fixture/license is missing",
                      single["reason"])
        self.assertIn("fixture: ", every["reason"])
        self.assertIn("bad magic", every["reason"])
        self.assertIn("generation 1 keeps serving", every["reason"])

    # ---------------------------------------------------------------- reload state and history

    def test_a_successful_reload_clears_the_last_error_and_the_history_keeps_it(self):
        h, d = self.fixture_host()
        self.install(d, "init_fails")
        self.assertProblem(h.post("/api/v1/plugins/fixture/reload"), 422, "plugin-load-failed")
        [entry] = self.plugin_entries(h)
        self.assertIn("init returned", entry["last_reload_error"]["reason"])
        self.install(d, "v2")
        self.assertEqual(h.post("/api/v1/plugins/fixture/reload").status, 200)
        [entry] = [e for e in self.plugin_entries(h) if e["state"] == "active"]
        self.assertEqual(entry["generation"], 2)
        self.assertNotIn("last_reload_error", entry)
        history = [e for e in h.get("/api/v1/plugins").json()["reload_history"] if e["product"] == "fixture"]
        self.assertEqual([(e["result"], e.get("generation"), e.get("serving_generation")) for e in history],
                         [("reloaded", 2, None), ("failed", None, 1), ("loaded", 1, None)])
        self.assertIn("init returned FTP_E_FATAL (-2); generation 1 keeps serving", history[1]["reason"])
        for e in history:
            self.assertRegex(e["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_the_history_keeps_the_last_32_attempts_of_a_product(self):
        h, d = self.fixture_host()
        for _ in range(33):
            self.assertEqual(h.post("/api/v1/plugins/fixture/reload?force=true").status, 200)
        history = [e for e in h.get("/api/v1/plugins").json()["reload_history"] if e["product"] == "fixture"]
        self.assertEqual([e["generation"] for e in history], list(range(34, 2, -1)))

    def test_a_reload_that_finds_the_file_gone_says_which_generation_keeps_serving(self):
        h, d = self.fixture_host()
        os.remove(os.path.join(d, "fixture.so"))
        p = self.assertProblem(h.post("/api/v1/plugins/fixture/reload"), 422, "plugin-load-failed")
        self.assertIn("fixture.so: file missing; generation 1 keeps serving", p["detail"])
        self.assertEqual(p["results"][0]["serving_generation"], 1)
        p = self.assertProblem(h.post("/api/v1/plugins/reload"), 422, "plugin-load-failed")
        [res] = p["results"]
        self.assertEqual((res["product"], res["result"]), ("fixture", "failed"))
        self.assertIn("file missing; generation 1 keeps serving", res["reason"])
        self.assertEqual(self.fixture_version(h), "1.0.0")
        [entry] = self.plugin_entries(h)
        self.assertIn("file missing; generation 1 keeps serving", entry["last_reload_error"]["reason"])
        history = h.get("/api/v1/plugins").json()["reload_history"]
        self.assertEqual([e["result"] for e in history], ["failed", "failed", "loaded"])
        self.assertIn("file missing; generation 1 keeps serving", history[0]["reason"])
        # a product that never served and has no file is still unknown
        self.assertProblem(h.post("/api/v1/plugins/nothere/reload"), 404, "plugin-not-found")

    def test_invalid_tables_are_refused_with_table_and_entry_named(self):
        h, d = self.fixture_host()
        self.install(d, "invalid_tables")
        p = self.assertProblem(h.post("/api/v1/plugins/fixture/reload"), 422, "plugin-load-failed")
        self.assertIn("features[3] alpha: duplicate code (also features[0])", p["detail"])
        self.assertIn("features[4] gamma: belongs to unknown module nowhere", p["detail"])
        self.assertIn("features: requirement cycle through gamma", p["detail"])
        self.assertEqual(self.fixture_version(h), "1.0.0")

    def test_a_product_that_never_loaded_is_reported_failed(self):
        d = self.plugin_dir("bad_magic")
        h = self.host(env={"FT_PLUGIN_DIR": d})
        [p] = self.plugin_entries(h)
        self.assertEqual(p["state"], "failed")
        self.assertIn("bad magic", p["reason"])
        self.assertProblem(h.get("/api/v1/products/fixture"), 404)

    # ---------------------------------------------------------------- replacing the file

    def test_renamed_over_file_reloads_as_the_new_version(self):
        h, d = self.fixture_host()
        self.install(d, "v2")
        r = h.post("/api/v1/plugins/fixture/reload")
        self.assertEqual(r.status, 200, r)
        [res] = r.json()["results"]
        self.assertEqual((res["result"], res["generation"], res["previous_generation"]), ("reloaded", 2, 1))
        self.assertLess(res["swap_ms"], 50)
        self.assertEqual(self.fixture_version(h), "2.0.0")

    def test_file_rewritten_in_place_through_a_hard_link_reloads(self):
        # The plugin dir holds a hard link to a staging file; the staging file is then rewritten in
        # place (same inode). Loading by path or inode would hand back the cached image.
        h, d = self.fixture_host(variant=None)
        staging = os.path.join(self.stack.dir, f"staging-{os.getpid()}-{time.monotonic_ns()}.so")
        shutil.copy(fixture("ok"), staging)
        os.link(staging, os.path.join(d, "fixture.so"))
        self.assertEqual(h.post("/api/v1/plugins/reload").status, 200)
        self.assertEqual(self.fixture_version(h), "1.0.0")
        with open(fixture("v2"), "rb") as src, open(staging, "r+b") as dst:
            dst.truncate(0)
            dst.write(src.read())
        self.assertEqual(os.stat(staging).st_ino, os.stat(os.path.join(d, "fixture.so")).st_ino)
        r = h.post("/api/v1/plugins/fixture/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.fixture_version(h), "2.0.0")

    def test_unchanged_file_is_not_reloaded_unless_forced(self):
        h, d = self.fixture_host()
        [res] = h.post("/api/v1/plugins/reload").json()["results"]
        self.assertEqual((res["result"], res["generation"]), ("unchanged", 1))
        [res] = h.post("/api/v1/plugins/fixture/reload?force=true").json()["results"]
        self.assertEqual((res["result"], res["generation"]), ("reloaded", 2))

    def test_reload_of_a_missing_plugin_is_404(self):
        h, d = self.fixture_host()
        self.assertProblem(h.post("/api/v1/plugins/nothere/reload"), 404, "plugin-not-found")
        self.assertProblem(h.post("/api/v1/plugins/Bad.Name/reload"), 400, "invalid-parameter")

    def test_new_plugin_dropped_in_loads_on_reload_and_on_sighup(self):
        h, d = self.fixture_host(variant=None)
        self.assertEqual(h.get("/api/v1/products").json()["products"], [])
        shutil.copy(fixture("ok"), os.path.join(d, "fixture.so"))
        h.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: h.get("/api/v1/products/fixture").status == 200, 60, what="SIGHUP load")
        self.install(d, "v2")
        h.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.fixture_version(h) == "2.0.0", 60, what="SIGHUP reload")

    # ---------------------------------------------------------------- drain

    def hold(self, h, generation, ms=HOLD_MS):
        """Starts a request that holds generation's catalog for ms; returns once the host holds it."""
        h.admin_key  # made now, not inside the request's thread
        join = in_thread(h.get, f"/api/v1/_dev/hold?product=fixture&ms={ms}")
        wait_until(lambda: any(l.get("msg") == f"dev: holding fixture generation {generation} for {ms} ms" for l in h.log_lines()),
                   60, what=f"a request to hold generation {generation}")
        return join

    def test_a_request_on_generation_1_finishes_there_while_new_requests_reach_generation_2(self):
        h, d = self.fixture_host()
        join = self.hold(h, 1)
        self.install(d, "v2")
        self.assertEqual(h.post("/api/v1/plugins/fixture/reload").status, 200)
        now = h.get("/api/v1/_dev/hold?product=fixture&ms=0").json()
        self.assertEqual((now["generation"], now["version"]), (2, "2.0.0"))
        states = {p["generation"]: p["state"] for p in self.plugin_entries(h)}
        self.assertEqual(states, {1: "draining", 2: "active"})
        self.assertEqual(len(self.mapped_copies(h)), 2)
        held = join()
        self.assertEqual((held.json()["generation"], held.json()["version"]), (1, "1.0.0"))
        wait_until(lambda: len(self.mapped_copies(h)) == 1, 60, what="generation 1 unmapped")
        self.assertEqual([p["generation"] for p in self.plugin_entries(h)], [2])

    def mapped_copies(self, h):
        with open(f"/proc/{h.proc.pid}/maps") as f:
            return {line.split(None, 5)[5].strip() for line in f if "fixture.so" in line}

    def test_a_drain_past_its_bound_raises_an_alert_and_keeps_the_generation(self):
        h, d = self.fixture_host(FT_PLUGIN_DRAIN_TIMEOUT_MS="300")
        join = self.hold(h, 1)
        self.assertEqual(h.post("/api/v1/plugins/fixture/reload?force=true").status, 200)
        wait_until(lambda: any("ALERT plugin fixture: generation 1 has not drained" in l.get("msg", "") for l in h.log_lines()),
                   30, what="alert")
        entry = [p for p in self.plugin_entries(h) if p["generation"] == 1][0]
        self.assertEqual(entry["state"], "draining")
        self.assertIn("drain timed out", entry["reason"])
        metrics = h.get("/metrics").body.decode()
        self.assertIn("ft_plugin_drain_timeouts_total 1", metrics)
        self.assertEqual(join().status, 200)
        wait_until(lambda: [p["generation"] for p in self.plugin_entries(h)] == [2], 60, what="late unload")

    # ---------------------------------------------------------------- catalog sync

    def test_a_removed_feature_is_retired_not_deleted_and_comes_back(self):
        h, d = self.fixture_host()
        self.install(d, "drop_beta")
        self.assertEqual(h.post("/api/v1/plugins/fixture/reload").status, 200)
        q = "SELECT retired_at IS NOT NULL FROM ft_features WHERE product_code = 'fixture' AND code = 'beta'"
        self.assertEqual(self.stack.psql(q, h.dbname), "t")
        self.install(d, "ok")
        self.assertEqual(h.post("/api/v1/plugins/fixture/reload").status, 200)
        self.assertEqual(self.stack.psql(q, h.dbname), "f")

    def test_a_plan_changed_without_a_new_version_is_refused(self):
        h, d = self.fixture_host()
        self.install(d, "change_plan")
        p = self.assertProblem(h.post("/api/v1/plugins/fixture/reload"), 422, "plugin-load-failed")
        self.assertIn("plan small version 1 already exists with other features", p["detail"])
        self.assertEqual(self.fixture_version(h), "1.0.0")
        seats = self.stack.psql("SELECT value FROM ft_plan_features WHERE product_code = 'fixture' AND feature_code = 'seats'",
                                h.dbname)
        self.assertEqual(seats, "5")


class PluginLint(StackTestCase):
    """The ABI's build rules, checked on every plugin this tree builds."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def test_every_built_plugin_passes_the_lint(self):
        sos = [os.path.join(PRODUCTS, f) for f in os.listdir(PRODUCTS) if f.endswith(".so")]
        sos.append(os.path.join(BUILD, "plugin-api", "template", "template.so"))
        self.assertGreaterEqual(len(sos), 5)
        out = subprocess.run([os.path.join(ROOT, "plugin-api", "ftp-lint.sh"), *sos], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_the_lint_catches_an_extra_export(self):
        out = subprocess.run([os.path.join(ROOT, "plugin-api", "ftp-lint.sh"), fixture("no_entry")], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("exports must be exactly ftp_plugin_entry", out.stdout)


if __name__ == "__main__":
    main()
